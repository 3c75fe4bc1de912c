"""An attached message (message/rfc822) opens in the reader from the attachment list, never
through mailcap (issue 11.6)."""

from __future__ import annotations

import dataclasses

from tuimail.core.content import Attachment, InlinePart

from .fixtures import FakeService, content_for, make_config, run, settle


def test_enter_on_an_attached_message_shows_it_in_the_reader(make_app, tmp_path):
    mc = tmp_path / "mailcap"
    mc.write_text("message/rfc822; false %s\n")  # what the system mailcap would try (and fail)
    atts = [Attachment("2", "Fwd.eml", "message/rfc822", 2000), Attachment("3", "a.pdf", "application/pdf", 9)]
    inline = [InlinePart("Attached message", [("From", "Jörg <j@x.test>"), ("Subject", "Angebot")],
                         "Sehr geehrte Frau Schäfer,", 1, "2")]
    svc = FakeService(contents={("INBOX", 1): content_for("INBOX", 1, attachments=atts, inline=inline)},
                      parts={"2": b"From: J <j@x.test>\r\nSubject: Angebot\r\nX-Inner: yes\r\n\r\nSehr geehrte\r\n"})
    app, _store, _ = make_app(5, service=svc, config=dataclasses.replace(make_config(), mailcap_path=mc))

    async def go():
        async with app.run_test(size=(100, 30)) as pilot:
            await settle(pilot, app)
            await pilot.press("enter")
            await settle(pilot, app)
            text = app.main.reader.plain_text
            assert "── Attached message (attachment 1) ──\nFrom: Jörg <j@x.test>\nSubject: Angebot" in text
            assert "Sehr geehrte Frau Schäfer," in text
            await pilot.press("v")
            await settle(pilot, app)
            await pilot.press("enter")
            await settle(pilot, app)
            assert ("open_attached", "INBOX", 1, "2") in svc.calls
            assert type(app.screen).__name__ != "TextScreen"
            assert "the message attached at 2" in app.main.reader.plain_text
            assert app.main.reader.content.section == "2"

            # raw source and full headers are the attached message's (its part), not the container's
            await pilot.press("h")
            await settle(pilot, app)
            assert ("fetch_part", "INBOX", 1, "2") in svc.calls and ("fetch_raw", "INBOX", 1) not in svc.calls
            assert "Subject: Angebot" in app.main.reader.plain_text
            assert "X-Inner: yes" in app.main.reader.plain_text

    run(go())
