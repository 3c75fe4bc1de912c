"""The store on its own: intents and journal, server flags with intents on top, orders, files."""

from __future__ import annotations

import os
import sqlite3
import stat

import pytest

from tuimail.errors import StoreError
from tuimail.mail.thread import thread_order
from tuimail.store import Store
from tuimail.store.db import SCHEMA_VERSION
from tests.support.rows import v6


def row(uid, date=None, flags="", msgid=None, irt=None, refs=""):
    """A v6 header row whose server id is `uid` (flags as IMAP spells them)."""
    return v6(_row(uid, date, flags, msgid, irt, refs))


def _row(uid, date=None, flags="", msgid=None, irt=None, refs=""):
    return (uid, 1, flags, 1_700_000_000 + (date if date is not None else uid) * 60, f"From {uid}", "to", "",
            f"Subject {uid}", msgid or f"<{uid}@x>", irt, refs, 100 + uid, 0)


@pytest.fixture
def st(tmp_path):
    s = Store(tmp_path / "a" / "s.sqlite3")
    yield s
    s.close()


def test_files_are_private_and_versioned(tmp_path, st):
    mode = stat.S_IMODE(os.stat(st.path).st_mode)
    assert mode == 0o600 and stat.S_IMODE(os.stat(st.path.parent).st_mode) == 0o700
    assert st.db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    assert st.db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_opening_stores_from_threads_leaves_the_umask_alone(tmp_path, monkeypatch):
    """The umask is the whole process's: a save-set-restore pair in one thread interleaved with
    another's left it at 077 for good (the tests' next Dovecot got a 0700 passwd dir). And
    connections that open a new store at once run each migration once."""
    import threading

    def no_umask(mask):
        raise AssertionError("the store changed the process umask")

    old = os.umask(0o022)  # a loose one: the files must be private without help
    monkeypatch.setattr(os, "umask", no_umask)
    try:
        errors = []

        def open_and_write(i):
            try:
                with Store(tmp_path / "d" / f"s{i % 3}.sqlite3") as s:  # four at once create each file
                    s.upsert_folder("INBOX", "/", (), None)
            except Exception as exc:  # e.g. two connections running the same migration
                errors.append(exc)

        threads = [threading.Thread(target=open_and_write, args=(i,)) for i in range(12)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert errors == []
        for i in range(3):
            with Store(tmp_path / "d" / f"s{i}.sqlite3") as s:  # keeps -wal and -shm open to look at
                s.upsert_folder("Sent", "/", (), None)
                for suffix in ("", "-wal", "-shm"):
                    f = tmp_path / "d" / f"s{i}.sqlite3{suffix}"
                    assert stat.S_IMODE(os.stat(f).st_mode) == 0o600, f
        assert stat.S_IMODE(os.stat(tmp_path / "d").st_mode) == 0o700
    finally:
        monkeypatch.undo()
        os.umask(old)


def test_newer_schema_is_refused_with_one_line(tmp_path):
    p = tmp_path / "n.sqlite3"
    sqlite3.connect(p).execute(f"PRAGMA user_version={SCHEMA_VERSION + 5}")
    with pytest.raises(StoreError, match="newer") as e:
        Store(p)
    assert "\n" not in str(e.value)


def test_a_v3_store_keeps_its_thread_order_in_v4(tmp_path):
    """v4 moved the thread columns out of the message rows into their own table."""
    from tuimail.store.db import MIGRATIONS, connect

    p = tmp_path / "old.sqlite3"
    connect(p, MIGRATIONS[:3]).close()
    old = sqlite3.connect(p)
    old.execute("INSERT INTO folders(id, name, threads_dirty) VALUES (1, 'INBOX', 0)")
    for uid, pos, sub, depth, root, prefix in [(1, 9 << 32 | 1, 0, 0, 1, ""), (2, 9 << 32 | 1, 1, 1, 1, "└─>"),
                                               (3, 5 << 32 | 3, 0, 0, 3, "")]:
        old.execute("INSERT INTO messages(folder_id, uid, date, subject, thread_pos, thread_sub, thread_depth,"
                    " thread_root, thread_prefix) VALUES (1, ?, ?, 's', ?, ?, ?, ?, ?)",
                    (uid, uid, pos, sub, depth, root, prefix))
    old.execute("INSERT INTO messages(folder_id, uid, date, subject) VALUES (1, 4, 4, 'never threaded')")
    old.commit()
    old.close()
    with Store(p) as st:
        assert st.id_list(1, "thread") == [1, 2, 3, 4]
        assert st.thread_info(1) == [(1, 0, 1), (2, 1, 1), (3, 0, 3), (4, 0, None)]
        rows = st.rows(1, [2, 4])
        assert (rows[2].thread_depth, rows[2].thread_prefix) == (1, "└─>")
        assert (rows[4].thread_depth, rows[4].thread_prefix) == (0, "")
        cols = {r[1] for r in st.db.execute("PRAGMA table_info(messages)")}
        assert not {c for c in cols if c.startswith("thread_")}
        st.remove_sids(1, ["2"])  # a row's thread entry goes with it
        assert st.db.execute("SELECT id FROM threads ORDER BY id").fetchall() == [(1,), (3,)]


def test_thread_entries_go_with_their_rows(st):
    fid = st.upsert_folder("INBOX", "/", (), "inbox")
    arch = st.upsert_folder("Archive", "/", (), "archive")
    st.insert_headers(fid, [row(1), row(2, irt="<1@x>", refs="<1@x>"), row(3)])
    st.set_threads(fid, thread_order(st.headers_for_threading(fid)))
    assert st.thread_info(fid) == [(3, 0, 3), (1, 0, 1), (2, 1, 1)]
    st.move_row(fid, 2, arch, "70")  # the local id goes with the row
    assert [u for u, in st.db.execute("SELECT id FROM threads WHERE folder_id = ?", (fid,))] == [1, 3]
    assert st.row(arch, 2).sid == "70" and st.row(fid, 2) is None
    st.reset_folder(fid, None)
    assert st.db.execute("SELECT count(*) FROM threads WHERE folder_id = ?", (fid,)).fetchone()[0] == 0
    st.set_threads(arch, thread_order(st.headers_for_threading(arch)))
    assert st.thread_info(arch) == [(2, 0, 2)]
    st.delete_folder("Archive")
    assert st.db.execute("SELECT count(*) FROM threads").fetchone()[0] == 0


def test_intents_write_row_and_journal_and_coalesce(st):
    fid = st.upsert_folder("INBOX", "/", (), "inbox")
    st.insert_headers(fid, [row(1), row(2, flags="\\Seen")])
    assert st.set_flags(fid, [1, 2], add=["seen"]) == [1]  # 2 was seen already: no entry
    assert st.set_flags(fid, [1], add=["flagged"]) == [1]
    pend = st.pending()
    assert len(pend) == 1 and set(pend[0].add_flags) == {"flagged", "seen"}
    assert (pend[0].msg_id, pend[0].sid) == (1, "1")
    st.set_flags(fid, [1], remove=["seen"])
    # the latest intent ("unread") is kept and sent: another device may have marked it read
    assert st.pending()[0].add_flags == ("flagged",) and st.pending()[0].remove_flags == ("seen",)
    assert st.row(fid, 1).flags == {"flagged"}
    st.set_flags(fid, [1], add=["$Work"])  # a keyword
    assert st.row(fid, 1).keywords == "$Work" and st.row(fid, 1).flags == {"flagged"}
    assert st.counts(fid) == (2, 1)


def test_server_flags_keep_pending_intents_on_top(st):
    fid = st.upsert_folder("INBOX", "/", (), "inbox")
    st.insert_headers(fid, [row(1), row(2)])
    st.set_flags(fid, [1], add=["flagged"])
    changed = st.apply_server_flags(fid, [("1", {"seen"}, "", 9), ("2", {"answered"}, "$Junk", 9), ("77", (), "", 9)])
    assert sorted(changed) == [1, 2]
    assert st.row(fid, 1).flags == {"flagged", "seen"} and st.row(fid, 1).modseq == 9
    assert st.row(fid, 2).answered and st.row(fid, 2).keywords == "$Junk"
    st.journal_done(e.id for e in st.pending())
    st.apply_server_flags(fid, [("1", {"seen"}, "", 10)])
    assert st.row(fid, 1).flags == {"seen"}  # no intent left: the server is the truth


def test_expunge_elsewhere_wins_over_a_pending_flag(st):
    fid = st.upsert_folder("INBOX", "/", (), "inbox")
    st.insert_headers(fid, [row(1), row(2)])
    st.set_flags(fid, [1], add=["flagged"])
    assert st.remove_sids(fid, ["1", "5"]) == [1]
    assert st.pending() == [] and st.local_sids(fid) == ["2"]


def test_packed_id_list_is_the_same_order_and_survives_ids_past_32_bits(st):
    fid = st.upsert_folder("INBOX", "/", (), "inbox")
    st.insert_headers(fid, [row(1, date=5), row(2, date=1), row(3, date=9)])
    packed = st.id_list(fid, packed=True)
    assert packed.typecode == "I" and list(packed) == st.id_list(fid) == [3, 1, 2]
    assert list(st.id_list(fid, "date", reverse=True, packed=True)) == [2, 1, 3]
    assert list(st.id_list(fid, limit=2, packed=True)) == [3, 1]
    assert list(st.id_list(st.upsert_folder("Empty", "/", (), None), packed=True)) == []
    # (local ids never come back: a file that stored 4 billion rows has wider ones)
    st.db.execute("UPDATE messages SET id = ? WHERE id = 1", (2**33 + 1,))
    wide = st.id_list(fid, packed=True)
    assert wide.typecode == "q" and list(wide) == st.id_list(fid) == [3, 2**33 + 1, 2]


def test_move_hides_at_once_and_uid_list_orders(st):
    fid = st.upsert_folder("INBOX", "/", (), "inbox")
    st.insert_headers(fid, [row(1, date=5), row(2, date=1), row(3, date=9)])
    assert st.id_list(fid) == [3, 1, 2]
    assert st.id_list(fid, "date", reverse=True) == [2, 1, 3]
    assert st.id_list(fid, "arrival") == [3, 2, 1]
    assert st.id_list(fid, "size") == [3, 2, 1]
    st.move(fid, [1], "Archive")
    assert st.id_list(fid) == [3, 2] and st.counts(fid) == (2, 2)
    assert [(e.op, e.dest) for e in st.pending()] == [("move", "Archive")]


def test_uidvalidity_reset_rematches_by_message_id(st):
    fid = st.upsert_folder("Archive", "/", (), "archive")
    st.insert_headers(fid, [row(1, msgid="<a@x>"), row(2, msgid="<b@x>")])
    st.set_flags(fid, [2], add=["flagged"])
    st.reset_folder(fid, '{"uidvalidity": 999}')
    assert st.local_sids(fid) == [] and st.pending()[0].sid is None
    assert st.folder_state(fid) == '{"uidvalidity": 999}'
    # the same messages (same size and date) under new server ids: new local ids
    st.insert_headers(fid, [("10", *row(2, msgid="<b@x>")[1:]), ("11", *row(1, msgid="<a@x>")[1:])])
    assert st.journal_rematch(fid) == 1
    new = st.ids_of(fid, ["10"])["10"]
    assert new == 3 and (st.pending()[0].msg_id, st.pending()[0].sid) == (3, "10") and st.row(fid, 3).flagged


def test_thread_positions_are_stable_when_new_threads_arrive_on_top(st):
    fid = st.upsert_folder("INBOX", "/", (), "inbox")
    st.insert_headers(fid, [row(u) for u in range(1, 201)])
    st.set_threads(fid, thread_order(st.headers_for_threading(fid)))
    before = dict(st.db.execute("SELECT id, pos FROM threads"))
    assert st.id_list(fid, "thread")[:3] == [200, 199, 198]
    st.insert_headers(fid, [row(201), row(202, irt="<5@x>", refs="<5@x>")])
    writes = []
    watched = ("UPDATE messages", "INSERT OR REPLACE INTO threads")
    st.db.set_trace_callback(lambda sql: writes.append(sql) if sql.startswith(watched) else None)
    st.set_threads(fid, thread_order(st.headers_for_threading(fid)))
    st.db.set_trace_callback(None)
    assert 2 <= len(writes) < 10, "only the new rows and the thread that moved are rewritten"
    order = st.id_list(fid, "thread")
    assert order[:3] == [5, 202, 201]  # the revived thread (newest reply) on top, then the new one
    after = dict(st.db.execute("SELECT id, pos FROM threads"))
    assert sum(1 for u in before if before[u] != after[u]) <= 2


def test_flags_with_spaces_or_controls_are_refused(st):
    fid = st.upsert_folder("INBOX", "/", (), "inbox")
    st.insert_headers(fid, [row(1)])
    for bad in ("two words", "", "x\ny", "tab\t"):
        with pytest.raises(ValueError):
            st.set_flags(fid, [1], add=[bad])
    assert st.pending() == []


def test_a_batch_with_a_known_sid_upserts_it_keeps_its_id_and_adds_the_new_ones(st):
    """insert_headers tries a plain INSERT (the cheap path of a first fill) and, when a sid of the
    batch is known already (a refetch after a crash), upserts the whole batch instead: nothing
    doubles, the known row keeps its local id and takes the refetched values, the new rows get ids."""
    fid = st.upsert_folder("INBOX", "/", (), "inbox")
    first = st.insert_headers(fid, [row(1), row(2)])
    again = [row(2, flags="\\Seen"), row(3), row(4)]
    ids = st.insert_headers(fid, again)
    assert ids[0] == first[1] and len(set(ids)) == 3 and not set(ids[1:]) & set(first)
    assert st.db.execute("SELECT COUNT(*) FROM messages WHERE folder_id = ?", (fid,)).fetchone()[0] == 4
    assert st.db.execute("SELECT seen FROM messages WHERE id = ?", (first[1],)).fetchone()[0] == 1
    # the batch's rollback to the savepoint left no half of it behind, and the store takes more
    assert st.insert_headers(fid, [row(5)]) and st.db.execute("SELECT COUNT(*) FROM messages").fetchone()[0] == 5
