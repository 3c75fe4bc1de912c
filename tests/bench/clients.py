"""Driving neomutt, aerc, tuimail and an empty Textual app in real terminals (tmux, 160x45).

`Tmux` runs a private tmux server (its own socket, killed at exit) and reads screens through one
control-mode client (`tmux -C`), so polling every 10 ms costs ~0.1 ms instead of a process spawn
per capture. Each client starts inside a pane that waits on `read`; the clock starts when Enter is
sent, so tmux's own start-up is not counted.

A client driver prepares a scratch HOME (cold: empty cache), gives the command and the
environment, and says when its screen is "ready" (DESIGN.md §4: the newest subjects in the list;
neomutt: its index status line showing the full message count).
"""

from __future__ import annotations

import atexit
import os
import re
import select
import shlex
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

from .measure import BenchError, rss_mb

WIDTH, HEIGHT = 160, 45
REPO = Path(__file__).resolve().parents[2]


class Tmux:
    def __init__(self, name: str | None = None):
        self.socket = name or f"tuimail-bench-{os.getpid()}"
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("TMUX")}
        self.env.update(LANG="C.UTF-8", LC_ALL="C.UTF-8", TERM="xterm-256color")
        self.ctl = None
        self._buf = b""
        self._tmux("-f", "/dev/null", "new-session", "-d", "-s", "ctl", "-x", "80", "-y", "24", "sleep 1000000")
        atexit.register(self.close)
        self._tmux("set-option", "-g", "default-terminal", "tmux-256color" if _has_terminfo("tmux-256color")
                   else "screen-256color")
        self._tmux("set-option", "-g", "history-limit", "0")
        self._tmux("set-option", "-g", "default-shell", "/bin/sh")
        self.ctl = subprocess.Popen(["tmux", "-L", self.socket, "-u", "-C", "attach-session", "-t", "ctl"],
                                    stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                                    env=self.env, start_new_session=True, bufsize=0)
        self.command("display-message -p bench-sync")  # skip the attach's own reply block
        pid = self.command("display-message -p '#{pid}'")
        self.server_pid = int(pid[0]) if pid and pid[0].isdigit() else None
        path = self.command("display-message -p '#{socket_path}'")
        self.socket_path = path[0] if path and path[0].endswith(self.socket) else None

    def _tmux(self, *args: str) -> str:
        r = subprocess.run(["tmux", "-L", self.socket, *args], env=self.env, capture_output=True, text=True,
                           timeout=10)
        if r.returncode != 0:
            raise BenchError(f"tmux {' '.join(args[:3])}: {r.stderr.strip()}")
        return r.stdout

    def command(self, cmd: str, check: bool = True) -> list[str]:
        """One command through the control client; its output lines (bounded wait)."""
        self.ctl.stdin.write(cmd.encode() + b"\n")
        self.ctl.stdin.flush()
        deadline = time.monotonic() + 10
        number, out = None, []
        while True:
            line = self._readline(deadline, cmd)
            if line.startswith((b"%begin ", b"%end ", b"%error ")):
                parts = line.split()
                if parts[0] == b"%begin":
                    # flags 0: not a command of ours (the attach's own reply comes when it likes,
                    # possibly after our first answers): skip it or every later answer is off by one
                    number, out = (parts[2], []) if parts[3:4] == [b"1"] else (None, [])
                    continue
                if number is not None and parts[2] == number:
                    ok = parts[0] == b"%end"
                    if cmd.startswith("display-message -p bench-sync") and out != ["bench-sync"]:
                        number = None  # an earlier block: keep reading until ours
                        continue
                    if not ok and check:
                        raise BenchError(f"tmux {cmd!r}: {' '.join(out)}")
                    return out if ok else []
                continue
            if number is not None:
                out.append(line.rstrip(b"\n").decode("utf-8", "replace"))

    def _readline(self, deadline: float, cmd: str) -> bytes:
        """One line from the control client, waiting at most until `deadline`."""
        fd = self.ctl.stdout.fileno()
        while b"\n" not in self._buf:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([fd], [], [], left)[0]:
                raise BenchError(f"tmux control client: no answer to {cmd!r} within 10 s")
            data = os.read(fd, 1 << 16)
            if not data:
                raise BenchError("tmux control client exited")
            self._buf += data
        line, _, self._buf = self._buf.partition(b"\n")
        return line + b"\n"

    def start(self, name: str, argv: list[str], env: dict[str, str], cwd: str | None = None) -> None:
        """A 160x45 session whose pane waits for `go()` before exec'ing argv."""
        envs = " ".join(shlex.quote(f"{k}={v}") for k, v in env.items())
        cd = f"cd {shlex.quote(cwd)} && " if cwd else ""
        script = f"read _go; {cd}exec env {envs} {' '.join(shlex.quote(a) for a in argv)}"
        self._tmux("new-session", "-d", "-s", name, "-x", str(WIDTH), "-y", str(HEIGHT), script)
        deadline = time.monotonic() + 5
        while self.pane_pid(name) is None:
            if time.monotonic() > deadline:
                raise BenchError(f"tmux session {name} did not start")
            time.sleep(0.01)

    def go(self, name: str) -> float:
        """Release the waiting pane; returns the start time (monotonic)."""
        t0 = time.monotonic()
        self.command(f"send-keys -t {name} Enter")
        return t0

    def screen(self, name: str) -> list[str]:
        return self.command(f"capture-pane -p -t {name}")

    def pane_pid(self, name: str) -> int | None:
        out = self.command(f"list-panes -t {name} -F '#{{pane_pid}}'", check=False)
        return int(out[0]) if out and out[0].isdigit() else None

    def keys(self, name: str, *keys: str) -> None:
        self.command(f"send-keys -t {name} " + " ".join(shlex.quote(k) for k in keys))

    def kill(self, name: str) -> None:
        self.command(f"kill-session -t {name}", check=False)

    def wait_gone(self, name: str, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.pane_pid(name) is None:
                return True
            time.sleep(0.05)
        return False

    def close(self) -> None:
        if self.ctl is not None:
            try:
                self.ctl.stdin.close()
            except OSError:
                pass
            try:
                self.ctl.wait(timeout=2)
            except subprocess.TimeoutExpired:
                self.ctl.kill()
            self.ctl = None
        subprocess.run(["tmux", "-L", self.socket, "kill-server"], env=self.env, capture_output=True, timeout=10)
        pid, self.server_pid = getattr(self, "server_pid", None), None
        if pid is not None:  # our own server only, by its pid, if kill-server did not reach it
            for sig in (signal.SIGTERM, signal.SIGKILL):
                try:
                    os.kill(pid, sig)
                except ProcessLookupError:
                    break
                time.sleep(0.2)
        if getattr(self, "socket_path", None):
            try:
                os.unlink(self.socket_path)  # tmux leaves its socket file behind
            except OSError:
                pass
            self.socket_path = None


def _has_terminfo(name: str) -> bool:
    return subprocess.run(["infocmp", name], capture_output=True).returncode == 0 if shutil.which("infocmp") else False


def newest_visible(lines: list[str], needles: list[str]) -> bool:
    """The newest subjects, in order, on consecutive screen lines."""
    flat = [" ".join(ln.split()) for ln in lines]
    for i in range(len(flat) - len(needles) + 1):
        if all(needles[j] in flat[i + j] for j in range(len(needles))):
            return True
    return False


# ------------------------------------------------------------------------------- clients

class Client:
    """One client's scratch directory, command and readiness test."""

    name = "client"
    has_cache = True

    def __init__(self, scratch: Path, folder, port: int):
        self.dir = scratch / self.name
        self.home = self.dir / "home"
        self.folder = folder
        self.port = port
        self.home.mkdir(parents=True, exist_ok=True)

    def argv(self) -> list[str]:
        raise NotImplementedError

    def env(self) -> dict[str, str]:
        return {"HOME": str(self.home), "LANG": "C.UTF-8", "LC_ALL": "C.UTF-8"}

    def clear_cache(self) -> None:
        pass

    def ready(self, lines: list[str]) -> bool:
        return newest_visible(lines, self.folder.newest)

    def quit(self, tmux: Tmux, session: str) -> None:
        tmux.kill(session)


class Neomutt(Client):
    name = "neomutt"

    def __init__(self, *a):
        super().__init__(*a)
        self.cache = self.dir / "hcache"
        self.cache.mkdir(exist_ok=True)
        self.rc = self.dir / "muttrc"
        u = self.folder.user
        self.rc.write_text("\n".join([
            f'set folder="imap://{u.name}@127.0.0.1:{self.port}/"',
            'set spoolfile="+INBOX"',
            f'set imap_user="{u.name}"',
            f'set imap_pass="{u.password}"',
            f'set header_cache="{self.cache}/"',
            "set imap_check_subscribed=no",
            'set mailcap_path=""',
            "set ssl_starttls=no",
            "set ssl_force_tls=no",
            "set quit=yes",
            "set mark_old=no",
            "set move=no",
            "set sleep_time=0",
            'set record=""',
            'set postponed=""',
        ]) + "\n")
        self._count = re.compile(rf"Msgs:{self.folder.n}\b")

    def argv(self) -> list[str]:
        return ["neomutt", "-n", "-F", str(self.rc)]

    def clear_cache(self) -> None:
        shutil.rmtree(self.cache, ignore_errors=True)
        self.cache.mkdir()

    def ready(self, lines: list[str]) -> bool:
        return any(self._count.search(ln) for ln in lines)

    def quit(self, tmux: Tmux, session: str) -> None:
        tmux.keys(session, "q")  # quit=yes: leaves cleanly, the header cache closed
        if not tmux.wait_gone(session, 10):
            tmux.kill(session)


class Aerc(Client):
    name = "aerc"
    has_cache = False

    def __init__(self, *a):
        super().__init__(*a)
        conf = self.home / ".config" / "aerc"
        conf.mkdir(parents=True, exist_ok=True)
        u = self.folder.user
        accounts = conf / "accounts.conf"
        accounts.write_text(f"[bench]\nsource = imap+insecure://{u.name}:{u.password}@127.0.0.1:{self.port}\n"
                            "default = INBOX\nfrom = Bench <bench@example.org>\n")
        accounts.chmod(0o600)
        (conf / "aerc.conf").write_text("")

    def argv(self) -> list[str]:
        return ["aerc"]


class Tuimail(Client):
    name = "tuimail"

    def __init__(self, *a):
        super().__init__(*a)
        self.xdg = {v: self.dir / v.lower() for v in ("XDG_CONFIG_HOME", "XDG_DATA_HOME", "XDG_CACHE_HOME",
                                                          "XDG_STATE_HOME")}
        for p in self.xdg.values():
            p.mkdir(parents=True, exist_ok=True)
        self.config = self.dir / "config.toml"
        u = self.folder.user
        self.config.write_text(u.config_toml("bench", port=self.port))
        self.config.chmod(0o600)
        self.store = self.xdg["XDG_DATA_HOME"] / "tuimail" / "accounts" / "bench.sqlite3"

    def argv(self, *args: str) -> list[str]:
        exe = REPO / ".venv" / "bin" / "tuimail"
        base = [str(exe)] if exe.exists() else [sys.executable, "-m", "tuimail"]
        return [*base, "--config", str(self.config), *args]

    def env(self) -> dict[str, str]:
        return {**super().env(), **{k: str(v) for k, v in self.xdg.items()}}

    def clear_cache(self) -> None:
        """Cold: no store and no message cache (as neomutt's cold has no header cache). What a
        program run before keeps stays, as for neomutt's binary: Python's __pycache__ and
        tuimail's compiled dataclass code and parsed CSS (<cache>/tuimail/code: codecache.py,
        ui/csscache.py)."""
        shutil.rmtree(self.xdg["XDG_DATA_HOME"] / "tuimail", ignore_errors=True)
        cache = self.xdg["XDG_CACHE_HOME"] / "tuimail"
        for p in cache.iterdir() if cache.is_dir() else ():
            if p.name != "code":
                shutil.rmtree(p) if p.is_dir() else p.unlink()

    def stored_rows(self) -> int:
        """INBOX rows in the store right now (a short read-only connection; 0 if not there yet)."""
        if not self.store.exists():
            return 0
        try:
            db = sqlite3.connect(f"file:{self.store}?mode=ro", uri=True, timeout=1)
            try:
                row = db.execute("SELECT count(*) FROM messages m JOIN folders f ON f.id = m.folder_id "
                                 "WHERE f.name = 'INBOX'").fetchone()
            finally:
                db.close()
            return row[0]
        except sqlite3.Error:
            return 0

    def wait_rows(self, n: int, t0: float, timeout: float, interval: float = 0.005) -> float:
        """Seconds from t0 until the store holds n INBOX rows, asked every `interval` seconds on
        one read-only connection. (A connection per question and a question every 20 ms, as
        stored_rows is used elsewhere: ~0.5 ms of CPU each beside the client measured, and 10 ms
        added on average to what was measured.) Raises BenchError after `timeout` seconds."""
        deadline = time.monotonic() + timeout
        db: sqlite3.Connection | None = None
        try:
            while True:
                rows = 0
                if db is None and self.store.exists():
                    try:
                        db = sqlite3.connect(f"file:{self.store}?mode=ro", uri=True, timeout=1)
                    except sqlite3.Error:
                        db = None
                if db is not None:
                    try:
                        rows = db.execute("SELECT count(*) FROM messages m JOIN folders f ON f.id = m.folder_id "
                                          "WHERE f.name = 'INBOX'").fetchone()[0]
                    except sqlite3.Error:  # (the schema not made yet)
                        db.close()
                        db = None
                now = time.monotonic()
                if rows >= n:
                    return now - t0
                if now > deadline:
                    raise BenchError(f"tuimail's store held {rows} of {n} rows after {timeout:.0f} s")
                time.sleep(interval)
        finally:
            if db is not None:
                db.close()

    def run_cli(self, *args: str, timeout: float = 600) -> tuple[float, str]:
        """`tuimail <args>` headless; (seconds, stdout). Raises BenchError on failure."""
        env = {**{k: v for k, v in os.environ.items() if not k.startswith("XDG_")}, **self.env()}
        t0 = time.monotonic()
        try:
            r = subprocess.run(self.argv(*args), env=env, capture_output=True, text=True, timeout=timeout,
                               cwd=str(REPO))
        except subprocess.TimeoutExpired:
            raise BenchError(f"tuimail {' '.join(args)} took more than {timeout:.0f} s") from None
        dt = time.monotonic() - t0
        if r.returncode != 0:
            raise BenchError(f"tuimail {' '.join(args)} exited {r.returncode}: {r.stderr.strip()[-300:]}")
        return dt, r.stdout

    def quit(self, tmux: Tmux, session: str) -> None:
        tmux.keys(session, "q")
        if not tmux.wait_gone(session, 10):
            tmux.kill(session)


class Floor(Client):
    """An empty Textual app: one Static. Its first paint is the floor of any Textual client."""

    name = "floor"
    has_cache = False
    TEXT = "tuimail-bench-floor"

    def argv(self) -> list[str]:
        return [sys.executable, "-m", "tests.bench.probes", "floor", self.TEXT]

    def ready(self, lines: list[str]) -> bool:
        return any(self.TEXT in ln for ln in lines)


def timed_open(tmux: Tmux, client: Client, session: str, *, timeout: float, settle: float = 1.0,
               after_ready=None) -> dict:
    """Launch `client` in a fresh pane, poll its screen every ~10 ms until ready.

    Returns {"seconds": launch->ready, "rss_mb": after `settle` s, plus what after_ready adds}.
    The pane is closed (client.quit) before returning."""
    tmux.start(session, client.argv(), client.env(), cwd=str(REPO))
    result: dict = {}
    try:
        t0 = tmux.go(session)
        deadline = t0 + timeout
        while True:
            lines = tmux.screen(session)
            now = time.monotonic()
            if client.ready(lines):
                result["seconds"] = now - t0
                break
            if now > deadline:
                tail = "\n".join(ln for ln in lines if ln.strip())[-600:]
                raise BenchError(f"{client.name}: no first screen after {timeout:.0f} s; screen:\n{tail}")
            if tmux.pane_pid(session) is None:
                raise BenchError(f"{client.name} exited before its first screen")
            time.sleep(max(0.0, 0.01 - (time.monotonic() - now)))
        if after_ready is not None:
            result.update(after_ready(t0) or {})
        if settle:
            time.sleep(settle)
            pid = tmux.pane_pid(session)
            result["rss_mb"] = rss_mb(pid) if pid else None
        return result
    finally:
        if tmux.pane_pid(session) is not None:
            client.quit(tmux, session)
        tmux.kill(session)
