"""Issue 11.2 and 11.5 on real Dovecot: a refused login waits for the user (no retry loop that locks
accounts), no password configured, a TLS handshake on a plain port, and other folders checked every
`check_interval` seconds with a NewMail event."""

from __future__ import annotations

import re
import time

from tuimail.config.load import load_config
from tuimail.store import Store
from tuimail.core.events import FoldersChanged, NewMail, SyncState
from tuimail.backends.imap.service import ImapService

from .helpers import Cli, msg
from .test_service import Events, idle_state


def login_failures(user) -> int:
    """Refused logins of `user` in Dovecot's log."""
    text = user.server.log_path.read_text(errors="replace")
    return len(re.findall(rf"auth failed, \d+ attempts? in \d+ secs?\): user=<{re.escape(user.name)}>", text))


def logins(user) -> int:
    text = user.server.log_path.read_text(errors="replace")
    return len(re.findall(rf"imap-login: (?:Info: )?Login: user=<{re.escape(user.name)}>", text))


def make_service(tuimail_env, user, **overrides):
    cfg = load_config(tuimail_env.write_config(user.config_toml(**overrides)))
    ev = Events()
    return ImapService(cfg, cfg.account(None), ev), ev


def wait_for(pred, timeout=10.0, what="condition"):
    deadline = time.monotonic() + timeout
    while not pred():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def test_a_refused_login_waits_for_the_user(tuimail_env, mailuser):
    mailuser.deliver("INBOX", msg(1))
    svc, ev = make_service(tuimail_env, mailuser, password="wrong")
    svc.start()
    try:
        err = ev.wait(lambda e: isinstance(e, SyncState) and e.needs == "login")
        assert err.state == "error"
        assert f"127.0.0.1:{mailuser.imap_port} refused the login for '{mailuser.name}'" in err.error
        assert "check accounts.test.username and password" in err.error
        wait_for(lambda: login_failures(mailuser) >= 1, what="the failure in Dovecot's log")
        # Before the fix: 5 attempts in 15 s (backoff 1, 2, 4, 8 s), then one a minute.
        time.sleep(8)
        svc.wake()  # a user intent (a flag change) wakes the worker: not a reason to log in again
        with svc._fetch_lock:  # nor is opening a message (the on-demand lane)
            assert svc._reader().conn is None
        time.sleep(1)
        assert login_failures(mailuser) == 1
        assert svc.login_blocked
        # `$` retries once (still wrong), then it waits again
        svc.request_sync(None)
        wait_for(lambda: login_failures(mailuser) >= 2, what="the retry after $")
        time.sleep(3)
        assert login_failures(mailuser) == 2
        # a typed password logs in and syncs
        ev.seen.clear()
        svc.set_password(mailuser.password)
        ev.wait(idle_state)
        assert svc.login_blocked is None
        with Store(svc.store_path) as st:
            assert st.message_count(st.folder_id("INBOX")) == 1
    finally:
        svc.stop()


def test_no_password_configured_asks_and_never_connects(tuimail_env, mailuser, capsys):
    mailuser.deliver("INBOX", msg(1))
    svc, ev = make_service(tuimail_env, mailuser, password=None)
    svc.start()
    try:
        err = ev.wait(lambda e: isinstance(e, SyncState) and e.needs == "password")
        assert "no password configured: set password, password_command or oauth2_token_command" in err.error
        time.sleep(3)
        assert login_failures(mailuser) == 0 and logins(mailuser) == 0
        svc.set_password(mailuser.password)
        ev.wait(idle_state)
        assert logins(mailuser) >= 1 and login_failures(mailuser) == 0
    finally:
        svc.stop()
    # the CLI cannot ask: one line naming the keys, exit 2
    cli = Cli(tuimail_env.config_path, capsys)
    cli("sync", expect=2)
    err = cli.last_err.strip()
    assert "\n" not in err
    assert err.startswith("tuimail: accounts.test: no password configured: set password, password_command or "
                          "oauth2_token_command")


def test_tls_on_a_plain_port_says_so(tuimail_env, mailuser, capsys):
    cli = Cli(tuimail_env.write_config(mailuser.config_toml(security="tls")), capsys)
    cli("sync", expect=3)
    err = cli.last_err.strip()
    assert "\n" not in err
    assert f"TLS with 127.0.0.1:{mailuser.imap_port} failed: the server answered in plain text" in err
    assert 'plain port? try accounts.test.security = "starttls"' in err


def test_unreachable_host_names_what_to_check(tuimail_env, mailuser, capsys, proxy_factory):
    proxy = proxy_factory(mailuser)
    port = proxy.port
    proxy.close()
    cli = Cli(tuimail_env.write_config(mailuser.config_toml(port=port)), capsys)
    cli("sync", expect=3)
    assert cli.last_err.strip() == (f"tuimail: cannot reach 127.0.0.1:{port}: Connection refused "
                                    "(check accounts.test.host and port, and the network)")


def test_other_folders_are_checked_every_check_interval(tuimail_env, mailuser):
    mailuser.deliver("INBOX", msg(1))
    mailuser.create_folder("Work")
    mailuser.deliver("Work", msg(2))
    svc, ev = make_service(tuimail_env, mailuser, check_interval=2)
    svc.start()
    try:
        ev.wait(idle_state)
        time.sleep(0.3)  # IDLE on INBOX
        first = [e for e in ev.seen if isinstance(e, NewMail)]
        assert first == []  # a first fill is not new mail
        t0 = time.monotonic()
        mailuser.append("Work", msg(3))
        mailuser.append("Work", msg(4), flags=[b"\\Seen"])
        got = ev.wait(lambda e: isinstance(e, NewMail) and e.folder == "Work", timeout=10)
        seconds = time.monotonic() - t0
        assert got.count == 1  # the unseen one
        assert seconds < 5, seconds
        with Store(svc.store_path) as st:
            assert st.message_count(st.folder_id("Work")) == 3
        # a folder made by another client appears at the next check
        mailuser.create_folder("Projects")
        mailuser.append("Projects", msg(5))
        t0 = time.monotonic()
        ev.wait(lambda e: isinstance(e, FoldersChanged) and _has_folder(svc, "Projects"), timeout=10)
        assert time.monotonic() - t0 < 5
    finally:
        svc.stop()


def _has_folder(svc, name: str) -> bool:
    with Store(svc.store_path) as st:
        return st.folder_id(name) is not None


def test_plain_text_on_a_tls_port_says_so(tuimail_env, dovecot_factory):
    from tuimail.errors import NetworkError
    from tuimail.backends.imap.service import open_connection
    server = dovecot_factory(tls=True)
    user = server.add_user()
    cfg = load_config(tuimail_env.write_config(user.config_toml(port=server.imaps_port, security="none")))
    t0 = time.monotonic()
    try:
        open_connection(cfg.account(None), timeout=1.0)
    except NetworkError as exc:
        msg = str(exc)
    else:
        raise AssertionError("connected?")
    assert time.monotonic() - t0 < 5
    assert msg == (f"127.0.0.1:{server.imaps_port} accepted the connection"
                   " but sent no IMAP greeting within 1 s (timeout)"
                   ' (a TLS port? try accounts.test.security = "tls")')
