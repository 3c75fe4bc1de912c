"""A cold fill of a generated INBOX from Dovecot with and without the search indexer (issue #13:
the index is built after the fill without slowing it by more than 10 %):

    PYTHONPATH=. .venv/bin/python -m tests.bench.search_fill [--n 100000] [--rounds 2]

Each round syncs the account into a new store twice (order alternated), the engine's
index_search_enabled on and off. Prints per run: the fill (every header committed: the sync
summary's seconds) and the whole sync_all (the fill, then the header index), and the medians.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

from tests.bench.measure import build_folder
from tests.support.dovecot import DovecotServer
from tuimail.backends.imap.engine import Engine
from tuimail.backends.imap.service import open_connection
from tuimail.config.load import load_config
from tuimail.store import BodyCache, Store
from tuimail.store.search import unindexed


def one(account, indexer: bool) -> tuple[float, float, int]:
    d = Path(tempfile.mkdtemp(dir="/dev/shm", prefix="tuimail-fill-"))
    store, bodies = Store(d / "store.db"), BodyCache(d / "cache.db")
    conn = open_connection(account)
    try:
        engine = Engine(account, store, conn, bodies)
        engine.index_search_enabled = indexer
        engine.negotiate()
        t0 = time.monotonic()
        summary = engine.sync_all()
        total = time.monotonic() - t0
        return summary.seconds, total, unindexed(store)
    finally:
        conn.close()
        store.close()
        bodies.close()
        for p in d.iterdir():
            p.unlink()
        d.rmdir()


def measure(server, n: int, rounds: int, log=print) -> dict:
    """Fill a new user's INBOX with n messages on `server` and time cold fills with and without
    the indexer, alternated; the medians and every sample."""
    user = build_folder(server, n, name=f"searchfill{n}").user
    try:
        d = Path(tempfile.mkdtemp(dir="/dev/shm" if Path("/dev/shm").is_dir() else None))
        cfg = d / "config.toml"
        cfg.write_text(user.config_toml("bench", port=user.imap_port))
        cfg.chmod(0o600)
        account = load_config(cfg).account("bench")
        one(account, False)  # warm-up (Dovecot's caches), not counted
        runs: dict[str, list[tuple[float, float, int]]] = {"with": [], "without": []}
        for r in range(rounds):
            for label in (("with", "without") if r % 2 == 0 else ("without", "with")):
                got = one(account, label == "with")
                runs[label].append(got)
                log(f"{label:>7} indexer: fill {got[0]:.2f} s, sync_all {got[1]:.2f} s, unindexed after {got[2]}")
        out: dict = {k: {"fill_s": statistics.median(x[0] for x in v), "sync_all_s": statistics.median(x[1] for x in v)}
                     for k, v in runs.items()}
        out["samples"] = runs
        cfg.unlink()
        d.rmdir()
        return out
    finally:
        server.remove_user_data(user)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=100_000)
    ap.add_argument("--rounds", type=int, default=2)
    args = ap.parse_args(argv)
    server = DovecotServer(root="/dev/shm")
    try:
        out = measure(server, args.n, args.rounds, log=lambda m: print(m, flush=True))
        w, wo = out["with"], out["without"]
        print(f"median fill: with {w['fill_s']:.2f} s, without {wo['fill_s']:.2f} s"
              f" ({(w['fill_s'] / wo['fill_s'] - 1) * 100:+.1f} %); sync_all incl. the index: with"
              f" {w['sync_all_s']:.2f} s, without {wo['sync_all_s']:.2f} s")
        print(json.dumps(out))
    finally:
        server.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
