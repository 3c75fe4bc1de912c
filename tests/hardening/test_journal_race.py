"""Issue 9, item 1: an intent the user makes while an earlier one is on the wire is never lost.

The FaultProxy holds the sync's `UID STORE` (or `UID MOVE`): either the command itself
(forward=False) or the server's answer to it (forward=True, the server already applied it). While
it is held, the user acts on the same message from another Store connection (as the TUI's writer
does) or from a second `tuimail flag` process. After the held command completes and one more sync,
the server holds what the user did last, the store shows the same, and nothing is left pending.
"""

from __future__ import annotations

import subprocess
import sys
import threading

import pytest

from tests.support.rows import canon, imap_flags
from tests.integration.helpers import msg, server_state, store_state
from tuimail import paths
from tuimail.cli.main import main
from tuimail.store import Store

from .conftest import ROOT, run_tuimail
from tests.support.cyrus import IMAP_SERVERS, imap_user

HOLD_TIMEOUT = 15


@pytest.fixture(params=IMAP_SERVERS)
def mailuser(request):
    """Every test here runs against Dovecot and against Cyrus IMAP."""
    return imap_user(request)


def _sync(config) -> None:
    assert main(["--config", str(config), "sync"]) == 0


class BackgroundSync:
    """`tuimail sync` (in-process) on a thread, through the proxy."""

    def __init__(self, config):
        self.code: int | None = None
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, args=(config,), daemon=True)
        self.thread.start()

    def _run(self, config) -> None:
        try:
            self.code = main(["--config", str(config), "sync"])
        except BaseException as exc:  # noqa: BLE001 - reported by join()
            self.error = exc

    def join(self) -> int:
        self.thread.join(30)
        assert not self.thread.is_alive(), "the sync did not finish after the proxy resumed"
        if self.error is not None:
            raise self.error
        return self.code


@pytest.fixture
def setup(tuimail_env, mailuser, proxy_factory):
    mailuser.deliver("INBOX", msg(1))
    mailuser.deliver("INBOX", msg(2))
    mailuser.create_folder("Archive")
    proxy = proxy_factory(mailuser)
    direct = tuimail_env.write_config(mailuser.config_toml())
    proxied = tuimail_env.config_home / "proxied.toml"
    proxied.write_text(mailuser.config_toml(port=proxy.port))
    proxied.chmod(0o600)
    _sync(direct)
    return mailuser, proxy, direct, proxied


def _uid(folder: str = "INBOX", mid: str = "<m1@example.org>") -> tuple[int, int]:
    with Store(paths.account_store_path("test")) as st:
        fid = st.folder_id(folder)
        return fid, st.find_by_message_id(fid, mid)


def _set_flags(add=(), remove=()) -> None:
    fid, uid = _uid()
    with Store(paths.account_store_path("test")) as st:
        assert st.set_flags(fid, [uid], add=canon(add), remove=canon(remove)) == [uid]


def _held_sync(proxy, proxied, pattern: bytes, forward: bool, during) -> None:
    held = proxy.stall_on_client(pattern, forward=forward)
    bg = BackgroundSync(proxied)
    try:
        assert held.wait(HOLD_TIMEOUT), "the sync never sent the command to hold"
        during()
    finally:
        proxy.resume()
        proxy.clear_rules()
    assert bg.join() == 0


def _pending() -> list:
    with Store(paths.account_store_path("test")) as st:
        return st.pending()


def _converged(user, direct, want: set[str], folder: str = "INBOX", mid: str = "<m1@example.org>") -> None:
    _sync(direct)
    assert server_state(user, folder)[mid] == want
    assert store_state(folder=folder)[mid] == want
    assert _pending() == []
    _sync(direct)  # and a later sync takes nothing away
    assert server_state(user, folder)[mid] == want
    assert store_state(folder=folder)[mid] == want


@pytest.mark.parametrize("forward", [True, False], ids=["answer-held", "command-held"])
def test_flag_set_while_mark_read_is_on_the_wire(setup, forward):
    user, proxy, direct, proxied = setup
    _set_flags(add=["\\Seen"])  # mark read
    # F pressed while `+FLAGS.SILENT (\Seen)` waits for its OK
    _held_sync(proxy, proxied, b" STORE ", forward, lambda: _set_flags(add=["\\Flagged"]))
    assert store_state()["<m1@example.org>"] == {"\\Seen", "\\Flagged"}, "the store lost the flag"
    assert server_state(user)["<m1@example.org>"] >= {"\\Seen"}
    assert _pending(), "the \\Flagged intent is not waiting to be sent"
    _converged(user, direct, {"\\Seen", "\\Flagged"})


@pytest.mark.parametrize("forward", [True, False], ids=["answer-held", "command-held"])
def test_unread_again_while_mark_read_is_on_the_wire(setup, forward):
    """+Seen then -Seen: the two cancel out locally, but +Seen is already on its way."""
    user, proxy, direct, proxied = setup
    _set_flags(add=["\\Seen"])
    _held_sync(proxy, proxied, b" STORE ", forward, lambda: _set_flags(remove=["\\Seen"]))
    assert store_state()["<m1@example.org>"] == set()
    _converged(user, direct, set())


def test_cli_flag_while_background_sync_holds_the_store(setup):
    """`tuimail flag +seen`, `tuimail sync` in the background (held by the proxy), then a second
    process `tuimail flag +flagged`: both flags end on the server."""
    user, proxy, direct, proxied = setup
    _fid, uid = _uid()
    r = run_tuimail(direct, "flag", "INBOX", str(uid), "+seen")
    assert r.code == 0, r.err
    held = proxy.stall_on_client(b" STORE ", forward=True)
    sync = subprocess.Popen([sys.executable, "-m", "tuimail", "--config", str(proxied), "sync"], cwd=ROOT,
                            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        assert held.wait(HOLD_TIMEOUT), "the background sync never sent its STORE"
        r = run_tuimail(direct, "flag", "INBOX", str(uid), "+flagged")
        assert r.code == 0, r.err
        assert r.out.split() == ["seen", "flagged"]
    finally:
        proxy.resume()
        proxy.clear_rules()
        _, err = sync.communicate(timeout=60)
    assert sync.returncode == 0, err.decode(errors="replace")
    r = run_tuimail(direct, "sync")
    assert r.code == 0, r.err
    assert server_state(user)["<m1@example.org>"] == {"\\Seen", "\\Flagged"}
    assert store_state()["<m1@example.org>"] == {"\\Seen", "\\Flagged"}
    assert _pending() == []


def test_move_while_flag_store_is_on_the_wire(setup):
    """The move is a new entry, sent after the flag change: the message lands in Archive, read."""
    user, proxy, direct, proxied = setup

    def move():
        fid, uid = _uid()
        with Store(paths.account_store_path("test")) as st:
            assert st.move(fid, [uid], "Archive") == [uid]
    _set_flags(add=["\\Seen"])
    _held_sync(proxy, proxied, b" STORE ", True, move)
    _sync(direct)
    assert "<m1@example.org>" not in server_state(user)
    _converged(user, direct, {"\\Seen"}, folder="Archive")


def test_flag_on_a_message_whose_move_is_on_the_wire_follows_it(setup):
    """`tuimail flag` on a message being moved (its row is hidden, not gone): the flag change
    follows the message to its new folder and uid instead of being sent to the old uid."""
    user, proxy, direct, proxied = setup
    fid, uid = _uid()
    with Store(paths.account_store_path("test")) as st:
        assert st.move(fid, [uid], "Archive") == [uid]

    def flag():
        r = run_tuimail(direct, "flag", "INBOX", str(uid), "+flagged")
        assert r.code == 0, r.err
    _held_sync(proxy, proxied, b" MOVE ", True, flag)
    assert "<m1@example.org>" not in server_state(user)
    _converged(user, direct, {"\\Flagged"}, folder="Archive")


def test_sending_entries_count_as_pending_and_stay_immutable(setup):
    """While an entry is on the wire: the pending count, the folders with pending actions and the
    flags a resync paints (server flags + pending deltas) all include it; a new intent on the
    same message is a new entry."""
    user, proxy, direct, proxied = setup
    _set_flags(add=["\\Seen"])
    seen = {}

    def during():
        with Store(paths.account_store_path("test")) as st:
            fid, uid = _uid()
            seen["count"] = st.pending_count()
            seen["folders"] = st.pending_folders()
            st.apply_server_flags(fid, [(st.row(fid, uid).sid, (), "", None)])  # a server answer without seen yet
            seen["row"] = imap_flags(st.row(fid, uid))
            st.set_flags(fid, [uid], add=["flagged"])
            seen["entries"] = [(e.add_flags, e.remove_flags) for e in st.pending(fid)]
            seen["states"] = [r[0] for r in st.db.execute("SELECT state FROM journal ORDER BY id")]
    _held_sync(proxy, proxied, b" STORE ", True, during)
    assert seen["count"] == 1 and seen["folders"] == {"INBOX"}
    assert seen["row"] == {"\\Seen"}
    assert seen["entries"] == [(("seen",), ()), (("flagged",), ())]
    assert seen["states"] == ["sending", "pending"]
    _converged(user, direct, {"\\Seen", "\\Flagged"})


@pytest.mark.parametrize("forward", [True, False], ids=["answer-lost", "command-lost"])
def test_connection_cut_while_mark_read_is_on_the_wire(setup, forward):
    """The connection dies with +Seen on the wire (applied or not: tuimail cannot know); the user
    then marks the message unread again. The next sync sends +Seen again, then -Seen."""
    user, proxy, direct, proxied = setup
    _set_flags(add=["\\Seen"])
    held = proxy.stall_on_client(b" STORE ", forward=forward)
    bg = BackgroundSync(proxied)
    try:
        assert held.wait(HOLD_TIMEOUT), "the sync never sent its STORE"
        proxy.cut_now()
    finally:
        proxy.resume()
        proxy.clear_rules()
    assert bg.join() == 3
    _set_flags(remove=["\\Seen"])
    assert len(_pending()) == 2
    _converged(user, direct, set())


def test_flag_set_while_a_conditional_store_comes_back_modified(setup):
    """The phone changes the message while +Seen waits (UNCHANGEDSINCE fails: [MODIFIED]); the
    engine fetches the flags again and re-applies +Seen, and the user's \\Flagged, made in the
    same moment, is neither painted over by the refetch nor lost."""
    user, proxy, direct, proxied = setup
    _set_flags(add=["\\Seen"])

    def during():
        with user.client(select="INBOX") as phone:
            phone.add_flags(phone.search(["HEADER", "Message-ID", "<m1@example.org>"]), ["\\Answered"])
        _set_flags(add=["\\Flagged"])
    _held_sync(proxy, proxied, b" STORE ", False, during)
    assert store_state()["<m1@example.org>"] == {"\\Seen", "\\Flagged", "\\Answered"}
    _converged(user, direct, {"\\Seen", "\\Flagged", "\\Answered"})
