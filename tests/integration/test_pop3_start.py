"""How a POP3 account's first sync starts in the app (backends/pop3/service.py): the login runs in
a thread of its own beside the store's opening, and in the app's sync process the bodies wait for
the app's first screen once every header is in. The login against our fake server (it counts the
commands), the rest against Dovecot."""

from __future__ import annotations

import queue
import time

from tuimail import paths
from tuimail.backends.pop3.service import Pop3Service
from tuimail.backends.registry import create_service
from tuimail.config.load import load_config
from tuimail.core.events import RowsChanged, SyncState
from tuimail.store import Store
from tests.support.pop3fake import FakePop3

from .test_pop3_account import fill, pop3_toml
from .test_pop3_process import _next


def _msg(i: int) -> bytes:
    return (f"From: a{i}@example.org\r\nTo: b@example.org\r\nSubject: message {i}\r\n"
            f"Message-ID: <m{i}@example.org>\r\nDate: Mon, 1 Jan 2024 10:00:{i % 60:02d} +0000\r\n\r\nbody {i}\r\n"
            ).encode()


def _fake_toml(srv: FakePop3, password: str) -> str:
    return (f'[accounts.test]\nkind = "pop3"\nhost = "127.0.0.1"\nport = {srv.port}\nsecurity = "none"\n'
            f'username = "alice"\npassword = "{password}"\ncheck_interval = 3600\n')


def _in_process(tuimail_env, srv: FakePop3, password: str, events: queue.Queue) -> Pop3Service:
    config = load_config(tuimail_env.write_config(_fake_toml(srv, password)))
    svc = Pop3Service(config, config.account("test"), events.put)
    svc.store_path = paths.account_store_path("test")
    return svc


def test_the_first_sync_uses_the_early_login_and_logs_in_once(tuimail_env):
    with FakePop3([_msg(i) for i in range(1, 6)]) as srv:
        events: queue.Queue = queue.Queue()
        svc = _in_process(tuimail_env, srv, "secret", events)
        svc.start()
        try:
            _next(events, lambda e: isinstance(e, SyncState) and e.state == "idle")
            with Store(svc.store_path) as st:
                inbox = st.folder("INBOX")
                assert inbox is not None and inbox.total == 5
        finally:
            svc.stop()
        assert srv.sessions == 1  # the early session is the sync's, not one more
        assert sum(line.startswith((b"PASS", b"AUTH")) for line in srv.received) == 1


def test_a_refused_password_is_sent_once_and_waits_for_the_user(tuimail_env):
    with FakePop3([_msg(1)]) as srv:
        events: queue.Queue = queue.Queue()
        svc = _in_process(tuimail_env, srv, "wrong", events)
        svc.start()
        try:
            err = _next(events, lambda e: isinstance(e, SyncState) and e.state == "error")
            assert "refused the login" in err.error and "accounts.test" in err.error and "\n" not in err.error
            time.sleep(0.5)  # no second try of its own: servers lock accounts after a few
            assert sum(line.startswith((b"PASS", b"AUTH")) for line in srv.received) == 1
            assert svc.login_blocked
        finally:
            svc.stop()


def test_stopping_during_the_early_login_leaves_no_session(tuimail_env):
    with FakePop3([_msg(1)], trickle=0.05) as srv:  # a greeting that takes seconds to arrive
        events: queue.Queue = queue.Queue()
        svc = _in_process(tuimail_env, srv, "secret", events)
        svc.start()
        time.sleep(0.2)
        t0 = time.monotonic()
        svc.stop()
        assert time.monotonic() - t0 < 3
        assert svc._early is None and svc._session is None
        assert not any(line.startswith((b"DELE", b"QUIT")) for line in srv.received)


def test_in_the_apps_process_the_bodies_wait_for_the_first_screen(tuimail_env, mailuser):
    fill(mailuser, 40)
    config = load_config(tuimail_env.write_config(pop3_toml(mailuser, check_interval=3600, headers_first=True)))
    events: queue.Queue = queue.Queue()
    svc = create_service(config, config.account("test"), events.put)  # (no hold: 2 CPUs or more)
    svc.start()
    try:
        deadline = time.monotonic() + 30
        while True:  # every header is in
            with Store(paths.account_store_path("test")) as st:
                inbox = st.folder("INBOX")
                if inbox is not None and inbox.total == 40:
                    break
            assert time.monotonic() < deadline
            time.sleep(0.02)
        time.sleep(0.5)  # no body until the app says it drew its first screen (at most PAINT_HOLD)
        with Store(paths.account_store_path("test")) as st:
            assert st.db.execute("SELECT count(*) FROM pop3_ledger WHERE has_body").fetchone()[0] == 0
        assert not [e for e in _drain(events) if isinstance(e, RowsChanged) and e.ids]
        svc.ui_painted()
        _next(events, lambda e: isinstance(e, SyncState) and e.state == "idle")
        with Store(paths.account_store_path("test")) as st:
            assert st.db.execute("SELECT count(*) FROM pop3_ledger WHERE has_body").fetchone()[0] == 40
    finally:
        svc.stop()


def test_tuimail_sync_does_not_wait_for_a_screen(tuimail_env, mailuser):
    fill(mailuser, 10)
    config = load_config(tuimail_env.write_config(pop3_toml(mailuser, headers_first=True)))
    svc = Pop3Service(config, config.account("test"))
    svc.store_path = paths.account_store_path("test")
    t0 = time.monotonic()
    svc.sync_now()
    assert time.monotonic() - t0 < 1.5  # (PAINT_HOLD is 2 s)
    with Store(svc.store_path) as st:
        assert st.db.execute("SELECT count(*) FROM pop3_ledger WHERE has_body").fetchone()[0] == 10


def _drain(events: queue.Queue) -> list:
    out = []
    while not events.empty():
        out.append(events.get_nowait())
    return out
