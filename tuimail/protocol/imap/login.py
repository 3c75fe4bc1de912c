"""Connecting and logging in through imapclient, bounded: literals from the first byte read, and
the whole of connect + TLS + greeting + login by one overall deadline (a watchdog thread).

Used by ImapConnection.connect (connection.py); after login the Session (session.py) and its
ResponseReader (wire.py) take over.
"""

from __future__ import annotations

import imaplib
import socket
import ssl
import threading
import time

import imapclient
from imapclient import imap4
from imapclient import tls as imapclient_tls

from tuimail.errors import ProtocolError


def tls_context(ca_file=None, fingerprint: str | None = None) -> ssl.SSLContext:
    ctx = ssl.create_default_context(cafile=str(ca_file) if ca_file else None)
    if fingerprint:  # pinned: the pin replaces the CA check (self-signed servers)
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    return ctx


class _Watchdog:
    """The overall deadline of connecting and logging in (imaplib reads with per-recv timeouts,
    which a server trickling one byte every 20 s resets forever): when it passes, the connection
    is shut down under whatever read is waiting. Paused while a password command runs."""

    def __init__(self, seconds: float):
        self.seconds = seconds
        self.fired = False
        self._sock: socket.socket | None = None  # a dup of the connection's socket (TLS wrapping detaches it)
        self._lock = threading.Lock()
        self._timer: threading.Timer | None = None
        self._left = seconds
        self._since = 0.0

    def resume(self) -> None:
        with self._lock:
            self._since = time.monotonic()
            self._timer = threading.Timer(max(0.0, self._left), self._fire)
            self._timer.daemon = True
            self._timer.start()

    def pause(self) -> None:
        with self._lock:
            if self._timer is not None:
                self._timer.cancel()
                self._timer = None
                self._left -= time.monotonic() - self._since

    def attach(self, sock: socket.socket) -> None:
        with self._lock:
            try:
                self._sock = sock.dup()
            except OSError:
                return
            if self.fired:
                self._shut()

    def _fire(self) -> None:
        with self._lock:
            if self._timer is None:
                return  # paused or cancelled meanwhile
            self.fired = True
            self._shut()

    def _shut(self) -> None:
        try:
            if self._sock is not None:
                self._sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass

    def cancel(self) -> None:
        self.pause()
        with self._lock:
            if self._sock is not None:
                self._sock.close()
                self._sock = None


class _BoundedReads(imaplib.IMAP4):
    """imaplib reads a literal with file.read(size), which allocates `size` bytes first. Refuse an
    oversized claim before that -- from the greeting on: imaplib reads the greeting and the first
    CAPABILITY answer inside its constructor, before any instance could be patched. The socket is
    handed to the watchdog as soon as it exists, before the greeting (and the TLS handshake)."""

    def __init__(self, *args, max_literal: int, watchdog: _Watchdog, **kw):
        self.max_literal = max_literal
        self.watchdog = watchdog
        super().__init__(*args, **kw)

    def read(self, size):
        if size > self.max_literal:
            raise ProtocolError(f"server announced a {size}-byte literal (limit {self.max_literal}); refused")
        return super().read(size)


class _IMAP4(_BoundedReads, imap4.IMAP4WithTimeout):
    def _create_socket(self, timeout=None):
        sock = super()._create_socket(timeout)
        self.watchdog.attach(sock)
        return sock


class _IMAP4TLS(_BoundedReads, imapclient_tls.IMAP4_TLS):
    def _create_socket(self, timeout=None):
        sock = socket.create_connection((self.host, self.port), timeout=self._timeout if timeout is None else timeout)
        self.watchdog.attach(sock)
        return imapclient_tls.wrap_socket(sock, self.ssl_context, self.host)


class _Client(imapclient.IMAPClient):
    """IMAPClient whose imaplib object bounds literals from the first byte it reads."""

    def __init__(self, *args, max_literal: int, watchdog: _Watchdog, **kw):
        self._max_literal = max_literal
        self._watchdog = watchdog
        super().__init__(*args, **kw)

    def _create_IMAP4(self):
        timeout = getattr(self._timeout, "connect", None)
        if self.ssl:
            imap = _IMAP4TLS(self.host, self.port, self.ssl_context, timeout, max_literal=self._max_literal,
                             watchdog=self._watchdog)
        else:
            imap = _IMAP4(self.host, self.port, timeout, max_literal=self._max_literal, watchdog=self._watchdog)
        # imaplib writes an AUTHENTICATE answer and its CRLF as two small segments: with Nagle
        # the second waits for the server's delayed ACK, ~40 ms of every login (measured: PLAIN
        # login 52 ms -> 5 ms on loopback). A request/response protocol wants no such delay.
        try:
            imap.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        except (OSError, AttributeError):
            pass
        return imap
