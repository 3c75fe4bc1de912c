"""The headless CLI end to end: read, exit codes, several accounts, one-line errors."""

from __future__ import annotations

import subprocess
import sys

import pytest

from .helpers import Cli, msg
from tests.support.cyrus import IMAP_SERVERS, imap_user

HTML = (b"From: Web <w@example.org>\r\nSubject: html only\r\nMessage-ID: <h1@x>\r\nMIME-Version: 1.0\r\n"
        b"Content-Type: text/html; charset=utf-8\r\n\r\n<html><body><p>Hello <b>there</b>, see "
        b"<a href=\"https://real.example/target\">our site</a>.</p><img src=\"https://t.example/p.gif\" "
        b"width=1 height=1></body></html>\r\n")

ATTACH = (b"From: A <a@example.org>\r\nSubject: with attachment\r\nMessage-ID: <a1@x>\r\nMIME-Version: 1.0\r\n"
          b"Content-Type: multipart/mixed; boundary=BB\r\n\r\n--BB\r\nContent-Type: text/plain\r\n\r\n"
          b"the text part\r\n--BB\r\nContent-Type: application/pdf; name=doc.pdf\r\n"
          b"Content-Disposition: attachment; filename=doc.pdf\r\nContent-Transfer-Encoding: base64\r\n\r\n"
          + b"QUJDRA==\r\n" * 30000 + b"--BB--\r\n")


@pytest.fixture(params=IMAP_SERVERS)
def mailuser(request):
    """Every test here runs against Dovecot and against Cyrus IMAP."""
    return imap_user(request)


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
    assert cli("flag", "INBOX", "1", "+Seen", "+$Work").split() == ["seen", "$Work"]
    cli("flag", "INBOX", "1", "+\\Answered")  # the IMAP spelling is taken too
    assert cli("flag", "INBOX", "1").split() == ["seen", "answered", "$Work"]


def test_an_account_kind_without_a_backend_is_a_config_error(tuimail_env, capsys, monkeypatch):
    """issue 10: pop3 was accepted and then ignored. A kind without a backend (a made-up "nntp"
    here: pop3 has one now) stops every command, the app included, at the config with one line
    naming the key and the kinds this tuimail has; nothing is written."""
    from tuimail.backends.registry import implemented_kinds
    from tuimail.config import validate
    monkeypatch.setattr(validate, "KINDS", (*validate.KINDS, "nntp"))
    text = ('[accounts.test]\nkind = "imap"\nhost = "127.0.0.1"\nsecurity = "none"\nusername = "me"\n'
            'password = "x"\n') + '\n[accounts.home]\nkind = "nntp"\nhost = "news.example.org"\nusername = "me"\n'
    path = tuimail_env.write_config(text)
    cli = Cli(path, capsys)
    for args in (("folders",), ("sync",), ("--account", "test", "list", "INBOX"), ()):
        cli(*args, expect=2)
        assert cli.last_err == (f'tuimail: {path}: accounts.home.kind = "nntp" is not available yet'
                                f" (this tuimail has: {', '.join(implemented_kinds())})\n"), cli.last_err
    assert not (tuimail_env.data_home / "tuimail").exists()


def test_no_traceback_from_the_real_entry_point(tuimail_env, tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text("[accounts.x\n")
    p = subprocess.run([sys.executable, "-m", "tuimail", "--config", str(bad), "folders"],
                       capture_output=True, text=True, timeout=60)
    assert p.returncode == 2 and "Traceback" not in p.stderr and p.stderr.count("\n") == 1
    p = subprocess.run([sys.executable, "-m", "tuimail", "--version"], capture_output=True, text=True, timeout=60)
    assert p.returncode == 0 and "tuimail" in p.stdout


def test_list_inbox_any_case_unknown_uid_and_queued_flag(tuimail_env, mailuser, capsys):
    """issue 11.7: `list inbox` finds INBOX; a uid that never existed is "no message N in FOLDER"
    (exit 2), not "no longer on the server"; `flag` says the change waits for the next sync."""
    mailuser.deliver("INBOX", msg(1, body="hello\r\n"))
    cli = Cli(tuimail_env.write_config(mailuser.config_toml()), capsys)
    cli("sync", "inbox")
    assert "message 1" in cli("list", "inbox")
    assert "hello" in cli("read", "Inbox", "1")
    cli("read", "INBOX", "99", expect=2)
    assert "no message 99 in 'INBOX'" in cli.last_err and "no longer" not in cli.last_err
    assert cli.last_err.count("\n") == 1
    assert cli("flag", "inbox", "1", "+flagged").split() == ["flagged"]
    assert "queued" in cli.last_err and "next sync" in cli.last_err
    cli("flag", "INBOX", "1", "+flagged")
    assert "queued" not in cli.last_err  # nothing changed, nothing queued


def test_subcommand_help_documents_options_and_defaults(tuimail_env, capsys):
    from tuimail import paths
    from tuimail.cli.main import main

    def help_of(*args):
        assert main([*args, "--help"]) == 0
        return " ".join(capsys.readouterr().out.split())

    assert str(paths.default_config_path()) in help_of().replace(" ", "")  # argparse wraps at "-"
    out = help_of("list")
    assert str(paths.default_config_path()) in out.replace(" ", "")  # the options before COMMAND too
    assert "--limit N" in out and "default: 50" in out and "--json" in out
    out = help_of("flag")
    assert all(n in out for n in ("seen", "flagged", "answered", "deleted", "draft")) and "next sync" in out
    assert "every folder" in help_of("sync") and "--offline" in help_of("read")


def test_demo_subcommands_show_the_demo_mail(tuimail_env, capsys):
    """`tuimail --demo list|folders|read` sync the demo first (each run starts an empty store)."""
    from tuimail.cli.main import main

    assert main(["--demo", "list", "inbox", "--limit", "3"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 3
    newest = lines[0].split()[0]
    assert main(["--demo", "read", "INBOX", newest]) == 0
    assert "Subject:" in capsys.readouterr().out


def test_list_json_has_the_uid_and_the_local_id_read_and_flag_take_either(tuimail_env, mailuser, capsys):
    """issue 10.2: `uid` stays the IMAP uid (what read/flag take); `id` is the local id, which
    read/flag take with --id; `pending --json` names both."""
    for i in range(3):
        mailuser.deliver("INBOX", msg(i, body=f"body {i}\r\n"))
    with mailuser.client("INBOX") as c:  # uids 1..3, then 4..5: the uids no longer start at 1
        c.delete_messages(c.search("ALL")[:2])
        c.expunge()
    for i in range(3, 5):
        mailuser.deliver("INBOX", msg(i, body=f"body {i}\r\n"))
    cli = Cli(tuimail_env.write_config(mailuser.config_toml()), capsys)
    cli("sync")
    rows = cli.json("list", "INBOX")
    assert [r["uid"] for r in rows] == [5, 4, 3] and [r["subject"] for r in rows] == [f"message {i}" for i in (4, 3, 2)]
    ids = {r["uid"]: r["id"] for r in rows}
    assert len(set(ids.values())) == 3 and all(isinstance(i, int) for i in ids.values())
    assert "body 4" in cli("read", "INBOX", "5") and "body 4" in cli("read", "INBOX", "--id", str(ids[5]))
    assert cli("flag", "INBOX", "--id", str(ids[4]), "+flagged").split() == ["flagged"]
    assert cli("flag", "INBOX", "4").split() == ["flagged"]
    cli("read", "INBOX", "--id", "999", expect=2)
    assert "no message with id 999" in cli.last_err and cli.last_err.count("\n") == 1
    cli("read", "INBOX", expect=2)  # neither a uid nor --id
    [p] = cli.json("pending")
    assert (p["uid"], p["msg_id"], p["add"]) == (4, ids[4], ["flagged"])
    assert {r["uid"]: r["flags"] for r in cli.json("list", "INBOX")}[4] == ["flagged"]
    assert "1 pending actions sent" in cli("sync")
    with mailuser.client("INBOX") as c:
        assert b"\\Flagged" in c.get_flags([4])[4]
    assert {r["uid"]: r["id"] for r in cli.json("list", "INBOX")} == ids  # the local ids survive a resync
