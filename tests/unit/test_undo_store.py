"""The undo history in the store (store/undo.py): each intent run by the writer records its exact
inverse in its own transaction; undoing is an intent too. The server side is in
tests/integration/test_undo.py (Dovecot)."""

from __future__ import annotations

import pytest

from tuimail.store import Store
from tuimail.store.undo import KEEP
from tuimail.store.writer import Intent, run_intent
from tests.support.rows import v6


def row(uid, flags=""):
    return v6((uid, 1, flags, 1_700_000_000 + uid * 60, f"From {uid}", "to", "", f"Subject {uid}", f"<{uid}@x>",
               None, "", 100 + uid, 0))


@pytest.fixture
def st(tmp_path):
    s = Store(tmp_path / "a" / "s.sqlite3")
    fid = s.upsert_folder("INBOX", "/", (), "inbox")
    s.upsert_folder("Trash", "/", (), "trash")
    s.insert_headers(fid, [row(1), row(2, "\\Seen"), row(3, "\\Seen \\Flagged"), row(4)])
    yield s
    s.close()


def flags(st, id_):
    r = st.db.execute("SELECT folder_id FROM messages WHERE id = ?", (id_,)).fetchone()
    return set(st.row(r[0], id_).flags)


def test_bulk_flag_is_undone_per_message_not_toggled(st):
    fid = st.folder_id("INBOX")
    assert run_intent(st, Intent("flags", fid, (1, 2, 3, 4), add=("seen",))) == [1, 4]
    (e,) = st.undo.history()
    assert e.what == "marked 2 messages read" and e.undoable
    run_intent(st, Intent("undo", 0, (e.id,)))
    assert [flags(st, i) for i in (1, 2, 3, 4)] == [set(), {"seen"}, {"seen", "flagged"}, set()]
    assert [(j.msg_id, j.remove_flags) for j in st.pending()] == [(1, ("seen",)), (4, ("seen",))]
    assert st.undo.history()[0].state == "undone" and st.undo.latest() is None


def test_a_pending_move_is_undone_without_the_server(st):
    fid = st.folder_id("INBOX")
    run_intent(st, Intent("move", fid, (1, 2, 3), dest="Trash"))
    assert st.counts(fid)[0] == 1 and len(st.pending()) == 3
    (e,) = st.undo.history()
    assert e.what == "moved 3 messages to Trash" and e.msg_ids == {1, 2, 3}
    assert run_intent(st, Intent("undo", 0, (e.id,))) == [1, 2, 3]
    assert st.counts(fid)[0] == 4 and st.pending() == []


def test_a_move_the_server_made_is_moved_back_from_where_it_is(st):
    fid, trash = st.folder_id("INBOX"), st.folder_id("Trash")
    run_intent(st, Intent("move", fid, (1,), dest="Trash"))
    (e,) = st.undo.history()
    assert e.subject == "Subject 1"
    st.journal_done(x.id for x in st.journal_claim(fid))
    st.move_row(fid, 1, trash, "77")  # the server's MOVE with COPYUID: same local id, in Trash
    run_intent(st, Intent("undo", 0, (e.id,)))
    (j,) = st.pending()
    assert (j.folder, j.msg_id, j.sid, j.op, j.dest) == ("Trash", 1, "77", "move", "INBOX")


def test_a_move_without_the_new_id_waits_for_the_destination(st):
    fid, trash = st.folder_id("INBOX"), st.folder_id("Trash")
    run_intent(st, Intent("move", fid, (2,), dest="Trash"))
    e = st.undo.latest()
    st.journal_done(x.id for x in st.journal_claim(fid))
    st.remove_sids(fid, ["2"])  # moved without COPYUID: the row is gone, Trash not synced yet
    run_intent(st, Intent("undo", 0, (e.id,)))
    (j,) = st.pending()
    assert (j.folder, j.msg_id, j.sid, j.message_id, j.dest) == ("Trash", None, None, "<2@x>", "INBOX")
    # the next sync of Trash brings the message under a new id: the move back finds it there
    st.insert_headers(trash, [("9", *row(2, "\\Seen")[1:])])
    assert st.journal_rematch(trash) == 1
    (j,) = st.pending()
    assert j.msg_id is not None and j.sid == "9" and j.op == "move"


def test_expunge_is_not_recorded_and_open_marks_are_not(st):
    fid = st.folder_id("INBOX")
    run_intent(st, Intent("expunge", fid, (4,)))
    run_intent(st, Intent("flags", fid, (1,), add=("seen",), record=False))
    assert st.undo.history() == []


def test_undo_takes_the_later_actions_on_the_same_messages_first(st):
    fid = st.folder_id("INBOX")
    run_intent(st, Intent("flags", fid, (1,), add=("flagged",)))
    first = st.undo.latest()
    run_intent(st, Intent("flags", fid, (4,), add=("seen",)))  # another message: stays
    run_intent(st, Intent("move", fid, (1,), dest="Trash"))
    assert [e.what for e in st.undo.closure(first.id)] == ["moved 1 message to Trash", "flagged 1 message"]
    run_intent(st, Intent("undo", 0, (first.id,)))
    assert flags(st, 1) == set() and st.counts(fid)[0] == 4
    assert flags(st, 4) == {"seen"}
    assert [e.state for e in st.undo.history()] == ["undone", "done", "undone"]


def test_history_is_bounded_and_survives_a_reopen(st, tmp_path):
    fid = st.folder_id("INBOX")
    for i in range(KEEP + 5):
        run_intent(st, Intent("flags", fid, (1,), add=("flagged",) if i % 2 == 0 else (),
                              remove=("flagged",) if i % 2 else ()))
    assert len(st.undo.history()) == KEEP
    st.close()
    with Store(tmp_path / "a" / "s.sqlite3") as again:
        assert len(again.undo.history()) == KEEP and again.undo.latest().what == "flagged 1 message"


def test_a_move_on_the_wire_is_refused_with_one_line(st):
    fid = st.folder_id("INBOX")
    run_intent(st, Intent("move", fid, (1,), dest="Trash"))
    st.journal_claim(fid)  # on the wire
    with pytest.raises(ValueError, match="on its way"):
        run_intent(st, Intent("undo", 0, (st.undo.latest().id,)))
    assert st.undo.latest() is not None  # still there, to try again


def test_local_folders_pop3_are_undone_in_the_store_alone(st):
    st.db.execute("UPDATE folders SET local = 1")
    fid, trash = st.folder_id("INBOX"), st.folder_id("Trash")
    run_intent(st, Intent("move", fid, (1, 2), dest="Trash"))
    run_intent(st, Intent("flags", trash, (1,), add=("flagged",)))
    assert st.counts(fid)[0] == 2 and st.counts(trash)[0] == 2
    first = st.undo.history()[-1]
    assert first.what == "moved 2 messages to Trash"
    run_intent(st, Intent("undo", 0, (first.id,)))  # the flag on 1 first, then the move
    assert st.counts(fid)[0] == 4 and st.counts(trash)[0] == 0
    assert flags(st, 1) == set() and st.pending() == []
