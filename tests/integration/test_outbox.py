"""The outbox and its drain (backends/send.py, store/outbox.py) against real servers: the SMTP
sink is tests/support/smtpserver.py's ScriptedSMTP (faults scripted per test), the Sent copy
goes to a private Dovecot. Mocks only for fault injection (the `step` hook, the clock)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tests.support.smtpserver import ScriptedSMTP, free_port
from tuimail.backends.send import Sender, backoff, prepare
from tuimail.config.load import parse_config
from tuimail.errors import UsageError
from tuimail.mail.compose import Identity, build_message, new_draft, sent_copy
from tuimail.store import Store
from tuimail.store.outbox import Outbox

ROOT = Path(__file__).resolve().parents[2]


class Clock:
    def __init__(self, t: float = 1_800_000_000.0):
        self.t = t

    def __call__(self) -> float:
        return self.t


@pytest.fixture
def sink():
    server = ScriptedSMTP(auth=()).start()
    yield server
    server.stop()


def smtp_toml(port: int, **extra) -> str:
    lines = ["[accounts.test.smtp]", 'host = "127.0.0.1"', f"port = {port}", 'security = "none"', 'username = ""']
    lines += [f"{k} = {v}" for k, v in extra.items()]
    return "\n".join(lines) + "\n"


def make_config(user, sink_port: int, undo: float = 0, **smtp_extra):
    text = user.config_toml(**{"from": f"Tester <{user.name}@example.org>", "undo_send": undo})
    return text + smtp_toml(sink_port, **smtp_extra)


def account_of(text: str, tmp_path: Path):
    cfg = parse_config(text, tmp_path / "config.toml")
    return cfg, cfg.account("test")


def message(user, to="bob@example.net", bcc="carol@example.net", subject="hello", body="hi there\n") -> bytes:
    draft = new_draft(Identity(f"{user.name}@example.org", "Tester"), to, subject=subject, body=body)
    draft.bcc = bcc
    return sent_copy(build_message(draft))


def sent_messages(user) -> list[tuple[bytes, tuple]]:
    with user.client("Sent") as c:
        uids = c.search("ALL")
        got = c.fetch(uids, ["BODY.PEEK[]", "FLAGS"]) if uids else {}
    return [(got[u][b"BODY[]"], got[u][b"FLAGS"]) for u in sorted(got)]


def outbox_entries(sender: Sender):
    return sender.entries()


def test_sent_once_bcc_only_in_the_sent_copy(dovecot, tuimail_env, tmp_path, sink):
    user = dovecot.add_user()
    cfg, acc = account_of(make_config(user, sink.port), tmp_path)
    sender = Sender(cfg, acc)
    raw = message(user)
    entry_id = sender.queue(raw)
    assert [e.id for e in sender.entries()] == [entry_id]  # durable before anything went out
    report = sender.drain()
    assert len(report.sent) == 1 and report.filed == [entry_id] and not report.failed
    (got,) = sink.messages
    assert sorted(got.rcpts) == ["bob@example.net", "carol@example.net"]
    assert b"carol" not in got.data and b"Bcc" not in got.data
    (copy, flags), = sent_messages(user)
    assert b"Bcc: carol@example.net" in copy and b"\\Seen" in flags
    assert sender.entries() == []
    assert sender.drain().sent == []  # nothing more


def test_temporary_failure_then_success(dovecot, tuimail_env, tmp_path, sink):
    user = dovecot.add_user()
    cfg, acc = account_of(make_config(user, sink.port), tmp_path)
    clock = Clock()
    sender = Sender(cfg, acc, clock=clock)
    sink.answer("MAIL", "451 4.3.0 try again later")
    entry_id = sender.queue(message(user))
    report = sender.drain()
    assert not report.sent and report.postponed[0][0] == entry_id and "451" in report.postponed[0][1]
    (e,) = sender.entries()
    assert e.state == "queued" and e.next_try == clock.t + backoff(1) and "451" in (e.last_error or "")
    assert "retry at" in e.why(clock.t)
    assert sender.drain().sent == []  # not before next_try
    clock.t += backoff(1)
    assert len(sender.drain().sent) == 1
    assert len(sink.messages) == 1 and len(sent_messages(user)) == 1 and sender.entries() == []


def test_permanent_failure_is_kept_with_the_servers_line(dovecot, tuimail_env, tmp_path, sink):
    user = dovecot.add_user()
    cfg, acc = account_of(make_config(user, sink.port), tmp_path)
    sender = Sender(cfg, acc)
    sink.answer("EOM", "554 5.7.1 message content rejected")
    sender.queue(message(user))
    report = sender.drain()
    assert report.failed and "554 5.7.1 message content rejected" in report.failed[0][1]
    (e,) = sender.entries()
    assert e.state == "failed" and "554" in (e.last_error or "")
    sender.drain()
    assert sink.messages == [] and sent_messages(user) == []  # never resent by itself
    assert sender.cancel(e.id) is not None and sender.entries() == []  # the user discards it


def test_partial_refusal_never_resends_to_the_accepted(dovecot, tuimail_env, tmp_path, sink):
    user = dovecot.add_user()
    cfg, acc = account_of(make_config(user, sink.port), tmp_path)
    sender = Sender(cfg, acc)
    sink.rcpt_answers["nobody@example.net"] = "550 5.1.1 no such user"
    sender.queue(message(user, to="bob@example.net, nobody@example.net"))
    report = sender.drain()
    assert len(report.sent) == 1 and report.refused and "550 5.1.1" in report.refused[0][1]
    (got,) = sink.messages
    assert sorted(got.rcpts) == ["bob@example.net", "carol@example.net"]
    (e,) = sender.entries()
    assert e.state == "failed" and e.rcpts == ("nobody@example.net",) and e.filed
    assert sorted(e.accepted) == ["bob@example.net", "carol@example.net"]
    assert e.refused == {"nobody@example.net": (550, "5.1.1 no such user")} and "550" in (e.last_error or "")
    assert len(sent_messages(user)) == 1
    # the user fixed the address on the server's side and retries: only the refused one gets it
    del sink.rcpt_answers["nobody@example.net"]
    with Store(sender.store_path) as store:
        assert Outbox(store.db).retry(e.id)
    sender.drain()
    assert [m.rcpts for m in sink.messages[1:]] == [["nobody@example.net"]]
    assert len(sent_messages(user)) == 1 and sender.entries() == []  # filed once


def test_a_message_that_may_have_gone_is_not_resent(dovecot, tuimail_env, tmp_path, sink):
    user = dovecot.add_user()
    cfg, acc = account_of(make_config(user, sink.port), tmp_path)
    sender = Sender(cfg, acc)
    sink.answer("EOM", "CLOSE")  # the connection drops after the final "."
    sender.queue(message(user))
    report = sender.drain()
    assert report.failed and "may have been delivered" in report.failed[0][1]
    (e,) = sender.entries()
    assert e.state == "failed" and e.maybe_sent
    sender.drain()
    assert sink.messages == [] and len(sink.transcripts) == 1  # no second session


def test_undo_window(dovecot, tuimail_env, tmp_path, sink):
    user = dovecot.add_user()
    cfg, acc = account_of(make_config(user, sink.port, undo=5), tmp_path)
    clock = Clock()
    sender = Sender(cfg, acc, clock=clock)
    raw = message(user, subject="take me back")
    first = sender.queue(raw)
    clock.t += 4
    assert sender.drain().sent == [] and sink.transcripts == []  # not even a connection
    assert sender.entries()[0].held(clock.t) and "held for undo" in sender.entries()[0].why(clock.t)
    back = sender.cancel(first)
    assert back is not None and back.message == raw  # the message as it was queued, Bcc and all
    clock.t += 10
    assert sender.drain().sent == [] and sink.messages == []
    second = sender.queue(message(user, subject="let it go"))
    clock.t += 5
    assert len(sender.drain().sent) == 1 and sender.cancel(second) is None  # too late: it went
    assert len(sink.messages) == 1 and b"let it go" in sink.messages[0].data


def test_offline_then_back(dovecot, tuimail_env, tmp_path):
    user = dovecot.add_user()
    port = free_port()
    cfg, acc = account_of(make_config(user, port), tmp_path)
    clock = Clock()
    sender = Sender(cfg, acc, clock=clock)
    sender.queue(message(user, subject="one"))
    sender.queue(message(user, subject="two"))
    report = sender.drain()
    assert report.postponed and "cannot connect" in report.postponed[0][1]
    assert [e.state for e in sender.entries()] == ["queued", "queued"]
    assert all(e.next_try == clock.t + backoff(1) for e in sender.entries())
    server = ScriptedSMTP(auth=()).start()  # the network is back (the config names where)
    try:
        cfg, acc = account_of(make_config(user, server.port), tmp_path)
        sender = Sender(cfg, acc, clock=clock)
        assert sender.drain().sent == []  # not before the backoff ...
        assert len(sender.drain(ignore_backoff=True).sent) == 2  # ... unless told the network is back
        assert [m.data.count(b"Subject: one") for m in server.messages] == [1, 0]
    finally:
        server.stop()
    assert len(sent_messages(user)) == 2 and sender.entries() == []


def test_sent_copy_waits_when_imap_is_down_and_is_not_resent(dovecot, tuimail_env, tmp_path, sink):
    user = dovecot.add_user()
    text = make_config(user, sink.port).replace(f"port = {user.imap_port}", f"port = {free_port()}", 1)
    cfg, acc = account_of(text, tmp_path)
    clock = Clock()
    sender = Sender(cfg, acc, clock=clock)
    sender.queue(message(user))
    report = sender.drain()
    assert len(report.sent) == 1 and report.unfiled and "Sent" in report.unfiled[0][1]
    (e,) = sender.entries()
    assert e.state == "sent_unfiled" and "not filed" in e.why(clock.t)
    cfg, acc = account_of(make_config(user, sink.port), tmp_path)  # the IMAP server is back
    sender = Sender(cfg, acc, clock=clock)
    clock.t += backoff(1)
    report = sender.drain()
    assert report.sent == [] and len(report.filed) == 1
    assert len(sink.messages) == 1 and len(sent_messages(user)) == 1 and sender.entries() == []


def test_save_sent_false_files_nothing(dovecot, tuimail_env, tmp_path, sink):
    user = dovecot.add_user()
    cfg, acc = account_of(make_config(user, sink.port, save_sent="false"), tmp_path)
    sender = Sender(cfg, acc)
    sender.queue(message(user))
    assert len(sender.drain().sent) == 1
    assert sent_messages(user) == [] and sender.entries() == []


def test_prepare_refuses_what_cannot_go():
    with pytest.raises(UsageError, match="no recipient"):
        prepare(b"From: a@example.org\nSubject: x\n\nhi\n")
    with pytest.raises(UsageError, match="no From"):
        prepare(b"To: b@example.org\n\nhi\n")
    with pytest.raises(UsageError, match="998"):
        prepare(b"From: a@example.org\nTo: b@example.org\n\n" + b"x" * 1200 + b"\n")
    with pytest.raises(UsageError, match="not an address"):
        prepare(b"From: a@example.org\nTo: bob\n\nhi\n")
    p = prepare(b"To: b@example.org\nBcc: c@example.org\n\nhi\n", "Me <me@example.org>", now=0)
    assert p.mail_from == "me@example.org" and p.rcpts == ("b@example.org", "c@example.org")
    assert p.message.startswith(b"From: Me <me@example.org>\r\nDate: ")
    assert p.message_id.endswith("@example.org>") and b"Message-ID: " + p.message_id.encode() in p.message


# ---------------------------------------------------------------------------- kill -9 at every step

CHILD = textwrap.dedent("""
    import os, signal, sys
    from tuimail.backends.send import Sender
    from tuimail.config.load import load_config
    cfg = load_config(sys.argv[1])
    def step(name):
        if name == sys.argv[2]:
            os.kill(os.getpid(), signal.SIGKILL)
    Sender(cfg, cfg.account("test"), step=step).drain()
    sys.exit(0)
""")


@pytest.mark.parametrize("step, copies", [
    ("before_send", 1),  # claimed, nothing on the wire: sent by the next drain
    ("after_250", 2),  # the server has it, the store does not know: sent once more (at most)
    ("after_mark", 1),  # marked sent: only filed by the next drain
    ("before_append", 1),  # 'filing', nothing appended: the next drain looks, then appends
    ("after_append", 1),  # appended, row not deleted: the next drain finds it in Sent
])
def test_kill_at_every_step_loses_nothing_and_sends_at_most_once_more(dovecot, tuimail_env, tmp_path, sink,
                                                                     step, copies):
    user = dovecot.add_user()
    path = tuimail_env.write_config(make_config(user, sink.port))
    cfg, acc = account_of(path.read_text(), path.parent)
    Sender(cfg, acc).queue(message(user, subject=f"killed {step}"))
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    child = subprocess.run([sys.executable, "-c", CHILD, str(path), step], env=env, cwd=ROOT,
                           capture_output=True, timeout=60)
    assert child.returncode == -signal.SIGKILL, child.stderr.decode()
    assert len(Sender(cfg, acc).entries()) == 1  # still there
    report = Sender(cfg, acc).drain()
    assert not report.failed and not report.unfiled
    assert len(sink.messages) == copies
    assert all(b"carol" not in m.data for m in sink.messages)
    assert len(sent_messages(user)) == 1
    assert Sender(cfg, acc).entries() == []
    Sender(cfg, acc).drain()
    assert len(sink.messages) == copies and len(sent_messages(user)) == 1


def test_a_second_drain_waits_for_the_first(dovecot, tuimail_env, tmp_path, sink):
    from tuimail.backends.lock import AccountLock
    from tuimail.backends.send import outbox_lock_path
    user = dovecot.add_user()
    cfg, acc = account_of(make_config(user, sink.port), tmp_path)
    sender = Sender(cfg, acc)
    sender.queue(message(user))
    lock = AccountLock(outbox_lock_path(acc.name))
    lock.acquire()
    try:
        report = sender.drain()
    finally:
        lock.release()
    assert report.busy and sink.messages == [] and sender.entries()[0].state == "queued"
    assert "another tuimail" in report.line("test")
    assert len(sender.drain().sent) == 1


def test_a_refused_login_keeps_the_message_waiting(dovecot, tuimail_env, tmp_path):
    user = dovecot.add_user()
    server = ScriptedSMTP(users={"alice": "secret"}).start()
    try:
        text = (user.config_toml(**{"from": f"Tester <{user.name}@example.org>", "undo_send": 0})
                + f'[accounts.test.smtp]\nhost = "127.0.0.1"\nport = {server.port}\nsecurity = "none"\n'
                  'username = "alice"\npassword = "wrong"\n')
        cfg, acc = account_of(text, tmp_path)
        clock = Clock()
        sender = Sender(cfg, acc, clock=clock)
        sender.queue(message(user, subject="one"))
        sender.queue(message(user, subject="two"))
        report = sender.drain()
        assert len(report.postponed) == 1 and "535" in report.postponed[0][1] and "username" in report.postponed[0][1]
        assert [e.state for e in sender.entries()] == ["queued", "queued"]  # not failed: the settings are wrong
        assert len(server.transcripts) == 1  # one login tried, not one per message
        clock.t += 60
        assert sender.drain().postponed == [] and len(server.transcripts) == 1  # no quick retry of a refused login
        text = text.replace('password = "wrong"', 'password = "secret"')
        cfg, acc = account_of(text, tmp_path)
        assert len(Sender(cfg, acc, clock=clock).drain(ignore_backoff=True).sent) == 2  # fixed; the user flushes
    finally:
        server.stop()


def test_a_resumed_draft_is_replaced_once_sent(dovecot, tuimail_env, tmp_path, sink):
    user = dovecot.add_user()
    cfg, acc = account_of(make_config(user, sink.port), tmp_path)
    raw = message(user, subject="was a draft")
    uid = user.append("Drafts", raw, flags=["\\Draft", "\\Seen"])
    sender = Sender(cfg, acc)
    sender.queue(raw, draft=("Drafts", str(uid)))
    assert len(sender.drain().sent) == 1
    with user.client("Drafts") as c:
        assert c.search("ALL") == []
    assert len(sent_messages(user)) == 1


def test_next_due_says_when_to_drain(dovecot, tuimail_env, tmp_path, sink):
    user = dovecot.add_user()
    cfg, acc = account_of(make_config(user, sink.port, undo=5), tmp_path)
    clock = Clock()
    sender = Sender(cfg, acc, clock=clock)
    assert sender.next_due() is None
    sender.queue(message(user))
    assert sender.next_due() == clock.t + 5
    clock.t = sender.next_due() or 0
    assert len(sender.drain().sent) == 1 and sender.next_due() is None


def test_a_recipient_refused_for_now_is_retried_alone(dovecot, tuimail_env, tmp_path, sink):
    user = dovecot.add_user()
    cfg, acc = account_of(make_config(user, sink.port), tmp_path)
    clock = Clock()
    sender = Sender(cfg, acc, clock=clock)
    sink.rcpt_answers["grey@example.net"] = "450 4.2.0 greylisted"
    sender.queue(message(user, to="bob@example.net, grey@example.net"))
    report = sender.drain()
    assert len(report.sent) == 1 and "450 4.2.0 greylisted" in report.refused[0][1]
    (e,) = sender.entries()
    assert e.state == "queued" and e.rcpts == ("grey@example.net",) and e.next_try == clock.t + backoff(1)
    del sink.rcpt_answers["grey@example.net"]
    clock.t += backoff(1)
    assert len(sender.drain().sent) == 1
    assert [sorted(m.rcpts) for m in sink.messages] == [["bob@example.net", "carol@example.net"], ["grey@example.net"]]
    assert len(sent_messages(user)) == 1 and sender.entries() == []
