"""The sync side in a process of its own (DESIGN.md §1): SyncProcess is the ImapService the TUI runs.

Measured (tests/bench, `probes stall`, 100k cold fill): with the sync in a thread, the UI thread's
repaints took 2-5x their own CPU time in wall time — the sync thread parsing headers held the GIL —
and the event loop was late by up to ~100 ms. Here the sync thread (journal replay, resync, new
headers, IDLE) runs in a child process (a fresh interpreter, as multiprocessing's spawn makes
one), writing the same SQLite file (WAL: one writer, many readers; the account lock still keeps
one syncer per account).

    parent (the app)                        child (child_main)
    SyncProcess ── commands, a socket  ──▶ a reader thread ──▶ ImapService (its sync thread)
                ◀── events, the socket ── on_event ◀──────────┘
    a reader thread ──▶ on_event (the EventBridge), `state`, the login outcome
    wake() ── one byte into the pipe the child's IDLE wait selects on (no hop through a thread)

The child is the in-process ImapService itself: every behaviour of the sync loop (account lock,
journal replay, the instant wake, IDLE, error states, offline, waiting for a typed password) is
the same code. On-demand fetches (open_message, fetch_part ...) stay in the parent, on the fetch
lane ImapService already has: they are user-driven and short, and their results are needed here.

Nothing is lost on stop: intents are in the store (the journal) before the child is told
anything; a child stopped — or killed — mid-transaction leaves the last committed state, and an
action it had sent but not yet marked done is replayed by the next sync (STORE is idempotent).
`tuimail sync` (headless, no UI to keep smooth) keeps running the sync in-process.
"""

from __future__ import annotations

import logging
import os
import select
import signal
import subprocess
import sys
import threading
from collections.abc import Callable
from multiprocessing.connection import Connection

from tuimail.backends.child import serve_commands, spawn, stop_child
from tuimail.backends.imap.service import ImapService
from tuimail.backends.waker import Waker
from tuimail.config.load import Account, Config
from tuimail.core.events import Event

log = logging.getLogger("tuimail.sync")

class SyncProcess(ImapService):
    """ImapService's interface with the sync loop in a child process (see the module doc)."""

    def __init__(self, config: Config, account: Account, on_event: Callable[[Event], None] | None = None,
                 *, offline: bool = False):
        super().__init__(config, account, on_event, offline=offline)
        self._proc: subprocess.Popen | None = None
        self._pipe: Connection | None = None  # to the child
        self._send_lock = threading.Lock()
        self._wake_w: int | None = None  # the write end of the child's Waker pipe (wake(): one byte)

    # lifecycle -------------------------------------------------------------
    def start(self) -> None:
        if self._proc is not None or self._stop.is_set():
            return
        setup = {"offline": self._offline, "hold": self._hold_for_paint, "painted": self._painted.is_set(),
                 "watch": self._watch, "typed": self._secret.typed,
                 "store_path": self.store_path, "cache_path": self.cache_path}
        self._hold_for_paint = False
        proc, pipe, self._wake_w = spawn_child()
        try:
            pipe.send((self.config, self.account, setup))
        except (OSError, ValueError):
            pass  # (it died at once: _listen reports it)
        self._proc, self._pipe = proc, pipe
        self._login_done.clear()
        self._thread = threading.Thread(target=self._listen, args=(proc, pipe), daemon=True,
                                        name=f"sync-events-{self.account.name}")
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        self._send("stop")
        proc, listener = self._proc, self._thread
        if proc is not None:
            stop_child(proc, timeout, "sync process")
        if listener is not None and listener is not threading.current_thread():
            listener.join(1.0)
        self._thread = None
        self._close_pipes()
        self._login_done.set()
        super().stop(timeout)  # the rest is the in-process service's: the fetch lane, this Waker

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    def hold_for_first_paint(self) -> None:
        self._hold_for_paint = True
        self._send("hold")

    def ui_painted(self) -> None:
        self._painted.set()
        self._send("painted")

    # requests (non-blocking: a few bytes into a pipe) -------------------------
    def wake(self) -> None:
        """Straight into the pipe the child's IDLE wait selects on: no hop through its command
        thread (key -> command on the wire)."""
        with self._send_lock:
            if self._wake_w is None:
                return
            try:
                os.write(self._wake_w, b"!")
            except OSError:  # full (a wake-up is already waiting), or the child is gone
                pass

    def request_sync(self, folder: str | None = None) -> None:
        if folder is None and self._proc is not None and self._proc.poll() is not None and not self._stop.is_set():
            self._restart()  # `$` after the sync process died: a new one
            return
        self._send("sync", folder)

    def set_password(self, password: str) -> None:
        self._secret.typed = password  # (the fetch lane here logs in with it too)
        self._send("password", password)

    def watch_folder(self, folder: str) -> None:
        self._watch = folder
        self._send("watch", folder)

    def set_offline(self, offline: bool) -> None:
        self._go_offline(offline)  # the fetch lane here
        self._send("offline", offline)
        self._emit_state("offline" if offline else "connecting")

    # the pipe --------------------------------------------------------------
    def _send(self, *msg) -> None:
        with self._send_lock:
            if self._pipe is None:
                return
            try:
                self._pipe.send(msg)
            except (OSError, ValueError):  # the child is gone: _listen reports it
                pass

    def _listen(self, proc, pipe) -> None:
        """Events from the child, forwarded to on_event (this thread, as the sync thread did)."""
        while True:
            try:
                msg = pipe.recv()
            except (EOFError, OSError, ValueError):
                break
            except Exception:  # an event that does not unpickle: skip it, keep listening
                log.exception("bad message from the sync process")
                continue
            kind = msg[0]
            if kind == "event":
                self._emit(msg[1])
            elif kind == "login":
                self._login_blocked = msg[2]
                if msg[1]:
                    self._login_done.set()
                else:
                    self._login_done.clear()
        self._login_done.set()  # (the fetch lane must not wait for a login that will not come)
        if not self._stop.is_set():
            try:
                code = proc.wait(1.0)
            except subprocess.TimeoutExpired:
                code = None
            self._emit_state("error", error=f"the sync process ended unexpectedly (exit code {code}); "
                                            "press $ to start it again")

    def _close_pipes(self) -> None:
        with self._send_lock:
            if self._pipe is not None:
                self._pipe.close()
                self._pipe = None
            if self._wake_w is not None:
                os.close(self._wake_w)
                self._wake_w = None

    def _restart(self) -> None:
        if self._thread is not None:
            self._thread.join(1.0)
        self._close_pipes()
        self._proc = self._thread = None
        self._emit_state("connecting")
        self.start()


class _RelayedEvent(threading.Event):
    """The child's `_login_done`: its outcome (and the refusal, if any) is told to the parent,
    whose fetch lane waits on it before logging in."""

    def __init__(self, svc: ImapService, send: Callable[[tuple], None]):
        super().__init__()
        self._svc, self._send = svc, send

    def set(self) -> None:
        super().set()
        self._send(("login", True, self._svc._login_blocked))

    def clear(self) -> None:
        super().clear()
        self._send(("login", False, self._svc._login_blocked))


class _SharedWaker(Waker):
    """The child's Waker, on a pipe whose write end the parent holds too: a byte from the parent
    is a wake() (set() here writes one as well). The event stays the truth the sync loop reads;
    a byte read by drain() (after a select saw it) or wait() sets it; clear() discards bytes that
    came before it, as the in-process Waker's clear() does."""

    def __init__(self, r: int, w: int) -> None:  # (no pipe of its own: these)
        self._event = threading.Event()
        self._r, self._w = r, w
        os.set_blocking(r, False)
        os.set_blocking(w, False)
        self._closed = False
        self._lock = threading.Lock()

    def _read(self) -> bool:
        with self._lock:
            if self._closed:
                return False
            got = False
            try:
                while os.read(self._r, 4096):
                    got = True
            except OSError:  # empty
                pass
            return got

    def drain(self) -> None:
        if self._read():
            self._event.set()

    def clear(self) -> None:
        self._event.clear()
        self._read()

    def wait(self, timeout: float | None = None) -> bool:
        if not self._event.is_set() and not self._closed:
            try:
                ready, _, _ = select.select([self._r], [], [], timeout)
            except (OSError, ValueError):  # closed meanwhile (stop)
                ready = []
            if ready:
                self.drain()
        return self._event.is_set()


def spawn_child() -> tuple[subprocess.Popen, Connection, int]:
    """A fresh interpreter running this module (backends/child.py), a Connection to it and the
    write end of its Waker's pipe (the read end is the child's; both are passed, so the child can
    drain it)."""
    wake_r, wake_w = os.pipe()
    os.set_blocking(wake_w, False)
    try:
        proc, pipe = spawn("tuimail.backends.imap.process", (wake_r, wake_w))
    except BaseException:
        os.close(wake_w)
        raise
    finally:
        os.close(wake_r)
    return proc, pipe, wake_w


def child_main(pipe: Connection, waker: Waker | None = None) -> None:
    """The child process: a ImapService whose events go up the pipe, driven by the parent's commands."""
    # Ctrl-C in the terminal (an editor the app suspended for) is not the sync's to obey.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        config, account, setup = pipe.recv()
    except (EOFError, OSError):
        return
    send_lock = threading.Lock()

    def send(msg: tuple) -> None:
        with send_lock:
            try:
                pipe.send(msg)
            except (OSError, ValueError):  # the parent is gone: the recv below ends the child
                pass

    svc = ImapService(config, account, lambda event: send(("event", event)), offline=setup["offline"])
    svc.store_path, svc.cache_path = setup["store_path"], setup["cache_path"]
    svc._login_done = _RelayedEvent(svc, send)
    if waker is not None:
        svc._wake.close()
        svc._wake = waker
    svc._watch = setup["watch"]
    if setup["typed"] is not None:
        svc._secret.typed = setup["typed"]
    if setup["hold"]:
        svc.hold_for_first_paint()
    if setup["painted"]:
        svc.ui_painted()
    svc.start()
    serve_commands(svc, pipe, {"watch": svc.watch_folder, "offline": svc._go_offline})

if __name__ == "__main__":
    child_main(Connection(int(sys.argv[1])), _SharedWaker(int(sys.argv[2]), int(sys.argv[3])))
