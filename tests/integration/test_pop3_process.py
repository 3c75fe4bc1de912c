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


_FIRST_RUN = r"""
import json, os, queue, signal, sys, time
from tuimail.backends.child import ForkedChild, can_fork
from tuimail.backends.registry import create_service
from tuimail.config.load import load_config
from tuimail.core.events import SyncState

config = load_config(sys.argv[1])
events = queue.Queue()
out = {"can_fork": can_fork()}
svc = create_service(config, config.account("test"), events.put)


def wait(state):
    deadline = time.monotonic() + 60
    while True:
        e = events.get(timeout=max(0.01, deadline - time.monotonic()))
        if isinstance(e, SyncState) and e.state == state:
            return e


svc.hold_for_first_paint()
svc.start()  # (run_app's order on a first run: nothing else started, no store opened)
try:
    out["forked"] = isinstance(svc._link.proc, ForkedChild)
    out["child_pid"] = svc.pid
    svc.ui_painted()
    wait("idle")
    from tuimail import paths
    from tuimail.store import Store
    with Store(paths.account_store_path("test")) as st:
        out["first"] = st.folder("INBOX").total
    os.kill(svc.pid, signal.SIGKILL)  # a forked child dies like a spawned one: one line, and `$`
    out["error"] = wait("error").error
    out["can_fork_now"] = can_fork()  # (threads run and a store was opened: the next one is spawned)
    print("READY", flush=True)
    sys.stdin.readline()  # the test adds mail meanwhile
    svc.request_sync(None)
    out["second_forked"] = isinstance(svc._link.proc, ForkedChild)
    wait("idle")
    with Store(paths.account_store_path("test")) as st:
        out["second"] = st.folder("INBOX").total
finally:
    svc.stop()
out["ended"] = svc._link.proc.poll() is not None
print(json.dumps(out), flush=True)
"""


def test_a_first_runs_sync_child_is_a_fork_and_behaves_as_a_spawned_one(tuimail_env, mailuser, tmp_path):
    """run_app starts a first run's sync before opening any store or thread, so the child is a fork
    of the app (backends/child.py: its imports are already done). It downloads into the same store,
    is reported like a spawned child when killed, and `$` then starts a spawned one."""
    import json
    import subprocess
    import sys

    fill(mailuser, 40)
    cfg = tuimail_env.write_config(pop3_toml(mailuser, check_interval=3600))
    script = tmp_path / "first_run.py"
    script.write_text(_FIRST_RUN)
    proc = subprocess.Popen([sys.executable, str(script), str(cfg)], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, cwd=str(tmp_path))
    try:
        assert proc.stdout is not None and proc.stdin is not None
        line = proc.stdout.readline()
        assert line.strip() == "READY", (line, proc.stderr.read() if proc.poll() is not None else "")
        fill(mailuser, 3, start=41)
        proc.stdin.write("\n")
        proc.stdin.flush()
        out, err = proc.communicate(timeout=90)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err
    res = json.loads(out.strip().splitlines()[-1])
    assert res["can_fork"] and res["forked"] and res["child_pid"] != proc.pid
    assert res["first"] == 40
    assert "sync process ended unexpectedly" in res["error"]
    assert not res["can_fork_now"] and not res["second_forked"]
    assert res["second"] == 43 and res["ended"]
