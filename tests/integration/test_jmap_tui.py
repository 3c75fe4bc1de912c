"""The app on a Cyrus JMAP account, as a new user would use it (pilot): the account opens with an
empty store and fills from the server, a message is read, flagged and archived; the screen shows
each step and Cyrus has it (seen by an IMAP client)."""

from __future__ import annotations

import asyncio
from datetime import UTC

from tuimail import paths
from tuimail.backends.jmap.service import JmapService
from tuimail.store import Store

from .test_jmap_backend import BASE, fill, server_flags


def test_open_read_flag_and_archive_on_a_cyrus_jmap_account(tuimail_env, cyrususer):
    from tuimail.config.load import load_config
    from tuimail.ui.app import TuimailApp

    from .test_jmap_backend import jmap_toml
    cfg = load_config(tuimail_env.write_config(jmap_toml(cyrususer)))
    acc = cfg.account("test")
    fill(cyrususer, 3)
    paths.ensure_private_dir(paths.account_store_path("test").parent)
    store = Store(paths.account_store_path("test"))  # empty: the app's service fills it
    svc = JmapService(cfg, acc)
    app = TuimailApp(cfg, {"test": store}, {"test": svc}, clock=lambda: BASE + 86400, tz=UTC)

    def screen() -> str:
        strips = app.screen._compositor.render_strips()
        return "\n".join("".join(seg.text for seg in strip) for strip in strips)

    def marks(subject: str) -> str:
        """The marks column (N unread, ! flagged) of the header list row with this subject."""
        row = next((line for line in screen().splitlines() if subject in line and "▏" in line), "")
        return row.split("▏", 1)[-1][:4]

    async def until(cond, pilot, seconds: float = 15.0) -> None:
        for _ in range(int(seconds / 0.1)):
            if cond():
                return
            await pilot.pause(0.1)
        raise AssertionError(f"timed out; the screen:\n{screen()}")

    async def go():
        async with app.run_test(size=(120, 30)) as pilot:
            await until(lambda: all(f"message {i}" in screen() for i in (1, 2, 3)), pilot)
            assert screen().index("message 3") < screen().index("message 1")  # newest first
            await pilot.press("enter")  # read the newest
            await until(lambda: "hello" in screen(), pilot)
            await until(lambda: "\\Seen" in server_flags(cyrususer)["message 3"], pilot)
            await pilot.press("F")  # flag it
            assert "N" not in marks("message 3") and "N" in marks("message 2")  # read: not new any more
            await until(lambda: "!" in marks("message 3"), pilot, 5)
            await until(lambda: server_flags(cyrususer)["message 3"] == {"\\Seen", "\\Flagged"}, pilot)
            await pilot.press("escape")
            await pilot.pause(0.2)
            await pilot.press("a")  # archive it
            await until(lambda: "message 3" not in screen(), pilot, 5)
            await until(lambda: "message 3" in server_flags(cyrususer, "Archive"), pilot)
            assert "message 2" in screen() and "message 1" in screen()

    try:
        asyncio.run(go())
    finally:
        svc.stop()
        store.close()
    assert set(server_flags(cyrususer)) == {"message 1", "message 2"}
    assert server_flags(cyrususer, "Archive") == {"message 3": {"\\Seen", "\\Flagged"}}


WRITE = """
import sys
p = sys.argv[1]
text = open(p, encoding="utf-8").read()
head, _, body = text.partition("\\n\\n")
head = head.replace("To: ", "To: carol@example.org").replace("Bcc: ", "Bcc: boss@example.org")
head = head.replace("Subject: ", "Subject: SUBJECT")
open(p, "w", encoding="utf-8").write(head + "\\n\\nWritten in the app.\\n")
"""


def _editor(tmp_path, monkeypatch, subject: str) -> None:
    import sys
    script = tmp_path / "editor.py"
    script.write_text(WRITE.replace("SUBJECT", subject))
    monkeypatch.delenv("VISUAL", raising=False)
    monkeypatch.setenv("EDITOR", f"{sys.executable} {script}")


def test_write_send_and_postpone_from_the_app_on_a_cyrus_jmap_account(tuimail_env, cyrususer, cyrus_sink,
                                                                      tmp_path, monkeypatch):
    """No [smtp] table: m, the editor, y sends over JMAP (the sink gets it, Bcc in the envelope only,
    Cyrus files it in Sent); m, the editor, P postpones it into Drafts on the server."""
    import uuid

    from tuimail.config.load import load_config
    from tuimail.ui.app import TuimailApp
    from tuimail.ui.screens.review import ReviewScreen

    from .test_jmap_backend import jmap_toml
    cfg = load_config(tuimail_env.write_config(jmap_toml(cyrususer, undo_send=0, **{"from": cyrususer.address})))
    fill(cyrususer, 1)
    paths.ensure_private_dir(paths.account_store_path("test").parent)
    store = Store(paths.account_store_path("test"))
    svc = JmapService(cfg, cfg.account("test"))
    app = TuimailApp(cfg, {"test": store}, {"test": svc}, clock=lambda: BASE + 86400, tz=UTC)
    sent_subject, draft_subject = f"sent {uuid.uuid4().hex[:6]}", f"draft {uuid.uuid4().hex[:6]}"

    async def until(cond, pilot, seconds: float = 15.0) -> None:
        for _ in range(int(seconds / 0.05)):
            if cond():
                return
            await pilot.pause(0.05)
        raise AssertionError("timed out")

    async def go():
        async with app.run_test(size=(120, 30)) as pilot:
            await until(lambda: store.folder_id("Drafts") is not None and svc.state.state == "idle", pilot)
            _editor(tmp_path, monkeypatch, sent_subject)
            await pilot.press("m")
            await until(lambda: isinstance(app.screen, ReviewScreen), pilot)
            assert app.screen.session.error == "" and "p postpone" in app.screen.hint_text()
            await pilot.press("y")
            await until(lambda: sent_subject in server_flags(cyrususer, "Sent"), pilot)
            _editor(tmp_path, monkeypatch, draft_subject)
            await pilot.press("m")
            await until(lambda: isinstance(app.screen, ReviewScreen), pilot)
            await pilot.press("p")
            await until(lambda: draft_subject in server_flags(cyrususer, "Drafts"), pilot)

    try:
        asyncio.run(go())
    finally:
        svc.stop()
        store.close()
    [got] = [m for m in cyrus_sink.messages if sent_subject.encode() in m.data]
    assert sorted(got.rcpts) == ["boss@example.org", "carol@example.org"] and b"boss@" not in got.data
    assert server_flags(cyrususer, "Sent") == {sent_subject: {"\\Seen"}}
    assert server_flags(cyrususer, "Drafts") == {draft_subject: {"\\Seen", "\\Draft"}}
