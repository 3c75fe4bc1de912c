"""Fault injection on the wire: a loopback TCP proxy and a hostile fake server.

`FaultProxy(port)` forwards 127.0.0.1:<proxy.port> to (host, port) and can cut, stall or refuse
connections at exact points of the server's output. `GarbageServer` speaks just enough to get
past a greeting and then answers every command line with whatever bytes a test configures.

Each object runs one daemon thread (a selector loop); `close()` (or leaving the `with` block)
stops it and closes every socket, so nothing leaks into later tests. Control calls
(`cut_now`, `stall`, ...) run inside that loop and return once they took effect.
"""

from __future__ import annotations

import queue
import selectors
import socket
import struct
import threading
import time
from collections.abc import Callable

__all__ = ["FaultProxy", "GarbageServer", "Connection"]

_CHUNK = 65536
_HIGH_WATER = 1 << 20  # stop reading a side while this much is waiting for the other side


def _abort(sock: socket.socket | None) -> None:
    """Close abruptly: RST instead of FIN (SO_LINGER 0), so the peer sees a reset."""
    if sock is None:
        return
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    except OSError:
        pass
    try:
        sock.close()
    except OSError:
        pass


class _Loop:
    """A selector loop in one daemon thread; other threads hand it work through `call`."""

    def __init__(self, name: str):
        self._sel = selectors.DefaultSelector()
        self._wake_r, self._wake_w = socket.socketpair()
        self._wake_r.setblocking(False)
        self._sel.register(self._wake_r, selectors.EVENT_READ, None)
        self._calls: queue.SimpleQueue = queue.SimpleQueue()
        self._closing = False
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self.error: BaseException | None = None

    def start(self) -> None:
        self._thread.start()

    def call(self, fn: Callable, *args, timeout: float = 5.0):
        """Run fn(*args) in the loop thread and return its result."""
        if threading.current_thread() is self._thread:
            return fn(*args)
        if not self._thread.is_alive():
            return fn(*args)  # loop already gone: nothing else touches the sockets
        done = threading.Event()
        box: list = []

        def job():
            try:
                box.append((True, fn(*args)))
            except BaseException as e:  # noqa: BLE001 - handed back to the caller
                box.append((False, e))
            done.set()

        self._calls.put(job)
        self._wake()
        waited = 0.0
        while not done.wait(0.05):
            waited += 0.05
            if not self._thread.is_alive() and not done.is_set():
                job()  # the loop ended before taking it: nothing else touches the sockets now
            elif waited >= timeout:
                raise TimeoutError(f"{self._thread.name}: loop did not answer within {timeout} s")
        ok, value = box[0]
        if not ok:
            raise value
        return value

    def _wake(self) -> None:
        try:
            self._wake_w.send(b"x")
        except (BlockingIOError, OSError):
            pass

    def _run(self) -> None:
        try:
            while not self._closing:
                for key, mask in self._sel.select(timeout=1.0):
                    if key.data is None:
                        try:
                            while self._wake_r.recv(4096):
                                pass
                        except (BlockingIOError, OSError):
                            pass
                    else:
                        key.data(key.fileobj, mask)
                while True:
                    try:
                        job = self._calls.get_nowait()
                    except queue.Empty:
                        break
                    job()
                self.after_events()
        except BaseException as e:  # noqa: BLE001 - reported by close()
            self.error = e
        finally:
            self.shutdown()
            while True:  # answer whoever is still waiting
                try:
                    job = self._calls.get_nowait()
                except queue.Empty:
                    break
                job()

    def after_events(self) -> None:  # hook: recompute interest sets
        pass

    def shutdown(self) -> None:  # hook: close everything (runs in the loop thread)
        pass

    def stop(self) -> None:
        def flag():
            self._closing = True
        if self._thread.is_alive():
            try:
                self.call(flag)
            except TimeoutError:
                self._closing = True
                self._wake()
            self._thread.join(timeout=5)
        for s in (self._wake_r, self._wake_w):
            s.close()
        try:
            self._sel.close()
        except (OSError, RuntimeError):
            pass


class Connection:
    """One proxied client connection and its counters (read them from the test thread)."""

    def __init__(self, proxy: FaultProxy, client: socket.socket, server: socket.socket, number: int):
        self.proxy = proxy
        self.number = number
        self.client = client
        self.server = server
        self.to_server = bytearray()
        self.to_client = bytearray()
        self.client_bytes = 0  # forwarded client -> server
        self.server_bytes = 0  # forwarded server -> client
        self.server_lines = 0  # CRLF-terminated lines forwarded server -> client
        # (time.monotonic() on arrival, line without CRLF) of each line the client sent: what a
        # client puts on the wire, and when (read them from the test thread: appends only)
        self.client_lines: list[tuple[float, bytes]] = []
        self._client_partial = bytearray()
        self._last_cr = False
        self.cut_pending = False  # flush to_client, then cut
        # stall_on_client(forward=True): the server's answer waits; the event is set once the
        # tagged line ending it is here
        self.answer_held = False
        self.answer_tag: bytes | None = None
        self.answer_event: threading.Event | None = None
        self.closed = False
        self.cut = False  # ended by the proxy (as opposed to a side closing)
        self._client_eof = False
        self._server_eof = False
        self._masks: dict[socket.socket, int] = {}

    def __repr__(self) -> str:
        state = "cut" if self.cut else "closed" if self.closed else "open"
        return (f"<Connection #{self.number} {state} c->s={self.client_bytes} "
                f"s->c={self.server_bytes} lines={self.server_lines}>")


class FaultProxy(_Loop):
    """Forward 127.0.0.1:self.port to (host, port), with faults on demand.

    Counters: `client_bytes`, `server_bytes`, `server_lines_seen` (all connections),
    `connections` (every Connection, oldest first; `.current` is the newest still open).

    Cut rules apply to server -> client data and forward exactly up to the limit, then close
    both sides with a reset. `per_connection=True` counts from the start of each connection,
    `per_connection=False` counts all connections from the moment the rule is set. A rule fires
    once unless `once=False`, in which case every connection that reaches it is cut.
    """

    def __init__(self, port: int, host: str = "127.0.0.1", *, listen_host: str = "127.0.0.1",
                 connect_timeout: float = 5.0):
        super().__init__(f"FaultProxy->{host}:{port}")
        self.target = (host, port)
        self.connect_timeout = connect_timeout
        self._listener = socket.create_server((listen_host, 0))
        self._listener.setblocking(False)
        self.host, self.port = self._listener.getsockname()[:2]
        self._sel.register(self._listener, selectors.EVENT_READ, self._accept)
        self.connections: list[Connection] = []
        self.client_bytes = 0
        self.server_bytes = 0
        self.server_lines_seen = 0
        self.accepted = 0
        self.refused = 0
        self._refuse = False
        self._stalled = False
        self._rule: dict | None = None
        self._hold: dict | None = None
        self.cuts = 0
        self.start()

    # -- control (any thread) -----------------------------------------------------------

    def cut_after_server_bytes(self, n: int, *, per_connection: bool = True, once: bool = True) -> None:
        """Let the server send n more bytes (see class doc for counting), then cut."""
        self._set_rule("bytes", n, per_connection, once)

    def cut_after_server_lines(self, n: int, *, per_connection: bool = True, once: bool = True) -> None:
        """Let the server send n CRLF-terminated lines (see class doc), then cut."""
        self._set_rule("lines", n, per_connection, once)

    def clear_rules(self) -> None:
        def clear():
            self._rule = self._hold = None
        self.call(clear)

    def stall(self) -> None:
        """Stop forwarding in both directions (the sockets stay open; data waits)."""
        self.call(lambda: setattr(self, "_stalled", True))

    def resume(self) -> None:
        def go():
            self._stalled = False
            for conn in self.connections:
                conn.answer_held, conn.answer_tag, conn.answer_event = False, None, None
        self.call(go)

    def stall_on_client(self, pattern: bytes, *, nth: int = 1, forward: bool = True) -> threading.Event:
        """Hold the command the client sends holding `pattern` for the nth time (e.g. b" STORE "):
        with forward=False the command itself waits (as with `stall()`, everything waits); with
        forward=True the server gets it and its answer waits (the event is set once the server
        has answered: the command took effect, the client does not know yet). Returns an Event
        set once the hold is in effect; `resume()` ends it, `clear_rules()` drops a rule not yet
        hit."""
        held = threading.Event()

        def arm():
            self._hold = {"pattern": pattern, "left": nth, "forward": forward, "event": held}
        self.call(arm)
        return held

    def cut_now(self) -> int:
        """Reset every open connection now; returns how many were cut."""
        return self.call(self._cut_all)

    def refuse_new(self, refuse: bool = True) -> None:
        """While set, new connections are accepted and reset at once (server unreachable)."""
        self.call(lambda: setattr(self, "_refuse", refuse))

    @property
    def current(self) -> Connection | None:
        for conn in reversed(self.connections):
            if not conn.closed:
                return conn
        return None

    @property
    def open_connections(self) -> int:
        return sum(1 for c in self.connections if not c.closed)

    def close(self) -> None:
        self.stop()
        if self.error is not None:
            raise RuntimeError(f"{self._thread.name} loop failed") from self.error

    def __enter__(self) -> FaultProxy:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # -- loop side ------------------------------------------------------------------------

    def _set_rule(self, kind: str, n: int, per_connection: bool, once: bool) -> None:
        if n < 0:
            raise ValueError("n must be >= 0")

        def arm():
            base = 0 if per_connection else (self.server_bytes if kind == "bytes" else self.server_lines_seen)
            self._rule = {"kind": kind, "n": n, "per_connection": per_connection, "once": once, "base": base}
            for conn in self.connections:  # a per-connection limit already passed: cut at once
                if not conn.closed and per_connection and self._used(conn) >= n:
                    self._fire(conn)
            if not per_connection and n == 0:
                cur = self.current
                if cur is not None:
                    self._fire(cur)
        self.call(arm)

    def _used(self, conn: Connection) -> int:
        r = self._rule
        if r["per_connection"]:
            return conn.server_bytes if r["kind"] == "bytes" else conn.server_lines
        total = self.server_bytes if r["kind"] == "bytes" else self.server_lines_seen
        return total - r["base"]

    def _fire(self, conn: Connection) -> None:
        conn.cut_pending = True
        if self._rule is not None and self._rule["once"]:
            self._rule = None
        if not conn.to_client:
            self._cut(conn)

    def _accept(self, listener, mask) -> None:
        while True:
            try:
                client, _addr = listener.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                return
            self.accepted += 1
            if self._refuse:
                self.refused += 1
                _abort(client)
                continue
            try:
                server = socket.create_connection(self.target, timeout=self.connect_timeout)
            except OSError:
                self.refused += 1
                _abort(client)
                continue
            for s in (client, server):
                s.setblocking(False)
                s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            conn = Connection(self, client, server, len(self.connections) + 1)
            self.connections.append(conn)
            self._sel.register(client, selectors.EVENT_READ, lambda s, m, c=conn: self._io(c, s, m))
            self._sel.register(server, selectors.EVENT_READ, lambda s, m, c=conn: self._io(c, s, m))
            conn._masks = {client: selectors.EVENT_READ, server: selectors.EVENT_READ}
            if self._rule is not None and self._rule["per_connection"] and self._rule["n"] == 0:
                self._fire(conn)

    def _io(self, conn: Connection, sock: socket.socket, mask: int) -> None:
        if conn.closed:
            return
        if mask & selectors.EVENT_WRITE:
            buf = conn.to_server if sock is conn.server else conn.to_client
            if buf and not self._stalled and not (sock is conn.client and conn.answer_held):
                try:
                    sent = sock.send(buf)
                except (BlockingIOError, InterruptedError):
                    sent = 0
                except OSError:
                    self._close(conn, cut=False)
                    return
                del buf[:sent]
            if conn.cut_pending and not conn.to_client:
                self._cut(conn)
                return
        if mask & selectors.EVENT_READ and not self._stalled:
            try:
                data = sock.recv(_CHUNK)
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                self._close(conn, cut=False)
                return
            if sock is conn.client:
                if not data:
                    conn._client_eof = True
                else:
                    conn.client_bytes += len(data)
                    self.client_bytes += len(data)
                    self._record_client(conn, data)
                    conn.to_server += data
                    self._check_hold(conn, data)
            else:
                if not data:
                    conn._server_eof = True
                else:
                    self._from_server(conn, data)

    def _record_client(self, conn: Connection, data: bytes) -> None:
        now = time.monotonic()
        buf = conn._client_partial
        buf += data
        while (i := buf.find(b"\r\n")) >= 0:
            conn.client_lines.append((now, bytes(buf[:i])))
            del buf[:i + 2]

    def _check_hold(self, conn: Connection, data: bytes) -> None:
        hold = self._hold
        if hold is None or hold["pattern"] not in data:
            return
        hold["left"] -= data.count(hold["pattern"])
        if hold["left"] > 0:
            return
        self._hold = None
        if hold["forward"]:
            line = data[:data.index(hold["pattern"])].rsplit(b"\n", 1)[-1]
            conn.answer_held, conn.answer_event = True, hold["event"]
            conn.answer_tag = b"\n" + line.split(b" ", 1)[0] + b" "
            self._check_answer(conn)
        else:
            self._stalled = True
            hold["event"].set()

    def _check_answer(self, conn: Connection) -> None:
        if conn.answer_event is not None and conn.answer_tag in b"\n" + conn.to_client:
            conn.answer_event.set()
            conn.answer_event = None

    def _from_server(self, conn: Connection, data: bytes) -> None:
        if conn.cut_pending:
            return  # past the limit: dropped
        rule = self._rule
        if rule is not None:
            left = rule["n"] - self._used(conn)
            if rule["kind"] == "bytes":
                if len(data) >= left:
                    data = data[:max(left, 0)]
                    self._count(conn, data)
                    conn.to_client += data
                    self._fire(conn)
                    return
            else:
                end = self._nth_line_end(conn, data, left)
                if end is not None:
                    data = data[:end]
                    self._count(conn, data)
                    conn.to_client += data
                    self._fire(conn)
                    return
        self._count(conn, data)
        conn.to_client += data
        self._check_answer(conn)

    @staticmethod
    def _nth_line_end(conn: Connection, data: bytes, n: int) -> int | None:
        """Offset just past the n-th CRLF in data (continuing conn's CR state), or None."""
        if n <= 0:
            return 0
        last_cr = conn._last_cr
        count = 0
        if last_cr and data[:1] == b"\n":
            count = 1
            if count == n:
                return 1
        pos = 0
        while True:
            i = data.find(b"\r\n", pos)
            if i < 0:
                return None
            count += 1
            if count == n:
                return i + 2
            pos = i + 2

    def _count(self, conn: Connection, data: bytes) -> None:
        if not data:
            return
        lines = data.count(b"\r\n") + (1 if conn._last_cr and data[:1] == b"\n" else 0)
        conn._last_cr = data[-1:] == b"\r"
        conn.server_bytes += len(data)
        conn.server_lines += lines
        self.server_bytes += len(data)
        self.server_lines_seen += lines

    def after_events(self) -> None:
        for conn in self.connections:
            if conn.closed:
                continue
            # A side that closed: pass the close on once its data is delivered.
            if conn._server_eof and not conn.to_client:
                self._close(conn, cut=False)
                continue
            if conn._client_eof and not conn.to_server:
                self._close(conn, cut=False)
                continue
            self._update(conn, conn.client,
                         (0 if self._stalled or conn._client_eof or len(conn.to_server) > _HIGH_WATER
                          else selectors.EVENT_READ)
                         | (selectors.EVENT_WRITE if conn.to_client and not self._stalled
                            and not conn.answer_held else 0))
            self._update(conn, conn.server,
                         (0 if self._stalled or conn._server_eof or conn.cut_pending
                          or len(conn.to_client) > _HIGH_WATER else selectors.EVENT_READ)
                         | (selectors.EVENT_WRITE if conn.to_server and not self._stalled else 0))

    def _update(self, conn: Connection, sock: socket.socket, mask: int) -> None:
        old = conn._masks.get(sock, 0)
        if mask == old:
            return
        callback = lambda s, m, c=conn: self._io(c, s, m)  # noqa: E731
        if old and mask:
            self._sel.modify(sock, mask, callback)
        elif mask:
            self._sel.register(sock, mask, callback)
        else:
            self._sel.unregister(sock)
        conn._masks[sock] = mask

    def _close(self, conn: Connection, *, cut: bool) -> None:
        if conn.closed:
            return
        conn.closed = True
        conn.cut = cut
        for sock in (conn.client, conn.server):
            if conn._masks.get(sock):
                try:
                    self._sel.unregister(sock)
                except (KeyError, ValueError):
                    pass
            conn._masks[sock] = 0
            if cut:
                _abort(sock)
            else:
                try:
                    sock.close()
                except OSError:
                    pass
        conn.to_client.clear()
        conn.to_server.clear()

    def _cut(self, conn: Connection) -> None:
        if not conn.closed:
            self.cuts += 1
        self._close(conn, cut=True)

    def _cut_all(self) -> int:
        n = 0
        for conn in self.connections:
            if not conn.closed:
                self._cut(conn)
                n += 1
        return n

    def shutdown(self) -> None:
        for conn in self.connections:
            self._close(conn, cut=False)
        try:
            self._sel.unregister(self._listener)
        except (KeyError, ValueError):
            pass
        self._listener.close()


Reply = bytes | Callable[[bytes], bytes | None]


class GarbageServer(_Loop):
    """A hostile server on 127.0.0.1:self.port.

    On connect it sends `banner`; then for every line the client sends it replies with `reply`:
    bytes (sent as they are), or a callable taking the line (without CRLF) and returning the
    bytes to send (None: close the connection). `{tag}` in a bytes reply becomes the
    command's tag, so b"{tag} OK done\\r\\n" answers any command.

        GarbageServer(reply=b"* 1 FETCH (BODY[] {4294967296}\\r\\n")   # a huge literal claim
        GarbageServer(banner=b"\\x00\\xff garbage", reply=b"")
    """

    def __init__(self, banner: bytes = b"* OK hi\r\n", reply: Reply = b"* BAD garbage\r\n", *,
                 close_after_reply: bool = False):
        super().__init__("GarbageServer")
        self.banner = banner
        self.reply = reply
        self.close_after_reply = close_after_reply
        self.received: list[bytes] = []  # every line received, all connections
        self.accepted = 0
        self._clients: dict[socket.socket, bytearray] = {}
        self._out: dict[socket.socket, bytearray] = {}
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.setblocking(False)
        self.host, self.port = self._listener.getsockname()[:2]
        self._sel.register(self._listener, selectors.EVENT_READ, self._accept)
        self.start()

    def _accept(self, listener, mask) -> None:
        try:
            sock, _ = listener.accept()
        except OSError:
            return
        self.accepted += 1
        sock.setblocking(False)
        self._clients[sock] = bytearray()
        self._out[sock] = bytearray(self.banner)
        self._sel.register(sock, selectors.EVENT_READ | selectors.EVENT_WRITE, self._io)

    def _io(self, sock, mask) -> None:
        if sock not in self._clients:
            return
        if mask & selectors.EVENT_READ:
            try:
                data = sock.recv(_CHUNK)
            except (BlockingIOError, InterruptedError):
                data = None
            except OSError:
                data = b""
            if data == b"":
                self._drop(sock)
                return
            if data:
                buf = self._clients[sock]
                buf += data
                while b"\n" in buf:
                    line, _, rest = bytes(buf).partition(b"\n")
                    buf[:] = rest
                    line = line.rstrip(b"\r")
                    self.received.append(line)
                    out = self.reply(line) if callable(self.reply) else self.reply
                    if out is None:
                        self._drop(sock)
                        return
                    if b"{tag}" in out:
                        out = out.replace(b"{tag}", line.split(b" ", 1)[0])
                    self._out[sock] += out
                    if self.close_after_reply:
                        self._flush(sock)
                        self._drop(sock)
                        return
        if mask & selectors.EVENT_WRITE:
            self._flush(sock)

    def _flush(self, sock) -> None:
        out = self._out.get(sock)
        if out:
            try:
                sent = sock.send(out)
                del out[:sent]
            except (BlockingIOError, InterruptedError):
                pass
            except OSError:
                self._drop(sock)

    def after_events(self) -> None:
        for sock in list(self._clients):
            want = selectors.EVENT_READ | (selectors.EVENT_WRITE if self._out[sock] else 0)
            self._sel.modify(sock, want, self._io)

    def _drop(self, sock) -> None:
        self._clients.pop(sock, None)
        self._out.pop(sock, None)
        try:
            self._sel.unregister(sock)
        except (KeyError, ValueError):
            pass
        sock.close()

    def shutdown(self) -> None:
        for sock in list(self._clients):
            self._drop(sock)
        try:
            self._sel.unregister(self._listener)
        except (KeyError, ValueError):
            pass
        self._listener.close()

    def close(self) -> None:
        self.stop()
        if self.error is not None:
            raise RuntimeError("GarbageServer loop failed") from self.error

    def __enter__(self) -> GarbageServer:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
