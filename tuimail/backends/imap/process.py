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
    the link's listener ──▶ on_event (the EventBridge), `state`, the login outcome (ChildLink)
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

import os
import select
import signal
import sys
import threading
from collections.abc import Callable

from tuimail.backends.child import ChildLink, Connection, serve_commands
from tuimail.backends.imap.service import ImapService
from tuimail.backends.waker import Waker
from tuimail.config.load import Account, Config
from tuimail.core.events import Event



class SyncProcess(ImapService):
    """ImapService's interface with the sync loop in a child process (see the module doc)."""

    def __init__(self, config: Config, account: Account, on_event: Callable[[Event], None] | None = None,
                 *, offline: bool = False):
        super().__init__(config, account, on_event, offline=offline)
        self._link = ChildLink("tuimail.backends.imap.process", "sync process", f"sync-events-{account.name}",
                               self._setup, self._on_message, self._emit_state,
                               # (the fetch lane must not wait for a login that will not come)
                               on_end=lambda: self._login_done.set(), waker=True)

    # lifecycle -------------------------------------------------------------
    def start(self) -> None:
        if not self._stop.is_set():
            self._link.start()

    def _setup(self) -> tuple:
        """The child's first message (at each start: `$` after it died gives it today's state)."""
        setup = {"offline": self._offline, "hold": self._hold_for_paint, "painted": self._painted.is_set(),
                 "watch": self._watch, "typed": self._secret.typed,
                 "store_path": self.store_path, "cache_path": self.cache_path}
        self._hold_for_paint = False
        self._login_done.clear()  # (the child's login outcome is to come)
        return self.config, self.account, setup

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        self._link.stop(timeout)
        self._login_done.set()
        super().stop(timeout)  # the rest is the in-process service's: the fetch lane, this Waker

    def _started(self) -> bool:
        return self._link.started

    @property
    def pid(self) -> int | None:
        return self._link.pid

    def hold_for_first_paint(self) -> None:
        self._hold_for_paint = True
        self._link.send("hold")

    def ui_painted(self) -> None:
        self._painted.set()
        self._link.send("painted")

    # requests (non-blocking: a few bytes into a pipe) -------------------------
    def wake(self) -> None:
        """Straight into the pipe the child's IDLE wait selects on: no hop through its command
        thread (key -> command on the wire). Not while offline: the poke could reach the child's
        IDLE before its command thread has read the "offline" sent just before, and the change
        would go out (going online again syncs it)."""
        if not self._offline:
            self._link.poke()

    def request_sync(self, folder: str | None = None) -> None:
        self._link.request_sync(folder)  # (`$` after the sync process died: a new one)

    def set_password(self, password: str) -> None:
        self._secret.typed = password  # (the fetch lane here logs in with it too)
        self._link.send("password", password)

    def watch_folder(self, folder: str) -> None:
        self._watch = folder
        self._link.send("watch", folder)

    def set_offline(self, offline: bool) -> None:
        self._go_offline(offline)  # the fetch lane here
        self._link.send("offline", offline)
        self._emit_state("offline" if offline else "connecting")

    def _on_message(self, msg: tuple) -> None:
        """From the child, on the link's listener thread (as the sync thread's events were)."""
        if msg[0] == "event":
            self._emit(msg[1])
        elif msg[0] == "login":
            self._login_blocked = msg[2]
            if msg[1]:
                self._login_done.set()
            else:
                self._login_done.clear()


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

def main(argv: list[str]) -> None:
    """The child's entry (backends/child.py): argv is the socket's descriptor, then the wake pipe's two."""
    child_main(Connection(int(argv[0])), _SharedWaker(int(argv[1]), int(argv[2])))


if __name__ == "__main__":
    main(sys.argv[1:])
