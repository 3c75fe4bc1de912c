"""Snapshots at fixed sizes, theme and clock (update with: pytest tests/ui --snapshot-update)."""

from __future__ import annotations

import pytest

from .fixtures import FakeService, make_config, quiesce


async def _open_third(pilot):
    await pilot.pause()
    await pilot.press("j", "j", "enter")
    await pilot.app.workers.wait_for_complete()
    await quiesce(pilot)  # past the debounce of the unread counts, read in a thread


@pytest.mark.parametrize("size", [(120, 36), (80, 24)], ids=["120x36", "80x24"])
def test_main_view(snap_compare, make_app, size):
    app, _store, _svc = make_app(60, folder_rows={"Archive": 3})
    assert snap_compare(app, terminal_size=size, run_before=_open_third)


def test_wide_preview_right(snap_compare, make_app):
    app, _store, _svc = make_app(60)
    assert snap_compare(app, terminal_size=(160, 40), run_before=_open_third)


@pytest.mark.parametrize("theme", ["light", "classic"])
def test_themes(snap_compare, make_app, theme):
    app, _store, _svc = make_app(40, config=make_config(theme=theme))
    assert snap_compare(app, terminal_size=(120, 36), run_before=_open_third)


def test_offline(snap_compare, make_app):
    app, _store, _svc = make_app(40, offline=True, service=FakeService(offline=True))

    async def before(pilot):
        await pilot.pause()
        await pilot.press("F", "j", "enter")
        await pilot.app.workers.wait_for_complete()
        await quiesce(pilot)

    assert snap_compare(app, terminal_size=(80, 24), run_before=before)


def test_threaded(snap_compare, make_app):
    app, store, _svc = make_app(12, config=make_config(threaded=True))
    fid = store.folder_id("INBOX")
    order = [(1, 0, 1, ""), (4, 1, 1, "├─>"), (7, 2, 1, "│ └─>"), (9, 1, 1, "└─>"),
             (2, 0, 2, ""), (3, 0, 3, ""), (5, 1, 3, "└─>"), (6, 0, 6, ""), (8, 0, 8, ""),
             (10, 0, 10, ""), (11, 1, 10, "└─>"), (12, 0, 12, "")]
    store.set_threads(fid, order)

    async def before(pilot):
        await pilot.pause()
        await pilot.press("j", "j", "j", "j", "j", "minus")  # collapse the thread of uid 3
        await quiesce(pilot)

    assert snap_compare(app, terminal_size=(120, 30), run_before=before)
