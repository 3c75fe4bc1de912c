"""A small POP3 server of our own, for what Dovecot cannot show: no TOP, no UIDL, no CAPA, APOP,
XOAUTH2, [IN-USE] / [SYS/TEMP] refusals, garbage and trickled answers, STLS offered or not.

    with FakePop3([raw1, raw2], apop=True, top=False) as srv:
        Pop3Session("127.0.0.1", srv.port, security="none", ...)
        srv.deleted        # UIDLs of the messages a successful QUIT removed (then renumbered)
        srv.received       # every command line (passwords included: it is a test server)

One thread accepts, one thread per connection; `close()` stops all. Messages are bytes with CRLF
line ends; the server dot-stuffs them. A session's DELEs are applied only at QUIT, as RFC 1939 says.
"""

from __future__ import annotations

import base64
import hashlib
import socket
import ssl
import threading
import time
from collections.abc import Callable

__all__ = ["FakePop3"]


class FakePop3:
    def __init__(self, messages: list[bytes] | None = None, *, user: str = "alice", password: str = "secret",
                 uidls: list[str] | None = None, top: bool = True, uidl: bool = True, capa: bool = True,
                 user_login: bool = True, sasl: tuple[str, ...] = ("PLAIN",), apop: bool = False,
                 pipelining: bool = False, stls_context: ssl.SSLContext | None = None,
                 xoauth2_token: str | None = None, login_error: bytes | None = None,
                 greeting: bytes | None = None, replies: dict[str, bytes] | None = None,
                 trickle: float | None = None, extra_capa: tuple[str, ...] = (), hangup: tuple[str, ...] = ()):
        """replies: command name -> raw bytes sent instead of the real answer (garbage, -ERR ...).
        login_error: the raw -ERR line for a correct PASS/APOP/AUTH (e.g. b"-ERR [IN-USE] locked").
        trickle: send every answer one byte per `trickle` seconds.
        hangup: command names after whose (replaced) answer the server closes the connection."""
        self.messages = list(messages or [])
        self.uidls = list(uidls) if uidls is not None else [f"uid-{i + 1}" for i in range(len(self.messages))]
        self.user, self.password = user, password
        self.top, self.uidl, self.capa, self.user_login = top, uidl, capa, user_login
        self.sasl, self.apop, self.pipelining = sasl, apop, pipelining
        self.stls_context, self.xoauth2_token = stls_context, xoauth2_token
        self.login_error, self.greeting, self.replies = login_error, greeting, dict(replies or {})
        self.trickle, self.extra_capa, self.hangup = trickle, extra_capa, hangup
        self.received: list[bytes] = []
        self.deleted: list[str] = []  # UIDLs of the messages removed by a successful QUIT
        self.sessions = 0
        self.stamp = b"<1896.697170952@fake.example>"
        self._lock = threading.Lock()
        self._conns: list[socket.socket] = []
        self._closing = False
        self._listen = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._listen.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._listen.bind(("127.0.0.1", 0))
        self._listen.listen(8)
        self._listen.settimeout(0.05)  # accept() wakes to notice close()
        self.port = self._listen.getsockname()[1]
        self._thread = threading.Thread(target=self._accept, name="fake-pop3", daemon=True)
        self._thread.start()

    def __enter__(self) -> FakePop3:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        self._closing = True
        try:
            self._listen.close()
        except OSError:
            pass
        with self._lock:
            for c in self._conns:
                try:
                    c.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
                c.close()
        self._thread.join(timeout=2)

    def uidl_of(self, n: int) -> str:
        """The UIDL of message n; messages appended to `messages` by a test get uid-<k> ids."""
        while len(self.uidls) < len(self.messages):
            self.uidls.append(f"uid-{len(self.uidls) + 1}")
        return self.uidls[n - 1]

    def capabilities(self) -> list[bytes]:
        caps = [b"RESP-CODES", b"AUTH-RESP-CODE"]
        if self.top:
            caps.append(b"TOP")
        if self.uidl:
            caps.append(b"UIDL")
        if self.user_login:
            caps.append(b"USER")
        if self.sasl:
            caps.append(b"SASL " + " ".join(self.sasl).encode())
        if self.pipelining:
            caps.append(b"PIPELINING")
        if self.stls_context is not None:
            caps.append(b"STLS")
        caps += [c.encode() for c in self.extra_capa]
        return caps

    # ------------------------------------------------------------------ the server

    def _accept(self) -> None:
        while not self._closing:
            try:
                conn, _ = self._listen.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            conn.settimeout(None)
            conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # no delayed-ACK waits per answer
            with self._lock:
                self._conns.append(conn)
            threading.Thread(target=self._serve_safely, args=(conn,), daemon=True).start()

    def _serve_safely(self, conn: socket.socket) -> None:
        try:
            _Session(self, conn).run()
        except (OSError, ssl.SSLError, ValueError):
            pass
        finally:
            try:
                conn.close()
            except OSError:
                pass


class _Session:
    def __init__(self, server: FakePop3, sock: socket.socket):
        self.srv, self.sock = server, sock
        self.file = sock.makefile("rb")
        self.authed = False
        self.user: str | None = None
        self.deleted: set[int] = set()
        server.sessions += 1

    def send(self, data: bytes) -> None:
        if self.srv.trickle:
            for i in range(len(data)):
                self.sock.sendall(data[i:i + 1])
                time.sleep(self.srv.trickle)
        else:
            self.sock.sendall(data)

    def ok(self, text: bytes = b"") -> None:
        self.send(b"+OK" + (b" " + text if text else b"") + b"\r\n")

    def err(self, text: bytes) -> None:
        self.send(b"-ERR " + text + b"\r\n")

    def multi(self, body: bytes) -> None:
        lines = body.split(b"\r\n")
        if lines and lines[-1] == b"":
            lines.pop()
        out = b"".join((b"." + ln if ln.startswith(b".") else ln) + b"\r\n" for ln in lines)
        self.send(out + b".\r\n")

    def run(self) -> None:
        srv = self.srv
        greeting = srv.greeting
        if greeting is None:
            greeting = b"+OK fake POP3 ready" + (b" " + srv.stamp if srv.apop else b"") + b"\r\n"
        self.send(greeting)
        while True:
            line = self.file.readline(65536)
            if not line:
                return
            srv.received.append(line.rstrip(b"\r\n"))
            words = line.rstrip(b"\r\n").split(b" ")
            cmd = words[0].upper().decode("ascii", "replace")
            if cmd in srv.replies:
                self.send(srv.replies[cmd])
                if cmd in srv.hangup:
                    return
                continue
            handler: Callable[[list[bytes]], bool | None] | None = getattr(self, "do_" + cmd.lower(), None)
            if handler is None or (not self.authed and cmd not in ("CAPA", "USER", "PASS", "APOP", "AUTH",
                                                                  "STLS", "QUIT")):
                self.err(b"unknown command or wrong state")
                continue
            if handler(words[1:]):
                return

    def logged_in(self) -> None:
        if self.srv.login_error is not None:
            self.send(self.srv.login_error + b"\r\n")
            return
        self.authed = True
        self.ok(b"logged in")

    def do_capa(self, args) -> None:
        if not self.srv.capa:
            self.err(b"unknown command")
            return
        self.ok(b"capabilities follow")
        self.multi(b"".join(c + b"\r\n" for c in self.srv.capabilities()))

    def do_stls(self, args) -> None:
        ctx = self.srv.stls_context
        if ctx is None or self.authed:
            self.err(b"STLS not available")
            return
        self.ok(b"begin TLS")
        self.sock = ctx.wrap_socket(self.sock, server_side=True)
        self.file = self.sock.makefile("rb")

    def do_user(self, args) -> None:
        if not self.srv.user_login:
            self.err(b"USER not allowed")
            return
        self.user = args[0].decode() if args else ""
        self.ok()

    def do_pass(self, args) -> None:
        if self.user == self.srv.user and b" ".join(args).decode() == self.srv.password:
            self.logged_in()
        else:
            self.err(b"[AUTH] invalid user or password")

    def do_apop(self, args) -> None:
        want = hashlib.md5(self.srv.stamp + self.srv.password.encode()).hexdigest().encode()
        if self.srv.apop and len(args) == 2 and args[0].decode() == self.srv.user and args[1] == want:
            self.logged_in()
        else:
            self.err(b"[AUTH] APOP failed")

    def do_auth(self, args) -> None:
        mech = args[0].upper() if args else b""
        if mech.decode() not in self.srv.sasl:
            self.err(b"unsupported mechanism")
            return
        self.send(b"+ \r\n")
        answer = base64.b64decode(self.file.readline(65536).strip())
        if mech == b"PLAIN":
            parts = answer.split(b"\0")
            if len(parts) == 3 and parts[1].decode() == self.srv.user and parts[2].decode() == self.srv.password:
                self.logged_in()
            else:
                self.err(b"[AUTH] authentication failed")
        elif mech == b"XOAUTH2":
            want = f"user={self.srv.user}\x01auth=Bearer {self.srv.xoauth2_token}\x01\x01".encode()
            if self.srv.xoauth2_token is not None and answer == want:
                self.logged_in()
            else:
                self.send(b"+ " + base64.b64encode(b'{"status":"401","schemes":"bearer"}') + b"\r\n")
                self.file.readline(65536)
                self.err(b"[AUTH] invalid token")
        else:
            self.err(b"unsupported mechanism")

    def _live(self) -> list[int]:
        return [n for n in range(1, len(self.srv.messages) + 1) if n not in self.deleted]

    def _msg(self, args) -> int | None:
        try:
            n = int(args[0])
        except (IndexError, ValueError):
            self.err(b"bad argument")
            return None
        if n < 1 or n > len(self.srv.messages) or n in self.deleted:
            self.err(b"no such message")
            return None
        return n

    def do_stat(self, args) -> None:
        live = self._live()
        self.ok(b"%d %d" % (len(live), sum(len(self.srv.messages[n - 1]) for n in live)))

    def do_list(self, args) -> None:
        self.ok()
        self.multi(b"".join(b"%d %d\r\n" % (n, len(self.srv.messages[n - 1])) for n in self._live()))

    def do_uidl(self, args) -> None:
        if not self.srv.uidl:
            self.err(b"unknown command")
            return
        self.ok()
        self.multi(b"".join(b"%d %s\r\n" % (n, self.srv.uidl_of(n).encode()) for n in self._live()))

    def do_top(self, args) -> None:
        if not self.srv.top:
            self.err(b"unknown command")
            return
        n = self._msg(args)
        if n is None:
            return
        raw = self.srv.messages[n - 1]
        head, sep, body = raw.partition(b"\r\n\r\n")
        keep = int(args[1]) if len(args) > 1 else 0
        body_lines = body.split(b"\r\n")[:keep] if keep else []
        self.ok()
        self.multi(head + b"\r\n\r\n" + b"".join(ln + b"\r\n" for ln in body_lines))

    def do_retr(self, args) -> None:
        n = self._msg(args)
        if n is not None:
            self.ok(b"%d octets" % len(self.srv.messages[n - 1]))
            self.multi(self.srv.messages[n - 1])

    def do_dele(self, args) -> None:
        n = self._msg(args)
        if n is not None:
            self.deleted.add(n)
            self.ok(b"deleted")

    def do_rset(self, args) -> None:
        self.deleted.clear()
        self.ok()

    def do_noop(self, args) -> None:
        self.ok()

    def do_quit(self, args) -> bool:
        if self.authed and self.deleted:
            srv = self.srv
            with srv._lock:  # the UPDATE state: the messages go, the others are renumbered
                srv.deleted.extend(srv.uidl_of(n) for n in sorted(self.deleted))
                keep = [i for i in range(len(srv.messages)) if i + 1 not in self.deleted]
                srv.messages = [srv.messages[i] for i in keep]
                srv.uidls = [srv.uidls[i] for i in keep]
        self.ok(b"bye")
        return True
