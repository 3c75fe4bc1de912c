"""Acting on many messages at once (issue 13 item 5), against a real Dovecot: a copy (`C`) reaches
the server as UID COPY and its rows appear in the destination at once through COPYUID, with
nothing doubled by the next sync; a bulk move of 5,000 messages goes out as a few compact uid
sets, each command line under 8 KB, with progress."""

from __future__ import annotations

import pytest

from tuimail import paths
from tuimail.core.events import RowsChanged, SyncState
from tuimail.store import Store

from tests.support.rows import id_of, uids

from .helpers import msg, server_state, store_state
from .test_jmap_backend import account  # noqa: F401  (a fixture)
from .test_jmap_backend import fill as jmap_fill
from .test_jmap_backend import rows as jmap_rows
from .test_jmap_backend import server_flags as jmap_server
from .test_jmap_backend import sync as jmap_sync

LINE_LIMIT = 8000


@pytest.fixture
def engine(tuimail_env, mailuser, monkeypatch):
    """(Engine, Store, sent command lines, events) on a fresh account; fill the server first."""
    from tuimail.backends.imap.engine import Engine
    from tuimail.backends.imap.service import open_connection
    from tuimail.config.load import load_config
    from tuimail.store import BodyCache

    made = []

    def make():
        cfg = load_config(tuimail_env.write_config(mailuser.config_toml()))
        acc = cfg.account(None)
        st = Store(paths.account_store_path(acc.name))
        conn = open_connection(acc)
        sent: list[bytes] = []
        real_send = conn.session.send_command

        def send(cmd):
            sent.append(cmd)
            return real_send(cmd)

        monkeypatch.setattr(conn.session, "send_command", send)
        events: list[object] = []
        eng = Engine(acc, st, conn, BodyCache(paths.account_cache_path(acc.name)), emit=events.append)
        eng.negotiate()
        made.append((conn, st))
        return eng, st, sent, events

    yield make
    for conn, st in made:
        conn.close()
        st.close()


def _verbs(sent: list[bytes], verb: bytes) -> list[bytes]:
    return [c for c in sent if c.startswith(verb)]


def test_copy_appears_in_the_destination_at_once_and_never_doubles(engine, mailuser):
    mailuser.deliver_many("INBOX", ((msg(i), "S" if i % 2 else "") for i in range(10)))
    mailuser.create_folder("Archive")
    eng, st, sent, events = engine()
    eng.sync_all()
    fid, arch = st.folder_id("INBOX"), st.folder_id("Archive")
    assert arch is not None and st.counts(arch)[0] == 0
    ids = [id_of(st, fid, u) for u in uids(st, fid)[:3]]
    assert st.copy(fid, ids, "Archive") == ids
    assert st.counts(fid)[0] == 10  # the originals stay
    assert [e.op for e in st.pending()] == ["copy"] * 3
    sent.clear()
    eng.sync_folder("INBOX")  # the replay only: Archive is not synced here
    assert len(_verbs(sent, b"UID COPY")) == 1 and st.pending() == []
    # COPYUID named the copies: their rows are in Archive already (new local ids), before its sync
    assert st.counts(arch)[0] == 3
    assert set(store_state(folder="Archive")) == {f"<m{i}@example.org>" for i in range(3)}
    added = [e for e in events if isinstance(e, RowsChanged) and e.folder_id == arch and e.added]
    assert added and set(added[-1].added).isdisjoint(ids)
    assert store_state(folder="Archive") == server_state(mailuser, "Archive")
    eng.sync_all()  # Archive's own sync finds them as known uids: nothing doubles
    assert st.counts(arch)[0] == 3 and st.counts(fid)[0] == 10
    assert store_state(folder="Archive") == server_state(mailuser, "Archive")
    assert store_state() == server_state(mailuser)


def test_copy_without_copyuid_arrives_with_the_next_sync(engine, mailuser, monkeypatch):
    mailuser.deliver_many("INBOX", ((msg(i), "") for i in range(5)))
    mailuser.create_folder("Archive")
    eng, st, sent, _ = engine()
    eng.sync_all()
    fid, arch = st.folder_id("INBOX"), st.folder_id("Archive")
    real = eng.conn.copy
    monkeypatch.setattr(eng.conn, "copy", lambda u, d, p=None: (real(u, d, p), {})[1])  # a server without UIDPLUS
    st.copy(fid, [id_of(st, fid, u) for u in uids(st, fid)[:2]], "Archive")
    eng.sync_folder("INBOX")
    assert st.pending() == [] and st.counts(arch)[0] == 0
    eng.sync_folder("Archive")
    assert st.counts(arch)[0] == 2
    assert store_state(folder="Archive") == server_state(mailuser, "Archive")


def test_bulk_move_of_5000_goes_out_as_a_few_compact_sets(engine, mailuser):
    n = 6000
    mailuser.deliver_many("INBOX", ((msg(i), "") for i in range(n)))
    mailuser.create_folder("Archive")
    eng, st, sent, events = engine()
    eng.sync_all()
    fid, arch = st.folder_id("INBOX"), st.folder_id("Archive")
    all_uids = uids(st, fid)
    assert len(all_uids) == n
    # every message but each sixth: 1,000 runs of five, no single range
    chosen = [u for i, u in enumerate(all_uids) if i % 6 != 5]
    assert len(chosen) == 5000
    ids = list(st.ids_of(fid, map(str, chosen)).values())
    assert len(st.move(fid, ids, "Archive")) == 5000  # one intent, one transaction
    assert st.counts(fid)[0] == 1000  # hidden at once
    sent.clear()
    events.clear()
    eng.sync_folder("INBOX")
    moves = _verbs(sent, b"UID MOVE")
    assert 2 <= len(moves) <= 4, [len(m) for m in moves]  # ~10 KB of sets: split, and only a few
    assert all(len(m) < LINE_LIMIT for m in sent), max(len(m) for m in sent)
    assert len(sent) < 20, [c[:40] for c in sent]  # no command per message anywhere
    progress = [(e.done, e.total) for e in events if isinstance(e, SyncState) and e.state == "syncing"
                and e.total == 5000]
    assert progress[0] == (0, 5000) and progress[-1] == (5000, 5000) and len(progress) == len(moves) + 1
    assert st.pending() == []
    # the server's folders
    with mailuser.client() as c:
        assert c.select_folder("INBOX", readonly=True)[b"EXISTS"] == 1000
        assert c.select_folder("Archive", readonly=True)[b"EXISTS"] == 5000
    # the rows moved with their local ids (COPYUID), in one go
    assert st.counts(arch)[0] == 5000
    assert set(st.id_list(arch)) == set(ids)
    eng.sync_all()
    assert st.counts(arch)[0] == 5000 and st.counts(fid)[0] == 1000


def test_jmap_copy_is_one_more_mailbox_and_its_row_appears_at_once(account, cyrususer):  # noqa: F811
    """On Cyrus JMAP: a copy is the same Email in one more mailbox (Email/set mailboxIds/<dest>);
    its row appears in the destination after the replay, and the next sync does not double it."""
    from tuimail.backends.jmap.engine import Engine
    from tuimail.backends.jmap.service import connect

    cfg, acc, _ = account
    jmap_fill(cyrususer, 3)
    jmap_sync(cfg, acc)
    with Store(paths.account_store_path("test")) as st:
        fid, arch = st.folder_id("INBOX"), st.folder_id("Archive")
        by = {r.subject: r.id for r in st.rows(fid, st.id_list(fid)).values()}
        assert st.copy(fid, [by["message 1"], by["message 2"]], "Archive") == [by["message 1"], by["message 2"]]
        client = connect(acc, lambda: cyrususer.password)
        try:
            assert Engine(acc, st, client).replay("INBOX") == 2
        finally:
            client.close()
        assert st.pending() == [] and st.counts(arch)[0] == 2 and st.counts(fid)[0] == 3
    assert set(jmap_server(cyrususer, "Archive")) == {"message 1", "message 2"}
    assert set(jmap_server(cyrususer)) == {"message 1", "message 2", "message 3"}
    jmap_sync(cfg, acc)
    assert set(jmap_rows("Archive")) == {"message 1", "message 2"}
    with Store(paths.account_store_path("test")) as st:
        assert st.counts(st.folder_id("Archive"))[0] == 2 and st.counts(st.folder_id("INBOX"))[0] == 3


def test_jmap_bulk_move_goes_in_calls_of_max_objects_in_set(account, cyrususer, monkeypatch):  # noqa: F811
    """A bulk action larger than the server's maxObjectsInSet is several Email/set calls, in
    order, with progress; every message arrives."""
    from tuimail.backends.jmap import replay as jmap_replay
    from tuimail.backends.jmap.engine import Engine
    from tuimail.backends.jmap.service import connect
    from tuimail.protocol.jmap.client import CORE

    cfg, acc, _ = account
    jmap_fill(cyrususer, 7)
    jmap_sync(cfg, acc)
    monkeypatch.setattr(jmap_replay, "PROGRESS_MIN", 5)
    with Store(paths.account_store_path("test")) as st:
        fid = st.folder_id("INBOX")
        ids = st.id_list(fid)
        first = st.row(fid, ids[0]).subject
        st.set_flags(fid, ids[:1], add=["flagged"])  # an earlier entry of the first message
        assert len(st.move(fid, ids[:5], "Archive")) == 5
        client = connect(acc, lambda: cyrususer.password)
        session = client.session or client.fetch_session()
        monkeypatch.setitem(session.capabilities[CORE], "maxObjectsInSet", 2)
        calls, events = [], []
        real = client.call
        monkeypatch.setattr(client, "call",
                            lambda name, args, **kw: (calls.append((name, args)), real(name, args, **kw))[1])
        try:
            assert Engine(acc, st, client, emit=events.append).replay("INBOX") == 6
        finally:
            client.close()
        sets = [a for n, a in calls if n == "Email/set"]
        assert [len(a.get("update", {})) for a in sets] == [2, 2, 1]
        progress = [(e.done, e.total) for e in events if isinstance(e, SyncState) and e.state == "syncing"]
        assert progress == [(3, 6), (5, 6), (6, 6)]
        assert st.pending() == [] and st.counts(st.folder_id("Archive"))[0] == 5
    assert len(jmap_server(cyrususer, "Archive")) == 5 and len(jmap_server(cyrususer)) == 2
    assert "\\Flagged" in jmap_server(cyrususer, "Archive")[first]  # its earlier entry went first


def test_on_the_demo_server_a_thread_moves_and_a_copy_appears(tuimail_env):
    """The embedded demo (pymap, UIDPLUS and MOVE, no QRESYNC): the thread of a reply moves to
    Archive as one intent and one UID MOVE, a copy's row appears in the destination at once."""
    from tuimail.backends.imap.engine import Engine
    from tuimail.backends.imap.service import open_connection
    from tuimail.config.load import load_config
    from tuimail.demo.server import DemoServer

    srv = DemoServer()
    srv.start()
    try:
        cfg = load_config(tuimail_env.write_config(
            f'[accounts.test]\nkind = "imap"\nhost = "{srv.host}"\nport = {srv.port}\nsecurity = "none"\n'
            f'username = "{srv.username}"\npassword = "{srv.password}"\nfolders = ["INBOX", "Archive"]\n'))
        acc = cfg.account(None)
        with Store(paths.account_store_path(acc.name)) as st:
            conn = open_connection(acc)
            sent: list[bytes] = []
            real_send = conn.session.send_command
            conn.session.send_command = lambda cmd: (sent.append(cmd), real_send(cmd))[1]
            try:
                eng = Engine(acc, st, conn)
                eng.negotiate()
                eng.sync_all()
                fid, arch = st.folder_id("INBOX"), st.folder_id("Archive")
                rows = st.rows(fid, st.id_list(fid))
                reply = next(r for r in rows.values() if r.in_reply_to)
                thread = st.thread_members(fid, reply.id)
                assert len(thread) >= 2 and reply.id in thread
                before = st.counts(arch)[0]
                assert sorted(st.move(fid, thread, "Archive")) == sorted(thread)
                other = next(i for i in st.id_list(fid) if i not in thread)
                st.copy(fid, [other], "Archive")
                sent.clear()
                eng.sync_folder("INBOX")
                assert len(_verbs(sent, b"UID MOVE")) == 1 and len(_verbs(sent, b"UID COPY")) == 1
                assert st.pending() == []
                assert st.counts(arch)[0] == before + len(thread) + 1  # (COPYUID: before Archive's sync)
                eng.sync_all()
                assert st.counts(arch)[0] == before + len(thread) + 1
                assert other in st.id_list(fid)
            finally:
                conn.close()
    finally:
        srv.stop()


def test_undo_of_a_copy_that_reached_dovecot_deletes_the_copy_there(engine, mailuser):
    from tuimail.store.writer import Intent, run_intent

    mailuser.deliver_many("INBOX", ((msg(i), "") for i in range(4)))
    mailuser.create_folder("Archive")
    eng, st, _sent, _ = engine()
    eng.sync_all()
    fid, arch = st.folder_id("INBOX"), st.folder_id("Archive")
    ids = [id_of(st, fid, u) for u in uids(st, fid)[:2]]
    run_intent(st, Intent("copy", fid, tuple(ids), dest="Archive"))
    eng.sync_folder("INBOX")
    assert len(server_state(mailuser, "Archive")) == 2 and st.counts(arch)[0] == 2
    entry = st.undo.latest()
    assert entry is not None and entry.what == "copied 2 messages to Archive"
    run_intent(st, Intent("undo", 0, (entry.id,)))
    assert st.counts(arch)[0] == 0  # hidden at once
    eng.sync_all()
    assert server_state(mailuser, "Archive") == {} and len(server_state(mailuser)) == 4
    assert st.pending() == [] and st.counts(arch)[0] == 0 and st.counts(fid)[0] == 4
