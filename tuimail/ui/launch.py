"""run_app: open the stores, start the sync at once on a first run, then run the Textual app.

    run_app(config, account_names, *, offline, start_folder, service_factory=None) -> int

The services come from backends/registry.py (create_service, by each account's kind); the UI
knows them as AccountService (core/service.py) only.

This module imports no Textual at load time. On a first run (an empty store) the first screen
is the network's first window, so the sync (a child process, a fork of this one: backends/child.py)
is started before Textual is imported and before any store is opened: the connection, the first
window and its commit overlap the UI's start-up. On a machine with one CPU the sync then holds its
further windows until the list has painted those rows (AccountService.ui_painted), so that its
parsing does not compete with the first paint; with more, both go on side by side.
"""

from __future__ import annotations

import os
import sys
from typing import TYPE_CHECKING

from tuimail.config.load import Config
from tuimail.core.service import AccountService
from tuimail.store.store import Store
from tuimail.trace import trace

if TYPE_CHECKING:
    from pathlib import Path

    from tuimail.ui.app import TuimailApp

    from tuimail.backends.registry import ServiceFactory
    from tuimail.ui.screens.setup import SetupRequest


def is_cold(store: Store) -> bool:
    """No INBOX yet, or never selected: a first run."""
    try:
        inbox = store.folder("INBOX", counts=False)
    except Exception:
        return False
    return inbox is None or inbox.state is None


def usable_cpus() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def _start_all(services: dict[str, AccountService]) -> None:
    # With one CPU the sync (a child process) pauses after its first screenful until the UI has
    # drawn it, so that its parsing does not delay the first paint. With two or more the two run
    # side by side: measured (POP3, 5,000 messages, 2 cores, 5 rounds), the first screen came as
    # soon (0.39 s either way) and every row was in 0.44 s instead of 0.62 s.
    hold = usable_cpus() < 2
    for svc in services.values():
        if hold:
            svc.hold_for_first_paint()
        svc.start()


def _import_app() -> type[TuimailApp]:
    trace("ui: import the app")
    from tuimail.ui.app import TuimailApp
    from tuimail.ui import csscache
    from tuimail.paths import cache_dir

    csscache.install(cache_dir() / "code")  # (the parsed CSS of the start before: csscache.py)
    trace("ui: app imported")
    return TuimailApp


def _default_service_factory() -> ServiceFactory:
    from tuimail.backends.registry import create_service  # (imports no backend until it is called)

    return create_service


def run_first_run(path: Path, *, offline: bool, start_folder: str | None) -> int:
    """No config file: the app opens on the setup screen (ui/screens/setup.py), which writes the
    config at `path` and then continues the normal start-up."""
    from tuimail.errors import UsageError
    if offline:
        raise UsageError(f"no config file ({path}) and --offline: run `tuimail setup` first (it needs the network)")
    from tuimail.ui.screens.setup import SetupRequest
    return run_app(Config(accounts={}), None, offline=False, start_folder=start_folder,
                   setup=SetupRequest(path=path, factory=_default_service_factory()))


def run_app(config: Config, account_names: list[str] | None, *, offline: bool, start_folder: str | None,
            service_factory: ServiceFactory | None = None, setup: SetupRequest | None = None) -> int:
    """Open the stores, start the sync services, run the TUI; returns the exit status. `setup`:
    no config yet, the app asks for the account first (it adds to `stores` and `services`)."""
    from tuimail.paths import account_store_path
    from tuimail.ui.bridge import EventBridge
    from tuimail.ui.collector import hold_for_start, release_start

    hold_for_start()  # no garbage collection before the first screen (ui/collector.py)

    names = list(account_names) if account_names else list(config.accounts)
    accounts = [config.account(n) for n in names]  # UsageError for an unknown name
    factory = service_factory or _default_service_factory()
    bridge = EventBridge()
    stores: dict[str, Store] = {}
    services: dict[str, AccountService] = {}
    app = None
    try:
        for acc in accounts:
            services[acc.name] = factory(config, acc, bridge, offline=offline)
        # A first run: the syncs start before any store is opened here, so their child processes
        # can be forks of this one (backends/child.py: they start ~0.1 s sooner than a fresh
        # interpreter); a store that exists but was never synced starts them just after.
        first = not offline and any(not account_store_path(acc.name).exists() for acc in accounts)
        if first:
            _start_all(services)
            # the stores are opened once the app is imported: meanwhile the syncs have made them
            # (opened at once, they waited for the schema's transaction, ~20 ms of the first screen)
            app_class = _import_app()
        for acc in accounts:
            stores[acc.name] = Store(account_store_path(acc.name))
        if not first:
            if not offline and any(is_cold(store) for store in stores.values()):
                _start_all(services)
            app_class = _import_app()
        app = app_class(config, stores, services, offline=offline, start_folder=start_folder, event_sink=bridge,
                         setup=setup)
        trace("ui: app constructed")
        app.run()  # the app starts the services (at once on a first run, else after its first paint)
        if app.exit_line:  # a store error or a crash inside the app: one line (ui/crash.py)
            print(app.exit_line, file=sys.stderr)
        return app.return_code or 0
    finally:
        release_start()
        from tuimail.ui import csscache
        csscache.save()
        if app is not None:  # the accounts the setup screen added (the app holds its own dict of services)
            services.update({k: v for k, v in app.services.items() if k not in services})
        for svc in services.values():
            try:
                svc.stop()
            except Exception:
                pass
        for store in stores.values():
            store.close()
