"""One logged-in IMAP session's raw command machinery: the socket, the response reader, the tag
counter, and what the server told us on the way (capabilities, enabled extensions, the selected
folder, unsolicited news).

ImapConnection (connection.py) logs in through imapclient, then attaches the socket here; the
command groups (mailbox.py, literals.py, idle.py) each hold this Session and send through it.
Bounds (DESIGN.md §3): every command line stays <= MAX_LINE bytes, each answer is read within the
timeout (moved on while it keeps arriving) and within a byte budget, and what a command did not
ask for is bounded per command.
"""

from __future__ import annotations

import itertools
import socket
from collections.abc import Callable, Sequence
from typing import TypeVar

from tuimail.errors import CommandFailed, NetworkError, ProtocolError
from tuimail.protocol.imap import uidset, wire
from tuimail.protocol.imap.responses import (
    _FLAGS_RE,
    _MODSEQ_RE,
    _UID_RE,
    _UNTAGGED_NUM,
    Unsolicited,
    _flags,
    num,
    one_line,
    vanished_set,
)
from tuimail.protocol.imap.responses import command_name as _name
from tuimail.protocol.imap.wire import ResponseReader

MAX_LINE = 8192
DEFAULT_TIMEOUT = 30.0  # seconds; the account's `timeout` key
# Per command: what the server may send that the command did not ask for (an endless stream of
# "* OK" or FETCH lines ends here, or at the deadline), and what its whole answer may weigh on top of
# one literal of the largest size we take (a 100k-message FLAGS answer is ~5 MB).
MAX_UNSOLICITED = 16 << 20
MAX_ANSWER_EXTRA = 64 << 20
# Unsolicited news kept between two looks (IDLE, or during other commands): past these, the news
# collapses to "something changed" and the folder is resynced instead.
MAX_KEPT_FLAGS = 50_000
MAX_KEPT_RUNS = 10_000

Response = list[bytes]  # text, literal, text, ... (wire.ResponseReader.read_response)
Handler = Callable[[Response], bool]  # True: the response was the command's, handled
Command = bytes | Sequence[bytes | wire.Literal]
FastScan = Callable[[ResponseReader], None]
T = TypeVar("T")


class Session:
    """The command machinery of one IMAP connection. Not thread-safe: one thread owns it."""

    def __init__(self, where: str, *, timeout: float = DEFAULT_TIMEOUT, max_literal: int = 64 << 20,
                 log: Callable[[str], None] | None = None):
        self.where = where  # "host:port", for messages
        self.timeout = timeout
        self.max_literal = max_literal
        self.max_unsolicited = MAX_UNSOLICITED
        self.max_answer = max_literal + MAX_ANSWER_EXTRA
        self.log = log
        self.sock: socket.socket | None = None
        self.reader: ResponseReader | None = None  # None: not connected
        self.tagnum = 0  # the number in the last tag sent
        self.broken = False  # a read or write failed or timed out: no LOGOUT, just drop it
        self.bytes_out = 0
        self.caps: set[str] = set()
        self.enabled: set[str] = set()
        self.selected: str | None = None
        self.unsolicited = Unsolicited()
        self._unsolicited_bytes = 0

    def attach(self, sock: socket.socket) -> None:
        """Read and write `sock` from now on (after login: imapclient's reader is done with it)."""
        sock.settimeout(self.timeout)
        self.sock = sock
        self.reader = ResponseReader(sock, max_literal=self.max_literal, timeout=self.timeout)

    def detach(self) -> None:
        self.reader = None
        self.selected = None

    def live_reader(self) -> ResponseReader:
        if self.reader is None:
            raise NetworkError("not connected")
        return self.reader

    def has(self, cap: str) -> bool:
        return cap.upper() in self.caps

    # ------------------------------------------------------------------ sending

    def next_tag(self) -> bytes:
        self.tagnum += 1
        return b"T%d" % self.tagnum

    def send(self, data: bytes) -> None:
        try:
            if self.sock is None:
                raise OSError("not connected")
            self.sock.sendall(data)
        except OSError as exc:
            self.broken = True
            raise NetworkError(f"connection to {self.where} lost: {exc}") from None
        self.bytes_out += len(data)

    def command(self, cmd: Command, on_untagged: Handler | None = None, check: bool = True,
                fast: FastScan | None = None) -> tuple[str, bytes]:
        """Send one command and read to its tagged answer. Untagged responses go to on_untagged
        (return True when handled) and then to the generic handler. Returns (status, text).
        cmd: bytes, or parts (bytes and wire.Literal) concatenated as they are."""
        tag = self.send_command(cmd)
        return self.read_until(tag, _head(cmd), on_untagged, check, fast)

    def send_command(self, cmd: Command) -> bytes:
        """Send without waiting (pipelining); pair with read_until(tag, ...). A synchronising
        literal waits for the server's "+" (a NO/BAD instead fails the command: CommandFailed)."""
        if self.reader is None:
            raise NetworkError("not connected")
        tag = self.next_tag()
        parts = [cmd] if isinstance(cmd, bytes) else list(cmd)
        segments = wire.render(tag, parts, self.nonsync)
        if any(len(line) > MAX_LINE for line, _, _ in segments):
            raise ValueError(f"command line exceeds {MAX_LINE} bytes")
        for line, lit, sync in segments:
            if self.log:
                self.log("C: " + _redact(line) + (f" <{len(lit.data)} bytes>" if lit is not None else ""))
            self.send(line)
            if lit is not None:
                if sync:
                    self.await_continuation(tag, _head(cmd))
                self.send(lit.data)
        return tag

    def nonsync(self, n: int) -> bool:
        """Whether an n-byte literal may go as {n+} (no wait for the server's "+"; RFC 7888)."""
        return self.has("LITERAL+") or (self.has("LITERAL-") and n <= wire.LITERAL_MINUS_MAX)

    def await_continuation(self, tag: bytes, cmd: bytes) -> None:
        """Read to the server's "+" before a synchronising literal. A tagged NO/BAD instead ends
        the command (the literal is not sent: the connection stays usable); a tagged OK would
        make the literal's bytes a command of their own, so the connection is given up."""

        def wait(reader: ResponseReader) -> None:
            while True:
                before = reader.consumed
                resp = reader.read_response()
                head = resp[0]
                if head.startswith(b"+"):
                    return
                if head.startswith(tag + b" "):
                    status, _, text = head[len(tag) + 1:].partition(b" ")
                    status_s = status.decode("ascii", "replace").upper()
                    if self.log:
                        self.log("S: " + head[:200].decode("utf-8", "replace"))
                    if status_s in ("NO", "BAD"):
                        raise CommandFailed(_name(cmd), status_s, one_line(text))
                    raise ProtocolError(f"{self.where} answered {_name(cmd)} before its literal was sent")
                if head.startswith(b"* BYE"):
                    raise NetworkError(f"{self.where} closed the session: {one_line(head[6:])}")
                if head.startswith(b"* "):
                    self.count_unsolicited(cmd, reader.consumed - before)
                    self.generic_untagged(resp)
                    continue
                raise ProtocolError(f"unexpected server response: {head[:60]!r}")

        self.guarded(cmd, wait)

    # ------------------------------------------------------------------ reading

    def read_until(self, tag: bytes, cmd: bytes, on_untagged: Handler | None = None, check: bool = True,
                   fast: FastScan | None = None) -> tuple[str, bytes]:
        """Read to the tagged answer of `cmd`, within `timeout` seconds (moved on while the answer
        arrives at wire.PROGRESS_RATE), at most max_unsolicited bytes of what it did not ask for
        and max_answer bytes in all."""
        return self.guarded(cmd, lambda reader: self._read_until(reader, tag, cmd, on_untagged, check, fast))

    def guarded(self, cmd: bytes, fn: Callable[[ResponseReader], T]) -> T:
        """fn(reader) reading one command's answer under its bounds; their failures as one-line
        errors naming the server and the command (and the connection marked broken: no LOGOUT)."""
        reader = self.live_reader()
        reader.start(self.timeout, self.max_answer)
        self._unsolicited_bytes = 0
        start = reader.consumed
        try:
            return fn(reader)
        except ValueError as exc:  # a number or a set in a response that we cannot take (_num, uidset)
            raise ProtocolError(f"malformed server response: {exc}") from None
        except wire.Deadline:
            self.broken = True
            what = "no answer" if reader.consumed == start else "no complete answer"
            more = "; it kept sending unsolicited data" if self._unsolicited_bytes else ""
            raise NetworkError(f"{self.where}: {what} to {_name(cmd)} within {self.timeout:g} s"
                               f" (timeout{more})") from None
        except wire.TooMuch:
            self.broken = True
            raise ProtocolError(f"{self.where}: the answer to {_name(cmd)} exceeds"
                                f" {self.max_answer >> 20} MB; refused") from None
        except wire.ReadError as exc:
            self.broken = True
            raise NetworkError(f"{self.where}: {exc}") from None
        except ProtocolError:
            self.broken = True
            raise
        finally:
            reader.stop()

    def count_unsolicited(self, cmd: bytes, size: int) -> None:
        """Count a response the command did not ask for; too many end the command."""
        self._unsolicited_bytes += size
        self.live_reader().uncredited += size
        if self._unsolicited_bytes > self.max_unsolicited:
            raise ProtocolError(f"{self.where}: server sent more than {self.max_unsolicited >> 20} MB of"
                                f" unsolicited data during {_name(cmd)}; refused")

    def _read_until(self, reader: ResponseReader, tag: bytes, cmd: bytes, on_untagged: Handler | None,
                    check: bool, fast: FastScan | None) -> tuple[str, bytes]:
        while True:
            if fast is not None:
                fast(reader)
            before = reader.consumed
            resp = reader.read_response()
            head = resp[0]
            if head.startswith(tag + b" "):
                rest = head[len(tag) + 1:]
                status, _, text = rest.partition(b" ")
                status_s = status.decode("ascii", "replace").upper()
                if self.log:
                    self.log("S: " + head[:200].decode("utf-8", "replace"))
                if check and status_s != "OK":
                    raise CommandFailed(_name(cmd), status_s, one_line(text.decode("utf-8", "replace")))
                self.generic_code(text)
                return status_s, text
            if head.startswith(b"* "):
                if head.startswith(b"* BYE"):
                    # LOGOUT is answered with BYE and then the tagged OK
                    if not cmd.startswith(b"LOGOUT"):
                        raise NetworkError(f"{self.where} closed the session: "
                                           f"{one_line(head[6:].decode('utf-8', 'replace'))}")
                    continue
                if on_untagged is not None and on_untagged(resp):
                    continue
                self.count_unsolicited(cmd, reader.consumed - before)
                self.generic_untagged(resp)
            elif head.startswith(b"+"):
                raise ProtocolError("unexpected continuation request from the server")
            else:
                raise ProtocolError(f"unexpected server response: {head[:60]!r}")

    # ------------------------------------------------------------------ what the server tells us

    def generic_code(self, text: bytes) -> None:
        code, arg = wire.resp_code(text)
        if code == b"CAPABILITY":
            self.caps = {c.upper() for c in arg.decode("ascii", "replace").split()}

    def generic_untagged(self, resp: Response) -> None:
        """An untagged response no command asked for: kept as news (Unsolicited), bounded."""
        head = resp[0]
        m = _UNTAGGED_NUM.match(head)
        if m:
            kind = m.group(2).upper()
            if kind == b"EXISTS":
                self.unsolicited.exists = num(m.group(1))
            elif kind == b"EXPUNGE":
                self.unsolicited.expunged = True
            elif kind == b"FETCH":
                text = b" ".join(resp[0::2])
                fm, um = _FLAGS_RE.search(text), _UID_RE.search(text)
                u = self.unsolicited
                if fm and um:
                    mm = _MODSEQ_RE.search(text)
                    u.flags.append((num(um.group(1)), _flags(fm.group(1)), num(mm.group(1)) if mm else None))
                    if len(u.flags) > MAX_KEPT_FLAGS:  # too much news to keep: a full flag resync instead
                        u.flags.clear()
                        u.seq_flags = True
                elif fm:
                    u.seq_flags = True
            return
        if head.startswith(b"* VANISHED"):
            u = self.unsolicited
            if u.expunged:
                return  # already collapsed to "some messages are gone": a full uid check follows
            # runs, never expanded: "1:9999999" forty times is 800 bytes on the wire
            runs = uidset.merge([*u.vanished, *itertools.islice(uidset.iter_runs(vanished_set(head)),
                                                                MAX_KEPT_RUNS + 1)])
            if len(runs) > MAX_KEPT_RUNS:
                u.vanished, u.expunged = [], True
            else:
                u.vanished = runs
            return
        if head.startswith(b"* OK ") or head.startswith(b"* NO ") or head.startswith(b"* BAD "):
            self.generic_code(head[5:] if head.startswith(b"* OK ") or head.startswith(b"* NO ") else head[6:])

    def take_unsolicited(self) -> Unsolicited:
        u, self.unsolicited = self.unsolicited, Unsolicited()
        return u


# ---------------------------------------------------------------------------- helpers

def _head(cmd: Command) -> bytes:
    """A command's first part (its name and the arguments before any literal)."""
    if isinstance(cmd, bytes):
        return cmd
    first = cmd[0] if cmd else None
    return first if isinstance(first, bytes) else b""


def _redact(line: bytes) -> str:
    s = line.decode("utf-8", "replace").rstrip("\r\n")
    parts = s.split(" ", 2)
    if len(parts) >= 2 and parts[1].upper() in ("LOGIN", "AUTHENTICATE"):
        return f"{parts[0]} {parts[1]} <redacted>"
    return s
