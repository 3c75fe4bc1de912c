"""A real Dovecot for tests, started rootless-style (DESIGN.md §3 "Dovecot rootless").

One `DovecotServer` per test session (~0.1 s to start); each test gets a fresh `MailUser`
(a passwd-file of its own, read at its first login), so mailboxes are isolated without
restarting the server.

    server = DovecotServer()   # or DovecotServer(tls=True), DovecotServer(capabilities="IMAP4rev1 IDLE")
    user = server.add_user()
    user.deliver_many("INBOX", ((raw, "S") for raw in messages))
    with user.client(select="INBOX") as c: ...
    server.stop()

Everything lives in a `mkdtemp` under /dev/shm or /var/tmp (see `default_root`), chmod 0755 so
the mail user can reach it: pytest's tmp_path sits under a root-only 0700 directory. base_dir,
state_dir and the log are in there too, so nothing touches /run/dovecot or a system Dovecot.
The daemon's output goes to a file, never a pipe.
"""

from __future__ import annotations

import atexit
import errno
import itertools
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterable
from pathlib import Path

import imapclient

from tests.support.maildir import flag_letters, folder_dirname, unique_name

__all__ = ["DovecotNotInstalled", "DovecotError", "DovecotServer", "MailUser", "dovecot_binary",
           "SUBMISSION_BINARY", "submission_installed"]

MODULE_DIR = Path("/usr/lib/dovecot/modules")
SPECIAL_USE = {"Drafts": "\\Drafts", "Sent": "\\Sent", "Archive": "\\Archive", "Junk": "\\Junk", "Trash": "\\Trash"}
START_TIMEOUT = 10.0
SUBMISSION_BINARY = Path("/usr/lib/dovecot/submission")  # the dovecot-submissiond package


def submission_installed() -> bool:
    return SUBMISSION_BINARY.exists()


# Dovecot runs under this tiny reaper, which is the process-group leader. It makes itself a child
# subreaper, so Dovecot's children (its log process outlives the master) are reaped here instead
# of lingering as zombies of pid 1, forwards SIGTERM to the master, and stops Dovecot if the test
# run dies without cleaning up (its parent changes).
_REAPER = r"""
import ctypes, os, signal, sys
parent = os.getppid()
try:
    ctypes.CDLL(None, use_errno=True).prctl(36, 1, 0, 0, 0)  # PR_SET_CHILD_SUBREAPER
except Exception:
    pass
master = 0
def forward(signum, frame):
    if master:
        try:
            os.kill(master, signal.SIGTERM)
        except ProcessLookupError:
            pass
signal.signal(signal.SIGTERM, forward)
master = os.fork()
if master == 0:
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    os.execv(sys.argv[1], sys.argv[1:])
signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGCHLD})
code, orphaned = 0, False
while True:
    try:
        while True:
            pid, status = os.waitpid(-1, os.WNOHANG)
            if pid == 0:
                break
            if pid == master:
                code = os.waitstatus_to_exitcode(status)
    except ChildProcessError:
        sys.exit(code)
    if not orphaned and os.getppid() != parent:
        orphaned = True
        forward(signal.SIGTERM, None)
    signal.sigtimedwait({signal.SIGCHLD}, 0.5)
"""


def _kill(pid: int, sig: int) -> None:
    try:
        os.kill(pid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def _group_members(pgid: int) -> list[int]:
    """Pids in process group `pgid` (Linux /proc; elsewhere: just the leader)."""
    members = []
    try:
        entries = os.listdir("/proc")
    except OSError:
        return [pgid]
    for entry in entries:
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as f:
                stat = f.read()
        except OSError:
            continue
        fields = stat[stat.rindex(b")") + 2:].split()  # after "pid (comm) ": state ppid pgrp ...
        if len(fields) > 2 and int(fields[2]) == pgid:
            members.append(int(entry))
    return members


def _killpg(pgid: int, sig: int) -> None:
    try:
        os.killpg(pgid, sig)
    except (ProcessLookupError, PermissionError):
        pass


class DovecotNotInstalled(RuntimeError):
    """The dovecot binary is missing. Integration tests must fail (not skip) on this."""


class DovecotError(RuntimeError):
    """Dovecot did not start (the message carries the tail of its log) or misbehaved."""


def dovecot_binary() -> str:
    """$TUIMAIL_DOVECOT, else `dovecot` on PATH, else /usr/sbin/dovecot."""
    path = os.environ.get("TUIMAIL_DOVECOT") or shutil.which("dovecot") or "/usr/sbin/dovecot"
    if not os.access(path, os.X_OK):
        raise DovecotNotInstalled(
            f"dovecot is not installed ({path} not found): integration tests need a real Dovecot "
            "(`make dovecot`, or apt-get install dovecot-imapd dovecot-pop3d)"
        )
    return path


def default_root() -> str:
    """Where server dirs go: $TUIMAIL_TEST_TMPDIR, else /dev/shm if it is a roomy tmpfs, else /var/tmp.

    On a busy ext4 disk, creating 10,000 message files took 0.5-8 s (journal contention with
    whatever else runs); on tmpfs it takes ~0.1 s. Docker's default 64 MB /dev/shm is skipped.
    """
    env = os.environ.get("TUIMAIL_TEST_TMPDIR")
    if env:
        return env
    try:
        st = os.statvfs("/dev/shm")
        if os.access("/dev/shm", os.W_OK | os.X_OK) and st.f_bavail * st.f_frsize >= 2 << 30:
            return "/dev/shm"
    except OSError:
        pass
    return "/var/tmp"


def _free_ports(n: int) -> list[int]:
    """n distinct free loopback ports (all held open at once so they differ)."""
    socks = []
    try:
        for _ in range(n):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.bind(("127.0.0.1", 0))
            socks.append(s)
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def _toml_value(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, (str, Path)):
        return json.dumps(str(value), ensure_ascii=False)  # a JSON string is a valid TOML basic string
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{_toml_key(k)} = {_toml_value(v)}" for k, v in value.items()) + " }"
    raise TypeError(f"cannot render {value!r} as TOML")


def _toml_key(key: str) -> str:
    return key if re.fullmatch(r"[A-Za-z0-9_-]+", key) else json.dumps(key)


class MailUser:
    """One Dovecot account with its own Maildir. Made by `DovecotServer.add_user`."""

    host = "127.0.0.1"

    def __init__(self, server: DovecotServer, name: str, password: str):
        self.server = server
        self.name = name
        self.password = password
        self.home = server.home_root / name
        self.maildir = self.home / "Maildir"

    def __repr__(self) -> str:
        return f"MailUser({self.name!r}, imap_port={self.imap_port})"

    @property
    def imap_port(self) -> int:
        return self.server.imap_port

    @property
    def pop3_port(self) -> int:
        return self.server.pop3_port

    @property
    def imaps_port(self) -> int | None:
        return self.server.imaps_port

    @property
    def pop3s_port(self) -> int | None:
        return self.server.pop3s_port

    # -- IMAP clients --------------------------------------------------------------------

    def client(self, select: str | None = None, *, timeout: float = 30.0) -> imapclient.IMAPClient:
        """A new logged-in IMAPClient (plain, loopback). The caller closes it (or uses `with`)."""
        c = imapclient.IMAPClient(self.host, port=self.imap_port, ssl=False, timeout=timeout)
        try:
            c.login(self.name, self.password)
            if select is not None:
                c.select_folder(select)
        except BaseException:
            c.shutdown()
            raise
        return c

    def append(self, folder: str, raw: bytes, flags: Iterable[str] = (), msg_time=None) -> int:
        """IMAP APPEND (a message arriving "live"); returns its UID from APPENDUID."""
        with self.client() as c:
            resp = c.append(folder, raw, flags=tuple(flags), msg_time=msg_time)
        text = resp.decode("ascii", "replace") if isinstance(resp, bytes) else str(resp)
        m = re.search(r"APPENDUID \d+ (\d+)", text)
        if not m:
            raise DovecotError(f"APPEND to {folder!r} gave no APPENDUID: {text!r}")
        return int(m.group(1))

    def create_folder(self, folder: str, subscribe: bool = True) -> None:
        """IMAP CREATE (and SUBSCRIBE). A folder made by `deliver` on disk is listed by new
        sessions only: Dovecot's mailbox list index does not notice it in a live session."""
        with self.client() as c:
            c.create_folder(folder)
            if subscribe:
                c.subscribe_folder(folder)

    # -- writing straight into the Maildir ---------------------------------------------

    def folder_path(self, folder: str) -> Path:
        """The Maildir directory of `folder`, created (cur/new/tmp, maildirfolder) if needed."""
        sub = folder_dirname(folder, self.server.separator)
        path = self.maildir / sub if sub else self.maildir
        if not (path / "cur").is_dir():
            uid, gid = self.server.mail_ids
            for d in (self.home, self.maildir, path, path / "cur", path / "new", path / "tmp"):
                if not d.is_dir():
                    d.mkdir(mode=0o700, exist_ok=True)
                    os.chown(d, uid, gid)
            if sub:
                marker = path / "maildirfolder"
                marker.touch()
                os.chown(marker, uid, gid)
        return path

    def deliver(self, folder: str, raw: bytes, flags: str | Iterable[str] = "",
                internal_date: float | None = None) -> None:
        """Write one message file into `folder`'s cur/ (INBOX is the Maildir root).

        `flags`: Maildir letters ("S" seen, "F" flagged, "R" answered, "T" deleted, "D" draft)
        or IMAP system flags. `internal_date` (epoch seconds) becomes the file mtime, which
        Dovecot reports as INTERNALDATE.
        """
        self.deliver_many(folder, [(raw, flags, internal_date)])

    def deliver_many(self, folder: str, messages: Iterable[tuple]) -> int:
        """Deliver many `(raw, flags)` or `(raw, flags, internal_date)` tuples; returns the count.

        One open/write/fchown/close per file: 10,000 messages take well under a second.
        """
        cur = str(self.folder_path(folder) / "cur") + "/"
        uid, gid = self.server.mail_ids
        chown = self.server.needs_chown
        now = time.time()
        flags_cache: dict = {}
        n = 0
        o_flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0)
        for item in messages:
            raw, flags = item[0], item[1]
            when = item[2] if len(item) > 2 else None
            if isinstance(raw, str):
                raw = raw.encode("utf-8")
            key = flags if isinstance(flags, str) else tuple(flags)
            letters = flags_cache.get(key)
            if letters is None:
                letters = flags_cache[key] = flag_letters(flags)
            fd = os.open(cur + unique_name(raw, letters, now if when is None else when), o_flags, 0o600)
            try:
                os.write(fd, raw)
                if chown:
                    os.fchown(fd, uid, gid)
                if when is not None:
                    os.utime(fd, (when, when))
            finally:
                os.close(fd)
            n += 1
        return n

    # -- measuring and config ---------------------------------------------------------

    def session_bytes(self, protocol: str = "imap") -> list[tuple[int, int]]:
        return self.server.session_bytes(self, protocol)

    def wait_sessions(self, n: int, timeout: float = 2.0, protocol: str = "imap") -> list[tuple[int, int]]:
        return self.server.wait_sessions(self, n, timeout, protocol)

    def config_toml(self, name: str = "test", **overrides) -> str:
        """A tuimail config with one IMAP account for this user; overrides replace or add keys."""
        values = {
            "kind": "imap",
            "host": self.host,
            "port": self.imap_port,
            "security": "none",
            "username": self.name,
            "password": self.password,
        }
        values.update(overrides)
        lines = [f"[accounts.{_toml_key(name)}]"]
        lines += [f"{_toml_key(k)} = {_toml_value(v)}" for k, v in values.items() if v is not None]
        return "\n".join(lines) + "\n"


class DovecotServer:
    """A private Dovecot (imap + pop3 on free loopback ports) in its own temp dir.

    tls=True adds imaps/pop3s listeners with a self-signed cert (`cert_path`) and STARTTLS.
    capabilities="IMAP4rev1 ..." replaces the advertised IMAP capability list (imap_capability).
    submission_relay=port adds Dovecot's submission service (dovecot-submissiond) relaying to an
    SMTP server on 127.0.0.1:port (an aiosmtpd sink, DESIGN §3b): `submission_port` (587-style,
    STARTTLS when tls=True) and, with tls=True, `submissions_port` (465-style, implicit TLS).
    """

    _live: set[DovecotServer] = set()

    def __init__(self, *, tls: bool = False, capabilities: str | None = None, separator: str = ".",
                 idle_notify_interval: str = "1 secs", extra_config: str = "", root: str | None = None,
                 start: bool = True, submission_relay: int | None = None):
        self.tls = tls
        self.submission_relay = submission_relay
        self.submission_port = 0
        self.submissions_port: int | None = None
        self.capabilities = capabilities
        self.separator = separator
        self.idle_notify_interval = idle_notify_interval
        self.extra_config = extra_config
        self.root = root or default_root()
        self.binary = dovecot_binary()
        self.dir: Path | None = None
        self.proc: subprocess.Popen | None = None
        self.imap_port = self.pop3_port = 0
        self.imaps_port: int | None = None
        self.pop3s_port: int | None = None
        self.cert_path: Path | None = None
        self.start_seconds = 0.0
        self._users = itertools.count(1)
        self._log_offset = 0
        self._sessions: dict[tuple[str, str], list[tuple[int, int]]] = {}
        self._partial = b""
        self._log_lock = threading.Lock()
        self.is_root = os.geteuid() == 0
        if self.is_root:
            import pwd
            pw = pwd.getpwnam("dovecot")
            self.mail_ids = (pw.pw_uid, pw.pw_gid)
            self.internal_user = "dovecot"
            self.login_user = "dovenull"
            try:
                pwd.getpwnam("dovenull")
            except KeyError:
                self.login_user = "dovecot"
        else:
            import pwd
            me = pwd.getpwuid(os.getuid()).pw_name
            self.mail_ids = (os.getuid(), os.getgid())
            self.internal_user = self.login_user = me
        self.needs_chown = self.is_root
        if start:
            self.start()

    # -- paths --------------------------------------------------------------------------

    @property
    def log_path(self) -> Path:
        return self.dir / "dovecot.log"

    @property
    def home_root(self) -> Path:
        return self.dir / "home"

    @property
    def passwd_dir(self) -> Path:
        return self.dir / "passwd.d"

    @property
    def config_path(self) -> Path:
        return self.dir / "dovecot.conf"

    # -- lifecycle ----------------------------------------------------------------------

    def start(self) -> DovecotServer:
        t0 = time.monotonic()
        self.dir = Path(tempfile.mkdtemp(prefix="tuimail-dovecot-", dir=self.root))
        os.chmod(self.dir, 0o755)  # the mail user must traverse it to reach home/
        # mkdir's mode is filtered by the umask; Dovecot's users must read these whatever it is
        self.home_root.mkdir()
        os.chmod(self.home_root, 0o755)
        if self.needs_chown:
            os.chown(self.home_root, *self.mail_ids)
        self.passwd_dir.mkdir()
        os.chmod(self.passwd_dir, 0o755)
        if self.tls:
            self._make_cert()
        DovecotServer._live.add(self)
        last_error = None
        for _attempt in range(5):
            ports = _free_ports((4 if self.tls else 2) + (2 if self.submission_relay else 0))
            self.imap_port, self.pop3_port = ports[0], ports[1]
            if self.tls:
                self.imaps_port, self.pop3s_port = ports[2], ports[3]
            if self.submission_relay:
                self.submission_port = ports[-2]
                self.submissions_port = ports[-1] if self.tls else None
            self.config_path.write_text(self._config())
            try:
                self._spawn()
                break
            except DovecotError as e:
                last_error = e
                if "in use" not in str(e):
                    self.stop()
                    raise
        else:
            self.stop()
            raise last_error
        self.start_seconds = time.monotonic() - t0
        return self

    def _spawn(self) -> None:
        self._kill()
        log = open(self.dir / "stdout.log", "ab")
        try:
            self.proc = subprocess.Popen(
                [sys.executable, "-c", _REAPER, self.binary, "-F", "-c", str(self.config_path)],
                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                cwd=self.dir, start_new_session=True, close_fds=True,
            )
        finally:
            log.close()
        self._wait_ready()

    def _wait_ready(self) -> None:
        checks = [(self.imap_port, b"* OK"), (self.pop3_port, b"+OK")]
        if self.tls:
            checks += [(self.imaps_port, None), (self.pop3s_port, None)]
        if self.submission_relay:
            checks.append((self.submission_port, b"220 "))
            if self.submissions_port:
                checks.append((self.submissions_port, None))
        deadline = time.monotonic() + START_TIMEOUT
        pending = list(checks)
        while pending:
            if self.proc.poll() is not None:
                raise DovecotError(f"dovecot exited with status {self.proc.returncode}\n{self.log_tail()}")
            if time.monotonic() > deadline:
                raise DovecotError(f"dovecot did not answer on ports {[p for p, _ in pending]} "
                                   f"within {START_TIMEOUT:.0f} s\n{self.log_tail()}")
            port, greeting = pending[0]
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=2) as s:
                    if greeting is not None:
                        s.settimeout(2)
                        data = s.recv(200)
                        if not data.startswith(greeting):
                            raise DovecotError(f"unexpected greeting on port {port}: {data!r}\n{self.log_tail()}")
                pending.pop(0)
            except OSError as e:
                if e.errno not in (errno.ECONNREFUSED, errno.ECONNRESET, None) and not isinstance(e, TimeoutError):
                    raise
                time.sleep(0.01)

    def log_tail(self, lines: int = 30) -> str:
        out = []
        for name in ("stdout.log", "dovecot.log"):
            p = self.dir / name if self.dir else None
            if p and p.exists():
                text = p.read_text(errors="replace").splitlines()[-lines:]
                if text:
                    out.append(f"--- {p} ---\n" + "\n".join(text))
        return "\n".join(out) or "(no dovecot log)"

    def _kill(self) -> None:
        """SIGTERM, wait, SIGKILL — for the whole process group (the reaper and Dovecot)."""
        proc, self.proc = self.proc, None
        if proc is None:
            return
        if proc.poll() is None:
            proc.terminate()  # the reaper forwards it to the master, which stops its children
            try:
                proc.wait(timeout=0.3)
            except subprocess.TimeoutExpired:
                # The master stops its services at once but then waits about a second for its
                # log process, which ignores SIGTERM. Kill what is left below the reaper: the
                # reaper reaps it and exits.
                for pid in _group_members(proc.pid):
                    if pid != proc.pid:
                        _kill(pid, signal.SIGKILL)
                try:
                    proc.wait(timeout=5)
                except subprocess.TimeoutExpired:
                    pass
        _killpg(proc.pid, signal.SIGKILL)  # normally nobody is left: this is the last resort
        if proc.poll() is None:
            proc.wait(timeout=5)

    def stop(self) -> None:
        """Stop the daemon (SIGTERM, then SIGKILL to its process group) and remove the temp dir."""
        self._kill()
        DovecotServer._live.discard(self)
        if self.dir is not None and os.environ.get("TUIMAIL_KEEP_DOVECOT") != "1":
            shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self) -> DovecotServer:
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    # -- users --------------------------------------------------------------------------

    def add_user(self, name: str | None = None, password: str = "secret") -> MailUser:
        """Create a user: a one-line passwd-file of its own plus an empty Maildir.

        One file per user (`passdb passwd-file` with `%u` in its path): Dovecot stats a
        passwd-file at most once a second, so users appended to one shared file are invisible
        for up to a second; a new file for a new name is read at its first lookup.
        """
        if name is None:
            name = f"u{os.getpid()}x{next(self._users)}"
        if not re.fullmatch(r"[A-Za-z0-9_+-][A-Za-z0-9._@+-]*", name):
            raise ValueError(f"user name {name!r}: use letters, digits and . _ @ + -")
        if not password or re.search(r"[:\r\n\x00]", password):
            raise ValueError(f"password {password!r} cannot go into a passwd-file")
        path = self.passwd_dir / name
        if path.exists():
            raise ValueError(f"user {name!r} already exists")
        tmp = path.with_name(f".{name}.tmp")
        tmp.write_text(f"{name}:{{PLAIN}}{password}::::::\n")
        tmp.chmod(0o644)
        os.replace(tmp, path)  # atomic: the auth process never sees a half-written file
        user = MailUser(self, name, password)
        user.folder_path("INBOX")  # home + Maildir owned by the mail user
        return user

    def remove_user_data(self, user: MailUser) -> None:
        shutil.rmtree(user.home, ignore_errors=True)

    # -- log parsing ----------------------------------------------------------------------

    _LOGOUT = re.compile(rb"\b(imap|pop3)\(([^)]*)\)(?:<[^>]*>)*: (?:Info: )?Disconnected\b.*?\bin=(\d+) out=(\d+)")

    def _read_log(self) -> None:
        with self._log_lock:
            self._read_log_locked()

    def _read_log_locked(self) -> None:
        try:
            with open(self.log_path, "rb") as f:
                f.seek(self._log_offset)
                data = f.read()
        except FileNotFoundError:
            return
        self._log_offset += len(data)
        data = self._partial + data
        lines = data.split(b"\n")
        self._partial = lines.pop()  # an unterminated last line waits for the next read
        for line in lines:
            m = self._LOGOUT.search(line)
            if m:
                key = (m.group(1).decode(), m.group(2).decode("utf-8", "replace"))
                self._sessions.setdefault(key, []).append((int(m.group(3)), int(m.group(4))))

    def session_bytes(self, user: MailUser | str, protocol: str = "imap") -> list[tuple[int, int]]:
        """(in, out) byte counts of each finished session of `user`, in logout order."""
        self._read_log()
        name = user.name if isinstance(user, MailUser) else user
        return list(self._sessions.get((protocol, name), []))

    def wait_sessions(self, user: MailUser | str, n: int, timeout: float = 2.0,
                      protocol: str = "imap") -> list[tuple[int, int]]:
        """Poll the log until `user` has at least n finished sessions; raise after `timeout`."""
        deadline = time.monotonic() + timeout
        while True:
            got = self.session_bytes(user, protocol)
            if len(got) >= n:
                return got
            if time.monotonic() > deadline:
                raise DovecotError(f"expected {n} finished {protocol} sessions for {user}, "
                                   f"log shows {len(got)}: {got}\n{self.log_tail()}")
            time.sleep(0.02)

    # -- config ---------------------------------------------------------------------------

    def _make_cert(self) -> None:
        openssl = shutil.which("openssl")
        if not openssl:
            raise DovecotError("tls=True needs the openssl binary to make a self-signed certificate")
        self.cert_path = self.dir / "cert.pem"
        self.key_path = self.dir / "key.pem"
        subprocess.run(
            [openssl, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
             "-subj", "/CN=localhost", "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1",
             "-keyout", str(self.key_path), "-out", str(self.cert_path)],
            check=True, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        os.chmod(self.key_path, 0o600)

    def _config(self) -> str:
        d = self.dir
        uid, gid = self.mail_ids
        mailboxes = "\n".join(
            f"  mailbox {name} {{\n    special_use = {role}\n    auto = subscribe\n  }}"
            for name, role in SPECIAL_USE.items()
        )
        imap_plugins = ""
        if (MODULE_DIR / "lib30_imap_zlib_plugin.so").exists():
            imap_plugins = "  mail_plugins = $mail_plugins imap_zlib\n"
        if self.tls:
            ssl = f"ssl = yes\nssl_cert = <{self.cert_path}\nssl_key = <{self.key_path}\n"
            imaps, pop3s = self.imaps_port, self.pop3s_port
        else:
            ssl = "ssl = no\n"
            imaps = pop3s = 0  # port 0 disables the default 993/995 listeners
        capability = f"imap_capability = {self.capabilities}\n" if self.capabilities is not None else ""
        separator = f"  separator = {self.separator}\n" if self.separator != "." else ""
        return f"""\
# generated by tests/support/dovecot.py — a private test instance, nothing shared with /run/dovecot
base_dir = {d}/run
state_dir = {d}/state
instance_name = tuimail-test-{d.name}
log_path = {d}/dovecot.log
log_timestamp = "%Y-%m-%d %H:%M:%S "
protocols = imap pop3{" submission" if self.submission_relay else ""}
listen = 127.0.0.1
{ssl}disable_plaintext_auth = no
auth_mechanisms = plain login
auth_verbose = yes
auth_failure_delay = 0
default_login_user = {self.login_user}
default_internal_user = {self.internal_user}
default_internal_group = {self.internal_user}
first_valid_uid = 0
first_valid_gid = 0
mail_location = maildir:~/Maildir
mail_max_userip_connections = 100
imap_idle_notify_interval = {self.idle_notify_interval}
mailbox_idle_check_interval = 1 secs
imap_logout_format = in=%i out=%o deleted=%{{deleted}} expunged=%{{expunged}} trashed=%{{trashed}} \
hdr_count=%{{fetch_hdr_count}} hdr_bytes=%{{fetch_hdr_bytes}} \
body_count=%{{fetch_body_count}} body_bytes=%{{fetch_body_bytes}}
pop3_logout_format = in=%i out=%o top=%t/%p, retr=%r/%b, del=%d/%m, size=%s
{capability}
passdb {{
  driver = passwd-file
  args = scheme=PLAIN {self.passwd_dir}/%u
}}
userdb {{
  driver = static
  args = uid={uid} gid={gid} home={d}/home/%u
}}

namespace inbox {{
  inbox = yes
{separator}{mailboxes}
}}

protocol imap {{
{imap_plugins}}}

service imap-login {{
  chroot =
  inet_listener imap {{
    address = 127.0.0.1
    port = {self.imap_port}
  }}
  inet_listener imaps {{
    address = 127.0.0.1
    port = {imaps}
  }}
}}
service pop3-login {{
  chroot =
  inet_listener pop3 {{
    address = 127.0.0.1
    port = {self.pop3_port}
  }}
  inet_listener pop3s {{
    address = 127.0.0.1
    port = {pop3s}
  }}
}}
service anvil {{
  chroot =
  # no auth penalty: every test logs in from 127.0.0.1, and one failed login would otherwise
  # delay all later logins of the session by seconds
  unix_listener anvil-auth-penalty {{
    mode = 0
  }}
}}
{self._submission_config()}
{self.extra_config}
"""

    def _submission_config(self) -> str:
        if not self.submission_relay:
            return ""
        if not submission_installed():
            raise DovecotNotInstalled(f"{SUBMISSION_BINARY} is missing: install dovecot-submissiond (`make dovecot`)")
        submissions = (f"""  inet_listener submissions {{
    address = 127.0.0.1
    port = {self.submissions_port}
    ssl = yes
  }}
""" if self.submissions_port else "")
        return f"""hostname = localhost
postmaster_address = postmaster@localhost
submission_relay_host = 127.0.0.1
submission_relay_port = {self.submission_relay}
submission_relay_trusted = yes
submission_relay_ssl = no
service submission-login {{
  chroot =
  inet_listener submission {{
    address = 127.0.0.1
    port = {self.submission_port}
  }}
{submissions}}}
"""


@atexit.register
def _stop_leftovers() -> None:
    for server in list(DovecotServer._live):
        server.stop()
