"""The sync engine end to end against real servers, on each path (QRESYNC, CONDSTORE, plain): Dovecot
and Cyrus IMAP 3.6 (a second implementation of the protocol; the session's Cyrus is the one the
JMAP tests use)."""

from __future__ import annotations

import pytest

from tuimail import paths
from tuimail.store import Store

from tuimail.core.events import RowsChanged

from tests.support.cyrus import IMAP_SERVERS, imap_user
from tests.support.rows import id_of, imap_flags, uid_of, uids

from .helpers import Cli, msg, server_state, store_state, store_uids

MODES = ["qresync", "condstore", "plain"]


@pytest.fixture(params=IMAP_SERVERS)
def mailuser(request):
    """Every scenario here runs against Dovecot and against Cyrus IMAP."""
    return imap_user(request)


@pytest.fixture(params=MODES)
def mode(request):
    return request.param


@pytest.fixture
def cli(tuimail_env, mailuser, capsys, mode):
    path = tuimail_env.write_config(mailuser.config_toml(sync_mode=mode))
    return Cli(path, capsys)


def fill(user, n, folder="INBOX", start=0):
    user.deliver_many(folder, ((msg(i), "S" if i % 2 else "") for i in range(start, start + n)))


def test_first_sync_lists_newest_first_with_roles(cli, mailuser, mode):
    fill(mailuser, 40)
    out = cli("sync")
    assert "40 new" in out and f"[{mode}]" in out
    rows = cli.json("list", "INBOX", "--limit", "10")
    assert len(rows) == 10
    assert [r["subject"] for r in rows[:2]] == ["message 39", "message 38"]
    assert rows[0]["from"].startswith("Sender 39") and rows[0]["message_id"] == "<m39@example.org>"
    assert rows[0]["date"] == "2024-01-01T00:00:39Z" and rows[0]["size"] > 0
    assert set(rows[0]["flags"]) == {"seen"}
    assert rows[0]["uid"] == 40 and isinstance(rows[0]["id"], int)  # the IMAP uid, and the local id
    folders = {f["name"]: f for f in cli.json("folders")}
    assert folders["INBOX"] == {"name": "INBOX", "role": "inbox", "total": 40, "unread": 20}
    assert folders["Trash"]["role"] == "trash" and folders["Sent"]["role"] == "sent"
    assert store_state() == server_state(mailuser)


def test_new_mail_and_no_change_resync(cli, mailuser):
    fill(mailuser, 10)
    cli("sync")
    for i in range(10, 13):
        mailuser.append("INBOX", msg(i))
    assert "3 new" in cli("sync")
    assert "0 new" in cli("sync")
    assert len(store_state()) == 13 == len(server_state(mailuser))


def test_flags_changed_elsewhere_reach_the_store(cli, mailuser):
    fill(mailuser, 20)
    cli("sync")
    with mailuser.client("INBOX") as other:
        uids = other.search("ALL")
        other.add_flags(uids[:5], [b"\\Flagged"])
        other.remove_flags(uids[1:20:2], [b"\\Seen"])
        other.add_flags(uids[18:], [b"$Label1"])
    cli("sync")
    assert store_state() == server_state(mailuser)


def test_expunge_elsewhere_removes_rows(cli, mailuser):
    fill(mailuser, 30)
    cli("sync")
    with mailuser.client("INBOX") as other:
        uids = other.search("ALL")
        other.delete_messages(uids[3:12])
        other.expunge()
    out = cli("sync")
    assert "9 removed" in out
    assert store_state() == server_state(mailuser)
    assert len(store_state()) == 21


def test_offline_flag_is_journaled_and_replayed(cli, mailuser):
    fill(mailuser, 5)
    cli("sync")
    uid = max(store_uids())
    assert cli("--offline", "flag", "INBOX", str(uid), "+flagged", "-Seen").split() == ["flagged"]
    assert cli("flag", "INBOX", str(uid)).strip() == "flagged"
    with Store(paths.account_store_path("test")) as st:
        assert len(st.pending()) == 1
    assert "1 pending actions sent" in cli("sync")
    assert server_state(mailuser)["<m4@example.org>"] == {"\\Flagged"}
    with Store(paths.account_store_path("test")) as st:
        assert st.pending() == []


def test_pending_intent_survives_a_server_change_to_other_flags(cli, mailuser):
    """The user's offline change stays visible when the server reports other changes first."""
    fill(mailuser, 3)
    cli("sync")
    uid = max(store_uids())
    cli("flag", "INBOX", str(uid), "+Flagged")
    with mailuser.client("INBOX") as other:
        other.add_flags([uid], [b"\\Answered"])
    cli("sync")
    assert server_state(mailuser)["<m2@example.org>"] == {"\\Flagged", "\\Answered"}
    assert store_state() == server_state(mailuser)


def test_uidvalidity_change_resyncs_and_rematches_journal(cli, mailuser, mode):
    # (not a special-use folder: Cyrus refuses to delete one, "SPECIAL-USE flag conflict")
    mailuser.create_folder("Projects")
    fill(mailuser, 6, folder="Projects")
    cli("sync")
    before = store_uids(folder="Projects")
    uid = max(before)
    cli("flag", "Projects", str(uid), "+Flagged")
    # recreate the folder elsewhere: same messages, new UIDVALIDITY, new uids
    with mailuser.client() as other:
        other.select_folder("Projects")
        raw = other.fetch(other.search("ALL"), ["RFC822", "FLAGS"])
        other.unselect_folder()
        other.delete_folder("Projects")
        other.create_folder("Projects")
        for i in range(3):  # shift the uids so old ones would point at other messages
            other.append("Projects", msg(100 + i))
        for d in raw.values():
            other.append("Projects", d[b"RFC822"], [f for f in d[b"FLAGS"] if f != b"\\Recent"])
    cli("sync")
    after = store_uids(folder="Projects")
    assert set(after.values()) == set(before.values()) | {f"<m{100 + i}@example.org>" for i in range(3)}
    server = server_state(mailuser, "Projects")
    assert "\\Flagged" in server[before[uid]], "the journal entry was re-matched by Message-ID"
    assert store_state(folder="Projects") == server


def test_modified_conflict_user_intent_wins(tuimail_env, mailuser, monkeypatch):
    """Another client changes the message between our SELECT and our conditional STORE."""
    from tuimail.config.load import load_config
    from tuimail.store import BodyCache
    from tuimail.backends.imap.engine import Engine
    from tuimail.backends.imap.service import open_connection

    fill(mailuser, 4)
    cfg = load_config(tuimail_env.write_config(mailuser.config_toml()))
    acc = cfg.account(None)
    st = Store(paths.account_store_path(acc.name))
    conn = open_connection(acc)
    eng = Engine(acc, st, conn, BodyCache(paths.account_cache_path(acc.name)))
    assert eng.negotiate() == "qresync"
    eng.sync_all()
    fid = st.folder_id("INBOX")
    uid = max(uids(st, fid))
    st.set_flags(fid, [id_of(st, fid, uid)], add=["flagged"], remove=["seen"])

    real_store = conn.store_flags
    calls = []

    def racing_store(uids, add=(), remove=(), unchangedsince=None):
        if not calls:
            with mailuser.client("INBOX") as other:
                other.add_flags([uid], [b"\\Answered", b"\\Seen"])
        calls.append(unchangedsince)
        return real_store(uids, add, remove, unchangedsince=unchangedsince)

    monkeypatch.setattr(conn, "store_flags", racing_store)
    eng.sync_folder("INBOX")
    assert calls[0] is not None, "the first STORE was conditional"
    assert len(calls) >= 2, "MODIFIED was answered by a refetch and a second STORE"
    server = server_state(mailuser)["<m3@example.org>"]
    assert server == {"\\Flagged", "\\Answered"}, "user's intent (+Flagged -Seen) re-applied over the change"
    assert imap_flags(st.row(fid, id_of(st, fid, uid))) == server
    assert st.pending() == []
    conn.close()
    st.close()


def test_moves_and_deletes_replay(cli, mailuser):
    fill(mailuser, 10)
    cli("sync")
    with Store(paths.account_store_path("test")) as st:
        fid = st.folder_id("INBOX")
        ids = [id_of(st, fid, u) for u in uids(st, fid)]
        st.move(fid, ids[:3], "Archive")
        st.expunge(fid, ids[3:4])
        assert st.counts(fid)[0] == 6  # hidden at once
    cli("sync")
    assert len(server_state(mailuser)) == 6
    assert set(server_state(mailuser, "Archive")) == {f"<m{i}@example.org>" for i in range(3)}
    assert store_state(folder="Archive") == server_state(mailuser, "Archive")
    assert store_state() == server_state(mailuser)


def test_first_fill_fetches_the_newest_screen_by_number_before_the_search(tuimail_env, mailuser, monkeypatch):
    """A first sync takes the last FIRST_WINDOW messages by sequence number right after SELECT
    (the first screen), then the rest by UID, with nothing fetched twice; if the server refuses
    the range, the UID path alone still fills the folder."""
    from tuimail.config.load import load_config
    from tuimail.store import BodyCache
    from tuimail.backends.imap import engine as engine_mod
    from tuimail.backends.imap.engine import Engine
    from tuimail.backends.imap.service import open_connection

    monkeypatch.setattr(engine_mod, "FIRST_WINDOW", 7)
    fill(mailuser, 30)
    cfg = load_config(tuimail_env.write_config(mailuser.config_toml()))
    acc = cfg.account(None)
    for refuse in (False, True):
        st = Store(paths.account_store_path(acc.name))
        conn = open_connection(acc)
        sent: list[bytes] = []
        real_send = conn.session.send_command  # (the command groups send through the session)

        def send(cmd, real_send=real_send, sent=sent):
            sent.append(cmd.split(b" (")[0])
            return real_send(cmd)

        monkeypatch.setattr(conn.session, "send_command", send)
        if refuse:
            def refused(first, last):
                from tuimail.errors import CommandFailed
                raise CommandFailed("FETCH", "NO", "no such messages")
            monkeypatch.setattr(conn, "fetch_header_seq", refused)
        eng = Engine(acc, st, conn, BodyCache(paths.account_cache_path(acc.name)))
        eng.negotiate()
        windows: list[list[int]] = []
        eng.emit = (lambda e, windows=windows:
                    windows.append(list(e.added)) if isinstance(e, RowsChanged) and e.added else None)
        res = eng.sync_folder("INBOX")
        after_select = sent[[c.split()[0] for c in sent].index(b"SELECT") + 1]
        if not refuse:
            assert after_select == b"FETCH 24:30", sent  # before any UID SEARCH
        else:
            assert after_select.startswith(b"UID SEARCH"), sent
        # (events carry local ids)
        windows = [[uid_of(st, i) for i in w] for w in windows]
        assert sorted(windows[0]) == list(range(24, 31)), "the first window is the newest seven"
        assert res.new == 30 and sorted(u for w in windows for u in w) == list(range(1, 31)), "each once"
        assert store_state() == server_state(mailuser)
        conn.close()
        st.close()
        st = Store(paths.account_store_path(acc.name))
        st.reset_folder(st.folder_id("INBOX"), None)  # empty again for the refusing round
        st.close()


def test_a_message_without_date_is_dated_by_its_arrival(cli, mailuser):
    """issue 11.7: no Date: header -> INTERNALDATE (fetched for those messages only), on the first
    screen's path, the windowed path and an incremental sync."""
    import calendar
    when = calendar.timegm((2023, 5, 6, 7, 8, 9))
    nodate = b"From: a@example.org\r\nSubject: undated %d\r\nMessage-ID: <u%d@x>\r\n\r\nbody\r\n"
    mailuser.deliver("INBOX", nodate % (1, 1), internal_date=when)  # uid 1: past the first screen
    fill(mailuser, 300)
    mailuser.deliver("INBOX", nodate % (2, 2), internal_date=when + 60)  # the newest: first screen
    cli("sync")
    mailuser.append("INBOX", nodate % (3, 3))  # arrives now (APPEND sets INTERNALDATE)
    cli("sync")
    rows = {r["subject"]: r for r in cli.json("list", "INBOX", "--limit", "0")}
    assert rows["undated 1"]["date"] == "2023-05-06T07:08:09Z"
    assert rows["undated 2"]["date"] == "2023-05-06T07:09:09Z"
    assert rows["undated 3"]["date"] is not None and rows["undated 3"]["date"] >= "2025"
