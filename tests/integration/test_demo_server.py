"""The embedded demo server (tuimail/demo/server.py): pymap in a thread, real IMAP on loopback."""

from __future__ import annotations

import logging
import threading
import time

import imapclient
import pytest

from tuimail.demo.generate import demo_folders, generate
from tuimail.demo.server import DemoServer, DemoServerError


def _demo_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith("tuimail-demo-imap")]


@pytest.fixture
def client_factory():
    clients: list[imapclient.IMAPClient] = []

    def make(srv: DemoServer, login: bool = True) -> imapclient.IMAPClient:
        c = imapclient.IMAPClient(srv.host, srv.port, ssl=False, timeout=10)
        clients.append(c)
        if login:
            c.login(srv.username, srv.password)
        return c

    yield make
    for c in clients:
        try:
            c.logout()
        except Exception:
            pass


def test_demo_server_end_to_end(client_factory):
    before = set(threading.enumerate())
    expected = {name: len(msgs) for name, msgs in demo_folders()}
    srv = DemoServer()
    srv.start()
    try:
        print(f"\nDemoServer start: {srv.startup_seconds:.2f}s on port {srv.port}")
        assert srv.startup_seconds < 2.0
        assert srv.host == "127.0.0.1" and srv.port > 0
        assert (srv.username, srv.password) == ("demo", "demo")
        assert srv.counts == expected

        c = client_factory(srv, login=False)
        assert b"AUTH=PLAIN" in c.capabilities()
        c.login("demo", "demo")
        caps = set(c.capabilities())
        print("capabilities after login:", b" ".join(sorted(caps)).decode())
        assert {b"IDLE", b"MOVE", b"UIDPLUS"} <= caps
        assert not caps & {b"QRESYNC", b"CONDSTORE", b"ENABLE"}  # the client's plain path

        folders = {name: flags for flags, _delim, name in c.list_folders()}
        assert set(expected) <= set(folders)
        assert b"\\Sent" in folders["Sent"] and b"\\Trash" in folders["Trash"]
        assert b"\\Junk" in folders["Junk"] and b"\\Drafts" in folders["Drafts"]
        assert b"\\Archive" in folders["Archive"]
        assert b"\\Noselect" in folders["Lists"]
        assert {name for _f, _d, name in c.list_sub_folders()} >= set(expected)

        info = c.select_folder("INBOX")
        assert info[b"EXISTS"] == expected["INBOX"]
        uids = c.search("ALL")
        assert len(uids) == expected["INBOX"]
        unseen = c.search("UNSEEN")
        assert uids[-1] in unseen  # the newest are unread

        got = c.fetch([uids[-1]], ["BODY.PEEK[HEADER]", "FLAGS", "INTERNALDATE", "RFC822.SIZE"])
        header = got[uids[-1]][b"BODY[HEADER]"]
        assert b"\r\nMessage-ID: <" in header and header.endswith(b"\r\n\r\n")
        newest = dict(demo_folders())["INBOX"][-1]
        assert got[uids[-1]][b"RFC822.SIZE"] == len(newest.raw)
        assert header == newest.raw[:len(header)]
        assert b"\\Seen" not in got[uids[-1]][b"FLAGS"]  # PEEK kept it unread

        # BODYSTRUCTURE and ENVELOPE come from the lazily parsed MIME structure
        structure = c.fetch([uids[-1]], ["BODYSTRUCTURE", "ENVELOPE"])[uids[-1]]
        assert structure[b"ENVELOPE"].message_id == newest.message_id.encode()

        # a move parses the message on the way and it stays readable at the destination
        c.move(uids[:2], "Archive")
        c.select_folder("Archive")
        moved = c.search("ALL")[-2:]
        bodies = c.fetch(moved, ["BODY.PEEK[]"])
        assert [bodies[u][b"BODY[]"] for u in moved] == [m.raw for m in
                                                          dict(demo_folders())["INBOX"][:2]]
    finally:
        srv.stop()
    assert not _demo_threads()
    assert set(threading.enumerate()) <= before, "a thread was left behind"


def test_stop_with_sessions_still_open_and_restart_logs_nowhere_visible(client_factory, capsys):
    root_records: list[logging.LogRecord] = []

    class Grab(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            root_records.append(record)

    grab = Grab(level=logging.DEBUG)
    root = logging.getLogger()
    root.addHandler(grab)
    try:
        folders = [("INBOX", list(generate(30, seed=9))), ("Work/Projects", list(generate(5, seed=9)))]
        with DemoServer(folders=folders, username="u", password="p w") as srv:
            assert logging.getLogger("pymap").propagate is False
            log_path = srv.log_path
            c = client_factory(srv)
            c.select_folder("Work/Projects")
            c.idle()  # a session parked in IDLE must not keep the server alive
            with pytest.raises(imapclient.exceptions.LoginError):
                client_factory(srv, login=False).login("u", "wrong")
            t0 = time.perf_counter()
        assert time.perf_counter() - t0 < 5
        assert not _demo_threads()
        assert not log_path.exists(), "the private log dir is removed at stop"
        assert logging.getLogger("pymap").propagate is True
        pymap_records = [r for r in root_records if r.name.startswith("pymap")]
        assert not pymap_records
        out = capsys.readouterr()
        assert "pymap" not in out.out + out.err
    finally:
        root.removeHandler(grab)


def test_start_twice_stop_twice_and_busy_port():
    srv = DemoServer(folders=[("INBOX", [])])
    srv.stop()  # before start: harmless
    srv.start()
    try:
        with pytest.raises(DemoServerError):
            srv.start()
        with pytest.raises(DemoServerError):
            DemoServer(port=srv.port, folders=[("INBOX", [])]).start()
    finally:
        srv.stop()
        srv.stop()
    assert not _demo_threads()


def test_attached_message_sections_follow_rfc3501(client_factory):
    """BODY[2.1] of a forward is the first part of the attached message's body (as Dovecot
    answers), not the whole attached message (pymap's own numbering, one level off)."""
    from tuimail.demo.samples import reader_samples
    from tuimail.mail.parse import parse_message

    samples = reader_samples("INBOX", 1_700_000_000)
    fwd = samples[1]
    srv = DemoServer(folders=[("INBOX", samples)])
    srv.start()
    try:
        c = client_factory(srv)
        c.select_folder("INBOX", readonly=True)
        uid = c.search(["HEADER", "Message-ID", fwd.message_id])[0]
        got = c.fetch([uid], ["BODY.PEEK[2.1]", "BODY.PEEK[2.2.MIME]", "BODY.PEEK[2.HEADER]", "BODY.PEEK[1]"])[uid]
        local = parse_message(fwd.raw)
        assert got[b"BODY[2.1]"].rstrip() == local.part_raw("2.1").rstrip()  # pymap keeps the CRLF before the boundary
        assert b"Sehr geehrte Frau Sch=C3=A4fer" in got[b"BODY[2.1]"]
        assert b"Angebot-2024-031.pdf" in got[b"BODY[2.2.MIME]"]
        assert b"Subject: =?UTF-8?Q?Angebot" in got[b"BODY[2.HEADER]"]
        assert got[b"BODY[1]"].rstrip() == local.part_raw("1").rstrip()
    finally:
        srv.stop()
