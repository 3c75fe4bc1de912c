"""The bench's sections beside the IMAP one (run.py --only imap,pop3,search,jmap): each runs on its
own, and one that cannot be measured here (Cyrus not installed, a server that does not start, a
probe that fails) returns {"not_measured": why} instead of stopping the others.

    pop3    issue #14: a POP3 mailbox on the bench's Dovecot, tuimail vs neomutt (pop3_bench.py)
    search  issue #13: local full-text search over cached headers and bodies (search_bench.py, its
            own process) and the index build's cost to a cold fill (search_fill.py, on the Dovecot);
            beside them, the header summary's speed against email compat32 (header_speed.py)
    jmap    issue #15: JMAP vs IMAP on one Cyrus (jmap_cyrus.py)
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import traceback
from pathlib import Path

from .clients import REPO
from .measure import BenchError

SECTIONS = ("imap", "pop3", "search", "jmap")


def _guard(name: str, fn, log) -> dict:
    try:
        return fn()
    except KeyboardInterrupt:
        raise
    except Exception as exc:  # noqa: BLE001 — any failure is reported in the section, never stops the run
        why = f"{exc.__class__.__name__}: {exc}".strip()
        log(f"{name}: not measured: {why.splitlines()[0][:300]}")
        if not isinstance(exc, BenchError):
            log(traceback.format_exc(limit=4))
        return {"not_measured": why.splitlines()[0][:300]}


def pop3(server, tmux, scratch: Path, n: int, rounds: int, log) -> dict:
    def run() -> dict:
        from .pop3_bench import Pop3Bench
        bench = Pop3Bench(server, tmux, scratch, n, rounds)
        try:
            return bench.run()
        finally:
            if getattr(bench, "folder", None) is not None:
                server.remove_user_data(bench.folder.user)
    return _guard("pop3", run, log)


def search(server, n: int, bodies: int, fill_n: int, rounds: int, log) -> dict:
    """search_bench in a process of its own (it builds stores of n rows), then search_fill on the
    bench's Dovecot."""
    def run() -> dict:
        out: dict = {"n": n, "bodies": bodies, "fill_n": fill_n}
        with tempfile.TemporaryDirectory(prefix="tuimail-search-bench-",
                                         dir="/dev/shm" if os.path.isdir("/dev/shm") else None) as d:
            env = {**os.environ, "PYTHONPATH": str(REPO)}
            r = subprocess.run([sys.executable, "-m", "tests.bench.search_bench", "--n", str(n), "--bodies",
                                str(bodies), "--rounds", "15", "--dir", d], cwd=str(REPO), env=env,
                               capture_output=True, text=True, timeout=3600)
        if r.returncode != 0 or not r.stdout.strip():
            raise BenchError(f"search_bench exited {r.returncode}: {(r.stderr or r.stdout).strip()[-300:]}")
        for line in r.stdout.strip().splitlines()[:-1]:
            log(f"  {line}")
        out.update(json.loads(r.stdout.strip().splitlines()[-1]))
        try:
            from .search_fill import measure
            out["fill"] = measure(server, fill_n, rounds, log=lambda m: log(f"  {m}"))
        except Exception as exc:  # noqa: BLE001 — the query figures stand without it
            out["fill"] = {"not_measured": f"{exc.__class__.__name__}: {exc}"[:300]}
        from . import header_speed
        out["header_summary"] = header_speed.measure()
        log(f"  {header_speed.line(out['header_summary'])}")
        return out
    return _guard("search", run, log)


def jmap(n: int, rounds: int, log) -> dict:
    def run() -> dict:
        from .jmap_cyrus import measure_section
        return measure_section(n, rounds, log=log)
    return _guard("jmap", run, log)
