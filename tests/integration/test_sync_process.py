"""SyncProcess (the app's sync service, backends/imap/process.py) on real Dovecot: the sync loop runs
in a child process; the service's behaviour seen from the app is the in-process ImapService's.

The black-box tests of the in-process service run again here against the process (a `service_for`
fixture of this module's makes SyncProcess): IDLE, the instant wake (one command on the wire, at
once), reconnecting with the offline queue drained, the on-demand lane beside a long sync. Then
what only a process has: it is another pid, a typed password reaches it, stop() leaves no child
and loses no journal entry, a child that died is reported in one line and `$` starts a new one.
"""

from __future__ import annotations

import os
import signal
import time

import pytest

from tuimail.backends.imap.process import SyncProcess
from tuimail.config.load import load_config
from tuimail.core.events import RowsChanged, SyncState
from tuimail.store import Store

from .helpers import msg
from .test_action_on_wire import (  # noqa: F401  (run again here, on the process)
    on_wire,
    test_a_flag_key_costs_one_store_at_once,
    test_a_move_and_a_delete_cost_their_command_alone,
)
from .test_login_and_new_mail import login_failures, wait_for
from .test_service import (  # noqa: F401  (run again here, on the process)
    Events,
    idle_state,
    imapuser,
    test_idle_brings_a_flag_change_and_new_mail,
    test_reconnects_after_the_connection_drops_and_offline_queue_drains,
    test_user_intent_is_pushed_when_woken,
)


@pytest.fixture
def service_for(tuimail_env):
    made = []

    def make(user, **overrides):
        cfg = load_config(tuimail_env.write_config(user.config_toml(**overrides)))
        ev = Events()
        svc = SyncProcess(cfg, cfg.account(None), ev)
        made.append(svc)
        return svc, ev

    yield make
    for s in made:
        s.stop()


def test_the_sync_runs_in_another_process_and_stop_leaves_none(mailuser, service_for):
    for i in range(20):
        mailuser.deliver("INBOX", msg(i))
    svc, ev = service_for(mailuser)
    svc.start()
    ev.wait(idle_state)
    assert svc.pid is not None and svc.pid != os.getpid()
    assert svc.state.state == "idle"  # (the parent's copy of the state, from the events)
    with Store(svc.store_path) as st:
        assert st.message_count(st.folder_id("INBOX")) == 20
    proc = svc._link.proc
    t0 = time.monotonic()
    svc.stop()
    assert time.monotonic() - t0 < 3, "stop() waited for IDLE's timeout"
    assert proc.poll() is not None


def test_an_intent_written_just_before_stop_is_on_the_server_after_the_next_start(mailuser, service_for):
    """A flag change stored (the journal) and the service stopped at once: the entry is kept and
    the next service (the next start of the app) sends it."""
    for i in range(5):
        mailuser.deliver("INBOX", msg(i))
    svc, ev = service_for(mailuser)
    svc.start()
    ev.wait(idle_state)
    with Store(svc.store_path) as st:
        st.set_flags(st.folder_id("INBOX"), [4], add=["\\Flagged"])
    svc.wake()
    svc.stop()
    svc2, ev2 = service_for(mailuser)
    svc2.start()
    ev2.wait(lambda e: idle_state(e) and e.pending == 0)
    with mailuser.client("INBOX") as other:
        assert b"\\Flagged" in other.get_flags([4])[4]
    with Store(svc2.store_path) as st:
        assert st.pending() == []


def test_a_refused_login_waits_and_a_typed_password_reaches_the_process(tuimail_env, mailuser, service_for):
    mailuser.deliver("INBOX", msg(1))
    svc, ev = service_for(mailuser, password="wrong")
    svc.start()
    err = ev.wait(lambda e: isinstance(e, SyncState) and e.needs == "login")
    assert err.state == "error" and "refused the login" in err.error
    wait_for(lambda: svc.login_blocked is not None, what="the refusal told to the parent")
    with svc._fetch_lock:  # the on-demand lane here does not try a login of its own
        assert svc._reader().conn is None
    time.sleep(2)
    assert login_failures(mailuser) == 1
    ev.seen.clear()
    svc.set_password(mailuser.password)
    ev.wait(idle_state)
    wait_for(lambda: svc.login_blocked is None, what="the login told to the parent")
    assert "hello" in svc.open_message("INBOX", 1).text  # the fetch lane logs in with it too


def test_offline_and_back_online(mailuser, service_for):
    for i in range(3):
        mailuser.deliver("INBOX", msg(i))
    svc, ev = service_for(mailuser)
    svc.start()
    ev.wait(idle_state)
    svc.set_offline(True)
    assert svc.state.state == "offline" and svc.offline
    with Store(svc.store_path) as st:
        st.set_flags(st.folder_id("INBOX"), [2], add=["\\Flagged"])
    svc.wake()
    time.sleep(0.5)
    with mailuser.client("INBOX") as other:
        assert b"\\Flagged" not in other.get_flags([2])[2], "sent while offline"
    ev.seen.clear()
    svc.set_offline(False)
    ev.wait(lambda e: idle_state(e) and e.pending == 0)
    with mailuser.client("INBOX") as other:
        assert b"\\Flagged" in other.get_flags([2])[2]


def test_a_sync_process_that_died_is_reported_and_dollar_starts_another(mailuser, service_for):
    for i in range(3):
        mailuser.deliver("INBOX", msg(i))
    svc, ev = service_for(mailuser)
    svc.start()
    ev.wait(idle_state)
    os.kill(svc.pid, signal.SIGKILL)
    err = ev.wait(lambda e: isinstance(e, SyncState) and e.state == "error")
    assert "sync process ended unexpectedly" in err.error and "\n" not in err.error
    ev.seen.clear()
    svc.request_sync(None)  # `$`
    ev.wait(idle_state)
    mailuser.append("INBOX", msg(50))
    ev.wait(lambda e: isinstance(e, RowsChanged) and 4 in e.added)  # IDLE again, in the new process
