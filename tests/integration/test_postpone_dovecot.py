"""Postpone to Drafts in the app against Dovecot (issue #12 item 6), with the SMTP side an aiosmtpd
sink: p on the review screen stores the message in the account's Drafts folder on the server
(\\Draft \\Seen); it shows in Drafts in the list; resume_draft opens it in $EDITOR again; sending
it removes the old draft (and files the copy in Sent). Offline, the postponed message is kept in
the store and stored in Drafts when the app goes online."""

from __future__ import annotations

import asyncio
import sys
import textwrap
import time
from datetime import UTC

import pytest

from tests.support.smtpserver import free_port
from tuimail import paths
from tuimail.backends.imap.service import ImapService
from tuimail.config.load import parse_config
from tuimail.store import Store
from tuimail.store.postponed import Postponed
from tuimail.ui.app import TuimailApp
from tuimail.ui.screens.review import ReviewScreen

pytest.importorskip("aiosmtpd", reason="aiosmtpd is not installed: pip install -e '.[test]' (the test extra)")

from aiosmtpd.controller import Controller

from tests.integration.test_outbox_servers import Sink

EDITOR = """
    import sys
    p = sys.argv[1]
    text = open(p, encoding="utf-8").read()
    if "Half a thought." in text:  # resumed: finish it
        open(p, "w", encoding="utf-8").write(text.rstrip("\\n") + "\\nNow done.\\n")
    else:
        head, _, body = text.partition("\\n\\n")
        head = head.replace("To: ", "To: carol@example.net").replace("Subject: ", "Subject: Draft idea")
        open(p, "w", encoding="utf-8").write(head + "\\n\\nHalf a thought.\\n")
"""


@pytest.fixture
def aiosink():
    handler = Sink()
    handler.port = free_port()
    controller = Controller(handler, hostname="127.0.0.1", port=handler.port)
    controller.start()
    yield handler
    controller.stop()


async def _until(pilot, cond, timeout: float = 20.0, step: float = 0.05) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return
        await pilot.pause(step)
    raise AssertionError("timed out")


def _folder(user, folder: str) -> list[tuple[bytes, tuple]]:
    with user.client(folder) as c:
        uids = c.search("ALL")
        got = c.fetch(uids, ["BODY.PEEK[]", "FLAGS"]) if uids else {}
    return [(got[u][b"BODY[]"], got[u][b"FLAGS"]) for u in sorted(got)]


def _app(user, tmp_path, monkeypatch, sink_port: int, *, offline: bool = False):
    script = tmp_path / "editor.py"
    script.write_text(textwrap.dedent(EDITOR))
    monkeypatch.delenv("VISUAL", raising=False)
    monkeypatch.setenv("EDITOR", f"{sys.executable} {script}")
    text = (user.config_toml(**{"from": f"Tester <{user.name}@example.org>", "undo_send": 0.5})
            + f'[accounts.test.smtp]\nhost = "127.0.0.1"\nport = {sink_port}\nsecurity = "none"\nusername = ""\n'
            + '[keys]\nresume_draft = "W"\n')
    cfg = parse_config(text, tmp_path / "config.toml")
    acc = cfg.account("test")
    store = Store(paths.account_store_path("test"))
    svc = ImapService(cfg, acc, offline=offline)
    return TuimailApp(cfg, {"test": store}, {"test": svc}, tz=UTC, offline=offline), store


def test_postpone_shows_in_drafts_resume_and_send_replaces_it(mailuser, tuimail_env, tmp_path, monkeypatch,
                                                              aiosink):
    user = mailuser
    user.deliver("INBOX", b"From: a@example.org\r\nTo: me@example.org\r\nSubject: hello\r\n\r\nhi\r\n")
    app, store = _app(user, tmp_path, monkeypatch, aiosink.port)

    async def go():
        async with app.run_test(size=(140, 40)) as pilot:
            await _until(pilot, lambda: app.main.hlist.current_uid is not None)
            await _until(pilot, lambda: store.folder("Drafts") is not None)
            await pilot.press("m")
            await _until(pilot, lambda: isinstance(app.screen, ReviewScreen))
            review = app.screen
            assert "p postpone" in review.hint_text(), review.hint_text()
            await pilot.press("p")
            await _until(pilot, lambda: len(_folder(user, "Drafts")) == 1, step=0.5)
            (raw, flags), = _folder(user, "Drafts")
            assert b"\\Draft" in flags and b"\\Seen" in flags
            assert b"Subject: Draft idea" in raw and b"Half a thought." in raw
            await _until(pilot, lambda: Postponed(store.db).entries() == [])
            # it shows in Drafts in the list
            drafts = store.folder("Drafts")
            app.main.open_folder("test", drafts.id)
            await _until(pilot, lambda: app.main.hlist.current_uid is not None
                         and store.folder("Drafts").total == 1, step=0.2)
            await _until(pilot, lambda: "Draft idea" in _screen(app), step=0.2)
            # resume: the editor again, then send: the old draft goes
            await pilot.press("W")
            await _until(pilot, lambda: isinstance(app.screen, ReviewScreen))
            session = app.screen.session
            assert session.draft.subject == "Draft idea" and "Now done." in session.draft.body
            assert session.draft_ref is not None and session.draft_ref[0] == "Drafts"
            await pilot.press("y")
            await _until(pilot, lambda: len(aiosink.messages) == 1)
            await _until(pilot, lambda: _folder(user, "Drafts") == [], step=0.5)
            await _until(pilot, lambda: len(_folder(user, "Sent")) == 1, step=0.5)

    try:
        asyncio.run(go())
    finally:
        store.close()
    ((_f, rcpts, data),) = aiosink.messages
    assert rcpts == ["carol@example.net"] and b"Half a thought." in data and b"Now done." in data


def _screen(app) -> str:
    from tests.ui.fixtures import screen_text
    return screen_text(app)


def test_postponed_offline_is_kept_and_stored_when_back_online(mailuser, tuimail_env, tmp_path, monkeypatch,
                                                               aiosink, capsys):
    user = mailuser
    # a first sync online, so the store knows the Drafts folder
    from tests.integration.helpers import Cli
    cfg_path = tuimail_env.write_config(user.config_toml())
    Cli(cfg_path, capsys)("sync")
    app, store = _app(user, tmp_path, monkeypatch, aiosink.port, offline=True)

    async def go():
        async with app.run_test(size=(140, 40)) as pilot:
            await pilot.pause()
            await pilot.press("m")
            await _until(pilot, lambda: isinstance(app.screen, ReviewScreen))
            session = app.screen.session
            await pilot.press("p")
            await _until(pilot, lambda: not session.path.exists())
            await pilot.pause(1.0)
            assert len(Postponed(store.db).entries()) == 1 and _folder(user, "Drafts") == []
            await pilot.press("ctrl+o")  # online: the drain stores it
            await _until(pilot, lambda: len(_folder(user, "Drafts")) == 1, step=0.5)
            await _until(pilot, lambda: Postponed(store.db).entries() == [])

    try:
        asyncio.run(go())
    finally:
        store.close()
    ((raw, flags),) = _folder(user, "Drafts")
    assert b"Half a thought." in raw and b"\\Draft" in flags
    assert aiosink.messages == []


def test_imap_service_append_stores_with_the_flags_and_syncs_the_folder(mailuser, tuimail_env, tmp_path):
    cfg = parse_config(mailuser.config_toml(), tmp_path / "config.toml")
    svc = ImapService(cfg, cfg.account("test"))
    try:
        svc.append("Drafts", b"Subject: kept\r\nMessage-ID: <k@x>\r\n\r\nbody\r\n", ("draft", "seen"))
        assert "Drafts" in svc._requests  # the folder is synced next (the list shows it)
    finally:
        svc.stop()
    ((raw, flags),) = _folder(mailuser, "Drafts")
    assert b"Subject: kept" in raw and set(flags) >= {b"\\Draft", b"\\Seen"}


class Killed(Exception):
    pass


def _sender(user, tmp_path, step=None):
    from tuimail.backends.send import Sender
    cfg = parse_config(user.config_toml(**{"from": f"T <{user.name}@example.org>"}), tmp_path / "config.toml")
    return Sender(cfg, cfg.account("test"), **({"step": step} if step else {}))


def _draft(text: str) -> bytes:
    from tuimail.mail.compose import Identity, build_message, new_draft, sent_copy
    return sent_copy(build_message(new_draft(Identity("t@example.org"), "x@example.net", subject="d", body=text)))


def test_postponing_a_resumed_draft_again_replaces_it(mailuser, tuimail_env, tmp_path):
    sender = _sender(mailuser, tmp_path)
    sender.postpone(_draft("first\n"), "Drafts")
    assert len(sender.drain().drafted) == 1
    with mailuser.client("Drafts") as c:
        (uid,) = c.search("ALL")
    sender.postpone(_draft("second\n"), "Drafts", replaces=("Drafts", str(uid)))
    assert len(sender.drain().drafted) == 1
    ((raw, _flags),) = _folder(mailuser, "Drafts")
    assert b"second" in raw and sender.postponed() == []


def test_a_drain_killed_after_the_append_does_not_store_the_draft_twice(mailuser, tuimail_env, tmp_path):
    def step(name: str) -> None:
        if name == "after_draft_append":
            raise Killed

    killed = _sender(mailuser, tmp_path, step)
    killed.postpone(_draft("once\n"), "Drafts")
    with pytest.raises(Killed):
        killed.drain()
    (left,) = killed.postponed()
    assert left.state == "appending"
    report = _sender(mailuser, tmp_path).drain()  # the next run: found in Drafts, not appended again
    assert len(report.drafted) == 1
    assert len(_folder(mailuser, "Drafts")) == 1 and killed.postponed() == []
