"""`l` limit and `/` search on the header list (issue #13), over a real store: the limit keeps
through reloads and threading and goes with the folder; the search keys move, repeat and wrap.
(Against a real Dovecot, with the server asked about bodies: tests/integration/test_finding_ui.py.)"""

from __future__ import annotations

import dataclasses

from tuimail.core.events import RowsChanged
from tuimail.store.store import FolderInfo
from tuimail.ui.widgets.line_prompt import LinePrompt

from .fixtures import fill, make_config, run, screen_text, settle, wait_until

SMITH = [3, 11, 19, 27, 35, 43]  # the fixture's uids from "Dave Smith" (uid % 8 == 3), of 50


async def _prompt(pilot, app, key: str, text: str, *, submit: str = "enter") -> None:
    await pilot.press(key)
    await wait_until(pilot, lambda: isinstance(app.screen, LinePrompt))
    for ch in text:
        await pilot.press({" ": "space", "~": "tilde"}.get(ch, ch))
    await pilot.press(submit)
    await settle(pilot, app)


def _sids(app) -> list[int]:
    hl = app.main.hlist
    return [int(hl.store.row(hl.folder_id, u).sid) for u in hl.uids]


def test_limit_keeps_through_reloads_and_threading_and_goes_with_the_folder(make_app):
    app, store, _svc = make_app(50, folder_rows={"Archive": 5})

    async def go():
        async with app.run_test(size=(160, 45), notifications=True) as pilot:
            await settle(pilot, app)
            hl = app.main.hlist
            await _prompt(pilot, app, "l", "~f smith")
            await wait_until(pilot, lambda: hl.limit is not None)
            assert sorted(_sids(app)) == SMITH
            assert "limit: ~f smith (6 of 50)" in screen_text(app)
            hl.rows_changed(reset=True)  # a sync's reload: filtered the same way
            await pilot.pause(0.5)
            await settle(pilot, app)
            assert sorted(_sids(app)) == SMITH
            # new mail in the folder that matches the limit joins it (worked out again)
            fid = store.folder_id("INBOX")
            fill(store, fid, [51, 59])  # (uid 51: Dave Smith; 59: Dave Smith too, 59 % 8 == 3)
            added = tuple(store.ids_of(fid, ["51", "59"]).values())
            app.main.handle_events([RowsChanged("test", fid, added=added)])
            await wait_until(pilot, lambda: len(hl.uids) == 8)
            await settle(pilot, app)
            smith = SMITH + [51, 59]
            assert sorted(_sids(app)) == smith and "(8 of 52)" in screen_text(app)
            await pilot.press("V")  # threaded, still limited
            await settle(pilot, app)
            assert sorted(_sids(app)) == smith and hl.threaded
            await pilot.press("V")
            await settle(pilot, app)
            # `l` and Escape: the whole folder again
            await _prompt(pilot, app, "l", "", submit="escape")
            assert len(hl.uids) == 52 and hl.limit is None and "limit:" not in screen_text(app)
            # a limit is of one folder: another folder opens whole
            await _prompt(pilot, app, "l", "~U")
            assert len(hl.uids) == len([u for u in [*range(1, 51), 51, 59] if u % 3 == 0])
            app.main.open_folder("test", store.folder_id("Archive"))
            await settle(pilot, app)
            assert hl.limit is None and len(hl.uids) == 5 and "limit:" not in screen_text(app)

    run(go())


def test_search_moves_repeats_backward_and_wraps(make_app):
    app, _store, _svc = make_app(50)

    async def go():
        async with app.run_test(size=(160, 45), notifications=True) as pilot:
            await settle(pilot, app)
            hl = app.main.hlist
            order = _sids(app)
            hits = [i for i, s in enumerate(order) if s in SMITH]

            def at() -> int:
                return hl.cursor

            await _prompt(pilot, app, "slash", "~f smith")
            assert at() == hits[0]
            await pilot.press("full_stop")
            await settle(pilot, app)
            assert at() == hits[1]
            await pilot.press("comma")
            await settle(pilot, app)
            assert at() == hits[0]
            await _prompt(pilot, app, "backslash", "", submit="escape")  # (Escape: nothing happens)
            assert at() == hits[0]
            # backward, Enter alone: the last pattern again, from the first match: it wraps
            await _prompt(pilot, app, "backslash", "")
            assert at() == hits[-1]
            assert any("search wrapped to the bottom" in n.message for n in app._notifications)
            await pilot.press("full_stop")  # the last search's way (backward)
            await settle(pilot, app)
            assert at() == hits[-2]
            hl.move_cursor(hits[-1])
            await pilot.press("comma")  # the other way: forward, past the last match
            await settle(pilot, app)
            assert at() == hits[0]
            assert any("search wrapped to the top" in n.message for n in app._notifications)

    run(go())


def test_a_virtual_folder_steps_to_unread_and_deletes_into_the_accounts_trash(make_app):
    app, store, _svc = make_app(50, folder_rows={"Archive": 20})

    async def go():
        async with app.run_test(size=(160, 45), notifications=True) as pilot:
            await settle(pilot, app)
            hl = app.main.hlist
            await _prompt(pilot, app, "S", "~f smith")
            await wait_until(pilot, lambda: hl.source is not None)
            entries = [hl.source.entry(k) for k in hl.uids]
            assert sorted({e.folder for e in entries}) == ["Archive", "INBOX"] and len(entries) == 6 + 3
            rows = hl.source.rows(list(hl.uids))
            unread = [i for i, k in enumerate(hl.uids) if not rows[k].seen]
            hl.move_cursor(0)
            await pilot.press("n")
            assert hl.cursor == next(i for i in unread if i > 0)
            # d: a move to the Trash of the message's own account, journaled there; out of the
            # results at once
            e = hl.source.entry(hl.uids[hl.cursor])
            await pilot.press("d")
            await settle(pilot, app)
            assert len(hl.uids) == 8
            await wait_until(pilot, lambda: [(j.op, j.folder_id, j.msg_id, j.dest) for j in store.pending()]
                             == [("move", e.folder_id, e.id, "Trash")])
            assert e.id not in store.id_list(e.folder_id)

    run(go())


def test_searches_node_stays_below_an_account_that_comes_later(make_app):
    cfg = dataclasses.replace(make_config(), searches={"flagged": "~F"})
    app, _store, _svc = make_app(20, config=cfg)

    async def go():
        async with app.run_test(size=(120, 30)) as pilot:
            await settle(pilot, app)
            tree = app.main.folder_tree
            await wait_until(pilot, lambda: "flagged" in screen_text(app))
            tree.set_account("later", [FolderInfo(99, "INBOX", "/", "inbox", "", True, "", 0, 0, None)])
            await pilot.pause()
            labels = [str(n.label) for n in tree.root.children]
            assert labels[-1] == "[searches]" and labels[1].startswith("later"), labels

    run(go())


def test_without_saved_searches_their_controller_waits_for_first_use(make_app):
    """After the first screen nothing of [searches] is made (its modules cost ~20 ms of the UI
    thread while a first sync is at its busiest); a search across all folders still works."""
    app, _store, _svc = make_app(20)

    async def go():
        async with app.run_test(size=(120, 30)) as pilot:
            await settle(pilot, app)
            await pilot.pause(0.2)
            assert not app.main.made("searches") and "[searches]" not in screen_text(app)
            app.main.searches.search_all("~A")  # (G's prompt, answered)
            await wait_until(pilot, lambda: "[searches]" in screen_text(app))

    run(go())
