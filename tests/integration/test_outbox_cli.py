"""`tuimail send` and `tuimail outbox` end to end: a scripted SMTP sink, the Sent copy on Dovecot."""

from __future__ import annotations

import io
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.support.smtpserver import ScriptedSMTP, free_port

from .helpers import Cli

ROOT = Path(__file__).resolve().parents[2]

MESSAGE = (b"From: Tester <tester@example.org>\nTo: Bob <bob@example.net>\nBcc: carol@example.net\n"
           b"Subject: from the command line\n\nhello from a file\n")


@pytest.fixture
def sink():
    server = ScriptedSMTP(auth=()).start()
    yield server
    server.stop()


def config(user, port: int, undo: float = 0) -> str:
    return (user.config_toml(**{"from": f"Tester <{user.name}@example.org>", "undo_send": undo})
            + f'[accounts.test.smtp]\nhost = "127.0.0.1"\nport = {port}\nsecurity = "none"\nusername = ""\n')


def sent_count(user) -> int:
    with user.client("Sent") as c:
        return len(c.search("ALL"))


def test_send_a_file_and_stdin(tuimail_env, dovecot, sink, capsys, tmp_path, monkeypatch):
    user = dovecot.add_user()
    cli = Cli(tuimail_env.write_config(config(user, sink.port)), capsys)
    f = tmp_path / "msg.eml"
    f.write_bytes(MESSAGE)
    out = cli("send", str(f))
    assert "test: sent to 2 recipients" in out
    (got,) = sink.messages
    assert sorted(got.rcpts) == ["bob@example.net", "carol@example.net"] and b"carol" not in got.data
    assert b"Message-ID: <" in got.data and b"Date: " in got.data  # added, as sendmail -t does
    assert sent_count(user) == 1
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(MESSAGE.replace(b"a file", b"stdin"))))
    assert "sent to 2" in cli("send", "-")
    assert b"hello from stdin" in sink.messages[1].data
    assert "the outbox is empty" in cli("outbox")
    assert cli.json("outbox") == []


def test_send_errors_are_one_line(tuimail_env, dovecot, sink, capsys, tmp_path):
    user = dovecot.add_user()
    cli = Cli(tuimail_env.write_config(config(user, sink.port)), capsys)
    cli("send", str(tmp_path / "missing.eml"), expect=2)
    assert "cannot read" in cli.last_err and cli.last_err.count("\n") == 1
    f = tmp_path / "norcpt.eml"
    f.write_bytes(b"Subject: nobody\n\ntext\n")
    cli("send", str(f), expect=2)
    assert "no recipient" in cli.last_err and cli.last_err.count("\n") == 1
    assert cli.json("outbox") == [] and sink.transcripts == []
    # no [smtp] table: exit 2 naming the key; the message waits in the outbox
    cli2 = Cli(tuimail_env.write_config(user.config_toml()), capsys)
    f.write_bytes(MESSAGE)
    cli2("send", "--now", str(f), expect=2)
    assert "accounts.test.smtp" in cli2.last_err and cli2.last_err.count("\n") == 1


def test_outbox_shows_what_waits_and_why_then_flush(tuimail_env, dovecot, capsys, tmp_path):
    user = dovecot.add_user()
    port = free_port()  # nothing listens: offline
    path = tuimail_env.write_config(config(user, port))
    cli = Cli(path, capsys)
    f = tmp_path / "msg.eml"
    f.write_bytes(MESSAGE)
    cli("send", str(f), expect=3)
    assert "not sent yet" in cli.last_err and "cannot connect" in cli.last_err and "#1" in cli.last_err
    (e,) = cli.json("outbox")
    assert e["state"] == "queued" and e["attempts"] == 1 and "retry at" in e["why"]
    assert e["to"] == ["bob@example.net", "carol@example.net"] and e["subject"] == "from the command line"
    out = cli("outbox")
    assert "#1" in out and "retry at" in out and "cannot connect" in out
    assert "queued as #2" in cli("--offline", "send", str(f))
    server = ScriptedSMTP(auth=()).start()
    try:
        cli = Cli(tuimail_env.write_config(config(user, server.port)), capsys)
        out = cli("outbox", "--flush")
        assert "test: 2 sent" in out
        assert len(server.messages) == 2
    finally:
        server.stop()
    assert cli.json("outbox") == [] and sent_count(user) == 2


def test_outbox_failed_retry_and_discard(tuimail_env, dovecot, sink, capsys, tmp_path):
    user = dovecot.add_user()
    cli = Cli(tuimail_env.write_config(config(user, sink.port)), capsys)
    f = tmp_path / "msg.eml"
    f.write_bytes(MESSAGE)
    sink.answer("EOM", "554 5.7.1 no thanks")
    cli("send", str(f), expect=3)
    assert "554 5.7.1 no thanks" in cli.last_err
    (e,) = cli.json("outbox")
    assert e["state"] == "failed" and "554" in e["error"]
    cli("outbox", "--retry", "7", expect=2)
    assert "#1 queued again" in cli("outbox", "--retry", "1")
    assert "1 sent" in cli("outbox", "--flush")
    sink.answer("EOM", "554 5.7.1 no thanks")
    cli("send", str(f), expect=3)
    assert "discarded #2" in cli("outbox", "--discard", "2")
    assert cli.json("outbox") == [] and len(sink.messages) == 1


def test_ctrl_c_in_the_undo_window_takes_it_back(tuimail_env, dovecot, sink, tmp_path):
    user = dovecot.add_user()
    path = tuimail_env.write_config(config(user, sink.port, undo=30))
    f = tmp_path / "msg.eml"
    f.write_bytes(MESSAGE)
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    proc = subprocess.Popen([sys.executable, "-m", "tuimail", "--config", str(path), "send", str(f)], env=env,
                            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert proc.stderr is not None
    line = proc.stderr.readline()
    assert b"sending in 30 s" in line
    proc.send_signal(signal.SIGINT)
    _out, err = proc.communicate(timeout=30)
    assert proc.returncode == 130 and b"taken back" in err
    time.sleep(0.2)
    assert sink.transcripts == []
    out = subprocess.run([sys.executable, "-m", "tuimail", "--config", str(path), "outbox"], env=env, cwd=ROOT,
                         capture_output=True, timeout=60)
    assert b"the outbox is empty" in out.stdout


def test_outbox_lists_every_account(tuimail_env, dovecot, capsys, tmp_path):
    one, two = dovecot.add_user(), dovecot.add_user()
    port = free_port()  # offline
    text = "\n".join(config(u, port).replace("accounts.test", f"accounts.{n}") for n, u in (("one", one), ("two", two)))
    cli = Cli(tuimail_env.write_config(text), capsys)
    f = tmp_path / "msg.eml"
    f.write_bytes(MESSAGE)
    assert "queued as #1" in cli("--offline", "send", "--account", "two", str(f))
    cli("--offline", "send", str(f), expect=2)
    assert "several accounts" in cli.last_err
    assert [(e["account"], e["id"]) for e in cli.json("outbox")] == [("two", 1)]
    out = cli("outbox")
    assert "one: the outbox is empty" in out and "two #1" in out


def test_send_with_a_refused_recipient_says_so(tuimail_env, dovecot, sink, capsys, tmp_path):
    user = dovecot.add_user()
    cli = Cli(tuimail_env.write_config(config(user, sink.port)), capsys)
    sink.rcpt_answers["carol@example.net"] = "550 5.1.1 no such user"
    f = tmp_path / "msg.eml"
    f.write_bytes(MESSAGE)
    cli("send", str(f), expect=3)
    assert "sent to 1; refused for carol@example.net: 550 5.1.1 no such user" in cli.last_err
    assert cli.last_err.count("\n") == 1
    (e,) = cli.json("outbox")
    assert e["state"] == "failed" and e["to"] == ["carol@example.net"] and e["accepted"] == ["bob@example.net"]
    assert sent_count(user) == 1


def test_outbox_lists_a_postponed_message_and_flush_stores_it_in_drafts(tuimail_env, dovecot, sink, capsys):
    from tuimail.backends.send import Sender
    from tuimail.config.load import load_config

    user = dovecot.add_user()
    path = tuimail_env.write_config(config(user, sink.port))
    cli = Cli(path, capsys)
    cfg = load_config(path)
    Sender(cfg, cfg.account("test")).postpone(MESSAGE.replace(b"\n", b"\r\n"), "Drafts")
    out = cli("outbox")
    assert "P1" in out and "postponed" in out and "from the command line" in out and "Drafts" in out
    (e,) = cli.json("outbox")
    assert e["state"] == "postponed" and e["folder"] == "Drafts"
    assert "1 postponed to Drafts" in cli("outbox", "--flush")
    assert cli.json("outbox") == [] and sink.messages == []
    with user.client("Drafts") as c:
        assert len(c.search("DRAFT")) == 1
