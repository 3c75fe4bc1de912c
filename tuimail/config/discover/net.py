"""The network seams of discovery, each injectable: a TCP connector (host, port, timeout) ->
socket, and a small HTTP(S) GET built on it with bounded size, time and redirects. Tests pass a
connector that maps names such as autoconfig.example.test:80 to loopback listeners."""

from __future__ import annotations

import http.client
import socket
import ssl
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import urljoin, urlsplit

Connector = Callable[[str, int, float], socket.socket]
TlsContext = Callable[[], ssl.SSLContext]

MAX_LINE = 8192  # one protocol line
MAX_CHAT = 256 << 10  # everything a probe reads from one server
MAX_REDIRECTS = 3


def tcp_connect(host: str, port: int, timeout: float) -> socket.socket:
    """The default connector: the system's resolver and a TCP connection, within `timeout`."""
    return socket.create_connection((host, port), timeout=timeout)


def default_tls() -> ssl.SSLContext:
    return ssl.create_default_context()


class Cutoff:
    """Shuts a connection down when its time is up, under whatever read or TLS handshake is
    waiting: per-read timeouts alone let a server trickling a byte a second go on for ever."""

    def __init__(self, seconds: float):
        self.fired = False
        self._lock = threading.Lock()
        self._dup: socket.socket | None = None  # survives TLS wrapping, which detaches the original
        self._timer = threading.Timer(max(0.0, seconds), self._fire)
        self._timer.daemon = True
        self._timer.start()

    def watch(self, sock: socket.socket) -> None:
        with self._lock:
            try:
                self._dup = sock.dup()
            except OSError:
                return
            if self.fired:
                self._shut()

    def _fire(self) -> None:
        with self._lock:
            self.fired = True
            self._shut()

    def _shut(self) -> None:
        try:
            if self._dup is not None:
                self._dup.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass

    def cancel(self) -> None:
        self._timer.cancel()
        with self._lock:
            if self._dup is not None:
                self._dup.close()
                self._dup = None


class ProbeFailed(Exception):
    """A server said something unexpected, too much, or nothing in time (str: one line)."""


class Lines:
    """Reads CRLF lines from a socket: each at most MAX_LINE bytes, MAX_CHAT in all, and all of
    it before one deadline (a server trickling a byte a second does not keep a probe alive)."""

    def __init__(self, sock: socket.socket | ssl.SSLSocket, deadline: float):
        self.sock = sock
        self.deadline = deadline
        self.buf = b""
        self.total = 0

    def _recv(self) -> bytes:
        left = self.deadline - time.monotonic()
        if left <= 0:
            raise ProbeFailed("no answer in time (timeout)")
        self.sock.settimeout(left)
        try:
            data = self.sock.recv(4096)
        except TimeoutError:
            raise ProbeFailed("no answer in time (timeout)") from None
        if not data:
            raise ProbeFailed("the server closed the connection")
        self.total += len(data)
        if self.total > MAX_CHAT:
            raise ProbeFailed(f"the server sent more than {MAX_CHAT >> 10} KB")
        return data

    def line(self) -> bytes:
        while b"\n" not in self.buf:
            if len(self.buf) > MAX_LINE:
                raise ProbeFailed(f"a line longer than {MAX_LINE} bytes")
            self.buf += self._recv()
        line, _, self.buf = self.buf.partition(b"\n")
        if len(line) > MAX_LINE:
            raise ProbeFailed(f"a line longer than {MAX_LINE} bytes")
        return line.rstrip(b"\r")

    def send(self, data: bytes) -> None:
        left = self.deadline - time.monotonic()
        if left <= 0:
            raise ProbeFailed("no answer in time (timeout)")
        self.sock.settimeout(left)
        self.sock.sendall(data)

    def start_tls(self, ctx: ssl.SSLContext, host: str) -> None:
        """Wrap the socket in TLS (after a STARTTLS answer). Bytes the server sent ahead of the
        handshake would be a plain-text injection (CVE-2011-0411 style): refused."""
        if self.buf:
            raise ProbeFailed("the server sent data before the TLS handshake (refused)")
        self.sock.settimeout(max(0.01, self.deadline - time.monotonic()))
        self.sock = ctx.wrap_socket(self.sock, server_hostname=host)


@dataclass(frozen=True)
class Response:
    status: int
    body: bytes
    url: str  # after redirects
    content_type: str = ""


class FetchFailed(Exception):
    """No HTTP answer (str: one line)."""


Fetcher = Callable[[str, float, int], Response]


class HttpFetcher:
    """GET url -> Response, through `connector`: at most `max_bytes` of body (more is an error),
    the whole exchange within `timeout`, at most MAX_REDIRECTS redirects and never from https to
    http. No cookies, no credentials, no proxy."""

    def __init__(self, connector: Connector = tcp_connect, tls: TlsContext = default_tls):
        self.connector = connector
        self.tls = tls

    def __call__(self, url: str, timeout: float, max_bytes: int) -> Response:
        deadline = time.monotonic() + timeout
        for _ in range(MAX_REDIRECTS + 1):
            status, body, location, ctype = self._once(url, deadline, max_bytes)
            if status in (301, 302, 303, 307, 308) and location:
                new = urljoin(url, location)
                if urlsplit(new).scheme not in ("http", "https"):
                    raise FetchFailed(f"redirected to a non-HTTP address {new[:80]!r}")
                if urlsplit(url).scheme == "https" and urlsplit(new).scheme != "https":
                    raise FetchFailed("redirected from https to http (refused)")
                url = new
                continue
            return Response(status, body, url, ctype)
        raise FetchFailed(f"more than {MAX_REDIRECTS} redirects")

    def _once(self, url: str, deadline: float, max_bytes: int) -> tuple[int, bytes, str, str]:
        parts = urlsplit(url)
        host = parts.hostname or ""
        secure = parts.scheme == "https"
        try:
            port = parts.port or (443 if secure else 80)
        except ValueError:
            raise FetchFailed(f"bad port in {url[:80]!r}") from None
        path = parts.path or "/"
        if parts.query:
            path += "?" + parts.query
        left = deadline - time.monotonic()
        if left <= 0:
            raise FetchFailed("no answer in time (timeout)")
        cutoff = Cutoff(left)
        try:
            return self._exchange(host, port, secure, path, deadline, max_bytes, left, cutoff)
        except FetchFailed:
            if cutoff.fired:
                raise FetchFailed("no answer in time (timeout)") from None
            raise
        finally:
            cutoff.cancel()

    def _exchange(self, host: str, port: int, secure: bool, path: str, deadline: float, max_bytes: int,
                  left: float, cutoff: Cutoff) -> tuple[int, bytes, str, str]:
        connector, tls = self.connector, self.tls

        class _Conn(http.client.HTTPConnection):
            def connect(self) -> None:
                sock = connector(host, port, left)
                cutoff.watch(sock)
                if secure:
                    sock.settimeout(max(0.01, deadline - time.monotonic()))
                    sock = tls().wrap_socket(sock, server_hostname=host)
                self.sock = sock

        conn = _Conn(host, port, timeout=left)
        try:
            conn.request("GET", path, headers={"Accept": "application/xml, application/json, */*",
                                               "User-Agent": "tuimail-setup", "Connection": "close"})
            if conn.sock is not None:
                conn.sock.settimeout(max(0.01, deadline - time.monotonic()))
            resp = conn.getresponse()
            length = resp.getheader("Content-Length")
            if length and length.isdigit() and int(length) > max_bytes:
                raise FetchFailed(f"the answer is larger than {max_bytes >> 10} KB ({int(length)} bytes)")
            body = b""
            while len(body) <= max_bytes:
                if time.monotonic() > deadline:
                    raise FetchFailed("no answer in time (timeout)")
                if conn.sock is not None:
                    conn.sock.settimeout(max(0.01, deadline - time.monotonic()))
                chunk = resp.read1(65536) if hasattr(resp, "read1") else resp.read(65536)
                if not chunk:
                    break
                body += chunk
            if len(body) > max_bytes:
                raise FetchFailed(f"the answer is larger than {max_bytes >> 10} KB")
            return resp.status, body, resp.getheader("Location") or "", resp.getheader("Content-Type") or ""
        except ssl.SSLCertVerificationError as exc:
            raise FetchFailed(f"TLS certificate not trusted: {exc.verify_message}") from None
        except ssl.SSLError as exc:
            raise FetchFailed(f"TLS failed: {exc.reason or exc}") from None
        except TimeoutError:
            raise FetchFailed("no answer in time (timeout)") from None
        except (OSError, http.client.HTTPException) as exc:
            why = exc.strerror if isinstance(exc, OSError) and exc.strerror else type(exc).__name__
            raise FetchFailed(str(why)) from None
        except ValueError:  # a host name the IDNA codec or http.client refuses (from a redirect)
            raise FetchFailed(f"bad address {host[:80]!r}") from None
        finally:
            conn.close()
