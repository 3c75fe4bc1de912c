"""Handing a message to the user's server over SMTP (RFC 5321) with smtplib, carefully:

- TLS always verified (smtplib verifies nothing without a context): implicit TLS ("tls", port
  465) or STARTTLS ("starttls", 587), which is required when asked for: a server that does not
  offer it gets no password and no message. "none" only to a loopback host unless allow_insecure.
- AUTH PLAIN, LOGIN or XOAUTH2 written here (smtplib's own encodes credentials as ASCII and
  prefers CRAM-MD5); SMTPUTF8 when an address needs it and the server offers it.
- Every failure is a ``SendError`` classified by the reply code, not the exception class (a 421
  at MAIL FROM arrives as SMTPSenderRefused): 4xx and lost connections are temporary (retry
  later), 5xx permanent (the user must act). A recipient refused while others were accepted is
  not an error: the message goes to the others and ``SendResult.refused`` says who was refused.
- Bounded: each read by `timeout`, the whole session by a deadline (a server trickling one byte
  a minute cannot hold the worker), EHLO with an address literal (no DNS lookup of our own name).
- ``SendError.maybe_sent``: the connection broke after the final "." was written and before the
  server's answer: the server may have taken the message (the outbox decides what to do).
"""

from __future__ import annotations

import base64
import re
import smtplib
import socket
import ssl
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from tuimail.errors import NetworkError, TuimailError

if TYPE_CHECKING:
    from _typeshed import ReadableBuffer
from tuimail.mail.sanitize import sanitize_line
from tuimail.protocol.tls import check_pin, is_loopback, verified_context

__all__ = ["SECURITIES", "SmtpSettings", "SendResult", "SendError", "send", "check_message", "check_login"]

SECURITIES = ("tls", "starttls", "none")
MAX_LINE = 998  # octets, without CRLF (RFC 5321 §4.5.3.1.6)
_REPLY_MAX = 200  # characters of a server reply quoted in a message
_EOL_RE = re.compile(rb"\r\n|\r|\n")


@dataclass(frozen=True)
class SmtpSettings:
    host: str
    port: int
    security: str = "starttls"  # "tls" | "starttls" | "none"
    username: str | None = None  # None: no AUTH
    password: str | None = field(default=None, repr=False)
    oauth2_token: str | None = field(default=None, repr=False)  # set: AUTH XOAUTH2
    ca_file: str | Path | None = None
    fingerprint: str | None = None  # sha256 of the server certificate (replaces the CA check)
    timeout: float = 30.0  # seconds for connecting and for each answer
    deadline: float | None = None  # seconds for the whole session; None: 4 x timeout + 1 s per 64 KB
    allow_insecure: bool = False  # "none" to a host that is not loopback
    helo_name: str | None = None  # None: the local address as a literal ("[192.0.2.1]")
    key: str = "smtp"  # the configuration key named in messages ("accounts.work.smtp")


@dataclass(frozen=True)
class SendResult:
    code: int  # the answer to the final "." (250)
    reply: str  # its text (one line, sanitised), often the server's queue id
    accepted: tuple[str, ...]
    refused: dict[str, tuple[int, str]] = field(default_factory=dict)  # recipient -> (code, reply)
    smtputf8: bool = False


class SendError(NetworkError):
    """One line for the user quoting the server. `code` is the SMTP reply code (None: no answer,
    e.g. the network), `temporary` says whether retrying later can help. `kind`: "reply" (the
    server refused), "auth", "tls", "network", "config" (nothing was sent: fix the settings or
    the message)."""

    def __init__(self, message: str, *, code: int | None = None, temporary: bool = True, kind: str = "reply",
                 refused: dict[str, tuple[int, str]] | None = None, maybe_sent: bool = False):
        super().__init__(message)
        self.code = code
        self.temporary = temporary
        self.kind = kind
        self.refused = dict(refused or {})
        self.maybe_sent = maybe_sent


def _text(reply: bytes | str | None) -> str:
    if isinstance(reply, bytes):
        reply = reply.decode("utf-8", "replace")
    text = sanitize_line(" ".join((reply or "").split()))
    return text if len(text) <= _REPLY_MAX else text[: _REPLY_MAX - 1] + "…"


def _is_temporary(code: int | None) -> bool:
    return code is None or not 500 <= code <= 599


def check_message(data: bytes, mail_from: str, rcpts: list[str] | tuple[str, ...]) -> bytes:
    """The bytes as they go on the wire (CRLF line ends), or SendError(kind="config") for what no
    server can take: no recipient, an address with a line break or '<>', a line over 998 octets."""
    for addr in (mail_from, *rcpts):
        if any(c in addr for c in "\r\n\0<>") or any(ord(c) < 32 for c in addr):
            raise SendError(f"address {addr[:80]!r} contains a line break or a control character; refused",
                            temporary=False, kind="config")
    if not rcpts:
        raise SendError("no recipient", temporary=False, kind="config")
    data = _EOL_RE.sub(b"\r\n", bytes(data))
    if not data.endswith(b"\r\n"):
        data += b"\r\n"
    start = 0
    while True:
        end = data.find(b"\r\n", start)
        if end < 0:
            break
        if end - start > MAX_LINE:
            n = data.count(b"\r\n", 0, start) + 1
            raise SendError(f"line {n} of the message is {end - start} bytes long; SMTP allows {MAX_LINE}"
                            " (encode it quoted-printable)", temporary=False, kind="config")
        start = end + 2
    return data


class _Tracking(smtplib.SMTP):
    """Notes when the message's final "." has been written (from then on a lost connection may
    have delivered the message)."""

    body_sent = False
    connector: Callable[[str, int, float], socket.socket] | None = None  # check_login's seam (setup)
    _host: str  # the TLS server name: set by run() (smtplib sets it only in __init__)
    if TYPE_CHECKING:  # smtplib's (SMTP's, SMTP_SSL's), left out of its stubs
        def _get_socket(self, host: str, port: int, timeout: float) -> socket.socket: ...

    def send(self, s: ReadableBuffer | str) -> None:
        super().send(s)
        if isinstance(s, bytes) and s.endswith(b"\r\n.\r\n"):
            self.body_sent = True


class _Plain(_Tracking):
    def _get_socket(self, host: str, port: int, timeout: float) -> socket.socket:
        if self.connector is None:
            return super()._get_socket(host, port, timeout)
        return self.connector(host, port, timeout)


class _Implicit(_Tracking, smtplib.SMTP_SSL):
    def _get_socket(self, host: str, port: int, timeout: float) -> socket.socket:
        if self.connector is None:
            return super()._get_socket(host, port, timeout)  # (SMTP_SSL's)
        host_name = self._host
        return self.context.wrap_socket(self.connector(host, port, timeout), server_hostname=host_name)


class _Watchdog:
    """The session's deadline: when it passes, the socket is shut down under whatever read waits."""

    def __init__(self, seconds: float, conn: smtplib.SMTP):
        self.fired = False
        self._conn = conn
        self._timer = threading.Timer(seconds, self._fire)
        self._timer.daemon = True
        self._timer.start()

    def _fire(self) -> None:
        self.fired = True
        sock = getattr(self._conn, "sock", None)
        if sock is not None:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def cancel(self) -> None:
        self._timer.cancel()


def _literal(sock: socket.socket | None) -> str:
    try:
        addr = sock.getsockname()[0] if sock is not None else "127.0.0.1"
    except OSError:
        addr = "127.0.0.1"
    return f"[IPv6:{addr}]" if ":" in addr else f"[{addr}]"


def _b64(data: str) -> str:
    return base64.b64encode(data.encode("utf-8")).decode("ascii")


class _Session:
    def __init__(self, settings: SmtpSettings, size: int, *, login_only: bool = False,
                 connector: Callable[[str, int, float], socket.socket] | None = None,
                 context: ssl.SSLContext | None = None):
        s = self.settings = settings
        self.where = f"{s.host}:{s.port}"
        self.phase = "connect"
        self.size = size
        self.login_only = login_only  # check_login: QUIT after AUTH, nothing sent
        self.connector = connector
        self.context = context
        self.features: frozenset[str] = frozenset()

    def fail(self, code: int, reply: bytes | str, **kw) -> SendError:
        temporary = _is_temporary(code)
        text = f"{self.where} refused {self.phase}: {code} {_text(reply)}".rstrip()
        text += " (temporary: will retry)" if temporary else ""
        return SendError(text, code=code, temporary=temporary, **kw)

    def run(self, data: bytes, mail_from: str, rcpts: list[str]) -> SendResult:
        s = self.settings
        if s.security not in SECURITIES:
            raise SendError(f"{s.key}.security must be one of {', '.join(SECURITIES)}", temporary=False,
                            kind="config")
        if s.security == "none" and not s.allow_insecure and not is_loopback(s.host):
            raise SendError(f'{s.key}.security = "none" would send mail (and the password) unencrypted to'
                            f" {s.host}: use tls or starttls, or set allow_insecure", temporary=False, kind="config")
        ctx = None
        if s.security != "none":
            ctx = self.context if self.context is not None else verified_context(s.ca_file, s.fingerprint)
        conn: _Tracking
        if s.security == "tls":
            conn = _Implicit(local_hostname="localhost", timeout=s.timeout, context=ctx)
        else:
            conn = _Plain(local_hostname="localhost", timeout=s.timeout)
        if self.connector is not None:
            conn.connector = self.connector
        deadline = s.deadline if s.deadline is not None else 4 * s.timeout + self.size / 65536
        watchdog = _Watchdog(deadline, conn)
        try:
            return self._run(conn, ctx, data, mail_from, rcpts)
        except SendError:
            raise
        except TuimailError as exc:  # a refused pin (TLSError)
            raise SendError(str(exc), temporary=False, kind="tls") from None
        except smtplib.SMTPResponseException as exc:  # SMTPSenderRefused, SMTPDataError, SMTPAuthenticationError...
            raise self.fail(exc.smtp_code, exc.smtp_error, maybe_sent=getattr(conn, "body_sent", False)) from None
        except smtplib.SMTPNotSupportedError as exc:
            raise SendError(f"{self.where}: {exc}", temporary=False, kind="config") from None
        except ssl.SSLCertVerificationError as exc:
            raise SendError(f"TLS certificate of {self.where} not trusted: {exc.verify_message}"
                            f" (set {s.key}.tls_ca_file or tls_fingerprint)", temporary=False, kind="tls") from None
        except (ssl.SSLEOFError, ssl.SSLZeroReturnError) as exc:  # the connection dropped mid-handshake
            raise SendError(f"{self.where}: the connection closed during {self.phase} ({exc.reason or 'TLS'})",
                            temporary=True, kind="network") from None
        except ssl.SSLError as exc:
            hint = ""
            if exc.reason in ("WRONG_VERSION_NUMBER", "RECORD_LAYER_FAILURE", "UNKNOWN_PROTOCOL"):
                hint = f' (a plain port? try {s.key}.security = "starttls")' if s.security == "tls" else ""
            raise SendError(f"TLS with {self.where} failed during {self.phase}: {exc.reason or exc}{hint}",
                            temporary=False, kind="tls") from None
        except (OSError, EOFError, smtplib.SMTPException) as exc:
            maybe = getattr(conn, "body_sent", False)
            if watchdog.fired or isinstance(exc, TimeoutError):
                why = f"no answer to {self.phase} within {deadline if watchdog.fired else s.timeout:g} s (timeout)"
            elif isinstance(exc, smtplib.SMTPServerDisconnected):
                why = f"the connection closed during {self.phase}"
            elif isinstance(exc, OSError) and self.phase == "connect":
                why = f"cannot connect: {exc.strerror or exc}"
            else:
                why = f"{self.phase} failed: {_text(str(exc)) or type(exc).__name__}"
            if maybe:
                why += "; the message may have been delivered"
            raise SendError(f"{self.where}: {why}", temporary=True, kind="network", maybe_sent=maybe) from None
        finally:
            watchdog.cancel()
            try:
                conn.close()
            except OSError:
                pass

    def _run(self, conn: _Tracking, ctx: ssl.SSLContext | None, data: bytes, mail_from: str,
             rcpts: list[str]) -> SendResult:
        s = self.settings
        conn._host = s.host  # the TLS server name (smtplib sets it only in __init__)
        code, reply = conn.connect(s.host, s.port)
        if code != 220:
            self.phase = "the connection"
            raise self.fail(code, reply)
        if s.security == "tls" and s.fingerprint:
            check_pin(conn.sock, s.fingerprint, self.where, f"{s.key}.tls_fingerprint")
        conn.local_hostname = s.helo_name or _literal(conn.sock)
        self.phase = "EHLO"
        code, reply = conn.ehlo()
        if code != 250:
            raise self.fail(code, reply)
        if s.security == "starttls":
            if not conn.has_extn("starttls"):
                raise SendError(f"{self.where} does not offer STARTTLS; refusing to send in the clear"
                                f" ({s.key}.security)", temporary=False, kind="tls")
            self.phase = "STARTTLS"
            code, reply = conn.starttls(context=ctx)  # raises SMTPResponseException unless 220
            if s.fingerprint:
                check_pin(conn.sock, s.fingerprint, self.where, f"{s.key}.tls_fingerprint")
            self.phase = "EHLO"
            code, reply = conn.ehlo()
            if code != 250:
                raise self.fail(code, reply)
        self.features = frozenset(k.upper() for k in conn.esmtp_features)
        if s.username is not None:
            self._auth(conn)
        if self.login_only:
            self.phase = "QUIT"
            try:
                conn.quit()
            except (OSError, smtplib.SMTPException):
                pass
            return SendResult(235, "", ())
        utf8 = not (mail_from.isascii() and all(r.isascii() for r in rcpts))
        options: list[str] = []
        if utf8:
            if not conn.has_extn("smtputf8"):
                raise SendError(f"{self.where} does not offer SMTPUTF8, needed for the non-ASCII address"
                                f" {next(a for a in (mail_from, *rcpts) if not a.isascii())!r}",
                                temporary=False, kind="config")
            options.append("SMTPUTF8")
        if not data.isascii():
            if conn.has_extn("8bitmime"):
                options.append("BODY=8BITMIME")
            elif not utf8:
                raise SendError(f"the message has 8-bit data and {self.where} does not offer 8BITMIME",
                                temporary=False, kind="config")
        if conn.has_extn("size"):
            limit = conn.esmtp_features.get("size", "").strip()
            if limit.isdigit() and int(limit) and len(data) > int(limit):
                raise SendError(f"the message ({len(data)} bytes) is over {self.where}'s limit of {limit} bytes",
                                temporary=False, kind="config")
            options.append(f"SIZE={len(data)}")
        self.phase = "MAIL FROM"
        code, reply = conn.mail(mail_from, options)
        if code != 250:
            raise self.fail(code, reply)
        self.phase = "RCPT TO"
        accepted: list[str] = []
        refused: dict[str, tuple[int, str]] = {}
        for rcpt in rcpts:
            code, reply = conn.rcpt(rcpt)
            if code in (250, 251):
                accepted.append(rcpt)
            else:
                refused[rcpt] = (code, _text(reply))
        if not accepted:
            codes = [c for c, _ in refused.values()]
            temporary = all(_is_temporary(c) for c in codes)
            first, (code, text) = next(iter(refused.items()))
            more = f" (and {len(refused) - 1} more)" if len(refused) > 1 else ""
            try:
                conn.rset()
            except (OSError, smtplib.SMTPException):
                pass
            raise SendError(f"{self.where} refused every recipient: {first}: {code} {text}{more}"
                            + (" (temporary: will retry)" if temporary else ""),
                            code=code, temporary=temporary, refused=refused)
        self.phase = "DATA"
        code, reply = conn.data(data)  # raises SMTPDataError unless 354; then the answer to "."
        if code != 250:
            raise self.fail(code, reply, refused=refused)
        self.phase = "QUIT"
        try:
            conn.quit()
        except (OSError, smtplib.SMTPException):
            pass
        return SendResult(code, _text(reply), tuple(accepted), refused, utf8)

    def _auth(self, conn: smtplib.SMTP) -> None:
        s = self.settings
        user = s.username or ""
        self.phase = "AUTH"
        if not conn.has_extn("auth"):
            raise SendError(f"{self.where} offers no AUTH; cannot log in as {user!r} (remove {s.key}.username"
                            " if the server needs none)", temporary=False, kind="auth")
        offered = conn.esmtp_features.get("auth", "").upper().split()
        if s.oauth2_token is not None:
            if "XOAUTH2" not in offered:
                raise SendError(f"{self.where} does not offer AUTH XOAUTH2 (offered: {' '.join(offered)})",
                                temporary=False, kind="auth")
            self.phase = "AUTH XOAUTH2"
            code, reply = conn.docmd("AUTH", "XOAUTH2 " + _b64(f"user={user}\x01auth=Bearer {s.oauth2_token}\x01\x01"))
            if code == 334:  # the error as base64 JSON: an empty line fetches the final answer
                detail = _text(base64.b64decode(reply + b"==", validate=False)) if reply else ""
                code, reply = conn.docmd("")
                if detail:
                    reply = f"{_text(reply)} {detail}".encode()
        elif "PLAIN" in offered:
            self.phase = "AUTH PLAIN"
            code, reply = conn.docmd("AUTH", "PLAIN " + _b64(f"\0{user}\0{s.password or ''}"))
        elif "LOGIN" in offered:
            self.phase = "AUTH LOGIN"
            code, reply = conn.docmd("AUTH", "LOGIN " + _b64(user))
            if code == 334:
                code, reply = conn.docmd(_b64(s.password or ""))
        else:
            raise SendError(f"{self.where} offers AUTH {' '.join(offered)}, none of PLAIN LOGIN XOAUTH2",
                            temporary=False, kind="auth")
        if code != 235:
            err = self.fail(code, reply, kind="auth")
            if code in (535, 534, 530):
                err.args = (f"{err} (check {s.key}.username and the password or token)",)
            raise err


def send(settings: SmtpSettings, data: bytes, mail_from: str, rcpts: list[str] | tuple[str, ...]) -> SendResult:
    """Send `data` (an RFC 5322 message without Bcc: compose.envelope) from `mail_from` to
    `rcpts`. SendResult on the server's 250 (with any refused recipients), else SendError."""
    rcpts = list(dict.fromkeys(rcpts))
    wire = check_message(data, mail_from, rcpts)
    return _Session(settings, len(wire)).run(wire, mail_from, rcpts)


def check_login(settings: SmtpSettings, *, connector: Callable[[str, int, float], socket.socket] | None = None,
                context: ssl.SSLContext | None = None) -> frozenset[str]:
    """Whether the server takes these credentials, sending nothing: connect, EHLO, STARTTLS (or
    implicit TLS), AUTH, QUIT -- no MAIL FROM. Returns the EHLO keywords after TLS (upper case:
    "AUTH", "PIPELINING", ...); SendError as `send` raises it otherwise (kind "auth" with code
    535/534/530 when the credentials were refused). `connector(host, port, timeout)` opens the
    TCP connection instead of smtplib (`tuimail setup`'s tests map names to loopback ports);
    `context` replaces the verified context built from the settings."""
    session = _Session(settings, 0, login_only=True, connector=connector, context=context)
    session.run(b"", "", [])
    return session.features
