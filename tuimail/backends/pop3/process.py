"""The POP3 sync in a process of its own: Pop3Process is the Pop3Service the app runs.

Measured (tests/bench/probes.py `stall`, a cold first download of 5,000 messages from Dovecot,
F/N/j pressed every 30 ms): with the worker as a thread of the app, its parsing of TOP/RETR
answers and its commits held the GIL and the UI's event loop was late by up to 75 ms (p99
21 ms; 48 ms / 42 ms without headers_first), and the first screen came after the app's start-up
shared the interpreter with the download. Here the worker loop (Pop3Service._run: the account
lock, the download, the error states, waiting for a typed password) runs unchanged in a child
interpreter writing the same SQLite file (WAL), as the IMAP sync does (backends/imap/process.py).

    parent (the app)                          child (child_main)
    Pop3Process ── commands, a socket ──────▶ Pop3Service (its worker thread)
                ◀── events (+ login_blocked) ─ on_event
    a reader thread ──▶ on_event (the EventBridge), `state`, `login_blocked`

Opening a message (a header-only one is fetched by UIDL + RETR) stays in the parent, on the
service's own fetch path: it is user-driven and its result is needed here. `tuimail sync` runs
the download in-process (sync_now: no UI to keep smooth). Nothing is lost on stop or kill: each
message is committed before anything may DELE it, and DELE only takes effect at a QUIT.
"""

from __future__ import annotations

import logging
import signal
import subprocess
import sys
import threading
from multiprocessing.connection import Connection

from tuimail.backends.child import serve_commands, spawn, stop_child
from tuimail.backends.pop3.service import Pop3Service
from tuimail.core.events import Event
from tuimail.trace import trace

log = logging.getLogger("tuimail.pop3")

class Pop3Process(Pop3Service):
    """Pop3Service's interface with the worker loop in a child process (see the module doc)."""

    def __init__(self, *a, **kw):
        super().__init__(*a, **kw)
        self._proc: subprocess.Popen | None = None
        self._pipe: Connection | None = None
        self._send_lock = threading.Lock()

    def start(self) -> None:
        if self._proc is not None or self._stop.is_set():
            return
        setup = {"offline": self._offline, "typed": self._secret.typed, "store_path": self.store_path,
                 "hold": self._hold_for_paint, "painted": self._painted.is_set()}
        trace("pop3: spawn the sync process")
        proc, pipe = spawn_child()
        try:
            pipe.send((self.config, self.account, setup))
        except (OSError, ValueError):
            pass  # (it died at once: _listen reports it)
        self._proc, self._pipe = proc, pipe
        self._thread = threading.Thread(target=self._listen, args=(proc, pipe), daemon=True,
                                        name=f"pop3-events-{self.account.name}")
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        self._send("stop")
        proc, listener = self._proc, self._thread
        if proc is not None:
            stop_child(proc, timeout, "POP3 sync process")  # (killed: no QUIT, nothing deleted)
        if listener is not None and listener is not threading.current_thread():
            listener.join(1.0)
        self._thread = None
        self._close_pipe()
        super().stop(timeout)  # the rest is the in-process service's: the fetch store, the Waker

    def hold_for_first_paint(self) -> None:
        self._hold_for_paint = True
        self._send("hold")

    def ui_painted(self) -> None:
        self._painted.set()
        self._send("painted")

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    # requests (non-blocking: a few bytes into the socket) -------------------------
    def wake(self) -> None:
        self._send("wake")

    def request_sync(self, folder: str | None = None, /) -> None:
        if folder is None and self._proc is not None and self._proc.poll() is not None and not self._stop.is_set():
            self._restart()  # `$` after the sync process died: a new one
            return
        self._send("sync", folder)

    def set_offline(self, offline: bool, /) -> None:
        self._offline = offline
        self._send("offline", offline)
        self._emit_state("offline" if offline else "connecting")

    def set_password(self, password: str, /) -> None:
        self._secret.typed = password  # (opening a header-only message here logs in with it too)
        self._send("password", password)

    # the pipe --------------------------------------------------------------
    def _send(self, *msg) -> None:
        with self._send_lock:
            if self._pipe is None:
                return
            try:
                self._pipe.send(msg)
            except (OSError, ValueError):  # the child is gone: _listen reports it
                pass

    def _listen(self, proc: subprocess.Popen, pipe: Connection) -> None:
        while True:
            try:
                msg = pipe.recv()
            except (EOFError, OSError, ValueError):
                break
            except Exception:  # an event that does not unpickle: skip it, keep listening
                log.exception("bad message from the POP3 sync process")
                continue
            if msg[0] == "event":
                self._login_blocked = msg[2]
                self._emit(msg[1])
        if not self._stop.is_set():
            try:
                code = proc.wait(1.0)
            except subprocess.TimeoutExpired:
                code = None
            self._emit_state("error", error=f"the sync process ended unexpectedly (exit code {code}); "
                                            "press $ to start it again")

    def _close_pipe(self) -> None:
        with self._send_lock:
            if self._pipe is not None:
                self._pipe.close()
                self._pipe = None

    def _restart(self) -> None:
        if self._thread is not None:
            self._thread.join(1.0)
        self._close_pipe()
        self._proc = self._thread = None
        self._emit_state("connecting")
        self.start()


def spawn_child() -> tuple[subprocess.Popen, Connection]:
    """A fresh interpreter running this module, and a Connection to it (backends/child.py)."""
    return spawn("tuimail.backends.pop3.process")


def child_main(pipe: Connection) -> None:
    """The child: a Pop3Service whose events go up the pipe, driven by the parent's commands."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C in an editor the app suspended for
    try:
        config, account, setup = pipe.recv()
    except (EOFError, OSError):
        return
    send_lock = threading.Lock()
    svc: Pop3Service | None = None

    def on_event(event: Event) -> None:
        with send_lock:
            try:  # with each event, whether a login is refused (the parent's login_blocked)
                pipe.send(("event", event, svc._login_blocked if svc is not None else None))
            except (OSError, ValueError):  # the parent is gone: the recv below ends the child
                pass

    trace("pop3: sync process started")
    svc = Pop3Service(config, account, on_event, offline=setup["offline"])
    svc.store_path = setup["store_path"]
    if setup["typed"] is not None:
        svc._secret.typed = setup["typed"]
    if setup["hold"]:
        svc.hold_for_first_paint()
    if setup["painted"]:
        svc.ui_painted()
    svc.start()
    serve_commands(svc, pipe, {"offline": svc.set_offline})


if __name__ == "__main__":
    child_main(Connection(int(sys.argv[1])))
