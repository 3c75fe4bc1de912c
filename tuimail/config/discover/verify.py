"""Checking a login before anything is written: IMAP through imapclient (the user name tried as
the full address, then its local part, unless one is given or autoconfig named it), over the
same injectable connector as discovery, bounded like the real connection (one deadline for the
whole of connect + TLS + login, literals capped from the first byte).

POP3 is checked with protocol/pop3.py's session (over the same connector), JMAP by fetching the
session resource with protocol/jmap's client, SMTP AUTH with protocol/smtp.py's check_login
(EHLO, TLS, AUTH, QUIT: nothing is sent).
"""

from __future__ import annotations

import ssl
from dataclasses import dataclass

import imapclient
from imapclient import imap4
from imapclient import tls as imapclient_tls
from imapclient.exceptions import IMAPClientError, LoginError

from tuimail.config.discover.net import Connector, TlsContext, default_tls, tcp_connect
from tuimail.config.discover.results import Address, Candidate, is_loopback
from tuimail.errors import ProtocolError
from tuimail.mail.sanitize import sanitize_line
from tuimail.protocol.tls import PLAIN_TEXT_REASONS
from tuimail.protocol.imap.login import _BoundedReads, _Watchdog

TIMEOUT = 20.0
MAX_LITERAL = 1 << 20  # nothing in a login needs more


@dataclass(frozen=True)
class LoginCheck:
    """outcome: "ok" | "refused" (every user name tried was refused) | "unreachable" | "tls" |
    "insecure" (would send the password in plain text) | "unsupported" | "protocol"."""

    outcome: str
    message: str  # one line for the user
    username: str | None = None  # the user name that worked
    tried: tuple[str, ...] = ()
    caps: frozenset[str] = frozenset()  # after login

    @property
    def ok(self) -> bool:
        return self.outcome == "ok"


def usernames(address: Address, candidate: Candidate, username: str | None = None) -> list[str]:
    if username:
        return [username]
    if candidate.username:
        return [candidate.username]
    names = [address.text, address.local]
    return list(dict.fromkeys(names))


def _make_client(connector: Connector, watchdog: _Watchdog):
    class _Plain(_BoundedReads, imap4.IMAP4WithTimeout):
        def _create_socket(self, timeout=None):
            sock = connector(self.host, self.port, self._timeout if timeout is None else timeout)
            self.watchdog.attach(sock)
            return sock

    class _Tls(_BoundedReads, imapclient_tls.IMAP4_TLS):
        def _create_socket(self, timeout=None):
            sock = connector(self.host, self.port, self._timeout if timeout is None else timeout)
            self.watchdog.attach(sock)
            return imapclient_tls.wrap_socket(sock, self.ssl_context, self.host)

    class _Client(imapclient.IMAPClient):
        def _create_IMAP4(self):
            timeout = getattr(self._timeout, "connect", None)
            if self.ssl:
                return _Tls(self.host, self.port, self.ssl_context, timeout, max_literal=MAX_LITERAL,
                            watchdog=watchdog)
            return _Plain(self.host, self.port, timeout, max_literal=MAX_LITERAL, watchdog=watchdog)

    return _Client


class _Refused(Exception):
    pass


def _one_line(exc: object) -> str:
    text = exc.decode("utf-8", "replace") if isinstance(exc, bytes) else str(exc)
    text = sanitize_line(text)
    return text[:200]


def _attempt(c: Candidate, user: str, password: str, connector: Connector, tls: TlsContext,
             timeout: float) -> frozenset[str]:
    """Log in once; the capabilities after login. _Refused when the server said no to the
    credentials; LoginCheck-worthy errors as exceptions otherwise."""
    watchdog = _Watchdog(timeout)
    watchdog.resume()
    ctx = tls() if c.security in ("tls", "starttls") else None
    client = None
    try:
        client = _make_client(connector, watchdog)(c.host, port=c.port, ssl=c.security == "tls", ssl_context=ctx,
                                                   timeout=timeout + 1)
        if c.security == "starttls":
            if b"STARTTLS" not in client.capabilities():
                raise _Outcome("insecure", f"{c.where} does not offer STARTTLS; refusing to log in in the clear")
            client.starttls(ssl_context=ctx)
        caps = client.capabilities()
        if b"LOGINDISABLED" in caps:
            raise _Outcome("unsupported", f"{c.where} does not allow a password login here (LOGINDISABLED)")
        try:
            if b"AUTH=PLAIN" in caps:
                client.plain_login(user, password)
            else:
                client.login(user, password)
        except LoginError as exc:
            raise _Refused(_one_line(exc)) from None
        after = frozenset(x.decode("ascii", "replace").upper() for x in client.capabilities())
        try:
            client.logout()
        except Exception:
            pass
        client = None
        return after
    except (_Refused, _Outcome):
        raise
    except ssl.SSLCertVerificationError as exc:
        raise _Outcome("tls", f"TLS certificate of {c.where} not trusted: {exc.verify_message}") from None
    except ssl.SSLError as exc:
        if exc.reason in PLAIN_TEXT_REASONS:
            raise _Outcome("tls", f"TLS with {c.where} failed: the server answered in plain text") from None
        raise _Outcome("tls", f"TLS with {c.where} failed: {exc.reason or exc}") from None
    except ProtocolError as exc:
        raise _Outcome("protocol", f"{c.where}: {exc}") from None
    except (OSError, EOFError) as exc:
        if watchdog.fired:
            raise _Outcome("unreachable", f"{c.where}: no answer within {timeout:g} s (timeout)") from None
        why = (exc.strerror or str(exc) or type(exc).__name__) if isinstance(exc, OSError) else "connection closed"
        raise _Outcome("unreachable", f"cannot reach {c.where}: {_one_line(why)}") from None
    except IMAPClientError as exc:
        if watchdog.fired:
            raise _Outcome("unreachable", f"{c.where}: no answer within {timeout:g} s (timeout)") from None
        raise _Outcome("protocol", f"{c.where}: {_one_line(exc)}") from None
    except Exception as exc:  # imapclient choking on a malformed answer
        raise _Outcome("protocol", f"{c.where}: malformed answer during login ({type(exc).__name__})") from None
    finally:
        watchdog.cancel()
        if client is not None:
            try:
                client.shutdown()
            except Exception:
                pass


class _Outcome(Exception):
    def __init__(self, outcome: str, message: str):
        super().__init__(message)
        self.outcome = outcome
        self.message = message


def verify_imap(c: Candidate, password: str, address: Address, *, username: str | None = None,
                connector: Connector = tcp_connect, tls: TlsContext = default_tls,
                timeout: float = TIMEOUT) -> LoginCheck:
    """Log in to IMAP candidate `c` and out again. Tries each user name of `usernames()` in turn
    while the server refuses the credentials; stops at the first other failure."""
    if c.protocol != "imap":
        raise ValueError(f"verify_imap: not an IMAP candidate: {c.protocol}")
    if c.security == "none" and not is_loopback(c.host):
        return LoginCheck("insecure", f"{c.where}: a password is sent in plain text only on loopback"
                                      " (use TLS or STARTTLS)")
    tried: list[str] = []
    last = ""
    for user in usernames(address, c, username):
        tried.append(user)
        try:
            caps = _attempt(c, user, password, connector, tls, timeout)
        except _Refused as exc:
            last = str(exc)
            continue
        except _Outcome as exc:
            return LoginCheck(exc.outcome, exc.message, tried=tuple(tried))
        return LoginCheck("ok", f"logged in to {c.where} as {user!r}", username=user, tried=tuple(tried), caps=caps)
    names = " and ".join(repr(u) for u in tried)
    return LoginCheck("refused", f"{c.where} refused the login for {names}: {last} (check the user name and"
                                 " password)", tried=tuple(tried))


def verify_pop3(c: Candidate, password: str, address: Address, *, username: str | None = None,
                connector: Connector = tcp_connect, tls: TlsContext | None = None, timeout: float = TIMEOUT,
                ca_file: str | None = None, fingerprint: str | None = None) -> LoginCheck:
    """Log in to POP3 candidate `c` with protocol/pop3.py's Pop3Session and QUIT (nothing is
    fetched or deleted). User names as for IMAP. It connects through `connector`, the probes'
    seam (tests map names to loopback ports); it builds its own verified TLS context, so `tls` is
    not used -- pass `ca_file` / `fingerprint` for a private CA or a pinned server."""
    from tuimail.errors import AuthError, NetworkError, TLSError
    from tuimail.protocol.pop3 import Pop3Session

    if c.protocol != "pop3":
        raise ValueError(f"verify_pop3: not a POP3 candidate: {c.protocol}")
    if c.security == "none" and not is_loopback(c.host):
        return LoginCheck("insecure", f"{c.where}: a password is sent in plain text only on loopback"
                                      " (use TLS or STARTTLS)")
    tried: list[str] = []
    last = ""
    for user in usernames(address, c, username):
        tried.append(user)
        session = Pop3Session(c.host, c.port, security=c.security, username=user, secret=lambda: password,
                              ca_file=ca_file, fingerprint=fingerprint, timeout=timeout,
                              connector=None if connector is tcp_connect else connector)
        try:
            session.connect()
        except AuthError as exc:
            session.abort()
            last = _one_line(exc)
            continue
        except TLSError as exc:
            session.abort()
            return LoginCheck("tls", _one_line(exc), tried=tuple(tried))
        except NetworkError as exc:
            session.abort()
            return LoginCheck("unreachable", _one_line(exc), tried=tuple(tried))
        except Exception as exc:  # CommandFailed and anything unexpected: one line, no traceback
            session.abort()
            return LoginCheck("protocol", f"{c.where}: {_one_line(exc) or type(exc).__name__}", tried=tuple(tried))
        caps = frozenset(session.caps)
        try:
            session.quit()  # the login is what was checked: a lost QUIT answer changes nothing
        except Exception:
            session.abort()
        return LoginCheck("ok", f"logged in to {c.where} as {user!r}", username=user, tried=tuple(tried), caps=caps)
    names = " and ".join(repr(u) for u in tried)
    return LoginCheck("refused", f"{c.where} refused the login for {names} (last answer: {last})", tried=tuple(tried))


def verify_smtp(c: Candidate, password: str, address: Address, *, username: str | None = None,
                connector: Connector = tcp_connect, tls: TlsContext | None = None, timeout: float = TIMEOUT,
                ca_file: str | None = None, fingerprint: str | None = None) -> LoginCheck:
    """Check SMTP AUTH at candidate `c` with protocol/smtp.py's check_login: connect, EHLO,
    STARTTLS or implicit TLS, AUTH, QUIT -- nothing is sent. User names as for IMAP. `tls`
    (a context factory, as for the probes) replaces the verified context built from `ca_file` /
    `fingerprint`. A server offering no AUTH at all gives "unsupported" (nothing to check)."""
    from tuimail.protocol.smtp import SendError, SmtpSettings, check_login

    if c.protocol != "smtp":
        raise ValueError(f"verify_smtp: not an SMTP candidate: {c.protocol}")
    if c.security == "none" and not is_loopback(c.host):
        return LoginCheck("insecure", f"{c.where}: a password is sent in plain text only on loopback"
                                      " (use TLS or STARTTLS)")
    context = tls() if tls is not None and c.security != "none" else None
    tried: list[str] = []
    last = ""
    for user in usernames(address, c, username):
        tried.append(user)
        settings = SmtpSettings(c.host, c.port, c.security, username=user, password=password, ca_file=ca_file,
                                fingerprint=fingerprint, timeout=timeout, deadline=timeout * 2)
        try:
            caps = check_login(settings, connector=None if connector is tcp_connect else connector, context=context)
        except SendError as exc:
            text = _one_line(exc)
            if exc.kind == "auth" and exc.code in (535, 534, 530, 454):
                last = text
                continue
            outcome = {"auth": "unsupported", "tls": "tls", "network": "unreachable"}.get(exc.kind, "protocol")
            if exc.kind == "tls" and "STARTTLS" in text and "does not offer" in text:
                outcome = "insecure"
            return LoginCheck(outcome, text, tried=tuple(tried))
        except Exception as exc:  # anything unexpected: one line, no traceback
            return LoginCheck("protocol", f"{c.where}: {_one_line(exc) or type(exc).__name__}", tried=tuple(tried))
        return LoginCheck("ok", f"logged in to {c.where} as {user!r}", username=user, tried=tuple(tried), caps=caps)
    names = " and ".join(repr(u) for u in tried)
    return LoginCheck("refused", f"{c.where} refused the login for {names} (last answer: {last})", tried=tuple(tried))


def verify_jmap(c: Candidate, password: str, address: Address, *, username: str | None = None,
                connector: Connector | None = None, tls: TlsContext | None = None, timeout: float = TIMEOUT,
                ca_file: str | None = None, fingerprint: str | None = None) -> LoginCheck:
    """Fetch JMAP candidate `c`'s session resource with the credentials (protocol/jmap's client,
    Basic auth; nothing else is asked). User names as for IMAP; an HTTP 401/403 is a refused
    login. A session without a mail account is "unsupported". The client opens its own
    connections (verified TLS from `ca_file` / `fingerprint`): `connector` and `tls` are not used.
    `caps`: the session's capability URNs."""
    from tuimail.errors import AuthError, NetworkError, TLSError, TuimailError
    from tuimail.protocol.jmap.client import MAIL, JmapClient

    if c.protocol != "jmap" or not c.url:
        raise ValueError(f"verify_jmap: not a JMAP candidate: {c.protocol}")
    if c.security == "none" and not is_loopback(c.host):
        return LoginCheck("insecure", f"{c.url}: a password is sent over plain http only on loopback (use https)")
    tried: list[str] = []
    last = ""
    for user in usernames(address, c, username):
        tried.append(user)
        client = JmapClient(c.url, username=user, password=password, ca_file=ca_file, fingerprint=fingerprint,
                            timeout=timeout, deadline=timeout * 2)
        try:
            session = client.fetch_session()
        except AuthError as exc:
            last = _one_line(exc)
            continue
        except TLSError as exc:
            return LoginCheck("tls", _one_line(exc), tried=tuple(tried))
        except NetworkError as exc:
            return LoginCheck("unreachable", _one_line(exc), tried=tuple(tried))
        except (TuimailError, ValueError, OSError) as exc:
            return LoginCheck("protocol", f"{c.url}: {_one_line(exc) or type(exc).__name__}", tried=tuple(tried))
        finally:
            client.close()
        caps = frozenset(k for k in session.capabilities if isinstance(k, str))
        if not session.primary_accounts.get(MAIL):
            return LoginCheck("unsupported", f"{c.url}: the login works but the session has no mail account",
                              tried=tuple(tried), caps=caps)
        return LoginCheck("ok", f"logged in to {c.url} as {user!r}", username=user, tried=tuple(tried), caps=caps)
    names = " and ".join(repr(u) for u in tried)
    return LoginCheck("refused", f"{c.url} refused the login for {names} (last answer: {last})", tried=tuple(tried))


def verify(c: Candidate, password: str, address: Address, **kw) -> LoginCheck:
    """The login check for `c`'s protocol."""
    fn = {"imap": verify_imap, "pop3": verify_pop3, "jmap": verify_jmap, "smtp": verify_smtp}[c.protocol]
    return fn(c, password, address, **kw)


__all__ = ["LoginCheck", "usernames", "verify", "verify_imap", "verify_jmap", "verify_pop3", "verify_smtp"]
