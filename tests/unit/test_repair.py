"""`tuimail repair`'s salvage when SQLite itself cannot reach the journal (issue 9.6): a destroyed
schema page, a destroyed interior page of the journal. The leaf pages are decoded by hand."""

from __future__ import annotations

import random
import sqlite3

import pytest

from tuimail.store import Store
from tuimail.store.repair import repair_store


def _entries(path):
    with Store(path) as st:
        return sorted((e.folder, e.sid, e.op, e.add_flags, e.dest, e.message_id) for e in st.pending())


@pytest.fixture
def store_path(tmp_path):
    path = tmp_path / "acc.sqlite3"
    with Store(path) as st:
        fid = st.upsert_folder("INBOX", "/", [], "inbox")
        st.upsert_folder("Archive", "/", [], "archive")
        st.set_folder_state(fid, '{"uidvalidity":42,"uidnext":3001,"highestmodseq":null}')
        st.insert_headers(fid, [(str(i), 0, frozenset(), "", 1_700_000_000 + i, f"S {i} <s{i}@x>", "me@x", "",
                                 f"subject {i}", f"<m{i}@x>", None, "", 1000, 0) for i in range(1, 3001)])
        for uid in range(1, 601):  # long keywords: the journal spans many pages under an interior one
            st.set_flags(fid, [uid], add=[f"$kw{uid:04d}" + "x" * 60])
        st.move(fid, [700], "Archive")
    return path


def _smash(path, pages):
    db = sqlite3.connect(path)
    db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    size = db.execute("PRAGMA page_size").fetchone()[0]
    db.close()
    with open(path, "r+b") as fh:
        for p in pages:
            fh.seek((p - 1) * size)
            fh.write(random.Random(p).randbytes(size))


def _pages(path, where):
    db = sqlite3.connect(path)
    try:
        return [p for (p,) in db.execute(f"SELECT pageno FROM dbstat WHERE {where}")]
    finally:
        db.close()


def test_destroyed_schema_page(store_path):
    before = _entries(store_path)
    assert len(before) == 601
    _smash(store_path, [1])
    report = repair_store(store_path)
    assert report.kept == 601 and report.lost == 0 and report.unreadable
    assert _entries(store_path) == before
    with Store(store_path) as st:
        inbox = st.folder("INBOX")
        # the folder's sync state is kept (its uids stay meaningful); the rows are refilled, then
        # each entry is linked to its row by server id (msg_id until then: none)
        assert '"uidvalidity":42' in inbox.state and st.local_sids(inbox.id) == []
        assert all(e.msg_id is None and e.sid for e in st.pending())
        assert st.folder("Archive").role == "archive"


def test_destroyed_interior_page_of_the_journal(store_path):
    before = _entries(store_path)
    interior = _pages(store_path, "name = 'journal' AND pagetype = 'internal'")
    assert interior, "the journal should span an interior page"
    _smash(store_path, interior)
    report = repair_store(store_path)
    assert report.kept == 601 and report.unreadable
    assert _entries(store_path) == before


def test_destroyed_leaf_loses_only_its_rows(store_path):
    leaves = _pages(store_path, "name = 'journal' AND pagetype = 'leaf' ORDER BY pageno")
    _smash(store_path, [leaves[len(leaves) // 2], 1])
    report = repair_store(store_path)
    assert 601 - 60 < report.kept < 601 and report.unreadable
