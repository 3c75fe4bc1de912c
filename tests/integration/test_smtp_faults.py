"""protocol/smtp.py against the scripted SMTP server (tests/support/smtpserver.py): the faults a
real server produces on demand only rarely (a 421 at MAIL FROM, a drop after the final ".", a
stall), TLS policy, AUTH mechanisms and reply-code classification. The same behaviours against
aiosmtpd and Dovecot's submission service are in test_smtp_servers.py."""

from __future__ import annotations

import hashlib
import ssl
import time

import pytest

from tests.support.smtpserver import ScriptedSMTP, make_cert
from tuimail.mail.compose import Identity, build_message, envelope, new_draft
from tuimail.protocol.smtp import SendError, SmtpSettings, send


@pytest.fixture(scope="module")
def cert(tmp_path_factory):
    return make_cert(tmp_path_factory.mktemp("smtp-cert"))


@pytest.fixture
def server():
    servers: list[ScriptedSMTP] = []

    def make(**kw) -> ScriptedSMTP:
        s = ScriptedSMTP(**kw).start()
        servers.append(s)
        return s

    yield make
    for s in servers:
        s.stop()


def _message(to="bob@example.net", bcc="", frm="alice@example.org"):
    draft = new_draft(Identity(frm, "Alice"), to, subject="hello", body="Hi Bob.\n")
    draft.bcc = bcc
    return envelope(build_message(draft))


def _settings(port, **kw):
    base = dict(host="127.0.0.1", port=port, security="none", username="alice", password="secret", timeout=5)
    base.update(kw)
    return SmtpSettings(**base)


def test_plain_send_bcc_only_in_the_envelope(server):
    s = server()
    data, mail_from, rcpts = _message(bcc="carol@example.net")
    result = send(_settings(s.port), data, mail_from, rcpts)
    assert result.code == 250 and "queued as 12345" in result.reply
    assert result.accepted == ("bob@example.net", "carol@example.net") and not result.refused
    (got,) = s.messages
    assert got.rcpts == ["bob@example.net", "carol@example.net"] and got.mail_from == "alice@example.org"
    assert b"carol" not in got.data and b"Bcc" not in got.data
    assert got.auth_user == "alice" and any(o.startswith("SIZE=") for o in got.mail_options)
    assert got.data.rstrip(b"\r\n") == data.rstrip(b"\r\n")
    ehlo = s.transcripts[0][0]
    assert ehlo.startswith("EHLO [127.0.0.1]")  # an address literal, no DNS name of ours


def test_dot_stuffing_and_bare_lf_normalised(server):
    s = server()
    raw = b"From: a@example.org\nTo: b@example.net\nSubject: dots\n\n.leading dot\n..two\n.\nend\n"
    send(_settings(s.port), raw, "a@example.org", ["b@example.net"])
    assert s.messages[0].data == raw.replace(b"\n", b"\r\n")


def test_temporary_then_success(server):
    s = server()
    s.answer("MAIL", "421 4.3.0 relay down, try later")
    data, mail_from, rcpts = _message()
    with pytest.raises(SendError) as e:
        send(_settings(s.port), data, mail_from, rcpts)
    err = e.value
    assert err.code == 421 and err.temporary and not err.maybe_sent
    assert "refused MAIL FROM: 421 4.3.0 relay down" in str(err) and "\n" not in str(err)
    assert not s.messages
    assert send(_settings(s.port), data, mail_from, rcpts).code == 250
    assert len(s.messages) == 1


def test_permanent_failure_at_end_of_data(server):
    s = server()
    s.answer("EOM", "554 5.7.1 message content rejected: spam")
    data, mail_from, rcpts = _message()
    with pytest.raises(SendError) as e:
        send(_settings(s.port), data, mail_from, rcpts)
    assert e.value.code == 554 and not e.value.temporary and "spam" in str(e.value)
    assert "will retry" not in str(e.value)


def test_partial_refusal_reported_not_raised(server):
    s = server()
    s.rcpt_answers["nobody@example.net"] = "550 5.1.1 no such user"
    s.rcpt_answers["later@example.net"] = "452 4.2.2 mailbox full"
    data, mail_from, _ = _message()
    result = send(_settings(s.port), data, mail_from, ["bob@example.net", "nobody@example.net", "later@example.net"])
    assert result.accepted == ("bob@example.net",)
    assert result.refused == {"nobody@example.net": (550, "5.1.1 no such user"),
                              "later@example.net": (452, "4.2.2 mailbox full")}
    assert s.messages[0].rcpts == ["bob@example.net"]


def test_every_recipient_refused(server):
    s = server()
    s.rcpt_answers["bob@example.net"] = "550 5.1.1 no such user"
    data, mail_from, rcpts = _message()
    with pytest.raises(SendError) as e:
        send(_settings(s.port), data, mail_from, rcpts)
    assert e.value.code == 550 and not e.value.temporary
    assert e.value.refused == {"bob@example.net": (550, "5.1.1 no such user")}
    assert "refused every recipient: bob@example.net: 550" in str(e.value)
    s.rcpt_answers["bob@example.net"] = "450 4.2.0 greylisted"
    with pytest.raises(SendError) as e:
        send(_settings(s.port), data, mail_from, rcpts)
    assert e.value.temporary


def test_drop_after_final_dot_may_have_been_sent(server):
    s = server()
    s.answer("EOM", "CLOSE")
    data, mail_from, rcpts = _message()
    with pytest.raises(SendError) as e:
        send(_settings(s.port), data, mail_from, rcpts)
    assert e.value.temporary and e.value.maybe_sent and e.value.code is None
    assert "may have been delivered" in str(e.value)


def test_drop_before_data_is_not_maybe_sent(server):
    s = server()
    s.answer("RCPT", "CLOSE")
    data, mail_from, rcpts = _message()
    with pytest.raises(SendError) as e:
        send(_settings(s.port), data, mail_from, rcpts)
    assert e.value.temporary and not e.value.maybe_sent and e.value.kind == "network"


def test_stalled_server_bounded_by_the_deadline(server):
    s = server()
    s.answer("EHLO", "SLEEP 3", "250 late")
    data, mail_from, rcpts = _message()
    t0 = time.monotonic()
    with pytest.raises(SendError) as e:
        send(_settings(s.port, timeout=10, deadline=0.5), data, mail_from, rcpts)
    assert time.monotonic() - t0 < 2.5
    assert e.value.temporary and "timeout" in str(e.value) and "EHLO" in str(e.value)


def test_connection_refused_is_temporary():
    from tests.support.smtpserver import free_port

    data, mail_from, rcpts = _message()
    with pytest.raises(SendError) as e:
        send(_settings(free_port()), data, mail_from, rcpts)
    assert e.value.temporary and e.value.kind == "network" and "cannot connect" in str(e.value)


def test_greeting_554_is_permanent(server):
    s = server(greeting="554 5.3.2 no service for you")
    data, mail_from, rcpts = _message()
    with pytest.raises(SendError) as e:
        send(_settings(s.port), data, mail_from, rcpts)
    assert e.value.code == 554 and not e.value.temporary


def test_bad_password(server):
    s = server()
    data, mail_from, rcpts = _message()
    with pytest.raises(SendError) as e:
        send(_settings(s.port, password="wrong"), data, mail_from, rcpts)
    assert e.value.kind == "auth" and e.value.code == 535 and not e.value.temporary
    assert "smtp.username" in str(e.value) and not s.messages


def test_auth_login_when_plain_not_offered(server):
    s = server(auth=("LOGIN",), users={"alice": "pässword"})
    data, mail_from, rcpts = _message()
    send(_settings(s.port, password="pässword"), data, mail_from, rcpts)  # non-ASCII password: UTF-8
    assert s.messages[0].auth_user == "alice"
    assert any(line.startswith("AUTH LOGIN") for line in s.transcripts[0])


def test_xoauth2(server):
    s = server(auth=("PLAIN", "XOAUTH2"))
    data, mail_from, rcpts = _message()
    send(_settings(s.port, password=None, oauth2_token="token-1"), data, mail_from, rcpts)
    assert s.messages[0].auth_user == "alice"
    with pytest.raises(SendError) as e:
        send(_settings(s.port, password=None, oauth2_token="expired"), data, mail_from, rcpts)
    assert e.value.kind == "auth" and e.value.code == 535 and "401" in str(e.value)


def test_xoauth2_not_offered(server):
    s = server(auth=("PLAIN",))
    data, mail_from, rcpts = _message()
    with pytest.raises(SendError) as e:
        send(_settings(s.port, oauth2_token="token-1"), data, mail_from, rcpts)
    assert "does not offer AUTH XOAUTH2" in str(e.value) and not e.value.temporary


def test_starttls_required_but_not_offered(server):
    s = server(starttls=False)
    data, mail_from, rcpts = _message()
    with pytest.raises(SendError) as e:
        send(_settings(s.port, security="starttls"), data, mail_from, rcpts)
    assert e.value.kind == "tls" and not e.value.temporary and "does not offer STARTTLS" in str(e.value)
    assert not any(line.startswith("AUTH") or line.startswith("MAIL") for line in s.transcripts[0])


def test_starttls_with_the_ca_then_auth(server, cert):
    s = server(starttls=True, cert=cert)
    data, mail_from, rcpts = _message()
    send(_settings(s.port, security="starttls", ca_file=cert[0]), data, mail_from, rcpts)
    got = s.messages[0]
    assert got.tls and got.auth_user == "alice"
    assert s.transcripts[0][1] == "STARTTLS" and s.transcripts[0][2].startswith("EHLO")


def test_untrusted_certificate_refused(server, cert):
    s = server(starttls=True, cert=cert)
    data, mail_from, rcpts = _message()
    with pytest.raises(SendError) as e:
        send(_settings(s.port, security="starttls"), data, mail_from, rcpts)
    assert e.value.kind == "tls" and "not trusted" in str(e.value) and "tls_ca_file" in str(e.value)
    assert not s.messages


def test_implicit_tls_pinned_and_wrong_pin(server, cert):
    s = server(implicit_tls=True, cert=cert)
    pem = cert[0].read_text()
    pin = hashlib.sha256(ssl.PEM_cert_to_DER_cert(pem)).hexdigest()
    data, mail_from, rcpts = _message()
    send(_settings(s.port, security="tls", fingerprint=pin), data, mail_from, rcpts)
    assert s.messages[0].tls
    with pytest.raises(SendError) as e:
        send(_settings(s.port, security="tls", fingerprint="0" * 64), data, mail_from, rcpts)
    assert e.value.kind == "tls" and "fingerprint" in str(e.value)
    assert len(s.messages) == 1


def test_implicit_tls_to_a_plain_port(server):
    s = server()
    data, mail_from, rcpts = _message()
    with pytest.raises(SendError) as e:
        send(_settings(s.port, security="tls"), data, mail_from, rcpts)
    assert e.value.kind in ("tls", "network") and "\n" not in str(e.value)


def test_none_refused_off_loopback():
    data, mail_from, rcpts = _message()
    with pytest.raises(SendError) as e:
        send(SmtpSettings("mail.example.net", 25, "none", key="accounts.w.smtp"), data, mail_from, rcpts)
    assert e.value.kind == "config" and "accounts.w.smtp.security" in str(e.value)


def test_smtputf8_used_when_needed_and_offered(server):
    s = server(smtputf8=True)
    data, mail_from, rcpts = _message(to="jörg@bücher.example", frm="zoë@example.org")
    result = send(_settings(s.port), data, mail_from, rcpts)
    assert result.smtputf8
    got = s.messages[0]
    assert got.mail_from == "zoë@example.org" and got.rcpts == ["jörg@bücher.example"]
    assert "SMTPUTF8" in got.mail_options
    assert "jörg@bücher.example".encode() in got.data


def test_smtputf8_needed_but_not_offered(server):
    s = server(smtputf8=False)
    data, mail_from, rcpts = _message(to="jörg@bücher.example")
    with pytest.raises(SendError) as e:
        send(_settings(s.port), data, mail_from, rcpts)
    assert e.value.kind == "config" and "SMTPUTF8" in str(e.value) and not e.value.temporary
    assert not any(line.startswith("MAIL") for line in s.transcripts[0])


def test_ascii_mail_does_not_ask_for_smtputf8(server):
    s = server(smtputf8=True)
    data, mail_from, rcpts = _message()
    assert not send(_settings(s.port), data, mail_from, rcpts).smtputf8
    assert "SMTPUTF8" not in s.messages[0].mail_options


def test_injection_and_long_lines_refused_before_connecting():
    data, mail_from, rcpts = _message()
    port = 9  # nothing is contacted
    with pytest.raises(SendError) as e:
        send(_settings(port), data, mail_from, ["bob@example.net\r\nRCPT TO:<x@evil.test>"])
    assert e.value.kind == "config"
    with pytest.raises(SendError) as e:
        send(_settings(port), b"Subject: x\r\n\r\n" + b"a" * 1200 + b"\r\n", mail_from, rcpts)
    assert "line 3" in str(e.value) and "998" in str(e.value)


def test_server_reply_sanitised(server):
    s = server()
    s.answer("MAIL", "550 5.7.1 \x1b[31mred\x1b[0m \x07 bad")
    data, mail_from, rcpts = _message()
    with pytest.raises(SendError) as e:
        send(_settings(s.port), data, mail_from, rcpts)
    assert "\x1b" not in str(e.value) and "\x07" not in str(e.value)


def test_reply_with_attachment_end_to_end(server):
    """compose -> envelope -> SMTP -> the bytes the server got, read back as a mail reader would."""
    import email
    from email import policy

    from tuimail.mail.compose import make_attachment, reply

    original = (b"From: Bob <bob@example.net>\r\nTo: Alice <alice@example.org>\r\nCc: carol@example.net\r\n"
                b"Subject: plans\r\nDate: Mon, 7 Dec 2026 10:00:00 +0100\r\nMessage-ID: <orig@example.net>\r\n"
                b"References: <root@example.net>\r\n\r\nShall we meet?\r\n")
    s = server()
    draft = reply(original, [Identity("alice@example.org", "Alice")], "all")
    draft.body = "Yes, at noon.\n\n" + draft.body
    draft.bcc = "archive@example.org"
    draft.attachments.append(make_attachment("map.png", b"\x89PNG\r\n\x1a\n" + bytes(200)))
    msg = build_message(draft)
    data, mail_from, rcpts = envelope(msg)
    send(_settings(s.port), data, mail_from, rcpts)
    (got,) = s.messages
    assert got.rcpts == ["bob@example.net", "carol@example.net", "archive@example.org"]
    m = email.message_from_bytes(got.data.replace(b"\r\n", b"\n"), policy=policy.default)
    assert m["Subject"] == "Re: plans" and m["To"] == "Bob <bob@example.net>" and m["Cc"] == "carol@example.net"
    assert m["In-Reply-To"] == "<orig@example.net>"
    assert m["References"] == "<root@example.net> <orig@example.net>" and m["Bcc"] is None
    assert m.get_body(("plain",)).get_content().startswith("Yes, at noon.\n\nOn Mon, 07 Dec 2026 10:00 +0100, Bob")
    assert "> Shall we meet?" in m.get_body(("plain",)).get_content()
    (att,) = list(m.iter_attachments())
    assert att.get_content_type() == "image/png" and att.get_filename() == "map.png"
