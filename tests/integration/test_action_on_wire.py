"""An action on the folder the worker idles on reaches the server at once (issue 10.3, DESIGN.md
§1): the worker is woken from IDLE at once (no 1 s polling), sends DONE, the one command the
action needs and IDLE again: no STATUS, no re-SELECT, no UID SEARCH. Counted on the wire with a
FaultProxy recording the client's lines, against real Dovecot and Cyrus IMAP."""

from __future__ import annotations

import time

import pytest

from tuimail.backends.imap.state import FolderState
from tests.support.rows import imap_flags
from tests.support.proxy import FaultProxy
from tuimail.store import Store

from .helpers import msg
from .test_service import idle_state, service_for  # noqa: F401  (a fixture)
from .test_sync_failures import LineFilterProxy
from tests.support.cyrus import IMAP_SERVERS, imap_user

LATENCY = 0.2  # seconds from the intent to the command at the proxy (target 50 ms; generous for CI)


@pytest.fixture(params=IMAP_SERVERS)
def mailuser(request):
    """Every scenario here runs against Dovecot and against Cyrus IMAP."""
    return imap_user(request)


def _verb(line: bytes) -> bytes:
    """'T12 UID STORE 3 ...' -> b'UID STORE'; 'DONE' -> b'DONE'."""
    parts = line.split(b" ")
    if len(parts) == 1:
        return parts[0].upper()
    words = parts[1:3] if parts[1].upper() == b"UID" else parts[1:2]
    return b" ".join(w.upper() for w in words)


class Wire:
    """The sync connection's client lines as the proxy saw them."""

    def __init__(self, proxy: FaultProxy):
        self.proxy = proxy

    @property
    def conn(self):
        for c in self.proxy.connections:  # the sync connection is the one that idles
            if any(_verb(line) == b"IDLE" for _, line in c.client_lines):
                return c
        raise AssertionError("no connection ever sent IDLE")

    def idling(self, timeout: float = 10.0) -> int:
        """Wait until the last line sent is IDLE (the worker waits in it); the line count."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                lines = self.conn.client_lines
            except AssertionError:
                lines = []
            if lines and _verb(lines[-1][1]) == b"IDLE":
                time.sleep(0.05)  # (and the server's "+ idling" is back)
                if _verb(self.conn.client_lines[-1][1]) == b"IDLE":
                    return len(self.conn.client_lines)
            time.sleep(0.01)
        raise AssertionError(f"the worker never went back to IDLE: {self.conn.client_lines[-8:]}")

    def after(self, start: int, timeout: float = 10.0) -> list[tuple[float, bytes]]:
        """The lines from `start` up to and including the next IDLE."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            lines = self.conn.client_lines[start:]
            for i, (_, line) in enumerate(lines):
                if _verb(line) == b"IDLE":
                    return lines[:i + 1]
            time.sleep(0.005)
        raise AssertionError(f"no IDLE after the action: {self.conn.client_lines[start:]}")


@pytest.fixture
def on_wire(mailuser, service_for):  # noqa: F811
    """A ImapService idling on INBOX (10 messages) through a recording proxy."""
    for i in range(10):
        mailuser.deliver("INBOX", msg(i))
    mailuser.create_folder("Archive")
    proxy = FaultProxy(mailuser.imap_port, mailuser.host)
    svc, ev = service_for(mailuser, port=proxy.port)
    svc.start()
    ev.wait(idle_state)
    wire = Wire(proxy)
    wire.idling()
    store = Store(svc.store_path)
    yield svc, store, wire, mailuser
    store.close()
    svc.stop()
    proxy.close()


def _server_flags(user, uid: int, folder: str = "INBOX") -> set[bytes]:
    with user.client() as c:
        c.select_folder(folder, readonly=True)
        return set(c.get_flags([uid]).get(uid, ()))


def test_a_flag_key_costs_one_store_at_once(on_wire):
    svc, store, wire, user = on_wire
    fid = store.folder_id("INBOX")
    for uid in (3, 4):  # the second action finds the folder's MODSEQ moved past the first
        start = wire.idling()
        t0 = time.monotonic()
        store.set_flags(fid, [uid], add=["flagged"])
        svc.wake()
        lines = wire.after(start)
        verbs = [_verb(line) for _, line in lines]
        assert verbs == [b"DONE", b"UID STORE", b"IDLE"], lines
        assert b"UNCHANGEDSINCE" in lines[1][1]
        latency = lines[1][0] - t0
        assert latency < LATENCY, f"the STORE reached the server {latency * 1000:.0f} ms after the key"
        assert b"\\Flagged" in _server_flags(user, uid)
    wire.idling()
    assert store.pending_count() == 0
    with user.client() as c:
        server_highest = c.folder_status("INBOX", [b"HIGHESTMODSEQ"])[b"HIGHESTMODSEQ"]
    # the MODSEQ of our own STOREs is stored: the next resync does not ask for them again
    assert FolderState.load(store.folder("INBOX").state).highestmodseq == server_highest


def test_a_move_and_a_delete_cost_their_command_alone(on_wire):
    svc, store, wire, user = on_wire
    fid = store.folder_id("INBOX")
    start = wire.idling()
    store.move(fid, [5], "Archive")
    svc.wake()
    verbs = [_verb(line) for _, line in wire.after(start)]
    assert verbs == [b"DONE", b"UID MOVE", b"IDLE"]
    start = wire.idling()
    store.expunge(fid, [6])
    svc.wake()
    verbs = [_verb(line) for _, line in wire.after(start)]
    assert verbs == [b"DONE", b"UID STORE", b"UID EXPUNGE", b"IDLE"]  # (\Deleted on the one uid)
    wire.idling()
    with user.client() as c:
        c.select_folder("INBOX", readonly=True)
        assert set(c.search("ALL")) == {1, 2, 3, 4, 7, 8, 9, 10}
        c.select_folder("Archive", readonly=True)
        assert len(c.search("ALL")) == 1
    assert 5 not in store.id_list(fid) and 6 not in store.id_list(fid)
    assert store.pending_count() == 0


def test_another_clients_change_is_still_seen(on_wire):
    svc, store, wire, user = on_wire
    fid = store.folder_id("INBOX")
    start = wire.idling()
    store.set_flags(fid, [2], add=["flagged"])
    svc.wake()
    wire.after(start)
    wire.idling()
    with user.client("INBOX") as other:
        other.add_flags([7], [b"$Other"])
    deadline = time.monotonic() + 10
    while "$Other" not in store.row(fid, 7).keywords.split() and time.monotonic() < deadline:
        time.sleep(0.02)
    assert "$Other" in store.row(fid, 7).keywords.split()
    # and the resync after it (a `$`) agrees with the server
    with user.client() as c:
        server_highest = c.folder_status("INBOX", [b"HIGHESTMODSEQ"])[b"HIGHESTMODSEQ"]
    wire.idling()
    assert FolderState.load(store.folder("INBOX").state).highestmodseq == server_highest


def test_a_change_the_server_did_not_report_takes_the_modified_path(mailuser, service_for):  # noqa: F811
    """Another client's change the worker was not told about (its IDLE notice dropped by the
    proxy): the conditional STORE answers MODIFIED, the worker fetches the flags and stores the
    user's change on top of them; both changes end on the server and in the store."""
    for i in range(5):
        mailuser.deliver("INBOX", msg(i))
    hide = {"on": False}
    proxy = LineFilterProxy(mailuser.imap_port, mailuser.host,
                            lambda line: hide["on"] and b"FETCH" in line and b"$Other" in line)
    svc, ev = service_for(mailuser, port=proxy.port)
    svc.start()
    ev.wait(idle_state)
    wire = Wire(proxy)
    store = Store(svc.store_path)
    try:
        fid = store.folder_id("INBOX")
        wire.idling()
        hide["on"] = True
        with mailuser.client("INBOX") as other:
            other.add_flags([3], [b"$Other"])
        time.sleep(0.3)  # (its notice came and was dropped)
        hide["on"] = False
        assert "$Other" not in store.row(fid, 3).keywords.split()
        start = wire.idling()
        store.set_flags(fid, [3], add=["flagged"])
        svc.wake()
        verbs = [_verb(line) for _, line in wire.after(start)]
        assert verbs == [b"DONE", b"UID STORE", b"UID FETCH", b"UID STORE", b"IDLE"]
        wire.idling()
        assert {b"$Other", b"\\Flagged"} <= _server_flags(mailuser, 3)
        assert {"$Other", "\\Flagged"} <= imap_flags(store.row(fid, 3))
    finally:
        store.close()
        svc.stop()
        proxy.close()
