"""The Dovecot fixture itself: what every integration test relies on."""

from __future__ import annotations

import email
import shutil
import socket
import ssl
import time
import tomllib
from datetime import datetime, UTC

import imapclient
import pytest
from imapclient.exceptions import LoginError

RAW = b"From: a@example.org\r\nTo: b@example.org\r\nSubject: hello\r\nMessage-ID: <%d@example.org>\r\n\r\nbody %d\r\n"


def raw(i: int) -> bytes:
    return RAW % (i, i)


def test_login_and_capabilities(mailuser):
    with mailuser.client() as c:
        caps = set(c.capabilities())
    for cap in (b"CONDSTORE", b"QRESYNC", b"ESEARCH", b"ENABLE", b"UIDPLUS", b"MOVE", b"IDLE",
                b"SPECIAL-USE", b"LIST-STATUS", b"LITERAL+", b"COMPRESS=DEFLATE"):
        assert cap in caps, f"{cap} missing from {sorted(caps)}"


def test_wrong_password_is_refused_quickly(mailuser):
    c = imapclient.IMAPClient(mailuser.host, port=mailuser.imap_port, ssl=False, timeout=10)
    t0 = time.monotonic()
    with pytest.raises(LoginError):
        c.login(mailuser.name, "not-the-password")
    assert time.monotonic() - t0 < 1.0  # auth_failure_delay = 0 on the test server
    c.shutdown()


def test_special_use_folders(mailuser):
    with mailuser.client() as c:
        folders = {name: set(flags) for flags, _sep, name in c.list_folders()}
        subscribed = {name for _f, _s, name in c.list_sub_folders()}
    roles = {"Drafts": b"\\Drafts", "Sent": b"\\Sent", "Archive": b"\\Archive",
             "Junk": b"\\Junk", "Trash": b"\\Trash"}
    for name, role in roles.items():
        assert role in folders[name], folders
        assert name in subscribed
    assert "INBOX" in folders


def test_deliver_many_10k_is_fast(mailuser):
    t0 = time.monotonic()
    n = mailuser.deliver_many("INBOX", ((raw(i), "S" if i % 2 else "") for i in range(10_000)))
    elapsed = time.monotonic() - t0
    assert n == 10_000
    assert elapsed < 5, f"deliver_many(10k) took {elapsed:.2f} s"
    with mailuser.client() as c:
        assert c.select_folder("INBOX")[b"EXISTS"] == 10_000
        assert len(c.search(["UNSEEN"])) == 5_000
    print(f"deliver_many 10k: {elapsed:.3f} s")


def test_deliver_flags_dates_and_new_folders(mailuser):
    when = datetime(2020, 2, 3, 4, 5, 6, tzinfo=UTC).timestamp()
    mailuser.deliver("INBOX", raw(1), "FS", internal_date=when)
    mailuser.deliver("INBOX", raw(2), ("\\Answered", "\\Draft"))
    mailuser.deliver("Projects.2024", raw(3))  # hierarchy: '.' is the separator
    mailuser.deliver("Réunions", raw(4), "T")  # stored modified-UTF-7 on disk
    with mailuser.client() as c:
        names = {name for _f, _s, name in c.list_folders()}
        assert {"Projects", "Projects.2024", "Réunions"} <= names
        c.select_folder("INBOX")
        data = c.fetch([1, 2], ["FLAGS", "INTERNALDATE", "BODY.PEEK[]"])
        assert set(data[1][b"FLAGS"]) >= {b"\\Flagged", b"\\Seen"}
        assert data[1][b"INTERNALDATE"].astimezone(UTC) == datetime(2020, 2, 3, 4, 5, 6, tzinfo=UTC)
        assert set(data[2][b"FLAGS"]) >= {b"\\Answered", b"\\Draft"}
        assert email.message_from_bytes(data[1][b"BODY[]"])["Message-ID"] == "<1@example.org>"
        assert c.folder_status("Réunions", ["MESSAGES"])[b"MESSAGES"] == 1
    with pytest.raises(ValueError):
        mailuser.deliver("INBOX", raw(5), "X")


def test_deliver_is_seen_by_a_live_session(mailuser):
    with mailuser.client("INBOX") as c:
        mailuser.deliver("INBOX", raw(1))
        _, untagged = c.noop()
        assert (1, b"EXISTS") in untagged


def test_append_returns_uid(mailuser):
    mailuser.deliver_many("INBOX", ((raw(i), "") for i in range(3)))
    uid = mailuser.append("INBOX", raw(99), flags=["\\Seen"])
    assert uid == 4
    assert mailuser.append("Sent", raw(100)) == 1
    with mailuser.client("INBOX") as c:
        assert set(c.fetch([uid], ["FLAGS"])[uid][b"FLAGS"]) - {b"\\Recent"} == {b"\\Seen"}


def test_session_bytes_after_logout(mailuser):
    assert mailuser.session_bytes() == []
    with mailuser.client("INBOX") as c:
        c.noop()
    sessions = mailuser.wait_sessions(1)
    assert len(sessions) == 1
    received, sent = sessions[0]
    assert 0 < received < 200 and 300 < sent < 5000, sessions
    with mailuser.client() as c:
        c.list_folders()
    assert len(mailuser.wait_sessions(2)) == 2


def test_session_bytes_match_the_wire(mailuser, proxy_factory):
    """Dovecot's out= counts what its imap process sent: everything after the LOGIN reply."""
    mailuser.deliver_many("INBOX", ((raw(i), "") for i in range(50)))
    proxy = proxy_factory(mailuser)
    c = imapclient.IMAPClient("127.0.0.1", port=proxy.port, ssl=False)
    c.login(mailuser.name, mailuser.password)
    c.select_folder("INBOX")
    c.fetch(list(range(1, 51)), ["FLAGS", "RFC822.SIZE"])
    c.logout()
    (_in, out), = mailuser.wait_sessions(1)
    assert out <= proxy.server_bytes < out + 2000


def test_capabilities_override_hides_condstore(dovecot_factory):
    server = dovecot_factory(capabilities="IMAP4rev1 LITERAL+ SASL-IR ID ENABLE IDLE NAMESPACE UIDPLUS MOVE")
    user = server.add_user()
    with user.client("INBOX") as c:
        caps = set(c.capabilities())
    assert b"CONDSTORE" not in caps and b"QRESYNC" not in caps and b"ESEARCH" not in caps
    assert {b"IDLE", b"UIDPLUS", b"MOVE"} <= caps


def test_users_are_isolated(dovecot):
    a, b = dovecot.add_user(), dovecot.add_user("bob", password="other-secret")
    a.deliver_many("INBOX", ((raw(i), "") for i in range(5)))
    a.deliver("Projects", raw(9))
    with b.client() as c:
        assert c.select_folder("INBOX")[b"EXISTS"] == 0
        assert "Projects" not in {name for _f, _s, name in c.list_folders()}
    with a.client() as c:
        assert c.select_folder("INBOX")[b"EXISTS"] == 5
    with pytest.raises(LoginError):
        imapclient.IMAPClient(b.host, port=b.imap_port, ssl=False).login("bob", a.password)
    with pytest.raises(ValueError):
        dovecot.add_user("bob")


def test_pop3_answers(mailuser):
    mailuser.deliver_many("INBOX", ((raw(i), "") for i in range(3)))
    with socket.create_connection((mailuser.host, mailuser.pop3_port), timeout=5) as s:
        f = s.makefile("rb")
        assert f.readline().startswith(b"+OK")
        s.sendall(f"USER {mailuser.name}\r\n".encode())
        assert f.readline().startswith(b"+OK")
        s.sendall(f"PASS {mailuser.password}\r\n".encode())
        assert f.readline().startswith(b"+OK")
        s.sendall(b"STAT\r\n")
        assert f.readline().startswith(b"+OK 3 ")
        s.sendall(b"QUIT\r\n")
        assert f.readline().startswith(b"+OK")
    assert len(mailuser.wait_sessions(1, protocol="pop3")) == 1


def test_config_toml(mailuser):
    text = mailuser.config_toml(sync_mode="condstore", port=1234, idle=True, folders=["INBOX", "Sent"])
    cfg = tomllib.loads(text)["accounts"]["test"]
    assert cfg == {"kind": "imap", "host": "127.0.0.1", "port": 1234, "security": "none",
                   "username": mailuser.name, "password": mailuser.password,
                   "sync_mode": "condstore", "idle": True, "folders": ["INBOX", "Sent"]}
    assert "[accounts.work]" in mailuser.config_toml("work")


def test_tuimail_env_points_xdg_at_temp_dirs(tuimail_env):
    import os

    assert os.environ["XDG_CONFIG_HOME"] == str(tuimail_env.config_home)
    assert os.environ["XDG_DATA_HOME"] == str(tuimail_env.data_home)
    path = tuimail_env.write_config("[accounts]\n")
    assert path == tuimail_env.config_home / "tuimail" / "config.toml"
    assert path.read_text() == "[accounts]\n"


def test_cut_through_proxy_breaks_the_client(mailuser, proxy_factory):
    proxy = proxy_factory(mailuser)
    c = imapclient.IMAPClient("127.0.0.1", port=proxy.port, ssl=False, timeout=5)
    c.login(mailuser.name, mailuser.password)
    # imaplib asks CAPABILITY before login, so Dovecot answers LOGIN with an extra untagged
    # CAPABILITY: 5 lines so far. Count from here instead: SELECT's first line passes, then cut.
    assert proxy.server_lines_seen == 5
    proxy.cut_after_server_lines(1, per_connection=False)
    with pytest.raises((imapclient.exceptions.IMAPClientAbortError, OSError)):
        c.select_folder("INBOX")
    c.shutdown()
    assert proxy.cuts == 1 and proxy.connections[0].server_lines == 6
    with imapclient.IMAPClient("127.0.0.1", port=proxy.port, ssl=False, timeout=5) as c2:
        c2.login(mailuser.name, mailuser.password)  # the rule fired once: reconnects work


@pytest.mark.skipif(shutil.which("openssl") is None, reason="openssl binary needed to make a test certificate")
def test_tls_server(dovecot_factory):
    server = dovecot_factory(tls=True)
    user = server.add_user()
    ctx = ssl.create_default_context(cafile=str(server.cert_path))
    with imapclient.IMAPClient("127.0.0.1", port=server.imaps_port, ssl=True, ssl_context=ctx) as c:
        c.login(user.name, user.password)
        assert c.select_folder("INBOX")[b"EXISTS"] == 0
    with imapclient.IMAPClient("localhost", port=server.imap_port, ssl=False) as c:
        assert b"STARTTLS" in c.capabilities()
        c.starttls(ctx)
        c.login(user.name, user.password)
    with socket.create_connection(("127.0.0.1", server.pop3s_port), timeout=5) as raw_sock:
        with ctx.wrap_socket(raw_sock, server_hostname="localhost") as s:
            assert s.recv(100).startswith(b"+OK")


def test_server_start_is_fast_and_stop_is_clean(dovecot_factory):
    server = dovecot_factory()
    assert server.start_seconds < 3, server.start_seconds
    pgid = server.proc.pid
    workdir = server.dir
    user = server.add_user()
    with user.client("INBOX"):
        pass
    t0 = time.monotonic()
    server.stop()
    assert time.monotonic() - t0 < 3
    assert not workdir.exists()
    from tests.support.dovecot import _group_members

    assert _group_members(pgid) == []
