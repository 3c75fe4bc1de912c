"""A real Cyrus IMAP 3.6 (IMAP + JMAP over HTTP) for tests, rootless on loopback (DESIGN §3b).

`make cyrus` unpacks Cyrus into $TUIMAIL_CYRUS_ROOT (default /opt/tuimail-cyrus) and installs its
libraries and sasl2-bin. One `CyrusServer` per test session (~0.2 s to start); each test gets a
fresh `CyrusUser` (a sasldb entry plus the one IMAP login that creates the account: JMAP before it
answers `accountNotFound`).

    sink = SmtpSink().start()             # EmailSubmission relays to it (smtp_host)
    server = CyrusServer(smtp_port=sink.port)
    user = server.add_user()
    user.append("INBOX", raw)             # IMAP APPEND
    user.session_url, user.password       # JMAP: Basic auth with name/password
    server.stop(); sink.stop()

`munge8bit: no`: raw 8-bit header bytes are stored as given (Cyrus's default replaces each with
"X"), as Dovecot does. idled runs beside imapd (DAEMON), so IMAP IDLE reports a change at once (without it imapd looks
every imapidlepoll = 60 s). When run as root, Cyrus runs as nobody:nogroup (setpriv) and its
directory is theirs; otherwise it runs as the current user. Cyrus logs only to syslog: a wrong
key fails silently, so the start waits for both ports to answer and reports the master's
stdout/stderr (its -L log) if they do not.
"""

from __future__ import annotations

import atexit
import itertools
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import imapclient
import pytest

from tests.support.dovecot import _REAPER, _toml_key, _toml_value, default_root

__all__ = ["CyrusNotInstalled", "CyrusError", "CyrusServer", "CyrusUser", "SmtpSink", "cyrus_root",
           "cyrus_sink", "cyrus", "cyrususer", "IMAP_SERVERS", "imap_user"]

START_TIMEOUT = 15.0
ROLES = ("Drafts", "Sent", "Trash", "Archive", "Junk")


class CyrusNotInstalled(RuntimeError):
    """Cyrus is not unpacked: the tests that need it fail (never skip) with how to install it."""


class CyrusError(RuntimeError):
    """Cyrus did not start or misbehaved (the message carries what its log says)."""


def cyrus_root() -> Path:
    root = Path(os.environ.get("TUIMAIL_CYRUS_ROOT") or "/opt/tuimail-cyrus")
    if not (root / "usr/lib/cyrus/bin/master").exists() or not shutil.which("saslpasswd2"):
        raise CyrusNotInstalled(
            f"Cyrus IMAP is not installed in {root} (or saslpasswd2 is missing): run `make cyrus` as root "
            "(apt-get download + dpkg -x, see DESIGN §3b), or set TUIMAIL_CYRUS_ROOT")
    return root


def _free_ports(n: int) -> list[int]:
    socks = []
    try:
        for _ in range(n):
            s = socket.socket()
            s.bind(("127.0.0.1", 0))
            socks.append(s)
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


# -- the SMTP sink EmailSubmission relays to ------------------------------------------------


@dataclass
class Relayed:
    mail_from: str
    rcpts: list[str]
    data: bytes


@dataclass
class SmtpSink:
    """aiosmtpd on a free loopback port recording every message (`messages`). A recipient whose
    local part starts with "refused" is refused (550 5.1.1), as a relay refuses an unknown user."""

    messages: list[Relayed] = field(default_factory=list)
    port: int = 0

    def start(self) -> SmtpSink:
        from aiosmtpd.controller import Controller

        sink = self

        class Handler:
            async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
                if address.lower().startswith("refused"):
                    return "550 5.1.1 no such user here"
                envelope.rcpt_tos.append(address)
                return "250 2.1.5 OK"

            async def handle_DATA(self, server, session, envelope):
                sink.messages.append(Relayed(envelope.mail_from, list(envelope.rcpt_tos),
                                             bytes(envelope.original_content or b"")))
                return "250 2.0.0 queued"

        self.port = _free_ports(1)[0]
        self._controller = Controller(Handler(), hostname="127.0.0.1", port=self.port)
        self._controller.start()
        return self

    def stop(self) -> None:
        controller = getattr(self, "_controller", None)
        if controller is not None:
            controller.stop()
            self._controller = None

    def wait(self, n: int, timeout: float = 10.0) -> list[Relayed]:
        deadline = time.monotonic() + timeout
        while len(self.messages) < n:
            if time.monotonic() > deadline:
                raise CyrusError(f"the SMTP sink got {len(self.messages)} messages, expected {n}")
            time.sleep(0.02)
        return self.messages


# -- users ----------------------------------------------------------------------------------


class CyrusUser:
    host = "127.0.0.1"

    def __init__(self, server: CyrusServer, name: str, password: str):
        self.server, self.name, self.password = server, name, password

    def __repr__(self) -> str:
        return f"CyrusUser({self.name!r}, imap_port={self.imap_port}, http_port={self.http_port})"

    @property
    def imap_port(self) -> int:
        return self.server.imap_port

    @property
    def http_port(self) -> int:
        return self.server.http_port

    @property
    def port(self) -> int:  # (MailUser's name for it: proxy_factory takes either user)
        return self.server.imap_port

    @property
    def address(self) -> str:
        return f"{self.name}@localhost"

    @property
    def session_url(self) -> str:
        return self.server.session_url

    def client(self, select: str | None = None, *, timeout: float = 30.0) -> imapclient.IMAPClient:
        """A new logged-in IMAPClient to Cyrus IMAP (plain, loopback); the caller closes it."""
        c = imapclient.IMAPClient(self.host, port=self.imap_port, ssl=False, timeout=timeout)
        try:
            c.login(self.name, self.password)
            if select is not None:
                c.select_folder(select)
        except BaseException:
            c.shutdown()
            raise
        return c

    def login(self) -> None:
        """One IMAP login: creates INBOX and the role folders (autocreate) on the first."""
        with self.client() as c:
            c.noop()

    def append(self, folder: str, raw: bytes, flags=(), msg_time=None) -> int:
        """IMAP APPEND; returns the new UID."""
        with self.client() as c:
            resp = c.append(folder, raw, flags=tuple(flags), msg_time=msg_time)
        text = resp.decode("ascii", "replace") if isinstance(resp, bytes) else str(resp)
        m = re.search(r"APPENDUID \d+ (\d+)", text)
        if not m:
            raise CyrusError(f"APPEND to {folder!r} gave no APPENDUID: {text!r}")
        return int(m.group(1))

    _LETTERS = {"S": b"\\Seen", "F": b"\\Flagged", "R": b"\\Answered", "T": b"\\Deleted", "D": b"\\Draft"}

    def deliver_many(self, folder: str, messages) -> int:
        """MailUser.deliver_many's shape on Cyrus (no Maildir to write into): `(raw, flags)` or
        `(raw, flags, internal_date)` tuples, flags as Maildir letters ("S", "F", "R", "T", "D") or
        IMAP flags, stored by IMAP MULTIAPPEND in order (so uids follow the input)."""
        from datetime import UTC, datetime
        items = []
        for item in messages:
            raw, flags = item[0], item[1]
            when = item[2] if len(item) > 2 else None
            if isinstance(flags, str) and not flags.startswith("\\"):
                flags = [self._LETTERS[c] for c in flags if c in self._LETTERS]
            elif isinstance(flags, (str, bytes)):
                flags = [flags]
            entry = {"msg": raw, "flags": tuple(f.encode() if isinstance(f, str) else f for f in flags)}
            if when is not None:
                entry["date"] = datetime.fromtimestamp(when, UTC)
            items.append(entry)
        with self.client(timeout=300) as c:
            if not c.folder_exists(folder):  # (Dovecot's deliver makes the folder on disk)
                c.create_folder(folder)
                c.subscribe_folder(folder)
            for start in range(0, len(items), 500):
                c.multiappend(folder, items[start:start + 500])
        return len(items)

    def deliver(self, folder: str, raw: bytes, flags="", internal_date: float | None = None) -> None:
        self.deliver_many(folder, [(raw, flags, internal_date)])

    def lock_out(self, folder: str, locked: bool = True) -> None:
        """Make SELECT of `folder` fail for this user (its read rights taken away by SETACL; Cyrus
        gives the owner l, k, x, a, n implicitly, so the folder is still listed), or give them back."""
        with self.client() as c:
            c.setacl(folder, self.name, "lkxan" if locked else "lrswipkxtecdan")

    def create_folder(self, folder: str, subscribe: bool = True) -> None:
        """IMAP CREATE (and SUBSCRIBE); a role folder (Drafts, Sent, Trash, Archive, Junk) is there
        already, made at the first login (autocreate_inbox_folders), as tests written for Dovecot
        create it."""
        with self.client() as c:
            if folder not in ROLES:
                c.create_folder(folder)
            if subscribe:
                c.subscribe_folder(folder)

    def config_toml(self, name: str = "test", **overrides) -> str:
        """A tuimail config with one IMAP account at this Cyrus user; overrides replace or add keys
        (the same shape as MailUser.config_toml, so IMAP tests can run against either server)."""
        values = {"kind": "imap", "host": self.host, "port": self.imap_port, "security": "none",
                  "username": self.name, "password": self.password}
        values.update(overrides)
        lines = [f"[accounts.{_toml_key(name)}]"]
        lines += [f"{_toml_key(k)} = {_toml_value(v)}" for k, v in values.items() if v is not None]
        return "\n".join(lines) + "\n"

    @property
    def telemetry_dir(self) -> Path:
        return self.server.dir / "conf" / "log" / self.name

    def telemetry(self, protocol: str = "http") -> bytes:
        """What Cyrus recorded of this user's `protocol` ("http", "imap") sessions (add_user(telemetry=True))."""
        files = sorted(self.telemetry_dir.glob(f"{protocol}-*"), key=lambda p: p.stat().st_mtime)
        return b"".join(p.read_bytes() for p in files)

    def squat(self) -> None:
        """Index the account with squatter (text filters answer serverFail until it has run)."""
        self.server.run_tool("squatter", "-u", self.name)


# -- the server -----------------------------------------------------------------------------


class CyrusServer:
    """A private Cyrus (imapd + httpd with JMAP) on free loopback ports in its own temp dir."""

    _live: set[CyrusServer] = set()

    def __init__(self, *, smtp_port: int | None = None, root: str | None = None, extra_config: str = "",
                 start: bool = True):
        self.install = cyrus_root()
        self.smtp_port = smtp_port
        self.root = root or default_root()
        self.extra_config = extra_config
        self.dir: Path | None = None
        self.proc: subprocess.Popen | None = None
        self.imap_port = self.http_port = 0
        self.start_seconds = 0.0
        self._users = itertools.count(1)
        self.is_root = os.geteuid() == 0
        if self.is_root:
            import grp
            import pwd
            self.ids = (pwd.getpwnam("nobody").pw_uid, grp.getgrnam("nogroup").gr_gid)
            self._as = ["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups"]
        else:
            self.ids = (os.getuid(), os.getgid())
            self._as = []
        if start:
            self.start()

    # -- paths ----------------------------------------------------------------------------

    @property
    def bin_dir(self) -> Path:
        return self.install / "usr/lib/cyrus/bin"

    @property
    def conf_path(self) -> Path:
        return self.dir / "imapd.conf"

    @property
    def sasldb(self) -> Path:
        return self.dir / "conf" / "sasldb2"

    @property
    def session_url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}/jmap/"

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    def _env(self) -> dict[str, str]:
        env = dict(os.environ)
        env.update(CYRUS_USER="nobody" if self.is_root else "", CYRUS_GROUP="nogroup" if self.is_root else "",
                   LD_LIBRARY_PATH=str(self.install / "usr/lib/x86_64-linux-gnu"))
        if not self.is_root:
            env.pop("CYRUS_USER")
            env.pop("CYRUS_GROUP")
        return env

    # -- config ---------------------------------------------------------------------------

    def _imapd_conf(self) -> str:
        d = self.dir
        roles = "\n".join(f"xlist-{r.lower()}: {r}" for r in ROLES)
        smtp = f"smtp_backend: host\nsmtp_host: 127.0.0.1:{self.smtp_port}\n" if self.smtp_port else ""
        return f"""\
# generated by tests/support/cyrus.py — a private test instance
configdirectory: {d}/conf
partition-default: {d}/spool
mboxname_lockpath: {d}/lock
proc_path: {d}/proc
temp_path: {d}/tmp
servername: localhost
allowplaintext: yes
sasl_pwcheck_method: auxprop
sasl_auxprop_plugin: sasldb
sasl_sasldb_path: {self.sasldb}
sasl_mech_list: PLAIN LOGIN
unixhierarchysep: yes
altnamespace: yes
conversations: yes
conversations_db: twoskip
autocreate_post: yes
autocreate_quota: 0
autocreate_inbox_folders: {" | ".join(ROLES)}
{roles}
munge8bit: no
httpmodules: jmap
httpallowcompress: no
jmap_pushpoll: 1s
search_engine: xapian
defaultsearchtier: t1
t1searchpartition-default: {d}/search
idlesocket: {d}/conf/socket/idle
{smtp}{self.extra_config}
"""

    def _cyrus_conf(self) -> str:
        b, c = self.bin_dir, self.conf_path
        return f"""\
START {{
  recover cmd="{b}/ctl_cyrusdb -C {c} -r"
}}
SERVICES {{
  imap cmd="{b}/imapd -C {c}" listen="127.0.0.1:{self.imap_port}" prefork=0
  http cmd="{b}/httpd -C {c}" listen="127.0.0.1:{self.http_port}" prefork=0
}}
EVENTS {{
}}
DAEMON {{
  idled cmd="{b}/idled -C {c}"
}}
"""

    # -- lifecycle ------------------------------------------------------------------------

    def start(self) -> CyrusServer:
        t0 = time.monotonic()
        self.dir = Path(tempfile.mkdtemp(prefix="tuimail-cyrus-", dir=self.root))
        for sub in ("conf", "conf/socket", "conf/log", "spool", "lock", "proc", "search", "tmp", "run"):
            (self.dir / sub).mkdir(parents=True, exist_ok=True)
        CyrusServer._live.add(self)
        last: Exception | None = None
        for _attempt in range(5):
            self.imap_port, self.http_port = _free_ports(2)
            self.conf_path.write_text(self._imapd_conf())
            (self.dir / "cyrus.conf").write_text(self._cyrus_conf())
            self._chown_tree()
            try:
                self._spawn()
                break
            except CyrusError as e:
                last = e
                self._kill()
                if "did not answer" not in str(e):
                    self.stop()
                    raise
        else:
            self.stop()
            assert last is not None
            raise last
        self.start_seconds = time.monotonic() - t0
        return self

    def _chown_tree(self) -> None:
        os.chmod(self.dir, 0o755)
        if not self.is_root:
            return
        for path, _dirs, files in os.walk(self.dir):
            os.chown(path, *self.ids)
            for name in files:
                os.chown(os.path.join(path, name), *self.ids)

    def _spawn(self) -> None:
        d = self.dir
        # The master runs under dovecot.py's reaper (this Python's child, the group leader): it
        # forwards SIGTERM, reaps what the master leaves, and stops Cyrus when its parent changes,
        # i.e. when pytest is killed (kill -9, a CI timeout) without reaching stop() or atexit.
        argv = [*self._as, str(self.bin_dir / "master"), "-C", str(self.conf_path), "-M", str(d / "cyrus.conf"),
                "-p", str(d / "run" / "master.pid"), "-L", str(d / "master.log")]
        argv[0] = shutil.which(argv[0]) or argv[0]  # the reaper execv()s: a full path
        cmd = [sys.executable, "-c", _REAPER, *argv]
        self.proc = subprocess.Popen(cmd, env=self._env(), stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL, cwd=d, start_new_session=True, close_fds=True)
        deadline = time.monotonic() + START_TIMEOUT
        pending = [(self.imap_port, b"* OK"), (self.http_port, None)]
        while pending:
            if self.proc.poll() is not None:
                raise CyrusError(f"cyrus master exited with status {self.proc.returncode}\n{self.log_tail()}")
            if time.monotonic() > deadline:
                raise CyrusError(f"cyrus did not answer on ports {[p for p, _ in pending]} within "
                                 f"{START_TIMEOUT:.0f} s\n{self.log_tail()}")
            port, greeting = pending[0]
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=2) as s:
                    if greeting is not None:
                        s.settimeout(5)
                        data = s.recv(200)
                        if not data.startswith(greeting):
                            raise CyrusError(f"unexpected greeting on port {port}: {data!r}\n{self.log_tail()}")
                pending.pop(0)
            except OSError:
                time.sleep(0.02)

    def log_tail(self, lines: int = 30) -> str:
        p = self.dir / "master.log" if self.dir else None
        if p and p.exists():
            text = p.read_text(errors="replace").splitlines()[-lines:]
            if text:
                return f"--- {p} ---\n" + "\n".join(text)
        return "(Cyrus logs to syslog only; nothing on its stdout/stderr)"

    def _kill(self) -> None:
        proc, self.proc = self.proc, None
        if proc is None:
            return
        if proc.poll() is None:
            proc.terminate()  # the reaper forwards it: the master kills its children and itself
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                pass
        try:
            os.killpg(proc.pid, signal.SIGKILL)  # whatever is left in its session
        except (ProcessLookupError, PermissionError):
            pass
        if proc.poll() is None:
            proc.wait(timeout=5)

    def stop(self) -> None:
        self._kill()
        CyrusServer._live.discard(self)
        if self.dir is not None and os.environ.get("TUIMAIL_KEEP_CYRUS") != "1":
            shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self) -> CyrusServer:
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def run_tool(self, tool: str, *args: str, timeout: float = 60.0) -> str:
        """Run one of Cyrus's command-line tools (as the server's user) on this instance."""
        out = subprocess.run([*self._as, str(self.bin_dir / tool), "-C", str(self.conf_path), *args],
                             env=self._env(), stdin=subprocess.DEVNULL, capture_output=True, timeout=timeout,
                             cwd=self.dir)
        if out.returncode != 0:
            raise CyrusError(f"{tool} {' '.join(args)} failed ({out.returncode}): "
                             f"{(out.stderr or out.stdout).decode(errors='replace').strip()}")
        return out.stdout.decode(errors="replace")

    # -- users ----------------------------------------------------------------------------

    def add_user(self, name: str | None = None, password: str = "secret", *, login: bool = True,
                 telemetry: bool = False) -> CyrusUser:
        """A sasldb entry, then the one IMAP login that creates the account and its folders
        (login=False leaves the account uncreated: JMAP answers accountNotFound until `user.login()`).
        telemetry=True makes Cyrus record this user's sessions as the server saw them
        (`user.telemetry("http")`): Cyrus has no log of its own but syslog."""
        if name is None:
            name = f"u{os.getpid()}x{next(self._users)}"
        if not re.fullmatch(r"[a-z0-9][a-z0-9._-]*", name):
            raise ValueError(f"user name {name!r}: use lower-case letters, digits and . _ -")
        out = subprocess.run([*self._as, "saslpasswd2", "-p", "-f", str(self.sasldb), "-c", "-u", "localhost", name],
                             input=password.encode(), capture_output=True, timeout=30)
        if out.returncode != 0:
            raise CyrusError(f"saslpasswd2 failed for {name}: {out.stderr.decode(errors='replace').strip()}")
        user = CyrusUser(self, name, password)
        if telemetry:
            user.telemetry_dir.mkdir()
            os.chown(user.telemetry_dir, *self.ids)
        if login:
            user.login()
        return user


@atexit.register
def _stop_leftovers() -> None:
    for server in list(CyrusServer._live):
        server.stop()


# -- pytest fixtures (imported by tests/conftest.py) ---------------------------------------------

IMAP_SERVERS = ("dovecot", "cyrus")


def imap_user(request):
    """For a module's `mailuser` fixture parametrized over IMAP_SERVERS: the scenario runs against
    Dovecot (MailUser) and Cyrus IMAP (CyrusUser, the same shape), a second implementation:

        @pytest.fixture(params=IMAP_SERVERS)
        def mailuser(request):
            return imap_user(request)
    """
    return request.getfixturevalue("cyrususer" if request.param == "cyrus" else "mailuser")



@pytest.fixture(scope="session")
def cyrus_sink():
    sink = SmtpSink().start()
    yield sink
    sink.stop()


@pytest.fixture(scope="session")
def cyrus(cyrus_sink):
    try:
        server = CyrusServer(smtp_port=cyrus_sink.port)
    except CyrusNotInstalled as e:
        pytest.fail(str(e), pytrace=False)
    except CyrusError as e:
        pytest.fail(f"could not start Cyrus: {e}", pytrace=False)
    yield server
    server.stop()


@pytest.fixture
def cyrususer(cyrus) -> CyrusUser:
    if not cyrus.running:
        pytest.fail(f"the session's Cyrus has died\n{cyrus.log_tail()}", pytrace=False)
    return cyrus.add_user()
