"""The app's POP3 service runs its download in a child process (backends/pop3/process.py), so
that parsing a first download never holds the UI's GIL; on a first run it holds after the first
screenful until the UI has drawn it. Against Dovecot's POP3."""

from __future__ import annotations

import os
import queue
import signal
import time

from tuimail import paths
from tuimail.backends.registry import create_service
from tuimail.config.load import load_config
from tuimail.core.events import RowsChanged, SyncState
from tuimail.store import Store

from .test_pop3_account import fill, pop3_toml


def _next(events: queue.Queue, pred, timeout: float = 30.0):
    deadline = time.monotonic() + timeout
    while True:
        e = events.get(timeout=max(0.01, deadline - time.monotonic()))
        if pred(e):
            return e


def test_the_download_runs_in_a_child_and_holds_for_the_first_paint(tuimail_env, mailuser):
    fill(mailuser, 80)
    config = load_config(tuimail_env.write_config(pop3_toml(mailuser, check_interval=3600)))
    events: queue.Queue = queue.Queue()
    svc = create_service(config, config.account("test"), events.put)
    svc.hold_for_first_paint()
    svc.start()
    try:
        pid = getattr(svc, "pid", None)
        assert pid is not None and pid != os.getpid()
        first = _next(events, lambda e: isinstance(e, RowsChanged) and e.added)
        assert 0 < len(first.added) <= 60  # the first screenful at most (fewer if 0.25 s passed first)
        time.sleep(0.5)  # held: nothing more until the UI says it painted (at most PAINT_HOLD)
        later = []
        while not events.empty():
            later.append(events.get_nowait())
        assert not any(isinstance(e, RowsChanged) and e.added for e in later), later
        svc.ui_painted()
        _next(events, lambda e: isinstance(e, SyncState) and e.state == "idle")
        with Store(paths.account_store_path("test")) as st:
            inbox = st.folder("INBOX")
            assert inbox is not None and inbox.total == 80
        assert svc.state.state == "idle" and svc.login_blocked is None
    finally:
        svc.stop()
    assert svc._link.proc is not None and svc._link.proc.poll() is not None  # the child ended with the service


def test_a_refused_login_is_told_to_the_parent(tuimail_env, mailuser):
    config = load_config(tuimail_env.write_config(pop3_toml(mailuser, password="wrong", check_interval=3600)))
    events: queue.Queue = queue.Queue()
    svc = create_service(config, config.account("test"), events.put)
    svc.start()
    try:
        e = _next(events, lambda e: isinstance(e, SyncState) and e.state == "error")
        assert svc.login_blocked and e.error
        fill(mailuser, 2)
        svc.set_password(mailuser.password)  # typed in the app: the child logs in with it
        _next(events, lambda e: isinstance(e, SyncState) and e.state == "idle")
        assert svc.login_blocked is None
    finally:
        svc.stop()


def test_a_child_that_died_is_reported_and_dollar_starts_another(tuimail_env, mailuser):
    """The same ChildLink as the IMAP sync process (backends/child.py): kill -9 of the child is one
    line in the status bar; `$` starts a new child, which downloads what came meanwhile."""
    fill(mailuser, 3)
    config = load_config(tuimail_env.write_config(pop3_toml(mailuser, check_interval=3600)))
    events: queue.Queue = queue.Queue()
    svc = create_service(config, config.account("test"), events.put)
    svc.start()
    try:
        _next(events, lambda e: isinstance(e, SyncState) and e.state == "idle")
        first = svc.pid
        assert first is not None
        os.kill(first, signal.SIGKILL)
        err = _next(events, lambda e: isinstance(e, SyncState) and e.state == "error")
        assert "sync process ended unexpectedly" in err.error and "\n" not in err.error
        fill(mailuser, 2, start=4)
        svc.request_sync(None)  # `$`
        assert svc.pid not in (None, first)
        _next(events, lambda e: isinstance(e, SyncState) and e.state == "idle")
        with Store(paths.account_store_path("test")) as st:
            inbox = st.folder("INBOX")
            assert inbox is not None and inbox.total == 5
    finally:
        svc.stop()
