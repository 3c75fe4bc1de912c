"""Failed actions in the store: vanished folders, discarding, re-matching after a UIDVALIDITY reset."""

from __future__ import annotations

import pytest

from tuimail.store import Store
from tuimail.store.failures import GONE_REASON

from .test_store import row


@pytest.fixture
def st(tmp_path):
    s = Store(tmp_path / "a" / "s.sqlite3")
    yield s
    s.close()


def test_inbox_is_kept_and_a_folder_with_actions_is_kept_as_gone(st):
    inbox = st.upsert_folder("INBOX", "/", (), "inbox")
    lists = st.upsert_folder("Lists", "/", (), None)
    st.upsert_folder("Old", "/", (), None)
    st.insert_headers(lists, [row(1), row(2)])
    st.set_flags(lists, [1], add=["flagged"])
    assert st.folder_vanished("INBOX") == "kept" and st.folder(inbox) is not None
    assert st.folder_vanished("Old") == "deleted" and st.folder("Old") is None
    assert st.folder_vanished("Lists") == "gone"
    info = st.folder("Lists")
    assert info.gone and len(st.local_sids(lists)) == 2
    assert st.pending() == [] and st.failed_summary() == [("Lists", 1)]
    assert st.actions()[0].error == GONE_REASON and st.pending_folders() == set()
    st.upsert_folder("Lists", "/", (), None)  # back in the LIST
    assert not st.folder("Lists").gone and [e.msg_id for e in st.pending()] == [1]


def test_discard_takes_back_only_what_the_entry_changed(st):
    fid = st.upsert_folder("INBOX", "/", (), "inbox")
    st.insert_headers(fid, [row(1, flags="\\Answered"), row(2)])
    st.set_flags(fid, [1], add=["flagged"], remove=["answered"])
    st.move(fid, [2], "Archive")
    st.expunge(fid, [2])  # (already hidden: no second entry)
    flag, move = st.actions()
    assert st.discard([flag.id]) == [(fid, 1)]
    assert st.row(fid, 1).flags == {"answered"}
    assert st.discard([move.id]) == [(fid, 2)] and 2 in st.id_list(fid)
    assert st.actions() == [] and st.discard([move.id]) == []


def test_discard_leaves_an_entry_being_sent_alone(st):
    fid = st.upsert_folder("INBOX", "/", (), "inbox")
    st.insert_headers(fid, [row(1)])
    st.set_flags(fid, [1], add=["flagged"])
    [e] = st.actions()
    st.db.execute("UPDATE journal SET state = 'sending' WHERE id = ?", (e.id,))
    assert st.discard([e.id]) == [] and len(st.actions()) == 1


def test_rematch_keeps_the_entries_of_one_message_together(st):
    fid = st.upsert_folder("Archive", "/", (), "archive")
    st.insert_headers(fid, [row(1), row(2)])
    st.set_flags(fid, [1], add=["seen"])
    st.move(fid, [1], "Trash")  # two entries for one message claim the same row: that is fine
    st.reset_folder(fid, None)
    st.insert_headers(fid, [("20", *row(1)[1:]), ("21", *row(2)[1:])])  # new local ids 3 and 4
    assert st.journal_rematch(fid) == 2
    assert [(e.op, e.msg_id, e.sid) for e in st.pending()] == [("flags", 3, "20"), ("move", 3, "20")]
    assert st.id_list(fid) == [4]


def test_rematch_refuses_a_row_two_messages_claim(st):
    fid = st.upsert_folder("Archive", "/", (), "archive")
    twin = row(1, msgid="<same@x>")
    st.insert_headers(fid, [twin, ("2", *twin[1:])])  # two identical copies
    st.set_flags(fid, [1], add=["flagged"])
    st.set_flags(fid, [2], add=["seen"])
    st.reset_folder(fid, None)
    st.insert_headers(fid, [("30", *twin[1:])])  # only one came back (local id 3)
    assert st.journal_rematch(fid) == 0
    assert st.pending() == [] and {a.error for a in st.actions()} == {
        "several messages match after the server reset the folder (UIDVALIDITY changed)"}
    assert st.row(fid, 3).flags == frozenset()


def test_rematch_of_an_entry_written_before_v5_uses_the_message_id(st):
    fid = st.upsert_folder("Archive", "/", (), "archive")
    st.insert_headers(fid, [row(1)])
    st.set_flags(fid, [1], add=["flagged"])
    st.db.execute("UPDATE journal SET msg_size = NULL, msg_date = NULL")
    st.reset_folder(fid, None)
    st.insert_headers(fid, [("5", 9, frozenset(), "", None, "f", "t", "", "s", "<1@x>", None, "", 999, 0)])
    assert st.journal_rematch(fid) == 1 and "flagged" in st.row(fid, 2).flags
