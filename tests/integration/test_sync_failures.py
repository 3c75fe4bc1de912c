"""Nothing the user did is lost (issue 9.2-9.4), against a real Dovecot: a LIST answer without
folders, a folder renamed elsewhere with a queued flag, a folder the server refuses to SELECT,
and a UIDVALIDITY reset with duplicate or missing Message-IDs."""

from __future__ import annotations

import os
import time

import pytest

from tests.support.proxy import FaultProxy
from tuimail import paths
from tuimail.store import Store
from tuimail.core.events import RowsChanged

from .helpers import Cli, msg, server_state, store_uids
from .test_service import idle_state, service_for  # noqa: F401  (a fixture)
from tests.support.cyrus import IMAP_SERVERS, imap_user


@pytest.fixture(params=IMAP_SERVERS)
def mailuser(request):
    """Every scenario here runs against Dovecot and against Cyrus IMAP."""
    return imap_user(request)


class LineFilterProxy(FaultProxy):
    """Forwards to Dovecot but drops the server lines `drop(line)` picks (a fault injected into
    real answers, e.g. a LIST that lists nothing)."""

    def __init__(self, port: int, host: str, drop):
        self.drop = drop
        self._bufs: dict[int, bytearray] = {}
        super().__init__(port, host)

    def _from_server(self, conn, data: bytes) -> None:
        buf = self._bufs.setdefault(conn.number, bytearray())
        buf += data
        out = bytearray()
        while (i := buf.find(b"\r\n")) >= 0:
            line = bytes(buf[:i + 2])
            del buf[:i + 2]
            if not self.drop(line):
                out += line
        if out:
            super()._from_server(conn, bytes(out))


@pytest.fixture
def cli(tuimail_env, mailuser, capsys):
    return Cli(tuimail_env.write_config(mailuser.config_toml()), capsys)


@pytest.fixture
def filtered_cli(tuimail_env, mailuser, capsys):
    """filtered_cli(drop) -> a Cli whose account goes through a LineFilterProxy."""
    proxies = []

    def make(drop):
        proxy = LineFilterProxy(mailuser.imap_port, mailuser.host, drop)
        proxies.append(proxy)
        path = tuimail_env.config_home / "filtered.toml"
        path.write_text(mailuser.config_toml(port=proxy.port))
        path.chmod(0o600)
        return Cli(path, capsys)

    yield make
    for p in proxies:
        p.close()


def st():
    return Store(paths.account_store_path("test"))


def folder_names() -> set[str]:
    with st() as s:
        return {f.name for f in s.folders()}


# ---------------------------------------------------------------------------- 9.2 LIST


def test_an_empty_list_answer_is_ignored_and_wipes_nothing(cli, filtered_cli, mailuser):
    mailuser.deliver_many("Archive", ((msg(i), "") for i in range(4)))
    mailuser.deliver_many("INBOX", ((msg(i), "") for i in range(10, 13)))
    cli("sync")
    before = folder_names()
    uid = max(store_uids(folder="Archive"))
    cli("flag", "Archive", str(uid), "+flagged")
    empty = filtered_cli(lambda line: line.upper().startswith((b"* LIST ", b"* STATUS ")))
    out = empty("sync")
    assert "listed no folders" in out
    assert folder_names() == before
    assert len(store_uids()) == 3 and len(store_uids(folder="Archive")) == 4
    # the known folders were synced as usual: the queued flag reached the server
    assert "\\Flagged" in server_state(mailuser, "Archive")["<m3@example.org>"]
    with st() as s:
        assert s.pending() == [] and s.failed_count() == 0


def test_inbox_is_never_deleted(cli, filtered_cli, mailuser):
    mailuser.deliver_many("INBOX", ((msg(i), "") for i in range(3)))
    cli("sync")
    no_inbox = filtered_cli(lambda line: line.upper().startswith((b"* LIST ", b"* STATUS "))
                            and b"INBOX" in line.upper())
    out = no_inbox("sync")
    assert "lacks INBOX" in out
    assert "INBOX" in folder_names() and len(store_uids()) == 3


def _rename(user, old, new):
    with user.client() as c:
        c.rename_folder(old, new)


def test_a_folder_renamed_elsewhere_keeps_the_queued_flag_as_failed_until_discarded(cli, mailuser):
    mailuser.deliver_many("Lists", ((msg(i), "") for i in range(3)))
    cli("sync")
    uid = max(store_uids(folder="Lists"))
    cli("flag", "Lists", str(uid), "+flagged")
    _rename(mailuser, "Lists", "Lists2")
    out = cli("sync")
    assert "1 failed action in Lists" in out and "tuimail pending" in out and "Lists is gone" in out
    [entry] = cli.json("pending")
    assert entry["state"] == "failed" and entry["folder"] == "Lists" and entry["op"] == "flags"
    assert "gone from the server" in entry["error"] and entry["subject"] == "message 2"
    text = cli("pending")
    assert "failed" in text and "+flagged" in text and "message 2" in text
    assert "Lists" in folder_names() and len(store_uids(folder="Lists2")) == 3
    again = cli("sync")
    assert "1 failed action in Lists" in again, "a failed entry stays visible"
    assert "is gone" not in again, "the folder's disappearance is news once"
    assert cli.json("pending")[0]["attempts"] == 0, "a failed entry is not replayed"
    cli("pending", "--discard", str(entry["id"]))
    assert cli.json("pending") == []
    assert "Lists" not in folder_names(), "a gone folder goes with its last entry"
    assert "failed" not in cli("sync")


def test_a_folder_that_comes_back_gets_its_actions_sent(cli, mailuser):
    mailuser.deliver_many("Lists", ((msg(i), "") for i in range(3)))
    cli("sync")
    uid = max(store_uids(folder="Lists"))
    cli("flag", "Lists", str(uid), "+flagged")
    _rename(mailuser, "Lists", "Away")
    assert "1 failed action" in cli("sync")
    _rename(mailuser, "Away", "Lists")
    out = cli("sync")
    assert "failed" not in out
    assert cli.json("pending") == []
    assert "\\Flagged" in server_state(mailuser, "Lists")["<m2@example.org>"]


def test_discard_failed_reverts_a_move_and_a_flag(cli, mailuser):
    mailuser.deliver_many("Lists", ((msg(i), "") for i in range(3)))
    cli("sync")
    with st() as s:
        fid = s.folder_id("Lists")
        s.set_flags(fid, [1], add=["flagged"])
        s.move(fid, [2], "Archive")
        assert s.id_list(fid) == [3, 1]
        for e in s.pending():  # refused for good (as after three NO answers)
            s.journal_failed(e.id, "server refused UID MOVE: NO", final=True)
    assert "2 failed actions in Lists" in cli("sync")
    assert "discarded 2 actions" in cli("pending", "--discard-failed")
    with st() as s:
        fid = s.folder_id("Lists")
        assert sorted(s.id_list(fid)) == [1, 2, 3]
        assert "flagged" not in s.row(fid, 1).flags
    assert cli("pending") == ""
    cli("pending", "--discard", "999", expect=2)
    assert "no action 999" in cli.last_err


# ---------------------------------------------------------------------------- 9.3 one bad folder


class _lock_out:
    """SELECT of `folder` refused until the block ends: Dovecot's Maildir made unreadable (it
    answers NO [SERVERBUG]), Cyrus's read rights taken away by SETACL (NO Permission denied)."""

    def __init__(self, user, folder):
        self.user, self.folder = user, folder
        self.cyrus = hasattr(user, "lock_out")
        self.code = "Permission denied" if self.cyrus else "SERVERBUG"

    def __enter__(self):
        if self.cyrus:
            self.user.lock_out(self.folder)
        else:
            self.path = self.user.folder_path(self.folder)
            os.chmod(self.path, 0)
        return self

    def __exit__(self, *exc):
        if self.cyrus:
            self.user.lock_out(self.folder, False)
        else:
            os.chmod(self.path, 0o700)


def test_a_folder_the_server_refuses_does_not_stop_the_others(cli, mailuser):
    mailuser.deliver_many("Lists", ((msg(i), "") for i in range(3)))
    mailuser.deliver_many("Work", ((msg(i), "") for i in range(10, 12)))
    cli("sync")
    cli("flag", "Work", str(max(store_uids(folder="Work"))), "+flagged")
    with _lock_out(mailuser, "Lists") as locked:
        mailuser.deliver("Work", msg(20))
        mailuser.deliver("INBOX", msg(30))
        out = cli("sync")  # exit 0
        assert "1 folder failed: Lists (server refused" in out and locked.code in out
        assert len(store_uids(folder="Work")) == 3 and len(store_uids()) == 1
        assert "\\Flagged" in server_state(mailuser, "Work")["<m11@example.org>"]
        with st() as s:
            info = s.folder("Lists")
            assert locked.code in info.error and len(s.local_sids(info.id)) == 3
        # every folder tried was refused: the documented exit code 3, with the summary
        out = cli("sync", "Lists", expect=3)
        assert "1 folder failed: Lists" in out
    mailuser.deliver("Lists", msg(40))
    assert "failed" not in cli("sync")
    with st() as s:
        assert s.folder("Lists").error is None
    assert len(store_uids(folder="Lists")) == 4


def test_service_goes_on_to_idle_past_a_refused_folder(mailuser, service_for):  # noqa: F811
    for i in range(3):
        mailuser.deliver("INBOX", msg(i))
    mailuser.deliver("Lists", msg(10))
    with _lock_out(mailuser, "Lists") as locked:
        svc, ev = service_for(mailuser)
        svc.start()
        ev.wait(idle_state, timeout=30)
        with Store(svc.store_path) as s:
            assert locked.code in (s.folder("Lists").error or "")
        time.sleep(0.3)  # let the worker enter IDLE
        mailuser.append("INBOX", msg(50))
        ev.wait(lambda e: isinstance(e, RowsChanged) and 4 in e.added)
        # watching the refused folder: IDLE goes on on INBOX, no loop of SELECTs
        svc.watch_folder("Lists")
        ev.seen.clear()
        ev.wait(lambda e: idle_state(e) and e.folder == "Lists", timeout=15)
        time.sleep(0.5)
        mailuser.append("INBOX", msg(51))
        ev.wait(lambda e: isinstance(e, RowsChanged) and 5 in e.added)
        selects = sum(1 for e in ev.seen if idle_state(e))
        assert selects < 10, f"{selects} idle rounds in a second: a loop"


# ---------------------------------------------------------------------------- 9.4 UIDVALIDITY


def _no_id(i: int) -> bytes:
    return (f"From: x <x@example.org>\r\nSubject: no id {i}\r\nDate: Mon, 01 Jan 2024 10:00:0{i} +0000\r\n"
            f"\r\nbody {i}\r\n").encode()


def test_uidvalidity_reset_rematches_only_the_one_right_message(cli, mailuser):
    a = msg(1, subject="twin a")
    b = msg(1, subject="twin b", body="a longer body, so another size\r\n")  # same Message-ID
    d = msg(2)  # d and its exact copy: nothing tells them apart
    mailuser.create_folder("Old")  # (not a special-use folder: Cyrus refuses to delete one)
    for raw in (a, b, _no_id(0), d, d, msg(3)):
        mailuser.append("Old", raw)
    cli("sync")
    with st() as s:
        fid = s.folder_id("Old")
        by_subject = {s.row(fid, u).subject: u for u in s.ids_of(fid, s.local_sids(fid)).values()}
        s.set_flags(fid, [by_subject["twin a"]], add=["flagged"])
        s.move(fid, [by_subject["twin b"]], "Trash")
        s.set_flags(fid, [by_subject["no id 0"]], add=["flagged"])
        s.set_flags(fid, [5], add=["answered"])  # the second copy of d
        s.set_flags(fid, [6], add=["flagged"])  # msg(3): an ordinary message
    with mailuser.client() as other:  # the folder is recreated: new UIDVALIDITY, new uids
        other.delete_folder("Old")
        other.create_folder("Old")
        for raw in (msg(100), msg(3), d, _no_id(0), d, b, a):
            other.append("Old", raw)
    out = cli("sync")
    assert "2 failed actions in Old" in out
    with mailuser.client("Old") as c:
        got = c.fetch(c.search("ALL"), ["FLAGS", "BODY.PEEK[HEADER.FIELDS (SUBJECT)]"])
    flags = {v[b"BODY[HEADER.FIELDS (SUBJECT)]"].decode().split(":", 1)[1].strip(): set(v[b"FLAGS"])
             for v in got.values()}
    assert "twin b" not in flags, "the move went to the message it was meant for"
    assert b"\\Flagged" in flags["twin a"], "the flag went to the message it was meant for"
    assert b"\\Flagged" in flags["message 3"]
    assert b"\\Flagged" not in flags["no id 0"]
    with mailuser.client("Trash") as c:
        trash = c.fetch(c.search("ALL"), ["BODY.PEEK[HEADER.FIELDS (SUBJECT)]"])
    assert [v[b"BODY[HEADER.FIELDS (SUBJECT)]"].decode().split(":", 1)[1].strip() for v in trash.values()] \
        == ["twin b"]
    failed = [e for e in cli.json("pending") if e["state"] == "failed"]
    reasons = sorted(e["error"] for e in failed)
    assert len(failed) == 2 and all(e["uid"] is None for e in failed)
    assert "several messages match" in reasons[0] and "no Message-ID" in reasons[1]
    assert {e["message_id"] for e in failed} == {None, "<m2@example.org>"}
    cli("pending", "--discard-failed")
    assert cli.json("pending") == []
