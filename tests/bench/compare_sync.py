"""Cold `tuimail sync` of one generated INBOX, alternating between source trees (e.g. this tree and
a `git worktree add --detach DIR REV` of an older commit), to measure what a change cost.

    .venv/bin/python -m tests.bench.compare_sync 100000 3 "$PWD" /path/to/old-tree

Prints each run and the median per tree. Each tree runs with its own empty store (XDG dirs on
/dev/shm) against the same Dovecot user.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from tests.bench.measure import build_folder
from tests.support.dovecot import DovecotServer


def main(argv: list[str]) -> int:
    n, rounds, trees = int(argv[0]), int(argv[1]), argv[2:]
    server = DovecotServer(root="/dev/shm")
    try:
        user = build_folder(server, n).user
        times: dict[str, list[float]] = {t: [] for t in trees}
        for _ in range(rounds):
            for tree in trees:
                d = Path(tempfile.mkdtemp(dir="/dev/shm"))
                cfg = d / "config.toml"
                cfg.write_text(user.config_toml("bench", port=user.imap_port))
                cfg.chmod(0o600)
                env = {**os.environ, "XDG_CONFIG_HOME": str(d / "c"), "XDG_DATA_HOME": str(d / "d"),
                       "XDG_CACHE_HOME": str(d / "k"), "XDG_STATE_HOME": str(d / "s"), "PYTHONPATH": tree}
                t0 = time.monotonic()
                p = subprocess.run([sys.executable, "-m", "tuimail", "--config", str(cfg), "sync", "INBOX"],
                                   cwd=tree, env=env, capture_output=True, text=True)
                dt = time.monotonic() - t0
                times[tree].append(dt)
                print(f"{tree}: {dt:.2f} s (exit {p.returncode}) {p.stdout.strip()[-100:]}", flush=True)
                shutil.rmtree(d)
        for tree, xs in times.items():
            print(f"median {tree}: {sorted(xs)[len(xs) // 2]:.2f} s")
    finally:
        server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
