"""A POP3 client (RFC 1939, 2449 CAPA, 2595 STLS, 5034 SASL), on a raw socket with bounded reads.

Why not poplib (DESIGN.md §3b): it stops at a line over 2,048 bytes with `error_proto('line too
long')` and leaves the session out of step (real mail has 5,000-byte lines); it has no SASL, so AUTH
PLAIN and XOAUTH2 would be written by hand anyway; it sends one command and waits, so PIPELINING
cannot be used; its only bound is a per-recv timeout, which a server trickling a byte every 20 s
resets forever; and it counts no bytes. What poplib would still give us -- one socket, CRLF lines, the
dot-stuffed multi-line answer -- is forty lines here, so this module owns the wire:

- every answer is read under one deadline (moved on while data keeps arriving at PROGRESS_RATE, so a
  60 MB message on a slow link is not cut) and a byte budget (MAX_STATUS_LINE for a status line,
  `max_message` for a TOP/RETR answer, MAX_LISTING for LIST/UIDL/CAPA);
- a multi-line answer is found by its terminator, not line by line: no line-length limit beyond the
  message's;
- TLS always with a verified context (or the pinned fingerprint); STLS refused when not offered;
  plain text only on loopback or with allow_insecure;
- an -ERR becomes one line quoting the (sanitised) server; [IN-USE], [SYS/TEMP] and [LOGIN-DELAY]
  make it Pop3Busy, a NetworkError: retry later;
- TOP, RETR and DELE batches are pipelined when the server offers PIPELINING: up to PIPELINE_BYTES
  of commands in flight, so the server keeps answering while the caller stores what came; the
  answers are handed over in windows (`top_windows`, `retr_windows`): every complete answer the
  buffer holds, split from it with a find per answer, not read line by line;
- `bytes_in` / `bytes_out` count the session's traffic (TLS payload, i.e. POP3 bytes).

DELE is applied by the server only when QUIT succeeds: `abort()` (and leaving the `with` block on an
exception) drops the connection without QUIT, so nothing is deleted.
"""

from __future__ import annotations

import base64
import hashlib
import ipaddress
import re
import socket
import ssl
import threading
import time
from collections import Counter, deque
from collections.abc import Callable, Generator, Iterable, Iterator
from typing import Any

from tuimail.errors import AuthError, CommandFailed, NetworkError, ProtocolError, TLSError
# shared with IMAP (one definition each; DESIGN.md §1 plans them in protocol/tls.py): the verified
# context (or the pinned fingerprint), OpenSSL's "that was plain text" reasons, the one-line sanitiser
from tuimail.protocol.tls import PLAIN_TEXT_REASONS, one_line, verified_context

__all__ = [
    "DEFAULT_TIMEOUT", "MAX_MESSAGE", "Pop3Busy", "Pop3Refused", "Pop3Session", "response_code",
]

DEFAULT_PORT = {"tls": 995, "starttls": 110, "none": 110}
DEFAULT_TIMEOUT = 30.0
MAX_STATUS_LINE = 8192  # RFC 2449 allows 512 octets; some servers are chatty
MAX_MESSAGE = 64 << 20  # one TOP or RETR answer
MAX_LISTING = 64 << 20  # one LIST / UIDL / CAPA answer (a million messages is ~20 MB of UIDL)
MAX_COMMAND = 8192  # an XOAUTH2 answer is a few KB; anything else is short
# Commands in flight at most (pipelined): 12 KB is ~1,000 "TOP n 0" -- Dovecot answers those in
# ~20 us each, so it stays busy while the caller commits a window of a few hundred -- and stays far
# below any socket buffer, so sending them cannot block while the server waits for us to read.
PIPELINE_BYTES = 12 * 1024
PROGRESS_RATE = 64 * 1024  # bytes per second that move an answer's deadline on
TEMPORARY_CODES = ("IN-USE", "SYS/TEMP", "LOGIN-DELAY")
_UIDL_RE = re.compile(rb"(\d{1,10}) ([\x21-\x7e]{1,70})")
_LIST_RE = re.compile(rb"(\d{1,10}) (\d{1,15})(?: .*)?")
_STAT_RE = re.compile(rb"(\d{1,10}) (\d{1,15})(?: .*)?")
# the same, for a whole listing at once (5,000 lines: 3 ms, not 12 ms line by line); a listing
# with a line they do not take is read line by line, for the error message
_UIDL_LINES = re.compile(rb"^(\d{1,10}) ([\x21-\x7e]{1,70})\r\n", re.M)
_LIST_LINES = re.compile(rb"^(\d{1,10}) (\d{1,15})(?: [^\r\n]*)?\r\n", re.M)
_APOP_STAMP = re.compile(rb"<[\x21-\x3b\x3d\x3f-\x7e]{1,200}@[\x21-\x3b\x3d\x3f-\x7e]{1,200}>")


def response_code(text: bytes | str) -> str | None:
    """The RFC 2449 response code at the start of a status text ("[IN-USE] locked" -> "IN-USE")."""
    s = text.decode("ascii", "replace") if isinstance(text, bytes) else text
    m = re.match(r"\[([A-Za-z0-9/_-]{1,64})(?:\s[^\]]*)?\]", s)
    return m.group(1).upper() if m else None


def _listing(body: bytes, lines: re.Pattern[bytes]) -> list[tuple[bytes, bytes]] | None:
    """The (number, value) of every line of a LIST or UIDL answer; None unless every line matches."""
    every = lines.findall(body)
    return every if len(every) == body.count(b"\n") and body.endswith(b"\r\n") or not body else None


def _is_temporary(code: str | None) -> bool:
    return code is not None and any(code == c or code.startswith(c + "/") for c in TEMPORARY_CODES)


def _is_loopback(host: str) -> bool:
    h = host.lower().rstrip(".").strip("[]")
    if h == "localhost":
        return True
    try:
        ip = ipaddress.ip_address(h)
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return ip.ipv4_mapped.is_loopback
    return ip.is_loopback


class Pop3Refused(CommandFailed):
    """The server answered -ERR. `text` is sanitised; `code` is the RFC 2449 response code, if any."""

    temporary = False

    def __init__(self, where: str, command: str, text: str, code: str | None = None):
        self.where, self.code = where, code
        CommandFailed.__init__(self, command, "-ERR", text)
        self.args = (f"{where} refused {command}: -ERR {text}",)

    def __str__(self) -> str:
        return str(self.args[0])


class Pop3Busy(Pop3Refused, NetworkError):
    """-ERR with [IN-USE], [SYS/TEMP] or [LOGIN-DELAY]: the mailbox is locked or the server is
    unwell; try again later (a NetworkError, so the worker's backoff takes it)."""

    temporary = True


class _Deadline(NetworkError):
    pass


class _Guard:
    """Shuts a socket down when the connect phase (TCP + TLS handshake) overruns: the handshake's
    reads have only per-recv timeouts, which a trickling server resets."""

    def __init__(self, sock: socket.socket, seconds: float):
        self.fired = False
        self._sock = sock
        self._timer = threading.Timer(max(0.0, seconds), self._fire)
        self._timer.daemon = True
        self._timer.start()

    def _fire(self) -> None:
        self.fired = True
        try:
            self._sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass

    def cancel(self) -> None:
        self._timer.cancel()


class Pop3Session:
    """One POP3 session. Not thread-safe: one thread owns it (`shutdown()` may come from another).

        with Pop3Session(host, port, security="tls", username=u, secret=lambda: pw) as s:
            uidls = s.uidl(); sizes = s.list_sizes()
            for n, raw in s.retr_many(wanted): ...
            s.dele(n)
        # QUIT at the end of the block applies the DELEs; an exception leaves without QUIT
    """

    def __init__(self, host: str, port: int | None = None, *, security: str = "tls", username: str = "",
                 secret: Callable[[], str] | None = None, oauth2: bool = False, auth: str | None = None,
                 allow_insecure: bool = False, ca_file=None, fingerprint: str | None = None,
                 timeout: float = DEFAULT_TIMEOUT, max_message: int = MAX_MESSAGE,
                 config_key: str = "", log: Callable[[str], None] | None = None,
                 connector: Callable[[str, int, float], socket.socket] | None = None):
        """security: "tls" (995), "starttls" (STLS on 110) or "none" (loopback or allow_insecure only).
        secret: returns the password, or the OAuth2 access token when `oauth2`.
        auth: force a method ("user", "apop", "plain", "xoauth2"); default: the best one offered.
        timeout: seconds for connecting, and for each answer (moved on while data arrives).
        config_key: "accounts.NAME." prefix named in error messages.
        connector: (host, port, timeout) -> a connected socket, instead of the system's resolver and
        TCP (discovery's seam: its tests map names such as pop.example.test to loopback ports)."""
        if security not in DEFAULT_PORT:
            raise ValueError(f"security {security!r}: use tls, starttls or none")
        if auth is not None and auth not in ("user", "apop", "plain", "xoauth2"):
            raise ValueError(f"auth {auth!r}: use user, apop, plain or xoauth2")
        self.host, self.port = host, int(port or DEFAULT_PORT[security])
        self.security, self.username = security, username
        self._secret = secret or (lambda: "")
        self.oauth2, self.auth = oauth2, ("xoauth2" if oauth2 and auth is None else auth)
        self.allow_insecure = allow_insecure
        self.ca_file, self.fingerprint = ca_file, fingerprint
        self.timeout, self.max_message = float(timeout), max_message
        self.config_key, self.log = config_key, log
        self.connector = connector
        self.sock: socket.socket | None = None
        self.buf = bytearray()
        self.bytes_in = self.bytes_out = 0
        self.commands: Counter[str] = Counter()  # command name -> times sent
        self.caps: dict[str, list[str]] = {}  # CAPA after login: name -> arguments
        self.capa_known = False  # the server answered CAPA (else: an RFC 1939 server; try and see)
        self.greeting = b""
        self.encrypted = False
        self.broken = False  # a read failed, timed out, or a batch was left half read: no QUIT
        self.logged_in = False
        self.login_bytes = (0, 0)  # (bytes_in, bytes_out) when the login was accepted
        self._deadline = 0.0
        self._credit_from = 0
        self._in_batch = False  # a pipelined batch has answers in flight: no other command now

    @classmethod
    def from_account(cls, account: Any, secret: Callable[[], str], **kw: Any) -> Pop3Session:
        """From a config Account (kind = "pop3"): host, port, security, username, TLS keys, timeout."""
        kw.setdefault("timeout", getattr(account, "timeout", None) or DEFAULT_TIMEOUT)
        return cls(account.host, account.port, security=account.security, username=account.username,
                   secret=secret, oauth2=bool(getattr(account, "oauth2_token_command", None)),
                   allow_insecure=bool(getattr(account, "allow_insecure", False)),
                   ca_file=getattr(account, "tls_ca_file", None),
                   fingerprint=getattr(account, "tls_fingerprint", None),
                   config_key=f"accounts.{account.name}.", **kw)

    @property
    def where(self) -> str:
        return f"{self.host}:{self.port}"

    def has(self, cap: str) -> bool:
        return cap.upper() in self.caps

    @property
    def pipelining(self) -> bool:
        return "PIPELINING" in self.caps

    def __enter__(self) -> Pop3Session:
        if self.sock is None:
            self.connect()
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.quit()
        else:
            self.abort()  # no QUIT: none of this session's DELEs take effect

    # ------------------------------------------------------------------ connect and log in

    def connect(self) -> None:
        """Connect, read the greeting, CAPA, STLS if asked, log in, CAPA again."""
        if self.security == "none" and not self.allow_insecure and not _is_loopback(self.host):
            raise TLSError(f"{self.where}: refusing to log in without TLS to a host that is not loopback"
                           f' (set {self.config_key}security = "tls" or "starttls", or allow_insecure = true)')
        try:
            self._connect()
        except BaseException:
            self.abort()
            raise

    def _connect(self) -> None:
        ctx = verified_context(self.ca_file, self.fingerprint) if self.security != "none" else None
        step = "connect"
        try:
            if self.connector is not None:
                sock = self.connector(self.host, self.port, self.timeout)
                sock.settimeout(self.timeout)
            else:
                sock = socket.create_connection((self.host, self.port), timeout=self.timeout)
            try:
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            except OSError:
                pass
            self.sock = sock
            if self.security == "tls":
                step = "the TLS handshake"
                self._wrap(ctx)
            step = "the greeting"
            try:
                self.greeting = self._status("greeting")
            except NetworkError:
                if self.bytes_in or self.security == "tls":
                    raise
                # silence after connecting: usually a TLS port (995) spoken to in plain text
                raise NetworkError(f"{self.where} accepted the connection but sent no POP3 greeting within"
                                   f' {self.timeout:g} s (a TLS port? try {self.config_key}security = "tls")'
                                   ) from None
            step = "CAPA"
            self._capa()
            if self.security == "starttls":
                if "STLS" not in self.caps:
                    raise TLSError(f"{self.where} does not offer STLS; refusing to log in in the clear"
                                   f" ({self.config_key}security)")
                step = "STLS"
                self._command(b"STLS", "STLS")
                if self.buf:  # bytes after +OK before the handshake: injected, refuse (CVE-2011-0411 class)
                    raise TLSError(f"{self.where} sent data after its STLS answer; refused")
                step = "the TLS handshake"
                self._wrap(ctx)
                step = "CAPA"
                self._capa()
        except ssl.SSLCertVerificationError as exc:
            raise TLSError(f"TLS certificate of {self.where} not trusted: {exc.verify_message}"
                           f" (set {self.config_key}tls_ca_file or tls_fingerprint)") from None
        except ssl.SSLError as exc:
            if exc.reason in PLAIN_TEXT_REASONS:
                raise TLSError(f"TLS with {self.where} failed: the server answered in plain text (plain port?"
                               f' try {self.config_key}security = "starttls", or port 995)') from None
            raise TLSError(f"TLS with {self.where} failed: {exc.reason or exc}") from None
        except _Deadline:
            raise NetworkError(f"{self.where}: no answer to {step} within {self.timeout:g} s (timeout)") from None
        except TimeoutError:
            raise NetworkError(f"{self.where}: no answer to {step} within {self.timeout:g} s (timeout)") from None
        except OSError as exc:
            why = exc.strerror or str(exc) or type(exc).__name__
            raise NetworkError(f"cannot reach {self.where}: {why} (check {self.config_key}host and port,"
                               " and the network)") from None
        self._login()
        self._capa()  # some servers offer more (PIPELINING, UIDL) after login

    def _wrap(self, ctx: ssl.SSLContext | None) -> None:
        assert self.sock is not None and ctx is not None
        guard = _Guard(self.sock, self.timeout)
        try:
            self.sock = ctx.wrap_socket(self.sock, server_hostname=self.host)
        except OSError:
            if guard.fired:
                raise _Deadline("handshake") from None
            raise
        finally:
            guard.cancel()
        self.encrypted = True
        if self.fingerprint:
            der = self.sock.getpeercert(binary_form=True)
            got = hashlib.sha256(der or b"").hexdigest()
            if got != self.fingerprint.lower():
                raise TLSError(f"TLS certificate of {self.where} has sha256 fingerprint {got}, not the one in"
                               f" {self.config_key}tls_fingerprint")

    def _capa(self) -> None:
        try:
            self._command(b"CAPA", "CAPA")
        except Pop3Busy:
            raise
        except Pop3Refused:
            self.caps, self.capa_known = {}, False
            return
        caps: dict[str, list[str]] = {}
        for line in self._multiline(MAX_LISTING).split(b"\r\n"):
            words = line.decode("ascii", "replace").split()
            if words:
                caps[words[0].upper()] = [w.upper() for w in words[1:]]
        self.caps, self.capa_known = caps, True

    def _choose_auth(self) -> str:
        if self.auth:
            return self.auth
        sasl = self.caps.get("SASL", [])
        apop = _APOP_STAMP.search(self.greeting) is not None
        if not self.encrypted and apop:
            return "apop"  # the password never crosses the wire (loopback / allow_insecure only)
        if "PLAIN" in sasl:
            return "plain"
        if "USER" in self.caps or not self.capa_known or not apop:
            return "user"
        return "apop"

    def _login(self) -> None:
        method = self._choose_auth()
        secret = self._secret()  # (a password command may prompt: no answer is being awaited now)
        if any(c in secret for c in "\r\n\0"):
            raise AuthError(f"the password for {self.where} contains a line break or NUL; refused")
        user = self.username.encode("utf-8")
        if b"\r" in user or b"\n" in user or b"\0" in user:
            raise AuthError(f"the user name for {self.where} contains a control character; refused")
        name = method.upper()
        try:
            if method == "user":
                if self.capa_known and "USER" not in self.caps:
                    raise AuthError(f"{self.where} offers no USER/PASS login (SASL: "
                                    f"{' '.join(self.caps.get('SASL', [])) or 'none'})")
                self._command(b"USER " + user, "USER")
                name = "PASS"
                self._command(b"PASS " + secret.encode("utf-8"), "PASS")
            elif method == "apop":
                m = _APOP_STAMP.search(self.greeting)
                if m is None:
                    raise AuthError(f"{self.where} offers no APOP (no timestamp in its greeting)")
                digest = hashlib.md5(m.group(0) + secret.encode("utf-8"), usedforsecurity=False).hexdigest()
                self._command(b"APOP " + user + b" " + digest.encode("ascii"), "APOP")
            elif method == "plain":
                self._sasl(b"PLAIN", b"\0" + user + b"\0" + secret.encode("utf-8"))
            else:
                self._sasl(b"XOAUTH2", b"user=" + user + b"\x01auth=Bearer " + secret.encode("utf-8") + b"\x01\x01")
        except Pop3Busy:
            raise
        except Pop3Refused as exc:
            key = "oauth2_token_command" if method == "xoauth2" else "password"
            raise AuthError(f"{self.where} refused the login ({name}) for {self.username!r}: -ERR {exc.text}"
                            f" (check {self.config_key}username and {key})") from None
        self.logged_in = True
        self.login_bytes = (self.bytes_in, self.bytes_out)

    @property
    def transaction_bytes(self) -> tuple[int, int]:
        """(in, out) bytes since the login was accepted: what the server's post-login process sees
        (Dovecot's pop3 log line "in=%i out=%o" counts the other way round)."""
        return self.bytes_in - self.login_bytes[0], self.bytes_out - self.login_bytes[1]

    def _sasl(self, mech: bytes, response: bytes) -> None:
        """AUTH <mech>, then the base64 response after the server's "+" (RFC 5034; the initial
        response is not sent on the command line: an XOAUTH2 one is longer than its 255 octets)."""
        self._send(b"AUTH " + mech, "AUTH")
        line = self._line("AUTH")
        if line.startswith(b"+OK") or line.startswith(b"-ERR"):
            self._check(line, "AUTH " + mech.decode())
            return
        if not line.startswith(b"+"):
            raise ProtocolError(f"{self.where}: unexpected answer to AUTH {mech.decode()}: {one_line(line[:80])}")
        self._send(base64.b64encode(response), "AUTH", redact=True)
        line = self._line("AUTH")
        if line.startswith(b"+ ") or line == b"+\r\n":  # XOAUTH2's error challenge: answer empty, read -ERR
            self._send(b"", "AUTH")
            line = self._line("AUTH")
        self._check(line, "AUTH " + mech.decode())

    # ------------------------------------------------------------------ transaction state

    def stat(self) -> tuple[int, int]:
        """(message count, octets)."""
        text = self._command(b"STAT", "STAT")
        m = _STAT_RE.fullmatch(text.strip())
        if not m:
            raise ProtocolError(f"{self.where}: malformed STAT answer: {one_line(text[:80])}")
        return int(m.group(1)), int(m.group(2))

    def list_sizes(self) -> dict[int, int]:
        """Message number -> size in octets (as the server counts them)."""
        self._command(b"LIST", "LIST")
        return self._sizes(self._multiline(MAX_LISTING))

    def uidl_and_sizes(self) -> tuple[dict[int, str] | None, dict[int, int]]:
        """uidl() and list_sizes(), both commands in one write when the server offers PIPELINING
        (a first sync needs both: LIST's answer comes while UIDL's is read)."""
        if not self.pipelining:
            return self.uidl(), self.list_sizes()
        self._send_many([b"UIDL"], "UIDL")
        self._send_many([b"LIST"], "LIST")
        uidls: dict[int, str] | None = None
        try:
            self._check(self._line("UIDL"), "UIDL")
        except Pop3Busy:
            self.broken = True  # (LIST's answer is still to come: this session is left)
            raise
        except Pop3Refused:
            pass  # no UIDL: the answer was the -ERR line alone
        else:
            uidls = self._uidls(self._multiline(MAX_LISTING))
        self._check(self._line("LIST"), "LIST")
        return uidls, self._sizes(self._multiline(MAX_LISTING))

    def _sizes(self, body: bytes) -> dict[int, int]:
        every = _listing(body, _LIST_LINES)
        if every is not None:
            return {int(n): int(size) for n, size in every}
        out: dict[int, int] = {}
        for line in body.split(b"\r\n")[:-1] if body else []:
            m = _LIST_RE.fullmatch(line)
            if not m:
                raise ProtocolError(f"{self.where}: malformed LIST line: {one_line(line[:80])}")
            out[int(m.group(1))] = int(m.group(2))
        return out

    def uidl(self) -> dict[int, str] | None:
        """Message number -> unique id; None when the server has no UIDL (it answered -ERR)."""
        try:
            self._command(b"UIDL", "UIDL")
        except Pop3Busy:
            raise
        except Pop3Refused:
            return None
        return self._uidls(self._multiline(MAX_LISTING))

    def _uidls(self, body: bytes) -> dict[int, str]:
        every = _listing(body, _UIDL_LINES)
        if every is not None:
            return {int(n): uidl.decode("ascii") for n, uidl in every}
        out: dict[int, str] = {}
        for line in body.split(b"\r\n")[:-1] if body else []:
            m = _UIDL_RE.fullmatch(line)
            if not m:
                raise ProtocolError(f"{self.where}: malformed UIDL line: {one_line(line[:80])}")
            out[int(m.group(1))] = m.group(2).decode("ascii")
        return out

    def top(self, n: int, lines: int = 0) -> bytes:
        """TOP n lines: the header block (and `lines` body lines), dot-unstuffed, CRLF line ends."""
        return next(self.top_many([n], lines))[1]

    def retr(self, n: int) -> bytes:
        """The whole message, dot-unstuffed, CRLF line ends; any line length up to max_message."""
        return next(self.retr_many([n]))[1]

    def top_many(self, numbers: Iterable[int], lines: int = 0) -> Iterator[tuple[int, bytes]]:
        """(n, header block) for each n, in order, pipelined when the server offers PIPELINING."""
        return self._each(self.top_windows(numbers, lines))

    def retr_many(self, numbers: Iterable[int]) -> Iterator[tuple[int, bytes]]:
        """(n, message) for each n, in order, pipelined when the server offers PIPELINING. A -ERR
        for one message reads the answers still in flight, then raises Pop3Refused; leaving the
        loop early marks the session broken (answers left unread): abort it, no QUIT."""
        return self._each(self.retr_windows(numbers))

    def top_windows(self, numbers: Iterable[int], lines: int = 0, *, first: int = 1 << 30,
                    most: int = 1 << 30) -> Generator[list[tuple[int, bytes]], None, None]:
        """top_many's answers in lists: every answer complete in the buffer when the next would
        mean waiting for the network; the lists end at the `first`-th answer (a screenful, to show
        at once), the others hold at most `most`.
        No command may be sent until the last list is handed over (leaving early: see retr_many)."""
        lines = int(lines)
        return self._batch(((n, b"TOP %d %d" % (n, lines)) for n in numbers), "TOP", first=first, most=most)

    def retr_windows(self, numbers: Iterable[int], *, first: int = 1 << 30, most: int = 1 << 30,
                     most_bytes: int = 1 << 30) -> Generator[list[tuple[int, bytes]], None, None]:
        """retr_many's answers in lists (top_windows), a list closed once it holds most_bytes."""
        return self._batch(((n, b"RETR %d" % n) for n in numbers), "RETR", first=first, most=most,
                           most_bytes=most_bytes)

    def dele(self, n: int) -> None:
        """Mark message n deleted; the server removes it only when QUIT succeeds."""
        self._command(b"DELE %d" % int(n), "DELE")

    def dele_many(self, numbers: Iterable[int]) -> None:
        """DELE each, pipelined where offered; a -ERR raises after the answers in flight are read."""
        for _ in self._batch(((n, b"DELE %d" % int(n)) for n in numbers), "DELE", multiline=False):
            pass

    def rset(self) -> None:
        self._command(b"RSET", "RSET")

    def noop(self) -> None:
        self._command(b"NOOP", "NOOP")

    def quit(self) -> None:
        """QUIT: the server applies this session's DELEs (UPDATE state) and closes. Raises (and
        nothing was deleted, RFC 1939 §6) when the answer is -ERR or does not arrive."""
        if self.sock is None:
            return
        if self.broken:
            self.abort()
            raise NetworkError(f"{self.where}: the session was left out of step; closed without QUIT"
                               " (nothing deleted)")
        try:
            self._command(b"QUIT", "QUIT")
        finally:
            self.abort()

    def abort(self) -> None:
        """Drop the connection without QUIT: the server deletes nothing of this session."""
        sock, self.sock = self.sock, None
        self.buf.clear()
        if sock is not None:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            sock.close()

    def shutdown(self) -> None:
        """From another thread: cut the connection under a waiting read."""
        try:
            if self.sock is not None:
                self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass

    # ------------------------------------------------------------------ the wire

    def _each(self, windows: Generator[list[tuple[int, bytes]], None, None]) -> Iterator[tuple[int, bytes]]:
        """The answers of a batch one by one. Until the last is handed over no command may be
        sent, and leaving before it marks the session broken, as if answers were left unread."""
        last_out = False
        try:
            for window in windows:
                more = self._in_batch  # (commands still in flight after this list)
                end = len(window) - 1
                for i, item in enumerate(window):
                    last_out = not more and i == end
                    self._in_batch = not last_out
                    yield item
        except GeneratorExit:
            if not last_out:  # the caller left with answers not handed over
                windows.close()
                self._in_batch = False
                self.broken = True
            raise

    def _batch(self, items: Iterable[tuple[int, bytes]], name: str, multiline: bool = True, *,
               first: int = 1 << 30, most: int = 1 << 30,
               most_bytes: int = 1 << 30) -> Generator[list[tuple[int, bytes]], None, None]:
        """Send the commands (up to PIPELINE_BYTES of them in flight with PIPELINING, else one) and
        yield their answers in lists of (n, answer): each list holds the answers complete in the
        buffer (the lists up to the `first`-th answer hold no more than that, the others up to
        `most`, or most_bytes), handed over before waiting for more. No other command may be
        sent until the batch is done: its answer would be read as one of the batch's (_send
        refuses). A -ERR: the answers before it are handed over, no more commands are sent,
        those in flight are read, then Pop3Refused is raised."""
        if self._in_batch:
            raise RuntimeError(f"{name} batch started while another batch is being read")
        pipelined = self.pipelining
        todo = iter(items)
        pending: deque[tuple[int, int]] = deque()  # (n, its command's bytes) sent, not answered
        in_flight = 0
        done = False
        error: Pop3Refused | None = None
        out: list[tuple[int, bytes]] = []
        out_bytes = 0
        limit = first
        handed = sent = 0  # answers handed over, commands sent
        buf = self.buf
        scan = 0  # where to go on looking for the terminator of the answer at buf[0]
        fresh = True  # an answer was taken since the deadline was set
        log = self.log
        try:
            while True:
                # refill when half of the window was answered, the lines in one write (one
                # sendall per command cost 0.14 ms each: 0.7 s of a 5,000-message TOP batch)
                # (until the `first` answers are handed over no more than those are asked for:
                # the caller may pause there -- the app's first paint -- with the server idle)
                if not done and (in_flight <= PIPELINE_BYTES // 2 if pipelined else not pending) and (
                        sent < first or handed >= first):
                    lines: list[bytes] = []
                    while True:
                        try:
                            n, line = next(todo)
                        except StopIteration:
                            done = True
                            break
                        lines.append(line)
                        pending.append((n, len(line) + 2))
                        in_flight += len(line) + 2
                        sent += 1
                        if not pipelined or in_flight >= PIPELINE_BYTES or sent == first:
                            break
                    if lines:
                        self._send_many(lines, name)
                if not pending:
                    break
                # take every answer complete in the buffer
                pos = 0
                starved = False  # the next answer is not complete yet
                while pending:
                    # (an answer that is an error is met with `out` empty: the answers before
                    # it are handed over first, as the caller could have stored them)
                    i = buf.find(b"\r\n", pos)
                    if i < 0 or i - pos > MAX_STATUS_LINE:
                        if len(buf) - pos > MAX_STATUS_LINE and not out:
                            self.broken = True
                            raise ProtocolError(f"{self.where}: answer to {name} is a line over {MAX_STATUS_LINE}"
                                                " bytes; refused")
                        starved = True
                        break
                    if multiline and buf.startswith(b"+OK", pos):
                        start = i + 2
                        j = buf.find(b"\r\n.\r\n", max(i, pos + scan))
                        if j < 0 or j - start > self.max_message:
                            if (j >= 0 or len(buf) - start > self.max_message + 5) and not out:
                                self.broken = True
                                raise ProtocolError(f"{self.where}: an answer over {self.max_message >> 20} MB;"
                                                    f" refused (limit {self.max_message} bytes)")
                            scan = max(i, len(buf) - 4) - pos  # (no need to look at those bytes again)
                            starved = True
                            break
                        if j > i:
                            body = bytes(buf[start:j + 2])
                            if body[:2] == b"..":
                                body = body[1:]
                            body = body.replace(b"\r\n..", b"\r\n.")
                        else:
                            body = b""  # "+OK" then the "." line: empty
                        if log:
                            log("S: " + one_line(bytes(buf[pos:i + 2])[:200]))
                        n, size = pending.popleft()
                        if error is None:
                            out.append((n, body))
                            out_bytes += len(body)
                        pos = j + 5
                    else:
                        line = bytes(buf[pos:i + 2])
                        if out and not line.startswith(b"-ERR") and not (line.startswith(b"+OK") and not multiline):
                            starved = True  # garbage: _check raises once `out` is handed over
                            break
                        if log:
                            log("S: " + one_line(line[:200]))
                        n, size = pending.popleft()
                        pos = i + 2
                        try:
                            self._check(line, f"{name} {n}")  # -ERR raises; anything but +OK too
                        except Pop3Refused as exc:
                            error = error or exc
                            done = True  # no more commands; read what is in flight, then raise
                        if error is None and not multiline:
                            out.append((n, b""))
                    in_flight -= size
                    scan, fresh = 0, True
                    if out and (len(out) >= limit or out_bytes >= most_bytes or error is not None):
                        break
                if pos:
                    del buf[:pos]
                if out and (starved or not pending or len(out) >= limit or out_bytes >= most_bytes
                            or error is not None):
                    # a list is handed over when full, and before waiting for the network
                    self._in_batch = bool(pending)
                    handed += len(out)
                    window, out, out_bytes = out, [], 0
                    limit = first - handed if handed < first else most
                    yield window
                    continue
                if pending:
                    if fresh:
                        self._start()
                        fresh = False
                    self._fill(name)
            if error is not None:
                raise error
        finally:
            self._in_batch = False
            if pending:
                self.broken = True

    def _command(self, line: bytes, name: str) -> bytes:
        self._send(line, name)
        return self._check(self._line(name), name)

    def _check(self, line: bytes, name: str) -> bytes:
        """A status line's text after +OK; -ERR raises; anything else is a protocol error."""
        if line.startswith(b"+OK"):
            return line[3:].strip()
        if line.startswith(b"-ERR"):
            text = line[4:].strip()
            code = response_code(text)
            cls = Pop3Busy if _is_temporary(code) else Pop3Refused
            raise cls(self.where, name, one_line(text) or "(no text)", code)
        self.broken = True
        raise ProtocolError(f"{self.where}: unexpected answer to {name}: {one_line(line[:80]) or '(empty line)'}")

    def _status(self, name: str) -> bytes:
        return self._check(self._line(name), name)

    def _send(self, line: bytes, name: str, redact: bool = False, batch: bool = False) -> None:
        if self.sock is None:
            raise NetworkError(f"{self.where}: not connected")
        if self._in_batch and not batch:
            raise RuntimeError(f"{name} sent while a pipelined batch still has answers in flight")
        if b"\r" in line or b"\n" in line or len(line) > MAX_COMMAND:
            raise ValueError(f"refusing to send a {name} command with a line break or over {MAX_COMMAND} bytes")
        if self.log:
            shown = line.decode("utf-8", "replace")
            if redact or name in ("PASS", "APOP"):
                shown = f"{name} <redacted>" if not redact else "<redacted>"
            self.log("C: " + shown)
        data = line + b"\r\n"
        try:
            self.sock.settimeout(self.timeout)
            self.sock.sendall(data)
        except OSError as exc:
            self.broken = True
            raise NetworkError(f"connection to {self.where} lost during {name}: {exc.strerror or exc}") from None
        self.bytes_out += len(data)
        self.commands[name] += 1

    def _send_many(self, lines: list[bytes], name: str) -> None:
        """Pipelined commands of one batch in one write (each checked and logged as _send does)."""
        if self.sock is None:
            raise NetworkError(f"{self.where}: not connected")
        for line in lines:
            if b"\r" in line or b"\n" in line or len(line) > MAX_COMMAND:
                raise ValueError(f"refusing to send a {name} command with a line break or over {MAX_COMMAND} bytes")
            if self.log:
                self.log("C: " + line.decode("utf-8", "replace"))
        data = b"".join(line + b"\r\n" for line in lines)
        try:
            self.sock.settimeout(self.timeout)
            self.sock.sendall(data)
        except OSError as exc:
            self.broken = True
            raise NetworkError(f"connection to {self.where} lost during {name}: {exc.strerror or exc}") from None
        self.bytes_out += len(data)
        self.commands[name] += len(lines)

    def _start(self) -> None:
        self._deadline = time.monotonic() + self.timeout
        self._credit_from = self.bytes_in

    def _fill(self, what: str) -> None:
        assert self.sock is not None
        left = self._deadline + (self.bytes_in - self._credit_from) / PROGRESS_RATE - time.monotonic()
        if left <= 0:
            self.broken = True
            raise NetworkError(f"{self.where}: no complete answer to {what} within {self.timeout:g} s (timeout)")
        try:
            self.sock.settimeout(left)
            data = self.sock.recv(1 << 18)
        except TimeoutError:
            self.broken = True
            raise NetworkError(f"{self.where}: no answer to {what} within {self.timeout:g} s (timeout)") from None
        except OSError as exc:
            self.broken = True
            if isinstance(exc, ssl.SSLError):
                raise NetworkError(f"{self.where}: connection lost during {what}: {exc.reason or exc}") from None
            raise NetworkError(f"{self.where}: connection lost during {what}: {exc.strerror or exc}") from None
        if not data:
            self.broken = True
            raise NetworkError(f"{self.where}: the server closed the connection during {what}")
        self.bytes_in += len(data)
        self.buf += data

    def _line(self, what: str) -> bytes:
        """One status line (with its CRLF), at most MAX_STATUS_LINE bytes."""
        if self.sock is None:
            raise NetworkError(f"{self.where}: not connected")
        self._start()
        start = 0
        while True:
            i = self.buf.find(b"\r\n", start)
            if i >= 0:
                line = bytes(self.buf[:i + 2])
                del self.buf[:i + 2]
                if self.log:
                    self.log("S: " + one_line(line[:200]))
                return line
            if len(self.buf) > MAX_STATUS_LINE:
                self.broken = True
                raise ProtocolError(f"{self.where}: answer to {what} is a line over {MAX_STATUS_LINE} bytes; refused")
            start = max(0, len(self.buf) - 1)
            self._fill(what)

    def _multiline(self, limit: int) -> bytes:
        """The body of a multi-line answer up to its "." line: dot-unstuffed, each line ending in
        CRLF. Found by the terminator, so lines may be as long as the whole answer may be."""
        self._start()
        while len(self.buf) < 3 and b".\r\n".startswith(bytes(self.buf)):
            self._fill("a multi-line answer")
        if self.buf.startswith(b".\r\n"):
            del self.buf[:3]
            return b""
        start = 0
        while True:
            i = self.buf.find(b"\r\n.\r\n", start)
            if 0 <= i <= limit:
                body = bytes(self.buf[:i + 2])
                del self.buf[:i + 5]
                break
            if i > limit or len(self.buf) > limit + 5:
                self.broken = True
                raise ProtocolError(f"{self.where}: an answer over {limit >> 20} MB; refused"
                                    f" (limit {limit} bytes)")
            start = max(0, len(self.buf) - 4)
            self._fill("a multi-line answer")
        if body.startswith(b".."):
            body = body[1:]
        return body.replace(b"\r\n..", b"\r\n.")


