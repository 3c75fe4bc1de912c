"""The first screen when there is no config file (issue 16): the address, a display name and where
the password comes from; discovery runs in a worker thread and each step appears in the log as it
happens; the servers found fill the fields below (change them and press Enter to use others);
the login is checked, the config written (0600), and the app goes on starting as usual: the
stores are opened, the services made (a password typed here is handed to them, in memory only,
unless the user chose to save it) and the main screen lands in the inbox.

The conversation's steps are config/setup_flow.py's (the same as `tuimail setup`).
"""

from __future__ import annotations

import shlex
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, VerticalScroll
from textual.content import Content
from textual.screen import Screen
from textual.widgets import Button, Input, Log, Select, Static

from tuimail.config.discover import Address, Password, parse_address
from tuimail.config.setup_flow import Found, Seams, check_logins, find, keyring_password, manual, save, server_line, \
    step_line
from tuimail.errors import AuthError, NetworkError, TuimailError
from tuimail.mail.sanitize import sanitize_line

if TYPE_CHECKING:
    from tuimail.config.load import Config

SOURCES = [("typed here, asked again at each start (written nowhere)", "prompt"),
           ("typed here and saved in the config file (0600)", "config"),
           ("a command that prints it (e.g. pass show mail/me)", "command")]


@dataclass
class SetupRequest:
    """What the app needs to run the first-run screen: where to write the config, the network
    seams (tests map names to loopback ports), and the service factory for the accounts written."""

    path: Path
    seams: Seams = field(default_factory=Seams)
    factory: Callable[..., Any] | None = None  # backends.registry.create_service by default


def start_accounts(app: Any, config: Config, typed: str | None, factory: Callable[..., Any] | None) -> None:
    """Give the app the accounts of the new config (stores, services: in the dicts run_app owns and
    closes) and continue the normal start-up."""
    from tuimail.paths import account_store_path
    from tuimail.store.store import Store

    if factory is None:
        from tuimail.backends.registry import create_service
        factory = create_service
    app.config = config
    for acc in config.accounts.values():
        if acc.name in app.stores:
            continue
        app.stores[acc.name] = Store(account_store_path(acc.name))
        svc = factory(config, acc, app.bridge, offline=app.offline)
        if typed is not None and acc.password is None and acc.password_command is None:
            svc.set_password(typed)  # kept in memory only
        app.services[acc.name] = svc
    app.begin()


class SetupScreen(Screen):
    BINDINGS = [Binding("ctrl+q", "app.quit", "Quit")]
    DEFAULT_CSS = """
    SetupScreen { align: center top; }
    SetupScreen > VerticalScroll { width: 100%; max-width: 110; height: 1fr; padding: 0 1; }
    SetupScreen .title { text-style: bold; color: $text-primary; margin: 1 0 0 0; }
    SetupScreen .hint { color: $text-muted; }
    SetupScreen Input { margin: 0; }
    SetupScreen Horizontal { height: auto; }
    SetupScreen #kind, SetupScreen #security, SetupScreen #ssecurity { width: 14; }
    SetupScreen #smtp-label { width: 14; padding: 1 0 0 2; }
    SetupScreen #port, SetupScreen #sport { width: 10; }
    SetupScreen #host, SetupScreen #shost { width: 1fr; }
    SetupScreen #steps { height: 14; border: round $primary; }
    SetupScreen #go { margin: 1 0 0 0; }
    """

    def __init__(self, request: SetupRequest) -> None:
        super().__init__()
        self.request = request
        self.found: Found | None = None
        self.found_for: str | None = None  # the address the server fields were found for
        self.busy = False

    def compose(self) -> ComposeResult:
        sources = list(SOURCES)
        if self.request.seams.keyring_module is not None:
            sources.insert(2, ("the system keyring (typed here once, stored there)", "keyring"))
        with VerticalScroll():
            yield Static(Content("Welcome to tuimail: add your mail account"), classes="title")
            yield Static(Content(f"No config file yet ({self.request.path}). tuimail finds the servers from"
                                 " your address, checks the login, and writes the file."), classes="hint")
            yield Input(placeholder="e-mail address (you@example.org)", id="address")
            yield Input(placeholder="your name, for From: (may stay empty)", id="name")
            yield Select(sources, value="prompt", allow_blank=False, id="source")
            yield Input(placeholder="password", password=True, id="password")
            yield Input(placeholder="command printing the password (when chosen above)", id="command")
            yield Static(Content("Servers (filled by discovery; change them and press Enter to use others)"),
                         classes="hint")
            with Horizontal():
                yield Input(placeholder="imap", id="kind")
                yield Input(placeholder="incoming host", id="host")
                yield Input(placeholder="port", id="port")
                yield Input(placeholder="security", id="security")
            with Horizontal():
                yield Static(Content("smtp"), id="smtp-label")
                yield Input(placeholder="outgoing host (empty: none)", id="shost")
                yield Input(placeholder="port", id="sport")
                yield Input(placeholder="security", id="ssecurity")
            yield Log(id="steps", auto_scroll=True)
            yield Button("Find servers and log in", id="go", variant="primary")
            yield Static(Content("Enter: continue    Tab: next field    ctrl+q: quit"), classes="hint")

    def on_mount(self) -> None:
        self.query_one("#address", Input).focus()

    def say(self, text: str) -> None:
        self.query_one("#steps", Log).write_line(sanitize_line(text))

    # -- input ---------------------------------------------------------------------------------------

    @on(Input.Changed, "#address")
    def _address_changed(self) -> None:
        if self.found_for is not None:  # another address: find its servers again
            self.found_for = None
            for wid in ("#kind", "#host", "#port", "#security", "#shost", "#sport", "#ssecurity"):
                self.query_one(wid, Input).value = ""

    @on(Input.Submitted)
    def _submitted(self, event: Input.Submitted) -> None:
        if event.input.id in ("address", "name"):
            self.focus_next()
            return
        self.go()

    @on(Button.Pressed, "#go")
    def _pressed(self) -> None:
        self.go()

    def go(self) -> None:
        if self.busy:
            return
        value = lambda wid: self.query_one(wid, Input).value  # noqa: E731
        try:
            address = parse_address(value("#address"))
        except TuimailError as exc:
            self.say(f"✗ {exc}")
            self.query_one("#address", Input).focus()
            return
        source = str(self.query_one("#source", Select).value)
        command = value("#command").strip()
        password = value("#password")
        if source == "command" and not command:
            self.say("✗ enter the command that prints the password")
            self.query_one("#command", Input).focus()
            return
        if source != "command" and not password:
            self.say("✗ enter the password")
            self.query_one("#password", Input).focus()
            return
        servers = None
        if self.found_for == address.text and value("#host").strip():
            servers = (value("#kind").strip().lower() or "imap", value("#host").strip(), value("#port").strip(),
                       value("#security").strip().lower() or "tls", value("#shost").strip(), value("#sport").strip(),
                       value("#ssecurity").strip().lower() or "starttls")
        self.busy = True
        self.query_one("#go", Button).disabled = True
        name = value("#name")
        self.run_worker(lambda: self._work(address=address, name=name, source=source, command=command,
                                           password=password, servers=servers),
                        thread=True, exclusive=True, group="setup")

    # -- the worker thread ---------------------------------------------------------------------------

    def _work(self, *, address: Address, name: str, source: str, command: str, password: str,
              servers: tuple[str, ...] | None) -> None:
        call = self.app.call_from_thread
        seams = self.request.seams
        try:
            if servers is not None and self.found is not None:
                kind, host, port, security, shost, sport, ssecurity = servers
                incoming = manual(kind, host, port or None, security, seams)
                call(self.say, f"{'✓' if incoming.probe and incoming.probe.ok else '✗'} {server_line(incoming)}")
                outgoing = self.found.outgoing
                if not shost:
                    outgoing = None
                elif outgoing is None or (shost, sport, ssecurity) != (outgoing.host, str(outgoing.port),
                                                                        outgoing.security):
                    outgoing = manual("smtp", shost, sport or None, ssecurity, seams)
                    call(self.say, f"{'✓' if outgoing.probe and outgoing.probe.ok else '✗'} {server_line(outgoing)}")
                found = Found(incoming, outgoing, self.found.discovery)
            else:
                call(self.say, f"Looking for the servers of {address.domain}:")
                found = find(address, seams, lambda s: call(self.say, step_line(s)))
                call(self._fill, address, found)
            self.found = found
            inc_ok = found.incoming is not None and found.incoming.usable
            if not inc_ok:
                call(self.say, "✗ no incoming server: enter its host, port and security above, then Enter")
                return
            call(self.say, f"incoming: {server_line(found.incoming)}")
            call(self.say, f"outgoing: {server_line(found.outgoing)}" if found.outgoing is not None else
                 "outgoing: none found (mail can be read; add [accounts.NAME.smtp] to the config to send)")
            if source == "command":
                from tuimail.config.load import run_secret_command
                argv = shlex.split(command)
                secret = run_secret_command(argv, "the password command")
                origin = Password.command(argv)
            elif source == "keyring":
                secret = password
                ring = keyring_password(address, seams)
                assert ring is not None
                origin = ring
            else:
                secret = password
                origin = Password.typed(password, save=source == "config")
            checked = check_logins(address, found, secret, seams)
            inc = checked.incoming
            call(self.say, f"{'✓' if inc.ok else '✗'} {inc.message}")
            if not inc.ok:
                raise AuthError(inc.message) if inc.outcome == "refused" else NetworkError(inc.message)
            call(self.say, f"incoming: {server_line(found.incoming, inc.caps)}")
            out = checked.outgoing
            if out is not None:
                call(self.say, f"{'✓' if out.ok else '·' if out.outcome == 'unsupported' else '✗'} {out.message}")
                if not out.ok and out.outcome != "unsupported":
                    raise AuthError(out.message) if out.outcome == "refused" else NetworkError(out.message)
            if source == "keyring":
                keyring = seams.keyring_module
                assert keyring is not None  # (offered only where there is one)
                keyring.set_password("tuimail", address.ascii, secret)
            written = save(self.request.path, address, name, found, checked, origin)
            call(self.say, f"✓ account {written.account!r} written to {written.path}")
            call(self._finish, written.path, secret if origin.source == "prompt" else None)
        except (TuimailError, ValueError) as exc:
            call(self.say, f"✗ {exc}")
        except Exception as exc:  # a worker must not take the app down: one line
            call(self.say, f"✗ {type(exc).__name__}: {exc}")
        finally:
            call(self._idle)

    def _fill(self, address: Address, found: Found) -> None:
        self.found_for = address.text
        c, o = found.incoming, found.outgoing
        fields = []
        if c is not None:
            fields += [("#kind", c.protocol), ("#host", c.url or c.host), ("#port", str(c.port)),
                       ("#security", c.security)]  # JMAP: the session URL (manual() takes it back)
        if o is not None:
            fields += [("#shost", o.host), ("#sport", str(o.port)), ("#ssecurity", o.security)]
        for wid, text in fields:
            self.query_one(wid, Input).value = text

    def _idle(self) -> None:
        self.busy = False
        self.query_one("#go", Button).disabled = False

    def _finish(self, path: Path, typed: str | None) -> None:
        from tuimail.config.load import load_config
        try:
            config = load_config(path)
        except TuimailError as exc:
            self.say(f"✗ {exc}")
            return
        self.app.pop_screen()
        start_accounts(self.app, config, typed, self.request.factory)
