"""The demo's SMTP server (issue #12 item 8): a reply sent from `tuimail --demo` goes through the
outbox to the embedded SMTP server, arrives in the demo INBOX threaded with the original, and its
copy is in Sent."""

from __future__ import annotations

import imapclient
import pytest

pytest.importorskip("aiosmtpd", reason="aiosmtpd is not installed: pip install -e '.[demo]'")

from tuimail.backends.send import Sender
from tuimail.config.load import load_config
from tuimail.demo import DemoEnvironment
from tuimail.mail.compose import Identity, build_message, reply, sent_copy


def _fetch(c: imapclient.IMAPClient, folder: str, message_id: str) -> list[tuple[bytes, tuple]]:
    c.select_folder(folder, readonly=True)
    uids = c.search(["HEADER", "Message-ID", message_id])
    got = c.fetch(uids, ["BODY.PEEK[]", "FLAGS"]) if uids else {}
    return [(got[u][b"BODY[]"], got[u][b"FLAGS"]) for u in uids]


def test_a_reply_from_the_demo_arrives_threaded_with_a_copy_in_sent():
    with DemoEnvironment() as env:
        assert env.server is not None and env.server.smtp_port > 0
        config = load_config(env.config_path)
        account = config.account("demo")
        assert account.smtp["port"] == env.server.smtp_port
        c = imapclient.IMAPClient(env.server.host, env.server.port, ssl=False, timeout=10)
        try:
            c.login(env.server.username, env.server.password)
            c.select_folder("INBOX", readonly=True)
            uids = c.search(["HEADER", "Content-Type", "multipart/mixed"]) or c.search("ALL")
            original = c.fetch(uids[-1:], ["BODY.PEEK[]"])[uids[-1]][b"BODY[]"]
            draft = reply(original, [Identity.parse(account.from_address or "")])
            draft.body = "Thanks, got it.\n\n" + draft.body
            msg = build_message(draft)
            message_id = str(msg["Message-ID"])
            sender = Sender(config, account)
            sender.queue(sent_copy(msg), hold=0)
            report = sender.drain()
            assert len(report.sent) == 1 and len(report.filed) == 1 and not report.failed, report
            assert env.server.delivered == 1 and sender.entries() == []
            ((arrived, flags),) = _fetch(c, "INBOX", message_id)
            assert b"\\Seen" not in flags and b"Thanks, got it." in arrived
            assert draft.in_reply_to is not None and f"In-Reply-To: {draft.in_reply_to}".encode() in arrived
            ((copy, sent_flags),) = _fetch(c, "Sent", message_id)
            assert b"\\Seen" in sent_flags and b"Thanks, got it." in copy
        finally:
            c.logout()
