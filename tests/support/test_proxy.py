"""FaultProxy and GarbageServer against a tiny echo server (no Dovecot needed)."""

from __future__ import annotations

import socket
import socketserver
import threading
import time

import pytest

from tests.support.proxy import FaultProxy, GarbageServer

GREETING = b"* OK echo\r\n"


class _Echo(socketserver.BaseRequestHandler):
    def handle(self):
        sock = self.request
        sock.settimeout(5)
        try:
            sock.sendall(GREETING)
            while True:
                data = sock.recv(65536)
                if not data:
                    return
                sock.sendall(data)
        except OSError:
            return


class _EchoServer(socketserver.ThreadingTCPServer):
    daemon_threads = True
    block_on_close = True
    allow_reuse_address = True


@pytest.fixture
def echo():
    server = _EchoServer(("127.0.0.1", 0), _Echo)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield server.server_address[1]
    server.shutdown()
    server.server_close()
    thread.join(5)


@pytest.fixture(autouse=True)
def no_leaked_threads():
    before = set(threading.enumerate())
    yield
    deadline = time.monotonic() + 5
    while True:
        leaked = [t for t in threading.enumerate() if t not in before and t.is_alive()]
        if not leaked or time.monotonic() > deadline:
            break
        time.sleep(0.02)
    assert not leaked, f"threads left running: {leaked}"


def connect(port: int) -> socket.socket:
    s = socket.create_connection(("127.0.0.1", port), timeout=5)
    return s


def read_exactly(sock: socket.socket, n: int) -> bytes:
    out = b""
    while len(out) < n:
        chunk = sock.recv(n - len(out))
        if not chunk:
            break
        out += chunk
    return out


def read_until_closed(sock: socket.socket, timeout: float = 5) -> tuple[bytes, str]:
    """Everything until the connection ends; also how it ended: 'eof' or 'reset'."""
    sock.settimeout(timeout)
    out = b""
    while True:
        try:
            chunk = sock.recv(65536)
        except ConnectionResetError:
            return out, "reset"
        if not chunk:
            return out, "eof"
        out += chunk


def wait_for(cond, timeout=5.0):
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached")
        time.sleep(0.01)


def test_forwards_both_ways_and_counts(echo):
    with FaultProxy(echo) as proxy:
        with connect(proxy.port) as s:
            assert read_exactly(s, len(GREETING)) == GREETING
            s.sendall(b"a1 NOOP\r\n")
            assert read_exactly(s, 9) == b"a1 NOOP\r\n"
        wait_for(lambda: proxy.open_connections == 0)
        assert proxy.client_bytes == 9
        assert proxy.server_bytes == len(GREETING) + 9
        assert proxy.server_lines_seen == 2
        conn = proxy.connections[0]
        assert (conn.client_bytes, conn.server_bytes, conn.server_lines) == (9, len(GREETING) + 9, 2)
        assert not conn.cut


def test_large_transfer_is_intact(echo):
    payload = bytes(range(256)) * 20000  # 5 MB: exercises partial sends and back-pressure
    with FaultProxy(echo) as proxy, connect(proxy.port) as s:
        read_exactly(s, len(GREETING))
        sender = threading.Thread(target=s.sendall, args=(payload,))
        sender.start()
        got = read_exactly(s, len(payload))
        sender.join()
        assert got == payload
        assert proxy.server_bytes == len(GREETING) + len(payload)


def test_cut_after_server_lines_per_connection(echo):
    with FaultProxy(echo) as proxy:
        proxy.cut_after_server_lines(3)  # greeting + 2 echoed lines
        with connect(proxy.port) as s:
            s.sendall(b"l1\r\nl2\r\nl3\r\nl4\r\n")
            data, how = read_until_closed(s)
        assert data == GREETING + b"l1\r\nl2\r\n"
        assert how == "reset"
        assert proxy.cuts == 1 and proxy.connections[0].cut
        # once=True (default): the next connection is not cut
        with connect(proxy.port) as s:
            s.sendall(b"x\r\ny\r\nz\r\n")
            assert read_exactly(s, len(GREETING) + 9) == GREETING + b"x\r\ny\r\nz\r\n"
        assert proxy.cuts == 1


def test_cut_after_lines_split_across_chunks(echo):
    """A CRLF split across two reads still counts as one line."""
    with FaultProxy(echo) as proxy, connect(proxy.port) as s:
        read_exactly(s, len(GREETING))
        proxy.cut_after_server_lines(2)  # per connection: greeting is line 1
        s.sendall(b"abc\r")
        assert read_exactly(s, 4) == b"abc\r"
        s.sendall(b"\nmore\r\n")
        data, how = read_until_closed(s)
        assert data == b"\n" and how == "reset"
        assert proxy.connections[0].server_lines == 2


def test_cut_after_server_lines_global_counts_from_arming(echo):
    with FaultProxy(echo) as proxy:
        first = connect(proxy.port)
        read_exactly(first, len(GREETING))
        proxy.cut_after_server_lines(2, per_connection=False)
        second = connect(proxy.port)  # its greeting is global line 1
        read_exactly(second, len(GREETING))
        first.sendall(b"one\r\ntwo\r\n")  # line 2 ends it: "two" never arrives
        data, how = read_until_closed(first)
        assert data == b"one\r\n" and how == "reset"
        second.sendall(b"still\r\n")
        assert read_exactly(second, 7) == b"still\r\n"
        first.close()
        second.close()


def test_cut_after_server_bytes_and_repeat(echo):
    with FaultProxy(echo) as proxy:
        proxy.cut_after_server_bytes(len(GREETING) + 3, once=False)
        for _ in range(2):  # every connection is cut at the same point
            with connect(proxy.port) as s:
                s.sendall(b"hello\r\n")
                data, how = read_until_closed(s)
            assert data == GREETING + b"hel"
            assert how == "reset"
        assert proxy.cuts == 2
        proxy.clear_rules()
        with connect(proxy.port) as s:
            s.sendall(b"hello\r\n")
            assert read_exactly(s, len(GREETING) + 7) == GREETING + b"hello\r\n"


def test_rule_already_passed_cuts_at_once(echo):
    with FaultProxy(echo) as proxy, connect(proxy.port) as s:
        read_exactly(s, len(GREETING))
        wait_for(lambda: proxy.server_lines_seen == 1)
        proxy.cut_after_server_lines(1)
        data, how = read_until_closed(s)
        assert (data, how) == (b"", "reset")


def test_stall_and_resume(echo):
    with FaultProxy(echo) as proxy, connect(proxy.port) as s:
        read_exactly(s, len(GREETING))
        proxy.stall()
        s.sendall(b"ping\r\n")
        s.settimeout(0.3)
        with pytest.raises(socket.timeout):
            s.recv(10)
        assert proxy.client_bytes == 0
        proxy.resume()
        s.settimeout(5)
        assert read_exactly(s, 6) == b"ping\r\n"


@pytest.mark.parametrize("forward", [True, False])
def test_stall_on_client_holds_the_nth_command(echo, forward):
    """forward=True: the server got the 2nd STORE and answered (the echo), the client waits for
    that answer; forward=False: the command itself waits. resume() delivers it."""
    with FaultProxy(echo) as proxy, connect(proxy.port) as s:
        read_exactly(s, len(GREETING))
        held = proxy.stall_on_client(b" STORE ", nth=2, forward=forward)
        s.sendall(b"a1 UID STORE 1 +FLAGS (x)\r\n")
        assert read_exactly(s, 27) == b"a1 UID STORE 1 +FLAGS (x)\r\n"
        assert not held.is_set()
        s.sendall(b"a2 UID STORE 2 +FLAGS (x)\r\n")
        assert held.wait(5)
        wait_for(lambda: proxy.server_bytes == len(GREETING) + (54 if forward else 27))
        s.settimeout(0.3)
        with pytest.raises(socket.timeout):
            s.recv(10)
        proxy.resume()
        s.settimeout(5)
        assert read_exactly(s, 27) == b"a2 UID STORE 2 +FLAGS (x)\r\n"


def test_cut_now_resets_both_sides(echo):
    with FaultProxy(echo) as proxy:
        a, b = connect(proxy.port), connect(proxy.port)
        read_exactly(a, len(GREETING))
        read_exactly(b, len(GREETING))
        wait_for(lambda: proxy.open_connections == 2)
        assert proxy.cut_now() == 2
        for s in (a, b):
            assert read_until_closed(s) == (b"", "reset")
            s.close()
        assert proxy.open_connections == 0


def test_cut_now_while_stalled(echo):
    with FaultProxy(echo) as proxy, connect(proxy.port) as s:
        read_exactly(s, len(GREETING))
        proxy.stall()
        assert proxy.cut_now() == 1
        assert read_until_closed(s) == (b"", "reset")


def test_refuse_new(echo):
    with FaultProxy(echo) as proxy:
        proxy.refuse_new(True)
        try:  # the reset may already arrive while connect() waits
            with connect(proxy.port) as s:
                assert read_until_closed(s)[0] == b""
        except ConnectionResetError:
            pass
        wait_for(lambda: proxy.refused == 1)
        assert not proxy.connections
        proxy.refuse_new(False)
        with connect(proxy.port) as s:
            assert read_exactly(s, len(GREETING)) == GREETING


def test_unreachable_target_resets_the_client():
    port = socket.create_server(("127.0.0.1", 0))
    closed_port = port.getsockname()[1]
    port.close()
    with FaultProxy(closed_port) as proxy:
        try:
            with connect(proxy.port) as s:
                assert read_until_closed(s)[0] == b""
        except ConnectionResetError:
            pass
        wait_for(lambda: proxy.refused == 1)


def test_server_close_is_passed_on(echo):
    with GarbageServer(banner=b"* BYE go away\r\n", reply=None) as garbage:
        garbage.reply = lambda line: None  # any command: hang up
        with FaultProxy(garbage.port) as proxy, connect(proxy.port) as s:
            assert read_exactly(s, 15) == b"* BYE go away\r\n"
            s.sendall(b"a LOGIN x y\r\n")
            assert read_until_closed(s) == (b"", "eof")
            wait_for(lambda: proxy.open_connections == 0)
            assert not proxy.connections[0].cut


def test_close_stops_listening(echo):
    proxy = FaultProxy(echo)
    s = connect(proxy.port)
    read_exactly(s, len(GREETING))
    proxy.close()
    assert read_until_closed(s)[0] == b""
    s.close()
    with pytest.raises(OSError):
        connect(proxy.port).close()
    proxy.close()  # idempotent


def test_garbage_server_banner_and_tagged_reply():
    with GarbageServer(banner=b"* OK hi\r\n", reply=b"* 1 FETCH (BODY[] {4294967296}\r\n{tag} OK\r\n") as g:
        with connect(g.port) as s:
            assert read_exactly(s, 9) == b"* OK hi\r\n"
            s.sendall(b"A001 NOOP\r\n")
            want = b"* 1 FETCH (BODY[] {4294967296}\r\nA001 OK\r\n"
            assert read_exactly(s, len(want)) == want
        assert g.received == [b"A001 NOOP"]
        assert g.accepted == 1


def test_garbage_server_callable_reply_and_close_after():
    def reply(line: bytes) -> bytes:
        return b"\x1b[31m" + line[::-1] + b"\r\n"

    with GarbageServer(banner=b"", reply=reply, close_after_reply=True) as g, connect(g.port) as s:
        s.sendall(b"abc\r\n")
        assert read_until_closed(s) == (b"\x1b[31mcba\r\n", "eof")
