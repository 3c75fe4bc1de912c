"""tuimail/protocol/pop3.py against our own fake POP3 server (tests/support/pop3fake.py), for what
Dovecot cannot show: no TOP, no UIDL, no CAPA, [IN-USE] / [SYS/TEMP], garbage, trickles, XOAUTH2, APOP."""

from __future__ import annotations

import time

import pytest

from tests.support.pop3fake import FakePop3
from tuimail.backends.pop3.plan import KnownMessage, Policy, ServerMessage, fingerprint, plan
from tuimail.errors import AuthError, CommandFailed, NetworkError, ProtocolError, TLSError
from tuimail.protocol.pop3 import Pop3Busy, Pop3Refused, Pop3Session, response_code


def message(i: int, body: bytes = b"") -> bytes:
    return (b"From: s%d@example.org\r\nMessage-ID: <%d@fake>\r\nSubject: m%d\r\n\r\n" % (i, i, i)
            + (body or b"hello %d\r\n" % i))


def session(srv: FakePop3, **kw) -> Pop3Session:
    kw.setdefault("security", "none")
    kw.setdefault("timeout", 5)
    password = kw.pop("password", srv.password)
    return Pop3Session("127.0.0.1", srv.port, username=kw.pop("username", srv.user), secret=lambda: password, **kw)


@pytest.fixture
def fake():
    servers: list[FakePop3] = []

    def make(*args, **kw) -> FakePop3:
        srv = FakePop3(*args, **kw)
        servers.append(srv)
        return srv

    yield make
    for srv in servers:
        srv.close()


def test_response_codes():
    assert response_code(b"[IN-USE] locked") == "IN-USE"
    assert response_code("[SYS/TEMP] later") == "SYS/TEMP"
    assert response_code("[SYS/TEMP/QUOTA x] later") == "SYS/TEMP/QUOTA"
    assert response_code("no code") is None


def test_in_use_at_login_is_temporary_and_one_line(fake):
    srv = fake([message(1)], login_error=b"-ERR [IN-USE] Mailbox is locked by another POP3 session")
    with pytest.raises(Pop3Busy) as err:
        session(srv, config_key="accounts.p.").connect()
    e = err.value
    assert e.temporary and e.code == "IN-USE" and isinstance(e, NetworkError) and isinstance(e, CommandFailed)
    assert str(e) == f"127.0.0.1:{srv.port} refused AUTH PLAIN: -ERR [IN-USE] Mailbox is locked by another POP3 session"


def test_sys_temp_greeting_and_command_are_temporary(fake):
    srv = fake([message(1)], greeting=b"-ERR [SYS/TEMP] too many connections, try later\r\n")
    with pytest.raises(Pop3Busy, match=r"SYS/TEMP\] too many"):
        session(srv).connect()
    srv2 = fake([message(1)], replies={"RETR": b"-ERR [SYS/TEMP] disk trouble\r\n"})
    with session(srv2) as s, pytest.raises(Pop3Busy) as err:
        s.retr(1)
    assert err.value.code == "SYS/TEMP"


def test_a_permanent_err_is_not_temporary(fake):
    srv = fake([message(1)], replies={"DELE": b"-ERR [SYS/PERM] read-only \x1b[31mmailbox\x07\r\n"})
    with session(srv) as s:
        with pytest.raises(Pop3Refused) as err:
            s.dele(1)
        assert not isinstance(err.value, Pop3Busy) and not err.value.temporary
        assert "\x1b" not in str(err.value) and "\x07" not in str(err.value)
        assert s.stat() == (1, len(message(1)))  # still in step


def test_no_top_and_no_uidl(fake):
    srv = fake([message(1), message(2)], top=False, uidl=False)
    with session(srv) as s:
        assert not s.has("TOP") and not s.has("UIDL")
        assert s.uidl() is None
        with pytest.raises(Pop3Refused, match="TOP 1"):
            s.top(1)
        assert s.retr(2) == message(2)


def test_no_uidl_fallback_downloads_each_message_once(fake):
    """Without UIDL (and without TOP) the fingerprints come from RETR; the second sync downloads
    nothing new and a new message arrives on the third."""
    srv = fake([message(1), message(2)], top=False, uidl=False)
    known: list[KnownMessage] = []
    stored: list[bytes] = []

    def sync() -> list[str]:
        with session(srv) as s:
            sizes = s.list_sizes()
            uidls = s.uidl() or {}
            msgs = [ServerMessage(n, size, uidls.get(n)) for n, size in sizes.items()]
            p = plan(msgs, known, Policy("keep"), time.time())
            bodies: dict[int, bytes] = {}
            if p.need_fingerprints:
                fps = {}
                for n, raw in s.retr_many([m.number for m in p.need_fingerprints]):
                    bodies[n] = raw
                    fps[n] = fingerprint(raw, sizes[n])
                p = plan(msgs, known, Policy("keep"), time.time(), fingerprints=fps)
            for m in p.new:
                raw = bodies.get(m.number) or s.retr(m.number)
                stored.append(raw)
                known.append(KnownMessage(len(stored), m.uidl, fingerprint(raw, m.size), time.time()))
            return p.notices

    notices = sync()
    assert stored == [message(1), message(2)] and any("no UIDL" in n for n in notices)
    sync()
    assert len(stored) == 2
    srv.messages.append(message(3))
    sync()
    assert stored == [message(1), message(2), message(3)]


def test_no_capa_server_logs_in_with_user_pass_and_refuses_stls(fake):
    srv = fake([message(1)], capa=False)
    with session(srv) as s:
        assert not s.capa_known and s.stat()[0] == 1
    with pytest.raises(TLSError, match="does not offer STLS"):
        session(srv, security="starttls", config_key="accounts.p.").connect()
    assert not any(line.startswith(b"USER") for line in srv.received[-3:])  # nothing sent in the clear


def test_data_injected_after_the_stls_answer_is_refused(fake):
    srv = fake([message(1)], extra_capa=("STLS",), replies={"STLS": b"+OK go ahead\r\n+OK injected\r\n"})
    with pytest.raises(TLSError, match="after its STLS answer"):
        session(srv, security="starttls").connect()


def test_xoauth2(fake):
    srv = fake([message(1)], sasl=("PLAIN", "XOAUTH2"), xoauth2_token="tok-123")
    lines: list[str] = []
    with session(srv, oauth2=True, password="tok-123", log=lines.append) as s:
        assert s.stat()[0] == 1
    assert not any("tok-123" in line for line in lines)
    with pytest.raises(AuthError, match=r"refused the login \(XOAUTH2\).*\[AUTH\] invalid token.*oauth2_token_command"):
        session(srv, oauth2=True, password="expired", config_key="accounts.p.").connect()


def test_apop(fake):
    srv = fake([message(1)], apop=True)
    with session(srv) as s:  # plain loopback and a timestamp: APOP, the password stays home
        assert s.stat()[0] == 1
    assert any(line.startswith(b"APOP ") for line in srv.received)
    assert not any(srv.password.encode() in line for line in srv.received)
    with pytest.raises(AuthError, match="APOP"):
        session(srv, password="wrong").connect()
    plain = fake([message(1)])
    with pytest.raises(AuthError, match="no APOP"):
        session(plain, auth="apop").connect()


def test_auth_plain_and_user_pass(fake):
    srv = fake([message(1)])
    with session(srv, auth="plain") as s:
        assert s.stat()[0] == 1
    with session(srv, auth="user") as s:
        assert s.stat()[0] == 1
    with pytest.raises(AuthError, match=r"\(PASS\).*-ERR \[AUTH\]"):
        session(srv, auth="user", password="nope").connect()


@pytest.mark.parametrize("reply, match", [
    (b"HELLO THERE\r\n", "unexpected answer to RETR 1"),
    (b"\r\n", "empty line"),
    (b"+OK\r\nno terminator and then the server goes away", "closed the connection"),
])
def test_garbage_replies_are_one_line_errors(fake, reply, match):
    srv = fake([message(1)], replies={"RETR": reply}, hangup=("RETR",))
    s = session(srv)
    s.connect()
    with pytest.raises((ProtocolError, NetworkError), match=match) as err:
        s.retr(1)
    assert "\n" not in str(err.value) and s.broken
    with pytest.raises(NetworkError, match="without QUIT"):
        s.quit()


def test_garbage_greeting(fake):
    srv = fake([], greeting=b"* OK [CAPABILITY IMAP4rev1] an IMAP server\r\n")
    with pytest.raises(ProtocolError, match="unexpected answer to greeting"):
        session(srv).connect()


def test_an_endless_status_line_is_refused(fake):
    srv = fake([message(1)], replies={"STAT": b"+OK " + b"9" * 20000})
    s = session(srv)
    s.connect()
    with pytest.raises(ProtocolError, match="line over"):
        s.stat()
    s.abort()


def test_an_answer_over_max_message_is_refused(fake):
    srv = fake([message(1, b"z" * 50_000 + b"\r\n")])
    s = session(srv, max_message=10_000)
    s.connect()
    with pytest.raises(ProtocolError, match="refused"):
        s.retr(1)
    assert s.broken
    s.abort()


def test_a_trickled_greeting_hits_the_deadline(fake):
    srv = fake([], trickle=0.2)
    t0 = time.monotonic()
    with pytest.raises(NetworkError, match="greeting within 1 s"):
        session(srv, timeout=1).connect()
    assert time.monotonic() - t0 < 3


def test_malformed_listing_lines(fake):
    srv = fake([message(1)], replies={"UIDL": b"+OK\r\n1 has space inside\r\n.\r\n",
                                      "LIST": b"+OK\r\none two\r\n.\r\n"})
    s = session(srv)
    s.connect()
    with pytest.raises(ProtocolError, match="malformed UIDL"):
        s.uidl()
    with pytest.raises(ProtocolError, match="malformed LIST"):
        s.list_sizes()
    s.abort()


def test_pipelining_where_offered_and_dele_at_quit(fake):
    msgs = [message(i) for i in range(1, 41)]
    srv = fake(msgs, pipelining=True)
    with session(srv) as s:
        assert s.pipelining
        assert [raw for _, raw in s.retr_many(range(1, 41))] == msgs
        for n in (1, 2):
            s.dele(n)
        assert srv.deleted == []  # not before QUIT
    assert srv.deleted == ["uid-1", "uid-2"]
    s = session(srv)
    s.connect()
    s.dele(1)
    s.abort()
    assert srv.deleted == ["uid-1", "uid-2"] and len(srv.messages) == 38


@pytest.mark.parametrize("pipelining", [True, False])
@pytest.mark.parametrize("has_uidl", [True, False])
def test_uidl_and_sizes_together(fake, pipelining, has_uidl):
    """A first sync's UIDL and LIST (one write where PIPELINING is offered): both answers read in
    order, a server without UIDL gives None and still the sizes, and the session stays in step."""
    msgs = [message(i) for i in range(1, 6)]
    srv = fake(msgs, pipelining=pipelining, uidl=has_uidl)
    with session(srv) as s:
        uidls, sizes = s.uidl_and_sizes()
        assert uidls == ({n: f"uid-{n}" for n in range(1, 6)} if has_uidl else None)
        assert sizes == {n: len(m) for n, m in enumerate(msgs, 1)}
        assert s.commands["UIDL"] == 1 and s.commands["LIST"] == 1
        assert s.top(5) == message(5).split(b"\r\n\r\n")[0] + b"\r\n\r\n"  # (in step after both)
    names = [line.split()[0] for line in srv.received]
    assert names[names.index(b"UIDL") + 1] == b"LIST"


def test_a_busy_uidl_in_a_pipelined_pair_is_temporary_and_leaves_the_session(fake):
    srv = fake([message(1)], pipelining=True, replies={"UIDL": b"-ERR [SYS/TEMP] try later\r\n"})
    s = session(srv)
    s.connect()
    with pytest.raises(Pop3Busy, match="try later"):
        s.uidl_and_sizes()
    assert s.broken  # (LIST's answer was still on its way: no other command is sent on it)
    s.abort()


def test_leaving_a_batch_early_marks_the_session_out_of_step(fake):
    srv = fake([message(i) for i in range(1, 11)], pipelining=True)
    s = session(srv)
    s.connect()
    s.dele(3)
    for _n, _raw in s.retr_many(range(1, 11)):
        break
    assert s.broken
    with pytest.raises(NetworkError, match="out of step.*nothing deleted"):
        s.quit()
    assert srv.deleted == []


def test_a_control_character_in_the_password_is_refused_before_sending(fake):
    srv = fake([message(1)])
    with pytest.raises(AuthError, match="line break"):
        session(srv, password="a\r\nDELE 1").connect()
    assert not any(b"DELE" in line for line in srv.received)


def test_no_command_between_the_answers_of_a_pipelined_batch(fake):
    srv = fake([message(i) for i in range(1, 4)], pipelining=True)
    with session(srv) as s:
        batch = s.retr_many([1, 2, 3])
        assert next(batch) == (1, message(1))
        with pytest.raises(RuntimeError, match="in flight"):
            s.dele(1)  # its answer would be read as RETR 2's
        assert [n for n, _ in batch] == [2, 3] and not s.broken
        s.dele_many([1, 3])
    assert srv.deleted == ["uid-1", "uid-3"]


def test_dele_many_stops_at_an_err_and_stays_in_step(fake):
    srv = fake([message(i) for i in range(1, 4)], pipelining=True)
    s = session(srv)
    s.connect()
    with pytest.raises(Pop3Refused, match="DELE 9"):
        s.dele_many([1, 9, 2])
    assert s.stat()[0] in (1, 2) and not s.broken  # (1 and maybe 2 marked; in step either way)
    s.abort()
    assert srv.deleted == []
