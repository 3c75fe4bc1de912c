"""[accounts.X.smtp], from, identities and undo_send: parsed, checked with one-line errors, and
turned into protocol/smtp.py's SmtpSettings with the secrets resolved (backends/send.py)."""

from __future__ import annotations

import textwrap

import pytest

from tuimail.backends.send import smtp_settings
from tuimail.config.load import parse_config
from tuimail.errors import ConfigError

BASE = textwrap.dedent("""\
    [accounts.work]
    kind = "imap"
    host = "imap.example.org"
    username = "alice"
    password = "imap-pw"
    """)


def parse(extra: str, tmp_path=None):
    path = (tmp_path / "config.toml") if tmp_path else "config.toml"
    return parse_config(BASE + textwrap.dedent(extra), path).account("work")


def error(extra: str, tmp_path=None) -> str:
    with pytest.raises(ConfigError) as e:
        parse(extra, tmp_path)
    msg = str(e.value)
    assert "\n" not in msg and "imap-pw" not in msg
    return msg


def test_defaults():
    acc = parse("")
    assert acc.smtp == {} and acc.identities == () and acc.undo_send == 5.0


def test_a_full_smtp_table(tmp_path):
    (tmp_path / "ca.pem").write_text("x")
    acc = parse("""\
        from = "Alice <alice@example.org>"
        identities = ["alice@work.example", "Alice Liddell <al@example.net>"]
        undo_send = 10
        [accounts.work.smtp]
        host = "smtp.example.org"
        security = "tls"
        username = "alice@example.org"
        oauth2_token_command = ["get-token", "--smtp"]
        tls_ca_file = "ca.pem"
        save_sent = false
        timeout = 12
        """, tmp_path)
    assert acc.identities == ("alice@work.example", "Alice Liddell <al@example.net>") and acc.undo_send == 10.0
    assert acc.smtp["port"] == 465 and acc.smtp["oauth2_token_command"] == ("get-token", "--smtp")
    assert acc.smtp["tls_ca_file"] == tmp_path / "ca.pem" and acc.smtp["save_sent"] is False
    assert acc.smtp["timeout"] == 12.0


@pytest.mark.parametrize("security, port", [("starttls", 587), ("tls", 465), ("none", 25)])
def test_the_port_follows_security(security, port):
    acc = parse(f'[accounts.work.smtp]\nhost = "localhost"\nsecurity = "{security}"\n')
    assert acc.smtp["port"] == port


@pytest.mark.parametrize("extra, key", [
    ('identities = "a@example.org"', "accounts.work.identities"),
    ('identities = ["a@example.org", "not an address"]', "accounts.work.identities[1]"),
    ('from = "nobody"', "accounts.work.from"),
    ('undo_send = -1', "accounts.work.undo_send"),
    ('undo_send = 301', "accounts.work.undo_send"),
    ('undo_send = "5"', "accounts.work.undo_send"),
    ('[accounts.work.smtp]\npassword = "a"\npassword_command = "b"', "accounts.work.smtp"),
    ('[accounts.work.smtp]\nsave_sent = "no"', "accounts.work.smtp.save_sent"),
    ('[accounts.work.smtp]\nallow_insecure = 1', "accounts.work.smtp.allow_insecure"),
    ('[accounts.work.smtp]\ntls_fingerprint = "ab"', "accounts.work.smtp.tls_fingerprint"),
    ('[accounts.work.smtp]\nsecurity = "none"\ntls_fingerprint = "' + "ab" * 32 + '"',
     "accounts.work.smtp.tls_fingerprint"),
    ('[accounts.work.smtp]\nfrom = "x"', "accounts.work.smtp.from"),
    ('[accounts.work.smtp]\nsave_snet = true', "accounts.work.smtp.save_snet"),
])
def test_one_line_errors_name_the_key(extra, key):
    assert f": {key}: " in error(extra)


def test_unencrypted_smtp_needs_allow_insecure():
    msg = error('[accounts.work.smtp]\nhost = "smtp.example.org"\nsecurity = "none"\n')
    assert "accounts.work.smtp.security" in msg and "allow_insecure" in msg
    acc = parse('[accounts.work.smtp]\nhost = "smtp.example.org"\nsecurity = "none"\nallow_insecure = true\n')
    assert smtp_settings(acc).allow_insecure is True


def test_settings_inherit_the_accounts_credentials():
    acc = parse('[accounts.work.smtp]\nhost = "smtp.example.org"\n')
    s = smtp_settings(acc)
    assert (s.host, s.port, s.security, s.username, s.password, s.oauth2_token) == \
        ("smtp.example.org", 587, "starttls", "alice", "imap-pw", None)
    assert s.key == "accounts.work.smtp"


def test_settings_with_their_own_secret_commands():
    acc = parse('[accounts.work.smtp]\nusername = "a2"\npassword_command = ["printf", "smtp-pw\\\\nignored"]\n')
    s = smtp_settings(acc)
    assert s.host == "imap.example.org" and s.username == "a2" and s.password == "smtp-pw"
    acc = parse('[accounts.work.smtp]\noauth2_token_command = "printf tok-1"\n')
    s = smtp_settings(acc)
    assert s.oauth2_token == "tok-1" and s.password is None
    acc = parse('[accounts.work.smtp]\npassword_command = "false"\n')
    with pytest.raises(ConfigError, match=r"accounts\.work\.smtp\.password_command: .*exit status 1"):
        smtp_settings(acc)


def test_an_empty_username_sends_without_auth():
    acc = parse('[accounts.work.smtp]\nhost = "127.0.0.1"\nsecurity = "none"\nusername = ""\n')
    s = smtp_settings(acc)
    assert s.username is None and s.password is None and s.port == 25
