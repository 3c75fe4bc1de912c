"""A new store made from the schema snapshot (store/fresh.py) is the file the migrations make."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from tuimail.store import Store, db
from tuimail.store.fresh import generate


def _picture(conn: sqlite3.Connection) -> dict:
    """Everything about a store's file that the migrations decide: schema, table kinds, rows."""
    schema = sorted(conn.execute("SELECT type, name, tbl_name, sql FROM sqlite_master"))
    tables = sorted(r[1:] for r in conn.execute("PRAGMA table_list") if r[0] == "main")
    rows = {}
    for (name,) in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'"):
        if name.startswith("fts_") and name.endswith("_data"):
            continue  # (FTS5's b-tree blocks: compared through the index being empty below)
        rows[name] = sorted(map(repr, conn.execute(f'SELECT * FROM "{name}"')))
    return {"schema": schema, "tables": tables, "rows": rows,
            "version": conn.execute("PRAGMA user_version").fetchone()[0],
            "fks": sorted(conn.execute("SELECT m.name, f.* FROM sqlite_master m, pragma_foreign_key_list(m.name) f"
                                       " WHERE m.type = 'table'"))}


def _by_migrations(path: Path, monkeypatch) -> None:
    monkeypatch.setattr(db, "_fresh", lambda conn: 0)
    Store(path).close()
    monkeypatch.undo()


def test_fresh_store_is_the_migrated_store(tmp_path, monkeypatch):
    _by_migrations(tmp_path / "migrated.sqlite3", monkeypatch)
    Store(tmp_path / "fresh.sqlite3").close()
    a = sqlite3.connect(tmp_path / "migrated.sqlite3")
    b = sqlite3.connect(tmp_path / "fresh.sqlite3")
    pa, pb = _picture(a), _picture(b)
    assert pa["version"] == pb["version"] == db.SCHEMA_VERSION
    assert pa == pb


def test_fresh_store_works_like_a_migrated_one(tmp_path):
    """Ids, the search index and the triggers behave: a row in, found by the index, deleted."""
    with Store(tmp_path / "s.sqlite3") as store:
        fid = store.db.execute("INSERT INTO folders(name) VALUES ('INBOX')").lastrowid
        mid = store.db.execute("INSERT INTO messages(folder_id, sid, subject) VALUES (?, 'u1', 'budget')",
                               (fid,)).lastrowid
        assert mid == 1
        store.db.execute("INSERT INTO bodytext(id, text) VALUES (?, 'quarterly numbers')", (mid,))
        assert store.db.execute("SELECT rowid FROM fts_body WHERE fts_body MATCH 'quarterly'").fetchall() == [(mid,)]
        store.db.execute("DELETE FROM messages WHERE id = ?", (mid,))
        assert store.db.execute("SELECT count(*) FROM bodytext").fetchone()[0] == 0
        assert store.db.execute("INSERT INTO messages(folder_id, sid) VALUES (?, 'u2')", (fid,)).lastrowid == 2


def test_snapshot_is_up_to_date():
    """A migration added without regenerating the snapshot: new stores would replay every
    migration (correct, only slower). Run `python -m tuimail.store.fresh`."""
    text = (Path(db.__file__).with_name("fresh_schema.py")).read_text(encoding="utf-8")
    assert text == generate(db.MIGRATIONS), "store/fresh_schema.py is stale: run `python -m tuimail.store.fresh`"


def test_an_older_store_still_migrates_step_by_step(tmp_path):
    """The snapshot is for empty files only: a store at an older version runs the migrations after it."""
    path = tmp_path / "old.sqlite3"
    conn = sqlite3.connect(path, isolation_level=None)
    db._migrate(conn, db.MIGRATIONS[:3], path)
    conn.close()
    Store(path).close()
    fresh = tmp_path / "fresh.sqlite3"
    Store(fresh).close()
    assert _picture(sqlite3.connect(path))["schema"] == _picture(sqlite3.connect(fresh))["schema"]
