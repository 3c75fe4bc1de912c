"""The IMAP adapter: imapclient for connecting, TLS/STARTTLS and authentication; raw commands
through the same socket for everything after login.

Why (DESIGN.md §3, imapclient 4.1 pitfalls): its string message sets raise after the command ran
(#666), it sends UID lists uncompressed (Dovecot: "Too long argument"), it lacks QRESYNC SELECT,
VANISHED, UNCHANGEDSINCE/MODIFIED and ESEARCH, `copy()` drops COPYUID, `idle_check()` breaks on
split lines, and imaplib allocates whatever literal size a server claims. So after login we stop
using imapclient's reader: `wire.Reader` reads with bounds, every UID set is built compact by
`uidset`, every argument taken from data is quoted (7-bit only) or sent as a literal
(`wire.string`), and every command line stays <= 8 KB.
"""

from __future__ import annotations

import hashlib
import itertools
import socket
import ssl
from collections.abc import Callable, Sequence

import imapclient
from imapclient.exceptions import IMAPClientError, LoginError

from tuimail.errors import AuthError, CommandFailed, NetworkError, ProtocolError, TLSError, TuimailError
from tuimail.protocol.imap import uidset, wire
from tuimail.protocol.imap.idle import IdleCommands
from tuimail.protocol.imap.literals import LiteralCommands
from tuimail.protocol.imap.login import _Client, _Watchdog, tls_context
from tuimail.protocol.imap.mailbox import MailboxCommands
# FolderEntry, HeaderItem, SelectResult and encode_mailbox are part of this module's interface
from tuimail.protocol.imap.responses import (  # noqa: F401
    _FLAGS_RE,
    _MODSEQ_RE,
    _UID_RE,
    _UNTAGGED_NUM,
    HEADER_FIELDS,
    FolderEntry,
    HeaderItem,
    SelectResult,
    Unsolicited,
    _flags,
    encode_mailbox,
    num,
    one_line,
    vanished_set,
)
from tuimail.protocol.imap.responses import command_name as _name
from tuimail.protocol.imap.responses import flag_arg as _flag_arg  # noqa: F401  (the flag validator, kept under its old name)

MAX_LINE = 8192
# OpenSSL's reasons when the other side of a TLS handshake speaks plain text (an IMAP greeting)
PLAIN_TEXT_REASONS = frozenset({"WRONG_VERSION_NUMBER", "RECORD_LAYER_FAILURE", "PACKET_LENGTH_TOO_LONG",
                                "HTTP_REQUEST", "UNKNOWN_PROTOCOL"})
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


class ImapConnection(MailboxCommands, IdleCommands, LiteralCommands):
    """One IMAP connection. Not thread-safe: one thread owns it."""

    def __init__(self, account, secret: Callable[[], str], *, timeout: float | None = None,
                 max_literal: int = 64 << 20, log: Callable[[str], None] | None = None):
        """timeout: seconds for connecting and logging in, and for each command's answer
        (default: the account's `timeout`, else DEFAULT_TIMEOUT)."""
        self.account = account
        self._secret = secret
        self.timeout = float(timeout if timeout is not None else getattr(account, "timeout", None) or DEFAULT_TIMEOUT)
        self.max_literal = max_literal
        self.max_unsolicited = MAX_UNSOLICITED
        self.max_answer = max_literal + MAX_ANSWER_EXTRA
        self.broken = False  # a read or write failed or timed out: no LOGOUT, just drop it
        self._unsolicited_bytes = 0
        self._phase = ""
        self._watchdog: _Watchdog | None = None
        self.log = log
        self.client: imapclient.IMAPClient | None = None
        self.reader: wire.Reader | None = None
        self.sock: socket.socket | None = None
        self.caps: set[str] = set()
        self.enabled: set[str] = set()
        self.selected: str | None = None
        self.unsolicited = Unsolicited()
        self._tagnum = 0
        self.bytes_out = 0

    # ------------------------------------------------------------------ connect / login

    @property
    def where(self) -> str:
        return f"{self.account.host}:{self.account.port}"

    def connect(self) -> None:
        """Connect, log in and read the capabilities, all within `timeout` seconds (the time a
        password command takes is not counted)."""
        self._watchdog = _Watchdog(self.timeout)
        self._watchdog.resume()
        try:
            self._connect()
        except NetworkError as exc:
            if self._watchdog.fired:
                acc = self.account
                if self._phase == "greeting":  # usually a TLS port spoken to in plain text
                    hint = (f' (a TLS port? try accounts.{acc.name}.security = "tls")' if acc.security != "tls"
                            else f" (check accounts.{acc.name}.port)")
                    raise NetworkError(f"{self.where} accepted the connection but sent no IMAP greeting within"
                                       f" {self.timeout:g} s (timeout){hint}") from None
                raise NetworkError(f"{self.where}: no answer to {self._phase} within {self.timeout:g} s"
                                   " (timeout)") from None
            raise exc from None
        finally:
            self._watchdog.cancel()

    def _connect(self) -> None:
        acc = self.account
        ctx = None
        if acc.security in ("tls", "starttls"):
            ctx = tls_context(acc.tls_ca_file, acc.tls_fingerprint)
        try:
            self._phase = "greeting"
            self.client = _Client(acc.host, port=acc.port, ssl=acc.security == "tls",
                                  # (per recv: a little longer than the watchdog, which names the step)
                                  ssl_context=ctx, timeout=self.timeout + 1, max_literal=self.max_literal,
                                  watchdog=self._watchdog)
            if acc.security == "starttls":
                self._phase = "CAPABILITY"
                if b"STARTTLS" not in self.client.capabilities():
                    raise TLSError(f"{self.where} does not offer STARTTLS; refusing to log in in the clear"
                                   f" (accounts.{acc.name}.security)")
                self._phase = "STARTTLS"
                self.client.starttls(ssl_context=ctx)
            if acc.tls_fingerprint and acc.security != "none":
                self._check_fingerprint(acc.tls_fingerprint)
            self._login()
            self._phase = "CAPABILITY"
            caps = self.client.capabilities()
        except TuimailError:  # TLS refusals, a refused login, a literal over the bound, a password_command error
            self._abort()
            raise
        except ssl.SSLCertVerificationError as exc:
            self._abort()
            raise TLSError(f"TLS certificate of {self.where} not trusted: {exc.verify_message}"
                           f" (set accounts.{acc.name}.tls_ca_file or tls_fingerprint)") from None
        except ssl.SSLError as exc:
            self._abort()
            if exc.reason in PLAIN_TEXT_REASONS and acc.security == "tls":
                raise TLSError(f"TLS with {self.where} failed: the server answered in plain text (plain port?"
                               f' try accounts.{acc.name}.security = "starttls", or the TLS port 993)') from None
            raise TLSError(f"TLS with {self.where} failed: {exc.reason or exc}") from None
        except (OSError, EOFError) as exc:
            self._abort()
            why = (exc.strerror or str(exc) or type(exc).__name__) if isinstance(exc, OSError) else "connection closed"
            raise NetworkError(f"cannot reach {self.where}: {why} (check accounts.{acc.name}.host and port,"
                               " and the network)") from None
        except IMAPClientError as exc:
            self._abort()
            raise NetworkError(f"{self.where}: {one_line(exc)}") from None
        except Exception as exc:  # imapclient choking on a malformed answer (e.g. CAPABILITY without data)
            self._abort()
            raise ProtocolError(f"{self.where}: malformed answer during login ({type(exc).__name__})") from None
        self.caps = {c.decode("ascii", "replace").upper() for c in caps}
        imap = self.client._imap
        self.sock = imap.sock
        self.sock.settimeout(self.timeout)
        self.reader = wire.Reader(self.sock, max_literal=self.max_literal, timeout=self.timeout)

    def _check_fingerprint(self, expected: str) -> None:
        der = self.client._imap.sock.getpeercert(binary_form=True)
        got = hashlib.sha256(der or b"").hexdigest()
        if got != expected:
            raise TLSError(f"TLS certificate of {self.where} has sha256 fingerprint {got}, not the one in"
                           f" accounts.{self.account.name}.tls_fingerprint")

    def _login(self) -> None:
        acc = self.account
        try:
            self._phase = "CAPABILITY"
            if acc.oauth2_token_command is None:
                self.client.capabilities()  # (read before the password command runs: not paused)
            self._watchdog.pause()  # a password command may wait for a passphrase prompt
            try:
                secret = self._secret()
            finally:
                self._watchdog.resume()
            self._phase = "LOGIN"
            if acc.oauth2_token_command:
                self.client.oauth2_login(acc.username, secret)
            elif b"AUTH=PLAIN" in self.client.capabilities():
                self.client.plain_login(acc.username, secret)
            else:
                self.client.login(acc.username, secret)
        except LoginError as exc:
            key = ("oauth2_token_command" if acc.oauth2_token_command else
                   "password_command" if acc.password_command and self._secret_typed() is None else "password")
            raise AuthError(f"{self.where} refused the login for {acc.username!r}: {one_line(exc)} (check"
                            f" accounts.{acc.name}.username and {key})") from None

    def _secret_typed(self) -> str | None:
        return getattr(self._secret, "typed", None)

    def _abort(self) -> None:
        try:
            if self.client is not None:
                self.client.shutdown()
        except Exception:
            pass
        self.client = None

    def close(self) -> None:
        """Log out politely if the connection still works; always release the socket."""
        if self.reader is not None and not self.broken:
            try:
                self.command(b"LOGOUT")
            except Exception:
                pass
        self._abort()
        self.reader = None
        self.selected = None

    def shutdown(self) -> None:
        """Drop the connection now (another thread may be blocked on it)."""
        try:
            if self.sock is not None:
                self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass

    def has(self, cap: str) -> bool:
        return cap.upper() in self.caps

    # ------------------------------------------------------------------ raw command machinery

    def _send(self, data: bytes) -> None:
        try:
            self.sock.sendall(data)
        except (OSError, AttributeError) as exc:
            self.broken = True
            raise NetworkError(f"connection to {self.where} lost: {exc}") from None
        self.bytes_out += len(data)

    def command(self, cmd: bytes | Sequence[bytes | wire.Literal],
                on_untagged: Callable[[list[bytes]], bool] | None = None,
                check: bool = True, fast: Callable[[wire.Reader], None] | None = None) -> tuple[str, bytes]:
        """Send one command and read to its tagged answer. Untagged responses go to on_untagged
        (return True when handled) and then to the generic handler. Returns (status, text).
        cmd: bytes, or parts (bytes and wire.Literal) concatenated as they are."""
        tag = self.send_command(cmd)
        return self.read_until(tag, _head(cmd), on_untagged, check, fast)

    def send_command(self, cmd: bytes | Sequence[bytes | wire.Literal]) -> bytes:
        """Send without waiting (pipelining); pair with read_until(tag, ...). A synchronising
        literal waits for the server's "+" (a NO/BAD instead fails the command: CommandFailed)."""
        if self.reader is None:
            raise NetworkError("not connected")
        self._tagnum += 1
        tag = b"T%d" % self._tagnum
        parts = [cmd] if isinstance(cmd, bytes) else list(cmd)
        segments = wire.render(tag, parts, self._nonsync)
        if any(len(line) > MAX_LINE for line, _, _ in segments):
            raise ValueError(f"command line exceeds {MAX_LINE} bytes")
        for line, lit, sync in segments:
            if self.log:
                self.log("C: " + _redact(line) + (f" <{len(lit.data)} bytes>" if lit is not None else ""))
            self._send(line)
            if lit is not None:
                if sync:
                    self._await_continuation(tag, _head(cmd))
                self._send(lit.data)
        return tag

    def read_until(self, tag: bytes, cmd: bytes, on_untagged=None, check: bool = True,
                   fast: Callable[[wire.Reader], None] | None = None) -> tuple[str, bytes]:
        """Read to the tagged answer of `cmd`, within `timeout` seconds (moved on while the answer
        arrives at wire.PROGRESS_RATE), at most max_unsolicited bytes of what it did not ask for
        and max_answer bytes in all."""
        return self._guarded(cmd, lambda: self._read_until(tag, cmd, on_untagged, check, fast))

    def _guarded(self, cmd: bytes, fn):
        """fn() reading one command's answer under its bounds; their failures as one-line errors
        naming the server and the command (and the connection marked broken: no LOGOUT)."""
        reader = self.reader
        if reader is None:
            raise NetworkError("not connected")
        reader.start(self.timeout, self.max_answer)
        self._unsolicited_bytes = 0
        start = reader.consumed
        try:
            return fn()
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

    def _unsolicited(self, cmd: bytes, size: int) -> None:
        """Count a response the command did not ask for; too many end the command."""
        self._unsolicited_bytes += size
        self.reader.uncredited += size
        if self._unsolicited_bytes > self.max_unsolicited:
            raise ProtocolError(f"{self.where}: server sent more than {self.max_unsolicited >> 20} MB of"
                                f" unsolicited data during {_name(cmd)}; refused")

    def _read_until(self, tag, cmd, on_untagged, check, fast) -> tuple[str, bytes]:
        reader = self.reader
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
                self._generic_code(text)
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
                self._unsolicited(cmd, reader.consumed - before)
                self._generic_untagged(resp)
            elif head.startswith(b"+"):
                raise ProtocolError("unexpected continuation request from the server")
            else:
                raise ProtocolError(f"unexpected server response: {head[:60]!r}")

    def _generic_code(self, text: bytes) -> None:
        code, arg = wire.resp_code(text)
        if code == b"CAPABILITY":
            self.caps = {c.upper() for c in arg.decode("ascii", "replace").split()}

    def _generic_untagged(self, resp: list[bytes]) -> None:
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
            self._generic_code(head[5:] if head.startswith(b"* OK ") or head.startswith(b"* NO ") else head[6:])

    def take_unsolicited(self) -> Unsolicited:
        u, self.unsolicited = self.unsolicited, Unsolicited()
        return u

    # ------------------------------------------------------------------ session-level commands


# ---------------------------------------------------------------------------- helpers

def _head(cmd) -> bytes:
    """A command's first part (its name and the arguments before any literal)."""
    return cmd if isinstance(cmd, bytes) else (cmd[0] if cmd and isinstance(cmd[0], bytes) else b"")


def _redact(line: bytes) -> str:
    s = line.decode("utf-8", "replace").rstrip("\r\n")
    parts = s.split(" ", 2)
    if len(parts) >= 2 and parts[1].upper() in ("LOGIN", "AUTHENTICATE"):
        return f"{parts[0]} {parts[1]} <redacted>"
    return s
