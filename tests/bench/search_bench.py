"""Search figures (issue #13), on a store built from the generated mail (no server needed):

    PYTHONPATH=. .venv/bin/python -m tests.bench.search_bench [--n 100000] [--bodies 10000] [--rounds 15]

1. the cold-fill insert path with and without the search schema (its triggers are on delete and
   update only: the insert of 100k header rows should cost the same), in ROWS_PER_TX transactions;
2. building the header index of every row (index_headers), and indexing the bodies;
3. "local full-text search of a word over 100k cached headers and 10k cached bodies": `~B WORD`
   over every folder, median of --rounds (target <= 50 ms);
4. `l ~f NAME` over the 100k INBOX: the limited list computed (ids in order, the hits' rows
   read for the first screen), median of --rounds (neomutt: 0.29-0.36 s, DESIGN.md §3b; target
   <= 0.5x).
Prints one line per figure and a JSON object at the end.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
from pathlib import Path

from tuimail.core.pattern import parse
from tuimail.demo.generate import generate
from tuimail.mail.headers import summarize
from tuimail.store import Store
from tuimail.store import db as dbmod
from tuimail.store import search

FIRST_SCREEN = 60


def header_rows(n: int, seed: int = 7) -> tuple[list[tuple], list[str]]:
    rows, bodies = [], []
    for i, m in enumerate(generate(n, seed=seed), 1):
        head, _, body = m.raw.partition(b"\r\n\r\n")
        s = summarize(head + b"\r\n\r\n")
        rows.append((str(i), 0, frozenset({"seen"} if i % 3 else ()), "", s["date"], s["from_"], s["to"], s["cc"],
                     s["subject"], s["message_id"], s["in_reply_to"], s["references"], len(m.raw),
                     int(bool(s["has_attachment"]))))
        bodies.append(body[:20000].decode("utf-8", "replace"))
    return rows, bodies


def fill(path: Path, rows: list[tuple], migrations: list[str]) -> float:
    """Insert the rows as the sync does (insert_headers: ROWS_PER_TX per transaction); seconds."""
    st = Store(path, migrations=migrations)  # (a Store on this schema, not the newest)
    fid = st.upsert_folder("INBOX", ".", (), "inbox")
    t0 = time.perf_counter()
    for i in range(0, len(rows), 5000):  # the engine's windows
        st.insert_headers(fid, rows[i:i + 5000])
    took = time.perf_counter() - t0
    st.close()
    return took


def median_ms(fn, rounds: int) -> tuple[float, list[float]]:
    """Median wall milliseconds of `rounds` calls (after one warm call); the CPU-time median is
    printed beside it (this process's: on a shared machine the wall time carries the others' load)."""
    fn()  # (warm: the page cache, SQLite's schema)
    samples, cpu = [], []
    for _ in range(rounds):
        t0, c0 = time.perf_counter(), time.process_time()
        fn()
        samples.append((time.perf_counter() - t0) * 1000)
        cpu.append((time.process_time() - c0) * 1000)
    print(f"  (CPU time median {statistics.median(cpu):.1f} ms; load average {os.getloadavg()[0]:.1f})")
    return statistics.median(samples), samples


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=100_000)
    ap.add_argument("--bodies", type=int, default=10_000)
    ap.add_argument("--rounds", type=int, default=15)
    ap.add_argument("--word", default="budget")
    ap.add_argument("--name", default="tanaka")
    ap.add_argument("--dir", default=None, help="where to build the stores (default: a temp dir)")
    ap.add_argument("--queries-only", action="store_true",
                    help="only the query figures, on the store an earlier run left in --dir")
    args = ap.parse_args(argv)
    out: dict[str, object] = {"n": args.n, "bodies": args.bodies}
    if args.queries_only:
        st = Store(Path(args.dir) / "store.db")
        queries(st, args, out)
        st.close()
        print(json.dumps(out))
        return 0
    rows, bodies = header_rows(args.n)
    base = Path(args.dir or tempfile.mkdtemp(prefix="tuimail-search-bench-"))
    # the schema up to, not including, the search migration (the one that creates fts_head)
    search_at = next(i for i, m in enumerate(dbmod.MIGRATIONS) if "fts_head USING fts5" in m)
    without = dbmod.MIGRATIONS[:search_at]
    fills = {"without": [], "with": []}
    for k in range(3):  # alternated: the machine is shared
        for label, migs in (("without", without), ("with", dbmod.MIGRATIONS)):
            p = base / f"fill-{label}-{k}.db"
            fills[label].append(fill(p, rows, migs))
            for f in base.glob(f"fill-{label}-{k}.db*"):
                os.unlink(f)
    f_wo, f_w = statistics.median(fills["without"]), statistics.median(fills["with"])
    print(f"cold-fill insert of {args.n} rows: without the search schema {f_wo:.2f} s, with it {f_w:.2f} s"
          f" ({(f_w / f_wo - 1) * 100:+.1f} %) samples {fills}")
    out["fill_without_s"], out["fill_with_s"] = f_wo, f_w

    path = base / "store.db"
    fill(path, rows, dbmod.MIGRATIONS)
    st = Store(path)
    t0 = time.perf_counter()
    n = search.index_headers(st)
    t_index = time.perf_counter() - t0
    print(f"header index: {n} rows in {t_index:.2f} s ({args.bodies} bodies next)")
    out["index_headers_s"] = t_index
    inbox = st.folder_id("INBOX")
    ids = st.id_list(inbox, sort="arrival", reverse=True)
    t0 = time.perf_counter()
    step = max(1, len(ids) // max(1, args.bodies))
    for id_, text in list(zip(ids[::step], bodies[::step], strict=False))[:args.bodies]:
        search.index_body(st, id_, text)
    t_bodies = time.perf_counter() - t0
    print(f"body index: {args.bodies} bodies in {t_bodies:.2f} s (one transaction each, as the opener does)")
    out["index_bodies_s"] = t_bodies
    size = sum(os.path.getsize(p) for p in base.glob("store.db*"))
    out["store_mb"] = size / 1e6
    queries(st, args, out)
    st.close()
    print(json.dumps(out))
    return 0


def queries(st: Store, args, out: dict) -> None:
    inbox = st.folder_id("INBOX")
    assert inbox is not None
    pat = parse(f"~B {args.word}")
    res = search.evaluate(st, pat)
    med, samples = median_ms(lambda: search.evaluate(st, pat, unknown=False), args.rounds)
    print(f"~B {args.word} over every folder: {len(res.hits)} hits; median {med:.1f} ms (target <= 50)"
          f" samples {[round(s, 1) for s in samples]}")
    out["fulltext_ms"], out["fulltext_hits"] = med, len(res.hits)
    med, samples = median_ms(lambda: search.evaluate(st, pat), args.rounds)
    print(f"  and listing the {res.unknown_count} rows the cache cannot decide (no body cached: what a server is"
          f" asked about): median {med:.1f} ms samples {[round(s, 1) for s in samples]}")
    out["fulltext_with_undecided_ms"] = med

    lim = parse(f"~f {args.name}")

    def limit():
        r = search.evaluate(st, lim, [inbox])
        st.rows(inbox, [h.id for h in r.hits[:FIRST_SCREEN]])
        return r

    res = limit()
    med, samples = median_ms(limit, args.rounds)
    print(f"l ~f {args.name} over the {args.n} INBOX: {len(res.hits)} hits; median {med:.1f} ms until the"
          f" limited list (and its first screen's rows) is computed (neomutt 290-360 ms: target <= 145-180)"
          f" samples {[round(s, 1) for s in samples]}")
    out["limit_ms"], out["limit_hits"] = med, len(res.hits)


if __name__ == "__main__":
    raise SystemExit(main())
