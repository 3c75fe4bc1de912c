"""The headless CLI end to end: read, exit codes, several accounts, one-line errors."""

from __future__ import annotations

import subprocess
import sys

from .helpers import Cli, msg

HTML = (b"From: Web <w@example.org>\r\nSubject: html only\r\nMessage-ID: <h1@x>\r\nMIME-Version: 1.0\r\n"
        b"Content-Type: text/html; charset=utf-8\r\n\r\n<html><body><p>Hello <b>there</b>, see "
        b"<a href=\"https://real.example/target\">our site</a>.</p><img src=\"https://t.example/p.gif\" "
        b"width=1 height=1></body></html>\r\n")

ATTACH = (b"From: A <a@example.org>\r\nSubject: with attachment\r\nMessage-ID: <a1@x>\r\nMIME-Version: 1.0\r\n"
          b"Content-Type: multipart/mixed; boundary=BB\r\n\r\n--BB\r\nContent-Type: text/plain\r\n\r\n"
          b"the text part\r\n--BB\r\nContent-Type: application/pdf; name=doc.pdf\r\n"
          b"Content-Disposition: attachment; filename=doc.pdf\r\nContent-Transfer-Encoding: base64\r\n\r\n"
          + b"QUJDRA==\r\n" * 30000 + b"--BB--\r\n")


def test_read_plain_html_and_attachment(tuimail_env, mailuser, capsys):
    mailuser.deliver("INBOX", msg(1, body="plain body text\r\n"))
    mailuser.deliver("INBOX", HTML)
    mailuser.deliver("INBOX", ATTACH)
    cli = Cli(tuimail_env.write_config(mailuser.config_toml()), capsys)
    cli("sync")
    out = cli("read", "INBOX", "1")
    assert "Subject: message 1" in out and "plain body text" in out
    out = cli("read", "INBOX", "2")
    assert "Hello **there**" in out or "Hello there" in out
    assert "https://real.example/target" in out and "t.example" not in out
    out = cli("read", "INBOX", "3")
    assert "the text part" in out and "doc.pdf" in out
    assert "QUJD" not in out  # the attachment itself is never fetched or printed
    # cached now: works offline
    assert "plain body text" in cli("--offline", "read", "INBOX", "1")


def test_read_uncached_offline_or_unreachable_is_exit_3(tuimail_env, mailuser, capsys, proxy_factory):
    mailuser.deliver("INBOX", msg(1))
    proxy = proxy_factory(mailuser)
    cli = Cli(tuimail_env.write_config(mailuser.config_toml(port=proxy.port)), capsys)
    cli("sync")
    cli("--offline", "read", "INBOX", "1", expect=3)
    assert "not cached" in cli.last_err and cli.last_err.count("\n") == 1
    proxy.refuse_new(True)
    cli("read", "INBOX", "1", expect=3)
    assert "unreachable" in cli.last_err and cli.last_err.count("\n") == 1
    assert cli("list", "INBOX").count("message 1") == 1  # the store still answers


def test_several_accounts(tuimail_env, mailuser, dovecot, capsys):
    other = dovecot.add_user()
    mailuser.deliver("INBOX", msg(1))
    other.deliver("INBOX", msg(2))
    other.deliver("INBOX", msg(3))
    text = mailuser.config_toml(name="one") + "\n" + other.config_toml(name="two")
    cli = Cli(tuimail_env.write_config(text), capsys)
    out = cli("sync")
    assert "one:" in out and "two:" in out
    cli("list", "INBOX", expect=2)
    assert "--account" in cli.last_err
    assert len(cli.json("--account", "two", "list", "INBOX")) == 2
    cli("--account", "three", "list", "INBOX", expect=2)


def test_usage_and_config_errors_are_one_line_exit_2(tuimail_env, mailuser, capsys):
    cli = Cli(tuimail_env.write_config(mailuser.config_toml() + "prot = 1\n"), capsys)
    cli("folders", expect=2)
    assert "prot" in cli.last_err and cli.last_err.count("\n") == 1
    cli = Cli(tuimail_env.write_config(mailuser.config_toml()), capsys)
    cli("list", "Nope", expect=2)
    cli("flag", "INBOX", "1", "+seen", expect=2)  # nothing synced yet: no such folder
    cli("sync")
    mailuser.deliver("INBOX", msg(1))
    cli("sync")
    cli("flag", "INBOX", "1", "+\\Bogus", expect=2)
    cli("flag", "INBOX", "1", "seen", expect=2)
    assert cli("flag", "INBOX", "1", "+Seen", "+$Work").split() == ["$Work", "\\Seen"]


def test_no_traceback_from_the_real_entry_point(tuimail_env, tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text("[accounts.x\n")
    p = subprocess.run([sys.executable, "-m", "tuimail", "--config", str(bad), "folders"],
                       capture_output=True, text=True, timeout=60)
    assert p.returncode == 2 and "Traceback" not in p.stderr and p.stderr.count("\n") == 1
    p = subprocess.run([sys.executable, "-m", "tuimail", "--version"], capture_output=True, text=True, timeout=60)
    assert p.returncode == 0 and "tuimail" in p.stdout
