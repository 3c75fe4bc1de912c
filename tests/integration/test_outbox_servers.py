"""The outbox drained to real SMTP servers: aiosmtpd in-process (a 4xx then success, a 5xx, a
partial refusal) and Dovecot's submission service relaying to an aiosmtpd sink, with the Sent
copy APPENDed to the same Dovecot. Bcc: absent from what the sink received, present in Sent."""

from __future__ import annotations

import pytest

from tests.support.dovecot import submission_installed
from tests.support.smtpserver import free_port
from tuimail.backends.send import Sender, backoff
from tuimail.config.load import parse_config
from tuimail.mail.compose import Identity, build_message, new_draft, sent_copy

pytest.importorskip("aiosmtpd", reason="aiosmtpd is not installed: pip install -e '.[test]' (the test extra)")

from aiosmtpd.controller import Controller

needs_submission = pytest.mark.skipif(
    not submission_installed(),
    reason="Dovecot's submission service is not installed (/usr/lib/dovecot/submission): `make dovecot`")


class Sink:
    """Records each accepted message; answers scripted per command ("MAIL", "DATA") and recipient."""

    def __init__(self):
        self.messages: list[tuple[str, list[str], bytes]] = []
        self.script: dict[str, list[str]] = {}
        self.rcpt_answers: dict[str, str] = {}
        self.sessions = 0
        self.port = 0

    async def handle_EHLO(self, server, session, envelope, hostname, responses):
        self.sessions += 1
        session.host_name = hostname
        return responses

    async def handle_MAIL(self, server, session, envelope, address, mail_options):
        queue = self.script.get("MAIL")
        if queue:
            return queue.pop(0)
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
        queue = self.script.get("DATA")
        if queue:
            return queue.pop(0)
        self.messages.append((envelope.mail_from, list(envelope.rcpt_tos), envelope.original_content))
        return "250 2.0.0 queued as 4242"


@pytest.fixture
def aiosink():
    handler = Sink()
    handler.port = free_port()
    controller = Controller(handler, hostname="127.0.0.1", port=handler.port)
    controller.start()
    yield handler
    controller.stop()


class Clock:
    t = 1_800_000_000.0

    def __call__(self) -> float:
        return self.t


def sender_for(user, tmp_path, smtp: str, clock=None) -> Sender:
    text = user.config_toml(**{"from": f"Tester <{user.name}@example.org>", "undo_send": 0}) + smtp
    cfg = parse_config(text, tmp_path / "config.toml")
    return Sender(cfg, cfg.account("test"), **({"clock": clock} if clock else {}))


def plain_smtp(port: int) -> str:
    return f'[accounts.test.smtp]\nhost = "127.0.0.1"\nport = {port}\nsecurity = "none"\nusername = ""\n'


def message(user, to="bob@example.net", subject="hello") -> bytes:
    draft = new_draft(Identity(f"{user.name}@example.org", "Tester"), to, subject=subject, body="hi\n")
    draft.bcc = "carol@example.net"
    return sent_copy(build_message(draft))


def sent_copies(user) -> list[bytes]:
    with user.client("Sent") as c:
        uids = c.search("ALL")
        got = c.fetch(uids, ["BODY.PEEK[]", "FLAGS"]) if uids else {}
    assert all(b"\\Seen" in got[u][b"FLAGS"] for u in got)
    return [got[u][b"BODY[]"] for u in sorted(got)]


def test_aiosmtpd_4xx_then_success(dovecot, tuimail_env, tmp_path, aiosink):
    user = dovecot.add_user()
    clock = Clock()
    sender = sender_for(user, tmp_path, plain_smtp(aiosink.port), clock)
    aiosink.script["MAIL"] = ["451 4.3.0 greylisted, try later"]
    sender.queue(message(user))
    report = sender.drain()
    assert report.postponed and "451 4.3.0 greylisted" in report.postponed[0][1] and aiosink.messages == []
    clock.t += backoff(1)
    assert len(sender.drain().sent) == 1
    ((_f, rcpts, data),) = aiosink.messages
    assert sorted(rcpts) == ["bob@example.net", "carol@example.net"] and b"carol" not in data
    (copy,) = sent_copies(user)
    assert b"Bcc: carol@example.net" in copy and sender.entries() == []


def test_aiosmtpd_5xx_is_kept(dovecot, tuimail_env, tmp_path, aiosink):
    user = dovecot.add_user()
    sender = sender_for(user, tmp_path, plain_smtp(aiosink.port))
    aiosink.script["DATA"] = ["554 5.6.0 message refused"]
    sender.queue(message(user))
    report = sender.drain()
    assert report.failed and "554 5.6.0 message refused" in report.failed[0][1]
    sender.drain()
    assert aiosink.messages == [] and aiosink.sessions == 1 and sent_copies(user) == []
    (e,) = sender.entries()
    assert e.state == "failed" and not e.maybe_sent


def test_aiosmtpd_partial_refusal(dovecot, tuimail_env, tmp_path, aiosink):
    user = dovecot.add_user()
    sender = sender_for(user, tmp_path, plain_smtp(aiosink.port))
    aiosink.rcpt_answers["gone@example.net"] = "550 5.1.1 mailbox unavailable"
    sender.queue(message(user, to="bob@example.net, gone@example.net"))
    sender.drain()
    ((_f, rcpts, _d),) = aiosink.messages
    assert sorted(rcpts) == ["bob@example.net", "carol@example.net"]
    (e,) = sender.entries()
    assert e.state == "failed" and e.rcpts == ("gone@example.net",) and "550 5.1.1" in (e.last_error or "")
    sender.drain()
    assert len(aiosink.messages) == 1 and len(sent_copies(user)) == 1


@needs_submission
def test_dovecot_submission_and_the_sent_copy_on_the_same_dovecot(dovecot_factory, tuimail_env, tmp_path, aiosink):
    server = dovecot_factory(submission_relay=aiosink.port)
    user = server.add_user(password="secret")
    # the account's own credentials are used for SMTP too (no password in the smtp table)
    smtp = f'[accounts.test.smtp]\nhost = "127.0.0.1"\nport = {server.submission_port}\nsecurity = "none"\n'
    sender = sender_for(user, tmp_path, smtp)
    raw = message(user, subject="through dovecot")
    sender.queue(raw)
    report = sender.drain()
    assert len(report.sent) == 1 and not report.failed and not report.unfiled, report
    ((mail_from, rcpts, data),) = aiosink.messages
    assert mail_from == f"{user.name}@example.org"
    assert sorted(rcpts) == ["bob@example.net", "carol@example.net"]
    assert b"carol" not in data and b"Subject: through dovecot" in data
    (copy,) = sent_copies(user)
    assert b"Bcc: carol@example.net" in copy and copy.replace(b"\r\n", b"\n") == raw.replace(b"\r\n", b"\n")
    assert sender.entries() == []
