"""Journal entry states (issue 9.1): a claimed entry is immutable, newer intents go after it."""

from __future__ import annotations

import pytest

from tuimail.store import Store
from tests.support.rows import v6


def row(uid, flags=""):
    return v6(_row(uid, flags))


def _row(uid, flags=""):
    return (uid, 1, flags, 1_700_000_000 + uid * 60, f"From {uid}", "to", "", f"Subject {uid}", f"<{uid}@x>",
            None, "", 100 + uid, 0)


@pytest.fixture
def st(tmp_path):
    s = Store(tmp_path / "a" / "s.sqlite3")
    fid = s.upsert_folder("INBOX", "/", (), "inbox")
    s.upsert_folder("Archive", "/", (), "archive")
    s.insert_headers(fid, [row(1), row(2, "\\Seen")])
    yield s
    s.close()


def entries(st):
    return [(e.msg_id, e.op, e.add_flags, e.remove_flags) for e in st.pending()]


def states(st):
    return [r[0] for r in st.db.execute("SELECT state FROM journal ORDER BY id")]


def test_claimed_entry_takes_no_newer_intent(st):
    fid = st.folder_id("INBOX")
    st.set_flags(fid, [1], add=["seen"])
    st.set_flags(fid, [1], add=["flagged"])  # merged: nothing sent yet
    assert entries(st) == [(1, "flags", ("flagged", "seen"), ())]
    claimed = st.journal_claim(fid)
    assert [e.msg_id for e in claimed] == [1] and states(st) == ["sending"]
    st.set_flags(fid, [1], remove=["seen"])  # on the wire: a new entry, after it
    st.set_flags(fid, [1], add=["answered"])  # merged into the new (pending) one
    assert entries(st) == [(1, "flags", ("flagged", "seen"), ()),
                           (1, "flags", ("answered",), ("seen",))]
    assert states(st) == ["sending", "pending"]
    assert st.pending_count() == 2 and st.pending_folders() == {"INBOX"}
    # a server answer without the claimed flags still shows every intent, in order
    st.apply_server_flags(fid, [("1", (), "", 9)])
    assert st.row(fid, 1).flags == {"answered", "flagged"}
    st.journal_done(e.id for e in claimed)
    assert entries(st) == [(1, "flags", ("answered",), ("seen",))]


def test_cancelling_intent_on_a_claimed_entry_is_kept(st):
    """+Seen on the wire, then -Seen: not an empty entry deleted under the STORE."""
    fid = st.folder_id("INBOX")
    st.set_flags(fid, [1], add=["seen"])
    st.journal_claim(fid)
    st.set_flags(fid, [1], remove=["seen"])
    assert entries(st) == [(1, "flags", ("seen",), ()), (1, "flags", (), ("seen",))]
    # while nothing is claimed, the later intent replaces the earlier one in the entry
    st.set_flags(fid, [2], remove=["seen"])
    st.set_flags(fid, [2], add=["seen"])
    assert entries(st)[2:] == [(2, "flags", ("seen",), ())]


def test_refused_entry_goes_back_to_pending_but_takes_no_newer_intent(st):
    """A newer intent does not share a refused entry's fate: it is a new entry, sent after it."""
    fid = st.folder_id("INBOX")
    st.set_flags(fid, [1], add=["seen"], remove=[])
    (e,) = st.journal_claim(fid)
    st.journal_failed(e.id, "NO no")
    assert states(st) == ["pending"]
    st.set_flags(fid, [1], remove=["seen"])
    assert entries(st) == [(1, "flags", ("seen",), ()), (1, "flags", (), ("seen",))]
    assert st.journal_claim(fid)[0].id == e.id  # retried, in order


def test_claim_takes_leftover_sending_entries_and_releases(st):
    fid = st.folder_id("INBOX")
    st.set_flags(fid, [1], add=["seen"])
    first = st.journal_claim(fid)  # then a crash: left 'sending'
    st.set_flags(fid, [2], add=["flagged"])
    again = st.journal_claim(fid)
    assert [e.id for e in again] == [first[0].id, again[1].id] and states(st) == ["sending", "sending"]
    st.journal_release([again[1].id])
    assert states(st) == ["sending", "pending"]
    st.db.execute("UPDATE journal SET msg_id = NULL")  # after a UIDVALIDITY reset: not sent until re-matched
    st.db.execute("UPDATE journal SET state = 'pending'")
    assert st.journal_claim(fid) == []


def test_flags_changed_while_a_move_is_sent_follow_the_message(st):
    fid, dest = st.folder_id("INBOX"), st.folder_id("Archive")
    st.move(fid, [1], "Archive")
    (mv,) = st.journal_claim(fid)
    st.set_flags(fid, [1], add=["flagged"])  # `tuimail flag` on the hidden row
    st.move_row(fid, 1, dest, "77")  # the row keeps its local id
    st.journal_done([mv.id])
    assert [(e.folder, e.msg_id, e.sid, e.add_flags) for e in st.pending()] == [("Archive", 1, "77", ("flagged",))]
    assert st.row(dest, 1).flags == {"flagged"}
    assert [e.sid for e in st.journal_claim(dest)] == ["77"]
