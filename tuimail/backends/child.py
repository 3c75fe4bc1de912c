"""What the sync child processes share (backends/imap/process.py, backends/pop3/process.py).

Each backend's sync loop runs in a fresh interpreter beside the app (the UI thread must not share
a GIL with header parsing): `spawn` starts it with a socket to it, `serve_commands` is the child's
side of that socket (the parent's requests, one tuple each, until "stop" or the parent's end),
`stop_child` ends it within a grace period. What differs per backend (the IMAP child's shared
Waker pipe, its login relay, POP3's login state sent with each event) stays in its module.
"""

from __future__ import annotations

import logging
import os
import socket
import subprocess
import sys
from collections.abc import Callable, Mapping
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Protocol

log = logging.getLogger("tuimail.sync")

STOP_GRACE = 2.0  # seconds beyond stop()'s timeout before a child that did not end is terminated


def spawn(module: str, extra_fds: tuple[int, ...] = ()) -> tuple[subprocess.Popen, Connection]:
    """A fresh interpreter running `python -m module SOCKET_FD [EXTRA_FD...]` and a Connection to
    it (like multiprocessing's spawn, without its resource tracker, which needs a real sys.stderr:
    Textual has replaced it). The child is in a session of its own (Ctrl-C in a suspended editor is
    not for it) and never writes on the app's terminal."""
    import tuimail

    ours, theirs = socket.socketpair()
    env = dict(os.environ)
    root = str(Path(tuimail.__file__).resolve().parents[1])  # this tuimail, whatever is installed
    env["PYTHONPATH"] = os.pathsep.join(p for p in (root, env.get("PYTHONPATH")) if p)
    quiet = subprocess.DEVNULL if os.isatty(2) else None
    try:
        proc = subprocess.Popen([sys.executable, "-m", module, str(theirs.fileno()), *map(str, extra_fds)],
                                pass_fds=(theirs.fileno(), *extra_fds), stdin=subprocess.DEVNULL, stdout=quiet,
                                stderr=quiet, env=env, start_new_session=True)
    except BaseException:
        ours.close()
        raise
    finally:
        theirs.close()
    return proc, Connection(ours.detach())


def stop_child(proc: subprocess.Popen, timeout: float, what: str) -> None:
    """Wait for a child told to stop; terminate it after `timeout` + STOP_GRACE, kill it after 2 s
    more. (Nothing is lost: its work is committed as it goes; POP3 sends no QUIT, so no DELE.)"""
    try:
        proc.wait(timeout + STOP_GRACE)
    except subprocess.TimeoutExpired:
        log.warning("the %s did not stop within %.0f s: terminated", what, timeout + STOP_GRACE)
        proc.terminate()
        try:
            proc.wait(2.0)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


class ChildService(Protocol):
    """What the child's command loop needs of the in-process service it drives."""

    def wake(self) -> None: ...
    def request_sync(self, folder: str | None = None, /) -> None: ...
    def set_password(self, password: str, /) -> None: ...
    def hold_for_first_paint(self) -> None: ...
    def ui_painted(self) -> None: ...
    def stop(self, timeout: float = 5.0) -> None: ...
    def _log_crash(self) -> None: ...


def serve_commands(svc: ChildService, pipe: Connection,
                   more: Mapping[str, Callable[..., None]] = {}) -> None:
    """The child's side of the socket: each (command, *args) from the parent, until "stop" or the
    parent's end, then the service stops. `more`: the backend's own commands (and "offline")."""
    handlers: dict[str, Callable[..., None]] = {
        "wake": svc.wake, "sync": svc.request_sync, "password": svc.set_password,
        "hold": svc.hold_for_first_paint, "painted": svc.ui_painted, **more}
    try:
        while True:
            try:
                msg = pipe.recv()
            except (EOFError, OSError):  # the parent ended: so does the sync
                break
            if msg[0] == "stop":
                break
            handler = handlers.get(msg[0])
            if handler is not None:
                handler(*msg[1:])
    except Exception:
        svc._log_crash()
    finally:
        svc.stop()
        pipe.close()
