"""protocol/smtp.py against aiosmtpd in-process: faults, AUTH (PLAIN, LOGIN, XOAUTH2), STARTTLS,
implicit TLS, SMTPUTF8. aiosmtpd comes with the test extra (`pip install -e '.[test]'`); without
it these tests skip and say why (the same behaviours are covered against the scripted server in
test_smtp_faults.py). Dovecot's submission service: test_smtp_submission.py.
"""

from __future__ import annotations

import base64
import hashlib
import json
import ssl

import pytest

from tests.support.smtpserver import free_port, make_cert
from tuimail.mail.compose import Identity, build_message, envelope, new_draft
from tuimail.protocol.smtp import SendError, SmtpSettings, send

aiosmtpd = pytest.importorskip(
    "aiosmtpd", reason="aiosmtpd is not installed: pip install -e '.[test]' (it is in the test extra)")

from aiosmtpd.controller import Controller  # noqa: E402
from aiosmtpd.smtp import AuthResult, LoginPassword  # noqa: E402

USERS = {b"alice": b"secret"}
TOKENS = {"alice": "token-1"}


class Sink:
    """Records each accepted message; answers scripted per command ("MAIL", "RCPT:<addr>", "DATA")."""

    def __init__(self):
        self.messages = []  # (mail_from, rcpts, content bytes, mail_options)
        self.script: dict[str, list[str]] = {}
        self.rcpt_answers: dict[str, str] = {}

    def _next(self, key):
        queue = self.script.get(key)
        return queue.pop(0) if queue else None

    async def handle_MAIL(self, server, session, envelope, address, mail_options):
        answer = self._next("MAIL")
        if answer:
            return answer
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        return "250 2.1.0 OK"

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        answer = self.rcpt_answers.get(address.lower())
        if answer:
            return answer
        envelope.rcpt_tos.append(address)
        return "250 2.1.5 OK"

    async def handle_DATA(self, server, session, envelope):
        answer = self._next("DATA")
        if answer:
            return answer
        self.messages.append((envelope.mail_from, list(envelope.rcpt_tos), envelope.original_content,
                              list(envelope.mail_options)))
        return "250 2.0.0 queued as 4242"

    async def auth_XOAUTH2(self, server, args):
        try:
            fields = base64.b64decode(args[1]).decode().split("\x01")
            user, token = fields[0].removeprefix("user="), fields[1].removeprefix("auth=Bearer ")
        except Exception:
            return AuthResult(success=False, handled=False)
        if TOKENS.get(user) == token:
            return AuthResult(success=True, auth_data=user)
        await server.challenge_auth(json.dumps({"status": "401", "schemes": "bearer"}))  # reads the empty line
        return AuthResult(success=False, handled=False)


def authenticator(server, session, envelope, mechanism, auth_data):
    if isinstance(auth_data, LoginPassword) and USERS.get(auth_data.login) == auth_data.password:
        return AuthResult(success=True, auth_data=auth_data)
    return AuthResult(success=False, handled=False)


@pytest.fixture(scope="module")
def cert(tmp_path_factory):
    return make_cert(tmp_path_factory.mktemp("aiosmtpd-cert"))


def _server_ctx(cert) -> ssl.SSLContext:
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(*cert)
    return ctx


@pytest.fixture
def aiosmtp():
    """make(**Controller kwargs) -> (controller, sink, port); stopped at teardown. The port is
    picked first (aiosmtpd 1.4.6 fails with port=0, DESIGN §3)."""
    started = []

    def make(**kw):
        sink = Sink()
        port = free_port()
        kw.setdefault("authenticator", authenticator)
        kw.setdefault("auth_require_tls", False)
        controller = Controller(sink, hostname="127.0.0.1", port=port, **kw)
        controller.start()
        started.append(controller)
        return controller, sink, port

    yield make
    for c in started:
        c.stop()


def _message(to="bob@example.net", bcc="", frm="alice@example.org"):
    draft = new_draft(Identity(frm, "Alice"), to, subject="hello", body="Hi Bob.\n")
    draft.bcc = bcc
    return envelope(build_message(draft))


def _settings(port, **kw):
    base = dict(host="127.0.0.1", port=port, security="none", username="alice", password="secret", timeout=10)
    base.update(kw)
    return SmtpSettings(**base)


def test_send_and_bcc_kept_out_of_the_bytes(aiosmtp):
    _c, sink, port = aiosmtp()
    data, mail_from, rcpts = _message(bcc="carol@example.net")
    result = send(_settings(port), data, mail_from, rcpts)
    assert result.code == 250 and "4242" in result.reply
    ((frm, to, content, _opts),) = sink.messages
    assert frm == "alice@example.org" and to == ["bob@example.net", "carol@example.net"]
    assert b"carol" not in content and b"Bcc" not in content


def test_temporary_then_success(aiosmtp):
    _c, sink, port = aiosmtp()
    sink.script["MAIL"] = ["421 4.3.0 relay down"]
    data, mail_from, rcpts = _message()
    with pytest.raises(SendError) as e:
        send(_settings(port), data, mail_from, rcpts)
    assert e.value.code == 421 and e.value.temporary
    assert send(_settings(port), data, mail_from, rcpts).code == 250
    assert len(sink.messages) == 1


def test_permanent_failure(aiosmtp):
    _c, sink, port = aiosmtp()
    sink.script["DATA"] = ["554 5.7.1 rejected as spam"]
    data, mail_from, rcpts = _message()
    with pytest.raises(SendError) as e:
        send(_settings(port), data, mail_from, rcpts)
    assert e.value.code == 554 and not e.value.temporary and "spam" in str(e.value)


def test_partial_refusal(aiosmtp):
    _c, sink, port = aiosmtp()
    sink.rcpt_answers["nobody@example.net"] = "550 5.1.1 no such user"
    data, mail_from, _ = _message()
    result = send(_settings(port), data, mail_from, ["bob@example.net", "nobody@example.net"])
    assert result.accepted == ("bob@example.net",)
    assert result.refused == {"nobody@example.net": (550, "5.1.1 no such user")}
    assert sink.messages[0][1] == ["bob@example.net"]


def test_starttls_not_offered(aiosmtp):
    _c, sink, port = aiosmtp()  # no tls_context: no STARTTLS
    data, mail_from, rcpts = _message()
    with pytest.raises(SendError) as e:
        send(_settings(port, security="starttls"), data, mail_from, rcpts)
    assert e.value.kind == "tls" and "does not offer STARTTLS" in str(e.value) and not sink.messages


def test_starttls_verified_with_the_ca(aiosmtp, cert):
    _c, sink, port = aiosmtp(tls_context=_server_ctx(cert), require_starttls=True, auth_require_tls=True)
    data, mail_from, rcpts = _message()
    send(_settings(port, security="starttls", ca_file=cert[0]), data, mail_from, rcpts)
    assert len(sink.messages) == 1
    with pytest.raises(SendError) as e:  # the system CAs do not know the self-signed cert
        send(_settings(port, security="starttls"), data, mail_from, rcpts)
    assert e.value.kind == "tls" and "not trusted" in str(e.value)


def test_implicit_tls_pinned(aiosmtp, cert):
    _c, sink, port = aiosmtp(ssl_context=_server_ctx(cert))
    pin = hashlib.sha256(ssl.PEM_cert_to_DER_cert(cert[0].read_text())).hexdigest()
    data, mail_from, rcpts = _message()
    send(_settings(port, security="tls", fingerprint=pin), data, mail_from, rcpts)
    send(_settings(port, security="tls", ca_file=cert[0]), data, mail_from, rcpts)
    assert len(sink.messages) == 2
    with pytest.raises(SendError) as e:
        send(_settings(port, security="tls", fingerprint="ab" * 32), data, mail_from, rcpts)
    assert e.value.kind == "tls" and len(sink.messages) == 2


def test_auth_login_and_bad_password(aiosmtp):
    _c, sink, port = aiosmtp(auth_exclude_mechanism=["PLAIN"])
    data, mail_from, rcpts = _message()
    send(_settings(port), data, mail_from, rcpts)
    with pytest.raises(SendError) as e:
        send(_settings(port, password="wrong"), data, mail_from, rcpts)
    assert e.value.kind == "auth" and e.value.code == 535 and not e.value.temporary
    assert len(sink.messages) == 1


def test_xoauth2(aiosmtp):
    _c, sink, port = aiosmtp()
    data, mail_from, rcpts = _message()
    send(_settings(port, password=None, oauth2_token="token-1"), data, mail_from, rcpts)
    with pytest.raises(SendError) as e:
        send(_settings(port, password=None, oauth2_token="stale"), data, mail_from, rcpts)
    assert e.value.kind == "auth" and e.value.code == 535 and "401" in str(e.value)
    assert len(sink.messages) == 1


def test_smtputf8_non_ascii_addresses(aiosmtp):
    _c, sink, port = aiosmtp(enable_SMTPUTF8=True)
    data, mail_from, rcpts = _message(to="jörg@bücher.example", frm="zoë@example.org")
    result = send(_settings(port), data, mail_from, rcpts)
    assert result.smtputf8
    frm, to, content, opts = sink.messages[0]
    assert frm == "zoë@example.org" and to == ["jörg@bücher.example"] and "SMTPUTF8" in opts
    assert "jörg@bücher.example".encode() in content


def test_smtputf8_not_offered(aiosmtp):
    _c, sink, port = aiosmtp(enable_SMTPUTF8=False)
    data, mail_from, rcpts = _message(to="jörg@bücher.example")
    with pytest.raises(SendError) as e:
        send(_settings(port), data, mail_from, rcpts)
    assert "SMTPUTF8" in str(e.value) and not e.value.temporary and not sink.messages
