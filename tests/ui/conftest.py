from __future__ import annotations

from datetime import UTC

import pytest

from tuimail.ui.app import TuimailApp

from .fixtures import NOW, FakeService, make_config, make_store


@pytest.fixture(autouse=True)
def _private_dirs(tmp_path, monkeypatch):
    # User themes and config must not leak in from the machine running the tests.
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    (tmp_path / "home").mkdir()


@pytest.fixture
def make_app(tmp_path):
    """make_app(n=50, config=None, service=None, **app_kw) -> (app, store, service)."""
    made = []

    def factory(n: int = 50, *, config=None, service=None, store=None, folder_rows=None, **kw):
        store = store or make_store(tmp_path / f"store{len(made)}.sqlite3", n, folder_rows=folder_rows)
        service = service or FakeService()
        app = TuimailApp(config or make_config(), {"test": store}, {"test": service},
                         clock=lambda: NOW, tz=UTC, **kw)
        made.append(store)
        return app, store, service

    yield factory
    for s in made:
        s.close()
