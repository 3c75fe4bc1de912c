"""The IMAP adapter's decisions, each checked against a real Dovecot (DESIGN.md §3 pitfalls)."""

from __future__ import annotations

import socket
import threading
import time

import pytest

from tuimail.config.load import Account
from tuimail.protocol.imap.connection import FolderEntry, ImapConnection
from tuimail.protocol.imap.roles import assign_roles

from .helpers import msg
from tests.support.cyrus import IMAP_SERVERS, imap_user


@pytest.fixture(params=IMAP_SERVERS)
def mailuser(request):
    """Every scenario here runs against Dovecot and against Cyrus IMAP."""
    return imap_user(request)


def account(user, port=None, **kw) -> Account:
    kw.setdefault("security", "none")
    return Account(name="t", kind="imap", host="127.0.0.1", port=port or user.imap_port,
                   username=user.name, password=user.password, **kw)


def connect(user, port=None, **kw) -> ImapConnection:
    c = ImapConnection(account(user, port, **kw), lambda: user.password)
    c.connect()
    return c


class TricklingRelay:
    """Forwards a TCP connection, sending the server's bytes one at a time with tiny pauses,
    so every response line arrives split over many packets."""

    def __init__(self, port: int):
        self.target = port
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.socks: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        try:
            client, _ = self.listener.accept()
        except OSError:
            return
        server = socket.create_connection(("127.0.0.1", self.target))
        for s in (client, server):
            s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.socks += [client, server]
        threading.Thread(target=self._pipe, args=(client, server, False), daemon=True).start()
        threading.Thread(target=self._pipe, args=(server, client, True), daemon=True).start()

    def _pipe(self, src, dst, trickle):
        try:
            while data := src.recv(65536):
                if trickle:
                    for i in range(len(data)):
                        dst.sendall(data[i:i + 1])
                        if i % 7 == 0:
                            time.sleep(0.0005)
                else:
                    dst.sendall(data)
        except OSError:
            pass

    def close(self):
        for s in [self.listener, *self.socks]:
            try:
                s.close()
            except OSError:
                pass


def test_idle_survives_responses_split_across_packets(mailuser):
    for i in range(3):
        mailuser.deliver("INBOX", msg(i))
    relay = TricklingRelay(mailuser.imap_port)
    try:
        c = connect(mailuser, relay.port)
        c.enable("QRESYNC")
        c.select("INBOX")

        def elsewhere():
            time.sleep(0.5)
            with mailuser.client("INBOX") as other:
                other.add_flags([2], [b"\\Flagged"])
            mailuser.append("INBOX", msg(9))

        threading.Thread(target=elsewhere, daemon=True).start()
        got = {"flags": [], "exists": None}
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and (not got["flags"] or got["exists"] is None):
            u = c.idle(5, stop=lambda: False, tick=0.2)
            got["flags"] += u.flags
            got["exists"] = u.exists if u.exists is not None else got["exists"]
        assert (2, ("\\Flagged",), got["flags"][0][2]) in got["flags"]
        assert got["exists"] == 4
        c.noop()  # the connection is still in step after DONE
        c.close()
    finally:
        relay.close()


def test_idle_ends_as_soon_as_it_is_woken(mailuser):
    """issue 10.3: the IDLE wait selects on the Waker with the socket: set() from another thread
    ends it at once (with tick=1.0 polling it took up to a second), and DONE leaves the
    connection in step."""
    from tuimail.backends.waker import Waker

    mailuser.deliver("INBOX", msg(1))
    c = connect(mailuser)
    wake = Waker()
    try:
        c.select("INBOX")
        for _ in range(3):
            wake.clear()
            threading.Timer(0.3, wake.set).start()
            t0 = time.monotonic()
            c.idle(10, stop=wake.is_set, wake=wake)
            took = time.monotonic() - t0
            assert 0.25 < took < 0.6, took  # (the 1 s tick: ~1.0)
        c.noop()
        c.close()
    finally:
        wake.close()


def test_move_falls_back_to_copy_store_expunge(dovecot_factory):
    srv = dovecot_factory(capabilities="IMAP4rev1 LITERAL+ SASL-IR ENABLE IDLE UIDPLUS CONDSTORE QRESYNC ESEARCH "
                                       "SPECIAL-USE LIST-STATUS UNSELECT")
    user = srv.add_user()
    for i in range(5):
        user.deliver("INBOX", msg(i))
    c = connect(user)
    assert not c.has("MOVE") and c.has("UIDPLUS")
    c.select("INBOX")
    mapping = c.move([2, 4], "Archive")
    assert sorted(mapping) == [2, 4] and len(set(mapping.values())) == 2
    assert c.search_uids() == [1, 3, 5]
    c.close()
    with user.client("Archive") as other:
        assert len(other.search("ALL")) == 2


def test_long_uid_sets_are_chunked_under_the_line_limit(mailuser):
    mailuser.deliver_many("INBOX", ((msg(i), "") for i in range(6000)))
    c = connect(mailuser)
    c.enable("QRESYNC")
    c.select("INBOX")
    scattered = list(range(1, 6001, 2))  # 3000 isolated uids: ~14 KB uncompressed
    sent = []
    orig = c.session.send
    c.session.send = lambda data: (sent.append(len(data)), orig(data))[1]
    modified, _ = c.store_flags(scattered, add=["\\Flagged"])
    assert max(sent) <= 8192 and len(sent) >= 2
    flags = dict((u, f) for u, f, _ in c.fetch_flags(range(1, 21)))
    assert "\\Flagged" in flags[1] and "\\Flagged" not in flags[2]
    assert len(list(c.fetch_headers(scattered))) == 3000
    c.close()


def test_esearch_and_plain_search_agree(mailuser, dovecot_factory):
    mailuser.deliver_many("INBOX", ((msg(i), "") for i in range(50)))
    c = connect(mailuser)
    assert c.has("ESEARCH")
    c.select("INBOX")
    assert c.search_uids() == list(range(1, 51))
    c.session.caps.discard("ESEARCH")
    assert c.search_uids(b"UID 40:*") == list(range(40, 51))
    c.close()


def test_roles_from_names_when_no_special_use():
    entries = [FolderEntry("INBOX", "/", ()), FolderEntry("Sent Items", "/", ()),
               FolderEntry("Deleted Items", "/", ()), FolderEntry("Spam", "/", ()),
               FolderEntry("Archive", "/", ()), FolderEntry("Drafts", "/", ()),
               FolderEntry("Projects/Sent", "/", ()), FolderEntry("Boxes", "/", ("\\Noselect",))]
    assign_roles(entries, {})
    roles = {e.name: e.role for e in entries}
    assert roles == {"INBOX": "inbox", "Sent Items": "sent", "Deleted Items": "trash", "Spam": "junk",
                     "Archive": "archive", "Drafts": "drafts", "Projects/Sent": None, "Boxes": None}
    entries = [FolderEntry("INBOX", "/", ()), FolderEntry("Old", "/", ()), FolderEntry("Trash", "/", ("\\Trash",))]
    assign_roles(entries, {"archive": "Old"})
    assert {e.name: e.role for e in entries} == {"INBOX": "inbox", "Old": "archive", "Trash": "trash"}


def test_special_use_roles_from_dovecot(mailuser):
    c = connect(mailuser)
    roles = {e.name: e.role for e in c.list_folders(with_status=True)}
    assert roles["Sent"] == "sent" and roles["Trash"] == "trash" and roles["Junk"] == "junk"
    assert roles["INBOX"] == "inbox"
    c.close()


def test_partial_fetch_and_bodystructure(mailuser):
    big = "line of text\r\n" * 40000
    mailuser.deliver("INBOX", msg(1, body=big))
    c = connect(mailuser)
    c.select("INBOX", readonly=True)
    bs = c.fetch_bodystructure(1)
    assert bs[0].lower() == b"text" and bs[6] == len(big)
    part = c.fetch_section(1, "1", 0, 1000)
    assert len(part) == 1000 and part.startswith(b"line of text")
    assert c.fetch_section(99, "1") is None  # gone: no exception
    with pytest.raises(ValueError):
        c.fetch_section(1, "1]\r\nT9 LOGOUT")
    c.close()


def test_starttls_refused_when_not_offered(mailuser):
    acc = account(mailuser, security="starttls")
    c = ImapConnection(acc, lambda: mailuser.password)
    from tuimail.errors import TLSError
    with pytest.raises(TLSError, match="STARTTLS"):
        c.connect()


def test_xoauth2_uses_the_token_command(tuimail_env):
    """XOAUTH2 (SASL-IR): the token comes from oauth2_token_command and never from a password."""
    import base64
    import sys as _sys

    from tests.support.proxy import GarbageServer

    pending: list[bytes] = []

    def reply(line: bytes):
        if pending:  # the SASL response after our "+" continuation
            return pending.pop() + b" OK [CAPABILITY IMAP4rev1 IDLE] logged in\r\n"
        tag, _, rest = line.partition(b" ")
        cmd = rest.split(b" ", 1)[0].upper()
        if cmd == b"CAPABILITY":
            return b"* CAPABILITY IMAP4rev1 AUTH=XOAUTH2 SASL-IR\r\n" + tag + b" OK done\r\n"
        if cmd == b"AUTHENTICATE":
            if len(rest.split()) > 2:  # SASL-IR: the payload came with the command
                return tag + b" OK [CAPABILITY IMAP4rev1 IDLE] logged in\r\n"
            pending.append(tag)
            return b"+ \r\n"
        if cmd == b"LOGOUT":
            return b"* BYE bye\r\n" + tag + b" OK\r\n"
        return tag + b" OK\r\n"

    srv = GarbageServer(banner=b"* OK ready\r\n", reply=reply)
    try:
        acc = Account(name="o", kind="imap", host="127.0.0.1", port=srv.port, security="none", username="alice",
                      oauth2_token_command=(_sys.executable, "-c", "print('tok-123')"))
        from tuimail.backends.imap.service import open_connection
        conn = open_connection(acc)
        conn.close()
        i = next(i for i, ln in enumerate(srv.received) if b"AUTHENTICATE XOAUTH2" in ln.upper())
        words = srv.received[i].split()
        payload = words[3] if len(words) > 3 else srv.received[i + 1]
        assert base64.b64decode(payload) == b"user=alice\x01auth=Bearer tok-123\x01\x01"
        assert not any(b"LOGIN" in ln.upper().split(b" ")[1:2] for ln in srv.received)
    finally:
        srv.close()


def test_the_connection_sets_tcp_nodelay(tuimail_env, mailuser):
    """imaplib sends an AUTHENTICATE answer and its CRLF as two writes; with Nagle the second
    waited for the server's delayed ACK (~40 ms per login). Pipelined commands want no delay
    either."""
    from tuimail.config.load import load_config
    from tuimail.backends.imap.service import open_connection

    cfg = load_config(tuimail_env.write_config(mailuser.config_toml()))
    conn = open_connection(cfg.account(None))
    try:
        assert conn.session.sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY)
    finally:
        conn.close()
