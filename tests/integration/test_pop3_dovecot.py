"""tuimail/protocol/pop3.py against Dovecot's real POP3 service (the session's Dovecot listens on
a plain loopback pop3 port; TLS tests start one with a self-signed certificate)."""

from __future__ import annotations

import hashlib
import re
import ssl
import subprocess

import pytest

from tuimail.backends.pop3.plan import KnownMessage, Policy, ServerMessage, fingerprint, header_block, plan
from tuimail.errors import AuthError, NetworkError, TLSError
from tuimail.protocol.pop3 import Pop3Refused, Pop3Session


def message(i: int, body: bytes = b"") -> bytes:
    return (b"From: Sender %d <s%d@example.org>\r\nTo: you@example.org\r\nMessage-ID: <%d@example.org>\r\n"
            b"Subject: message %d\r\nDate: Sun, 06 Dec 2026 05:00:00 +0000\r\n\r\n" % (i, i, i, i)
            + (body or b"hello %d\r\n" % i))


def session(user, **kw) -> Pop3Session:
    kw.setdefault("security", "none")
    password = kw.pop("password", user.password)
    kw.setdefault("timeout", 10)
    return Pop3Session(user.host, kw.pop("port", user.pop3_port), username=kw.pop("username", user.name),
                       secret=lambda: password, **kw)


def inbox_count(user) -> int:
    with session(user) as s:
        return s.stat()[0]


@pytest.mark.parametrize("auth", [None, "plain", "user"])
def test_login_variants_and_listing(mailuser, auth):
    mailuser.deliver_many("INBOX", ((message(i), "") for i in range(1, 4)))
    with session(mailuser, auth=auth) as s:
        assert s.logged_in
        assert {"TOP", "UIDL", "PIPELINING", "RESP-CODES"} <= set(s.caps)
        count, octets = s.stat()
        sizes = s.list_sizes()
        assert count == 3 and sorted(sizes) == [1, 2, 3] and sum(sizes.values()) == octets
        uidls = s.uidl()
        assert uidls is not None and sorted(uidls) == [1, 2, 3]
    # Dovecot's default UIDL: %08Xu%08Xv (uid + UIDVALIDITY)
    assert all(re.fullmatch(r"[0-9a-f]{16}", u) for u in uidls.values())
    with session(mailuser) as s:
        assert s.uidl() == uidls  # stable across sessions


def test_apop_where_offered(dovecot_factory):
    server = dovecot_factory(extra_config="auth_mechanisms = plain login apop\n")
    user = server.add_user()
    user.deliver("INBOX", message(1))
    lines: list[str] = []
    with session(user, log=lines.append) as s:  # plain loopback + a greeting timestamp: APOP by choice
        assert s.stat()[0] == 1
    assert "C: APOP <redacted>" in lines
    assert not any(user.password in line for line in lines)
    with pytest.raises(AuthError, match=r"refused the login \(APOP\).*-ERR"):
        session(user, password="wrong").connect()


def test_wrong_password_is_one_line_quoting_the_server(mailuser):
    with pytest.raises(AuthError) as err:
        session(mailuser, password="wrong", config_key="accounts.pop.").connect()
    text = str(err.value)
    assert "\n" not in text and "-ERR [AUTH]" in text and "accounts.pop.username" in text


def test_top_is_the_header_block_and_retr_the_message(mailuser):
    raws = [message(i) for i in range(1, 4)]
    mailuser.deliver_many("INBOX", ((r, "") for r in raws))
    with session(mailuser) as s:
        sizes = s.list_sizes()
        for n, raw in zip(range(1, 4), raws, strict=True):
            top = s.top(n, 0)
            assert top == header_block(raw) + b"\r\n\r\n"
            full = s.retr(n)
            assert full == raw and len(full) == sizes[n]
            assert fingerprint(top, sizes[n]) == fingerprint(full, sizes[n])


def test_long_lines_and_dot_stuffing_survive_retr(mailuser):
    body = (b"A" * 5000 + b"\r\n" + b".starts with a dot\r\n..two dots\r\n.\r\n" + b"B" * 200_000 + b"\r\n"
            + b"end\r\n")
    raw = message(1, body)
    mailuser.deliver("INBOX", raw)
    mailuser.deliver("INBOX", message(2))
    with session(mailuser) as s:
        assert s.retr(1) == raw
        assert s.retr(2) == message(2)  # the session is still in step
        assert s.top(1, 2) == header_block(raw) + b"\r\n\r\n" + b"A" * 5000 + b"\r\n.starts with a dot\r\n"


def test_pipelined_batches_match_one_at_a_time(mailuser):
    raws = [message(i, b"x" * (i * 37) + b"\r\n") for i in range(1, 121)]
    mailuser.deliver_many("INBOX", ((r, "") for r in raws))
    with session(mailuser) as s:
        assert s.pipelining
        got = dict(s.retr_many(range(1, 121)))
        heads = dict(s.top_many(range(1, 121)))
        assert [got[n] for n in range(1, 121)] == raws
        assert all(heads[n] == header_block(raws[n - 1]) + b"\r\n\r\n" for n in range(1, 121))
        with pytest.raises(Pop3Refused, match=r"RETR 500: -ERR"):
            list(s.retr_many([1, 500, 2]))
        assert s.retr(3) == raws[2] and not s.broken  # in step after an -ERR in the middle of a batch


def test_dele_is_applied_only_by_quit(mailuser):
    mailuser.deliver_many("INBOX", ((message(i), "") for i in range(1, 4)))
    s = session(mailuser)
    s.connect()
    s.dele(1)
    s.dele(2)
    s.abort()  # the connection ends without QUIT (a cut, a kill -9)
    assert inbox_count(mailuser) == 3
    with session(mailuser) as s:  # QUIT at the end of the block
        s.dele(1)
    assert inbox_count(mailuser) == 2
    with pytest.raises(RuntimeError), session(mailuser) as s:  # an exception in the block: no QUIT
        s.dele(1)
        raise RuntimeError("the store failed")
    assert inbox_count(mailuser) == 2


def test_a_network_cut_after_retr_and_dele_deletes_nothing(mailuser, proxy_factory):
    mailuser.deliver_many("INBOX", ((message(i), "") for i in range(1, 3)))
    proxy = proxy_factory(mailuser.pop3_port)
    s = session(mailuser, port=proxy.port)
    s.connect()
    assert s.retr(1) == message(1)
    s.dele(1)
    proxy.cut_now()
    with pytest.raises(NetworkError, match="QUIT"):
        s.quit()
    assert inbox_count(mailuser) == 2


def test_a_cut_in_the_middle_of_retr_is_one_line_and_deletes_nothing(mailuser, proxy_factory):
    raw = message(1, b"C" * 300_000 + b"\r\n")
    mailuser.deliver_many("INBOX", [(message(1), ""), (raw, "")])
    proxy = proxy_factory(mailuser.pop3_port)
    s = session(mailuser, port=proxy.port)
    s.connect()
    s.dele(1)
    proxy.cut_after_server_bytes(1000)
    with pytest.raises(NetworkError) as err:
        s.retr(2)
    assert "\n" not in str(err.value) and s.broken
    with pytest.raises(NetworkError, match="without QUIT"):
        s.quit()
    assert inbox_count(mailuser) == 2


def test_a_second_sync_with_nothing_new_costs_one_uidl_exchange(mailuser, dovecot):
    n = 200
    mailuser.deliver_many("INBOX", ((message(i), "") for i in range(1, n + 1)))
    with session(mailuser) as s:
        server = [ServerMessage(k, size, u) for (k, u), size in zip(sorted(s.uidl().items()),
                                                                     [v for _, v in sorted(s.list_sizes().items())],
                                                                     strict=True)]
        known = [KnownMessage(m.number, m.uidl, fingerprint(raw, m.size), 0.0)
                 for m, raw in zip(server, (s.retr(k) for k in range(1, n + 1)), strict=True)]
    with session(mailuser) as s:
        before = s.transaction_bytes
        uidls = s.uidl()
        p = plan([ServerMessage(k, 0, u) for k, u in uidls.items()], known, Policy("keep"), 0.0)
        assert p.new == [] and not p.need_fingerprints and not p.delete
        uidl_in, uidl_out = s.transaction_bytes[0] - before[0], s.transaction_bytes[1] - before[1]
        assert uidl_out == len(b"UIDL\r\n")
        assert uidl_in == len(b"+OK\r\n") + sum(len(b"%d %s\r\n" % (k, u.encode())) for k, u in uidls.items()) + 3
    # our counts agree with Dovecot's own (its pop3 process counts from after the login)
    sessions = mailuser.wait_sessions(2, protocol="pop3")
    dovecot_in, dovecot_out = sessions[-1]
    ours_in, ours_out = s.transaction_bytes
    assert dovecot_in == ours_out
    assert dovecot_out == ours_in + len(b"+OK Logged in.\r\n")  # the login answer is the pop3 process's


# ---------------------------------------------------------------------------- TLS

@pytest.fixture(scope="module")
def tls_dovecot():
    from tests.support.dovecot import DovecotServer
    server = DovecotServer(tls=True)
    yield server
    server.stop()


def cert_sha256(path) -> str:
    der = ssl.PEM_cert_to_DER_cert(path.read_text())
    return hashlib.sha256(der).hexdigest()


def test_stls_with_a_self_signed_certificate(tls_dovecot):
    user = tls_dovecot.add_user()
    user.deliver("INBOX", message(1))
    with session(user, security="starttls", ca_file=tls_dovecot.cert_path) as s:
        assert s.encrypted and s.retr(1) == message(1)
    with pytest.raises(TLSError, match="not trusted.*tls_ca_file"):
        session(user, security="starttls", config_key="accounts.p.").connect()
    with session(user, security="starttls", fingerprint=cert_sha256(tls_dovecot.cert_path)) as s:
        assert s.stat()[0] == 1
    with pytest.raises(TLSError, match="fingerprint"):
        session(user, security="starttls", fingerprint="0" * 64).connect()


def test_implicit_tls_on_the_pop3s_port(tls_dovecot):
    user = tls_dovecot.add_user()
    user.deliver("INBOX", message(1))
    with session(user, security="tls", port=user.pop3s_port, ca_file=tls_dovecot.cert_path) as s:
        assert s.encrypted and s.top(1) == header_block(message(1)) + b"\r\n\r\n"
    with pytest.raises(TLSError, match="plain text"):
        session(user, security="tls", port=user.pop3_port, ca_file=tls_dovecot.cert_path).connect()
    with pytest.raises(NetworkError, match='no POP3 greeting within 1 s.*a TLS port. try accounts.p.security = "tls"'):
        session(user, security="starttls", port=user.pop3s_port, timeout=1, config_key="accounts.p.").connect()


def test_plain_text_only_on_loopback_or_with_allow_insecure():
    s = Pop3Session("192.0.2.1", 110, security="none", username="u", secret=lambda: "p", config_key="accounts.x.")
    with pytest.raises(TLSError, match="allow_insecure"):
        s.connect()


def test_openssl_is_there():  # the TLS fixtures make their certificate with it
    assert subprocess.run(["openssl", "version"], capture_output=True).returncode == 0


def test_from_a_config_account_with_a_password_command(mailuser):
    # (the Account is built directly: only the session is tested here)
    from tuimail.config.load import resolve_password
    from tuimail.config.model import Account
    mailuser.deliver("INBOX", message(1))
    account = Account(name="pop", kind="pop3", host=mailuser.host, port=mailuser.pop3_port, security="none",
                      username=mailuser.name, password_command=("printf", "%s", mailuser.password), timeout=10)
    with Pop3Session.from_account(account, lambda: resolve_password(account)) as s:
        assert s.where == f"127.0.0.1:{mailuser.pop3_port}" and s.retr(1) == message(1)
    with pytest.raises(AuthError, match="accounts.pop.username and password"):
        Pop3Session.from_account(account, lambda: "wrong").connect()
