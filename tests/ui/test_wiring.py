"""First run on an empty store, -f FOLDER, several accounts, and run_app's wiring."""

from __future__ import annotations

from datetime import UTC

from tuimail.config.load import Account, Config
from tuimail.store.store import Store
from tuimail.core.events import FoldersChanged, RowsChanged
from tuimail.ui.app import TuimailApp, run_app

from .fixtures import NOW, FakeService, fill, make_config, make_store, run, screen_text, settle, wait_until


def test_empty_store_then_first_sync(tmp_path):
    store = Store(tmp_path / "empty.sqlite3")
    svc = FakeService()
    app = TuimailApp(make_config(), {"test": store}, {"test": svc}, start_folder="Lists/python",
                     clock=lambda: NOW, tz=UTC)

    async def go():
        async with app.run_test(size=(80, 24)) as pilot:
            await settle(pilot, app)
            assert app.main.folder is None and "No folder open" in screen_text(app)
            # the sync worker creates folders and rows, then reports
            for name in ("INBOX", "Lists", "Lists/python"):
                store.upsert_folder(name, "/", [], "inbox" if name == "INBOX" else None)
            fill(store, store.folder_id("Lists/python"), range(1, 4))
            app.event_sink(FoldersChanged("test"))
            app.event_sink(RowsChanged("test", store.folder_id("Lists/python"), added=(1, 2, 3)))
            await wait_until(pilot, lambda: app.main.folder is not None)
            await wait_until(pilot, lambda: len(app.main.hlist.uids) == 3)
            assert app.main.folder.name == "Lists/python"  # -f FOLDER, once it exists
            assert len(app.main.hlist.uids) == 3
            assert ("watch_folder", "Lists/python") in svc.calls

    run(go())
    store.close()


def test_two_accounts(tmp_path):
    a = make_store(tmp_path / "a.sqlite3", 5)
    b = make_store(tmp_path / "b.sqlite3", 8)
    cfg = make_config()
    acc2 = Account(name="work", kind="imap", host="localhost", port=143, security="none", username="w",
                   password="x")
    cfg = Config(accounts={**cfg.accounts, "work": acc2}, ui=cfg.ui)
    sa, sb = FakeService(), FakeService()
    app = TuimailApp(cfg, {"test": a, "work": b}, {"test": sa, "work": sb}, start_folder="work/INBOX",
                     clock=lambda: NOW, tz=UTC)

    async def go():
        async with app.run_test(size=(120, 36)) as pilot:
            await settle(pilot, app)
            text = screen_text(app)
            assert "test" in text and "work" in text
            assert app.main.account == "work" and len(app.main.hlist.uids) == 8
            await pilot.press("F")
            assert b.pending_count() == 1 and a.pending_count() == 0
            assert ("wake",) in sb.calls and ("wake",) not in sa.calls
            await pilot.press("c")
            await pilot.pause()
            await pilot.press(*"test: inbox", "enter")
            await pilot.pause()
            assert app.main.account == "test" and len(app.main.hlist.uids) == 5

    run(go())
    a.close()
    b.close()


def test_run_app_wiring(tmp_path, monkeypatch):
    made = {}

    def factory(config, account, on_event, *, offline):
        svc = FakeService(offline=offline)
        svc.on_event = on_event
        made[account.name] = svc
        return svc

    seen = {}

    def fake_run(self):
        seen["stores"] = dict(self.stores)
        seen["offline"] = self.offline
        seen["start"] = self.start_folder
        seen["sink"] = self.event_sink
        return None

    monkeypatch.setattr(TuimailApp, "run", fake_run)
    rc = run_app(make_config(), None, offline=True, start_folder="Sent", service_factory=factory)
    assert rc == 0
    svc = made["test"]
    # run_app does not start the services itself: the mounted app does, after its first paint
    assert ("start",) not in svc.calls and svc.calls[-1] == ("stop",) and svc.offline
    assert seen["offline"] and seen["start"] == "Sent" and svc.on_event is seen["sink"]
    assert (tmp_path / "data" / "tuimail" / "accounts" / "test.sqlite3").exists()


def test_services_start_after_the_first_paint(make_app):
    app, store, service = make_app(20)

    async def go():
        async with app.run_test(size=(100, 30)) as pilot:
            await wait_until(pilot, lambda: ("start",) in service.calls)
            assert screen_text(app).strip()  # drawn before or while the services start

    run(go())


def test_run_app_starts_a_first_runs_sync_before_textual(tmp_path, monkeypatch):
    """On an empty store the first screen is the network's first window: run_app starts the
    sync (asking it to hold after that window until the UI paints) before the app is built;
    with a filled store it leaves the start to the app, after its first paint."""
    order = []

    class Svc(FakeService):
        def hold_for_first_paint(self):
            order.append("hold")

        def start(self):
            # on a first run nothing has opened a store yet: the sync child may be a fork
            order.append("start" if connections_opened() == opened else "start after a store was opened")

    def factory(config, account, on_event, *, offline):
        return Svc(offline=offline)

    def fake_run(self):
        order.append("app.run")

    from tuimail.store.db import connections_opened
    from tuimail.ui import launch
    opened = connections_opened()
    monkeypatch.setattr(TuimailApp, "run", fake_run)
    monkeypatch.setattr(launch, "usable_cpus", lambda: 1)
    assert run_app(make_config(), None, offline=False, start_folder=None, service_factory=factory) == 0
    assert order == ["hold", "start", "app.run"]
    # with two CPUs or more the sync does not pause for the first paint: they run side by side
    import shutil
    shutil.rmtree(tmp_path / "data", ignore_errors=True)
    order.clear()
    opened = connections_opened()
    monkeypatch.setattr(launch, "usable_cpus", lambda: 2)
    assert run_app(make_config(), None, offline=False, start_folder=None, service_factory=factory) == 0
    assert order == ["start", "app.run"]

    from tuimail import paths
    make_store(paths.account_store_path("test"), 5).close()
    with Store(paths.account_store_path("test")) as st:
        st.set_folder_state(st.folder_id("INBOX"), '{"uidvalidity":7}')
    order.clear()
    assert run_app(make_config(), None, offline=False, start_folder=None, service_factory=factory) == 0
    assert order == ["app.run"]


def test_the_fake_service_keeps_the_contract():
    """The UI knows a service as AccountService only: the fake the UI tests use is one too (else a
    test could pass on a method no backend has)."""
    from tests.support.contract import assert_keeps_the_contract
    from tuimail.core.service import AccountService

    assert_keeps_the_contract(FakeService())
    assert isinstance(FakeService(), AccountService)


def test_the_screen_and_the_list_hold_their_controllers_instead_of_mixing_them_in():
    """Behaviour lives in plain objects with typed dependencies (checked by mypy); the Textual
    classes derive from Textual alone."""
    from textual.screen import Screen
    from textual.scroll_view import ScrollView

    from tuimail.ui.screens.main import MainScreen
    from tuimail.ui.widgets.header_list import HeaderList

    assert MainScreen.__bases__ == (Screen,)
    assert HeaderList.__bases__ == (ScrollView,)
