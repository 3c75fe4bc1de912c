"""The worker service: threads, IDLE, reconnect, the on-demand fetcher and the account lock."""

from __future__ import annotations

import queue
import threading
import time

import pytest

from tuimail import paths
from tuimail.config.load import load_config
from tuimail.errors import NotCached
from tuimail.store import Store
from tuimail.core.events import RowsChanged, SyncState
from tuimail.backends.lock import AccountLock, Busy
from tuimail.backends.imap.service import ImapService

from tests.support.cyrus import IMAP_SERVERS, imap_user

from .helpers import Cli, msg


class Events:
    def __init__(self):
        self.q: queue.Queue = queue.Queue()
        self.seen: list = []

    def __call__(self, e):
        self.q.put(e)

    def wait(self, pred, timeout=15.0):
        deadline = time.monotonic() + timeout
        for e in self.seen:
            if pred(e):
                return e
        while time.monotonic() < deadline:
            try:
                e = self.q.get(timeout=max(0.01, deadline - time.monotonic()))
            except queue.Empty:
                break
            self.seen.append(e)
            if pred(e):
                return e
        raise AssertionError(f"event not seen; last states: {[e for e in self.seen if isinstance(e, SyncState)][-3:]}")


@pytest.fixture
def service_for(tuimail_env):
    made = []

    def make(user, **overrides):
        cfg = load_config(tuimail_env.write_config(user.config_toml(**overrides)))
        ev = Events()
        svc = ImapService(cfg, cfg.account(None), ev)
        made.append(svc)
        return svc, ev

    yield make
    for s in made:
        s.stop()


def idle_state(e):
    return isinstance(e, SyncState) and e.state == "idle"


@pytest.fixture(params=IMAP_SERVERS)
def imapuser(request):
    """A fresh user on each real IMAP server (Cyrus runs idled: its IDLE answers at once)."""
    return imap_user(request)


def test_idle_brings_a_flag_change_and_new_mail(imapuser, service_for):
    for i in range(10):
        imapuser.deliver("INBOX", msg(i))
    svc, ev = service_for(imapuser)
    svc.start()
    ev.wait(idle_state)
    time.sleep(0.3)  # let the worker enter IDLE
    t0 = time.monotonic()
    with imapuser.client("INBOX") as other:
        other.add_flags([3], [b"\\Flagged"])
    ev.wait(lambda e: isinstance(e, RowsChanged) and 3 in e.ids)
    latency = time.monotonic() - t0
    with Store(svc.store_path) as st:
        assert st.row(st.folder_id("INBOX"), 3).flagged
    imapuser.append("INBOX", msg(50))
    ev.wait(lambda e: isinstance(e, RowsChanged) and 11 in e.added)
    assert latency < 5, latency


def test_user_intent_is_pushed_when_woken(imapuser, service_for):
    for i in range(5):
        imapuser.deliver("INBOX", msg(i))
    svc, ev = service_for(imapuser)
    svc.start()
    ev.wait(idle_state)
    with Store(svc.store_path) as st:
        fid = st.folder_id("INBOX")
        st.set_flags(fid, [2], add=["flagged"])
    svc.wake()
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        with imapuser.client("INBOX") as other:
            if b"\\Flagged" in other.get_flags([2])[2]:
                break
        time.sleep(0.1)
    else:
        raise AssertionError("flag never reached the server")
    with Store(svc.store_path) as st:
        assert st.pending() == []


def test_reconnects_after_the_connection_drops_and_offline_queue_drains(mailuser, service_for, proxy_factory,
                                                                       monkeypatch):
    for i in range(5):
        mailuser.deliver("INBOX", msg(i))
    proxy = proxy_factory(mailuser)
    svc, ev = service_for(mailuser, port=proxy.port)
    svc.start()
    ev.wait(idle_state)
    proxy.refuse_new(True)
    proxy.cut_now()
    ev.wait(lambda e: isinstance(e, SyncState) and e.state == "offline" and e.error)
    with Store(svc.store_path) as st:  # the user keeps working while offline
        st.set_flags(st.folder_id("INBOX"), [1], add=["flagged"])
    svc.wake()
    proxy.refuse_new(False)
    ev.seen.clear()
    ev.wait(idle_state, timeout=30)
    with mailuser.client("INBOX") as other:
        assert b"\\Flagged" in other.get_flags([1])[1]


def test_opening_a_message_does_not_wait_behind_a_long_header_sync(mailuser, service_for, proxy_factory):
    mailuser.deliver_many("INBOX", ((msg(i), "S") for i in range(3000)))
    mailuser.deliver("Archive", msg(9999, body="the archived text\r\n"))
    Cli  # noqa: B018 (helpers imported for side-effect free use elsewhere)
    svc, ev = service_for(mailuser)
    # a first sync of Archive only, so the message is known to the store
    from tuimail.cli.main import main
    assert main(["--config", str(svc.config.path), "sync", "Archive"]) == 0
    proxy = proxy_factory(mailuser)
    svc.account = svc.account.__class__(**{**svc.account.__dict__, "port": proxy.port})
    svc.start()
    # stall the sync connection (the first one through the proxy) in the middle of INBOX
    ev.wait(lambda e: isinstance(e, RowsChanged) and e.added)
    proxy.stall()
    t0 = time.monotonic()
    got: dict = {}

    def open_it():
        svc.account = svc.account.__class__(**{**svc.account.__dict__, "port": mailuser.imap_port})
        svc._fetch_conn = None
        got["content"] = svc.open_message("Archive", 1)

    th = threading.Thread(target=open_it)
    th.start()
    th.join(10)
    assert "content" in got, "open_message waited behind the stalled sync"
    assert "the archived text" in got["content"].text
    assert time.monotonic() - t0 < 5
    proxy.resume()


def test_offline_open_of_uncached_message_says_so(mailuser, service_for):
    mailuser.deliver("INBOX", msg(1))
    svc, ev = service_for(mailuser)
    from tuimail.cli.main import main
    assert main(["--config", str(svc.config.path), "sync"]) == 0
    svc.set_offline(True)
    with pytest.raises(NotCached):
        svc.open_message("INBOX", 1)
    svc.set_offline(False)
    assert "hello" in svc.open_message("INBOX", 1).text
    svc.set_offline(True)
    assert "hello" in svc.open_message("INBOX", 1).text  # now from the cache


def test_account_lock_excludes_a_second_syncer(tuimail_env):
    p = paths.lock_path("x")
    a, b = AccountLock(p), AccountLock(p)
    a.acquire()
    with pytest.raises(Busy):
        b.acquire(timeout=0.3)
    a.release()
    b.acquire(timeout=1)
    b.release()


def test_cli_sync_waits_for_the_lock_then_fails_cleanly(tuimail_env, mailuser, capsys, monkeypatch):
    cli = Cli(tuimail_env.write_config(mailuser.config_toml()), capsys)
    lock = AccountLock(paths.lock_path("test"))
    lock.acquire()
    import tuimail.backends.lock as lockmod
    real = lockmod.AccountLock.acquire
    monkeypatch.setattr(lockmod.AccountLock, "acquire", lambda self, timeout=60.0: real(self, timeout=0.5))
    try:
        cli("sync", expect=1)
        assert "another tuimail is syncing" in cli.last_err
    finally:
        lock.release()
    cli("sync")


def test_a_first_run_holds_its_next_windows_until_the_ui_has_painted(mailuser, service_for, monkeypatch):
    """Started before the UI (run_app on an empty store), the sync commits the first screen's
    window, then waits for ui_painted() before parsing more on the UI's GIL; stop() ends the wait."""
    from tuimail.backends.imap import engine as engine_mod
    from tuimail.backends.imap import service as service_mod

    monkeypatch.setattr(engine_mod, "FIRST_WINDOW", 10)
    monkeypatch.setattr(service_mod, "PAINT_HOLD", 60.0)
    mailuser.deliver_many("INBOX", ((msg(i), "") for i in range(50)))

    def rows() -> int:
        with Store(paths.account_store_path("test")) as st:
            fid = st.folder_id("INBOX")
            return 0 if fid is None else st.message_count(fid)

    svc, ev = service_for(mailuser)
    svc.hold_for_first_paint()
    svc.start()
    ev.wait(lambda e: isinstance(e, RowsChanged) and len(e.added) == 10)
    time.sleep(0.5)
    assert rows() == 10, "held after the first window"
    svc.ui_painted()
    ev.wait(idle_state)
    assert rows() == 50

    svc.stop()  # (before the reset: a running service could refill the folder meanwhile)
    with Store(paths.account_store_path("test")) as st:
        st.reset_folder(st.folder_id("INBOX"), None)  # empty again: a first run once more
    svc2, ev2 = service_for(mailuser)
    svc2.hold_for_first_paint()
    svc2.start()
    ev2.wait(lambda e: isinstance(e, RowsChanged) and len(e.added) == 10)
    t0 = time.monotonic()
    svc2.stop()
    assert time.monotonic() - t0 < 2.0, "stop() does not wait out the hold"


def test_a_dead_fetch_connection_is_replaced_once_without_an_error(mailuser, service_for, proxy_factory):
    """issue 11.7: after a server restart the first message opened showed "Server shutting down":
    the kept fetch connection was dead. Now the fetch reconnects once, quietly."""
    for i in (1, 2, 3):
        mailuser.deliver("INBOX", msg(i))
    proxy = proxy_factory(mailuser)
    svc, ev = service_for(mailuser, port=proxy.port)
    from tuimail.cli.main import main
    assert main(["--config", str(svc.config.path), "sync"]) == 0
    assert "hello" in svc.open_message("INBOX", 1).text  # the fetch connection is now open
    assert proxy.cut_now() >= 1  # the server goes away under the idle connection
    assert "hello" in svc.open_message("INBOX", 2).text
    # a server that is really gone is still reported (one retry, not a loop)
    proxy.cut_now()
    proxy.refuse_new(True)
    with pytest.raises(NotCached):
        svc.open_message("INBOX", 3)
