"""The JMAP account kind (backends/jmap) against a real Cyrus IMAP 3.6 (tests/support/cyrus.py,
`make cyrus`): first sync, changes made by an IMAP client, a flag conflict resolved by ifInState
(the user's intent re-applied), move, expunge, a stale state, the CLI on a jmap account, and the
TUI (INBOX shows, a message opens, F flags it on the server)."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime

import pytest

from tests.support.cyrus import CyrusUser
from tuimail import paths
from tuimail.backends.jmap.engine import Engine
from tuimail.backends.jmap.flags import patch, to_canonical
from tuimail.backends.jmap.rows import addresses
from tuimail.backends.jmap.service import JmapService, connect
from tuimail.backends.jmap.state import FolderState
from tuimail.backends.registry import create_service
from tuimail.config.load import load_config, parse_config
from tuimail.core.events import RowsChanged
from tuimail.errors import ConfigError
from tuimail.store import BodyCache, Store

from .helpers import Cli, msg

BASE = 1_704_000_000


def jmap_toml(user: CyrusUser, name: str = "test", **extra) -> str:
    lines = [f"[accounts.{name}]", 'kind = "jmap"', f'url = "{user.session_url}"', f'username = "{user.name}"',
             f'password = "{user.password}"']
    lines += [f"{k} = {json.dumps(v)}" for k, v in extra.items()]
    return "\n".join(lines) + "\n"


def fill(user: CyrusUser, n: int, folder: str = "INBOX", start: int = 1, flags=()) -> None:
    with user.client() as c:
        for i in range(start, start + n):
            c.append(folder, msg(i), flags=flags, msg_time=datetime.fromtimestamp(BASE + i * 60, UTC))


def server_flags(user: CyrusUser, folder: str = "INBOX") -> dict[str, set[str]]:
    """Subject -> IMAP flags as Cyrus IMAP has them."""
    with user.client() as c:
        c.select_folder(folder, readonly=True)
        uids = c.search("ALL")
        if not uids:
            return {}
        data = c.fetch(uids, ["FLAGS", "BODY.PEEK[HEADER.FIELDS (SUBJECT)]"])
    return {d[b"BODY[HEADER.FIELDS (SUBJECT)]"].decode().split(":", 1)[1].strip():
            {f.decode() for f in d[b"FLAGS"] if f != b"\\Recent"} for d in data.values()}


def rows(folder: str = "INBOX", account: str = "test") -> dict[str, object]:
    """Subject -> row, from the local store (visible rows)."""
    with Store(paths.account_store_path(account)) as st:
        fi = st.folder(folder)
        if fi is None:
            return {}
        got = st.rows(fi.id, st.id_list(fi.id))
    return {r.subject: r for r in got.values()}


@pytest.fixture
def account(tuimail_env, cyrususer):
    config = tuimail_env.write_config(jmap_toml(cyrususer))
    cfg = load_config(config)
    return cfg, cfg.account("test"), config


def sync(cfg, acc):
    svc = create_service(cfg, acc)
    try:
        return svc.sync_now()
    finally:
        svc.stop()


# -- config and pieces without a server ----------------------------------------------------------


def test_config_jmap_url_host_and_one_line_errors():
    cfg = parse_config('[accounts.j]\nkind = "jmap"\nurl = "https://mail.example.org/jmap/session"\n'
                       'username = "me"\npassword_command = "pass show mail"\ncheck_interval = 30\n')
    a = cfg.account("j")
    assert a.kind == "jmap" and a.url == "https://mail.example.org/jmap/session"
    assert a.host == "mail.example.org" and a.security == "tls" and a.check_interval == 30
    a = parse_config('[accounts.j]\nkind = "jmap"\nhost = "example.org"\nusername = "me"\n'
                     'oauth2_token_command = ["tok"]\n').account("j")
    assert a.url is None and a.host == "example.org" and a.oauth2_token_command == ("tok",)
    bad = {
        'url = "http://mail.example.org/jmap"': "plain http would send the password unencrypted",
        'url = "ftp://x/jmap"': "expected an http(s) URL",
        'port = 8080\nhost = "x"': "not used by a JMAP account",
        "": "set url (the JMAP session URL) or host",
    }
    for body, text in bad.items():
        with pytest.raises(ConfigError) as e:
            parse_config(f'[accounts.j]\nkind = "jmap"\nusername = "me"\n{body}\n')
        assert text in str(e.value) and "\n" not in str(e.value)
    ok = parse_config('[accounts.j]\nkind = "jmap"\nurl = "http://mail.example.org/jmap"\nusername = "me"\n'
                      'allow_insecure = true\n')
    assert ok.account("j").security == "none"
    with pytest.raises(ConfigError, match="only a JMAP account"):
        parse_config('[accounts.i]\nkind = "imap"\nhost = "x"\nurl = "https://x/"\nusername = "me"\n')


def test_keyword_mapping_is_one_place():
    flags, kw = to_canonical({"$seen": True, "$Flagged": True, "$forwarded": True, "work": True, "$draft": False})
    assert flags == {"seen", "flagged"} and kw == "$forwarded work"
    assert patch(["flagged", "a/b"], ["seen", "deleted"]) == {"keywords/$flagged": True, "keywords/a~1b": True,
                                                               "keywords/$seen": None}
    assert addresses([{"name": "Doe, Jane", "email": "j@x"}, {"name": None, "email": "k@y"}]) == \
        '"Doe, Jane" <j@x>, k@y'


def test_a_broken_email_object_is_a_row_not_a_crash():
    from tuimail.backends.jmap.rows import email_objects, header_row
    from tuimail.backends.jmap.opener import to_parts
    assert email_objects([None, {"id": 5}, {"id": "M1"}, "x"]) == [{"id": "M1"}]
    row = header_row({"id": "M1", "keywords": ["$seen"], "messageId": "abc", "from": "x", "size": "big",
                      "sentAt": "garbage", "receivedAt": "2024-01-01T00:00:00Z", "subject": None})
    assert row[0] == "M1" and row[2] == frozenset() and row[4] == 1704067200 and row[9] is None and row[12] == 0
    root, notes = to_parts({"type": "multipart/mixed", "subParts": [
        {"partId": "1", "blobId": "B1", "type": "text/plain", "charset": "utf-8", "size": 5,
         "headers": [{"name": "Content-Type", "value": "text/plain; format=flowed"}]},
        {"partId": "2", "blobId": "B2", "type": "application/pdf", "name": "a.pdf", "disposition": "attachment"},
        "junk"]})
    assert [p.section for p in root.children] == ["1", "2", "3"]
    assert root.children[0].params["format"] == "flowed" and root.children[1].filename == "a.pdf"
    deep: dict = {"type": "text/plain"}
    for _ in range(200):
        deep = {"type": "multipart/mixed", "subParts": [deep]}
    _root, notes = to_parts(deep)
    assert any("nesting deeper" in n for n in notes)


# -- against Cyrus -----------------------------------------------------------------------------------


def test_first_sync_fills_folders_with_roles_newest_first(account, cyrususer, monkeypatch):
    cfg, acc, _ = account
    fill(cyrususer, 25)
    cyrususer.append("Archive", msg(100, "archived"))
    monkeypatch.setattr("tuimail.backends.jmap.fill.FIRST_WINDOW", 10)  # several windows
    monkeypatch.setattr("tuimail.backends.jmap.engine.WINDOW", 7)
    summary = sync(cfg, acc)
    assert "26 new" in summary.line("test")
    with Store(paths.account_store_path("test")) as st:
        roles = {f.name: f.role for f in st.folders()}
        inbox = st.folder("INBOX")
        assert inbox is not None and inbox.total == 25 and inbox.unread == 25
        state = FolderState.load(inbox.state)
        assert state.mailbox and state.email and state.mailboxes
        first = st.rows(inbox.id, st.id_list(inbox.id, limit=3))
    assert roles["INBOX"] == "inbox" and roles["Archive"] == "archive" and roles["Trash"] == "trash"
    assert sorted(r.subject for r in first.values()) == ["message 23", "message 24", "message 25"]
    r = rows()["message 7"]
    assert r.from_ == "Sender 7 <s7@example.org>" and r.message_id == "<m7@example.org>"
    assert r.date == int(datetime(2024, 1, 1, 0, 0, 7, tzinfo=UTC).timestamp())
    assert set(rows("Archive")) == {"archived"}


def test_no_change_resync_is_one_small_request(account, cyrususer):
    cfg, acc, _ = account
    fill(cyrususer, 3)
    sync(cfg, acc)
    with Store(paths.account_store_path("test")) as store:
        client = connect(acc, lambda: cyrususer.password)
        try:
            engine = Engine(acc, store, client)
            mark = client.mark()
            summary = engine.sync_all()
            exchanges = client.since(mark)
            # a flag changed elsewhere: the changes, then that email's keywords and mailboxes (the
            # mailbox counts that changed with it need no Mailbox/get: the store counts its rows)
            with cyrususer.client(select="INBOX") as c:
                c.add_flags(c.search("ALL")[:1], [b"\\Flagged"])
            mark = client.mark()
            flagged = engine.sync_all()
            after_flag = client.since(mark)
        finally:
            client.close()
    assert len(exchanges) == 1, exchanges
    assert exchanges[0].sent + exchanges[0].received < 2048, exchanges
    assert all(f.new == 0 and f.flags == 0 for f in summary.folders)
    assert len(after_flag) == 2 and sum(e.sent + e.received for e in after_flag) < 4096, after_flag
    assert sum(f.flags for f in flagged.folders) == 1


def test_changes_from_an_imap_client_appear_after_a_sync(account, cyrususer):
    cfg, acc, _ = account
    fill(cyrususer, 4)
    sync(cfg, acc)
    with cyrususer.client(select="INBOX") as c:
        uids = {c.fetch([u], ["BODY.PEEK[HEADER.FIELDS (SUBJECT)]"])[u][b"BODY[HEADER.FIELDS (SUBJECT)]"]
                .decode().split(":", 1)[1].strip(): u for u in c.search("ALL")}
        c.add_flags([uids["message 1"]], [b"\\Seen", b"$Label1"])
        c.add_flags([uids["message 2"]], [b"\\Deleted"])
        c.expunge()
        c.move([uids["message 3"]], "Archive")
    cyrususer.append("INBOX", msg(9, "new one"))
    summary = sync(cfg, acc)
    got = rows()
    assert set(got) == {"message 1", "message 4", "new one"}
    assert got["message 1"].flags == {"seen"} and got["message 1"].keywords == "$label1"
    assert set(rows("Archive")) == {"message 3"}
    inbox = next(f for f in summary.folders if f.name == "INBOX")
    assert inbox.new == 1 and inbox.vanished == 2 and inbox.flags == 1 and inbox.unseen_new == 1


def test_message_in_two_mailboxes_is_a_row_in_each(account, cyrususer):
    cfg, acc, _ = account
    fill(cyrususer, 1)
    sync(cfg, acc)
    with Store(paths.account_store_path("test")) as store:
        client = connect(acc, lambda: cyrususer.password)
        try:
            mids = {f.name: FolderState.load(f.state).mailbox for f in store.folders()}
            (eid,) = store.local_sids(store.folder_id("INBOX"))
            client.call("Email/set", {"accountId": client.account_id,
                                      "update": {eid: {f"mailboxIds/{mids['Archive']}": True}}})
            Engine(acc, store, client).sync_all()
            assert store.local_sids(store.folder_id("Archive")) == [eid]
            assert store.local_sids(store.folder_id("INBOX")) == [eid]
        finally:
            client.close()


def test_flag_conflict_if_in_state_user_intent_reapplied(account, cyrususer):
    cfg, acc, config = account
    fill(cyrususer, 2)
    sync(cfg, acc)
    with Store(paths.account_store_path("test")) as st:
        fid = st.folder_id("INBOX")
        target = next(r for r in st.rows(fid, st.id_list(fid)).values() if r.subject == "message 1")
        st.set_flags(fid, [target.id], add=["flagged"], remove=[])
        stale = FolderState.load(st.folder_state(fid)).email
    # meanwhile another client changes the account (the stored state is stale now)
    with cyrususer.client(select="INBOX") as c:
        c.add_flags(c.search("ALL"), [b"\\Seen"])
    with Store(paths.account_store_path("test")) as store:
        client = connect(acc, lambda: cyrususer.password)
        try:
            engine = Engine(acc, store, client)
            mark = client.mark()
            assert engine.replay("INBOX") == 1
            bodies = [e.path for e in client.since(mark)]
        finally:
            client.close()
        assert store.pending_count() == 0
        assert FolderState.load(store.folder_state(fid)).email != stale
    assert len(bodies) >= 3  # the refused Email/set, the refetch, the same intent again
    assert server_flags(cyrususer) == {"message 1": {"\\Seen", "\\Flagged"}, "message 2": {"\\Seen"}}
    got = rows()
    assert got["message 1"].flags == {"seen", "flagged"} and got["message 2"].flags == {"seen"}


def test_move_and_expunge_from_the_journal(account, cyrususer):
    cfg, acc, _ = account
    fill(cyrususer, 3)
    sync(cfg, acc)
    with Store(paths.account_store_path("test")) as st:
        fid = st.folder_id("INBOX")
        by = {r.subject: r.id for r in st.rows(fid, st.id_list(fid)).values()}
        st.move(fid, [by["message 1"]], "Trash")
        st.expunge(fid, [by["message 2"]])
    sync(cfg, acc)
    assert set(server_flags(cyrususer)) == {"message 3"}
    assert set(server_flags(cyrususer, "Trash")) == {"message 1"}
    assert set(rows()) == {"message 3"} and set(rows("Trash")) == {"message 1"}
    with Store(paths.account_store_path("test")) as st:
        assert st.pending_count() == 0
        # the moved row kept its local id
        assert st.folder_id("Trash") is not None and by["message 1"] in st.id_list(st.folder_id("Trash"))
        # expunge in Trash: destroyed on the server
        tid = st.folder_id("Trash")
        st.expunge(tid, [by["message 1"]])
    sync(cfg, acc)
    assert server_flags(cyrususer, "Trash") == {} and rows("Trash") == {}


def test_expunge_of_a_message_also_elsewhere_only_leaves_this_mailbox(account, cyrususer):
    cfg, acc, _ = account
    fill(cyrususer, 1)
    sync(cfg, acc)
    with Store(paths.account_store_path("test")) as store:
        client = connect(acc, lambda: cyrususer.password)
        try:
            mids = {f.name: FolderState.load(f.state).mailbox for f in store.folders()}
            fid = store.folder_id("INBOX")
            (eid,) = store.local_sids(fid)
            client.call("Email/set", {"accountId": client.account_id,
                                      "update": {eid: {f"mailboxIds/{mids['Archive']}": True}}})
            engine = Engine(acc, store, client)
            engine.sync_all()
            store.expunge(fid, store.id_list(fid))
            engine.sync_all()
            assert store.local_sids(fid) == [] and store.local_sids(store.folder_id("Archive")) == [eid]
        finally:
            client.close()
    assert set(server_flags(cyrususer, "Archive")) == {"message 1"} and server_flags(cyrususer) == {}


def test_stale_state_resyncs_the_folder(account, cyrususer):
    cfg, acc, _ = account
    fill(cyrususer, 3)
    sync(cfg, acc)
    with Store(paths.account_store_path("test")) as st:
        fid = st.folder_id("INBOX")
        ids_before = set(st.id_list(fid))
        st.set_folder_state(fid, FolderState.load(st.folder_state(fid)).but(email="no-such-state-42").dump())
    with cyrususer.client(select="INBOX") as c:
        c.add_flags(c.search(["SUBJECT", "message 2"]), [b"\\Flagged"])
        c.add_flags(c.search(["SUBJECT", "message 3"]), [b"\\Deleted"])
        c.expunge()
    cyrususer.append("INBOX", msg(4))
    summary = sync(cfg, acc)
    inbox = next(f for f in summary.folders if f.name == "INBOX")
    assert inbox.reset
    got = rows()
    assert set(got) == {"message 1", "message 2", "message 4"}
    assert got["message 2"].flags == {"flagged"}
    with Store(paths.account_store_path("test")) as st:
        fid = st.folder_id("INBOX")
        assert ids_before & set(st.id_list(fid)) == {got["message 1"].id, got["message 2"].id}  # ids kept
        assert FolderState.load(st.folder_state(fid)).email != "no-such-state-42"


def test_cli_list_read_flag_on_a_jmap_account(account, cyrususer, capsys):
    _cfg, _acc, config = account
    fill(cyrususer, 2)
    cli = Cli(config, capsys)
    assert "test:" in cli("sync")
    listed = cli.json("list", "INBOX")
    assert [m["subject"] for m in listed] == ["message 2", "message 1"]
    assert all(m["uid"] == m["id"] for m in listed)  # a jmap account's handle is the local id
    handle = str(listed[1]["uid"])
    out = cli("read", "INBOX", handle)
    assert "Subject: message 1" in out and "hello" in out
    assert "flagged" in cli("flag", "INBOX", handle, "+flagged")
    assert "1 pending actions sent" in cli("sync", "inbox")  # one folder (INBOX in any case)
    folders = {f["name"]: f for f in cli.json("folders")}
    assert folders["INBOX"]["role"] == "inbox" and folders["INBOX"]["total"] == 2 and folders["Sent"]["role"] == "sent"
    assert server_flags(cyrususer)["message 1"] == {"\\Flagged"}
    # read again offline: from the cache
    assert "hello" in cli("--offline", "read", "INBOX", handle)


def test_open_message_downloads_only_the_text_part(account, cyrususer):
    import email.policy
    from email.message import EmailMessage
    cfg, acc, _ = account
    m = EmailMessage(policy=email.policy.SMTP)
    m["From"], m["To"], m["Subject"] = "a@example.org", "b@localhost", "with attachment"
    m.set_content("the text part\n")
    m.add_attachment(b"\x01" * 300_000, maintype="application", subtype="octet-stream", filename="big.bin")
    cyrususer.append("INBOX", m.as_bytes())
    sync(cfg, acc)
    svc = JmapService(cfg, acc)
    try:
        with Store(paths.account_store_path("test")) as st:
            fid = st.folder_id("INBOX")
            (id_,) = st.id_list(fid)
        content = svc.open_message("INBOX", id_)
        assert "the text part" in content.text
        (att,) = content.attachments
        assert att.filename == "big.bin" and att.size >= 300_000
        client = svc._fetch_conn
        assert sum(e.received for e in client.exchanges) < 20_000  # the attachment was not downloaded
        assert svc.fetch_part("INBOX", id_, att.section) == b"\x01" * 300_000
    finally:
        svc.stop()
    bodies = BodyCache(paths.account_cache_path("test"))
    try:  # cached under the Email id: the text part and the saved attachment, nothing else
        assert bodies.db.execute("SELECT count(*) FROM parts").fetchone()[0] == 2
    finally:
        bodies.close()


def test_service_thread_sends_a_flag_at_once_and_polls_changes(account, cyrususer):
    cfg, acc, config = account
    cfg = load_config(config)
    import dataclasses
    acc = dataclasses.replace(cfg.account("test"), check_interval=1.0)
    fill(cyrususer, 2)
    events = []
    svc = JmapService(cfg, acc, events.append)
    svc.start()
    try:
        _wait(lambda: len(rows()) == 2)
        with Store(paths.account_store_path("test")) as st:
            fid = st.folder_id("INBOX")
            target = next(r.id for r in st.rows(fid, st.id_list(fid)).values() if r.subject == "message 2")
            st.set_flags(fid, [target], add=["seen"])
        svc.wake()
        _wait(lambda: server_flags(cyrususer)["message 2"] == {"\\Seen"})
        with cyrususer.client(select="INBOX") as c:
            c.add_flags(c.search(["SUBJECT", "message 1"]), [b"\\Flagged"])
        _wait(lambda: rows()["message 1"].flags == {"flagged"}, 5)
        assert any(isinstance(e, RowsChanged) and e.ids for e in events)
    finally:
        svc.stop()


def _wait(cond, timeout: float = 10.0) -> None:
    import time
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError("timed out")
        time.sleep(0.05)


def test_tui_opens_inbox_reads_and_flags_on_cyrus(account, cyrususer):
    from tuimail.ui.app import TuimailApp
    cfg, acc, _ = account
    fill(cyrususer, 3)
    sync(cfg, acc)
    store = Store(paths.account_store_path("test"))
    svc = JmapService(cfg, acc)
    app = TuimailApp(cfg, {"test": store}, {"test": svc}, clock=lambda: BASE + 86400, tz=UTC)

    def screen() -> str:
        strips = app.screen._compositor.render_strips()
        return "\n".join("".join(seg.text for seg in strip) for strip in strips)

    async def go():
        async with app.run_test(size=(120, 30)) as pilot:
            await pilot.pause(0.5)
            await app.workers.wait_for_complete()
            assert "message 3" in screen() and "message 1" in screen()
            await pilot.press("enter")
            for _ in range(40):
                await pilot.pause(0.1)
                if "hello" in screen():
                    break
            assert "hello" in screen()
            await pilot.press("F")
            await pilot.pause(0.3)
            for _ in range(100):
                if server_flags(cyrususer)["message 3"] >= {"\\Flagged"}:
                    break
                await pilot.pause(0.1)

    try:
        asyncio.run(go())
    finally:
        svc.stop()
        store.close()
    assert "\\Flagged" in server_flags(cyrususer)["message 3"]


def test_jmap_service_keeps_the_contract(account):
    from tests.support.contract import assert_keeps_the_contract
    from tuimail.core.service import AccountService
    cfg, acc, _ = account
    assert_keeps_the_contract(JmapService)
    svc = create_service(cfg, acc, offline=True)
    try:
        assert isinstance(svc, JmapService) and isinstance(svc, AccountService)
        caps = svc.capabilities
        assert (caps.server_flags, caps.server_folders, caps.push, caps.send, caps.append) == (
            True, True, False, True, True)  # sends by EmailSubmission, postpones by Email/import
    finally:
        svc.stop()


def test_hostile_answers_end_the_walk_and_keep_folders_apart(tuimail_env, monkeypatch):
    """Without a server: a query that never moves on past its anchor ends the fill; two mailboxes
    under one path (one of them named like the inbox) stay two folders."""
    import tuimail.backends.jmap.engine as eng
    import tuimail.backends.jmap.folders as folders
    cfg = parse_config('[accounts.test]\nkind = "jmap"\nurl = "http://127.0.0.1:1/jmap"\nusername = "u"\n')
    boxes = [{"id": "b1", "name": "INBOX", "role": None}, {"id": "b0", "name": "Inbox", "role": "inbox"},
             {"id": "b2", "name": "Lists", "role": None}, {"id": "b3", "name": "Lists", "role": None}]
    monkeypatch.setattr(folders, "mailboxes", lambda client: ("s1", boxes))
    page = ([{"id": "M1", "subject": "one", "mailboxIds": {"b0": True}}], ["M1"], "e1", None)
    calls = []
    monkeypatch.setattr(eng.Engine, "query_page", lambda self, *a, **k: calls.append(a) or page)
    monkeypatch.setattr(eng.Engine, "limit", lambda self: 10)
    paths.ensure_private_dir(paths.account_store_path("test").parent)
    with Store(paths.account_store_path("test")) as store:
        engine = eng.Engine(cfg.account("test"), store, client=None)  # type: ignore[arg-type]
        engine.sync_mailboxes()
        names = {f.name: (f.role, FolderState.load(f.state).mailbox) for f in store.folders()}
        assert names == {"INBOX": ("inbox", "b0"), "INBOX (b1)": (None, "b1"), "Lists": (None, "b2"),
                         "Lists (b3)": (None, "b3")}
        engine.fill_folder(store.folder_id("INBOX"))
        assert len(calls) == 2 and store.message_count(store.folder_id("INBOX")) == 1


def test_push_where_offered_wakes_the_sync_and_cyrus_falls_back_to_polling(account, cyrususer, monkeypatch):
    import dataclasses
    import threading

    import tuimail.protocol.jmap.push as push
    cfg, acc, _ = account
    acc = dataclasses.replace(acc, check_interval=3600.0)  # only a push can bring the change in time
    fill(cyrususer, 1)
    # Cyrus 3.6 answers 204: the service says so and polls
    svc = JmapService(cfg, acc)
    svc.start()
    try:
        _wait(lambda: svc.push_state == "unavailable")
    finally:
        svc.stop()

    # a server that pushes (the stream scripted; the sync is Cyrus's): a state change syncs at once
    fire, closed = threading.Event(), threading.Event()

    class Pushing:
        def __init__(self, client, types=(), **kw):
            self.client = client

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self.close()

        def close(self):
            closed.set()
            fire.set()

        def __iter__(self):
            while not closed.is_set():
                fire.wait()
                fire.clear()
                if not closed.is_set():
                    yield push.StateChange({self.client.account_id: {"Email": "new"}}, "1")

    monkeypatch.setattr(push, "EventSource", Pushing)
    svc = JmapService(cfg, acc)
    svc.start()
    try:
        _wait(lambda: len(rows()) == 1 and svc.push_state == "starting")
        with cyrususer.client(select="INBOX") as c:
            c.add_flags(c.search("ALL"), [b"\\Flagged"])
        fire.set()
        _wait(lambda: rows()["message 1"].flags == {"flagged"}, 5)
        assert svc.push_state == "on"
    finally:
        svc.stop()
    assert closed.is_set()


def test_folders_at_different_states_converge_in_one_sync(account, cyrususer):
    cfg, acc, _ = account
    fill(cyrususer, 1)
    sync(cfg, acc)
    with Store(paths.account_store_path("test")) as st:
        old = FolderState.load(st.folder(st.folder_id("Archive")).state).email
    cyrususer.append("INBOX", msg(2))
    sync(cfg, acc)
    with Store(paths.account_store_path("test")) as store:
        aid = store.folder_id("Archive")
        store.set_folder_state(aid, FolderState.load(store.folder_state(aid)).but(email=old).dump())
        client = connect(acc, lambda: cyrususer.password)
        try:
            engine = Engine(acc, store, client)
            engine.sync_all()
            states = {FolderState.load(f.state).email for f in store.folders()}
            assert len(states) == 1
            mark = client.mark()
            engine.sync_all()
            assert len(client.since(mark)) == 1
        finally:
            client.close()


def test_a_refused_login_is_one_line_and_exit_3(tuimail_env, cyrususer, capsys):
    config = tuimail_env.write_config(jmap_toml(cyrususer).replace(cyrususer.password, "wrong"))
    cli = Cli(config, capsys)
    cli("sync", expect=3)
    assert cli.last_err.count("\n") == 1 and "refused the login" in cli.last_err and "wrong" not in cli.last_err


def test_local_search_on_a_jmap_account(account, cyrususer, capsys):
    _cfg, _acc, config = account
    fill(cyrususer, 3)
    cyrususer.append("INBOX", msg(7, "the needle", body="hay and a needle\r\n"))
    cli = Cli(config, capsys)
    cli("sync")
    out = cli("--offline", "search", "~s needle")
    assert "the needle" in out and "message 1" not in out
    cli("read", "INBOX", str(next(m["id"] for m in cli.json("list", "INBOX") if m["subject"] == "the needle")))
    assert "the needle" in cli("--offline", "search", "~b hay")


def test_a_first_fill_leaves_the_index_for_the_next_sync_as_over_imap(account, cyrususer, capsys, monkeypatch):
    """The IMAP engine's rule (backends/base.py index_after_sync): a headless first fill of more
    than a batch does not index; search still finds the rows; the next sync indexes them."""
    from tuimail.store.search import unindexed

    monkeypatch.setattr("tuimail.backends.base.FIRST_FILL_INDEX_ROWS", 3)
    _cfg, _acc, config = account
    fill(cyrususer, 5)
    cyrususer.append("INBOX", msg(7, "the needle"))
    cli = Cli(config, capsys)
    cli("sync")
    with Store(paths.account_store_path("test")) as st:
        assert unindexed(st) == 6
    assert "the needle" in cli("--offline", "search", "~s needle")
    cli("sync")
    with Store(paths.account_store_path("test")) as st:
        assert unindexed(st) == 0
    assert "the needle" in cli("--offline", "search", "~s needle")
