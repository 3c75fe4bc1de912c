"""Small SMTP servers for the sending tests, in-process on free loopback ports.

- ``ScriptedSMTP``: a threaded server written here for fault injection: the EHLO keywords, the
  AUTH mechanisms, STARTTLS and implicit TLS are chosen per test, and any command's answer can be
  scripted ahead ("451 ..." once, then the normal answer; "CLOSE" drops the connection; "SLEEP s"
  stalls). It checks credentials (PLAIN, LOGIN, XOAUTH2) and records every accepted message.
- ``make_cert(dir)``: a self-signed certificate for localhost/127.0.0.1 (openssl).

The real servers (aiosmtpd, Dovecot's submission) are in tests/integration/test_smtp_*.py.
"""

from __future__ import annotations

import base64
import shutil
import socket
import ssl
import subprocess
import threading
import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def make_cert(directory: Path, name: str = "localhost") -> tuple[Path, Path]:
    """(cert.pem, key.pem): self-signed for `name`, localhost and 127.0.0.1."""
    openssl = shutil.which("openssl")
    if not openssl:
        raise RuntimeError("the openssl binary is needed to make a self-signed certificate")
    cert, key = directory / f"{name}-cert.pem", directory / f"{name}-key.pem"
    subprocess.run(
        [openssl, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", f"/CN={name}",
         "-addext", f"subjectAltName=DNS:{name},DNS:localhost,IP:127.0.0.1", "-keyout", str(key), "-out", str(cert)],
        check=True, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    return cert, key


@dataclass
class Received:
    mail_from: str
    rcpts: list[str]
    data: bytes  # as received, dot-unstuffed, CRLF line ends
    mail_options: list[str] = field(default_factory=list)
    auth_user: str | None = None
    tls: bool = False


class ScriptedSMTP:
    def __init__(self, *, keywords: tuple[str, ...] = ("8BITMIME", "SIZE 10000000", "PIPELINING"),
                 auth: tuple[str, ...] = ("PLAIN", "LOGIN"), starttls: bool = False, implicit_tls: bool = False,
                 cert: tuple[Path, Path] | None = None, smtputf8: bool = False,
                 users: dict[str, str] | None = None, tokens: dict[str, str] | None = None,
                 greeting: str = "220 scripted ESMTP ready"):
        self.keywords = list(keywords)
        self.auth = auth
        self.starttls = starttls
        self.implicit_tls = implicit_tls
        self.smtputf8 = smtputf8
        self.users = users if users is not None else {"alice": "secret"}
        self.tokens = tokens if tokens is not None else {"alice": "token-1"}
        self.greeting = greeting
        self.script: dict[str, list[str]] = defaultdict(list)  # "MAIL" | "RCPT" | "DATA" | "EOM" | ... -> answers
        self.rcpt_answers: dict[str, str] = {}  # address (lower) -> answer, every time
        self.messages: list[Received] = []
        self.transcripts: list[list[str]] = []  # the command lines of each session
        self.ctx: ssl.SSLContext | None = None
        if starttls or implicit_tls:
            assert cert is not None, "TLS needs cert=(cert.pem, key.pem)"
            self.ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            self.ctx.load_cert_chain(*cert)
        self.port = 0
        self._sock: socket.socket | None = None
        self._threads: list[threading.Thread] = []
        self._conns: list[socket.socket] = []
        self._stop = threading.Event()

    def answer(self, command: str, *answers: str) -> None:
        """Script the next answers to `command` (upper case verb, or "EOM" for the final ".")."""
        self.script[command.upper()].extend(answers)

    # -- lifecycle ---------------------------------------------------------------------

    def start(self) -> ScriptedSMTP:
        self._sock = socket.socket()
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._sock.bind(("127.0.0.1", 0))
        self._sock.listen(8)
        self._sock.settimeout(0.2)
        self.port = self._sock.getsockname()[1]
        t = threading.Thread(target=self._accept, daemon=True)
        t.start()
        self._threads.append(t)
        return self

    def stop(self) -> None:
        self._stop.set()
        for c in list(self._conns):
            try:
                c.close()
            except OSError:
                pass
        for t in self._threads:
            t.join(5)
        if self._sock is not None:
            self._sock.close()

    def __enter__(self) -> ScriptedSMTP:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def _accept(self) -> None:
        assert self._sock is not None
        while not self._stop.is_set():
            try:
                conn, _ = self._sock.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            self._conns.append(conn)
            t = threading.Thread(target=self._serve_safely, args=(conn,), daemon=True)
            t.start()
            self._threads.append(t)

    def _serve_safely(self, conn: socket.socket) -> None:
        try:
            self._serve(conn)
        except (OSError, ssl.SSLError, ValueError):
            pass
        finally:
            try:
                conn.close()
            except OSError:
                pass

    # -- one session -------------------------------------------------------------------

    def _serve(self, conn: socket.socket) -> None:
        conn.settimeout(30)
        tls = False
        if self.implicit_tls:
            assert self.ctx is not None
            conn = self.ctx.wrap_socket(conn, server_side=True)
            self._conns.append(conn)
            tls = True
        f = conn.makefile("rb")
        transcript: list[str] = []
        self.transcripts.append(transcript)

        def send(line: str) -> bool:
            """False: the script said CLOSE."""
            if line == "CLOSE":
                conn.close()
                return False
            if line.startswith("SLEEP "):
                time.sleep(float(line.split()[1]))
                return True
            conn.sendall(line.encode("utf-8") + b"\r\n")
            return True

        def scripted(verb: str, normal: str) -> str:
            queue = self.script.get(verb)
            return queue.pop(0) if queue else normal

        def readline() -> str:
            line = f.readline(4096)
            if not line:
                raise EOFError
            return line.decode("utf-8", "replace").rstrip("\r\n")

        if not send(scripted("GREETING", self.greeting)):
            return
        mail_from: str | None = None
        options: list[str] = []
        rcpts: list[str] = []
        user: str | None = None
        while True:
            try:
                line = readline()
            except EOFError:
                return
            verb, _, arg = line.partition(" ")
            verb = verb.upper()
            # verbs upper-cased (smtplib writes "ehlo", "mail FROM:"), AUTH without its credentials
            transcript.append(f"{verb} {arg}".rstrip() if verb != "AUTH" else f"AUTH {arg.split(' ')[0].upper()}")
            if verb in ("EHLO", "HELO"):
                kws = list(self.keywords)
                if self.starttls and not tls:
                    kws.append("STARTTLS")
                if self.auth:
                    kws.append("AUTH " + " ".join(self.auth))
                if self.smtputf8:
                    kws.append("SMTPUTF8")
                answer = scripted(verb, "")
                if answer:
                    if not send(answer):
                        return
                    continue
                lines = ["scripted.test greets you", *kws]
                for i, kw in enumerate(lines):
                    send(f"250{'-' if i < len(lines) - 1 else ' '}{kw}")
                mail_from, rcpts = None, []
            elif verb == "STARTTLS" and self.starttls and not tls:
                if not send(scripted(verb, "220 2.0.0 go ahead")):
                    return
                assert self.ctx is not None
                conn = self.ctx.wrap_socket(conn, server_side=True)
                self._conns.append(conn)
                f = conn.makefile("rb")
                tls = True
            elif verb == "AUTH":
                user = self._auth(arg, send, readline, scripted)
                if user is False:  # type: ignore[comparison-overlap]
                    return
            elif verb == "MAIL":
                addr, _, rest = arg.partition(">")
                mail_from = addr.split("<", 1)[-1]
                options = rest.split()
                if any(o.upper() == "SMTPUTF8" for o in options) and not self.smtputf8:
                    send("555 5.5.4 SMTPUTF8 not offered")
                    mail_from = None
                    continue
                if not mail_from.isascii() and not any(o.upper() == "SMTPUTF8" for o in options):
                    send("553 5.6.7 non-ASCII address without SMTPUTF8")
                    mail_from = None
                    continue
                rcpts = []
                answer = scripted(verb, "250 2.1.0 ok")
                if not answer.startswith("2"):
                    mail_from = None
                if not send(answer):
                    return
            elif verb == "RCPT":
                addr = arg.partition("<")[2].partition(">")[0]
                if mail_from is None:
                    send("503 5.5.1 MAIL first")
                    continue
                answer = self.rcpt_answers.get(addr.lower()) or scripted(verb, "250 2.1.5 ok")
                if answer.startswith("2"):
                    rcpts.append(addr)
                if not send(answer):
                    return
            elif verb == "DATA":
                if mail_from is None or not rcpts:
                    send("503 5.5.1 no valid recipients")
                    continue
                answer = scripted(verb, "354 go ahead")
                if not send(answer):
                    return
                if not answer.startswith("3"):
                    continue
                chunks = []
                while True:
                    raw = f.readline(100000)
                    if not raw:
                        return
                    if raw == b".\r\n":
                        break
                    chunks.append(raw[1:] if raw.startswith(b".") else raw)
                answer = scripted("EOM", "250 2.0.0 queued as 12345")
                if answer.startswith("2"):
                    self.messages.append(Received(mail_from, list(rcpts), b"".join(chunks), options, user, tls))
                mail_from, rcpts = None, []
                if not send(answer):
                    return
            elif verb == "RSET":
                mail_from, rcpts = None, []
                send("250 2.0.0 ok")
            elif verb == "NOOP":
                send("250 2.0.0 ok")
            elif verb == "QUIT":
                send("221 2.0.0 bye")
                return
            else:
                send("502 5.5.2 unknown command")

    def _auth(self, arg: str, send, readline, scripted):
        mech, _, initial = arg.partition(" ")
        mech = mech.upper()
        if mech not in self.auth:
            send("504 5.5.4 mechanism not offered")
            return None
        answer = scripted("AUTH", "")
        if answer:
            return None if send(answer) else False
        if mech == "PLAIN":
            if not initial:
                send("334 ")
                initial = readline()
            _z, user, password = base64.b64decode(initial).decode("utf-8").split("\0")
            ok = self.users.get(user) == password
        elif mech == "LOGIN":
            if not initial:
                send("334 VXNlcm5hbWU6")
                initial = readline()
            user = base64.b64decode(initial).decode("utf-8")
            send("334 UGFzc3dvcmQ6")
            ok = self.users.get(user) == base64.b64decode(readline()).decode("utf-8")
        else:  # XOAUTH2
            fields = base64.b64decode(initial).decode("utf-8").split("\x01")
            user = fields[0].removeprefix("user=")
            token = fields[1].removeprefix("auth=Bearer ")
            ok = self.tokens.get(user) == token
            if not ok:
                send("334 " + base64.b64encode(b'{"status":"401","schemes":"bearer"}').decode())
                readline()  # the client's empty line
        if ok:
            send("235 2.7.0 authenticated")
            return user
        send("535 5.7.8 authentication failed")
        return None
