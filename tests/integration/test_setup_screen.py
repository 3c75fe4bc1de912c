"""The first run as a new user sees it (issue 16): no config file, the app opens on the setup
screen; the user types the address and the password of a Dovecot account; discovery (autoconfig
from a local HTTP server) finds the server, the login is checked, the config written, and the
app lands in the inbox showing the account's messages -- with the real IMAP service."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC

from tests.integration.test_discover import MapConnector, Site, StubResolver, autoconfig_doc
from tests.ui.fixtures import screen_text
from tuimail.backends.registry import create_service
from tuimail.cli.main import _first_run
from tuimail.config.load import Config, load_config
from tuimail.config.setup_flow import Seams
from tuimail.ui.app import TuimailApp
from tuimail.ui.screens.main import MainScreen
from tuimail.ui.screens.setup import SetupRequest, SetupScreen

from .helpers import msg

NOW = 1_704_153_600


async def _until(pilot, condition, timeout: float, log: list[str]) -> None:
    end = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > end:
            raise AssertionError("condition not met in time:\n" + screen_text(pilot.app) + "\nsetup log:\n"
                                 + "\n".join(log))
        await pilot.pause(0.1)


def test_first_run_types_address_and_password_and_lands_in_the_inbox(tuimail_env, dovecot):
    name = f"zoe{time.monotonic_ns()}@example.test"
    user = dovecot.add_user(name=name, password="first-run")
    for i in (1, 2, 3):
        user.deliver("INBOX", msg(i, f"welcome mail {i}"))
    site = Site()
    # the document names Dovecot's real port (the written config is used as is by the service);
    # its SMTP server is not there: the account is written without one
    site.routes["/mail/config-v1.1.xml"] = (200, {}, autoconfig_doc("localhost", dovecot.imap_port, "plain",
                                                                    "localhost", 2, "plain"))
    conn = MapConnector({("autoconfig.example.test", 80): site.port,
                         ("localhost", dovecot.imap_port): dovecot.imap_port})
    path = tuimail_env.config_path
    assert _first_run(None) == path  # bare `tuimail` would open this screen
    request = SetupRequest(path, Seams(resolver=StubResolver(), connector=conn, timeout=5, keyring_module=None),
                           factory=create_service)
    app = TuimailApp(Config(accounts={}), {}, {}, clock=lambda: NOW, tz=UTC, setup=request)

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
            await pilot.press(*name)
            await pilot.press("enter")  # to the name field
            await pilot.press(*"Zoe")
            app.screen.query_one("#password").focus()
            await pilot.press(*"wrong")
            await pilot.press("enter")
            # refused: the app stays here, the fields hold what was found; a changed port is used as typed
            await _until(pilot, lambda: any("refused the login" in t for t in said) and not setup.busy, 60, said)
            assert isinstance(app.screen, SetupScreen)
            assert setup.query_one("#port").value == str(dovecot.imap_port)
            setup.query_one("#port").value = "1"
            await pilot.press(*["backspace"] * 5, *"first-run", "enter")
            await _until(pilot, lambda: any(t.startswith("✗ IMAP localhost:1 ") for t in said)
                         and not setup.busy, 60, said)
            setup.query_one("#port").value = str(dovecot.imap_port)
            setup.query_one("#password").focus()
            await pilot.press("enter")
            await _until(pilot, lambda: isinstance(app.screen, MainScreen), 60, said)
            await _until(pilot, lambda: "welcome mail 3" in screen_text(app), 60, said)
            text = screen_text(app)
            assert "welcome mail 1" in text and "welcome mail 2" in text

    try:
        asyncio.run(go())
    finally:
        for svc in app.services.values():
            svc.stop()
        for store in app.stores.values():
            store.close()
        site.close()
    assert (f"  ✓ http://autoconfig.example.test/mail/config-v1.1.xml: IMAP localhost:{dovecot.imap_port}"
            " (plain text)") in said
    assert f"✓ logged in to localhost:{dovecot.imap_port} as {name!r}" in said
    assert any(t.startswith("incoming: IMAP") and "IDLE, QRESYNC" in t for t in said)
    assert "✓ account 'example' written to " + str(path) in said
    cfg = load_config(path)
    acc = cfg.account()
    assert (acc.host, acc.port, acc.security, acc.username) == ("localhost", dovecot.imap_port, "none", name)
    assert acc.from_address == f"Zoe <{name}>" and acc.smtp == {}
    assert "first-run" not in path.read_text() and (path.stat().st_mode & 0o777) == 0o600
