"""`tuimail repair`: rebuild a damaged store, keeping the journal of the user's actions.

    repair_store(path, cache_path=None, *, force=False) -> RepairReport

Everything in the store but the journal is a copy of the server's state and comes back with the
next sync. The journal (pending and failed actions, with their folder names, uids, Message-IDs,
sizes and dates) is what the user did and exists nowhere else, so it is salvaged row by row from
a copy of the damaged file, stepping over unreadable pages (sqlite3's `.recover` is not available
from Python); a header overwritten with garbage is rebuilt on the copy, and rows SQLite cannot
reach at all (a destroyed schema or interior page) are decoded from the leaf pages (pagescan.py).
The damaged file is moved aside (never deleted), and a fresh store holding the salvaged folders (with their
sync state, so the kept server ids stay meaningful: the next sync links each entry to its refilled
row by server id; a reset of the folder's ids (UIDVALIDITY) re-matches them by Message-ID) and the
journal entries whose folder is known takes its place. The outbox (messages queued, failed or
sent but not yet filed in Sent) and the postponed messages on their way to Drafts exist nowhere
else either: their rows are carried over as they are (ids kept, so `tuimail outbox` names them
as before; one SQLite cannot read is counted as lost). A POP3 account's local folders are
salvaged whole, their mail and UIDL ledger included (repair_pop3.py). A journal of an older schema (v5: an
integer uid and IMAP flag names) is converted as the v6 migration converts it. A damaged body cache (re-downloadable)
is moved aside too.
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import sqlite3
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from tuimail.errors import StoreError
from tuimail.store.db import connect
from tuimail.store.pagescan import page_size_of, scan_pages
from tuimail.store.repair_pop3 import Pop3Salvage, salvage_pop3

_PAGE_SIZES = (4096, 1024, 2048, 8192, 16384, 32768, 65536, 512)
_MAX_PROBES = 2_000_000  # point lookups between two damaged spots of one table
_FOLDER_COLS = ("id", "name", "delimiter", "role", "attrs", "selectable", "state", "local")
# the v5 journal's IMAP system flags -> canonical names (as the v6 migration converts them)
_OLD_FLAGS = {"\\" + n.capitalize(): n for n in ("seen", "flagged", "answered", "draft", "deleted")}


def _upgrade_folder(f: dict) -> dict:
    """A folder row of a v5 store: its UIDVALIDITY becomes the IMAP state (as the migration does)."""
    if "state" not in f and isinstance(f.get("uidvalidity"), int):
        f = {**f, "state": json.dumps({"uidvalidity": f["uidvalidity"], "uidnext": None, "highestmodseq": None})}
    return f


def _upgrade_entry(e: dict) -> dict:
    """A journal row as the fresh store holds it: without its row (msg_id NULL: the next sync
    links it by server id), a v5 row's uid as the server id, its IMAP flag names canonical."""
    e = dict(e)
    if "uid" in e and e.get("sid") is None:
        uid = e.pop("uid")
        e["sid"] = str(abs(uid)) if isinstance(uid, int) and uid > 0 else None
        for k in ("add_flags", "remove_flags"):
            if isinstance(e.get(k), str):
                e[k] = " ".join(_OLD_FLAGS.get(t, t) for t in e[k].split())
    e.pop("uid", None)
    e["msg_id"] = None
    return e


@dataclass
class RepairReport:
    healthy: bool  # nothing to do (the file passed SQLite's quick_check)
    kept: int = 0  # journal entries written into the fresh store
    lost: int = 0  # entries read but whose folder could not be found
    unreadable: bool = False  # part of the journal (or folder list) could not be read at all
    moved_to: Path | None = None
    cache_moved_to: Path | None = None
    outbox: int = 0  # outbox rows (queued, failed, not yet filed) carried into the fresh store
    postponed: int = 0  # postponed messages (on their way to Drafts) carried over
    unsent_lost: int = 0  # outbox or postponed rows that could not be read or written
    pop3: Pop3Salvage | None = None  # a POP3 account's mail and ledger (None: no local folder)


def in_use(path: Path) -> bool:
    """Whether another process has the store open (it holds a shared lock on the wal-index's
    dead-man-switch byte, as every WAL connection does)."""
    shm = Path(f"{path}-shm")
    try:
        fd = os.open(shm, os.O_RDWR)
    except OSError:
        return False
    try:
        fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB, 1, 128)  # UNIX_SHM_DMS = 120 + 8
    except OSError:
        return True
    finally:
        os.close(fd)  # (releases our lock: POSIX locks die with any close of the file)
    return False


def healthy(path: Path) -> bool:
    try:
        db = sqlite3.connect(path, isolation_level=None)
        try:
            return db.execute("PRAGMA quick_check").fetchall() == [("ok",)]
        finally:
            db.close()
    except sqlite3.Error:
        return False


def repair_store(path: Path | str, cache_path: Path | str | None = None, *, force: bool = False) -> RepairReport:
    path = Path(path)
    report = RepairReport(healthy=False)
    if cache_path is not None and Path(cache_path).exists() and not in_use(Path(cache_path)) \
            and not healthy(Path(cache_path)):
        report.cache_moved_to = _move_aside(Path(cache_path))
    if not path.exists():
        report.healthy = True
        return report
    if in_use(path):
        raise StoreError(f"{path}: the store is open in another tuimail; quit it first, then run repair again",
                         "locked", path)
    work = Path(tempfile.mkdtemp(prefix=".repair-", dir=path.parent))
    try:
        copy = work / "damaged.sqlite3"
        shutil.copyfile(path, copy)
        if Path(f"{path}-wal").exists():
            shutil.copyfile(f"{path}-wal", f"{copy}-wal")
        if not force and healthy(copy):
            report.healthy = True
            return report
        _checkpoint(copy)
        folders, entries, unreadable = _salvage(copy)
        unsent, unsent_bad = _salvage_unsent(copy)
        report.unreadable = unreadable or unsent_bad
        fresh = work / "fresh.sqlite3"
        report.kept, report.lost = _write_fresh(fresh, folders, entries)
        report.pop3 = _salvage_local(copy, fresh, folders)
        if report.pop3 is not None and report.pop3.unreadable:
            report.unreadable = True
        (report.outbox, report.postponed), report.unsent_lost = _write_unsent(fresh, unsent)
        report.moved_to = _move_aside(path)
        os.replace(fresh, path)
        return report
    except OSError as exc:
        from tuimail.store.sqlite_errors import store_error
        raise store_error(exc, path) from None
    finally:
        shutil.rmtree(work, ignore_errors=True)  # only our copies live there


def _salvage_local(copy: Path, fresh: Path, folders: dict[int, dict]) -> Pop3Salvage | None:
    """The local folders' mail (a POP3 account's), copied into the fresh store (repair_pop3.py)."""
    if not any(f.get("local") == 1 for f in folders.values()):
        return None
    src = _open_readable(copy)
    if src is None:
        return Pop3Salvage(unreadable=True)
    dst = connect(fresh)
    try:
        return salvage_pop3(src, dst, folders)
    finally:
        dst.close()
        src.close()


def _move_aside(path: Path) -> Path:
    """Rename the file (and its -wal/-shm) to NAME.damaged-TIME; never delete it."""
    stamp = time.strftime("%Y%m%d-%H%M%S")
    dest = path.with_name(f"{path.name}.damaged-{stamp}")
    n = 1
    while dest.exists():
        n += 1
        dest = path.with_name(f"{path.name}.damaged-{stamp}-{n}")
    os.rename(path, dest)
    for suffix in ("-wal", "-shm"):
        if Path(f"{path}{suffix}").exists():
            os.rename(f"{path}{suffix}", f"{dest}{suffix}")
    return dest


# ---------------------------------------------------------------------------------------------
# salvage


def _checkpoint(copy: Path) -> None:
    """Fold the copy's -wal into it, so that its pages are the latest (pagescan reads them)."""
    try:
        db = sqlite3.connect(copy, isolation_level=None)
        try:
            db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        finally:
            db.close()
    except sqlite3.Error:
        pass


def _salvage(copy: Path) -> tuple[dict[int, dict], list[dict], bool]:
    db = _open_readable(copy)
    folders_rows: list[dict] = []
    entries: list[dict] = []
    bad = True
    if db is not None:
        try:
            folders_rows, bad_f = _read_table(db, "folders")
            entries, bad_j = _read_table(db, "journal")
            bad = bad_f or bad_j
        finally:
            db.close()
    wal = Path(f"{copy}-wal")
    if bad and not (wal.exists() and wal.stat().st_size > 0):
        # SQLite could not reach every row (a destroyed schema page, a damaged interior page):
        # decode the leaf pages by hand and add the rows it missed. (Not with frames left in
        # the -wal: the file's own copy of a page could be older and bring back done actions.)
        pf, pj = scan_pages(copy, page_size_of(copy))
        have_f = {r.get("id") for r in folders_rows}
        have_j = {r.get("id") for r in entries}
        folders_rows += [r for k, r in pf.items() if k not in have_f]
        entries += [r for k, r in sorted(pj.items()) if k not in have_j]
        entries.sort(key=lambda r: r.get("id") or 0)
    folders = {r["id"]: r for r in folders_rows if isinstance(r.get("id"), int) and isinstance(r.get("name"), str)}
    return folders, entries, bad


UNSENT_TABLES = ("outbox", "postponed")


def _salvage_unsent(copy: Path) -> tuple[dict[str, list[dict]], bool]:
    """The rows of the outbox and the postponed table SQLite can still read (a table the store's
    schema has not got yet is empty). Not from the leaf pages: a message spills onto overflow
    pages the page scan does not follow."""
    out: dict[str, list[dict]] = {t: [] for t in UNSENT_TABLES}
    db = _open_readable(copy)
    if db is None:
        return out, True
    bad = False
    try:
        try:
            have = {r[0] for r in db.execute("SELECT name FROM sqlite_schema WHERE type = 'table'")}
        except sqlite3.Error:
            return out, True
        for table in UNSENT_TABLES:
            if table in have:
                rows, damaged = _read_table(db, table)
                out[table] = rows
                bad = bad or damaged
    finally:
        db.close()
    return out, bad


def _write_unsent(fresh: Path, unsent: dict[str, list[dict]]) -> tuple[tuple[int, int], int]:
    """The salvaged outbox and postponed rows into the fresh store (ids kept). Returns
    ((outbox rows, postponed rows) written, rows lost)."""
    db = connect(fresh)
    counts = {t: 0 for t in UNSENT_TABLES}
    lost = 0
    try:
        db.execute("BEGIN IMMEDIATE")
        for table in UNSENT_TABLES:
            cols_there = [r[1] for r in db.execute(f"PRAGMA table_info({table})")]
            for row in unsent.get(table, []):
                cols = [c for c in cols_there if c in row]
                try:
                    db.execute(f"INSERT INTO {table}({', '.join(cols)}) VALUES ({', '.join('?' * len(cols))})",
                               [row[c] for c in cols])
                    counts[table] += 1
                except sqlite3.Error:  # a damaged row (a CHECK, NOT NULL or a duplicate id fails)
                    lost += 1
        db.execute("COMMIT")
    finally:
        db.close()
    return (counts["outbox"], counts["postponed"]), lost


def _open_readable(copy: Path) -> sqlite3.Connection | None:
    """The copy opened with its schema readable; a header overwritten with garbage is rebuilt
    (the page size guessed) when SQLite refuses the file as it is."""
    db = _try_open(copy)
    if db is not None:
        return db
    size = copy.stat().st_size
    original = copy.read_bytes()[:100]
    for page_size in _PAGE_SIZES:
        if size < page_size or size % page_size:
            continue
        _write_header(copy, page_size, size // page_size)
        db = _try_open(copy)
        if db is not None:
            return db
    with open(copy, "r+b") as fh:
        fh.write(original)
    return None


def _try_open(copy: Path) -> sqlite3.Connection | None:
    try:
        db = sqlite3.connect(copy, isolation_level=None)
    except sqlite3.Error:
        return None
    try:
        names = {r[0] for r in db.execute("SELECT name FROM sqlite_schema WHERE type = 'table'")}
        if "journal" in names and "folders" in names:
            return db
    except sqlite3.Error:
        pass
    db.close()
    return None


def _write_header(copy: Path, page_size: int, pages: int) -> None:
    with tempfile.TemporaryDirectory() as d:
        t = sqlite3.connect(Path(d) / "t.sqlite3", isolation_level=None)
        t.execute(f"PRAGMA page_size={page_size}")
        t.execute("PRAGMA journal_mode=WAL")
        t.execute("CREATE TABLE t(x)")
        t.close()
        header = bytearray((Path(d) / "t.sqlite3").read_bytes()[:100])
    header[28:32] = pages.to_bytes(4, "big")  # valid: the change counter equals version-valid-for
    with open(copy, "r+b") as fh:
        fh.write(header)


def _read_table(db: sqlite3.Connection, table: str) -> tuple[list[dict], bool]:
    """Every readable row of `table`: a forward scan up to the first damaged page, a backward
    scan down to the last one, and point lookups by rowid in between (each lookup walks from
    the root, so only the rows on a damaged page are lost)."""
    rows: dict[int, dict] = {}
    bad = False

    def scan(q: str, args: tuple) -> int | None:
        """Rows until an error; returns the last rowid read before it, or None if it finished."""
        nonlocal bad
        last = None
        try:
            cur = db.execute(q, args)
            cols = [d[0] for d in cur.description]
            for r in cur:
                rows[r[0]] = dict(zip(cols[1:], r[1:], strict=True))
                last = r[0]
            return None
        except sqlite3.Error:
            bad = True
            return last if last is not None else args[0]

    lo = scan(f"SELECT rowid, * FROM {table} WHERE rowid > ? ORDER BY rowid", (-(2 ** 63),))
    if lo is None:
        return list(rows.values()), False
    hi = scan(f"SELECT rowid, * FROM {table} WHERE rowid < ? ORDER BY rowid DESC", (2 ** 63 - 1,))
    if hi is None:  # the backward scan read down to the first row: nothing left between
        return [rows[k] for k in sorted(rows)], bad
    if hi > 2 ** 62:
        # the backward scan failed at once: no upper bound; probe a bounded range
        hi = max(rows, default=0) + 100_000
    lo = max(lo, 0)
    for rowid in range(lo + 1, min(hi, lo + 1 + _MAX_PROBES)):
        if rowid in rows:
            continue
        try:
            cur = db.execute(f"SELECT rowid, * FROM {table} WHERE rowid = ?", (rowid,))
            cols = [d[0] for d in cur.description]
            r = cur.fetchone()
        except sqlite3.Error:
            continue
        if r is not None:
            rows[r[0]] = dict(zip(cols[1:], r[1:], strict=True))
    return [rows[k] for k in sorted(rows)], bad


# ---------------------------------------------------------------------------------------------
# the fresh store


def _write_fresh(fresh: Path, folders: dict[int, dict], entries: list[dict]) -> tuple[int, int]:
    db = connect(fresh)
    try:
        jcols = [r[1] for r in db.execute("PRAGMA table_info(journal)")]
        db.execute("BEGIN IMMEDIATE")
        for f in folders.values():
            f = _upgrade_folder(f)
            vals = [f.get(c) for c in _FOLDER_COLS]
            vals[4] = vals[4] if isinstance(vals[4], str) else ""
            vals[5] = 1 if vals[5] is None else vals[5]
            vals[7] = 1 if vals[7] == 1 else 0  # (a POP3 account's local folder; none before that migration)
            try:
                db.execute(f"INSERT INTO folders({', '.join(_FOLDER_COLS)})"
                           f" VALUES ({', '.join('?' * len(_FOLDER_COLS))})", vals)
            except sqlite3.Error:  # a damaged duplicate name or value: its entries count as lost
                pass
        known = {r[0] for r in db.execute("SELECT id FROM folders")}
        kept = lost = 0
        for e in entries:
            if e.get("folder_id") not in known:
                lost += 1
                continue
            e = _upgrade_entry(e)
            cols = [c for c in jcols if c in e]
            try:
                db.execute(f"INSERT INTO journal({', '.join(cols)}) VALUES ({', '.join('?' * len(cols))})",
                           [e[c] for c in cols])
                kept += 1
            except sqlite3.Error:  # a row whose values were damaged (a CHECK or NOT NULL fails)
                lost += 1
        db.execute("COMMIT")
    finally:
        db.close()
    return kept, lost
