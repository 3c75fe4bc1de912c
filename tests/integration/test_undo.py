"""Undo (issue #13 item 6) end to end against a real Dovecot: intents run by the writer's
run_intent record their inverse, the undo is an intent journalled like any other, and the engine
(driven by `tuimail sync`) carries both to the server. The server is checked on a separate IMAP
connection; a JMAP account (Cyrus) goes the same way. The TUI side (u, U, offline, a restart) is in
tests/integration/test_undo_ui.py."""

from __future__ import annotations

import re

import pytest

from tuimail import paths
from tuimail.store import Store
from tuimail.store.writer import Intent, run_intent

from tests.support.proxy import FaultProxy

from .helpers import Cli, msg, server_state

MODES = ["qresync", "plain"]


@pytest.fixture(params=MODES)
def cli(tuimail_env, mailuser, capsys, request):
    path = tuimail_env.write_config(mailuser.config_toml(sync_mode=request.param))
    return Cli(path, capsys)


def _store() -> Store:
    return Store(paths.account_store_path("test"))


def _ids(st: Store, folder: str = "INBOX") -> dict[str, int]:
    """Message-ID -> local id of the folder's visible rows."""
    fid = st.folder_id(folder)
    return {r.message_id: r.id for r in st.rows(fid, st.id_list(fid)).values()}


def _bodies(user, folder: str) -> dict[str, bytes]:
    """Message-ID -> the whole message, as a separate connection reads it."""
    with user.client() as c:
        c.select_folder(folder, readonly=True)
        uids = c.search("ALL")
        data = c.fetch(uids, ["BODY.PEEK[]"]) if uids else {}
    out = {}
    for d in data.values():
        raw = d[b"BODY[]"]
        mid = next(ln.split(b":", 1)[1].strip().decode() for ln in raw.splitlines()
                   if ln.lower().startswith(b"message-id:"))
        assert mid not in out, f"two copies of {mid} in {folder}"
        out[mid] = raw
    return out


def test_undo_of_a_synced_bulk_flag_puts_each_message_back_as_it_was(cli, mailuser):
    # m0, m2 unread; m1, m3 read: "mark all read" then undo leaves m1, m3 read
    mailuser.deliver_many("INBOX", ((msg(i), "S" if i % 2 else "") for i in range(4)))
    cli("sync")
    with _store() as st:
        fid = st.folder_id("INBOX")
        assert len(run_intent(st, Intent("flags", fid, tuple(_ids(st).values()), add=("seen",)))) == 2
    cli("sync")
    assert all("\\Seen" in f for f in server_state(mailuser).values())
    with _store() as st:
        e = st.undo.latest()
        assert e.what == "marked 2 messages read"
        run_intent(st, Intent("undo", 0, (e.id,)))
    cli("sync")
    state = server_state(mailuser)
    assert {m: "\\Seen" in f for m, f in state.items()} == {
        "<m0@example.org>": False, "<m1@example.org>": True, "<m2@example.org>": False, "<m3@example.org>": True}


def test_undo_of_a_synced_move_brings_one_readable_copy_back(cli, mailuser):
    mailuser.deliver_many("INBOX", ((msg(i, body=f"body {i}\r\n"), "") for i in range(5)))
    mailuser.create_folder("Archive")
    cli("sync")
    before = _bodies(mailuser, "INBOX")
    with _store() as st:
        ids = _ids(st)
        moved = (ids["<m1@example.org>"], ids["<m3@example.org>"])
        run_intent(st, Intent("move", st.folder_id("INBOX"), moved, dest="Archive"))
    cli("sync")
    assert set(server_state(mailuser, "Archive")) == {"<m1@example.org>", "<m3@example.org>"}
    with _store() as st:
        e = st.undo.latest()
        assert e.what == "moved 2 messages to Archive"
        run_intent(st, Intent("undo", 0, (e.id,)))
        assert st.pending_folders() == {"Archive"}  # moved back from where they are now
    cli("sync")
    assert server_state(mailuser, "Archive") == {}
    after = _bodies(mailuser, "INBOX")  # (one copy of each: asserted while reading)
    assert after == before
    with _store() as st:
        assert sorted(_ids(st)) == sorted(before) and _ids(st, "Archive") == {}
        assert st.pending() == []


def test_undo_of_a_delete_to_trash_after_it_synced_and_after_a_restart(cli, mailuser):
    mailuser.deliver_many("INBOX", ((msg(i), "S") for i in range(3)))
    cli("sync")
    with _store() as st:
        run_intent(st, Intent("move", st.folder_id("INBOX"), (_ids(st)["<m2@example.org>"],), dest="Trash"))
    cli("sync")
    assert "<m2@example.org>" in server_state(mailuser, "Trash")
    with _store() as st:  # another process, later: the history is in the store
        (e,) = st.undo.history()
        assert (e.what, e.subject, e.state) == ("moved 1 message to Trash", "message 2", "done")
        run_intent(st, Intent("undo", 0, (e.id,)))
    cli("sync")
    assert server_state(mailuser, "Trash") == {}
    assert server_state(mailuser)["<m2@example.org>"] == {"\\Seen"}


def test_undo_made_offline_waits_in_the_journal(cli, mailuser):
    mailuser.deliver_many("INBOX", ((msg(i), "") for i in range(3)))
    mailuser.create_folder("Archive")
    cli("sync")
    with _store() as st:
        run_intent(st, Intent("move", st.folder_id("INBOX"), (_ids(st)["<m0@example.org>"],), dest="Archive"))
    cli("sync")
    with _store() as st:  # offline: nothing goes out, the undo waits in the journal
        run_intent(st, Intent("undo", 0, (st.undo.latest().id,)))
        (j,) = st.pending()
        assert (j.folder, j.op, j.dest) == ("Archive", "move", "INBOX")
    assert "<m0@example.org>" in server_state(mailuser, "Archive")
    cli("sync")  # online again
    assert server_state(mailuser, "Archive") == {} and "<m0@example.org>" in server_state(mailuser)


class NoCopyUid(FaultProxy):
    """Dovecot without the new uid of a moved message (a server without UIDPLUS): the COPYUID
    response codes are cut out of its lines."""

    def __init__(self, port: int, host: str):
        self._bufs: dict[int, bytearray] = {}
        super().__init__(port, host)

    def _from_server(self, conn, data: bytes) -> None:
        buf = self._bufs.setdefault(conn.number, bytearray())
        buf += data
        end = buf.rfind(b"\r\n")
        if end < 0:
            return
        lines = bytes(buf[:end + 2])
        del buf[:end + 2]
        super()._from_server(conn, re.sub(rb"\[COPYUID [^\]]*\] ?", b"", lines))


@pytest.mark.parametrize("synced_first", [True, False], ids=["found-in-dest", "found-at-next-sync"])
def test_undo_of_a_move_the_server_gave_no_new_uid_for(tuimail_env, mailuser, capsys, synced_first):
    mailuser.deliver_many("INBOX", ((msg(i, body=f"body {i}\r\n"), "") for i in range(3)))
    mailuser.create_folder("Archive")
    proxy = NoCopyUid(mailuser.imap_port, mailuser.host)
    try:
        cli = Cli(tuimail_env.write_config(mailuser.config_toml(port=proxy.port)), capsys)
        cli("sync")
        before = _bodies(mailuser, "INBOX")
        with _store() as st:
            run_intent(st, Intent("move", st.folder_id("INBOX"), (_ids(st)["<m1@example.org>"],), dest="Archive"))
        cli("sync", "INBOX")  # the row leaves INBOX; Archive learns the new uid only when it is synced
        assert set(server_state(mailuser, "Archive")) == {"<m1@example.org>"}
        if synced_first:
            cli("sync", "Archive")
        with _store() as st:
            assert ("<m1@example.org>" in _ids(st, "Archive")) == synced_first
            run_intent(st, Intent("undo", 0, (st.undo.latest().id,)))
            (j,) = st.pending()
            assert (j.folder, j.op, j.dest, j.sid is None) == ("Archive", "move", "INBOX", not synced_first)
        cli("sync")
        cli("sync")  # (a moved message reaches INBOX's rows at its next sync)
        assert server_state(mailuser, "Archive") == {}
        assert _bodies(mailuser, "INBOX") == before
        with _store() as st:
            assert st.pending() == [] and sorted(_ids(st)) == sorted(before)
    finally:
        proxy.close()


def test_undo_on_a_jmap_account_cyrus(tuimail_env, cyrususer):
    """The same history on another backend: a synced move to Trash and a synced flag, undone."""
    from tuimail.config.load import load_config

    from .test_jmap_backend import fill, jmap_toml, server_flags, sync

    cfg = load_config(tuimail_env.write_config(jmap_toml(cyrususer)))
    acc = cfg.account("test")
    fill(cyrususer, 3)
    sync(cfg, acc)
    with _store() as st:
        fid = st.folder_id("INBOX")
        by = {r.subject: r.id for r in st.rows(fid, st.id_list(fid)).values()}
        run_intent(st, Intent("move", fid, (by["message 1"],), dest="Trash"))
        run_intent(st, Intent("flags", fid, (by["message 2"], by["message 3"]), add=("flagged",)))
    sync(cfg, acc)
    assert set(server_flags(cyrususer, "Trash")) == {"message 1"}
    assert all("\\Flagged" in f for f in server_flags(cyrususer).values())
    with _store() as st:
        for e in st.undo.history():  # newest first
            run_intent(st, Intent("undo", 0, (e.id,)))
    sync(cfg, acc)
    assert server_flags(cyrususer, "Trash") == {}
    assert {s: "\\Flagged" in f for s, f in server_flags(cyrususer).items()} == {
        "message 1": False, "message 2": False, "message 3": False}
