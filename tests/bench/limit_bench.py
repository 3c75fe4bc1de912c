"""`l ~f NAME` on a big INBOX: tuimail against neomutt, in tmux at 160x45 (issue #13).

    .venv/bin/python -m tests.bench.limit_bench [--n 5000] [--rounds 3]

The time measured is from the Enter that ends the pattern until the limited list is drawn: for
tuimail, its status line showing `limit: ~f NAME (M of N)` (drawn in the same frame as the limited
list); for neomutt, its status line showing `Msgs:M/N` (the limited count). Both clients first open
the INBOX with their cache warm (tuimail: a store filled by `tuimail sync`; neomutt: a header cache
filled by one open before the timed ones), settle a second, then take the same pattern. NAME is a
sender's surname of middling frequency in the generated folder, so that both show the same few
percent of the folder.

`limit_probe(server, tmux, folder, scratch, rounds)` is the entry point for tests/bench/run.py
(a SizeBench has all four); it returns the samples and the median ratio tuimail / neomutt, and
`tuimail_inside_ms`: the part of each tuimail sample spent inside the app from the prompt's Enter to
the limited list applied (TUIMAIL_TRACE), the rest being input, the frame and the terminal.
"""

from __future__ import annotations

import argparse
import collections
import json
import re
import shutil
import sqlite3
import sys
import tempfile
import time
from pathlib import Path

from .clients import REPO, Client, Neomutt, Tmux, Tuimail
from .measure import BenchError, build_folder

TIMEOUT = 60.0


def pick_name(store: Path, n: int) -> tuple[str, int]:
    """A lower-case sender surname matched by 1-5 % of the INBOX (the closest to 2 %), and how
    many From fields hold it (a substring count: what `~f` matches, case-insensitively)."""
    db = sqlite3.connect(f"file:{store}?mode=ro", uri=True)
    try:
        froms = [r[0] or "" for r in db.execute(
            "SELECT m.from_ FROM messages m JOIN folders f ON f.id = m.folder_id WHERE f.name = 'INBOX'"
            " AND m.hidden = 0")]
    finally:
        db.close()
    words: collections.Counter[str] = collections.Counter()
    for f in froms:
        name = f.split("<", 1)[0].strip().strip('"')
        parts = re.findall(r"[a-z]{4,}", name.lower())
        if len(parts) >= 2:
            words[parts[-1]] += 1
    if not words:
        raise BenchError("no sender names in the generated folder")
    target = max(1, n // 50)
    lowered = [f.lower() for f in froms]
    # what ~f matches is a substring of the whole field (the address too): counted as such
    real = {w: sum(1 for f in lowered if w in f) for w, _c in words.most_common(60)}
    name = min(real, key=lambda w: (abs(real[w] - target), w))
    return name, real[name]


def _wait(tmux: Tmux, session: str, ready, what: str, timeout: float = TIMEOUT) -> list[str]:
    deadline = time.monotonic() + timeout
    while True:
        lines = tmux.screen(session)
        if ready(lines):
            return lines
        if time.monotonic() > deadline:
            tail = "\n".join(ln for ln in lines if ln.strip())[-400:]
            raise BenchError(f"{what}: not seen after {timeout:.0f} s; screen:\n{tail}")
        if tmux.pane_pid(session) is None:
            raise BenchError(f"{what}: the client exited")
        time.sleep(0.005)


def timed_limit(tmux: Tmux, client: Client, session: str, pattern: str, limited, *, settle: float = 1.0) -> tuple[
        float, list[str]]:
    """Open `client`, wait for its first screen and `settle` s, type `l PATTERN`; seconds from the
    Enter until limited(lines) holds, and that screen."""
    tmux.start(session, client.argv(), client.env(), cwd=str(REPO))
    try:
        tmux.go(session)
        _wait(tmux, session, client.ready, f"{client.name} first screen")
        time.sleep(settle)
        tmux.keys(session, "l")
        time.sleep(0.3)
        tmux.keys(session, "-l", pattern)
        _wait(tmux, session, lambda ls: any(pattern in ln for ln in ls), f"{client.name} prompt", 10)
        t0 = time.monotonic()
        tmux.keys(session, "Enter")
        lines = _wait(tmux, session, limited, f"{client.name} limited list")
        return time.monotonic() - t0, lines
    finally:
        if tmux.pane_pid(session) is not None:
            client.quit(tmux, session)
        tmux.kill(session)


class TracedTuimail(Tuimail):
    """tuimail with TUIMAIL_TRACE on (tuimail/trace.py): where its time goes inside the app."""

    def __init__(self, *a):
        super().__init__(*a)
        self.trace = self.dir / "trace.txt"

    def env(self) -> dict[str, str]:
        return {**super().env(), "TUIMAIL_TRACE": str(self.trace)}

    def inside_ms(self) -> float | None:
        """The last limit's time in the app: from the prompt's Enter to the limited list applied."""
        if not self.trace.exists():
            return None
        start = end = None
        for line in self.trace.read_text().splitlines():
            t, _thread, event = line.split(" ", 2)
            if event == "prompt submitted":
                start, end = float(t), None
            elif event == "limit applied" and start is not None:
                end = float(t)
        return (end - start) * 1000 if start is not None and end is not None else None


def _median(xs: list[float]) -> float | None:
    return sorted(xs)[len(xs) // 2] if xs else None


def limit_probe(server, tmux: Tmux, folder, scratch: Path, rounds: int = 3) -> dict:
    """`l ~f NAME` in both clients, `rounds` times each (see the module doc)."""
    n, port = folder.n, server.imap_port
    tui = TracedTuimail(scratch / "limit", folder, port)
    mutt = Neomutt(scratch / "limit", folder, port)
    tui.clear_cache()
    tui.run_cli("sync", timeout=60 + n / 100)
    name, expected = pick_name(tui.store, n)
    pattern = f"~f {name}"
    mine = re.compile(rf"limit: {re.escape(pattern)} \(([\d,]+) of ([\d,]+)\)")
    theirs = re.compile(rf"Msgs:(\d+)/{n}\b")
    out: dict = {"n": n, "pattern": pattern, "expected": expected, "tuimail_s": [], "neomutt_s": [],
                 "tuimail_inside_ms": [],
                 "tuimail_shown": None, "neomutt_shown": None}
    mutt.clear_cache()  # one open fills the header cache: the timed ones are warm
    timed_limit(tmux, mutt, "limit-neomutt-fill", pattern, lambda ls: any(theirs.search(x) for x in ls))
    for r in range(rounds):
        for client in ((tui, mutt) if r % 2 == 0 else (mutt, tui)):
            if client is tui:
                dt, lines = timed_limit(tmux, tui, f"limit-tuimail-{r}", pattern,
                                        lambda ls: any(mine.search(x) for x in ls))
                m = next(mine.search(x) for x in lines if mine.search(x))
                out["tuimail_shown"] = int(m.group(1).replace(",", ""))
                out["tuimail_s"].append(dt)
                out["tuimail_inside_ms"].append(tui.inside_ms())
            else:
                dt, lines = timed_limit(tmux, mutt, f"limit-neomutt-{r}", pattern,
                                        lambda ls: any(theirs.search(x) for x in ls))
                m = next(theirs.search(x) for x in lines if theirs.search(x))
                out["neomutt_shown"] = int(m.group(1))
                out["neomutt_s"].append(dt)
    t, nm = _median(out["tuimail_s"]), _median(out["neomutt_s"])
    out["tuimail_median_s"], out["neomutt_median_s"] = t, nm
    out["ratio"] = t / nm if t is not None and nm else None
    return out


def main(argv: list[str] | None = None) -> int:
    from tests.support.dovecot import DovecotServer, default_root

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--n", type=int, default=5000, help="messages in the INBOX (default 5000)")
    ap.add_argument("--rounds", type=int, default=3)
    a = ap.parse_args(argv)
    for prog in ("neomutt", "tmux"):
        if shutil.which(prog) is None:
            print(f"limit_bench: {prog} is not installed", file=sys.stderr)
            return 2
    root = default_root()
    scratch = Path(tempfile.mkdtemp(prefix="tuimail-limit-", dir=root))
    server = tmux = None
    try:
        server = DovecotServer(root=root)
        tmux = Tmux()
        folder = build_folder(server, a.n)
        try:
            result = limit_probe(server, tmux, folder, scratch, a.rounds)
        finally:
            server.remove_user_data(folder.user)
        print(json.dumps(result, indent=1))
        return 0
    except BenchError as exc:
        print(f"limit_bench: {exc}", file=sys.stderr)
        return 1
    finally:
        if tmux is not None:
            tmux.close()
        if server is not None:
            server.stop()
        shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
