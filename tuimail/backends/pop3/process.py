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
    the link's listener ──▶ on_event (the EventBridge), `state`, `login_blocked` (ChildLink)

Opening a message (a header-only one is fetched by UIDL + RETR) stays in the parent, on the
service's own fetch path: it is user-driven and its result is needed here. `tuimail sync` runs
the download in-process (sync_now: no UI to keep smooth). Nothing is lost on stop or kill: each
message is committed before anything may DELE it, and DELE only takes effect at a QUIT.
"""

from __future__ import annotations

import signal
import sys
import threading

from tuimail.backends.child import ChildLink, Connection, serve_commands
from tuimail.backends.pop3.service import Pop3Service
from tuimail.core.events import Event
from tuimail.trace import trace



class Pop3Process(Pop3Service):
    """Pop3Service's interface with the worker loop in a child process (see the module doc)."""

    def __init__(self, *a, **kw):
        super().__init__(*a, **kw)
        self._link = ChildLink("tuimail.backends.pop3.process", "POP3 sync process",
                               f"pop3-events-{self.account.name}", self._setup, self._on_message,
                               self._emit_state)

    def start(self) -> None:
        if not self._stop.is_set():
            self._link.start()

    def _setup(self) -> tuple:
        """The child's first message (at each start: `$` after it died gives it today's state)."""
        setup = {"offline": self._offline, "typed": self._secret.typed, "store_path": self.store_path,
                 "hold": self._hold_for_paint, "painted": self._painted.is_set()}
        return self.config, self.account, setup

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        self._link.stop(timeout)  # (killed after the grace: no QUIT, nothing deleted)
        super().stop(timeout)  # the rest is the in-process service's: the fetch store, the Waker

    def _started(self) -> bool:
        return self._link.started

    def hold_for_first_paint(self) -> None:
        self._hold_for_paint = True
        self._link.send("hold")

    def ui_painted(self) -> None:
        self._painted.set()
        self._link.send("painted")

    @property
    def pid(self) -> int | None:
        return self._link.pid

    # requests (non-blocking: a few bytes into the socket) -------------------------
    def wake(self) -> None:
        self._link.send("wake")

    def request_sync(self, folder: str | None = None, /) -> None:
        self._link.request_sync(folder)  # (`$` after the sync process died: a new one)

    def set_offline(self, offline: bool, /) -> None:
        self._offline = offline
        self._link.send("offline", offline)
        self._emit_state("offline" if offline else "connecting")

    def set_password(self, password: str, /) -> None:
        self._secret.typed = password  # (opening a header-only message here logs in with it too)
        self._link.send("password", password)

    def _on_message(self, msg: tuple) -> None:
        """From the child, on the link's listener thread: each event with the login state."""
        if msg[0] == "event":
            self._login_blocked = msg[2]
            self._emit(msg[1])


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
    svc.serves_app = True
    svc.store_path = setup["store_path"]
    if setup["typed"] is not None:
        svc._secret.typed = setup["typed"]
    if setup["hold"]:
        svc.hold_for_first_paint()
    if setup["painted"]:
        svc.ui_painted()
    svc.start()
    serve_commands(svc, pipe, {"offline": svc.set_offline})


def main(argv: list[str]) -> None:
    """The child's entry (backends/child.py): argv is the socket's descriptor."""
    child_main(Connection(int(argv[0])))


if __name__ == "__main__":
    main(sys.argv[1:])
