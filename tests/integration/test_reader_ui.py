"""The TUI against a real Dovecot and the real ImapService: the thread tree as drawn, and
attached messages / bounces in the reader (fetched part by part)."""

from __future__ import annotations

import asyncio
import dataclasses
from datetime import UTC

import pytest

from tuimail import paths
from tuimail.config.load import load_config
from tuimail.store import Store
from tuimail.backends.imap.service import ImapService
from tuimail.ui.app import TuimailApp

from .helpers import Cli, msg
from tests.support.cyrus import IMAP_SERVERS, imap_user

NOW = 1_704_153_600  # 2024-01-02 00:00 UTC: the messages of helpers.msg are from the day before


@pytest.fixture(params=IMAP_SERVERS)
def mailuser(request):
    """Every test here runs against Dovecot and against Cyrus IMAP."""
    return imap_user(request)


def _screen(app) -> str:
    strips = app.screen._compositor.render_strips()
    return "\n".join("".join(seg.text for seg in strip) for strip in strips)


async def _settle(pilot, app) -> None:
    await pilot.pause(0.3)
    await app.workers.wait_for_complete()
    await pilot.pause()


def _app(config_path, **ui):
    cfg = load_config(config_path)
    if ui:
        cfg = dataclasses.replace(cfg, ui=dataclasses.replace(cfg.ui, **ui))
    store = Store(paths.account_store_path("test"))
    svc = ImapService(cfg, cfg.account("test"))
    app = TuimailApp(cfg, {"test": store}, {"test": svc}, clock=lambda: NOW, tz=UTC)
    return app, store


def _reply(i: int, parent: int, chain: list[int], unread: bool = False) -> bytes:
    refs = " ".join(f"<m{p}@example.org>" for p in chain)
    return msg(i, f"Re: plan {parent}", extra=f"In-Reply-To: <m{parent}@example.org>\r\nReferences: {refs}\r\n")


def test_reply_chain_is_drawn_as_a_tree_and_collapsed_shows_unread(tuimail_env, mailuser, capsys):
    # 1 <- 2 <- 3 <- 4 (a chain), 5 answers 2 as well (a sibling of 3); 6 is alone.
    mailuser.deliver("INBOX", msg(1, "plan"), flags="S")
    mailuser.deliver("INBOX", _reply(2, 1, [1]), flags="S")
    mailuser.deliver("INBOX", _reply(3, 2, [1, 2]))
    mailuser.deliver("INBOX", _reply(4, 3, [1, 2, 3]))
    mailuser.deliver("INBOX", _reply(5, 2, [1, 2]), flags="S")
    mailuser.deliver("INBOX", msg(6, "alone"), flags="S")
    config = tuimail_env.write_config(mailuser.config_toml())
    Cli(config, capsys)("sync")
    app, store = _app(config, threaded=True)

    async def go():
        async with app.run_test(size=(100, 24)) as pilot:
            await _settle(pilot, app)
            lines = [ln for ln in _screen(app).splitlines() if "plan" in ln]
            col = lines[0].index("plan")  # the subject column
            subjects = [ln[col:col + 30].rstrip() for ln in lines]
            assert subjects == ["plan", "└─>Re: plan 1", "  ├─>Re: plan 2", "  │ └─>Re: plan 3",
                                "  └─>Re: plan 2"], subjects
            await pilot.press("j", "minus")  # collapse the thread ("alone" is the newest, on top)
            await _settle(pilot, app)
            text = _screen(app)
            assert "(5, 2 unread) plan" in text and "Re: plan" not in text

    try:
        asyncio.run(go())
    finally:
        store.close()


CORPUS = __import__("pathlib").Path(__file__).resolve().parents[1] / "data" / "corpus" / "mikel-mail"
FORWARD = CORPUS / "attachment_emails" / "attachment_message_rfc822.eml"  # text + message/rfc822 (text + pdf)
BOUNCE = CORPUS / "multipart_report_emails" / "multipart_report_multiple_status.eml"  # no text part at all
BOUNCE2 = CORPUS / "multipart_report_emails" / "multi_address_bounce1.eml"  # text, status, returned message


def test_forwarded_message_and_bounces_read_inline(tuimail_env, mailuser, capsys):
    for path in (FORWARD, BOUNCE, BOUNCE2):
        mailuser.deliver("INBOX", path.read_bytes())
    config = tuimail_env.write_config(mailuser.config_toml())
    cli = Cli(config, capsys)
    cli("sync")
    out = cli("read", "INBOX", "1")
    assert "This is the first part." in out
    assert "── Attached message (attachment 1) ──" in out
    inner = out.split("── Attached message")[1]
    assert "From: Test Tester <xxxx@xxxx.com>" in inner and "Subject: Another PDF" in inner
    assert "if I can figure out what is going wrong here." in inner  # its text, inline
    assert "[its attachments: broken.pdf; v, then Enter on this message, to open it]" in inner
    assert " 1. ForwardedMessage.eml  (message/rfc822" in out
    # only the parts shown were fetched: the pdf inside the attached message never was
    from tuimail.backends.imap.state import FolderState
    with Store(paths.account_store_path("test")) as st:
        uidvalidity = FolderState.load(st.folder("INBOX").state).uidvalidity
    from tuimail.store import BodyCache
    bodies = BodyCache(paths.account_cache_path("test"))
    try:
        assert bodies.get_part("INBOX", uidvalidity, 1, "2.1") is not None  # the attached text
        assert bodies.get_part("INBOX", uidvalidity, 1, "2.2") is None  # broken.pdf
        # cached by a version that showed no inline parts: offline says so, online fetches it
        bodies.db.execute("DELETE FROM parts WHERE uid = 1 AND section = '2.1'")
    finally:
        bodies.close()
    out = cli("--offline", "read", "INBOX", "1")
    assert "[not cached: open the message online to see this part]" in out and "This is the first part." in out
    out = cli("read", "INBOX", "1")
    assert "if I can figure out what is going wrong here." in out and "not cached" not in out

    out = cli("read", "INBOX", "2")
    assert "(no text part" not in out
    assert out.count("── Delivery status (attachment") == 2
    assert "Final-Recipient: RFC822; <u@ci.com>" in out and "Status: 5.3.0" in out
    assert "── Attached message (attachment 3) ──" in out

    out = cli("read", "INBOX", "3")
    assert "could not" in out and "Final-Recipient:" in out and "Attached message" in out


def test_tui_shows_a_forward_inline_and_opens_it_from_the_attachment_list(tuimail_env, mailuser, capsys):
    mailuser.deliver("INBOX", FORWARD.read_bytes())
    config = tuimail_env.write_config(mailuser.config_toml())
    cli = Cli(config, capsys)
    cli("sync")
    app, store = _app(config)  # nothing cached: the TUI fetches the parts it shows from Dovecot
    seen = {}

    async def go():
        async with app.run_test(size=(80, 24)) as pilot:
            await _settle(pilot, app)
            await pilot.press("enter")
            await _settle(pilot, app)
            await pilot.press("z")
            await _settle(pilot, app)
            reader = app.main.reader
            text = reader.plain_text
            assert "── Attached message (attachment 1) ──" in text
            assert "Subject: Another PDF" in text and "if I can figure out what is going wrong here." in text
            assert "part-2" not in text
            seen["numbered"] = [ln for ln in text.splitlines() if ln.startswith(" 1. ")]
            screen = _screen(app)
            assert "Attached message" in screen and "From: Test Tester <xxxx@xxxx.com>" in screen
            await pilot.press("v")
            await _settle(pilot, app)
            assert "ForwardedMessage.eml" in _screen(app)
            await pilot.press("enter")  # open it: in the reader, not through mailcap
            await _settle(pilot, app)
            content = reader.content
            assert content is not None and content.section == "2"
            assert ("Subject", "Another PDF") in content.headers
            assert [a.filename for a in content.attachments] == ["broken.pdf"]
            assert "if I can figure out what is going wrong here." in reader.plain_text
            assert "From: Test Tester <xxxx@xxxx.com>" in _screen(app)

    try:
        asyncio.run(go())
    finally:
        store.close()
    # the same attachment numbering as `tuimail read`
    assert seen["numbered"] == [ln for ln in cli("read", "INBOX", "1").splitlines() if ln.startswith(" 1. ")]
    assert seen["numbered"] == [" 1. ForwardedMessage.eml  (message/rfc822, 3.7 KB)"]


def test_hostile_text_in_attached_messages_and_reports_is_made_safe(tuimail_env, mailuser, capsys):
    inner = (b"From: =?utf-8?q?Pay=E2=80=8BPal_=1B=5D0=3Bpwned=07?= <x@evil.test>\r\n"
             b"Subject: =?utf-8?q?Invoice=1B[2J_=E2=80=AEfdp.exe?=\r\nDate: Mon, 1 Jan 2024 10:00:00 +0000\r\n"
             b"Content-Type: text/plain; charset=utf-8\r\n\r\nbody \x1b]52;c;AAAA\x07 end\r\n")
    raw = (b"From: a@x.test\r\nSubject: fwd\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=B\r\n\r\n"
           b"--B\r\nContent-Type: text/plain\r\n\r\nsee below\r\n--B\r\nContent-Type: message/rfc822\r\n\r\n"
           + inner + b"--B\r\nContent-Type: message/delivery-status\r\n\r\nStatus: 5.0.0 \x1b[31mred\r\n--B--\r\n")
    mailuser.deliver("INBOX", raw)
    cli = Cli(tuimail_env.write_config(mailuser.config_toml()), capsys)
    cli("sync")
    out = cli("read", "INBOX", "1")
    assert "\x1b" not in out and "\x07" not in out
    inline = out.split("── Attached message (attachment 1) ──")[1]
    assert "From: Pay<U+200B>Pal <U+001B>]0;pwned<U+0007> <x@evil.test>" in inline  # shown, not obeyed
    assert "Subject: Invoice fdp.exe" in inline and "body  end" in inline  # escapes and bidi dropped
    assert "Status: 5.0.0 red" in out
    assert " 1. Invoice<U+001B>[2J <U+202E>fdp.exe.eml  (message/rfc822" in out  # a name: made visible
