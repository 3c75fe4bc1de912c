"""`tuimail setup` for every account kind (issue 16): JMAP found by .well-known/jmap and checked
by fetching the session from a real Cyrus (its session URL on loopback http), written as
kind = "jmap" with url, and `--kind jmap` without questions; POP3 checked through the injected
connector (Pop3Session's seam) and `setup --kind pop3 ... --yes` against Dovecot's POP3, whose
written config then syncs (keep mode)."""

from __future__ import annotations

import shlex

import pytest

from tests.integration.test_discover import MapConnector, StubResolver
from tests.integration.test_setup import Script
from tuimail.cli.main import main
from tuimail.config.discover import (
    Candidate,
    FetchFailed,
    HttpFetcher,
    Password,
    jmap_server,
    parse_address,
    render_account,
    verify_jmap,
    verify_pop3,
)
from tuimail.config.load import load_config, parse_config
from tuimail.config.setup_flow import Options, Seams, Setup
from tuimail.errors import UsageError

from .helpers import msg


def _jmap_fetch(session_url: str, domain: str):
    """The injected fetch: https://DOMAIN/.well-known/jmap is answered by Cyrus's session URL (an
    unauthenticated GET: Cyrus says 401, as a server behind a redirect would); nothing else exists."""
    real = HttpFetcher()

    def fetch(url, timeout, max_bytes):
        if url == f"https://{domain}/.well-known/jmap":
            return real(session_url, timeout, max_bytes)
        raise FetchFailed("Name or service not known")

    return fetch


def test_jmap_found_by_well_known_checked_against_cyrus_and_written(cyrususer, tmp_path):
    user = cyrususer
    address = f"{user.name}@example.test"
    path = tmp_path / "config.toml"
    seams = Seams(resolver=StubResolver(), fetch=_jmap_fetch(user.session_url, "example.test"),
                  connector=MapConnector(), timeout=5, keyring_module=None)
    term = Script([("E-mail", address), ("name", "Jay"), ("Use these", "y"), ("Choice", "3"),
                   ("Password", "wrong"), ("Try again", "y"), ("Use these", "y"), ("Choice", "3"),
                   ("Password", user.password)])
    written = Setup(Options(config=path), term, seams).run()
    out = "\n".join(term.out)
    assert f"https://example.test/.well-known/jmap: a JMAP session at {user.session_url} (needs the login)" in out
    assert f"incoming: JMAP {user.session_url}" in out
    assert "refused the login" in out  # the wrong password: HTTP 401 for both user names
    # the full address is refused (no such user), the local part works
    assert f"  ✓ logged in to {user.session_url} as {user.name!r}" in term.out
    assert any("incoming: JMAP" in line and "mail" in line for line in term.out)  # the session's capabilities
    assert user.password not in out and "wrong" not in out
    text = path.read_text()
    assert 'kind = "jmap"' in text and "host =" not in text and "port =" not in text
    acc = load_config(path).account(written.account)
    assert (acc.kind, acc.url, acc.username, acc.host) == ("jmap", user.session_url, user.name, "127.0.0.1")
    assert acc.from_address == f"Jay <{address}>" and acc.password is None


def test_cli_setup_kind_jmap_yes_then_sync(cyrususer, tuimail_env, tmp_path, capsys):
    user = cyrususer
    user.append("INBOX", msg(1))
    secret = tmp_path / "pw"
    secret.write_text(user.password + "\n")
    path = tuimail_env.config_path
    argv = ["--config", str(path), "setup", "--email", f"{user.name}@localhost", "--kind", "jmap",
            "--host", user.session_url, "--password-command", f"cat {shlex.quote(str(secret))}", "--yes"]
    assert main(argv) == 0, capsys.readouterr().err
    out = capsys.readouterr().out
    assert f"as {user.name!r}" in out and "written to" in out
    acc = load_config(path).account()
    assert (acc.kind, acc.url, acc.username) == ("jmap", user.session_url, user.name)
    assert main(["--config", str(path), "sync"]) == 0, capsys.readouterr().err
    assert "1 new" in capsys.readouterr().out

    secret.write_text("wrong\n")
    before = path.read_text()
    other = list(argv)
    other[4] = f"other-{user.name}@localhost"
    assert main(other) == 3
    err = capsys.readouterr().err
    assert "refused the login" in err and "Traceback" not in err and path.read_text() == before
    # bad values: one line, exit 2
    assert main(argv[:6] + ["jmap", "--host", "ftp://x/", "--password-command", "true", "--yes"]) == 2
    assert "not a JMAP session URL" in capsys.readouterr().err


def test_jmap_server_by_hand_and_plain_http_only_on_loopback():
    assert jmap_server("example.org").url == "https://example.org/.well-known/jmap"
    c = jmap_server("localhost", "8080", "none")
    assert (c.url, c.host, c.port, c.security) == ("http://localhost:8080/.well-known/jmap", "localhost", 8080, "none")
    url = "http://127.0.0.1:8008/jmap/"
    assert jmap_server(url, "8008", "none").url == url  # the first-run screen's form gives all three
    for bad in (("example.org", None, "starttls"), ("a b", None, None), ("example.org", "0", None),
                (url, "8009", None), (url, None, "tls")):
        with pytest.raises(UsageError):
            jmap_server(*bad)
    off = verify_jmap(jmap_server("http://jmap.example.org/jmap/"), "pw", parse_address("a@example.org"))
    assert off.outcome == "insecure"
    gone = verify_jmap(jmap_server("localhost", "1", "none"), "pw", parse_address("a@localhost"), timeout=3)
    assert gone.outcome == "unreachable"


def test_render_jmap_block_loads():
    c = Candidate("jmap", "example.org", 443, "tls", "well-known", "https://example.org/.well-known/jmap",
                  url="https://example.org/jmap/session")
    block = render_account("example", parse_address("a@example.org"), c, "a@example.org",
                           Password.command(["pass", "show", "x"]),
                           outgoing=Candidate("smtp", "smtp.example.org", 465, "tls", "srv", "SRV x"),
                           caps=frozenset({"urn:ietf:params:jmap:core", "urn:ietf:params:jmap:mail"}))
    assert "#   it offers: core, mail" in block
    acc = parse_config(block).account("example")
    assert (acc.kind, acc.url, acc.host, acc.security) == ("jmap", "https://example.org/jmap/session",
                                                           "example.org", "tls")
    assert acc.smtp["port"] == 465


# -- POP3 ---------------------------------------------------------------------------------------------

def test_verify_pop3_through_the_injected_connector(mailuser):
    conn = MapConnector({("localhost", 110): mailuser.pop3_port})
    c = Candidate("pop3", "localhost", 110, "none", "guess", "t")
    check = verify_pop3(c, mailuser.password, parse_address(f"{mailuser.name}@localhost"), connector=conn, timeout=5)
    assert check.ok and check.username == mailuser.name and "UIDL" in check.caps
    assert ("localhost", 110) in conn.asked
    wrong = verify_pop3(c, "nope", parse_address(f"{mailuser.name}@localhost"), connector=conn, timeout=5)
    assert wrong.outcome == "refused"
    gone = verify_pop3(Candidate("pop3", "localhost", 995, "tls", "guess", "t"), "x",
                       parse_address("a@localhost"), connector=conn, timeout=3)
    assert gone.outcome == "unreachable" and "995" in gone.message


def test_cli_setup_kind_pop3_yes_then_sync_keeps_the_mail(mailuser, tuimail_env, tmp_path, capsys):
    mailuser.deliver_many("INBOX", ((msg(i), "") for i in range(1, 4)))
    secret = tmp_path / "pw"
    secret.write_text(mailuser.password + "\n")
    path = tuimail_env.config_path
    argv = ["--config", str(path), "setup", "--email", f"{mailuser.name}@localhost", "--kind", "pop3",
            "--host", "localhost", "--port", str(mailuser.pop3_port), "--security", "none",
            "--password-command", f"cat {shlex.quote(str(secret))}", "--yes"]
    assert main(argv) == 0, capsys.readouterr().err
    out = capsys.readouterr().out
    assert f"as {mailuser.name!r}" in out and "written to" in out
    text = path.read_text()
    assert 'kind = "pop3"' in text
    acc = load_config(path).account()
    assert (acc.kind, acc.port, acc.username, acc.mode) == ("pop3", mailuser.pop3_port, mailuser.name, "keep")
    assert main(["--config", str(path), "sync"]) == 0, capsys.readouterr().err
    out = capsys.readouterr().out
    assert "3 new" in out and "[pop3 keep]" in out
    assert main(["--config", str(path), "sync"]) == 0
    assert "0 new" in capsys.readouterr().out  # keep mode: still on the server, not fetched twice


def test_jmap_offered_beside_imap_and_chosen(dovecot, cyrususer, tmp_path):
    """Discovery finds Dovecot's IMAP on localhost:143 (the usual names) and Cyrus's JMAP session
    (.well-known/jmap): IMAP is proposed, JMAP offered beside it; the user takes JMAP ([j])."""
    user = cyrususer
    conn = MapConnector({("localhost", 143): dovecot.imap_port})
    seams = Seams(resolver=StubResolver(), fetch=_jmap_fetch(user.session_url, "localhost"), connector=conn,
                  timeout=5, keyring_module=None)
    path = tmp_path / "config.toml"
    term = Script([("name", ""), ("Use these", "j"), ("Use these", "y"), ("Choice", "3"),
                   ("Password", user.password)])
    Setup(Options(email=f"{user.name}@localhost", config=path), term, seams).run()
    out = "\n".join(term.out)
    assert "incoming: IMAP localhost:143 (plain text)" in out
    assert f'also offered: JMAP {user.session_url} (kind = "jmap")' in out
    assert f"incoming: JMAP {user.session_url}" in out and 'also offered: IMAP localhost:143' in out
    assert any("[j] use JMAP instead" in p for p in term.prompts)
    acc = load_config(path).account()
    assert (acc.kind, acc.url) == ("jmap", user.session_url) and acc.username.startswith(user.name)


def test_the_readme_names_every_kind_setup_offers():
    from pathlib import Path

    from tuimail.backends.registry import BACKENDS
    from tuimail.config.setup_flow import KINDS
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    first_run = readme[readme.index("## First run"):readme.index("## Configuration")]
    assert set(KINDS) == set(BACKENDS)  # every account kind that exists
    assert f"--kind {'|'.join(KINDS)}" in first_run
    for kind in KINDS:
        assert f'kind = "{kind}"' in first_run


def test_first_run_screen_with_only_jmap_lands_in_the_inbox(tuimail_env, cyrususer):
    """The setup screen with a Cyrus JMAP account: discovery finds only .well-known/jmap, the
    login is checked against the session, the config written, and the app opens the inbox through
    the JMAP backend."""
    import asyncio
    from datetime import UTC

    from tests.integration.test_setup_screen import NOW, _until
    from tests.ui.fixtures import screen_text
    from tuimail.backends.registry import create_service
    from tuimail.config.load import Config
    from tuimail.ui.app import TuimailApp
    from tuimail.ui.screens.main import MainScreen
    from tuimail.ui.screens.setup import SetupRequest, SetupScreen

    user = cyrususer
    for i in (1, 2):
        user.append("INBOX", msg(i, f"jmap welcome {i}"))
    address = f"{user.name}@example.test"
    path = tuimail_env.config_path
    seams = Seams(resolver=StubResolver(), fetch=_jmap_fetch(user.session_url, "example.test"),
                  connector=MapConnector(), timeout=5, keyring_module=None)
    app = TuimailApp(Config(accounts={}), {}, {}, clock=lambda: NOW, tz=UTC,
                     setup=SetupRequest(path, seams, factory=create_service))
    said: list[str] = []

    async def go():
        async with app.run_test(size=(110, 40)) as pilot:
            await pilot.pause()
            setup = app.screen
            assert isinstance(setup, SetupScreen)
            shown = setup.say

            def say(text):
                said.append(text)
                shown(text)

            setup.say = say
            await pilot.press(*address, "enter")
            app.screen.query_one("#password").focus()
            await pilot.press(*user.password, "enter")
            await _until(pilot, lambda: isinstance(app.screen, MainScreen), 60, said)
            await _until(pilot, lambda: "jmap welcome 2" in screen_text(app), 60, said)

    try:
        asyncio.run(go())
    finally:
        for svc in app.services.values():
            svc.stop()
        for store in app.stores.values():
            store.close()
    assert f"✓ logged in to {user.session_url} as {user.name!r}" in said
    acc = load_config(path).account()
    assert (acc.kind, acc.url, acc.username) == ("jmap", user.session_url, user.name)
    assert user.password not in path.read_text()
