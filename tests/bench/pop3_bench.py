"""POP3 side by side (issue #14): one N-message POP3 mailbox on the bench's Dovecot, tuimail and
neomutt opening it cold in tmux, and what a second sync with nothing new costs.

    .venv/bin/python -m tests.bench.pop3_bench [--n 5000] [--rounds 3]   # alone, its own Dovecot

`make bench` runs it as the "pop3" section (run.py --only pop3). Measured per round, clients
alternated: neomutt (`spoolfile = pop://...`, empty header cache) until its status line shows
`Msgs:N`; tuimail (`kind = "pop3"`, `headers_first = true`: the list from `TOP n 0`, like
neomutt's, pipelined; the bodies follow in the same session) until the three newest subjects
show (first screen) and until the store holds N rows (all headers). Then `tuimail sync` on the
filled store, three times: Dovecot's `out=` of each POP3 session (pop3_logout_format: after the
login) and what tuimail counted on its side (the whole session, login included). Last, the UI
stall probe (probes.py `stall`) during a cold first download. References in the same rounds: an
empty Textual app (the floor) and tuimail opening the same mailbox over IMAP.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from .clients import REPO, Floor, Neomutt, Tmux, Tuimail, timed_open
from .measure import BenchError, build_folder, loadavg, median

TARGET_FIRST = 0.5  # tuimail <= 0.5x neomutt (first screen and all headers)
NOOP_COMMANDS = {"UIDL", "QUIT"}  # a second sync with nothing new: one UIDL exchange (and QUIT)


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


class NeomuttPop3(Neomutt):
    name = "neomutt-pop3"

    def __init__(self, scratch: Path, folder, port: int):
        super().__init__(scratch, folder, port)
        u = self.folder.user
        self.rc.write_text("\n".join([
            f'set folder="{self.dir}"',  # (neomutt asks to create ~/Mail otherwise)
            f'set spoolfile="pop://{u.name}@127.0.0.1:{port}/"',
            f'set pop_user="{u.name}"',
            f'set pop_pass="{u.password}"',
            f'set header_cache="{self.cache}/"',
            "set pop_delete=no",
            "set pop_last=no",
            "set pop_checkinterval=3600",
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


class TuimailPop3(Tuimail):
    name = "tuimail-pop3"

    def __init__(self, scratch: Path, folder, port: int, headers_first: bool = True):
        super().__init__(scratch, folder, port)
        u = self.folder.user
        self.config.write_text(u.config_toml("bench", kind="pop3", port=port, headers_first=headers_first,
                                             check_interval=3600))
        self.config.chmod(0o600)


def warm_pop3(user) -> float:
    """One session listing every message and its header block: Dovecot has computed each
    message's size and read its headers before any measured run (both clients ask for them)."""
    from tuimail.protocol.pop3 import Pop3Session
    t0 = time.monotonic()
    with Pop3Session(user.host, user.pop3_port, security="none", username=user.name,
                     secret=lambda: user.password, timeout=300) as s:
        s.uidl()
        sizes = s.list_sizes()
        for _ in s.top_many(sorted(sizes)):
            pass
    return time.monotonic() - t0


def pop3_sessions(server, user) -> list[tuple[int, int]]:
    return server.session_bytes(user, "pop3")


class Pop3Bench:
    def __init__(self, server, tmux: Tmux, scratch: Path, n: int, rounds: int):
        self.server, self.tmux, self.n, self.rounds = server, tmux, n, rounds
        self.scratch = scratch / f"pop3-{n}"
        self.d: dict = {"n": n, "rounds": rounds, "errors": []}
        self.timeout = 60 + n / 200

    def add(self, key: str, value) -> None:
        self.d.setdefault(key, []).append(value)

    def run(self) -> dict:
        self.d["load_start"] = loadavg()
        log(f"pop3 {self.n}: generating the mailbox")
        self.folder = build_folder(self.server, self.n, name=f"pop3bench{self.n}", imap=False)
        self.d["write_seconds"] = self.folder.write_seconds
        self.d["warm_seconds"] = warm_pop3(self.folder.user)
        log(f"pop3 {self.n}: written in {self.d['write_seconds']:.1f} s, POP3 warmed in {self.d['warm_seconds']:.1f} s")
        port = self.server.pop3_port
        self.neomutt = NeomuttPop3(self.scratch, self.folder, port)
        self.tuimail = TuimailPop3(self.scratch, self.folder, port)
        self.floor = Floor(self.scratch, self.folder, port)
        self.imap = Tuimail(self.scratch, self.folder, self.server.imap_port)
        for r in range(self.rounds):
            order = [self.round_neomutt, self.round_tuimail, self.round_floor, self.round_imap]
            if r % 2:
                order.reverse()
            log(f"pop3 {self.n}: round {r + 1}/{self.rounds}, load {loadavg()}")
            for step in order:
                step()
        for step in (self.noop, self.stall):
            try:
                step()
            except BenchError as exc:
                self.d["errors"].append(f"{step.__name__}: {exc}")
        self.d["load_end"] = loadavg()
        return self.d

    def round_neomutt(self) -> None:
        c = self.neomutt
        c.clear_cache()
        res = timed_open(self.tmux, c, f"{c.name}-cold", timeout=self.timeout, settle=0)
        self.add("neomutt_cold", res["seconds"])
        log(f"  neomutt (pop://) cold: {res['seconds']:.2f} s to Msgs:{self.n}")

    def round_imap(self) -> None:
        """Reference: tuimail opening the same mailbox over IMAP (Dovecot serves both)."""
        c = self.imap
        c.clear_cache()
        res = timed_open(self.tmux, c, "tuimail-imap-ref", timeout=self.timeout, settle=0)
        self.add("tuimail_imap_cold", res["seconds"])
        log(f"  tuimail over IMAP, same mailbox, cold first screen {res['seconds']:.2f} s")

    def round_floor(self) -> None:
        res = timed_open(self.tmux, self.floor, "floor-pop3", timeout=60, settle=0)
        self.add("floor", res["seconds"])
        log(f"  empty Textual app {res['seconds']:.2f} s")

    def round_tuimail(self) -> None:
        c = self.tuimail
        c.clear_cache()

        def all_rows(t0: float) -> dict:
            return {"all_seconds": c.wait_rows(self.n, t0, self.timeout * 3)}

        res = timed_open(self.tmux, c, f"{c.name}-cold", timeout=self.timeout, settle=0, after_ready=all_rows)
        self.add("tuimail_cold", res["seconds"])
        self.add("tuimail_cold_all", res["all_seconds"])
        log(f"  tuimail (pop3, headers_first) cold: first screen {res['seconds']:.2f} s, all headers "
            f"{res['all_seconds']:.2f} s")

    def noop(self) -> None:
        """`tuimail sync` until the store is complete, then three syncs with nothing new."""
        c = self.tuimail
        _, out = c.run_cli("sync", timeout=self.timeout * 5)  # bodies the TUI left, if any
        samples, ours = [], []
        for _ in range(3):
            n0 = len(pop3_sessions(self.server, self.folder.user))
            secs, out = c.run_cli("sync", timeout=self.timeout)
            if not re.search(r"\b0 new\b", out) and " new" in out:
                raise BenchError(f"a second POP3 sync found new mail: {out.strip()!r}")
            got = self.server.wait_sessions(self.folder.user, n0 + 1, timeout=10, protocol="pop3")[n0:]
            samples.append(got[0][1])
            m = re.search(r"(\d+) bytes in, (\d+) out", out)
            ours.append([int(m.group(1)), int(m.group(2))] if m else None)
            self.add("noop_seconds", secs)
        self.d["noop_out"] = samples
        self.d["noop_tuimail_counted"] = ours
        self.d["noop_commands"] = self.commands()
        log(f"pop3 {self.n}: no-change sync: Dovecot out= {samples} B; tuimail counted (in, out) {ours}; "
            f"commands {self.d['noop_commands']}")

    def stall(self) -> None:
        """F, N and j pressed during a cold first download (probes.py `stall`, the app's service:
        the download in its child process): the longest time the UI thread was blocked."""
        c = TuimailPop3(self.scratch / "stall", self.folder, self.server.pop3_port)
        c.clear_cache()
        env = {**{k: v for k, v in os.environ.items() if not k.startswith("XDG_")}, **c.env()}
        try:
            r = subprocess.run([sys.executable, "-m", "tests.bench.probes", "stall", str(c.config), str(self.n)],
                               env=env, cwd=str(REPO), capture_output=True, text=True, timeout=600)
        except subprocess.TimeoutExpired:
            raise BenchError("the stall probe took more than 600 s") from None
        if r.returncode != 0 or not r.stdout.strip():
            raise BenchError(f"stall probe exited {r.returncode}: {(r.stderr or r.stdout).strip()[-300:]}")
        self.d["stall"] = res = json.loads(r.stdout.strip().splitlines()[-1])
        log(f"pop3 {self.n}: UI stall pressing F/N/j during the first download: loop lateness {res['loop_late']}, "
            f"on CPU {res.get('loop_late_on_cpu')}")

    def commands(self) -> dict[str, int]:
        """The commands one no-change sync sends (the service's own count)."""
        from tuimail.backends.pop3.download import download
        from tuimail.backends.pop3.ledger import StoreLedger
        from tuimail.backends.pop3.service import Pop3Service
        from tuimail.config.load import load_config
        from tuimail.store import Store
        from tuimail.store.pop3ledger import Pop3Ledger
        old = {k: os.environ.get(k) for k in self.tuimail.xdg}
        os.environ.update({k: str(v) for k, v in self.tuimail.xdg.items()})
        try:
            cfg = load_config(self.tuimail.config)
            svc = Pop3Service(cfg, cfg.account("bench"))
            with Store(svc.store_path) as st:
                inbox = svc.ensure_folders(st)
                ledger = StoreLedger(Pop3Ledger(st), inbox, "bench", lambda e: None)
                res = download(svc._new_session(), ledger, svc.policy)
                ledger.flush()
            return res.commands
        finally:
            for k, v in old.items():
                if v is None:
                    os.environ.pop(k, None)
                else:
                    os.environ[k] = v


def summary(d: dict) -> dict:
    """Medians of the samples (what report.py shows)."""
    return {k: median(v) for k, v in d.items() if isinstance(v, list) and v and isinstance(v[0], (int, float))}


def main(argv: list[str] | None = None) -> int:
    from tests.support.dovecot import DovecotServer, default_root
    ap = argparse.ArgumentParser(prog="python -m tests.bench.pop3_bench")
    ap.add_argument("--n", type=int, default=5000)
    ap.add_argument("--rounds", type=int, default=3)
    a = ap.parse_args(argv)
    root = default_root()
    scratch = Path(tempfile.mkdtemp(prefix="tuimail-pop3-bench-", dir=root))
    server = DovecotServer(root=root)
    tmux = Tmux()
    try:
        d = Pop3Bench(server, tmux, scratch, a.n, a.rounds).run()
        print(json.dumps({**d, "medians": summary(d)}))
    finally:
        tmux.close()
        server.stop()
        shutil.rmtree(scratch, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
