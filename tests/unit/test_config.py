"""Config loading/validation (tuimail.config.load) and file locations (tuimail.paths)."""

from __future__ import annotations

import json
import stat
import sys
import textwrap
import traceback
from pathlib import Path

import pytest

from tuimail.config import load as config_mod
from tuimail import paths
from tuimail.config.load import Account, Config, load_config, parse_config, resolve_oauth2_token, resolve_password
from tuimail.errors import ConfigError, UsageError

MINIMAL = """\
[accounts.work]
kind = "imap"
host = "127.0.0.1"
port = 10143
security = "none"
username = "alice"
password = "secret"
"""


def write(tmp_path: Path, text: str, name: str = "config.toml") -> Path:
    p = tmp_path / name
    p.write_text(textwrap.dedent(text), encoding="utf-8")
    return p


def account_toml(name: str = "work", **fields: str) -> str:
    """An [accounts.NAME] table; each value is TOML source text."""
    base = {"kind": '"imap"', "host": '"mail.example.org"', "username": '"alice"',
            "password": '"secret"'}
    base.update(fields)
    lines = [f"[accounts.{name}]"]
    lines += [f"{k} = {v}" for k, v in base.items() if v is not None]
    return "\n".join(lines) + "\n"


def load_error(tmp_path: Path, text: str) -> str:
    p = write(tmp_path, text)
    with pytest.raises(ConfigError) as info:
        load_config(p)
    msg = str(info.value)
    assert "\n" not in msg
    assert msg.startswith(f"{p}: "), msg
    return msg


# --- the minimal account and defaults ---------------------------------------------------------


def test_minimal_account_loads(tmp_path):
    p = write(tmp_path, MINIMAL)
    cfg = load_config(p)
    assert isinstance(cfg, Config)
    assert cfg.path == p
    acc = cfg.account(None)
    assert acc == cfg.accounts["work"]
    assert (acc.name, acc.kind, acc.host, acc.port, acc.security) == (
        "work", "imap", "127.0.0.1", 10143, "none")
    assert acc.username == "alice"
    assert acc.password == "secret"
    assert acc.password_command is None and acc.oauth2_token_command is None
    assert acc.sync_mode == "auto" and acc.allow_insecure is False and acc.idle is True
    assert acc.roles == {} and acc.smtp == {} and acc.folders is None and acc.from_address is None
    assert acc.tls_ca_file is None and acc.tls_fingerprint is None
    assert cfg.ui.theme == "dark" and cfg.ui.mark_read_delay == 0.0 and cfg.ui.preview == "right"
    assert cfg.ui.prefer_html is False and cfg.ui.threaded is False and cfg.ui.keymap == "default"
    assert cfg.keys == {} and cfg.mailcap_path is None
    assert resolve_password(acc) == "secret"


def test_path_may_be_a_string(tmp_path):
    p = write(tmp_path, MINIMAL)
    assert load_config(str(p)).accounts["work"].port == 10143


@pytest.mark.parametrize(
    "security, port",
    [
        ("tls", 993),
        ("starttls", 143),
        (None, 993),
    ],
)
def test_default_ports(tmp_path, security, port):
    sec = f'"{security}"' if security else None
    p = write(tmp_path, account_toml(kind='"imap"', security=sec))
    acc = load_config(p).accounts["work"]
    assert acc.port == port
    assert acc.security == (security or "tls")


def test_default_ports_of_the_kinds_to_come():
    from tuimail.config.model import default_port
    assert [default_port("pop3", s) for s in ("tls", "starttls", "none")] == [995, 110, 110]


def test_default_port_none_security_on_loopback(tmp_path):
    p = write(tmp_path, account_toml(host='"localhost"', security='"none"'))
    assert load_config(p).accounts["work"].port == 143
    p = write(tmp_path, account_toml(host='"::1"', security='"none"'))
    assert load_config(p).accounts["work"].port == 143


def test_a_kind_without_a_backend_is_refused(tmp_path, monkeypatch):
    """A kind the config knows but no backend implements (a made-up "nntp" here: pop3 has one now):
    one line naming the file, the key and the kinds this tuimail has."""
    from tuimail.backends.registry import implemented_kinds
    from tuimail.config import validate
    monkeypatch.setattr(validate, "KINDS", (*validate.KINDS, "nntp"))
    have = ", ".join(implemented_kinds())
    with pytest.raises(ConfigError) as info:
        parse_config(account_toml("home", kind='"nntp"', host='"news.example.org"'), "config.toml")
    assert str(info.value) == \
        f'config.toml: accounts.home.kind = "nntp" is not available yet (this tuimail has: {have})'
    msg = load_error(tmp_path, account_toml("work") + account_toml("home", kind='"nntp"'))
    assert msg.endswith(f'accounts.home.kind = "nntp" is not available yet (this tuimail has: {have})')
    # a kind nobody plans is still the usual choice error
    assert "accounts.home.kind" in load_error(tmp_path, account_toml("home", kind='"gopher"'))


def test_pop3_accounts_and_their_keys(tmp_path):
    acc = parse_config(account_toml("home", kind='"pop3"', security='"tls"'), "c.toml").account("home")
    assert (acc.kind, acc.port, acc.mode, acc.keep_days, acc.headers_first, acc.delete_on_server) == \
        ("pop3", 995, "keep", None, False, False)
    acc = parse_config(account_toml("home", kind='"pop3"', security='"starttls"', mode='"keep"', keep_days="14",
                                    headers_first="true", delete_on_server="true", folders='["Archive"]'),
                       "c.toml").account("home")
    assert (acc.port, acc.keep_days, acc.headers_first, acc.delete_on_server, acc.folders) == \
        (110, 14.0, True, True, ("Archive",))
    assert parse_config(account_toml("home", kind='"pop3"', mode='"delete"'), "c.toml").account("home").mode == "delete"
    bad = [
        (dict(mode='"drain"'), "accounts.home.mode"),
        (dict(keep_days='"two weeks"'), "accounts.home.keep_days: expected a number of days"),
        (dict(keep_days="-1"), "accounts.home.keep_days: expected a number of days"),
        (dict(headers_first='"yes"'), "accounts.home.headers_first"),
        (dict(mode='"delete"', keep_days="3"), 'accounts.home.keep_days: has no effect with mode = "delete"'),
        (dict(mode='"delete"', delete_on_server="true"), "accounts.home.delete_on_server: has no effect"),
    ]
    for fields, want in bad:
        msg = load_error(tmp_path, account_toml("home", kind='"pop3"', **fields))
        assert want in msg, msg
    # the POP3 keys mean nothing to an IMAP account
    msg = load_error(tmp_path, account_toml("work", mode='"keep"'))
    assert 'accounts.work.mode: is for POP3 accounts only (kind = "pop3")' in msg


def test_validating_a_config_loads_no_backend():
    """The validator asks the registry which kinds exist; the backends (imapclient, ssl, the engine)
    are imported when a service is made, not to read the config."""
    import os
    import subprocess
    code = ("import sys\nfrom tuimail.config.load import parse_config\n"
            f"parse_config({account_toml()!r})\n"
            "print(sorted(m for m in sys.modules if m.startswith(('imapclient', 'tuimail.backends.imap'))))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])})
    assert out.stdout.strip() == "[]"


def test_full_account(tmp_path):
    ca = tmp_path / "ca.pem"
    ca.write_text("dummy")
    fp = ":".join(["AB"] * 32)
    p = write(tmp_path, f"""\
        [accounts.work]
        kind = "imap"
        host = "mail.example.org"
        port = 1993
        username = "alice@example.org"
        password_command = ["pass", "show", "mail/work"]
        tls_ca_file = "ca.pem"
        tls_fingerprint = "{fp}"
        sync_mode = "condstore"
        from = "Alice <alice@example.org>"
        folders = ["INBOX", "Lists/python"]
        idle = false

        [accounts.work.roles]
        sent = "Sent Items"
        trash = "Deleted"

        [accounts.work.smtp]
        host = "smtp.example.org"
        port = 587
        security = "starttls"
        username = "alice@example.org"
        password_command = "pass show 'mail/work smtp'"
        from = "alice@example.org"

        [ui]
        theme = "light"
        mark_read_delay = 2
        preview = "below"
        keymap = "mutt"
        date_format = "%d %b"
        prefer_html = true
        threaded = true

        [keys]
        quit = "q"
        archive = ["a", "A"]

        [mailcap]
        path = "ca.pem"
        """)
    cfg = load_config(p)
    acc = cfg.account("work")
    assert acc.port == 1993 and acc.security == "tls"
    assert acc.password is None
    assert acc.password_command == ("pass", "show", "mail/work")
    assert acc.tls_ca_file == tmp_path / "ca.pem"  # relative to the config file
    assert acc.tls_fingerprint == "ab" * 32
    assert acc.sync_mode == "condstore"
    assert acc.from_address == "Alice <alice@example.org>"
    assert acc.folders == ("INBOX", "Lists/python")
    assert acc.idle is False
    assert acc.roles == {"sent": "Sent Items", "trash": "Deleted"}
    assert acc.smtp["password_command"] == ("pass", "show", "mail/work smtp")
    assert acc.smtp["port"] == 587 and acc.smtp["from"] == "alice@example.org"
    assert cfg.ui.theme == "light" and cfg.ui.mark_read_delay == 2.0
    assert cfg.ui.preview == "below" and cfg.ui.keymap == "mutt" and cfg.ui.date_format == "%d %b"
    assert cfg.ui.prefer_html is True and cfg.ui.threaded is True
    assert cfg.keys == {"quit": ("q",), "archive": ("a", "A")}
    assert cfg.mailcap_path == tmp_path / "ca.pem"


@pytest.mark.parametrize("value, expected", [('"never"', None), ("-1", None), ("0.5", 0.5)])
def test_mark_read_delay(tmp_path, value, expected):
    p = write(tmp_path, MINIMAL + f"[ui]\nmark_read_delay = {value}\n")
    assert load_config(p).ui.mark_read_delay == expected


def test_config_is_frozen(tmp_path):
    cfg = load_config(write(tmp_path, MINIMAL))
    with pytest.raises(AttributeError):
        cfg.path = tmp_path  # type: ignore[misc]
    with pytest.raises(AttributeError):
        cfg.accounts["work"].host = "x"  # type: ignore[misc]


# --- error paths: one line, naming the key and the file --------------------------------------


def test_missing_file(tmp_path):
    p = tmp_path / "nope.toml"
    with pytest.raises(ConfigError) as info:
        load_config(p)
    assert str(info.value) == (
        f"config file not found: {p} (create it; see README 'Configuration')")


def test_default_path_used_when_none(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "cfg"))
    with pytest.raises(ConfigError) as info:
        load_config()
    assert str(tmp_path / "cfg" / "tuimail" / "config.toml") in str(info.value)
    (tmp_path / "cfg" / "tuimail").mkdir(parents=True)
    (tmp_path / "cfg" / "tuimail" / "config.toml").write_text(MINIMAL)
    assert load_config().accounts["work"].port == 10143


def test_toml_syntax_error(tmp_path):
    msg = load_error(tmp_path, MINIMAL + "oops = \n")
    assert "line 8" in msg and "column" in msg


def test_relative_path_shown_as_given(tmp_path, monkeypatch):
    write(tmp_path, MINIMAL.replace("prot", "port").replace("port =", "prot ="))
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConfigError) as info:
        load_config("config.toml")
    assert str(info.value) == 'config.toml: accounts.work.prot: unknown key (did you mean "port"?)'


def test_unknown_key_suggestion(tmp_path):
    msg = load_error(tmp_path, MINIMAL.replace("port =", "prot ="))
    assert msg.endswith('accounts.work.prot: unknown key (did you mean "port"?)')


@pytest.mark.parametrize(
    "text, key",
    [
        (MINIMAL + "[uii]\ntheme = 'x'\n", "uii"),
        (MINIMAL + "[ui]\nthem = 'x'\n", "ui.them"),
        (MINIMAL + "[accounts.work.roles]\nsend = 'Sent'\n", "accounts.work.roles.send"),
        (MINIMAL + "[accounts.work.smtp]\nhots = 'x'\n", "accounts.work.smtp.hots"),
        (MINIMAL + "[mailcap]\npaht = 'x'\n", "mailcap.paht"),
    ],
)
def test_unknown_keys_everywhere(tmp_path, text, key):
    msg = load_error(tmp_path, text)
    assert f": {key}: unknown key" in msg


def test_wrong_type_message(tmp_path):
    p = write(tmp_path, MINIMAL.replace("10143", '"abc"'))
    with pytest.raises(ConfigError) as info:
        load_config(p)
    assert str(info.value) == f'{p}: accounts.work.port: expected an integer, got "abc"'


@pytest.mark.parametrize(
    "fields, key",
    [
        ({"kind": '"smtp"'}, "accounts.work.kind"),
        ({"kind": None}, "accounts.work.kind"),
        ({"host": None}, "accounts.work.host"),
        ({"host": '""'}, "accounts.work.host"),
        ({"host": '"mail example"'}, "accounts.work.host"),
        ({"username": "3"}, "accounts.work.username"),
        ({"port": "true"}, "accounts.work.port"),
        ({"port": "70000"}, "accounts.work.port"),
        ({"security": '"ssl"'}, "accounts.work.security"),
        ({"sync_mode": '"fast"'}, "accounts.work.sync_mode"),
        ({"allow_insecure": '"yes"'}, "accounts.work.allow_insecure"),
        ({"idle": "1"}, "accounts.work.idle"),
        ({"from": "[]"}, "accounts.work.from"),
        ({"folders": '"INBOX"'}, "accounts.work.folders"),
        ({"folders": '["INBOX", 3]'}, "accounts.work.folders[1]"),
        ({"roles": '"x"'}, "accounts.work.roles"),
        ({"roles": '{sent = 1}'}, "accounts.work.roles.sent"),
        ({"smtp": '"x"'}, "accounts.work.smtp"),
        ({"smtp": '{port = "x"}'}, "accounts.work.smtp.port"),
        ({"smtp": '{security = "ssl"}'}, "accounts.work.smtp.security"),
        ({"smtp": '{password_command = 3}'}, "accounts.work.smtp.password_command"),
        ({"tls_fingerprint": '"abcd"'}, "accounts.work.tls_fingerprint"),
        ({"tls_ca_file": '"missing.pem"'}, "accounts.work.tls_ca_file"),
        ({"password_command": '["x"]'}, "accounts.work"),
        ({"check_interval": '"1m"'}, "accounts.work.check_interval"),
        ({"check_interval": "0"}, "accounts.work.check_interval"),
        ({"password": None, "password_command": '""'}, "accounts.work.password_command"),
        ({"password": None, "password_command": "[]"}, "accounts.work.password_command"),
        ({"password": None, "password_command": '"a \'b"'}, "accounts.work.password_command"),
        ({"password": None, "oauth2_token_command": "{}"}, "accounts.work.oauth2_token_command"),
    ],
)
def test_account_errors_name_key_and_file(tmp_path, fields, key):
    msg = load_error(tmp_path, account_toml(**fields))
    assert f": {key}: " in msg


@pytest.mark.parametrize(
    "text, key",
    [
        ("", "accounts"),
        ("accounts = 3\n", "accounts"),
        ("[accounts]\n", "accounts"),
        ("[accounts]\nwork = 3\n", "accounts.work"),
        ('[accounts."my work"]\n', 'accounts."my work"'),
        ("ui = 3\n" + MINIMAL, "ui"),
        (MINIMAL + "[ui]\ntheme = 3\n", "ui.theme"),
        (MINIMAL + "[ui]\nmark_read_delay = 'soon'\n", "ui.mark_read_delay"),
        (MINIMAL + "[ui]\nmark_read_delay = nan\n", "ui.mark_read_delay"),
        (MINIMAL + "[ui]\npreview = 'left'\n", "ui.preview"),
        (MINIMAL + "[ui]\nkeymap = 'vim'\n", "ui.keymap"),
        (MINIMAL + "[ui]\nprefer_html = 'no'\n", "ui.prefer_html"),
        (MINIMAL + "[ui]\nthreaded = 0\n", "ui.threaded"),
        (MINIMAL + "[keys]\nquit = 3\n", "keys.quit"),
        (MINIMAL + "[keys]\nquit = ['q', 3]\n", "keys.quit[1]"),
        (MINIMAL + "[keys]\nquit = ''\n", "keys.quit"),
        (MINIMAL + "[mailcap]\npath = 'nope'\n", "mailcap.path"),
    ],
)
def test_other_errors_name_key_and_file(tmp_path, text, key):
    msg = load_error(tmp_path, text)
    assert f": {key}: " in msg


def test_credentials_none_loads_and_resolving_names_the_keys(tmp_path):
    """No credentials is a valid config (the app asks for the password); whoever needs the
    password gets a one-line error naming the keys to set."""
    from tuimail.config.load import resolve_password
    from tuimail.errors import MissingSecret
    acc = load_config(write(tmp_path, account_toml(password=None))).account("work")
    assert acc.password is None and acc.password_command is None and acc.oauth2_token_command is None
    with pytest.raises(MissingSecret) as info:
        resolve_password(acc)
    assert str(info.value).startswith("accounts.work: no password configured: set password, password_command"
                                      " or oauth2_token_command")


def test_check_interval_and_new_mail_ui_keys(tmp_path):
    cfg = load_config(write(tmp_path, account_toml(check_interval="15") + "[ui]\nbell_on_new_mail = true\n"
                            "title = false\n"))
    assert cfg.account("work").check_interval == 15.0
    assert cfg.ui.bell_on_new_mail is True and cfg.ui.title is False
    default = load_config(write(tmp_path, account_toml(), "b.toml"))
    assert default.account("work").check_interval <= 60
    assert default.ui.bell_on_new_mail is False and default.ui.title is True


def test_credentials_several(tmp_path):
    msg = load_error(tmp_path, account_toml(password_command='["x"]', oauth2_token_command='["y"]'))
    assert "accounts.work: set only one of" in msg


def test_wrong_type_password_not_echoed(tmp_path):
    msg = load_error(tmp_path, account_toml(password="123456789"))
    assert "123456789" not in msg
    assert "accounts.work.password" in msg


def test_multiline_value_stays_one_line(tmp_path):
    msg = load_error(tmp_path, account_toml(kind='"""im\nap"""'))
    assert "accounts.work.kind" in msg


def test_not_utf8(tmp_path):
    p = tmp_path / "config.toml"
    p.write_bytes(b"[accounts.w\xff]\n")
    with pytest.raises(ConfigError) as info:
        load_config(p)
    assert str(p) in str(info.value) and "\n" not in str(info.value)


# --- insecure connections ---------------------------------------------------------------------


def test_insecure_refused_for_remote_host(tmp_path):
    msg = load_error(tmp_path, account_toml(security='"none"'))
    assert ": accounts.work.security: " in msg
    assert "allow_insecure" in msg


def test_insecure_accepted_with_allow_insecure(tmp_path):
    p = write(tmp_path, account_toml(security='"none"', allow_insecure="true"))
    acc = load_config(p).accounts["work"]
    assert acc.security == "none" and acc.allow_insecure is True and acc.port == 143


@pytest.mark.parametrize(
    "host", ["127.0.0.1", "127.5.6.7", "::1", "localhost", "LOCALHOST", "[::1]", "::ffff:127.0.0.1"])
def test_insecure_accepted_on_loopback(tmp_path, host):
    p = write(tmp_path, account_toml(host=f'"{host}"', security='"none"'))
    assert load_config(p).accounts["work"].security == "none"


@pytest.mark.parametrize("host", ["128.0.0.1", "10.0.0.1", "localhost.example.org", "::2"])
def test_insecure_refused_near_loopback(tmp_path, host):
    msg = load_error(tmp_path, account_toml(host=f'"{host}"', security='"none"'))
    assert "accounts.work.security" in msg


def test_insecure_smtp_refused(tmp_path):
    text = MINIMAL + "[accounts.work.smtp]\nhost = 'smtp.example.org'\nsecurity = 'none'\n"
    msg = load_error(tmp_path, text)
    assert "accounts.work.smtp.security" in msg


def test_fingerprint_with_security_none_refused(tmp_path):
    msg = load_error(tmp_path, MINIMAL + f'tls_fingerprint = "{"a" * 64}"\n')
    assert "accounts.work.tls_fingerprint" in msg


# --- password_command / oauth2_token_command ---------------------------------------------------


def test_password_command_as_list(tmp_path):
    cmd = [sys.executable, "-c", "print('s3cret')"]
    toml_list = "[" + ", ".join(f"'{a}'" if "'" not in a else f'"{a}"' for a in cmd) + "]"
    p = write(tmp_path, account_toml(password=None, password_command=toml_list))
    acc = load_config(p).accounts["work"]
    assert acc.password_command == tuple(cmd)
    assert acc.password is None
    assert resolve_password(acc) == "s3cret"


def test_password_command_as_string_with_quotes(tmp_path):
    # A string is split like a shell would (shlex), but no shell runs it.
    cmdline = f"'{sys.executable}' -c \"print('s3cret'); print('second line')\""
    p = write(tmp_path, account_toml(password=None, password_command=json.dumps(cmdline)))
    acc = load_config(p).accounts["work"]
    assert acc.password_command == (
        sys.executable, "-c", "print('s3cret'); print('second line')")
    assert resolve_password(acc) == "s3cret"  # first line only


def test_password_keeps_spaces_strips_newline():
    acc = Account("w", "imap", "h", 993, "tls", "u",
                  password_command=(sys.executable, "-c", "print(' pw ')"))
    assert resolve_password(acc) == " pw "


def _cmd_account(code: str, which: str = "password_command") -> Account:
    return Account("w", "imap", "h", 993, "tls", "u", **{which: (sys.executable, "-c", code)})


@pytest.mark.parametrize(
    "code, what",
    [
        ("import sys; print('LEAKED-OUTPUT'); sys.stderr.write('LEAKED-ERR'); sys.exit(3)",
         "status 3"),
        ("import sys; sys.stdout.write('')", "printed nothing"),
        ("print(); print('LEAKED-OUTPUT')", "empty first line"),
        ("import os, signal; print('LEAKED-OUTPUT', flush=True); os.kill(os.getpid(), signal.SIGKILL)",
         "signal"),
        ("import sys; sys.stdout.buffer.write(b'\\xffLEAKED-OUTPUT')", "UTF-8"),
    ],
)
def test_failing_password_command_hides_output(code, what):
    with pytest.raises(ConfigError) as info:
        resolve_password(_cmd_account(code))
    msg = str(info.value)
    assert msg.startswith("accounts.w.password_command: ")
    assert what in msg
    assert "LEAKED" not in msg and "\n" not in msg
    assert "LEAKED" not in "".join(traceback.format_exception(info.value))


def test_password_command_missing_binary():
    acc = Account("w", "imap", "h", 993, "tls", "u",
                  password_command=("/nonexistent/tuimail-pass-helper",))
    with pytest.raises(ConfigError) as info:
        resolve_password(acc)
    assert str(info.value).startswith("accounts.w.password_command: command not found")


def test_password_command_timeout(monkeypatch):
    monkeypatch.setattr(config_mod, "SECRET_COMMAND_TIMEOUT", 0.5)
    acc = _cmd_account("import time; print('LEAKED-OUTPUT', flush=True); time.sleep(10)")
    with pytest.raises(ConfigError) as info:
        resolve_password(acc)
    msg = str(info.value)
    assert msg.startswith("accounts.w.password_command: ") and "0.5 seconds" in msg
    assert "LEAKED" not in msg
    assert "LEAKED" not in "".join(traceback.format_exception(info.value))


def test_password_command_gets_no_stdin():
    acc = _cmd_account("import sys; print(repr(sys.stdin.read()))")
    assert resolve_password(acc) == "''"


def test_oauth2_token_command(tmp_path):
    p = write(tmp_path, account_toml(
        password=None, oauth2_token_command=json.dumps(f"'{sys.executable}' -c \"print('tok')\"")))
    acc = load_config(p).accounts["work"]
    assert acc.oauth2_token_command is not None
    assert resolve_oauth2_token(acc) == "tok"
    with pytest.raises(ConfigError) as info:
        resolve_password(acc)
    assert str(info.value).startswith("accounts.work: ")


def test_failing_oauth2_command_names_key():
    with pytest.raises(ConfigError) as info:
        resolve_oauth2_token(_cmd_account("print('LEAKED'); raise SystemExit(1)",
                                          "oauth2_token_command"))
    assert str(info.value).startswith("accounts.w.oauth2_token_command: ")
    assert "LEAKED" not in str(info.value)


def test_oauth2_without_command():
    acc = Account("w", "imap", "h", 993, "tls", "u", password="p")
    with pytest.raises(ConfigError):
        resolve_oauth2_token(acc)


# --- several accounts ------------------------------------------------------------------------


def test_several_accounts(tmp_path):
    p = write(tmp_path, account_toml("zeta") + account_toml("alpha", security='"starttls"'))
    cfg = load_config(p)
    assert list(cfg.accounts) == ["zeta", "alpha"]  # file order
    assert cfg.account("alpha").port == 143
    assert cfg.account("zeta").port == 993
    with pytest.raises(UsageError) as info:
        cfg.account(None)
    assert str(info.value) == "several accounts configured (zeta, alpha): choose one with --account"
    with pytest.raises(UsageError) as info:
        cfg.account("beta")
    assert "beta" in str(info.value) and "zeta, alpha" in str(info.value)


def test_account_names(tmp_path):
    p = write(tmp_path, account_toml('"a-b_c.1"'))
    assert list(load_config(p).accounts) == ["a-b_c.1"]
    msg = load_error(tmp_path, '[accounts."../x"]\nkind = "imap"\n')
    assert 'accounts."../x": invalid account name' in msg


# --- repr ------------------------------------------------------------------------------------


def test_repr_has_no_password(tmp_path):
    text = account_toml(password='"hunter2-pw"') + "[accounts.work.smtp]\npassword = 'smtp-pw-9'\n"
    cfg = load_config(write(tmp_path, text))
    acc = cfg.accounts["work"]
    for r in (repr(acc), repr(cfg), str(acc)):
        assert "hunter2-pw" not in r and "smtp-pw-9" not in r
    assert "mail.example.org" in repr(acc)


# --- paths -----------------------------------------------------------------------------------


def test_xdg_env_moves_paths(tmp_path, monkeypatch):
    for var in ("CONFIG", "DATA", "CACHE", "STATE"):
        monkeypatch.setenv(f"XDG_{var}_HOME", str(tmp_path / var.lower()))
    assert paths.config_dir() == tmp_path / "config" / "tuimail"
    assert paths.data_dir() == tmp_path / "data" / "tuimail"
    assert paths.cache_dir() == tmp_path / "cache" / "tuimail"
    assert paths.state_dir() == tmp_path / "state" / "tuimail"
    assert paths.default_config_path() == tmp_path / "config" / "tuimail" / "config.toml"
    assert paths.account_store_path("work") == (
        tmp_path / "data" / "tuimail" / "accounts" / "work.sqlite3")
    assert paths.account_cache_path("work") == (
        tmp_path / "cache" / "tuimail" / "bodies" / "work.sqlite3")
    assert paths.lock_path("work") == tmp_path / "state" / "tuimail" / "work.lock"
    # read at call time, not import time
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "other"))
    assert paths.data_dir() == tmp_path / "other" / "tuimail"
    assert not (tmp_path / "data").exists()  # computing paths creates nothing


@pytest.mark.parametrize("name", ["../x", "a/b", "", "a b"])
def test_paths_refuse_unsafe_names(name):
    for fn in (paths.account_store_path, paths.account_cache_path, paths.lock_path):
        with pytest.raises(ValueError):
            fn(name)


def test_ensure_private_dir(tmp_path):
    target = tmp_path / "a" / "b"
    assert paths.ensure_private_dir(target) == target
    assert stat.S_IMODE(target.stat().st_mode) == 0o700
    assert stat.S_IMODE((tmp_path / "a").stat().st_mode) == 0o700
    paths.ensure_private_dir(str(target))  # idempotent
    existing = tmp_path / "existing"
    existing.mkdir(mode=0o755)
    existing.chmod(0o755)
    paths.ensure_private_dir(existing)
    assert stat.S_IMODE(existing.stat().st_mode) == 0o755  # not changed
    f = tmp_path / "file"
    f.write_text("")
    with pytest.raises(NotADirectoryError):
        paths.ensure_private_dir(f)


def test_parse_config_from_text():
    cfg = parse_config(MINIMAL, "demo.toml")
    assert cfg.account().port == 10143
    with pytest.raises(ConfigError) as info:
        parse_config(account_toml("x", kind="1"), "demo.toml")
    assert str(info.value).startswith("demo.toml: accounts.x.kind: ")


@pytest.mark.parametrize(
    "table, key, words",
    [
        ("flag = 'd'\n", "keys.flag", ['"d"', "delete (global)"]),
        ("sort = 'F'\n", "keys.sort", ['"F"', "flag (global)"]),
        ("cursor_down = ['j', 'n']\n", "keys.cursor_down", ['"n"', "next_unread (list)"]),
        ("flag = 'question_mark'\n", "keys.flag", ['"question_mark"', "help (global)"]),  # "?" by name
        ("flg = 'f'\n", "keys.flg", ["unknown action", '"flag"']),
        ("frobnicate = 'x'\n", "keys.frobnicate", ["unknown action"]),
    ],
)
def test_keys_bound_twice_or_unknown_action_is_a_config_error(tmp_path, table, key, words):
    """issue 11.7: one line naming the key, before the app starts (not a toast in the app)."""
    msg = load_error(tmp_path, MINIMAL + "[keys]\n" + table)
    assert f": {key}: " in msg
    assert all(w in msg for w in words), msg


def test_keys_that_do_not_collide_are_fine(tmp_path):
    # the same key in two panes is fine (j: list and reader), so is the built-in q (quit / close),
    # a key moved from one action to another, and the mutt keymap's own keys
    cfg = load_config(write(tmp_path, MINIMAL + "[keys]\ndelete = 'x'\nflag = 'd'\nscroll_down = 'n'\n"
                                                "close = ['q', 'escape']\n"))
    assert cfg.keys["flag"] == ("d",)
    load_config(write(tmp_path, MINIMAL + "[ui]\nkeymap = 'mutt'\n[keys]\nfullscreen = 'ctrl+f'\n"))
    with pytest.raises(ConfigError, match="keys.fullscreen: key \"z\" is also bound to page_down"):
        load_config(write(tmp_path, MINIMAL + "[ui]\nkeymap = 'mutt'\n[keys]\nfullscreen = 'z'\n"))


def test_config_error_for_keys_exits_2_before_the_app(tmp_path, monkeypatch, capsys):
    from tuimail.cli.main import main
    p = write(tmp_path, MINIMAL + "[keys]\nflag = 'd'\n")
    monkeypatch.setattr("tuimail.ui.launch.run_app", lambda *a, **k: pytest.fail("the app started"))
    assert main(["--config", str(p)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "keys.flag" in err


def test_ui_sort_and_date_format(tmp_path):
    cfg = load_config(write(tmp_path, MINIMAL + "[ui]\nsort = 'reverse-date'\ndate_format = '%d.%m.%y %H:%M'\n"))
    assert cfg.ui.sort == "reverse-date" and cfg.ui.date_format == "%d.%m.%y %H:%M"
    assert load_config(write(tmp_path, MINIMAL)).ui.sort == "date"
    assert ": ui.sort: expected" in load_error(tmp_path, MINIMAL + "[ui]\nsort = 'random'\n")
    assert "ui.date_format: no %-directive" in load_error(tmp_path, MINIMAL + "[ui]\ndate_format = 'day'\n")
    assert "ui.date_format: control" in load_error(tmp_path, MINIMAL + '[ui]\ndate_format = "%d\\u001b[31m"\n')
