"""The message view's extras: raw source, full headers, pipe, attachments, links, load more, keys."""

from __future__ import annotations

import os
import stat

from textual.widgets import Input

from tuimail.core.content import Attachment

from .fixtures import FakeService, content_for, make_config, run, screen_text, settle


async def _open(pilot, app, *keys):
    await settle(pilot, app)
    await pilot.press(*keys, "enter")
    await settle(pilot, app)


def test_raw_and_full_headers_toggle(make_app):
    app, store, svc = make_app(10)

    async def go():
        async with app.run_test(size=(120, 36)) as pilot:
            await _open(pilot, app, "j")
            reader = app.main.reader
            assert "X-Mailer" not in reader.plain_text
            await pilot.press("h")
            await settle(pilot, app)
            assert "X-Mailer: test" in reader.plain_text and "Received: from a by b" in reader.plain_text
            assert "this is message 2" in reader.plain_text
            await pilot.press("h")
            assert "X-Mailer" not in reader.plain_text
            await pilot.press("ctrl+u")
            await settle(pilot, app)
            assert "body of 2" in reader.plain_text and "Subject: Message 2" in reader.plain_text
            assert ("fetch_raw", "INBOX", 2) in svc.calls
            await pilot.press("ctrl+u")
            assert "this is message 2" in reader.plain_text

    run(go())


def test_hostile_raw_source_is_sanitised(make_app):
    raw = b"Subject: =?utf-8?q?a=1B]0;x=07b?=\r\nX-Evil: \x1b[2J\x9b31m\r\n\r\nbody\x1b]52;c;AAAA\x07 end\r\n"
    app, store, svc = make_app(5, service=FakeService(raw=raw))

    async def go():
        async with app.run_test(size=(120, 36)) as pilot:
            await _open(pilot, app)
            await pilot.press("h")
            await settle(pilot, app)
            assert "\x1b" not in screen_text(app) and "\x1b" not in app.main.reader.plain_text
            await pilot.press("ctrl+u")
            await settle(pilot, app)
            text = screen_text(app)
            assert "body" in text and " end" in text
            assert "\x1b" not in text and "\x9b" not in text and "\x07" not in text

    run(go())


def test_pipe_headless_shows_output(make_app):
    app, store, svc = make_app(5)

    async def go():
        async with app.run_test(size=(120, 36)) as pilot:
            await _open(pilot, app)
            await pilot.press("|")
            await pilot.pause()
            await pilot.press(*"grep -c Subject")
            await pilot.press("enter")
            await settle(pilot, app)
            await pilot.pause(0.2)
            assert type(app.screen).__name__ == "TextScreen"
            assert "grep (exit status 0)" in screen_text(app)
            await pilot.press("escape")
            assert type(app.screen).__name__ == "MainScreen"

    run(go())


def test_attachment_save_private_and_no_overwrite(make_app, tmp_path):
    atts = [Attachment("2", "../../.bashrc", "text/plain", 10), Attachment("3", "b.pdf", "application/pdf", 99)]
    svc = FakeService(contents={("INBOX", 1): content_for("INBOX", 1, attachments=atts)},
                      parts={"2": b"PAYLOAD"})
    app, store, _ = make_app(5, service=svc)
    dest = tmp_path / "saves"
    dest.mkdir()

    async def go():
        async with app.run_test(size=(120, 36)) as pilot:
            await _open(pilot, app)
            await pilot.press("v")
            await pilot.pause()
            assert type(app.screen).__name__ == "AttachmentScreen"
            assert "../../.bashrc" in screen_text(app)  # shown as sent, saved safely
            await pilot.press("s")
            await pilot.pause()
            inp = app.screen.query_one(Input)
            assert inp.value.endswith("/bashrc")
            inp.value = str(dest)  # a directory: the safe name is used inside it
            await pilot.press("enter")
            await settle(pilot, app)
            saved = dest / "bashrc"
            assert saved.read_bytes() == b"PAYLOAD"
            assert stat.S_IMODE(os.stat(saved).st_mode) == 0o600
            saved.write_bytes(b"mine")
            await pilot.press("v", "s")
            await pilot.pause()
            app.screen.query_one(Input).value = str(saved)
            await pilot.press("enter")
            await pilot.pause()
            assert type(app.screen).__name__ == "ConfirmScreen"
            await pilot.press("n")
            await settle(pilot, app)
            assert saved.read_bytes() == b"mine"
            await pilot.press("v", "s")
            await pilot.pause()
            app.screen.query_one(Input).value = str(saved)
            await pilot.press("enter", "y")
            await settle(pilot, app)
            assert saved.read_bytes() == b"PAYLOAD"

    run(go())


def test_attachment_open_with_mailcap_copiousoutput(make_app, tmp_path):
    mc = tmp_path / "mailcap"
    mc.write_text("text/plain; cat %s; copiousoutput\n")
    atts = [Attachment("2", "notes.txt", "text/plain", 10)]
    svc = FakeService(contents={("INBOX", 1): content_for("INBOX", 1, attachments=atts)},
                      parts={"2": b"attached text"})
    import dataclasses
    cfg = dataclasses.replace(make_config(), mailcap_path=mc)
    app, store, _ = make_app(5, service=svc, config=cfg)

    async def go():
        async with app.run_test(size=(120, 36)) as pilot:
            await _open(pilot, app)
            await pilot.press("v", "o")
            await settle(pilot, app)
            await pilot.pause(0.2)
            assert type(app.screen).__name__ == "TextScreen"
            assert "attached text" in screen_text(app)

    run(go())


def test_links_copy_and_load_more(make_app):
    first = content_for("INBOX", 1, text="part one", more=True, links=["https://a.example/1", "https://b.example/2"])
    svc = FakeService(contents={("INBOX", 1): first})
    app, store, _ = make_app(5, service=svc)

    async def go():
        async with app.run_test(size=(120, 36)) as pilot:
            await _open(pilot, app)
            reader = app.main.reader
            assert "press L to load the rest" in reader.plain_text
            await pilot.press("y")
            await pilot.pause()
            await pilot.press("2", "enter")
            await pilot.pause()
            assert app.clipboard == "https://b.example/2"
            svc.contents[("INBOX", 1)] = content_for("INBOX", 1, text="part one part two")
            await pilot.press("L")
            await settle(pilot, app)
            assert "part two" in reader.plain_text
            assert ("open_message", "INBOX", 1, True) in svc.calls

    run(go())


def test_help_palette_sort_layout(make_app):
    app, store, svc = make_app(20)

    async def go():
        async with app.run_test(size=(120, 36)) as pilot:
            await settle(pilot, app)
            await pilot.press("question_mark")
            await pilot.pause()
            text = screen_text(app)
            assert type(app.screen).__name__ == "HelpScreen" and "toggle_read" in text and "reply_all" in text
            if "cursor_down" not in text:  # (the writing keys made the global list longer than a screen)
                await pilot.press("pagedown")
                await pilot.pause()
                assert "cursor_down" in screen_text(app)
            await pilot.press("escape")
            await pilot.press("o")
            assert app.main.hlist.sort == "arrival"
            await pilot.press("O")
            assert app.main.hlist.reverse and app.main.hlist.uids[0] == 1
            await pilot.pause()
            assert "[arrival ↑]" in screen_text(app).splitlines()[-1]
            panes = app.main.query_one("#panes")
            was_right = panes.has_class("right")
            await pilot.press("P")
            assert panes.has_class("right") != was_right
            await pilot.press("z")
            assert app.main.has_class("fullscreen") and app.main.reader.has_focus
            await pilot.press("q")  # the pager's close leaves full screen
            assert not app.main.has_class("fullscreen") and app.main.hlist.has_focus
            # the command palette runs an action by name
            await pilot.press("colon")
            await pilot.pause()
            await pilot.press(*"flag / unflag")
            await pilot.pause(0.5)
            await pilot.press("enter")
            await pilot.pause(0.3)
            fid = store.folder_id("INBOX")
            assert store.row(fid, app.main.hlist.current_uid).flagged
            # themes through the palette
            await pilot.press("colon")
            await pilot.pause()
            await pilot.press(*"theme: tuimail-light")
            await pilot.pause(0.5)
            await pilot.press("enter")
            await pilot.pause(0.3)
            assert app.theme == "tuimail-light"

    run(go())


def test_mutt_keymap_and_user_override(make_app):
    cfg = make_config(keymap="mutt")
    import dataclasses
    cfg = dataclasses.replace(cfg, keys={"flag": ("f",), "bogus_action": ("x",)})
    app, store, svc = make_app(20, config=cfg)
    fid = store.folder_id("INBOX")

    async def go():
        async with app.run_test(size=(120, 36)) as pilot:
            await settle(pilot, app)
            await pilot.press("tab")  # mutt: next new (uid 3 is the first unread)
            assert app.main.hlist.current_uid == 3
            await pilot.press("enter")
            await settle(pilot, app)
            await pilot.press("j")  # mutt pager: next message
            await settle(pilot, app)
            assert "this is message 4" in app.main.reader.plain_text
            await pilot.press("f")
            assert store.row(fid, 4).flagged
            await pilot.press("i")  # mutt: back to the index
            assert app.main.hlist.has_focus
            await pilot.press("asterisk")
            assert app.main.hlist.current_uid == 20

    run(go())
    assert any("bogus_action" in p for p in app.problems)


def test_pipe_message_and_attachment_run_without_a_shell(make_app, tmp_path):
    """`|` pipes the raw message, `v` then `|` an attachment's bytes; headless, the output is shown."""
    import sys

    svc = FakeService({("INBOX", 2): content_for("INBOX", 2, attachments=[
        Attachment("2", "notes.txt", "text/plain", 12)])}, raw=b"Subject: piped\r\n\r\nraw body\r\n",
        parts={"2": b"attached text"})
    app, store, _ = make_app(10, service=svc)
    marker = tmp_path / "pwned"
    cmd = f"{sys.executable} -c 'import sys; print(sys.stdin.read().upper())' ; touch {marker}"

    async def go():
        async with app.run_test(size=(120, 36)) as pilot:
            await _open(pilot, app, "j")
            await pilot.press("|")
            await settle(pilot, app)
            app.screen.query_one(Input).value = f"{sys.executable} -c 'import sys; print(sys.stdin.read().upper())'"
            await pilot.press("enter")
            await settle(pilot, app)
            for _ in range(40):
                if "RAW BODY" in screen_text(app):
                    break
                await pilot.pause(0.1)
            assert "SUBJECT: PIPED" in screen_text(app) and "RAW BODY" in screen_text(app)
            await pilot.press("escape")
            await settle(pilot, app)
            await pilot.press("v", "|")
            await settle(pilot, app)
            app.screen.query_one(Input).value = cmd  # shell syntax is not interpreted
            await pilot.press("enter")
            for _ in range(40):
                await pilot.pause(0.1)
                if "ATTACHED TEXT" in screen_text(app):
                    break
            assert "ATTACHED TEXT" in screen_text(app)  # ";" and "touch" were mere arguments
            assert not marker.exists()

    run(go())


def test_pipe_in_the_terminal_runs_a_failing_command_once(make_app, tmp_path, monkeypatch):
    """With a terminal that can suspend, a command that fails (exit 1) and a prompt that cannot
    read its Enter (stdin gone) must not send the app into its headless fallback: the command
    ran once, the file it appends to has one line (issue 10.7)."""
    import builtins
    import contextlib
    import sys

    app, store, svc = make_app(5)
    log = tmp_path / "ran.log"
    monkeypatch.setattr(app, "suspend", contextlib.nullcontext)  # a terminal that suspends

    def no_stdin(prompt=""):
        raise OSError("stdin is not readable")

    monkeypatch.setattr(builtins, "input", no_stdin)
    prog = f"import sys; open({str(log)!r}, 'a').write('ran\\n'); sys.exit(1)"

    async def go():
        async with app.run_test(size=(120, 36)) as pilot:
            await _open(pilot, app)
            await pilot.press("|")
            await settle(pilot, app)
            app.screen.query_one(Input).value = " ".join([sys.executable, "-c", repr(prog)])
            await pilot.press("enter")
            for _ in range(30):
                await pilot.pause(0.1)
            assert log.read_text() == "ran\n"
            assert type(app.screen).__name__ == "MainScreen"

    run(go())
