"""Issue 11.2, 11.4, 11.5 as the user sees them: the first screen names a sync problem and how to
fix it, a refused login asks for the password (and is not retried on its own), what another
process writes to the store reaches the open list, and new mail in other folders is announced."""

from __future__ import annotations

import re
import socket
import time
from datetime import UTC

from tuimail import paths
from tuimail.config.load import load_config
from tuimail.store.store import Store
from tuimail.core.events import NewMail, SyncState
from tuimail.backends.imap.service import ImapService
from tuimail.ui.controllers.alerts import PasswordScreen
from tuimail.ui.app import TuimailApp
from tuimail.ui.bridge import EventBridge

from .fixtures import NOW, FakeService, header_row, make_config, run, screen_text, settle, wait_until


def real_app(cfg):
    """App + real ImapService on an empty store, wired as run_app does."""
    acc = cfg.account(None)
    paths.ensure_private_dir(paths.account_store_path(acc.name).parent)
    store = Store(paths.account_store_path(acc.name))
    bridge = EventBridge()
    svc = ImapService(cfg, acc, bridge)
    app = TuimailApp(cfg, {acc.name: store}, {acc.name: svc}, event_sink=bridge, clock=lambda: NOW,
                     tz=UTC)
    return app, store, svc


def login_failures(user) -> int:
    text = user.server.log_path.read_text(errors="replace")
    return len(re.findall(rf"auth failed, \d+ attempts? in \d+ secs?\): user=<{re.escape(user.name)}>", text))


def panel_text(app) -> str:
    """What the problem panel shows, as one line of words (empty when it is hidden)."""
    panel = app.main.query_one("#problem")
    if not panel.display:
        return ""
    r = panel.region
    lines = screen_text(app).splitlines()[r.y:r.y + r.height]
    return " ".join(" ".join(line[r.x:r.x + r.width] for line in lines).split())


def test_first_screen_names_a_refused_login_and_asks_for_the_password(tuimail_env, mailuser):
    for i in range(3):
        mailuser.deliver("INBOX", f"From: a@example.org\r\nSubject: hello {i}\r\n\r\nbody\r\n".encode())
    cfg = load_config(tuimail_env.write_config(mailuser.config_toml(password="wrong")))
    app, store, svc = real_app(cfg)

    async def go():
        async with app.run_test(size=(80, 24)) as pilot:
            await wait_until(pilot, lambda: isinstance(app.screen, PasswordScreen), timeout=15)
            # the prompt names the refusal; Esc leaves the first screen naming it and the fix
            assert "refused the login" in app.screen.why
            await pilot.press("escape")
            await pilot.pause()
            text = screen_text(app)
            flat = panel_text(app)
            assert f"127.0.0.1:{mailuser.imap_port} refused the login for '{mailuser.name}'" in flat
            assert "not retried on its own" in flat and "press $" in flat
            assert "refused the login" in text.splitlines()[-1]  # the status bar too
            time.sleep(4)  # the old loop logged in again after 1, 2 and 4 seconds
            await pilot.pause()
            assert login_failures(mailuser) == 1
            assert not isinstance(app.screen, PasswordScreen)
            # `$`: one more try with the configured (wrong) password, then the prompt again
            await pilot.press("$")
            await wait_until(pilot, lambda: isinstance(app.screen, PasswordScreen), timeout=15)
            assert login_failures(mailuser) == 2
            await pilot.press(*mailuser.password)
            assert app.screen.query_one("Input").password  # masked
            await pilot.press("enter")
            await wait_until(pilot, lambda: len(app.main.hlist.uids) == 3, timeout=15)
            text = screen_text(app)
            assert "hello 2" in text and "cannot sync" not in text
            assert "refused" not in text.splitlines()[-1]
            assert login_failures(mailuser) == 2

    try:
        run(go())
    finally:
        svc.stop()
        store.close()


def test_first_screen_names_an_unreachable_host(tuimail_env, mailuser):
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()  # nothing listens there
    cfg = load_config(tuimail_env.write_config(mailuser.config_toml(port=port)))
    app, store, svc = real_app(cfg)

    async def go():
        async with app.run_test(size=(80, 24)) as pilot:
            line = f"cannot reach 127.0.0.1:{port}: Connection refused"
            await wait_until(pilot, lambda: line in panel_text(app), timeout=10)
            flat = panel_text(app)
            assert "check accounts.test.host and port" in flat and "$ retries now" in flat
            assert "No folder open" not in flat
            assert "cannot reach" in screen_text(app).splitlines()[-1]
            assert not isinstance(app.screen, PasswordScreen)  # not a login problem

    try:
        run(go())
    finally:
        svc.stop()
        store.close()


def test_the_panel_leaves_once_the_account_syncs(make_app, tmp_path):
    store = Store(tmp_path / "empty.sqlite3")
    app = TuimailApp(make_config(), {"test": store}, {"test": FakeService()}, clock=lambda: NOW, tz=UTC)

    async def go():
        async with app.run_test(size=(80, 24)) as pilot:
            app.event_sink(SyncState("test", "offline", error="cannot reach h:1: timed out\x1b[2J"))
            await wait_until(pilot, lambda: "cannot sync" in screen_text(app))
            assert "\x1b" not in screen_text(app)
            app.event_sink(SyncState("test", "connecting"))  # a retry keeps the problem shown
            await pilot.pause()
            assert "cannot sync" in screen_text(app)
            app.event_sink(SyncState("test", "syncing", folder="INBOX"))
            await wait_until(pilot, lambda: "cannot sync" not in screen_text(app))
            assert "No folder open" in screen_text(app)

    run(go())
    store.close()


def test_writes_by_another_process_reach_the_open_list(make_app):
    app, store, svc = make_app(20)
    fid = store.folder_id("INBOX")

    async def go():
        async with app.run_test(size=(120, 30)) as pilot:
            await settle(pilot, app)
            assert app.main.folder.total == 20
            # a `tuimail sync` from cron: its own connection, new rows and a flag change
            with Store(store.path) as other:
                other.insert_headers(fid, [header_row(101, date=NOW + 60, subject="Fresh from cron", flags="")])
                other.apply_server_flags(fid, [("2", {"flagged", "seen"}, "", None)])
            t0 = time.monotonic()
            await wait_until(pilot, lambda: "Fresh from cron" in screen_text(app), timeout=5)
            assert time.monotonic() - t0 < 3
            await wait_until(pilot, lambda: app.main.folder.total == 21, timeout=5)
            assert "21 msgs" in screen_text(app).splitlines()[-1]
            assert "flagged" in app.main.hlist._rows[2].flags or "flagged" in store.row(fid, 2).flags
            row2 = app.main.hlist._rows.get(2) or store.row(fid, 2)
            assert "flagged" in row2.flags

    run(go())


def test_new_mail_in_another_folder_is_announced(make_app):
    app, store, svc = make_app(10, config=make_config(bell_on_new_mail=True))
    rung = []

    async def go():
        async with app.run_test(size=(100, 30)) as pilot:
            await settle(pilot, app)
            app.bell = lambda: rung.append(1)
            app.event_sink(NewMail("test", "Archive", 2))
            app.event_sink(NewMail("test", "Evil\x1b]2;pwned\x07", 1))
            await wait_until(pilot, lambda: "new mail in Archive" in screen_text(app).splitlines()[-1])
            bar = screen_text(app).splitlines()[-1]
            assert "Evil" in bar and "\x1b" not in bar and "\x07" not in bar
            assert rung == [1, 1]
            # the open folder: the list shows it, the bar does not name it
            app.event_sink(NewMail("test", "INBOX", 1))
            await pilot.pause()
            assert "INBOX" not in screen_text(app).splitlines()[-1].split("new mail in")[1]
            # opening the folder clears its notice
            app.main.open_folder("test", store.folder_id("Archive"))
            await pilot.pause()
            bar = screen_text(app).splitlines()[-1]
            assert "new mail in" in bar and "Archive" not in bar.split("new mail in")[1]

    run(go())


def test_new_mail_from_another_client_reaches_the_status_bar(tuimail_env, mailuser):
    """End to end on Dovecot: another client delivers into Work while the app idles on INBOX."""
    mailuser.deliver("INBOX", b"From: a@example.org\r\nSubject: first\r\n\r\nbody\r\n")
    mailuser.create_folder("Work")
    cfg = load_config(tuimail_env.write_config(mailuser.config_toml(check_interval=2)))
    app, store, svc = real_app(cfg)

    async def go():
        async with app.run_test(size=(100, 30)) as pilot:
            await wait_until(pilot, lambda: svc.state.state == "idle", timeout=15)  # Work filled once
            mailuser.append("Work", b"From: b@example.org\r\nSubject: for work\r\n\r\nbody\r\n")
            t0 = time.monotonic()
            await wait_until(pilot, lambda: "new mail in Work" in screen_text(app).splitlines()[-1], timeout=10)
            assert time.monotonic() - t0 < 6
            await wait_until(pilot, lambda: "Work 1" in screen_text(app), timeout=5)  # the tree's count

    try:
        run(go())
    finally:
        svc.stop()
        store.close()


def test_no_password_configured_asks_and_can_save_it(tuimail_env, mailuser):
    mailuser.deliver("INBOX", b"From: a@example.org\r\nSubject: welcome\r\n\r\nbody\r\n")
    path = tuimail_env.write_config(mailuser.config_toml(password=None))
    cfg = load_config(path)
    app, store, svc = real_app(cfg)

    async def go():
        async with app.run_test(size=(100, 30)) as pilot:
            await wait_until(pilot, lambda: isinstance(app.screen, PasswordScreen), timeout=15)
            assert "no password configured" in app.screen.why
            await pilot.press(*mailuser.password)
            await pilot.press("tab", "space", "shift+tab", "enter")
            await wait_until(pilot, lambda: "welcome" in screen_text(app), timeout=15)
            assert login_failures(mailuser) == 0

    try:
        run(go())
    finally:
        svc.stop()
        store.close()
    assert load_config(path).account("test").password == mailuser.password
    assert path.stat().st_mode & 0o777 == 0o600
