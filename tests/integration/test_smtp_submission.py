"""protocol/smtp.py against Dovecot's submission service (dovecot-submissiond, installed by
`make dovecot`) relaying to an SMTP sink on loopback (DESIGN §3b): the real round trip with
STARTTLS and implicit TLS, a refused password, and the relay being down (421, temporary).
The sink is the scripted server of tests/support/smtpserver.py (no extra dependency)."""

from __future__ import annotations

import pytest

from tests.support.dovecot import submission_installed
from tests.support.smtpserver import ScriptedSMTP, free_port
from tuimail.mail.compose import Identity, build_message, envelope, new_draft
from tuimail.protocol.smtp import SendError, SmtpSettings, send

needs_submission = pytest.mark.skipif(
    not submission_installed(),
    reason="Dovecot's submission service is not installed (/usr/lib/dovecot/submission): `make dovecot`"
           " installs dovecot-submissiond")


@pytest.fixture
def sink():
    server = ScriptedSMTP(auth=()).start()
    yield server
    server.stop()


@needs_submission
def test_dovecot_submission_round_trip(dovecot_factory, sink):
    server = dovecot_factory(tls=True, submission_relay=sink.port)
    user = server.add_user(password="secret")
    draft = new_draft(Identity(f"{user.name}@example.org", "Tester"), "bob@example.net", subject="über",
                      body="Grüße\n" + "long " * 300 + "\n")
    draft.bcc = "carol@example.net"
    msg = build_message(draft)
    data, mail_from, rcpts = envelope(msg)
    settings = SmtpSettings("127.0.0.1", server.submission_port, "starttls", username=user.name, password="secret",
                            ca_file=server.cert_path, timeout=10)
    result = send(settings, data, mail_from, rcpts)
    assert result.code == 250 and result.accepted == ("bob@example.net", "carol@example.net")
    (got,) = sink.messages
    assert got.mail_from == mail_from and sorted(got.rcpts) == ["bob@example.net", "carol@example.net"]
    assert b"carol" not in got.data and msg["Message-ID"].encode() in got.data
    assert got.data.rstrip(b"\r\n").endswith(data.rstrip(b"\r\n").split(b"\r\n\r\n", 1)[1])  # the body unchanged
    # implicit TLS (465-style) and a refused password
    tls = SmtpSettings("127.0.0.1", server.submissions_port, "tls", username=user.name, password="secret",
                       ca_file=server.cert_path, timeout=10)
    assert send(tls, data, mail_from, rcpts).code == 250
    with pytest.raises(SendError) as e:
        send(SmtpSettings("127.0.0.1", server.submission_port, "starttls", username=user.name, password="nope",
                          ca_file=server.cert_path, timeout=10), data, mail_from, rcpts)
    assert e.value.kind == "auth" and not e.value.temporary


@needs_submission
def test_dovecot_submission_relay_down_is_temporary(dovecot_factory):
    server = dovecot_factory(submission_relay=free_port())  # nothing listens there
    user = server.add_user(password="secret")
    data, mail_from, rcpts = envelope(build_message(new_draft(Identity(f"{user.name}@example.org"), "bob@example.net",
                                                              body="hi\n")))
    settings = SmtpSettings("127.0.0.1", server.submission_port, "none", username=user.name, password="secret",
                            timeout=10)
    with pytest.raises(SendError) as e:
        send(settings, data, mail_from, rcpts)
    assert e.value.temporary and e.value.code is not None and 400 <= e.value.code < 500  # 421 at MAIL FROM
