"""Acting on many, below the UI (issue 13 item 5): a copy in a POP3 account's local folders (made at
once, the stored message with it), the journal's copy entries, thread members, and the mbox
format of "save to file" (From_ line, mboxrd quoting, a reader getting the messages back)."""

from __future__ import annotations

import mailbox

import pytest

from tuimail.backends.pop3.ledger import StoreLedger
from tuimail.backends.pop3.opener import Pop3Reader
from tuimail.mail import mbox
from tuimail.store import Store
from tuimail.store.pop3ledger import Pop3Ledger
from tuimail.store.writer import Intent, run_intent

from tests.support.rows import v6

from .test_pop3_store_ledger import commit, raw


@pytest.fixture
def store(tmp_path):
    st = Store(tmp_path / "s.sqlite3")
    yield st
    st.close()


def test_a_local_copy_is_a_new_row_with_the_stored_message_and_no_journal(store):
    pop = Pop3Ledger(store)
    inbox = pop.local_folder("INBOX", "inbox")
    keep = pop.local_folder("Keep")
    led = StoreLedger(pop, inbox, "acc", lambda e: None)
    for i in (1, 2):
        commit(led, i)
    led.flush()
    a, b = led.added
    assert run_intent(store, Intent("copy", inbox, (a, b, 999), dest="Keep")) == [a, b]
    assert store.pending() == []  # local: nothing for a server
    copies = store.rows(keep, store.id_list(keep))
    assert sorted(r.subject for r in copies.values()) == ["m1", "m2"]
    assert not set(copies) & {a, b}  # new local ids; the originals stay
    assert store.counts(inbox)[0] == 2
    opener = Pop3Reader(store, None)
    by = {r.subject: i for i, r in copies.items()}
    assert opener.raw("Keep", by["m1"]) == raw(1)
    store.expunge(keep, [by["m1"]])  # deleting the copy leaves the original whole
    assert opener.raw("INBOX", a) == raw(1)
    with pytest.raises(ValueError, match="no local folder"):
        store.copy(inbox, [a], "Nowhere")


def test_copy_entries_keep_the_rows_and_are_one_each(store):
    fid = store.upsert_folder("INBOX", "/", [], "inbox")
    store.upsert_folder("Keep", "/", [], None)
    store.insert_headers(fid, [v6((u, 1, "", 1_700_000_000 + u, "a@x", "", "", f"s{u}", f"<{u}@x>", None, "",
                                   10, False)) for u in (1, 2, 3)])
    ids = store.id_list(fid)
    assert sorted(store.copy(fid, ids, "Keep")) == sorted(ids)
    assert store.counts(fid)[0] == 3
    entries = store.pending(fid)
    assert [e.op for e in entries] == ["copy"] * 3 and {e.dest for e in entries} == {"Keep"}
    assert [a.describe() for a in store.actions()][0] == "copy to Keep"
    keep = store.folder_id("Keep")
    new = store.copy_rows(fid, [(ids[0], "41"), (ids[1], "42")], keep)
    assert len(new) == 2 and store.copy_rows(fid, [(ids[0], "41")], keep) == []  # known there: kept once
    assert sorted(r.sid for r in store.rows(keep, store.id_list(keep)).values()) == ["41", "42"]


def test_thread_members_are_the_thread_and_not_its_neighbours(store):
    fid = store.upsert_folder("INBOX", "/", [], "inbox")
    rows = [(1, None, ""), (2, "<1@x>", "<1@x>"), (3, "<2@x>", "<1@x> <2@x>"), (4, None, "")]
    store.insert_headers(fid, [v6((u, 1, "", 1_700_000_000 + u, "a@x", "", "", f"s{u}", f"<{u}@x>", irt, refs,
                                   10, False)) for u, irt, refs in rows])
    by = store.ids_of(fid, ["1", "2", "3", "4"])
    assert sorted(store.thread_members(fid, by["3"])) == sorted([by["1"], by["2"], by["3"]])
    assert store.thread_members(fid, by["4"]) == [by["4"]]


def test_mbox_entries_quote_from_lines_and_read_back(tmp_path):
    msgs = [b"From: Ann <ann@example.org>\r\nDate: Mon, 01 Jan 2024 10:00:05 +0000\r\nSubject: one\r\n\r\n"
            b"From here on\r\n>From there\r\nplain\r\n",
            b"Subject: no sender or date\n\nbody without a newline"]
    data = b"".join(mbox.entry(m, now=0) for m in msgs)
    assert data.startswith(b"From ann@example.org Mon Jan  1 10:00:05 2024\n")
    assert b"\n>From here on\n>>From there\n" in data and b"\r" not in data
    assert b"\nFrom MAILER-DAEMON Thu Jan  1 00:00:00 1970\n" in data
    path = tmp_path / "box"
    path.write_bytes(data)
    got = [m for m in mailbox.mbox(str(path))]
    assert [m["Subject"] for m in got] == ["one", "no sender or date"]
    assert mbox.is_mbox(b"From ") and mbox.is_mbox(b"") and not mbox.is_mbox(b"hello")


def test_a_copy_still_waiting_is_undone_by_dropping_its_entries(store):
    fid = store.upsert_folder("INBOX", "/", [], "inbox")
    store.upsert_folder("Keep", "/", [], None)
    store.insert_headers(fid, [v6((u, 1, "", 1_700_000_000 + u, "a@x", "", "", f"s{u}", f"<{u}@x>", None, "",
                                   10, False)) for u in (1, 2, 3)])
    ids = store.id_list(fid)
    assert sorted(run_intent(store, Intent("copy", fid, tuple(ids[:2]), dest="Keep"))) == sorted(ids[:2])
    entry = store.undo.latest()
    assert entry is not None and entry.what == "copied 2 messages to Keep"
    assert run_intent(store, Intent("undo", 0, (entry.id,))) == []
    assert store.pending() == [] and store.counts(fid)[0] == 3
    assert store.undo.latest() is None


def test_a_local_copy_is_undone_by_deleting_it(store):
    pop = Pop3Ledger(store)
    inbox = pop.local_folder("INBOX", "inbox")
    keep = pop.local_folder("Keep")
    led = StoreLedger(pop, inbox, "acc", lambda e: None)
    commit(led, 1)
    led.flush()
    (a,) = led.added
    run_intent(store, Intent("copy", inbox, (a,), dest="Keep"))
    assert store.counts(keep)[0] == 1
    entry = store.undo.latest()
    run_intent(store, Intent("undo", 0, (entry.id,)))
    assert store.counts(keep)[0] == 0 and store.counts(inbox)[0] == 1
    assert Pop3Reader(store, None).raw("INBOX", a) == raw(1)
