"""Sending from a JMAP account over HTTP, against the real Cyrus 3.6 (its EmailSubmission relays to
the session's aiosmtpd sink): the outbox drain submits with Email/import + EmailSubmission/set in one
request, the server files the message in Sent (out of Drafts, $draft cleared), Bcc only in the
envelope; a refusal keeps the message in the outbox as failed with the server's line; postponing
stores a draft with Email/import."""

from __future__ import annotations

import dataclasses
import uuid

import pytest

from tests.support.cyrus import CyrusServer, CyrusUser, _free_ports
from tuimail import paths
from tuimail.backends.jmap.service import JmapService
from tuimail.backends.registry import can_send, create_sender
from tuimail.config.load import load_config
from tuimail.store import Store

from .helpers import Cli
from .test_jmap_backend import jmap_toml, server_flags, sync


def message(user: CyrusUser, tag: str, to: str = "friend@example.org", bcc: str | None = "hidden@example.org",
            extra: str = "") -> bytes:
    lines = [f"From: Me <{user.address}>", f"To: {to}"]
    if bcc:
        lines.append(f"Bcc: {bcc}")
    lines += [f"Subject: {tag}", f"Message-ID: <{tag}@localhost>", "MIME-Version: 1.0",
              "Content-Type: text/plain; charset=utf-8"]
    return ("\r\n".join(lines) + "\r\n" + extra + "\r\nthe text\r\n").encode()


def relayed(sink, tag: str):
    return [m for m in sink.messages if f"<{tag}@localhost>".encode() in m.data]


def folder_subjects(user: CyrusUser) -> dict[str, dict[str, set[str]]]:
    return {f: server_flags(user, f) for f in ("Drafts", "Sent")}


@pytest.fixture
def jmap_account(tuimail_env, cyrususer):
    config = tuimail_env.write_config(jmap_toml(cyrususer, undo_send=0))
    cfg = load_config(config)
    return cfg, cfg.account("test"), config


def test_outbox_submits_over_jmap_bcc_only_in_the_envelope_and_the_server_files_it(
        jmap_account, cyrususer, cyrus_sink):
    cfg, acc, _ = jmap_account
    assert can_send(acc)  # no [smtp] table: a JMAP account sends over HTTP
    tag = f"send-{uuid.uuid4().hex[:8]}"
    sender = create_sender(cfg, acc)
    entry = sender.queue(message(cyrususer, tag), hold=0)
    report = sender.drain()
    assert [e.id for e in report.sent] == [entry] and report.filed == [entry] and not report.failed
    assert sender.entries() == []  # done: nothing left in the outbox
    got = cyrus_sink.wait(1) and relayed(cyrus_sink, tag)
    assert len(got) == 1
    assert sorted(got[0].rcpts) == ["friend@example.org", "hidden@example.org"]  # Bcc in RCPT TO
    assert got[0].mail_from == cyrususer.address
    assert b"hidden@example.org" not in got[0].data and b"\nBcc:" not in got[0].data  # not in the data
    boxes = folder_subjects(cyrususer)
    assert boxes["Sent"] == {tag: {"\\Seen"}}  # filed by the server: out of Drafts, $draft cleared
    assert boxes["Drafts"] == {}


def test_a_refused_recipient_keeps_the_message_failed_with_one_line(jmap_account, cyrususer, cyrus_sink):
    cfg, acc, _ = jmap_account
    sync(cfg, acc)  # the store knows Drafts and Sent (their mailbox ids come from it)
    tag = f"refused-{uuid.uuid4().hex[:8]}"
    sender = create_sender(cfg, acc)
    entry = sender.queue(message(cyrususer, tag, to="friend@example.org, refused-user@example.org", bcc=None),
                         hold=0)
    report = sender.drain()
    assert not report.sent and [i for i, _ in report.failed] == [entry]
    [kept] = sender.entries()
    assert kept.state == "failed" and kept.rcpts == ("friend@example.org", "refused-user@example.org")
    line = kept.last_error
    assert "\n" not in line and "tooManyRecipients" in line and "nothing was sent" in line
    assert relayed(cyrus_sink, tag) == []  # the relay refused the transaction: no one got it
    assert folder_subjects(cyrususer) == {"Drafts": {}, "Sent": {}}  # the imported draft went again
    assert sender.cancel(entry) is not None  # the user may discard it (or fix it and retry)


def test_relay_down_waits_and_retries_nothing_lost(tuimail_env, cyrus_sink):
    """Cyrus without a reachable SMTP relay drops the submission capability: the message waits in
    the outbox (temporary, the server's line quoted), it is not failed."""
    with CyrusServer(smtp_port=_free_ports(1)[0]) as server:
        user = server.add_user()
        cfg = load_config(tuimail_env.write_config(jmap_toml(user, undo_send=0)))
        acc = cfg.account("test")
        sender = create_sender(cfg, acc)
        entry = sender.queue(message(user, "relay-down"), hold=0)
        report = sender.drain()
        assert not report.sent and not report.failed and [i for i, *_ in report.postponed] == [entry]
        [kept] = sender.entries()
        assert kept.state == "queued" and kept.next_try > 0
        assert "accountNotSupportedByMethod" in kept.last_error and "\n" not in kept.last_error
        assert folder_subjects(user) == {"Drafts": {}, "Sent": {}}


def test_a_second_submission_of_the_same_bytes_is_not_sent_twice(jmap_account, cyrususer, cyrus_sink):
    """A drain killed after the server took the submission queues it again; Cyrus keeps one email
    per blob (Email/import answers alreadyExists): found in Sent, it is done, not relayed twice."""
    cfg, acc, _ = jmap_account
    tag = f"twice-{uuid.uuid4().hex[:8]}"
    raw = message(cyrususer, tag, extra="Date: Mon, 01 Jan 2024 10:00:00 +0000\r\n")
    first = create_sender(cfg, acc)
    first.queue(raw, hold=0)
    assert len(first.drain().sent) == 1
    again = create_sender(cfg, acc)
    again.queue(raw, hold=0)
    report = again.drain()
    assert len(report.sent) == 1 and again.entries() == []
    assert len(relayed(cyrus_sink, tag)) == 1
    assert folder_subjects(cyrususer)["Sent"] == {tag: {"\\Seen"}}


def test_cli_send_on_a_jmap_account(jmap_account, cyrususer, cyrus_sink, tmp_path, capsys):
    _cfg, _acc, config = jmap_account
    tag = f"cli-{uuid.uuid4().hex[:8]}"
    path = tmp_path / "m.eml"
    path.write_bytes(message(cyrususer, tag))
    out = Cli(config, capsys)("send", "--now", str(path))
    assert "sent to 2 recipients" in out
    assert len(cyrus_sink.wait(1) and relayed(cyrus_sink, tag)) == 1
    assert tag in folder_subjects(cyrususer)["Sent"]


def test_postpone_stores_a_draft_with_email_import(jmap_account, cyrususer):
    cfg, acc, _ = jmap_account
    sync(cfg, acc)
    svc = JmapService(cfg, dataclasses.replace(acc, check_interval=3600.0))
    svc.start()
    try:
        assert svc.capabilities.append and svc.capabilities.send
        svc.append("Drafts", message(cyrususer, "postponed"), ("draft", "seen"))
        assert server_flags(cyrususer, "Drafts") == {"postponed": {"\\Draft", "\\Seen"}}
        import time
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:  # the folder is synced at once: the draft shows
            with Store(paths.account_store_path("test")) as st:
                fid = st.folder_id("Drafts")
                rows = st.rows(fid, st.id_list(fid))
            if rows:
                break
            time.sleep(0.05)
        assert [r.subject for r in rows.values()] == ["postponed"]
        assert next(iter(rows.values())).flags == {"draft", "seen"}
        with pytest.raises(Exception, match="no folder"):
            svc.append("Nowhere", b"Subject: x\r\n\r\nx\r\n")
    finally:
        svc.stop()


def test_a_message_resumed_from_a_draft_replaces_it_once_sent(jmap_account, cyrususer, cyrus_sink):
    cfg, acc, _ = jmap_account
    sync(cfg, acc)
    svc = JmapService(cfg, acc)
    try:
        svc.append("Drafts", message(cyrususer, "resumed", bcc=None), ("draft", "seen"))
    finally:
        svc.stop()
    sync(cfg, acc)
    with Store(paths.account_store_path("test")) as st:
        fid = st.folder_id("Drafts")
        [draft] = st.rows(fid, st.id_list(fid)).values()
    tag = f"final-{uuid.uuid4().hex[:8]}"
    sender = create_sender(cfg, acc)
    sender.queue(message(cyrususer, tag, bcc=None), hold=0, draft=("Drafts", draft.sid))
    report = sender.drain()
    assert len(report.sent) == 1 and sender.entries() == []
    assert folder_subjects(cyrususer) == {"Drafts": {}, "Sent": {tag: {"\\Seen"}}}
    assert len(relayed(cyrus_sink, tag)) == 1


def test_an_answer_lost_after_the_submission_is_maybe_sent_and_a_retry_sends_nothing_twice(
        jmap_account, cyrususer, cyrus_sink, monkeypatch):
    """Fault injection: Cyrus takes the import + submission, the answer is lost. The entry is failed
    as "may have been sent" (never sent again by itself); the user's retry finds the very same
    bytes in Sent (Email/import: alreadyExists) and relays nothing more."""
    from tuimail.errors import NetworkError
    from tuimail.protocol.jmap.client import JmapClient
    cfg, acc, _ = jmap_account
    tag = f"lost-{uuid.uuid4().hex[:8]}"
    real_send = JmapClient.send

    def losing_send(self, batch):
        res = real_send(self, batch)
        if any(m == "EmailSubmission/set" for m, _a, _c in batch.calls):
            raise NetworkError("JMAP server 127.0.0.1 closed the connection")
        return res

    monkeypatch.setattr(JmapClient, "send", losing_send)
    sender = create_sender(cfg, acc)
    entry = sender.queue(message(cyrususer, tag), hold=0)
    report = sender.drain()
    assert not report.sent and [i for i, _ in report.failed] == [entry]
    [kept] = sender.entries()
    assert kept.state == "failed" and kept.maybe_sent and "may have been sent" in kept.last_error
    assert len(cyrus_sink.wait(1) and relayed(cyrus_sink, tag)) == 1
    assert sender.drain().sent == [] and len(relayed(cyrus_sink, tag)) == 1  # not by itself
    monkeypatch.setattr(JmapClient, "send", real_send)
    assert sender.retry(entry)
    assert len(sender.drain().sent) == 1 and sender.entries() == []
    assert len(relayed(cyrus_sink, tag)) == 1  # found in Sent: not relayed twice
    assert folder_subjects(cyrususer) == {"Drafts": {}, "Sent": {tag: {"\\Seen"}}}
