"""The IMAP adapter: imapclient for connecting, TLS/STARTTLS and authentication; raw commands
through the same socket for everything after login.

Why (DESIGN.md §3, imapclient 4.1 pitfalls): its string message sets raise after the command ran
(#666), it sends UID lists uncompressed (Dovecot: "Too long argument"), it lacks QRESYNC SELECT,
VANISHED, UNCHANGEDSINCE/MODIFIED and ESEARCH, `copy()` drops COPYUID, `idle_check()` breaks on
split lines, and imaplib allocates whatever literal size a server claims. So after login we stop
using imapclient's reader: `wire.ResponseReader` reads with bounds, every UID set is built compact by
`uidset`, every argument taken from data is quoted (7-bit only) or sent as a literal
(`wire.string`), and every command line stays <= 8 KB.

Structure: ImapConnection connects and logs in, then hands the socket to its Session
(session.py: tags, sending, reading answers under their bounds, unsolicited news). The commands
live in groups that each hold the Session -- MailboxCommands (mailbox.py), LiteralCommands
(literals.py), IdleCommands (idle.py) -- and ImapConnection offers them under one name.
"""

from __future__ import annotations

import hashlib
import socket
import ssl
from collections.abc import Callable, Iterable, Iterator
from datetime import datetime
from typing import Any

from imapclient.exceptions import IMAPClientError, LoginError

from tuimail.errors import AuthError, NetworkError, ProtocolError, TLSError, TuimailError
from tuimail.protocol.imap import wire
from tuimail.protocol.imap.idle import IdleCommands, Wake
from tuimail.protocol.imap.literals import LiteralCommands
from tuimail.protocol.imap.login import _Client, _Watchdog, tls_context
from tuimail.protocol.imap.mailbox import MailboxCommands, Progress
# FolderEntry, HeaderItem, SelectResult and encode_mailbox are part of this module's interface
from tuimail.protocol.imap.responses import (  # noqa: F401
    HEADER_FIELDS,
    FolderEntry,
    HeaderItem,
    SelectResult,
    Unsolicited,
    encode_mailbox,
    one_line,
)
from tuimail.protocol.imap.responses import flag_arg as _flag_arg  # noqa: F401  (the flag validator, kept under its old name)
from tuimail.protocol.tls import PLAIN_TEXT_REASONS
from tuimail.protocol.imap.session import DEFAULT_TIMEOUT, Command, FastScan, Handler, Session


class ImapConnection:
    """One IMAP connection. Not thread-safe: one thread owns it."""

    def __init__(self, account: Any, secret: Callable[[], str], *, timeout: float | None = None,
                 max_literal: int = 64 << 20, log: Callable[[str], None] | None = None):
        """timeout: seconds for connecting and logging in, and for each command's answer
        (default: the account's `timeout`, else DEFAULT_TIMEOUT)."""
        self.account = account
        self._secret = secret
        self.timeout = float(timeout if timeout is not None else getattr(account, "timeout", None) or DEFAULT_TIMEOUT)
        self.max_literal = max_literal
        self._phase = ""
        self.client: _Client | None = None
        self.session = Session(f"{account.host}:{account.port}", timeout=self.timeout, max_literal=max_literal,
                               log=log)
        self.mailbox = MailboxCommands(self.session, getattr(account, "roles", None) or {})
        self.literals = LiteralCommands(self.session)
        self.idler = IdleCommands(self.session)

    # ------------------------------------------------------------------ connect / login

    @property
    def where(self) -> str:
        return self.session.where

    @property
    def selected(self) -> str | None:
        """The folder SELECTed (or EXAMINEd) now, None when none is."""
        return self.session.selected

    @property
    def broken(self) -> bool:
        """A read or write failed or timed out: closing sends no LOGOUT."""
        return self.session.broken

    def connect(self) -> None:
        """Connect, log in and read the capabilities, all within `timeout` seconds (the time a
        password command takes is not counted)."""
        watchdog = _Watchdog(self.timeout)
        watchdog.resume()
        try:
            self._connect(watchdog)
        except NetworkError as exc:
            if watchdog.fired:
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
            watchdog.cancel()

    def _connect(self, watchdog: _Watchdog) -> None:
        acc = self.account
        ctx = None
        if acc.security in ("tls", "starttls"):
            ctx = tls_context(acc.tls_ca_file, acc.tls_fingerprint)
        try:
            self._phase = "greeting"
            self.client = client = _Client(acc.host, port=acc.port, ssl=acc.security == "tls",
                                           # (per recv: a little longer than the watchdog, which names the step)
                                           ssl_context=ctx, timeout=self.timeout + 1, max_literal=self.max_literal,
                                           watchdog=watchdog)
            if acc.security == "starttls":
                self._phase = "CAPABILITY"
                if b"STARTTLS" not in client.capabilities():
                    raise TLSError(f"{self.where} does not offer STARTTLS; refusing to log in in the clear"
                                   f" (accounts.{acc.name}.security)")
                self._phase = "STARTTLS"
                client.starttls(ssl_context=ctx)
            if acc.tls_fingerprint and acc.security != "none":
                self._check_fingerprint(client, acc.tls_fingerprint)
            self._login(client, watchdog)
            self._phase = "CAPABILITY"
            caps = client.capabilities()
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
        self.session.caps = {c.decode("ascii", "replace").upper() for c in caps}
        self.session.attach(client._imap.sock)

    def _check_fingerprint(self, client: _Client, expected: str) -> None:
        der = client._imap.sock.getpeercert(binary_form=True)
        got = hashlib.sha256(der or b"").hexdigest()
        if got != expected:
            raise TLSError(f"TLS certificate of {self.where} has sha256 fingerprint {got}, not the one in"
                           f" accounts.{self.account.name}.tls_fingerprint")

    def _login(self, client: _Client, watchdog: _Watchdog) -> None:
        acc = self.account
        try:
            self._phase = "CAPABILITY"
            if acc.oauth2_token_command is None:
                client.capabilities()  # (read before the password command runs: not paused)
            watchdog.pause()  # a password command may wait for a passphrase prompt
            try:
                secret = self._secret()
            finally:
                watchdog.resume()
            self._phase = "LOGIN"
            if acc.oauth2_token_command:
                client.oauth2_login(acc.username, secret)
            elif b"AUTH=PLAIN" in client.capabilities():
                client.plain_login(acc.username, secret)
            else:
                client.login(acc.username, secret)
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
        if self.session.reader is not None and not self.session.broken:
            try:
                self.command(b"LOGOUT")
            except Exception:
                pass
        self._abort()
        self.session.detach()

    def shutdown(self) -> None:
        """Drop the connection now (another thread may be blocked on it)."""
        try:
            if self.session.sock is not None:
                self.session.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass

    # ------------------------------------------------------------------ the session

    def has(self, cap: str) -> bool:
        return self.session.has(cap)

    def command(self, cmd: Command, on_untagged: Handler | None = None, check: bool = True,
                fast: FastScan | None = None) -> tuple[str, bytes]:
        return self.session.command(cmd, on_untagged, check, fast)

    def send_command(self, cmd: Command) -> bytes:
        return self.session.send_command(cmd)

    def read_until(self, tag: bytes, cmd: bytes, on_untagged: Handler | None = None, check: bool = True,
                   fast: FastScan | None = None) -> tuple[str, bytes]:
        return self.session.read_until(tag, cmd, on_untagged, check, fast)

    def take_unsolicited(self) -> Unsolicited:
        return self.session.take_unsolicited()

    # ------------------------------------------------------------------ the command groups, under one name

    def enable(self, *exts: str) -> set[str]:
        return self.mailbox.enable(*exts)

    def noop(self) -> None:
        self.mailbox.noop()

    def list_folders(self, with_status: bool = False) -> list[FolderEntry]:
        return self.mailbox.list_folders(with_status)

    def status(self, folder: str) -> dict:
        return self.mailbox.status(folder)

    def select(self, folder: str, *, qresync: tuple[int, int, list[tuple[int, int]] | None] | None = None,
               condstore: bool = False, readonly: bool = False) -> SelectResult:
        return self.mailbox.select(folder, qresync=qresync, condstore=condstore, readonly=readonly)

    def unselect(self) -> None:
        self.mailbox.unselect()

    def fetch_flags(self, uids: Iterable[int] | None = None, changedsince: int | None = None,
                    vanished: bool = False) -> list[tuple[int, tuple[str, ...], int | None]]:
        return self.mailbox.fetch_flags(uids, changedsince, vanished)

    def fetch_internaldates(self, uids: Iterable[int]) -> dict[int, int]:
        return self.mailbox.fetch_internaldates(uids)

    def fetch_headers(self, uids: list[int]) -> Iterator[HeaderItem]:
        return self.mailbox.fetch_headers(uids)

    def fetch_header_seq(self, first: int, last: int) -> list[HeaderItem]:
        return self.mailbox.fetch_header_seq(first, last)

    def fetch_header_windows(self, windows: list[list[int]]) -> Iterator[list[HeaderItem]]:
        return self.mailbox.fetch_header_windows(windows)

    def store_flags(self, uids: Iterable[int], add: Iterable[str] = (), remove: Iterable[str] = (),
                    unchangedsince: int | None = None, progress: Progress | None = None
                    ) -> tuple[list[int], list[tuple[int, int | None]]]:
        return self.mailbox.store_flags(uids, add, remove, unchangedsince, progress)

    def move(self, uids: Iterable[int], dest: str, progress: Progress | None = None) -> dict[int, int]:
        return self.mailbox.move(uids, dest, progress)

    def copy(self, uids: Iterable[int], dest: str, progress: Progress | None = None) -> dict[int, int]:
        return self.mailbox.copy(uids, dest, progress)

    def expunge_uids(self, uids: Iterable[int], progress: Progress | None = None) -> None:
        self.mailbox.expunge_uids(uids, progress)

    def fetch_items(self, uid: int, items: bytes) -> dict:
        return self.mailbox.fetch_items(uid, items)

    def fetch_bodystructure(self, uid: int) -> Any:
        return self.mailbox.fetch_bodystructure(uid)

    def fetch_section(self, uid: int, section: str, offset: int = 0, length: int | None = None) -> bytes | None:
        return self.mailbox.fetch_section(uid, section, offset, length)

    def search_uids(self, criteria: bytes | list[bytes | wire.Literal] = b"ALL") -> list[int]:
        return self.literals.search_uids(criteria)

    def append(self, folder: str, message: bytes, flags: Iterable[str] = (),
               internaldate: datetime | float | None = None) -> int | None:
        return self.literals.append(folder, message, flags, internaldate)

    def idle(self, timeout: float, stop: Callable[[], bool], tick: float = 1.0,
             wake: Wake | None = None) -> Unsolicited:
        return self.idler.idle(timeout, stop, tick, wake)
