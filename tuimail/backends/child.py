"""What the sync child processes share (backends/imap/process.py, backends/pop3/process.py).

Each backend's sync loop runs in a fresh interpreter beside the app (the UI thread must not share
a GIL with header parsing): `ChildLink` is the parent's end (it spawns the child, sends it
commands, listens for its messages on a thread, reports a child that died, stops it),
`serve_commands` is the child's side of that socket (the parent's requests, one tuple each, until
"stop" or the parent's end). What differs per backend (the IMAP child's shared Waker, its login
relay, POP3's login state sent with each event) stays in its module.
"""

from __future__ import annotations

import logging
import os
import pickle
import signal
import socket
import struct
import sys
import threading
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, Protocol, TYPE_CHECKING

from tuimail.trace import trace

if TYPE_CHECKING:  # (subprocess: imported when a child is spawned or waited for, not by a forked one)
    import subprocess

log = logging.getLogger("tuimail.sync")

STOP_GRACE = 2.0  # seconds beyond stop()'s timeout before a child that did not end is terminated


_FRAME = struct.Struct("!I")


class Connection:
    """One end of the socket between the app and a sync child: whole Python objects (pickled,
    length-prefixed) each way. multiprocessing.connection's Connection did this; importing it
    was ~10 ms of every start before the child could be forked (the parent's side and the
    child's). send() raises OSError (or ValueError) once closed or when the other end is gone;
    recv() raises EOFError at the other end's close, OSError once closed here; a message that
    does not unpickle raises what pickle raises, with the stream still in step."""

    def __init__(self, fd: int) -> None:
        self._sock: socket.socket | None = socket.socket(fileno=fd)

    def send(self, obj: Any) -> None:
        if self._sock is None:
            raise OSError("connection is closed")
        data = pickle.dumps(obj, pickle.HIGHEST_PROTOCOL)
        self._sock.sendall(_FRAME.pack(len(data)) + data)

    def recv(self) -> Any:
        if self._sock is None:
            raise OSError("connection is closed")
        size = _FRAME.unpack(self._exactly(_FRAME.size))[0]
        return pickle.loads(self._exactly(size))

    def _exactly(self, n: int) -> bytes:
        assert self._sock is not None
        buf = bytearray()
        while len(buf) < n:
            chunk = self._sock.recv(min(n - len(buf), 1 << 20))
            if not chunk:
                raise EOFError
            buf += chunk
        return bytes(buf)

    def close(self) -> None:
        sock, self._sock = self._sock, None
        if sock is not None:
            sock.close()


def spawn(module: str, extra_fds: tuple[int, ...] = ()) -> tuple[ChildProcess, Connection]:
    """The child running `module`'s `main([SOCKET_FD, *EXTRA_FDS])`, and a Connection to it.

    On a first run (no thread started and no store opened in this process yet: run_app starts the
    sync before anything else) the child is a fork of this process: it has every module the
    parent imported and starts syncing ~0.1 s sooner than a fresh interpreter, whose imports were
    most of the time to a POP3 account's first screen. Otherwise a fresh interpreter (`python -m
    module SOCKET_FD [EXTRA_FD...]`, like multiprocessing's spawn without its resource tracker,
    which needs a real sys.stderr: Textual has replaced it). Either way the child is in a session
    of its own (Ctrl-C in a suspended editor is not for it) and never writes on the app's terminal."""
    if can_fork():
        try:
            return _fork(module, extra_fds)
        except OSError as exc:  # (no process left to fork, no memory: a fresh interpreter may still start)
            log.warning("fork of the %s failed (%s): spawning it", module, exc)
    import subprocess

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


def can_fork() -> bool:
    """Whether a sync child may be a fork of this process: no other thread (whose locks it would
    inherit held) and no store connection ever opened (SQLite's per-file lock state must not be
    inherited; the child opens its own). TUIMAIL_SPAWN=1 turns forking off."""
    from tuimail.store.db import connections_opened
    return (hasattr(os, "fork") and threading.active_count() == 1 and connections_opened() == 0
            and os.environ.get("TUIMAIL_SPAWN") != "1")


def _fork(module: str, extra_fds: tuple[int, ...]) -> tuple[ForkedChild, Connection]:
    ours, theirs = socket.socketpair()
    quiet = os.isatty(2)
    try:
        pid = os.fork()
    except BaseException:
        ours.close()
        theirs.close()
        raise
    if pid == 0:  # the child: never returns into the parent's code, never runs its exit handlers
        code = 1
        try:
            ours.close()
            os.setsid()
            null = os.open(os.devnull, os.O_RDWR)
            os.dup2(null, 0)
            if quiet:
                os.dup2(null, 1)
                os.dup2(null, 2)
            import gc
            import importlib
            gc.freeze()  # (the parent's objects: not scanned, their pages not copied)
            gc.enable()  # (the parent holds its collections until its first paint: ui/collector.py)
            importlib.import_module(module).main([str(theirs.detach()), *map(str, extra_fds)])
            code = 0
        except BaseException:
            try:
                log.exception("the forked %s failed", module)
            except BaseException:
                pass
        finally:
            os._exit(code)
    theirs.close()
    return ForkedChild(pid), Connection(ours.detach())


class ForkedChild:
    """A forked child with the part of subprocess.Popen's interface the services use."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.returncode: int | None = None

    def poll(self) -> int | None:
        if self.returncode is None:
            try:
                pid, status = os.waitpid(self.pid, os.WNOHANG)
            except ChildProcessError:  # (reaped elsewhere)
                self.returncode = -1
                return self.returncode
            if pid:
                self.returncode = os.waitstatus_to_exitcode(status)
        return self.returncode

    def wait(self, timeout: float | None = None) -> int:
        deadline = None if timeout is None else time.monotonic() + timeout
        delay = 0.001
        while self.poll() is None:
            if deadline is not None and time.monotonic() >= deadline:
                import subprocess
                raise subprocess.TimeoutExpired(f"pid {self.pid}", timeout or 0.0)
            time.sleep(delay)
            delay = min(delay * 2, 0.05)
        assert self.returncode is not None
        return self.returncode

    def send_signal(self, sig: int) -> None:
        if self.poll() is None:
            try:
                os.kill(self.pid, sig)
            except ProcessLookupError:
                pass

    def terminate(self) -> None:
        self.send_signal(signal.SIGTERM)

    def kill(self) -> None:
        self.send_signal(signal.SIGKILL)


if TYPE_CHECKING:
    ChildProcess = subprocess.Popen | ForkedChild


def stop_child(proc: ChildProcess, timeout: float, what: str) -> None:
    """Wait for a child told to stop; terminate it after `timeout` + STOP_GRACE, kill it after 2 s
    more. (Nothing is lost: its work is committed as it goes; POP3 sends no QUIT, so no DELE.)"""
    import subprocess

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


class ChildLink:
    """The parent's end of a sync child (one per service, for its whole life).

    `start()` spawns `python -m module` and sends it `setup()` (its first message); a listener
    thread hands each message after that to `on_message`. Once the child's end closes it calls
    `on_end()`, and when the child ended without being told to, reports it in one line through
    `on_state("error", error=...)` ("press $ to start it again"); `restart()` (`$`) then starts a
    new one. `send` never blocks on nor raises for a child that is gone (the listener reports it).

    waker=True: the child also gets both ends of a pipe (argv after the socket) whose read end its
    IDLE wait selects on; `poke()` writes one byte into it, with no hop through the child's command
    thread (key -> command on the wire)."""

    def __init__(self, module: str, what: str, thread_name: str, setup: Callable[[], Any],
                 on_message: Callable[[Any], None], on_state: Callable[..., None],
                 on_end: Callable[[], None] = lambda: None, *, waker: bool = False):
        self.module, self.what, self.thread_name, self.waker = module, what, thread_name, waker
        self.setup, self.on_message, self.on_state, self.on_end = setup, on_message, on_state, on_end
        self.proc: ChildProcess | None = None  # (kept after stop(): the ended child)
        self.thread: threading.Thread | None = None  # the listener, while started
        self._pipe: Connection | None = None  # to the child
        self._wake_w: int | None = None  # the write end of the child's wake pipe (waker=True)
        self._lock = threading.Lock()  # sends, pokes and closing them
        self._stopping = False

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc is not None else None

    @property
    def ended(self) -> bool:
        """A child was started and no longer runs: it died (or was stopped)."""
        return self.proc is not None and self.proc.poll() is not None

    @property
    def started(self) -> bool:
        return self.thread is not None

    # lifecycle -------------------------------------------------------------
    def start(self) -> None:
        if self.proc is not None or self._stopping:
            return
        trace(f"spawn the {self.what}")
        proc, pipe, self._wake_w = self._spawn()
        try:
            pipe.send(self.setup())
        except (OSError, ValueError):
            pass  # (it died at once: the listener reports it)
        self.proc, self._pipe = proc, pipe
        self.thread = threading.Thread(target=self._listen, args=(proc, pipe), daemon=True,
                                       name=self.thread_name)
        self.thread.start()

    def _spawn(self) -> tuple[ChildProcess, Connection, int | None]:
        if not self.waker:
            return (*spawn(self.module), None)
        wake_r, wake_w = os.pipe()
        os.set_blocking(wake_w, False)
        try:
            proc, pipe = spawn(self.module, (wake_r, wake_w))
        except BaseException:
            os.close(wake_w)
            raise
        finally:
            os.close(wake_r)
        return proc, pipe, wake_w

    def stop(self, timeout: float) -> None:
        """Tell the child to stop and wait for it (stop_child), then for the listener."""
        self._stopping = True
        self.send("stop")
        proc, listener = self.proc, self.thread
        if proc is not None:
            stop_child(proc, timeout, self.what)
        if listener is not None and listener is not threading.current_thread():
            listener.join(1.0)
        self.thread = None
        self._close()

    def request_sync(self, folder: str | None) -> None:
        """The service's request_sync: to the child; `$` (None) after it died starts a new one."""
        if folder is None and self.ended and not self._stopping:
            self.restart()
        else:
            self.send("sync", folder)

    def restart(self) -> None:
        """A new child after one died (its listener reported it)."""
        if self.thread is not None:
            self.thread.join(1.0)
        self._close()
        self.proc = self.thread = None
        self.on_state("connecting")
        self.start()

    def _close(self) -> None:
        with self._lock:
            if self._pipe is not None:
                self._pipe.close()
                self._pipe = None
            if self._wake_w is not None:
                os.close(self._wake_w)
                self._wake_w = None

    # the socket and the wake pipe ------------------------------------------
    def send(self, *msg: Any) -> None:
        with self._lock:
            if self._pipe is None:
                return
            try:
                self._pipe.send(msg)
            except (OSError, ValueError):  # the child is gone: the listener reports it
                pass

    def poke(self) -> None:
        """One byte into the child's wake pipe (waker=True)."""
        with self._lock:
            if self._wake_w is None:
                return
            try:
                os.write(self._wake_w, b"!")
            except OSError:  # full (a wake-up is already waiting), or the child is gone
                pass

    def _listen(self, proc: ChildProcess, pipe: Connection) -> None:
        while True:
            try:
                msg = pipe.recv()
            except (EOFError, OSError, ValueError):
                break
            except Exception:  # a message that does not unpickle: skip it, keep listening
                log.exception("bad message from the %s", self.what)
                continue
            self.on_message(msg)
        self.on_end()
        if not self._stopping:
            import subprocess

            try:
                code = proc.wait(1.0)
            except subprocess.TimeoutExpired:
                code = None
            self.on_state("error", error=f"the sync process ended unexpectedly (exit code {code}); "
                                         "press $ to start it again")


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
