"""`tuimail setup` (issue 16) end to end on loopback: SMTP AUTH checked through protocol/smtp.py
against aiosmtpd and Dovecot's submission service; the conversation with scripted answers against
Dovecot with autoconfig served by a local HTTP server; the --yes path through the CLI; the
written config loads, is 0600, takes a second account; a typed password is not written unless
asked. Names such as autoconfig.example.test reach the local listeners through the injected
connector of tests/integration/test_discover.py."""

from __future__ import annotations

import os
import shlex
import time

import pytest

from tests.integration.test_discover import MapConnector, Site, StubResolver, autoconfig_doc
from tests.support.dovecot import submission_installed
from tests.support.smtpserver import ScriptedSMTP, free_port
from tuimail.cli.main import main
from tuimail.config.discover import Candidate, parse_address, verify_smtp
from tuimail.config.load import load_config
from tuimail.config.setup_flow import Options, Seams, Setup
from tuimail.errors import AuthError, UsageError

needs_submission = pytest.mark.skipif(not submission_installed(),
                                      reason="Dovecot's submission service is not installed: `make dovecot`")


class Script:
    """A Terminal answering from a list (prompt substring -> answer, in order); records output."""

    def __init__(self, answers: list[tuple[str, str]]):
        self.answers = list(answers)
        self.out: list[str] = []
        self.prompts: list[str] = []

    def _next(self, prompt: str) -> str:
        self.prompts.append(prompt)
        assert self.answers, f"unexpected question: {prompt!r}"
        want, answer = self.answers.pop(0)
        assert want in prompt, f"asked {prompt!r}, expected a question about {want!r}"
        return answer

    def say(self, text: str) -> None:
        self.out.append(text)

    def ask(self, prompt: str, default: str = "") -> str:
        return self._next(prompt) or default

    def secret(self, prompt: str) -> str:
        return self._next(prompt)


@pytest.fixture
def site():
    s = Site()
    yield s
    s.close()


@pytest.fixture
def relay():
    sink = ScriptedSMTP(auth=()).start()
    yield sink
    sink.stop()


# -- verify_smtp ---------------------------------------------------------------------------------

def test_verify_smtp_against_aiosmtpd():
    aiosmtpd = pytest.importorskip("aiosmtpd")
    from aiosmtpd.controller import Controller
    from aiosmtpd.smtp import AuthResult, LoginPassword
    assert aiosmtpd

    class Sink:
        messages: list = []

        async def handle_DATA(self, server, session, envelope):
            self.messages.append(envelope)
            return "250 OK"

    def auth(server, session, envelope, mechanism, data):
        ok = isinstance(data, LoginPassword) and (data.login, data.password) == (b"alice", b"secret")
        return AuthResult(success=ok, handled=False)

    port = free_port()
    sink = Sink()
    controller = Controller(sink, hostname="127.0.0.1", port=port, authenticator=auth, auth_require_tls=False)
    controller.start()
    try:
        c = Candidate("smtp", "localhost", 587, "none", "guess", "t")
        conn = MapConnector({("localhost", 587): port})
        # the full address is refused, the local part accepted; nothing is sent
        check = verify_smtp(c, "secret", parse_address("alice@localhost"), connector=conn, timeout=5)
        assert check.ok and check.username == "alice" and check.tried == ("alice@localhost", "alice")
        assert "AUTH" in check.caps and sink.messages == []
        wrong = verify_smtp(c, "nope", parse_address("alice@localhost"), connector=conn, timeout=5)
        assert wrong.outcome == "refused" and "535" in wrong.message
        off = verify_smtp(Candidate("smtp", "smtp.example.test", 587, "none", "guess", "t"), "secret",
                          parse_address("alice@example.test"), connector=conn)
        assert off.outcome == "insecure"
        gone = verify_smtp(Candidate("smtp", "localhost", 465, "tls", "guess", "t"), "secret",
                           parse_address("alice@localhost"), connector=conn, timeout=3)
        assert gone.outcome == "unreachable" and "465" in gone.message
    finally:
        controller.stop()

    # a server without AUTH: nothing to check, said so
    port = free_port()
    bare = Controller(Sink(), hostname="127.0.0.1", port=port)
    bare.start()
    try:
        check = verify_smtp(Candidate("smtp", "127.0.0.1", port, "none", "guess", "t"), "x",
                            parse_address("a@localhost"), username="a", timeout=5)
        assert check.outcome == "unsupported" and "offers no AUTH" in check.message
    finally:
        bare.stop()


@needs_submission
def test_verify_smtp_against_dovecot_submission(dovecot_factory, relay):
    """STARTTLS on the submission port, implicit TLS on submissions, the server's private CA
    through the injected TLS context; a refused password; no STARTTLS offered is refused."""
    import ssl
    server = dovecot_factory(tls=True, submission_relay=relay.port)
    user = server.add_user(password="secret")
    addr = parse_address(f"{user.name}@localhost")
    conn = MapConnector({("localhost", 587): server.submission_port, ("localhost", 465): server.submissions_port})

    def ctx():
        return ssl.create_default_context(cafile=str(server.cert_path))

    for port, security in ((587, "starttls"), (465, "tls")):
        c = Candidate("smtp", "localhost", port, security, "guess", "t")
        check = verify_smtp(c, "secret", addr, connector=conn, tls=ctx, timeout=10)
        assert check.ok and check.username == user.name, check
        assert check.tried == (f"{user.name}@localhost", user.name)
    refused = verify_smtp(Candidate("smtp", "localhost", 587, "starttls", "guess", "t"), "nope", addr,
                          username=user.name, connector=conn, tls=ctx, timeout=10)
    assert refused.outcome == "refused" and refused.tried == (user.name,)
    untrusted = verify_smtp(Candidate("smtp", "localhost", 465, "tls", "guess", "t"), "secret", addr,
                            connector=conn, timeout=10)
    assert untrusted.outcome == "tls" and "not trusted" in untrusted.message
    assert relay.messages == []


# -- the conversation ----------------------------------------------------------------------------------

def _seams(conn, **kw) -> Seams:
    return Seams(resolver=StubResolver(), connector=conn, timeout=5, keyring_module=None, **kw)


@needs_submission
def test_setup_end_to_end_with_autoconfig_and_scripted_answers(dovecot_factory, relay, site, tmp_path):
    """bob@example.test: autoconfig (plain HTTP) names Dovecot's IMAP on localhost:143 (plain,
    loopback) and its submission on localhost:587; the user accepts, types the password (not
    saved), and the account is written: valid, 0600, no password in it."""
    server = dovecot_factory(submission_relay=relay.port)
    name = f"bob{time.monotonic_ns()}@example.test"
    server.add_user(name=name, password="pw-typed")
    site.routes["/mail/config-v1.1.xml"] = (200, {}, autoconfig_doc("localhost", 143, "plain", "localhost", 587,
                                                                    "plain"))
    conn = MapConnector({("autoconfig.example.test", 80): site.port, ("localhost", 143): server.imap_port,
                         ("localhost", 587): server.submission_port})
    path = tmp_path / "cfg" / "config.toml"
    term = Script([("E-mail", name), ("name", "Bob Example"), ("Use these", ""), ("Choice", "3"),
                   ("Password", "wrong"), ("Try again", "y"), ("Use these", "y"), ("Choice", "3"),
                   ("Password", "pw-typed")])
    written = Setup(Options(config=path), term, _seams(conn)).run()

    out = "\n".join(term.out)
    assert "  ✓ http://autoconfig.example.test/mail/config-v1.1.xml: IMAP localhost:143 (plain text)" in out
    assert "  ✓ http://autoconfig.example.test/mail/config-v1.1.xml: SMTP localhost:587 (plain text)" in out
    assert "  · SRV records: not needed, the autoconfig document named the servers" in out
    assert any(line.startswith("  ✓ IMAP localhost:143 (plain text): IDLE") for line in term.out)
    assert "refused the login" in out  # the wrong password first
    assert f"  ✓ logged in to localhost:143 as {name!r}" in term.out
    assert f"  ✓ logged in to localhost:587 as {name!r}" in term.out
    assert any("incoming: IMAP localhost:143 (plain text): IDLE, QRESYNC" in line for line in term.out)
    assert not term.answers
    assert "pw-typed" not in out and "wrong" not in out  # never echoed

    assert written.path == path and written.account == "example"
    assert (path.stat().st_mode & 0o777) == 0o600 and (path.parent.stat().st_mode & 0o777) == 0o700
    text = path.read_text()
    assert "pw-typed" not in text and "wrong" not in text
    assert "# no password_command: tuimail asks for the password at start" in text
    acc = load_config(path).account("example")
    assert (acc.kind, acc.host, acc.port, acc.security, acc.username) == ("imap", "localhost", 143, "none", name)
    assert acc.from_address == f"Bob Example <{name}>"
    assert acc.smtp["host"] == "localhost" and acc.smtp["port"] == 587 and acc.smtp["username"] == name
    assert acc.password is None and acc.password_command is None


def test_setup_guessing_with_local_part_and_saved_password_then_a_second_account(dovecot, tmp_path):
    """carol@localhost: nothing but the usual names; the full address is refused and the local
    part works; the user asks for the password to be saved (choice 4); a second run for another
    address appends a second account with a password command."""
    first = dovecot.add_user(password="s3cret")
    second = dovecot.add_user(password="other")
    conn = MapConnector({("localhost", 143): dovecot.imap_port})
    path = tmp_path / "config.toml"
    term = Script([("name", ""), ("Use these", "y"), ("Choice", "4"), ("Password", "s3cret")])
    w1 = Setup(Options(email=f"{first.name}@localhost", config=path), term, _seams(conn)).run()
    out = "\n".join(term.out)
    assert "  ✗ IMAP imap.localhost:993 (TLS): Connection refused" in out
    assert "  - no SMTP server found for localhost: enter it by hand" in out
    assert "refused the login" not in out and f"as {first.name!r}" in out
    cfg = load_config(path)
    assert cfg.account(w1.account).username == first.name and cfg.account(w1.account).password == "s3cret"
    assert "saved as asked" in path.read_text()

    secret = tmp_path / "pw.txt"
    secret.write_text("other\n")
    cmd = f"cat {shlex.quote(str(secret))}"
    term = Script([("name", "Second"), ("Use these", "y"), ("Choice", "1"), ("Command", cmd)])
    w2 = Setup(Options(email=f"{second.name}@localhost", config=path), term, _seams(conn)).run()
    assert w2.account == "localhost-2" and w1.account == "localhost"
    cfg = load_config(path)
    assert list(cfg.accounts) == ["localhost", "localhost-2"]
    assert cfg.account("localhost-2").password_command == ("cat", str(secret))
    assert cfg.account("localhost-2").password is None
    assert (path.stat().st_mode & 0o777) == 0o600
    assert "tuimail --account localhost-2" in "\n".join(term.out)


def test_setup_keyring_choice_stores_the_password_there(dovecot, tmp_path):
    user = dovecot.add_user(password="kr")

    class FakeKeyring:  # the `keyring` package's API (not installed here)
        stored: dict = {}

        def set_password(self, service, name, password):
            self.stored[(service, name)] = password

    ring = FakeKeyring()
    conn = MapConnector({("localhost", 143): dovecot.imap_port})
    path = tmp_path / "config.toml"
    term = Script([("name", ""), ("Use these", "y"), ("Choice", "2"), ("Password", "kr")])
    Setup(Options(email=f"{user.name}@localhost", config=path), term,
          Seams(resolver=StubResolver(), connector=conn, timeout=5, keyring_module=ring)).run()
    assert ring.stored == {("tuimail", f"{user.name}@localhost"): "kr"}
    acc = load_config(path).account()
    assert acc.password is None and acc.password_command is not None
    assert acc.password_command[-3:] == ("get", "tuimail", f"{user.name}@localhost")
    assert "kr" not in path.read_text().replace("keyring", "")


def test_setup_edit_the_servers_by_hand(dovecot, tmp_path):
    """Discovery finds nothing (nothing mapped); the user enters the server; --username given."""
    user = dovecot.add_user(password="pw")
    conn = MapConnector({("localhost", 143): dovecot.imap_port})
    path = tmp_path / "config.toml"
    term = Script([("name", ""), ("kind", "imap"), ("host", "localhost"), ("Security", "none"),
                    ("Port", "143"), ("Outgoing", "-"), ("Use these", "y"), ("Choice", "3"), ("Password", "pw")])
    Setup(Options(email="x@example.test", username=user.name, config=path), term,
          Seams(resolver=StubResolver(), connector=conn, timeout=3, keyring_module=None)).run()
    out = "\n".join(term.out)
    assert "no incoming server: enter it" in out
    acc = load_config(path).account()
    assert (acc.host, acc.port, acc.security, acc.username) == ("localhost", 143, "none", user.name)


# -- the CLI: --yes and exit codes -------------------------------------------------------------------------

def test_cli_setup_yes(dovecot, tmp_path, capsys):
    user = dovecot.add_user(password="cli-pw")
    secret = tmp_path / "pw"
    secret.write_text("cli-pw\n")
    path = tmp_path / "c" / "config.toml"
    argv = ["--config", str(path), "setup", "--email", f"{user.name}@localhost", "--host", "127.0.0.1",
            "--port", str(dovecot.imap_port), "--security", "none",
            "--password-command", f"cat {shlex.quote(str(secret))}",
            "--yes"]
    assert main(argv) == 0, capsys.readouterr().err
    out = capsys.readouterr().out
    assert f"as {user.name!r}" in out and "written to" in out
    acc = load_config(path).account()
    assert (acc.host, acc.port, acc.security, acc.username) == ("127.0.0.1", dovecot.imap_port, "none", user.name)
    assert acc.password_command == ("cat", str(secret))
    assert "cli-pw" not in path.read_text() and (path.stat().st_mode & 0o777) == 0o600

    # a wrong password: exit 3, nothing written; bad input: exit 2
    secret.write_text("wrong\n")
    before = path.read_text()
    other = argv[:4] + [f"other{user.name}@localhost"] + argv[5:]
    assert main(other) == 3
    assert "refused the login" in capsys.readouterr().err and path.read_text() == before
    assert main(["--config", str(path), "setup", "--email", "not an address", "--yes", "--password-command",
                 "true"]) == 2
    assert "not an e-mail address" in capsys.readouterr().err
    assert main(["--config", str(path), "setup", "--email", "a@localhost", "--yes"]) == 2
    assert "--password-command" in capsys.readouterr().err
    assert main(["--config", str(path), "setup", "--email", "a@localhost", "--host", "localhost", "--port", "x",
                 "--yes", "--password-command", "true"]) == 2
    assert "not a port number" in capsys.readouterr().err
    port = free_port()
    assert main(["--config", str(path), "setup", "--email", "a@localhost", "--host", "localhost", "--port",
                 str(port), "--security", "none", "--yes", "--password-command", "true"]) == 3
    err = capsys.readouterr().err
    assert "refused" in err.lower() and "Traceback" not in err
    bad = tmp_path / "bad.toml"
    bad.write_text("[accounts.x]\nkind = 1\n")
    assert main(["--config", str(bad), "setup", "--email", "a@localhost", "--yes", "--password-command",
                 "true"]) == 2


def test_typed_password_refused_then_given_up(dovecot, tmp_path):
    user = dovecot.add_user(password="pw")
    conn = MapConnector({("localhost", 143): dovecot.imap_port})
    path = tmp_path / "config.toml"
    term = Script([("name", ""), ("Use these", "y"), ("Choice", "3"), ("Password", "bad"), ("Try again", "n")])
    with pytest.raises(AuthError, match="refused the login"):
        Setup(Options(email=f"{user.name}@localhost", config=path), term, _seams(conn)).run()
    assert not path.exists()
    with pytest.raises(UsageError, match="cancelled"):
        Setup(Options(email=f"{user.name}@localhost", config=path), Script([("name", ""), ("Use these", "q")]),
              _seams(conn)).run()
    assert not path.exists() and not os.path.exists(tmp_path / ".config.toml.tmp")


def test_bare_tuimail_without_config_offline_says_what_to_do(tmp_path, capsys):
    """Bare `tuimail` with no config opens the setup screen (test_setup_screen.py); offline it
    cannot find servers: one line, exit 2."""
    assert main(["--config", str(tmp_path / "none.toml"), "--offline"]) == 2
    err = capsys.readouterr().err
    assert "no config file" in err and "tuimail setup" in err and "Traceback" not in err


def test_the_readme_shows_the_block_setup_writes():
    """The README's "First run" example is render_account's output, character for character."""
    from datetime import date
    from pathlib import Path

    from tuimail.config.discover import Password, render_account
    from tuimail.config.load import parse_config
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    start = readme.index("# alice@example.org: added by `tuimail setup`")
    shown = readme[start:readme.index("```", start)]
    url = "https://autoconfig.example.org/mail/config-v1.1.xml"
    block = render_account("example", parse_address("alice@example.org"),
                           Candidate("imap", "imap.example.org", 993, "tls", "autoconfig", url), "alice@example.org",
                           Password.command(["pass", "show", "mail/example"]), display_name="Alice Example",
                           outgoing=Candidate("smtp", "smtp.example.org", 465, "tls", "autoconfig", url),
                           caps=frozenset({"IDLE", "QRESYNC", "CONDSTORE", "AUTH=PLAIN"}), today=date(2026, 12, 6))
    assert shown == block
    assert parse_config(block).account("example").smtp["port"] == 465
