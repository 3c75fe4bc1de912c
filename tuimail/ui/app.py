"""The Textual application and `run_app`, the entry point the CLI calls for bare `tuimail`.

    run_app(config, account_names, *, offline, start_folder, service_factory=None) -> int
    TuimailApp(config, stores, services, *, offline=False, start_folder=None,
               clock=None, tz=None, event_sink=None)

The app reads only from the stores (one per account, opened on the UI thread) and talks to the
network only through the services' non-blocking requests and thread workers.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import tzinfo
from typing import TYPE_CHECKING

from textual import events
from textual.message import Message

from tuimail.config.load import Config
from tuimail.core.service import AccountService
from tuimail.mail.sanitize import sanitize_strict
from tuimail.paths import config_dir
from tuimail.store.store import Store
from tuimail.store.writer import IntentWriter
from tuimail.ui import keys, ui_state
from tuimail.ui.bridge import EventBridge
from tuimail.ui.collector import IdleCollector
from tuimail.ui.commands import TuimailCommands
from tuimail.ui.crash import OneLineCrashApp
from tuimail.ui.launch import is_cold, run_app  # noqa: F401  (run_app: the entry point's old home)
from tuimail.ui.overlay import Overlay
from tuimail.ui.rows import DateFormatter
from tuimail.ui.screens.main import MainScreen
from tuimail.ui.themes import DEFAULT_THEME, SHIPPED, load_themes, resolve_name

if TYPE_CHECKING:
    from tuimail.ui.screens.setup import SetupRequest


class TuimailApp(OneLineCrashApp):
    TITLE = "tuimail"
    COMMANDS = {TuimailCommands}  # tuimail's actions, themes and folders only (not Textual's)
    ENABLE_COMMAND_PALETTE = True

    def __init__(self, config: Config, stores: dict[str, Store], services: dict[str, AccountService], *,
                 offline: bool = False, start_folder: str | None = None,
                 clock: Callable[[], float] | None = None, tz: tzinfo | None = None,
                 event_sink: EventBridge | None = None, setup: SetupRequest | None = None) -> None:
        super().__init__()
        self.setup_request = setup  # no config yet: the first-run screen (ui/screens/setup.py) comes first
        self.config = config
        self.stores = stores
        self.services: dict[str, AccountService] = dict(services)
        self._main: MainScreen | None = None
        self.offline = offline
        self.start_folder = start_folder
        self.clock = clock or time.time
        fmt = config.ui.date_format or None  # "": relative dates (14:05, Mar 05, 2023-03-05)
        self.dates = DateFormatter(self.clock, tz, fmt)
        self.bridge = event_sink or EventBridge()
        self.problems: list[str] = []
        self.overlay = Overlay()  # intents queued to the writers, drawn before the store has them
        self.collector = IdleCollector()  # full garbage collections while the user pauses (collector.py)
        self.intent_writers: dict[str, IntentWriter] = {}  # per account (controllers/intents.py)
        self._services_started = False
        self._title_pushed = False
        unknown = keys.unknown_actions(config.keys)
        if unknown:
            self.problems.append("[keys]: unknown action " + ", ".join(sorted(unknown)[:5]) + " (see the help, ?)")
        self.effective_keys = keys.effective_keys(config.ui.keymap, config.keys)
        self.set_keymap(keys.keymap(config.ui.keymap, config.keys))
        themes, problems = load_themes()
        self.problems += problems
        for theme in themes.values():
            self.register_theme(theme)
        self.tuimail_themes = sorted(themes)  # the palette offers these (shipped and the user's)
        wanted = resolve_name(ui_state.remembered_theme(config.ui.theme) or config.ui.theme)
        if wanted not in self.available_themes:
            wanted = resolve_name(config.ui.theme)
        if wanted not in self.available_themes:
            fallback = DEFAULT_THEME if DEFAULT_THEME in self.available_themes else "textual-dark"
            if wanted not in SHIPPED:  # (a shipped one missing is said by load_themes, naming the file)
                self.problems.append(f"[ui] theme: no theme {wanted!r} (dark, light, classic, a Textual theme"
                                     f" or a file in {config_dir() / 'themes'}); using {fallback}")
            wanted = fallback
        self.theme = wanted

    async def on_event(self, event: events.Event) -> None:
        if isinstance(event, events.InputEvent):
            self.collector.input()
        await super().on_event(event)

    async def _on_key(self, event: events.Key) -> None:
        # App._on_key runs the bindings of the focus chain; a key none of them takes (and no
        # key_ method) reaches here unhandled: the main screen says so in its status line.
        event.prevent_default()  # App._on_key is called from here, not again after this handler
        if await self._check_bindings(event.key):
            return
        await super()._on_key(event)
        main = self._main
        if main is not None and self.screen is main:
            main.unbound_key(event.key)

    def pick_theme(self, name: str) -> None:
        """A theme chosen in the palette: used now and remembered for the next start."""
        self.theme = name
        problem = ui_state.save(theme=name, config_theme=self.config.ui.theme)
        if problem:
            self.notify(problem, severity="warning", markup=False)

    def get_theme_variable_defaults(self) -> dict[str, str]:
        # tuimail's own colours, for the themes that do not set them (Textual's): a mid grey reads
        # on dark and light backgrounds alike. The shipped themes set their own.
        return {"tuimail-rule": "#808080", "tuimail-guides": "#808080"}

    @property
    def event_sink(self) -> EventBridge:
        """The EventSink to hand to create_service(on_event=...): thread-safe, never blocks."""
        return self.bridge

    @property
    def main(self) -> MainScreen:
        assert self._main is not None, "the app is not mounted"
        return self._main

    def on_mount(self) -> None:
        if self.setup_request is not None:
            from tuimail.ui.collector import release_start
            from tuimail.ui.screens.setup import SetupScreen
            release_start()  # (the setup screen may stay for minutes: collect as usual meanwhile)
            self.push_screen(SetupScreen(self.setup_request))  # it calls begin() once the config is written
            return
        self.begin()

    def begin(self) -> None:
        """The start-up proper: the main screen, the sync services."""
        self._main = MainScreen()
        self.push_screen(self._main)
        self.bridge.attach(self.post_message)
        # With a filled store the sync threads start once the list is drawn (MainScreen calls
        # start_services then: their imports and the TLS handshake would compete with the
        # first paint for the GIL); with an empty one the first screen *is* the network's first
        # window, so they start at once.
        if any(is_cold(store) for store in self.stores.values()):
            self.start_services()  # (run_app has started them already, before Textual's import)

    def start_services(self) -> None:
        """Start every account's sync service (once)."""
        if self._services_started:
            return
        self._services_started = True
        from tuimail.trace import trace
        trace("starting services")
        for svc in self.services.values():
            svc.start()

    def on_unmount(self) -> None:
        for writer in self.intent_writers.values():
            writer.close(60.0)  # the queued intents are written before the stores close
        self.bridge.detach()
        if self._title_pushed:
            self._terminal_write("\x1b[23;0t")  # the terminal's own title back

    def set_terminal_title(self, title: str) -> None:
        """[ui] title: the terminal's title (xterm OSC 2; the old one is pushed and restored at exit)."""
        title = "".join(c for c in sanitize_strict(title) if c.isprintable())[:80]
        if not self._title_pushed:
            self._title_pushed = self._terminal_write("\x1b[22;0t")
        self._terminal_write(f"\x1b]2;{title}\x07")

    def _terminal_write(self, data: str) -> bool:
        driver = self._driver
        if driver is None or self.is_headless:
            return False
        driver.write(data)
        return True

    def on_sync_events(self, message: Message) -> None:  # bridge.SyncEvents
        evs = self.bridge.drain()
        # (not once the app shuts down: it prunes the screen's widgets while this message may still
        # be waiting, and the events are in the store already for the next start)
        if evs and self._main is not None and self.is_running:
            self._main.handle_events(evs)
