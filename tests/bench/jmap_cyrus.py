"""JMAP vs IMAP on the same Cyrus: cold first screen and all headers of one N-message INBOX
(issue 15: "JMAP on Cyrus, 20k messages: cold first screen <= the IMAP path's on the same Cyrus").

    .venv/bin/python -m tests.bench.jmap_cyrus [N=20000] [ROUNDS=3]

TUIMAIL_BENCH_JMAP_FIRST=300 makes JMAP's first window as large as the IMAP path's (300 rows; its
own default is backends/jmap/engine.py FIRST_WINDOW) for a like-for-like first screen.

One Cyrus (tests/support/cyrus.py, `make cyrus`), one user, N messages appended by IMAP MULTIAPPEND.
Each measurement is a fresh Python process with an empty store (XDG dirs on /dev/shm) that makes
the account's service through the registry (kind "imap" or "jmap") and starts it, as the app
does: "first screen" = start() until the first window of INBOX rows is committed (the event the
UI draws on), "all" = until the service reports idle (every header stored). The kinds alternate;
the median of the rounds is printed with every run.
"""

from __future__ import annotations

import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _message(i: int) -> bytes:
    return (f"From: Sender {i % 997} <s{i % 997}@example.org>\r\nTo: me@localhost\r\n"
            f"Subject: bench message {i} about topic {i % 113}\r\nMessage-ID: <b{i}@example.org>\r\n"
            f"Date: Mon, 01 Jan 2024 {i // 3600 % 24:02d}:{i // 60 % 60:02d}:{i % 60:02d} +0000\r\n"
            f"MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n"
            f"body of message {i}\r\n" + "some text to make it a realistic size\r\n" * 20).encode()


def fill(user, n: int) -> float:
    t0 = time.monotonic()
    with user.client(timeout=300) as c:
        for start in range(0, n, 500):
            msgs = [{"msg": _message(i), "flags": (b"\\Seen",) if i % 3 else (),
                     "date": datetime.fromtimestamp(1_700_000_000 + i * 60, UTC)}
                    for i in range(start, min(n, start + 500))]
            c.multiappend("INBOX", msgs)
    return time.monotonic() - t0


def one(kind: str, config: str) -> dict:
    """Runs in the measuring process: start the service, time the first window and the idle."""
    import threading

    from tuimail.backends.registry import create_service
    from tuimail.config.load import load_config
    from tuimail.core.events import RowsChanged, SyncState

    cfg = load_config(config)
    if kind == "jmap" and os.environ.get("TUIMAIL_BENCH_JMAP_FIRST"):
        import tuimail.backends.jmap.engine as engine
        engine.FIRST_WINDOW = int(os.environ["TUIMAIL_BENCH_JMAP_FIRST"])
    first = threading.Event()
    idle = threading.Event()
    times: dict = {}

    def on_event(e) -> None:
        if isinstance(e, RowsChanged) and e.added and not first.is_set():
            times["first"] = time.monotonic() - t0
            times["first_rows"] = len(e.added)
            first.set()
        elif isinstance(e, SyncState) and e.state == "idle" and first.is_set() and not idle.is_set():
            times["all"] = time.monotonic() - t0
            idle.set()
        elif isinstance(e, SyncState) and e.state == "error":
            times["error"] = e.error

    t0 = time.monotonic()
    svc = create_service(cfg, cfg.account("bench"), on_event)
    svc.start()
    idle.wait(600)
    svc.stop()
    return times


def measure(kind: str, user) -> dict:
    d = Path(tempfile.mkdtemp(dir="/dev/shm" if os.path.isdir("/dev/shm") else None))
    try:
        cfg = d / "config.toml"
        if kind == "jmap":
            text = (f'[accounts.bench]\nkind = "jmap"\nurl = "{user.session_url}"\nusername = "{user.name}"\n'
                    f'password = "{user.password}"\n')
        else:
            text = user.config_toml("bench", idle=False)
        cfg.write_text(text)
        cfg.chmod(0o600)
        env = {**os.environ, "XDG_CONFIG_HOME": str(d / "c"), "XDG_DATA_HOME": str(d / "d"),
               "XDG_CACHE_HOME": str(d / "k"), "XDG_STATE_HOME": str(d / "s"), "PYTHONPATH": str(ROOT)}
        p = subprocess.run([sys.executable, "-m", "tests.bench.jmap_cyrus", "--one", kind, str(cfg)], cwd=ROOT,
                           env=env, capture_output=True, text=True, timeout=900)
        if p.returncode != 0:
            raise RuntimeError(f"{kind} run failed: {p.stderr[-2000:]}")
        return json.loads(p.stdout.strip().splitlines()[-1])
    finally:
        shutil.rmtree(d, ignore_errors=True)


def noop_resync(user) -> dict:
    """A JMAP account synced once, then synced again with nothing changed: the HTTP requests and
    bytes (sent + received, headers included) of the second sync (target: one request < 2 KB)."""
    d = Path(tempfile.mkdtemp(dir="/dev/shm" if os.path.isdir("/dev/shm") else None))
    old = {k: os.environ.get(k) for k in ("XDG_CONFIG_HOME", "XDG_DATA_HOME", "XDG_CACHE_HOME", "XDG_STATE_HOME")}
    try:
        for k in old:
            os.environ[k] = str(d / k.lower())
        from tuimail import paths
        from tuimail.backends.jmap.engine import Engine
        from tuimail.backends.jmap.service import connect
        from tuimail.backends.registry import create_service
        from tuimail.config.load import load_config
        from tuimail.store import Store
        cfg_path = d / "config.toml"
        cfg_path.write_text(f'[accounts.bench]\nkind = "jmap"\nurl = "{user.session_url}"\n'
                            f'username = "{user.name}"\npassword = "{user.password}"\n')
        cfg_path.chmod(0o600)
        cfg = load_config(cfg_path)
        acc = cfg.account("bench")
        svc = create_service(cfg, acc)
        try:
            svc.sync_now()
        finally:
            svc.stop()
        samples = []
        with Store(paths.account_store_path("bench")) as store:
            for _ in range(3):
                client = connect(acc, lambda: user.password)
                try:
                    engine = Engine(acc, store, client)
                    mark = client.mark()
                    engine.sync_all()
                    ex = client.since(mark)
                finally:
                    client.close()
                samples.append({"requests": len(ex), "bytes": sum(e.sent + e.received for e in ex)})
        return {"samples": samples, "requests": max(x["requests"] for x in samples),
                "bytes": statistics.median(x["bytes"] for x in samples)}
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
        shutil.rmtree(d, ignore_errors=True)


def measure_section(n: int, rounds: int, log=print) -> dict:
    """`make bench`'s "jmap" section (run.py): the medians of `rounds` cold starts of each kind on
    one n-message Cyrus INBOX, the no-change resync, and the push latency where this module has
    a `push_latency(n=..)` (helper H5's: its own Cyrus and relay). Raises CyrusNotInstalled when
    Cyrus is not there."""
    from tests.support.cyrus import CyrusServer
    server = CyrusServer(root="/dev/shm" if os.path.isdir("/dev/shm") else None)
    out: dict = {"n": n, "rounds": rounds, "errors": []}
    try:
        user = server.add_user()
        out["fill_seconds"] = fill(user, n)
        log(f"jmap {n}: Cyrus filled in {out['fill_seconds']:.1f} s")
        results: dict[str, list[dict]] = {"imap": [], "jmap": []}
        for r in range(rounds):
            for kind in (("imap", "jmap") if r % 2 == 0 else ("jmap", "imap")):
                got = measure(kind, user)
                results[kind].append(got)
                log(f"  {kind}: first screen {got.get('first', float('nan')):.3f} s, all headers "
                    f"{got.get('all', float('nan')):.2f} s{' error: ' + got['error'] if 'error' in got else ''}")
        out["samples"] = results
        for kind, runs in results.items():
            for key in ("first", "all"):
                xs = [x[key] for x in runs if key in x]
                out[f"{kind}_{key}"] = statistics.median(xs) if xs else None
        try:
            out["noop"] = noop_resync(user)
            log(f"jmap {n}: no-change resync {out['noop']['samples']}")
        except Exception as exc:  # (reported; the other figures stand)
            out["errors"].append(f"no-change resync: {exc.__class__.__name__}: {exc}")
    finally:
        server.stop()
    push = globals().get("push_latency")
    if callable(push):  # (after this Cyrus stopped: it starts its own)
        try:
            out["push"] = push(n=min(n, 1000))
            log(f"jmap: push latency {out['push']}")
        except Exception as exc:
            out["errors"].append(f"push latency: {exc.__class__.__name__}: {exc}")
    return out


def main(argv: list[str]) -> int:
    if argv[:1] == ["--one"]:
        print(json.dumps(one(argv[1], argv[2])))
        return 0
    n = int(argv[0]) if argv else 20000
    rounds = int(argv[1]) if len(argv) > 1 else 3
    from tests.support.cyrus import CyrusServer
    server = CyrusServer(root="/dev/shm" if os.path.isdir("/dev/shm") else None)
    try:
        user = server.add_user()
        print(f"Cyrus: {n} messages appended in {fill(user, n):.1f} s", flush=True)
        results: dict[str, list[dict]] = {"imap": [], "jmap": []}
        for r in range(rounds):
            for kind in ("imap", "jmap"):
                got = measure(kind, user)
                results[kind].append(got)
                print(f"round {r + 1} {kind}: first screen {got.get('first', float('nan')):.3f} s "
                      f"({got.get('first_rows')} rows), all headers {got.get('all', float('nan')):.2f} s"
                      f"{' error: ' + got['error'] if 'error' in got else ''}", flush=True)
        print(f"\n| {n} messages on Cyrus 3.6, loopback | IMAP | JMAP | JMAP/IMAP |\n|---|---|---|---|")
        for key, label in (("first", "cold first screen (s)"), ("all", "all headers (s)")):
            med = {k: statistics.median(x[key] for x in v if key in x) for k, v in results.items()}
            print(f"| {label} | {med['imap']:.3f} | {med['jmap']:.3f} | {med['jmap'] / med['imap']:.2f} |")
    finally:
        server.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
