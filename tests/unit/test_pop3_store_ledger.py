"""The POP3 ledger on the store (store/pop3ledger.py + backends/pop3/ledger.py), without a server:
a download is a row of the local INBOX with its ledger entry and copy; local folders take flags,
moves and deletes without a journal entry; a deleted row keeps its UIDL known; a failed write
inside a batch keeps no half of it."""

from __future__ import annotations

import sqlite3

import pytest

from tuimail.backends.pop3.ledger import GONE, StoreLedger
from tuimail.backends.pop3.plan import ServerMessage, fingerprint
from tuimail.core.events import RowsChanged
from tuimail.store import Store
from tuimail.store.pop3ledger import Pop3Ledger


def raw(i: int) -> bytes:
    return (b"From: A <a@example.org>\r\nSubject: m%d\r\nMessage-ID: <%d@x>\r\n"
            b"Date: Mon, 01 Jan 2024 10:00:%02d +0000\r\n\r\nbody %d\r\n" % (i, i, i % 60, i))


@pytest.fixture
def store(tmp_path):
    st = Store(tmp_path / "s.sqlite3")
    yield st
    st.close()


def commit(led: StoreLedger, i: int, uidl: str | None = None) -> int:
    r = raw(i)
    return led.commit(ServerMessage(i, len(r), uidl if uidl is not None else f"U{i}"), r,
                      fingerprint(r, len(r)), headers_only=False)


def test_a_download_is_a_row_with_its_entry_and_copy_and_local_changes_are_not_journalled(store):
    pop = Pop3Ledger(store)
    inbox = pop.local_folder("INBOX", "inbox")
    arch = pop.local_folder("Archive", "archive")
    events: list = []
    led = StoreLedger(pop, inbox, "acc", events.append)
    refs = [commit(led, i) for i in (1, 2, 3)]
    led.flush()
    assert [e.added for e in events if isinstance(e, RowsChanged)] == [tuple(led.added)]
    rows = store.rows(inbox, store.id_list(inbox))
    assert sorted(r.sid for r in rows.values()) == ["U1", "U2", "U3"]
    assert sorted(r.subject for r in rows.values()) == ["m1", "m2", "m3"]
    a, b, c = led.added
    assert pop.message(a)[0] == raw(1)
    assert store.set_flags(inbox, [a], add=("flagged", "seen")) == [a]
    assert store.move(inbox, [b], "Archive") == [b]
    assert store.expunge(inbox, [c]) == [c]
    assert store.pending_count() == 0 and store.pending() == []
    assert store.row(inbox, a).flagged and store.id_list(arch) == [b] and store.id_list(inbox) == [a]
    assert pop.message(c) is None  # the copy went with the row
    known = {k.ref: k for k in led.known()}
    assert known[refs[2]].uidl == "U3" and known[refs[2]].has_body  # still known: never downloaded again
    assert known[refs[2]].downloaded_at != GONE
    deleting = StoreLedger(pop, inbox, "acc", delete_on_server=True)
    assert {k.ref: k for k in deleting.known()}[refs[2]].downloaded_at == GONE
    with pytest.raises(ValueError, match="no local folder"):
        store.move(inbox, [a], "Nowhere")


def test_an_imap_folder_is_still_journalled(store):
    fid = store.upsert_folder("INBOX", "/", (), "inbox")
    store.insert_headers(fid, [("7", 0, frozenset(), "", 1, "a", "b", "", "s", None, None, "", 10, 0)])
    (id_,) = store.id_list(fid)
    store.set_flags(fid, [id_], add=("seen",))
    assert store.pending_count() == 1


def test_no_uidl_and_a_remap(store):
    pop = Pop3Ledger(store)
    inbox = pop.local_folder("INBOX", "inbox")
    led = StoreLedger(pop, inbox, "acc")
    r1 = led.commit(ServerMessage(1, 10, None), raw(1), "fp1", headers_only=False)
    r2 = led.commit(ServerMessage(2, 10, None), raw(2), "fp2", headers_only=False)
    sids = sorted(r.sid for r in store.rows(inbox, store.id_list(inbox)).values())
    assert len(set(sids)) == 2 and all(s.startswith("#") for s in sids)
    led.remap(r1, "NEW1")
    assert "NEW1" in {r.sid for r in store.rows(inbox, store.id_list(inbox)).values()}
    assert {k.ref: k.uidl for k in led.known()} == {r1: "NEW1", r2: None}


def test_a_failed_write_in_a_batch_keeps_no_half_of_it(store, monkeypatch):
    pop = Pop3Ledger(store)
    inbox = pop.local_folder("INBOX", "inbox")
    events: list = []
    led = StoreLedger(pop, inbox, "acc", events.append, batch=True)
    commit(led, 1)
    commit(led, 2)
    real = Pop3Ledger.add_many  # (what commit writes with)

    def failing(self, *a, **kw):
        real(self, *a, **kw)
        raise sqlite3.OperationalError("disk I/O error (test)")

    monkeypatch.setattr(Pop3Ledger, "add_many", failing)
    with pytest.raises(sqlite3.OperationalError):
        commit(led, 3)
    led.flush()
    assert store.id_list(inbox) == [] and pop.entries() == [] and led.added == [] and events == []
    monkeypatch.setattr(Pop3Ledger, "add_many", real)
    commit(led, 4)
    led.flush()
    assert [r.subject for r in store.rows(inbox, store.id_list(inbox)).values()] == ["m4"]


def test_repair_keeps_a_folder_local(tmp_path):
    from tuimail.store.repair import repair_store
    path = tmp_path / "r.sqlite3"
    with Store(path) as st:
        pop = Pop3Ledger(st)
        pop.local_folder("INBOX", "inbox")
        pop.local_folder("Archive", "archive")
    repair_store(path, force=True)
    with Store(path) as st:
        assert [r[0] for r in st.db.execute("SELECT name FROM folders WHERE local = 1 ORDER BY name")] == \
            ["Archive", "INBOX"]


@pytest.mark.parametrize("batch", [True, False])
def test_a_repeated_uidl_gets_a_server_id_of_its_own_and_the_batch_goes_on(store, batch):
    pop = Pop3Ledger(store)
    inbox = pop.local_folder("INBOX", "inbox")
    led = StoreLedger(pop, inbox, "acc", batch=batch)
    for i, uidl in ((1, "SAME"), (2, "SAME"), (3, "U3")):
        commit(led, i, uidl)
    led.flush()
    sids = sorted(r[0] for r in store.db.execute("SELECT sid FROM messages"))
    assert sids[0] == "SAME" and sids[1].startswith("SAME#") and sids[2] == "U3"
    assert [e.uidl for e in pop.entries()] == ["SAME", "SAME", "U3"]
    assert store.folder("INBOX").total == 3


def _dump(store) -> tuple:
    db = store.db
    return (db.execute("SELECT * FROM messages ORDER BY id").fetchall(),
            db.execute("SELECT * FROM pop3_ledger ORDER BY id").fetchall(),
            db.execute("SELECT * FROM pop3_raw ORDER BY msg_id").fetchall(),
            db.execute("SELECT * FROM sqlite_sequence ORDER BY name").fetchall(),
            db.execute("SELECT id, threads_dirty FROM folders ORDER BY id").fetchall())


def test_add_many_stores_what_add_one_by_one_stores(tmp_path):
    """The same rows, server ids (a missing, a repeated and an already stored UIDL), ledger entries,
    copies and ids; a deleted message's id is not used again (AUTOINCREMENT)."""
    items = [(u, f"fp{i}", raw(i), (1_700_000_000 + i, "a", "b", "", f"m{i}", f"<{i}@x>", None, "", 100 + i, i % 2))
             for i, u in enumerate(["U1", None, "U3", "U3", "OLD", "U6", None], 1)]
    dumps, refs = [], []
    for name in ("one", "many"):
        with Store(tmp_path / f"{name}.sqlite3") as st:
            pop = Pop3Ledger(st)
            inbox = pop.local_folder("INBOX", "inbox")
            pop.add(inbox, "OLD", "fp0", raw(0), False, (1, "", "", "", "", None, None, "", 1, 0), 5.0)
            pop.add(inbox, "GONE", "fpg", raw(0), False, (1, "", "", "", "", None, None, "", 1, 0), 5.0)
            gone = st.db.execute("SELECT id FROM messages WHERE sid = 'GONE'").fetchone()[0]
            st.expunge(inbox, [gone])  # the newest id: never used again
            if name == "one":
                refs.append([pop.add(inbox, u, fp, r, True, f, 9.0) for u, fp, r, f in items])
            else:
                refs.append(pop.add_many(inbox, items, True, 9.0))
            dumps.append(_dump(st))
    assert refs[0] == refs[1]
    assert dumps[0] == dumps[1]
    sids = [r[2] for r in dumps[1][0]]
    assert "U3" in sids and any(s.startswith("U3#") for s in sids) and any(s.startswith("OLD#") for s in sids)
    assert "GONE" not in sids and min(r[0] for r in dumps[1][0] if r[2] != "OLD") > gone


def test_set_bodies_stores_what_set_body_one_by_one_stores(tmp_path):
    dumps, got = [], []
    for name in ("one", "many"):
        with Store(tmp_path / f"{name}.sqlite3") as st:
            pop = Pop3Ledger(st)
            inbox = pop.local_folder("INBOX", "inbox")
            pairs = pop.add_many(inbox, [(f"U{i}", "fp", raw(i)[:40], (1, "", "", "", "", None, None, "", 1, 0))
                                         for i in range(4)], True, 1.0)
            st.expunge(inbox, [pairs[1][1]])  # deleted by the user before its body came
            items = [(lid, raw(i) + b"whole", (None, True, False, True)[i]) for i, (lid, _) in enumerate(pairs)]
            if name == "one":
                got.append([pop.set_body(*it) for it in items])
            else:
                got.append(pop.set_bodies(items))
            dumps.append(_dump(st))
    assert got[0] == got[1] and got[1][1] is None
    assert dumps[0] == dumps[1]


@pytest.mark.parametrize("batch", [True, False])
def test_commit_many_reports_a_screenful_first_and_a_failed_body_window_keeps_no_half(store, monkeypatch, batch):
    pop = Pop3Ledger(store)
    inbox = pop.local_folder("INBOX", "inbox")
    events: list = []
    led = StoreLedger(pop, inbox, "acc", events.append, batch=batch)
    refs = led.commit_many([(ServerMessage(i, 0, f"U{i}"), raw(i), f"fp{i}") for i in range(60)], headers_only=True)
    assert len(refs) == 60 and [len(e.added) for e in events] == [60]  # the first screenful, at once
    refs += led.commit_many([(ServerMessage(i, 0, f"U{i}"), raw(i), f"fp{i}") for i in range(60, 70)],
                            headers_only=True)
    led.flush()
    assert [len(e.added) for e in events] == [60, 10] and store.folder("INBOX").total == 70
    real = Pop3Ledger.set_bodies

    def failing(self, items):
        with self.store.transaction():  # (written, then the disk fails before the commit)
            real(self, items)
            raise sqlite3.OperationalError("disk I/O error (test)")

    monkeypatch.setattr(Pop3Ledger, "set_bodies", failing)
    with pytest.raises(sqlite3.OperationalError):
        led.commit_bodies([(ref, raw(i) + b"more") for i, ref in enumerate(refs[:5])])
    led.flush()
    assert not any(e.has_body for e in pop.entries())  # rolled back (batched), or never committed
    monkeypatch.setattr(Pop3Ledger, "set_bodies", real)
    led.commit_bodies([(ref, raw(i) + b"more") for i, ref in enumerate(refs[:5])])
    led.flush()
    assert sum(e.has_body for e in pop.entries()) == 5


def test_a_long_download_is_committed_every_batch_and_reported_every_quarter_second(tmp_path, monkeypatch):
    """Batched: a transaction every BATCH_ROWS messages; a RowsChanged (each has the app read its
    list again) for the first screenful, then at most every EVENT_EVERY seconds, then at the end."""
    from tuimail.backends.pop3 import ledger as L
    clock = [100.0]
    monkeypatch.setattr(L.time, "monotonic", lambda: clock[0])
    store = Store(tmp_path / "s.sqlite3")
    other = sqlite3.connect(tmp_path / "s.sqlite3")  # what another connection (the app) sees
    pop = Pop3Ledger(store)
    inbox = pop.local_folder("INBOX", "inbox")
    events: list = []
    led = StoreLedger(pop, inbox, "acc", events.append, batch=True)
    seen = []
    for start in range(0, 2000, 100):  # windows of 100, quicker than EVENT_EVERY
        led.commit_many([(ServerMessage(i, 0, f"U{i}"), raw(i), f"fp{i}") for i in range(start, start + 100)],
                        headers_only=True)
        seen.append(other.execute("SELECT count(*) FROM messages").fetchone()[0])
    assert [len(e.added) for e in events] == [100]  # the first screenful, then nothing for 0.25 s
    assert seen[:7] == [100, 100, 100, 100, 100, 600, 600] and seen[-1] == 1600  # committed every 500
    clock[0] += L.EVENT_EVERY
    led.commit_many([(ServerMessage(2000, 0, "U2000"), raw(2000), "fp2000")], headers_only=True)
    assert [len(e.added) for e in events] == [100, 1901]
    led.headers_done()
    assert other.execute("SELECT count(*) FROM messages").fetchone()[0] == 2001
    other.close()
    store.close()


def test_a_header_only_download_keeps_no_second_copy_of_its_headers(tmp_path):
    """headers_first: the row holds what the list shows; no stored copy until the body comes
    (message() says so with an empty copy and the entry); a local copy of it waits for the body;
    a repair that loses its ledger entry gives it one from its UIDL (never downloaded twice), and
    the local copy gets none (it took the id of the original's entry, whose UIDL was then lost)."""
    from tuimail.store.repair import repair_store
    path = tmp_path / "h.sqlite3"
    with Store(path) as st:
        pop = Pop3Ledger(st)
        inbox = pop.local_folder("INBOX", "inbox")
        pop.local_folder("Archive", "archive")
        led = StoreLedger(pop, inbox, "acc")
        heads = [raw(i).split(b"\r\n\r\n")[0] + b"\r\n\r\n" for i in (1, 2)]
        refs = led.commit_many([(ServerMessage(i, 100, f"U{i}"), h, fingerprint(h, 100))
                                for i, h in zip((1, 2), heads, strict=True)], headers_only=True)
        led.flush()
        a, b = led.added
        assert st.db.execute("SELECT count(*) FROM pop3_raw").fetchone()[0] == 0
        got, entry = pop.message(a)
        assert got == b"" and entry is not None and not entry.has_body and entry.uidl == "U1"
        assert sorted(r.subject for r in st.rows(inbox, [a, b]).values()) == ["m1", "m2"]
        assert st.copy(inbox, [a], "Archive") == []  # nothing to copy yet
        led.commit_body(refs[0], raw(1))
        led.flush()
        assert pop.message(a)[0] == raw(1) and pop.message(a)[1].has_body
        assert st.copy(inbox, [a], "Archive") == [a]
        st.db.execute("DELETE FROM pop3_ledger WHERE msg_id = ?", (b,))  # (the damage a repair meets)
    repair_store(path, force=True)
    with Store(path) as st:
        pop = Pop3Ledger(st)
        e = next(e for e in pop.entries() if e.msg_id == b)
        assert e.uidl == "U2" and not e.has_body and e.on_server
        assert sorted((e.uidl, e.msg_id, e.has_body) for e in pop.entries()) == [("U1", a, True), ("U2", b, False)]
