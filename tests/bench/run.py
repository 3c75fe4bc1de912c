"""`make bench`: tuimail side by side with neomutt and aerc on the same Dovecot (DESIGN.md §4).

    .venv/bin/python -m tests.bench.run [--sizes 5000,20000,100000] [--rounds 5]
                                        [--out tests/bench/RESULTS.md] [--quick]
                                        [--only imap,pop3,search,jmap]

Per folder size: generate the INBOX straight into a Maildir, warm Dovecot's index, then for each
round run every client (order rotated per round) cold and warm in tmux; then the byte counts,
key-to-repaint and IDLE probes. RESULTS.md (and the raw samples beside it, .json) is rewritten after
every size, so a long run that is interrupted still leaves what it measured.

The other sections (sections.py) follow the IMAP one: POP3 on the same Dovecot against neomutt
(issue #14), local search (#13) and JMAP vs IMAP on Cyrus (#15). `--only` runs some of them; a
section that cannot be measured here says why in the report instead of failing the run.
"""

from __future__ import annotations

import argparse
import atexit
import datetime
import json
import os
import platform
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from tests.support.dovecot import DovecotServer, default_root

from . import report, sections
from .clients import REPO, Aerc, Floor, Neomutt, Tmux, Tuimail, timed_open
from .measure import BenchError, build_folder, change_flags, loadavg, new_sessions, raw_idle_latency

ORDER = ["neomutt", "aerc", "tuimail", "floor"]


def ensure_clients() -> None:
    missing = [p for p in ("neomutt", "aerc", "tmux") if shutil.which(p) is None]
    if not missing:
        return
    print(f"installing {' '.join(missing)} (apt-get)", flush=True)
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    for cmd in (["apt-get", "update", "-qq"], ["apt-get", "install", "-y", "-qq", *missing]):
        r = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=900)
        if r.returncode != 0:
            raise BenchError(f"{' '.join(cmd)} failed: {r.stderr.strip()[-300:]}")


def versions() -> dict[str, str]:
    def first(cmd):
        try:
            r = subprocess.run(cmd, capture_output=True, text=True, timeout=10)
            return (r.stdout or r.stderr).strip().splitlines()[0]
        except (OSError, IndexError, subprocess.TimeoutExpired):
            return "?"
    import textual
    import tuimail
    dirty = subprocess.run(["git", "-C", str(REPO), "status", "--porcelain", "--", "tuimail"],
                           capture_output=True, text=True).stdout.strip()
    head = first(["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"]) + (" + uncommitted changes in tuimail/"
                                                                              if dirty else "")
    return {"tuimail": f"{tuimail.__version__} ({head})",
            "neomutt": first(["neomutt", "-v"]), "aerc": first(["aerc", "-v"]),
            "dovecot": first(["dovecot", "--version"]), "tmux": first(["tmux", "-V"]),
            "Python": platform.python_version(), "Textual": textual.__version__}


def machine() -> str:
    model = "?"
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{os.cpu_count()} cores ({model}), Linux {platform.release()}"


def _f(x, unit: str = " s", fmt: str = ".2f") -> str:
    return "?" if x is None else f"{x:{fmt}}{unit}"


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


class SizeBench:
    def __init__(self, n: int, rounds: int, server: DovecotServer, tmux: Tmux, scratch: Path):
        self.n, self.rounds, self.server, self.tmux = n, rounds, server, tmux
        self.scratch = scratch / str(n)
        self.d: dict = {"rounds": rounds, "errors": []}
        self.timeout = 60 + n / 1000  # a first screen; all headers may take longer on a loaded machine

    def add(self, key: str, value) -> None:
        self.d.setdefault(key, []).append(value)

    def run(self) -> dict:
        self.d["load_start"] = loadavg()
        log(f"{self.n}: generating the folder")
        self.folder = build_folder(self.server, self.n)
        self.d["write_seconds"], self.d["warm_seconds"] = self.folder.write_seconds, self.folder.warm_seconds
        self.d["calibration"] = self.folder.calibration
        self.user = self.folder.user
        port = self.server.imap_port
        self.clients = {c.name: c(self.scratch, self.folder, port) for c in (Neomutt, Aerc, Tuimail, Floor)}
        for r in range(self.rounds):
            order = ORDER[r % len(ORDER):] + ORDER[:r % len(ORDER)]
            log(f"{self.n}: round {r + 1}/{self.rounds} ({', '.join(order)}), load {loadavg()}")
            for name in order:
                getattr(self, f"round_{name}")()
        for step in (self.bytes_noop, self.bytes_flags, self.bytes_open_big, self.keys, self.wire, self.idle,
                     self.stall, self.limit):
            try:
                step()
            except BenchError as exc:
                log(f"{self.n}: {step.__name__} failed: {exc}")
                self.d["errors"].append(f"{step.__name__}: {exc}")
        self.d["load_end"] = loadavg()
        return self.d

    # -------------------------------------------------------------- timed opens, per round

    def _open(self, client, tag: str, **kw) -> dict:
        res, sessions = new_sessions(self.server, self.user,
                                     lambda: timed_open(self.tmux, client, f"{client.name}-{tag}",
                                                        timeout=self.timeout, **kw), expect=None)
        res["out"] = sum(o for _, o in sessions) if sessions else None
        return res

    def round_neomutt(self) -> None:
        c = self.clients["neomutt"]
        c.clear_cache()
        cold = self._open(c, "cold", settle=0)
        warm = self._open(c, "warm")
        self.add("neomutt_cold", cold["seconds"])
        self.add("neomutt_warm", warm["seconds"])
        self.add("neomutt_rss", warm["rss_mb"])
        self.add("neomutt_warm_out", warm["out"])
        log(f"  neomutt cold {_f(cold['seconds'])}, warm {_f(warm['seconds'])}, RSS {_f(warm['rss_mb'], ' MB', '.0f')}")

    def round_aerc(self) -> None:
        res = self._open(self.clients["aerc"], "open")
        self.add("aerc", res["seconds"])
        self.add("aerc_rss", res["rss_mb"])
        self.add("aerc_out", res["out"])
        log(f"  aerc first screen {_f(res['seconds'])}, RSS {_f(res['rss_mb'], ' MB', '.0f')}")

    def round_floor(self) -> None:
        res = timed_open(self.tmux, self.clients["floor"], "floor", timeout=60)
        self.add("floor", res["seconds"])
        self.add("floor_rss", res["rss_mb"])
        log(f"  empty Textual app {_f(res['seconds'])}, RSS {_f(res['rss_mb'], ' MB', '.0f')}")

    def round_tuimail(self) -> None:
        c = self.clients["tuimail"]
        c.clear_cache()

        def all_rows(t0: float) -> dict:
            t = time_all(c, self.n, self.timeout * 3, t0)
            # not timed: let the sync save UIDNEXT/HIGHESTMODSEQ so the warm open starts synced
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline and not synced(c):
                time.sleep(0.05)
            return {"all_seconds": t}

        cold = self._open(c, "cold", settle=0, after_ready=all_rows)
        warm = self._open(c, "warm")
        c.clear_cache()
        cli, out = c.run_cli("sync", timeout=self.timeout * 5)
        if f"{self.n} new" not in out:
            raise BenchError(f"tuimail sync from an empty store: {out.strip()!r}, expected {self.n} new")
        self.add("tuimail_cold", cold["seconds"])
        self.add("tuimail_cold_all", cold["all_seconds"])
        self.add("tuimail_warm", warm["seconds"])
        self.add("tuimail_rss", warm["rss_mb"])
        self.add("tuimail_warm_out", warm["out"])
        self.add("tuimail_sync_cold", cli)
        log(f"  tuimail cold {_f(cold['seconds'])} (all rows {_f(cold['all_seconds'])}), warm "
            f"{_f(warm['seconds'])}, RSS {_f(warm['rss_mb'], ' MB', '.0f')}; `tuimail sync` cold {_f(cli)}")

    # ------------------------------------------------------------------- bytes on the wire

    def _sync_out(self, expect_flags: int | None = None) -> int:
        c = self.clients["tuimail"]
        (_, out), sessions = new_sessions(self.server, self.user, lambda: c.run_cli("sync"))
        if expect_flags is not None:
            m = re.search(r"(\d+) flag updates", out)
            if not m or int(m.group(1)) != expect_flags:
                raise BenchError(f"expected {expect_flags} flag updates, `tuimail sync` said {out.strip()!r}")
        return sessions[0][1]

    def bytes_noop(self) -> None:
        self._sync_out()  # absorb anything left from the rounds
        self.d["noop_out"] = [self._sync_out(expect_flags=0) for _ in range(3)]
        log(f"{self.n}: no-change resync {self.d['noop_out']} B")

    def bytes_flags(self) -> None:
        ks = [1, 100] + ([10_000] if self.n >= 100_000 else [])
        self.d["flag_out"] = {}
        for k in ks:
            uids, _ = new_sessions(self.server, self.user, lambda k=k: change_flags(self.user, k, add=True))
            self.d["flag_out"][k] = self._sync_out(expect_flags=k)
            new_sessions(self.server, self.user,
                         lambda k=k, uids=uids: change_flags(self.user, k, add=False, uids=uids))
            self._sync_out(expect_flags=k)  # back to the starting state (not measured)
            log(f"{self.n}: resync after {k} flag changes {self.d['flag_out'][k]} B")

    def bytes_open_big(self) -> None:
        from tuimail.config.load import load_config
        from tuimail.backends.imap.service import open_connection
        c = self.clients["tuimail"]
        account = load_config(c.config).account("bench")

        def baseline():  # log in and select, as the reader does before its fetches
            conn = open_connection(account)
            try:
                conn.select("INBOX", readonly=True)
            finally:
                conn.close()

        uid = self.folder.big_uids[-1]
        samples = []
        for _ in range(3):
            _, base = new_sessions(self.server, self.user, baseline)
            shutil.rmtree(c.xdg["XDG_CACHE_HOME"] / "tuimail", ignore_errors=True)
            (_, text), opened = new_sessions(self.server, self.user, lambda: c.run_cli("read", "INBOX", str(uid)))
            if "capture-" not in text:
                raise BenchError(f"`tuimail read INBOX {uid}` does not list the big attachment")
            samples.append(opened[0][1] - base[0][1])
        self.d["open_big"] = {"uid": uid, "bytes": sorted(samples)[1], "samples": samples,
                              "text_bytes": self.folder.big_text_bytes}
        log(f"{self.n}: open the 2 MB-attachment message: {samples} B (text part {self.folder.big_text_bytes} B)")

    # --------------------------------------------------------------------------- probes

    def _probe(self, client, *args: str, timeout: float = 900) -> dict:
        env = {**{k: v for k, v in os.environ.items() if not k.startswith("XDG_")}, **client.env()}
        try:
            r = subprocess.run([sys.executable, "-m", "tests.bench.probes", *args], env=env, cwd=str(REPO),
                               capture_output=True, text=True, timeout=timeout)
        except subprocess.TimeoutExpired:
            raise BenchError(f"probe {args[0]} took more than {timeout:.0f} s") from None
        if r.returncode != 0 or not r.stdout.strip():
            raise BenchError(f"probe {args[0]} exited {r.returncode}: {(r.stderr or r.stdout).strip()[-400:]}")
        return json.loads(r.stdout.strip().splitlines()[-1])

    def keys(self) -> None:
        c = self.clients["tuimail"]
        self.d["keys"] = self._probe(c, "keys", str(c.config), str(self.n))
        probe = Tuimail(self.scratch / "during-sync", self.folder, self.server.imap_port)
        probe.clear_cache()
        busy = self._probe(probe, "keys", str(probe.config), str(self.n), "--during-sync")
        self.d["keys"]["during_sync"] = busy["during_sync"]
        self.d["keys"]["during_sync_rows"] = [busy.get("rows_at_start"), busy.get("rows_at_end")]
        log(f"{self.n}: key->repaint {self.d['keys']['at_rest']}, during sync {busy['during_sync']}")

    def wire(self) -> None:
        c = self.clients["tuimail"]
        self.d["wire"] = self._probe(c, "wire", str(c.config), str(self.server.imap_port))
        log(f"{self.n}: key (flag) -> command on the wire {self.d['wire']['key_to_wire']}, commands per action "
            f"{self.d['wire']['per_action']} {self.d['wire']['commands']}")

    def stall(self) -> None:
        """F, N and j pressed during a cold fill: the longest time the UI thread was blocked."""
        probe = Tuimail(self.scratch / "stall", self.folder, self.server.imap_port)
        probe.clear_cache()
        self.d["stall"] = res = self._probe(probe, "stall", str(probe.config), str(self.n))
        log(f"{self.n}: UI stall pressing F/N/j during a cold fill: loop lateness {res['loop_late']}, "
            f"flag handlers {res['handlers']} ({res['keys']} keys)")

    def limit(self) -> None:
        """`l ~f NAME` on the INBOX, tuimail against neomutt (issue #13; tests/bench/limit_bench.py)."""
        from .limit_bench import limit_probe
        self.d["limit"] = res = limit_probe(self.server, self.tmux, self.folder, self.scratch, rounds=self.rounds)
        log(f"{self.n}: l {res['pattern']}: tuimail {res['tuimail_median_s']} s, neomutt {res['neomutt_median_s']} s "
            f"(ratio {res['ratio']})")

    def idle(self) -> None:
        c, u = self.clients["tuimail"], self.user
        self.d["idle_dovecot"] = raw_idle_latency(u)
        self.d["idle"] = self._probe(c, "idle", str(c.config), str(self.server.imap_port), u.name, u.password)
        log(f"{self.n}: IDLE {self.d['idle']}; Dovecot alone (raw client) {self.d['idle_dovecot']}")


def time_all(client: Tuimail, n: int, timeout: float, t0: float) -> float:
    deadline = time.monotonic() + timeout
    while True:
        if client.stored_rows() >= n:
            return time.monotonic() - t0
        if time.monotonic() > deadline:
            raise BenchError(f"tuimail's store held {client.stored_rows()} of {n} rows after {timeout:.0f} s")
        time.sleep(0.05)


def synced(client: Tuimail) -> bool:
    import sqlite3
    try:
        db = sqlite3.connect(f"file:{client.store}?mode=ro", uri=True, timeout=1)
        try:
            row = db.execute("SELECT highestmodseq FROM folders WHERE name = 'INBOX'").fetchone()
        finally:
            db.close()
        return bool(row and row[0])
    except sqlite3.Error:
        return False


def _interrupt(signum, frame):
    raise KeyboardInterrupt


def parse_args(argv):
    p = argparse.ArgumentParser(prog="python -m tests.bench.run", description=__doc__.split("\n\n")[0])
    p.add_argument("--sizes", default="5000,20000,100000", help="folder sizes (default: %(default)s)")
    p.add_argument("--rounds", type=int, default=5, help="rounds per size, clients alternated "
                   "(default: 5; neomutt's cold open alone varies 5.7-9.1 s at 100k here)")
    p.add_argument("--out", default="tests/bench/RESULTS.md", help="the markdown report (default: %(default)s)")
    p.add_argument("--quick", action="store_true", help="5000 messages, 1 round: for trying it out")
    p.add_argument("--root", default=None, help="where Dovecot and the client caches live "
                   "(default: /dev/shm when roomy, else /var/tmp; $TUIMAIL_TEST_TMPDIR)")
    p.add_argument("--only", default=",".join(sections.SECTIONS),
                   help="the sections to run, comma-separated (default: %(default)s)")
    p.add_argument("--pop3-n", type=int, default=5000, help="POP3 mailbox size (default: %(default)s)")
    p.add_argument("--search-n", type=int, default=None, help="cached headers searched (default: 100000; "
                   "--quick: 10000)")
    p.add_argument("--search-bodies", type=int, default=None, help="cached bodies (default: 10000; --quick: 1000)")
    p.add_argument("--search-fill-n", type=int, default=None, help="the cold fill with and without the "
                   "indexer (default: 100000; --quick: 5000)")
    p.add_argument("--jmap-n", type=int, default=None, help="Cyrus INBOX size (default: 20000; --quick: 2000)")
    a = p.parse_args(argv)
    quick = a.quick
    if a.quick:
        a.sizes, a.rounds = "5000", 1
    a.sizes = [int(x) for x in a.sizes.split(",") if x.strip()]
    a.only = [x.strip() for x in a.only.split(",") if x.strip()]
    unknown = [x for x in a.only if x not in sections.SECTIONS]
    if unknown:
        p.error(f"--only {','.join(unknown)}: the sections are {','.join(sections.SECTIONS)}")
    for name, full, small in (("search_n", 100_000, 10_000), ("search_bodies", 10_000, 1000),
                              ("search_fill_n", 100_000, 5000), ("jmap_n", 20_000, 2000)):
        if getattr(a, name) is None:
            setattr(a, name, small if quick else full)
    return a


def compile_bytecode() -> None:
    """DESIGN §4 measures with Python's bytecode compiled. An editable install never writes it,
    and with PYTHONDONTWRITEBYTECODE set (as on these machines) the interpreter does not either,
    so every start would compile tuimail's ~60 modules again (~0.1 s) while Textual's own
    bytecode, written by pip, is used: write ours like an installed wheel would have it."""
    import compileall

    compileall.compile_dir(str(REPO / "tuimail"), quiet=1)


def main(argv: list[str] | None = None) -> int:
    a = parse_args(sys.argv[1:] if argv is None else argv)
    # SIGTERM/SIGHUP unwind like Ctrl-C, so the finally blocks stop Dovecot and tmux
    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, _interrupt)
    os.chdir(REPO)
    ensure_clients()
    compile_bytecode()
    root = a.root or default_root()
    fs = "tmpfs (/dev/shm)" if root.startswith("/dev/shm") else root
    meta = {"date": datetime.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z"), "machine": machine(),
            "load_start": loadavg(),
            "command": ("make bench: " if os.environ.get("MAKELEVEL") else "") + " ".join(
                [".venv/bin/python -m tests.bench.run", *(sys.argv[1:] if argv is None else argv)]),
            "versions": versions(), "fs": fs,
            "notes": ["Absolute times depend on the machine's load (every size records how fast a raw FETCH "
                      "was right then, to compare with DESIGN §3); the targets are ratios between clients "
                      "measured in the same rounds."]}
    out = Path(a.out)
    results: dict = {}
    extra: dict = {}  # the other sections' results (sections.py)
    scratch = Path(tempfile.mkdtemp(prefix="tuimail-bench-", dir=root))
    atexit.register(shutil.rmtree, scratch, True)
    server = tmux = None
    code = 0
    try:
        server = DovecotServer(root=root)
        tmux = Tmux()
        for n in (a.sizes if "imap" in a.only else ()):
            bench = SizeBench(n, a.rounds, server, tmux, scratch)
            try:
                results[str(n)] = bench.run()
            except BenchError as exc:
                log(f"{n}: FAILED: {exc}")
                meta["notes"].append(f"{n:,} messages: the run failed: {exc}")
                results[str(n)] = bench.d
                code = 1
            finally:
                if getattr(bench, "user", None) is not None:
                    server.remove_user_data(bench.user)  # the maildir: 100k messages are ~0.4 GB
                shutil.rmtree(scratch / str(n), ignore_errors=True)
            write(out, meta, results, extra)
        rounds = min(a.rounds, 3)
        # (POP3's figures are a few tenths of a second each: 3 rounds left a median at the mercy of
        # one noisy round on a shared machine; 5 cost ~10 s more)
        runs = {"pop3": lambda: sections.pop3(server, tmux, scratch, a.pop3_n, min(a.rounds, 5), log),
                "search": lambda: sections.search(server, a.search_n, a.search_bodies, a.search_fill_n,
                                                  min(a.rounds, 4), log),
                "jmap": lambda: sections.jmap(a.jmap_n, rounds, log)}
        for name in sections.SECTIONS[1:]:
            if name in a.only:
                log(f"section {name}")
                extra[name] = runs[name]()
                write(out, meta, results, extra)
    except KeyboardInterrupt:
        meta["notes"].append("interrupted")
        code = 130
    finally:
        if tmux is not None:
            tmux.close()
        if server is not None:
            server.stop()
        meta["load_end"] = loadavg()
        write(out, meta, results, extra)
    log(f"wrote {out}")
    return code


def write(out: Path, meta: dict, results: dict, extra: dict | None = None) -> None:
    """The raw samples first (they survive a bug in the report), then the markdown."""
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".json").write_text(json.dumps({"meta": meta, "results": results, "sections": extra or {}},
                                                   indent=1) + "\n")
    try:
        out.write_text(report.render(meta, results, extra))
    except Exception as exc:  # keep measuring: the json has everything
        log(f"could not render {out}: {exc.__class__.__name__}: {exc}")


if __name__ == "__main__":
    sys.exit(main())
