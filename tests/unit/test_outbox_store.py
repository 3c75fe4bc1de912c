"""store/outbox.py: the outbox table's states, each step one atomic statement."""

from __future__ import annotations

import threading

from tuimail.store import Store
from tuimail.store.db import MIGRATIONS, SCHEMA_VERSION, connect
from tuimail.store.outbox import Outbox

RAW = b"From: a@example.org\r\nTo: b@example.org\r\nBcc: c@example.org\r\nSubject: s\r\n\r\nhi\r\n"


def outbox(tmp_path) -> tuple[Store, Outbox]:
    st = Store(tmp_path / "s.sqlite3")
    return st, Outbox(st.db)


def test_add_hold_claim_and_cancel(tmp_path):
    st, ob = outbox(tmp_path)
    i = ob.add(RAW, "a@example.org", ["b@example.org", "c@example.org", "b@example.org"], hold=5, now=100,
               message_id="<m@x>", subject="s", draft=("Drafts", "17"))
    e = ob.get(i)
    assert e is not None and e.rcpts == ("b@example.org", "c@example.org") and e.message == RAW
    assert e.held(101) and e.hold_until == 105 and (e.draft_folder, e.draft_sid) == ("Drafts", "17")
    assert ob.due(104) == [] and ob.claim(i, 104) is None  # the undo window
    assert ob.next_due() == 105
    assert ob.due(105) == [i]
    claimed = ob.claim(i, 105)
    assert claimed is not None and claimed.state == "sending" and claimed.attempts == 1
    assert ob.claim(i, 105) is None and ob.cancel(i) is None  # on its way: no second claim, no undo
    ob.postpone(i, "451 later", 200)
    assert ob.due(150) == [] and ob.due(150, ignore_backoff=True) == [i]
    back = ob.cancel(i)
    assert back is not None and back.message == RAW and ob.entries() == []
    st.close()


def test_sent_then_filed_then_gone_and_a_partial_refusal(tmp_path):
    st, ob = outbox(tmp_path)
    i = ob.add(RAW, "a@example.org", ["b@example.org"], now=0)
    ob.claim(i, 0)
    ob.mark_sent(i, ["b@example.org"], {}, "250 queued", now=1)
    e = ob.get(i)
    assert e is not None and e.state == "sent_unfiled" and e.rcpts == () and e.accepted == ("b@example.org",)
    assert ob.unfiled() == [i] and ob.cancel(i) is None  # sent: not taken back
    ob.filing(i)
    assert ob.get(i).state == "filing"  # type: ignore[union-attr]
    assert ob.done(i) is None and ob.entries() == []
    j = ob.add(RAW, "a@example.org", ["b@example.org", "x@example.org"], now=0)
    ob.claim(j, 0)
    ob.mark_sent(j, ["b@example.org"], {"x@example.org": (550, "no such user")}, "250 ok", now=1)
    left = ob.done(j)
    assert left is not None and left.state == "failed" and left.filed and left.rcpts == ("x@example.org",)
    assert left.refused == {"x@example.org": (550, "no such user")} and "550 no such user" in (left.last_error or "")
    assert ob.retry(j) and ob.due(2) == [j]
    ob.claim(j, 2)
    ob.mark_sent(j, ["x@example.org"], {}, "250 ok", now=3)
    e = ob.get(j)
    assert e is not None and sorted(e.accepted) == ["b@example.org", "x@example.org"] and e.rcpts == ()
    assert ob.done(j) is None
    st.close()


def test_recover_requeues_what_a_dead_drain_was_sending(tmp_path):
    st, ob = outbox(tmp_path)
    a = ob.add(RAW, "a@example.org", ["b@example.org"], now=0)
    b = ob.add(RAW, "a@example.org", ["b@example.org"], now=0)
    ob.claim(a, 0)
    ob.claim(b, 0)
    ob.mark_sent(b, ["b@example.org"], {}, "250", now=0)
    ob.filing(b)
    assert ob.recover() == [a]
    assert ob.get(a).state == "queued" and ob.get(b).state == "filing"  # type: ignore[union-attr]
    st.close()


def test_undo_and_the_drain_race_one_winner(tmp_path):
    st, ob = outbox(tmp_path)
    other = Store(tmp_path / "s.sqlite3")
    ob2 = Outbox(other.db)
    for _ in range(50):
        i = ob.add(RAW, "a@example.org", ["b@example.org"], now=0)
        results: dict[str, object] = {}
        t1 = threading.Thread(target=lambda r=results, i=i: r.update(claim=ob.claim(i, 1)))
        t2 = threading.Thread(target=lambda r=results, i=i: r.update(cancel=ob2.cancel(i)))
        t1.start()
        t2.start()
        t1.join()
        t2.join()
        assert (results["claim"] is None) != (results["cancel"] is None)
        ob.db.execute("DELETE FROM outbox")
    other.close()
    st.close()


def test_a_v5_store_gets_the_outbox_and_keeps_its_journal(tmp_path):
    p = tmp_path / "old.sqlite3"
    db = connect(p, MIGRATIONS[:5])
    db.execute("INSERT INTO folders(name) VALUES ('INBOX')")
    cols = [r[1] for r in db.execute("PRAGMA table_info(journal)")]
    assert "op" in cols
    db.execute("INSERT INTO journal(folder_id, uid, op, add_flags, created) VALUES (1, 7, 'flags', '\\Seen', 0)")
    db.close()
    st = Store(p)
    assert st.db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    assert st.db.execute("SELECT op FROM journal").fetchall() == [("flags",)]  # (v6 rewrites its uid column)
    assert Outbox(st.db).entries() == []
    st.close()
