"""Asking a server for its greeting and capabilities, without logging in: IMAP CAPABILITY,
POP3 CAPA, SMTP EHLO; over implicit TLS, after STARTTLS/STLS, or (loopback only) in plain text.

Every probe runs against one deadline with bounded lines (net.Lines); what the server says is
sanitised before it is kept, since it ends up on the user's screen.
"""

from __future__ import annotations

import hashlib
import socket
import ssl
import time
from dataclasses import replace

from tuimail.config.discover.net import Connector, Cutoff, Lines, ProbeFailed, TlsContext
from tuimail.config.discover.results import Candidate, Probe
from tuimail.mail.sanitize import sanitize_line
from tuimail.protocol.tls import PLAIN_TEXT_REASONS

NO_STARTTLS = "offers no STARTTLS"


def _show(raw: bytes, limit: int = 120) -> str:
    text = sanitize_line(raw.decode("utf-8", "replace"))
    return text if len(text) <= limit else text[:limit] + "..."


def _tokens(raw: bytes) -> list[str]:
    return [t for t in raw.decode("ascii", "replace").upper().split() if t.isprintable() and len(t) <= 64]


class _Chat:
    def __init__(self, lines: Lines):
        self.lines = lines
        self.greeting = ""
        self.tls = False


# -- IMAP --------------------------------------------------------------------------------------

def _imap_caps(chat: _Chat, tag: bytes) -> frozenset[str]:
    chat.lines.send(tag + b" CAPABILITY\r\n")
    caps: set[str] = set()
    while True:
        line = chat.lines.line()
        if line.upper().startswith(b"* CAPABILITY "):
            caps.update(_tokens(line[13:]))
        elif line.startswith(tag + b" "):
            if not line[len(tag) + 1:].upper().startswith(b"OK"):
                raise ProbeFailed(f"CAPABILITY refused: {_show(line)}")
            return frozenset(caps)


def _imap(chat: _Chat, starttls: bool, ctx: ssl.SSLContext | None, host: str) -> frozenset[str]:
    greeting = chat.lines.line()
    chat.greeting = _show(greeting)
    if not greeting.upper().startswith((b"* OK", b"* PREAUTH")):
        raise ProbeFailed(f"not an IMAP greeting: {chat.greeting[:60]!r}")
    caps = _imap_caps(chat, b"p1")
    if not starttls:
        return caps
    if "STARTTLS" not in caps:
        raise _NoStartTls(caps)
    chat.lines.send(b"p2 STARTTLS\r\n")
    while True:
        line = chat.lines.line()
        if line.startswith(b"p2 "):
            if not line[3:].upper().startswith(b"OK"):
                raise ProbeFailed(f"STARTTLS refused: {_show(line)}")
            break
    assert ctx is not None
    chat.lines.start_tls(ctx, host)
    chat.tls = True
    return _imap_caps(chat, b"p3")


# -- POP3 --------------------------------------------------------------------------------------

def _pop3_caps(chat: _Chat) -> frozenset[str]:
    chat.lines.send(b"CAPA\r\n")
    first = chat.lines.line()
    if not first.startswith(b"+OK"):
        return frozenset()  # an RFC 1939 server without CAPA
    caps: set[str] = set()
    while True:
        line = chat.lines.line()
        if line == b".":
            return frozenset(caps)
        words = _tokens(line)
        if words:
            caps.add(words[0])
            if words[0] == "SASL":
                caps.update("SASL=" + w for w in words[1:])


def _pop3(chat: _Chat, starttls: bool, ctx: ssl.SSLContext | None, host: str) -> frozenset[str]:
    greeting = chat.lines.line()
    chat.greeting = _show(greeting)
    if not greeting.startswith(b"+OK"):
        raise ProbeFailed(f"not a POP3 greeting: {chat.greeting[:60]!r}")
    caps = _pop3_caps(chat)
    if not starttls:
        return caps
    if "STLS" not in caps:
        raise _NoStartTls(caps)
    chat.lines.send(b"STLS\r\n")
    line = chat.lines.line()
    if not line.startswith(b"+OK"):
        raise ProbeFailed(f"STLS refused: {_show(line)}")
    assert ctx is not None
    chat.lines.start_tls(ctx, host)
    chat.tls = True
    return _pop3_caps(chat)


# -- SMTP --------------------------------------------------------------------------------------

def _smtp_reply(chat: _Chat) -> tuple[int, list[bytes]]:
    lines = []
    while True:
        line = chat.lines.line()
        if len(line) < 3 or not line[:3].isdigit():
            raise ProbeFailed(f"not an SMTP reply: {_show(line)[:60]!r}")
        lines.append(line[4:])
        if line[3:4] != b"-":
            return int(line[:3]), lines


def _ehlo(chat: _Chat, name: bytes) -> frozenset[str]:
    chat.lines.send(b"EHLO " + name + b"\r\n")
    code, lines = _smtp_reply(chat)
    if code != 250:
        raise ProbeFailed(f"EHLO refused ({code})")
    caps: set[str] = set()
    for line in lines[1:]:
        words = _tokens(line)
        if words:
            caps.add(words[0])
            if words[0] == "AUTH":
                caps.update("AUTH=" + w for w in words[1:])
    return frozenset(caps)


def _smtp(chat: _Chat, starttls: bool, ctx: ssl.SSLContext | None, host: str) -> frozenset[str]:
    code, lines = _smtp_reply(chat)
    chat.greeting = _show(lines[0] if lines else b"")
    if code != 220:
        raise ProbeFailed(f"the server refused the session ({code} {chat.greeting[:60]})")
    local = chat.lines.sock.getsockname()[0]
    name = (f"[IPv6:{local}]" if ":" in local else f"[{local}]").encode("ascii")
    caps = _ehlo(chat, name)
    if not starttls:
        return caps
    if "STARTTLS" not in caps:
        raise _NoStartTls(caps)
    chat.lines.send(b"STARTTLS\r\n")
    code, _ = _smtp_reply(chat)
    if code != 220:
        raise ProbeFailed(f"STARTTLS refused ({code})")
    assert ctx is not None
    chat.lines.start_tls(ctx, host)
    chat.tls = True
    return _ehlo(chat, name)


_TALK = {"imap": _imap, "pop3": _pop3, "smtp": _smtp}
_BYE = {"imap": b"p9 LOGOUT\r\n", "pop3": b"QUIT\r\n", "smtp": b"QUIT\r\n"}


class _NoStartTls(Exception):
    def __init__(self, caps: frozenset[str]):
        self.caps = caps


def probe(c: Candidate, connector: Connector, tls: TlsContext, timeout: float) -> Probe:
    """Greeting and capabilities of candidate `c`, all within `timeout` seconds. A plain-text
    candidate (security "none") is only probed on loopback; callers decide that
    (results.is_loopback)."""
    cutoff = Cutoff(timeout)
    try:
        got = _probe(c, connector, tls, timeout, cutoff)
    finally:
        cutoff.cancel()
    if cutoff.fired and not got.ok and got.error != NO_STARTTLS:
        return replace(got, error="no answer in time (timeout)")
    return got


def _probe(c: Candidate, connector: Connector, tls: TlsContext, timeout: float, cutoff: Cutoff) -> Probe:
    deadline = time.monotonic() + timeout
    sock: socket.socket | ssl.SSLSocket | None = None
    chat: _Chat | None = None
    try:
        sock = connector(c.host, c.port, timeout)
        cutoff.watch(sock)
        ctx = tls() if c.security in ("tls", "starttls") else None  # (loading the CA store takes time)
        lines = Lines(sock, deadline)
        chat = _Chat(lines)
        if c.security == "tls":
            assert ctx is not None
            lines.start_tls(ctx, c.host)
            chat.tls = True
        caps = _TALK[c.protocol](chat, c.security == "starttls", ctx, c.host)
        try:
            lines.send(_BYE[c.protocol])
        except (OSError, ProbeFailed):
            pass
        sock = lines.sock
        return Probe(ok=True, greeting=chat.greeting, caps=caps, tls=chat.tls)
    except _NoStartTls as exc:
        return Probe(ok=False, greeting=chat.greeting if chat else "", caps=exc.caps, error=NO_STARTTLS)
    except ssl.SSLCertVerificationError as exc:
        return Probe(ok=False, error=f"TLS certificate not trusted: {exc.verify_message}")
    except ssl.SSLError as exc:
        if exc.reason in PLAIN_TEXT_REASONS:
            return Probe(ok=False, error="TLS failed: the server answered in plain text")
        return Probe(ok=False, error=f"TLS failed: {exc.reason or exc}")
    except ProbeFailed as exc:
        return Probe(ok=False, greeting=chat.greeting if chat else "", error=str(exc))
    except TimeoutError:
        return Probe(ok=False, error="no answer in time (timeout)")
    except OSError as exc:
        return Probe(ok=False, error=exc.strerror or type(exc).__name__)
    except ValueError as exc:  # a connector refusing the name (IDNA), a malformed answer
        return Probe(ok=False, error=f"refused: {type(exc).__name__}")
    finally:
        if chat is not None:
            sock = chat.lines.sock
        if sock is not None:
            try:
                sock.close()
            except OSError:
                pass


def fingerprint(host: str, port: int, connector: Connector, timeout: float) -> str | None:
    """The sha256 of an implicit-TLS server's certificate, read without trusting it (for a
    server whose certificate is self-signed: the user may pin it as tls_fingerprint)."""
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    try:
        sock = connector(host, port, timeout)
        sock.settimeout(timeout)
        with ctx.wrap_socket(sock, server_hostname=host) as tls_sock:
            der = tls_sock.getpeercert(binary_form=True)
    except (OSError, ssl.SSLError):
        return None
    return hashlib.sha256(der).hexdigest() if der else None
