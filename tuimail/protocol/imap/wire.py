"""Reading IMAP responses off a socket, with bounds, and parsing them.

A response is a list of chunks: text, literal, text, literal, ..., text. The text chunks are the
line pieces without their trailing "{n}\\r\\n"; the literals are the raw bytes.

We read through our own buffer rather than imaplib's file object so that
- a literal larger than `max_literal` is refused before anything is allocated;
- IDLE can wait on the socket with `selectors` and still see a response line that arrives in
  several packets (imapclient's idle_check breaks on that, #519/#464);
- the hot path (100k header FETCH responses) costs a few Python operations per message.
"""

from __future__ import annotations

import re
import selectors
import socket
import ssl
import time
from typing import Protocol

from tuimail.errors import NetworkError, ProtocolError

_LITERAL_END = re.compile(rb"\{(\d+)\+?\}\r\n\Z")

# While an answer keeps arriving at this rate or faster, its deadline moves on: a 60 MB attachment
# or a 5,000-header window on a slow link is not cut, a trickled byte every 20 s is.
PROGRESS_RATE = 64 * 1024  # bytes per second


class Fileno(Protocol):
    """Anything a selector can wait on (a Waker, a socket)."""

    def fileno(self) -> int: ...


class ReadError(NetworkError):
    """The connection failed under the reader (the caller adds which server and command)."""


class Deadline(ReadError):
    """The overall deadline of the answer being read passed."""


class TooMuch(ProtocolError):
    """More bytes arrived for one answer than it may take."""


class ResponseReader:
    """Reads IMAP responses off one socket, through its own buffer, with bounds (see the module)."""

    def __init__(self, sock: socket.socket, max_literal: int = 64 << 20, max_line: int = 16 << 20,
                 timeout: float = 30.0):
        self.sock = sock
        self.buf = bytearray()
        self.max_literal = max_literal
        self.max_line = max_line
        self.timeout = timeout  # the socket's timeout when no deadline is running
        self.bytes_in = 0
        self.deadline: float | None = None  # monotonic time; None: no overall deadline (the IDLE wait)
        self.limit: int | None = None  # bytes_in may not pass this while the deadline runs
        self.uncredited = 0  # bytes the caller found unsolicited: they do not move the deadline
        self._credit_from = 0

    def start(self, seconds: float, max_bytes: int | None = None) -> None:
        """Run an overall deadline of `seconds` (plus PROGRESS_RATE credit for what arrives and is
        not marked uncredited) and a byte budget, until stop()."""
        self.deadline = time.monotonic() + seconds
        self._credit_from = self.bytes_in
        self.uncredited = 0
        self.limit = None if max_bytes is None else self.bytes_in + max_bytes

    def stop(self) -> None:
        if self.deadline is not None:
            self.sock.settimeout(self.timeout)  # back to the per-recv timeout (e.g. for sendall)
        self.deadline = self.limit = None

    @property
    def consumed(self) -> int:
        """Bytes taken out of the buffer so far (what the responses read until now weighed)."""
        return self.bytes_in - len(self.buf)

    def _time_left(self) -> float:
        assert self.deadline is not None  # called only while a deadline runs
        credit = max(0, self.bytes_in - self._credit_from - self.uncredited) / PROGRESS_RATE
        return self.deadline + credit - time.monotonic()

    def _fill(self) -> None:
        if self.deadline is not None:
            left = self._time_left()
            if left <= 0:
                raise Deadline("deadline passed")
            self.sock.settimeout(left)
        try:
            data = self.sock.recv(1 << 18)
        except TimeoutError:
            if self.deadline is not None:
                raise Deadline("deadline passed") from None
            raise ReadError("the server stopped answering (timed out)") from None
        except (ssl.SSLError, OSError) as exc:
            raise ReadError(f"connection lost: {exc.__class__.__name__}: {exc}") from None
        if not data:
            raise ReadError("connection closed by the server")
        self.bytes_in += len(data)
        self.buf += data
        if self.limit is not None and self.bytes_in > self.limit:
            raise TooMuch("answer too large")

    def readline(self) -> bytes:
        start = 0
        while True:
            i = self.buf.find(b"\r\n", start)
            if i >= 0:
                line = bytes(self.buf[:i + 2])
                del self.buf[:i + 2]
                return line
            if len(self.buf) > self.max_line:
                raise ProtocolError(f"server sent a line longer than {self.max_line} bytes")
            start = max(0, len(self.buf) - 1)
            self._fill()

    def read(self, n: int) -> bytes:
        while len(self.buf) < n:
            self._fill()
        out = bytes(self.buf[:n])
        del self.buf[:n]
        return out

    def read_response(self) -> list[bytes]:
        """One complete response (a line plus any literals and continuation lines)."""
        chunks: list[bytes] = []
        while True:
            line = self.readline()
            m = _LITERAL_END.search(line, max(0, len(line) - 24))
            if m is None:
                chunks.append(line[:-2])
                return chunks
            n = int(m.group(1))
            if n > self.max_literal:
                raise ProtocolError(f"server announced a {n}-byte literal (limit {self.max_literal}); refused")
            chunks.append(line[:m.start()])
            chunks.append(self.read(n))

    def has_buffered_line(self) -> bool:
        return b"\r\n" in self.buf

    def wait_readable(self, timeout: float, wake: Fileno | None = None) -> bool:
        """True when a response can be read without blocking (IDLE). `wake` (an object with
        fileno()) ends the wait early when it becomes readable; then the answer is False."""
        if self.has_buffered_line():
            return True
        if isinstance(self.sock, ssl.SSLSocket) and self.sock.pending():
            return True
        with selectors.DefaultSelector() as sel:
            sel.register(self.sock, selectors.EVENT_READ)
            if wake is not None:
                sel.register(wake, selectors.EVENT_READ)
            return any(key.fileobj is self.sock for key, _ in sel.select(timeout))


# ---------------------------------------------------------------------------- tokenizer

_TOKEN = re.compile(rb"""
    [ ]*(?:
      (?P<open>\()
    | (?P<close>\))
    | "(?P<quoted>(?:[^"\\]|\\.)*)"
    | (?P<atom>[^ ()"\[\]]+(?:\[[^\]]*\](?:<[0-9.]+>)?)?)
    | (?P<brack>\[[^\]]*\])
    )""", re.X)


def tokenize(chunks: list[bytes]) -> list:
    """Parse a response into nested tuples: atoms as bytes, numbers as int, NIL as None,
    quoted strings and literals as bytes (the shape imapclient produces)."""
    stack: list[list] = [[]]
    for idx, chunk in enumerate(chunks):
        if idx % 2 == 1:
            stack[-1].append(chunk)
            continue
        pos, n = 0, len(chunk)
        while pos < n:
            m = _TOKEN.match(chunk, pos)
            if m is None or m.end() == pos:
                if chunk[pos:pos + 1] == b" ":
                    pos += 1
                    continue
                raise ProtocolError(f"unparseable server response near {chunk[pos:pos + 30]!r}")
            pos = m.end()
            kind = m.lastgroup
            if kind == "open":
                stack.append([])
            elif kind == "close":
                if len(stack) == 1:
                    raise ProtocolError("unbalanced parenthesis in server response")
                inner = tuple(stack.pop())
                stack[-1].append(inner)
            elif kind == "quoted":
                stack[-1].append(re.sub(rb"\\(.)", rb"\1", m.group("quoted")))
            elif kind == "atom":
                a = m.group("atom")
                if a.isdigit():
                    stack[-1].append(int(a))
                elif a == b"NIL":
                    stack[-1].append(None)
                else:
                    stack[-1].append(a)
            else:
                stack[-1].append(m.group("brack"))
    while len(stack) > 1:  # tolerate a missing close paren at the very end
        inner = tuple(stack.pop())
        stack[-1].append(inner)
    return stack[0]


def pairs(items) -> dict:
    """FETCH item list (name, value, name, value...) -> {NAME: value} with upper-cased names."""
    out = {}
    it = iter(items)
    for name in it:
        try:
            val = next(it)
        except StopIteration:
            break
        if isinstance(name, bytes):
            out[name.upper()] = val
    return out


_RESP_CODE = re.compile(rb"^\[([A-Z0-9.-]+)(?: ([^\]]*))?\]")


def resp_code(text: bytes) -> tuple[bytes | None, bytes]:
    """'[COPYUID 5 1:3 7:9] Moved' -> (b'COPYUID', b'5 1:3 7:9')."""
    m = _RESP_CODE.match(text)
    if not m:
        return None, b""
    return m.group(1).upper(), m.group(2) or b""


def quote(s: str | bytes) -> bytes:
    """An IMAP quoted string. CR, LF and NUL are refused (they would inject a command), and so is
    8-bit data (a quoted string is 7-bit): `string()` sends those as a literal."""
    b = s.encode() if isinstance(s, str) else s
    if any(c in b for c in (b"\r", b"\n", b"\0")):
        raise ValueError("CR, LF or NUL in an IMAP argument")
    if not b.isascii():
        raise ValueError("8-bit data in an IMAP quoted string (send it as a literal)")
    return b'"' + b.replace(b"\\", b"\\\\").replace(b'"', b'\\"') + b'"'


# ---------------------------------------------------------------------------- literals

LITERAL_MINUS_MAX = 4096  # RFC 7888: LITERAL- takes non-synchronising literals up to this size


class Literal:
    """A literal command argument: `{n}` CRLF and the bytes (any octet but NUL). The connection
    sends it synchronising (waits for the server's "+") or, where the server takes it, as `{n+}`."""

    __slots__ = ("data",)

    def __init__(self, data: bytes):
        data = bytes(data)
        if b"\0" in data:
            raise ValueError("NUL in an IMAP literal")
        self.data = data

    def __repr__(self) -> str:
        return f"Literal({len(self.data)} bytes)"


def string(s: str | bytes) -> bytes | Literal:
    """A string argument from data: quoted when it is 7-bit text without CR/LF/NUL, else a literal
    (NUL is refused either way)."""
    b = s.encode() if isinstance(s, str) else bytes(s)
    if b.isascii() and not any(c in b for c in (b"\r", b"\n", b"\0")):
        return quote(b)
    return Literal(b)


def has_8bit(parts) -> bool:
    """Whether a command's parts carry a non-ASCII literal (SEARCH then says CHARSET UTF-8)."""
    return any(isinstance(p, Literal) and not p.data.isascii() for p in parts)


def render(tag: bytes, parts, nonsync) -> list[tuple[bytes, Literal | None, bool]]:
    """A command as it goes on the wire: [(line, literal or None, synchronising)], each line ending
    in CRLF (after its `{n}`/`{n+}` when a literal follows). `parts` are bytes (sent as they are:
    CR, LF and NUL refused) and Literals, concatenated; nonsync(n) says whether an n-byte literal
    may go without waiting for the server."""
    out: list[tuple[bytes, Literal | None, bool]] = []
    line = tag + b" "
    for p in parts:
        if isinstance(p, Literal):
            n = len(p.data)
            ns = bool(nonsync(n))
            out.append((line + (b"{%d+}\r\n" % n if ns else b"{%d}\r\n" % n), p, not ns))
            line = b""
            continue
        if any(c in p for c in (b"\r", b"\n", b"\0")):
            raise ValueError("CR, LF or NUL inside an IMAP command")
        line += p
    out.append((line + b"\r\n", None, False))
    return out
