"""Measurements that run inside a fresh Python process (so Textual and the sync threads never share
the orchestrator's interpreter). The orchestrator sets XDG_* to the client's scratch dirs and reads
one JSON object from stdout.

    python -m tests.bench.probes floor TEXT                      # empty Textual app (run in tmux)
    python -m tests.bench.probes keys CONFIG N [--during-sync] [--presses 200]
    python -m tests.bench.probes idle CONFIG PORT USER PASSWORD [--samples 10]
    python -m tests.bench.probes wire CONFIG PORT [--presses 20]
    python -m tests.bench.probes stall CONFIG N [--every 0.03]   # F/N/j during a cold fill
"""

from __future__ import annotations

import argparse
import asyncio
import json
import queue
import sys
import time


def floor(text: str) -> int:
    from textual.app import App
    from textual.widgets import Static

    class Floor(App):
        def compose(self):
            yield Static(text)

    Floor().run()
    return 0


def _stats(ms: list[float]) -> dict:
    xs = sorted(ms)
    if not xs:
        return {"n": 0}
    return {"n": len(xs), "median_ms": xs[len(xs) // 2], "p95_ms": xs[min(len(xs) - 1, int(0.95 * len(xs)))],
            "max_ms": xs[-1]}


def keys(config_path: str, n: int, presses: int, during_sync: bool) -> dict:
    """Time from a `j` reaching the app to the frame that shows the moved cursor (Textual's
    post-display hook fires after the refreshed lines were written), 160x45, over the store."""
    from textual import events

    from tuimail import paths
    from tuimail.config.load import load_config
    from tuimail.store.store import Store
    from tuimail.backends.registry import create_service
    from tuimail.ui.app import TuimailApp
    from tuimail.ui.bridge import EventBridge
    from tuimail.ui.widgets.header_list import HeaderList

    config = load_config(config_path)
    account = config.account(None)
    bridge = EventBridge()
    store = Store(paths.account_store_path(account.name))
    svc = create_service(config, account, bridge, offline=not during_sync)
    app = TuimailApp(config, {account.name: store}, {account.name: svc}, offline=not during_sync,
                     event_sink=bridge)
    shown = asyncio.Event()
    app.post_display_hook = shown.set
    at_rest: list[float] = []
    syncing: list[float] = []
    in_view: list[float] = []  # the cursor moved inside the visible rows: two lines repainted
    scrolled: list[float] = []  # the list scrolled by one row: every visible line repainted
    out: dict = {}

    async def go():
        async with app.run_test(size=(160, 45)) as pilot:
            svc.start()
            want_rows = 45 if during_sync else n
            t0 = time.monotonic()
            while True:
                hls = list(app.screen.query(HeaderList))
                if hls and len(hls[0].uids) >= want_rows and hls[0].size.height > 0:
                    break
                if time.monotonic() - t0 > 120:
                    raise SystemExit(f"header list never showed {want_rows} rows")
                await pilot.pause(0.02)
            hl = hls[0]
            hl.focus()
            await pilot.pause(0.2)
            out["rows_at_start"] = len(hl.uids)
            for _ in range(presses):
                busy = during_sync and svc.state.state in ("connecting", "syncing")
                if during_sync and not busy:
                    break
                want = hl.cursor + 1
                top = hl.scroll_offset.y
                shown.clear()
                t = time.perf_counter()
                app._driver.send_message(events.Key("j", None))
                while True:
                    await asyncio.wait_for(shown.wait(), 10)
                    if hl.cursor >= want:
                        break
                    shown.clear()
                ms = (time.perf_counter() - t) * 1000
                (syncing if busy else at_rest).append(ms)
                if not busy:
                    (in_view if hl.scroll_offset.y == top else scrolled).append(ms)
                await asyncio.sleep(0.02)
            out["rows_at_end"] = len(hl.uids)
            out["cursor"] = hl.cursor

    try:
        asyncio.run(go())
    finally:
        svc.stop()
        store.close()
    out["at_rest"] = _stats(at_rest)
    out["during_sync"] = _stats(syncing)
    out["in_view"] = _stats(in_view)
    out["scrolled"] = _stats(scrolled)
    return out


STALL_TICK = 0.005  # the ticker's period: its lateness is how long the event loop was blocked


def _runq_ms() -> float | None:
    """How long this thread has waited for a CPU so far (Linux schedstat), or None."""
    try:
        with open("/proc/thread-self/schedstat") as f:
            return int(f.read().split()[1]) / 1e6
    except (OSError, ValueError, IndexError):
        return None


def stall(config_path: str, n: int, every: float) -> dict:
    """The longest time the UI thread was blocked while the user flags, marks and moves down the
    list during a cold fill (an empty store, the sync starting with the app): F, N and j in
    turn, one every `every` seconds, on the real app (160x45, pilot) until the sync is idle.
    Measured two ways: a task that sleeps STALL_TICK and records how late it wakes (every cause:
    key handlers, repaints, list reloads, the sync thread holding the GIL), and the duration of
    each flag/mark handler (what used to wait on SQLite's write lock); and key -> stored, the
    time the writer thread took to commit an intent (it waits behind the sync's transactions)."""
    from textual import events

    from tuimail import paths
    from tuimail.config.load import load_config
    from tuimail.store.store import Store
    from tuimail.backends.registry import create_service
    from tuimail.ui.app import TuimailApp
    from tuimail.ui.bridge import EventBridge
    from tuimail.ui.widgets.header_list import HeaderList

    config = load_config(config_path)
    account = config.account(None)
    bridge = EventBridge()
    store = Store(paths.account_store_path(account.name))
    svc = create_service(config, account, bridge)
    app = TuimailApp(config, {account.name: store}, {account.name: svc}, event_sink=bridge)
    late: list[float] = []
    late_on_cpu: list[float] = []  # the same minus the time the OS kept the UI thread off every CPU
    handlers: list[float] = []
    stored: list[float] = []
    out: dict = {"keys": 0}

    applies: list[float] = []

    def timed_into(into: list[float], fn):
        def run(*a, **kw):
            t = time.perf_counter()
            try:
                return fn(*a, **kw)
            finally:
                into.append((time.perf_counter() - t) * 1000)
        return run

    def timed(fn):
        return timed_into(handlers, fn)

    async def ticker(stop: asyncio.Event) -> None:
        while not stop.is_set():
            t, q = time.perf_counter(), _runq_ms()
            await asyncio.sleep(STALL_TICK)
            ms = (time.perf_counter() - t - STALL_TICK) * 1000
            late.append(max(0.0, ms))
            if q is not None:
                runq = (_runq_ms() or q) - q
                late_on_cpu.append(max(0.0, ms - runq))

    async def go():
        t_start = time.monotonic()
        async with app.run_test(size=(160, 45)) as pilot:
            t0 = time.monotonic()
            while True:
                hls = list(app.screen.query(HeaderList))
                if hls and len(hls[0].uids) >= 45 and hls[0].size.height > 0:
                    break
                if time.monotonic() - t0 > 120:
                    raise SystemExit("header list never showed a screenful of rows")
                await pilot.pause(0.02)
            hl = hls[0]
            hl.focus()
            main = app.main
            for name in ("action_flag", "action_toggle_read"):
                setattr(main, name, timed(getattr(main, name)))
            overlay = getattr(app, "overlay", None)
            if overlay is not None:  # key -> stored: the intent leaves the overlay when it is written
                submitted: dict[int, float] = {}
                # (the intent queue: a controller the screen holds, or the screen itself in older trees)
                queue = getattr(main, "intents", None)
                queue_submit = queue.submit if queue is not None else main.submit_intent
                drop = overlay.drop

                def submit(account, intent):
                    submitted[intent.seq] = time.perf_counter()
                    return queue_submit(account, intent)

                def dropped(store_, intent):
                    t = submitted.pop(intent.seq, None)
                    if t is not None:
                        stored.append((time.perf_counter() - t) * 1000)
                    return drop(store_, intent)

                if queue is not None:
                    queue.submit = submit
                else:
                    main.submit_intent = submit
                overlay.drop = dropped
            loader = getattr(hl, "loader", hl)  # (the list's ListLoader; the list itself in older trees)
            loader._apply = timed_into(applies, loader._apply)  # a uid-list reload landing (list_loading.py)
            out["rows_at_start"] = len(hl.uids)
            stop = asyncio.Event()
            tick = asyncio.create_task(ticker(stop))
            keys = "FNj"
            t_end = time.monotonic() + 900
            while svc.state.state in ("connecting", "syncing") and time.monotonic() < t_end:
                app._driver.send_message(events.Key(keys[out["keys"] % 3], None))
                out["keys"] += 1
                await asyncio.sleep(every)
            out["fill_s"] = time.monotonic() - t_start  # the app's start to the sync's end
            stop.set()
            await tick
            out["rows_at_end"] = len(hl.uids)
            out["sync_state"] = svc.state.state
            t = time.perf_counter()
            await pilot.press("q")  # what was queued is written before the app ends
            out["quit_ms"] = (time.perf_counter() - t) * 1000

    try:
        asyncio.run(go())
    finally:
        svc.stop()
        store.close()
    out["loop_late"] = _stats(late)
    out["loop_late"]["p99_ms"] = sorted(late)[int(0.99 * (len(late) - 1))] if late else None
    if late_on_cpu:  # (a shared machine: other processes' load taken out; Linux only)
        out["loop_late_on_cpu"] = _stats(late_on_cpu)
        out["loop_late_on_cpu"]["p99_ms"] = sorted(late_on_cpu)[int(0.99 * (len(late_on_cpu) - 1))]
    out["handlers"] = _stats(handlers)
    out["stored"] = _stats(stored)
    out["list_apply"] = _stats(applies)
    return out


def idle(config_path: str, port: int, user: str, password: str, samples: int) -> dict:
    """A running ImapService idles on INBOX; another connection sets/clears \\Flagged on one
    message; time from sending that STORE to the RowsChanged event naming the message."""
    from tuimail.config.load import load_config
    from tuimail.core.events import RowsChanged, SyncState
    from tuimail.backends.registry import create_service

    from .measure import RawImap

    config = load_config(config_path)
    account = config.account(None)
    events: queue.Queue = queue.Queue()
    svc = create_service(config, account, lambda e: events.put((time.monotonic(), e)))
    svc.start()
    lat: list[float] = []
    try:
        deadline = time.monotonic() + 300
        while True:
            _, ev = events.get(timeout=max(0.1, deadline - time.monotonic()))
            if isinstance(ev, SyncState) and ev.state == "idle" and ev.folder == "INBOX":
                break
            if isinstance(ev, SyncState) and ev.state == "error":
                raise SystemExit(f"sync error: {ev.error}")
        time.sleep(0.5)
        with RawImap(port, user, password) as c:
            c.command(b"SELECT INBOX")
            uid = c.search(b"UNFLAGGED")[-1]
            from tuimail.store import Store  # events name local ids: the row's, by its uid
            with Store(svc.store_path) as st:
                local = st.ids_of(st.folder_id("INBOX"), [str(uid)])[str(uid)]
            for i in range(samples):
                while not events.empty():
                    events.get_nowait()
                sign = b"+" if i % 2 == 0 else b"-"
                t0 = time.monotonic()
                c.command(b"UID STORE %d %sFLAGS.SILENT (\\Flagged)" % (uid, sign))
                while True:
                    t, ev = events.get(timeout=10)
                    if isinstance(ev, RowsChanged) and local in ev.ids:
                        lat.append((t - t0) * 1000)
                        break
                time.sleep(0.3)
    except queue.Empty:
        raise SystemExit("no RowsChanged event within 10 s (IDLE did not report the change)") from None
    finally:
        svc.stop()
    return _stats(lat)


def _verb(line: bytes) -> str:
    """'T12 UID STORE 3 ...' -> 'UID STORE'; 'DONE' -> 'DONE'."""
    parts = line.split(b" ")
    if len(parts) == 1:
        return parts[0].decode("ascii", "replace").upper()
    words = parts[1:3] if parts[1].upper() == b"UID" else parts[1:2]
    return b" ".join(words).decode("ascii", "replace").upper()


def wire(config_path: str, port: int, presses: int) -> dict:
    """Key (`F`, flag/unflag) -> the `UID STORE` line reaching the server's door: the app (as in
    `keys`, 160x45, warm store) idles on INBOX through a FaultProxy that records the client's
    lines with their arrival time; the clock starts when the key is handed to the app. Also the
    commands each action cost between the DONE that left IDLE and the next IDLE."""
    import dataclasses

    from textual import events

    from tests.support.proxy import FaultProxy
    from tuimail import paths
    from tuimail.config.load import load_config
    from tuimail.store.store import Store
    from tuimail.backends.registry import create_service
    from tuimail.ui.app import TuimailApp
    from tuimail.ui.bridge import EventBridge
    from tuimail.ui.widgets.header_list import HeaderList

    config = load_config(config_path)
    proxy = FaultProxy(port)
    account = dataclasses.replace(config.account(None), port=proxy.port)
    bridge = EventBridge()
    store = Store(paths.account_store_path(account.name))
    svc = create_service(config, account, bridge)
    app = TuimailApp(config, {account.name: store}, {account.name: svc}, event_sink=bridge)
    lat: list[float] = []
    per_action: list[int] = []
    out: dict = {"commands": {}}

    def sync_conn():
        for c in proxy.connections:
            if any(_verb(line) == "IDLE" for _, line in c.client_lines):
                return c
        return None

    async def until(cond, what: str, timeout: float = 10.0):
        deadline = time.monotonic() + timeout
        while not cond():
            if time.monotonic() > deadline:
                raise SystemExit(f"wire probe: {what} not within {timeout:.0f} s")
            await asyncio.sleep(0.001)

    def idling() -> bool:
        c = sync_conn()
        return c is not None and bool(c.client_lines) and _verb(c.client_lines[-1][1]) == "IDLE"

    async def go():
        async with app.run_test(size=(160, 45)) as pilot:
            svc.start()
            hls: list = []

            def listed():
                hls[:] = list(app.screen.query(HeaderList))
                return bool(hls) and len(hls[0].uids) >= 45 and hls[0].size.height > 0
            await until(listed, "the header list", 120)
            await until(lambda: svc.state.state == "idle" and idling(), "IDLE on INBOX", 300)
            hls[0].focus()
            await pilot.pause(0.3)
            conn = sync_conn()
            for _ in range(presses):
                await until(idling, "IDLE again")
                await asyncio.sleep(0.05)  # (the server's "+ idling" is back)
                start = len(conn.client_lines)
                t = time.monotonic()
                app._driver.send_message(events.Key("F", "F"))
                stored: list = []

                def sent(stored=stored, start=start):  # (bound: awaited in this iteration anyway)
                    stored[:] = [(at, line) for at, line in conn.client_lines[start:] if _verb(line) == "UID STORE"]
                    return bool(stored)
                await until(sent, "the UID STORE")
                lat.append((stored[0][0] - t) * 1000)
                await until(lambda start=start: any(_verb(line) == "IDLE" for _, line in conn.client_lines[start:]),
                            "IDLE after the action")
                verbs = []
                for _, line in conn.client_lines[start:]:
                    v = _verb(line)
                    if v == "IDLE":
                        break
                    if v != "DONE":
                        verbs.append(v)
                        out["commands"][v] = out["commands"].get(v, 0) + 1
                per_action.append(len(verbs))

    try:
        asyncio.run(go())
    finally:
        svc.stop()
        store.close()
        proxy.close()
    out["key_to_wire"] = _stats(lat)
    out["per_action"] = {"median": sorted(per_action)[len(per_action) // 2] if per_action else None,
                         "max": max(per_action, default=None), "n": len(per_action)}
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="tests.bench.probes")
    sub = p.add_subparsers(dest="cmd", required=True)
    f = sub.add_parser("floor")
    f.add_argument("text")
    k = sub.add_parser("keys")
    k.add_argument("config")
    k.add_argument("n", type=int)
    k.add_argument("--presses", type=int, default=200)
    k.add_argument("--during-sync", action="store_true")
    s = sub.add_parser("stall")
    s.add_argument("config")
    s.add_argument("n", type=int)
    s.add_argument("--every", type=float, default=0.03)
    i = sub.add_parser("idle")
    i.add_argument("config")
    i.add_argument("port", type=int)
    i.add_argument("user")
    i.add_argument("password")
    i.add_argument("--samples", type=int, default=10)
    w = sub.add_parser("wire")
    w.add_argument("config")
    w.add_argument("port", type=int)
    w.add_argument("--presses", type=int, default=20)
    a = p.parse_args(argv)
    if a.cmd == "floor":
        return floor(a.text)
    if a.cmd == "keys":
        result = keys(a.config, a.n, a.presses, a.during_sync)
    elif a.cmd == "wire":
        result = wire(a.config, a.port, a.presses)
    elif a.cmd == "stall":
        result = stall(a.config, a.n, a.every)
    else:
        result = idle(a.config, a.port, a.user, a.password, a.samples)
    json.dump(result, sys.stdout)
    print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
