"""Sender.queue / postpone(instead_of=...): an edit of a message in the Outbox replaces it in one
transaction (issue #12 item 5): the old entry goes with the new one's commit, its draft to
replace is carried over, and an entry that went meanwhile is never doubled by its edit."""

from __future__ import annotations

import pytest

from tuimail.backends.send import Sender
from tuimail.config.model import Account
from tuimail.errors import UsageError
from tuimail.store import Store
from tuimail.store.outbox import Outbox
from tuimail.store.postponed import Postponed

OLD = b"From: me@example.org\r\nTo: b@example.org\r\nSubject: first\r\nMessage-ID: <1@example.org>\r\n\r\nhi\r\n"
NEW = b"From: me@example.org\r\nTo: b@example.org\r\nSubject: second\r\nMessage-ID: <2@example.org>\r\n\r\nhello\r\n"


def sender(tmp_path) -> Sender:
    acc = Account(name="t", kind="imap", host="localhost", port=143, security="none", username="me", password="x",
                  from_address="me@example.org", undo_send=0)
    return Sender(None, acc, store_path=tmp_path / "s.sqlite3")


def test_a_failed_entry_is_replaced_by_its_edit_with_its_draft(tmp_path):
    s = sender(tmp_path)
    old = s.queue(OLD, draft=("Drafts", "7"))
    with Store(s.store_path) as st:
        Outbox(st.db).fail(old, "554 no")
    new = s.queue(NEW, instead_of=("outbox", old))
    (e,) = s.entries()
    assert e.id == new != old and e.subject == "second" and e.state == "queued"
    assert (e.draft_folder, e.draft_sid) == ("Drafts", "7")  # the resumed draft still goes once it is sent


def test_an_entry_on_its_way_is_not_doubled_by_its_edit(tmp_path):
    s = sender(tmp_path)
    old = s.queue(OLD)
    with Store(s.store_path) as st:
        assert Outbox(st.db).claim(old) is not None  # a drain has it on the wire
    with pytest.raises(UsageError, match="sent .or is on its way. meanwhile"):
        s.queue(NEW, instead_of=("outbox", old))
    assert [(e.id, e.state) for e in s.entries()] == [(old, "sending")]


def test_a_postponed_message_edited_then_sent_or_postponed_again(tmp_path):
    s = sender(tmp_path)
    p1 = s.postpone(OLD, "Drafts", replaces=("Drafts", "3"))
    p2 = s.postpone(NEW, "Drafts", instead_of=("postponed", p1))
    (d,) = s.postponed()
    assert d.id == p2 and d.subject == "second" and (d.replaces_folder, d.replaces_sid) == ("Drafts", "3")
    s.queue(OLD, instead_of=("postponed", p2))
    assert s.postponed() == [] and [e.subject for e in s.entries()] == ["first"]
    assert s.discard("outbox", s.entries()[0].id) is not None and s.entries() == []
    with Store(s.store_path) as st:
        assert Postponed(st.db).count() == 0
