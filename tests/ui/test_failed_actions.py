"""Pilot tests: a folder the server refused is marked in the tree with its reason, failed actions
are counted in the status bar, listed by `!` and discarded there (issue 9.2, 9.3)."""

from __future__ import annotations

from tuimail.core.events import FoldersChanged

from .fixtures import quiesce, run, screen_text, settle, wait_until


def archive_marked(app) -> bool:
    return any("Archive" in line[:25] and "⚠" in line[:25] for line in screen_text(app).splitlines())


def test_tree_marks_a_refused_folder_and_status_counts_failed_actions(make_app):
    app, store, svc = make_app(20, folder_rows={"Archive": 5})
    inbox, arch = store.folder_id("INBOX"), store.folder_id("Archive")
    store.set_flags(inbox, [2], add=["flagged"])
    store.move(inbox, [3], "Archive")
    for e in store.pending():
        store.journal_failed(e.id, "server refused UID STORE: NO [CANNOT] no way", final=True)
    store.set_folder_error(arch, "server refused SELECT: NO [SERVERBUG] Internal error")

    async def go():
        async with app.run_test(size=(160, 45)) as pilot:
            await settle(pilot, app)
            await wait_until(pilot, lambda: archive_marked(app))
            status = screen_text(app).splitlines()[-1]
            assert "2 failed in INBOX" in status
            # the reason is shown when the folder is highlighted in the tree
            tree = app.main.folder_tree
            tree.focus()
            node = tree._folder_nodes[("test", arch)]
            tree.move_cursor(node)
            await pilot.pause()
            assert "Archive: server refused SELECT: NO [SERVERBUG]" in screen_text(app).splitlines()[-1]

            # the list of actions, then discard both: the row comes back, the flag goes
            app.main.hlist.focus()
            await pilot.press("!")
            await pilot.pause()
            text = screen_text(app)
            assert "failed" in text and "+flagged" in text and "move to Archive" in text
            assert "server refused UID STORE" in text
            assert 3 not in app.main.hlist.uids
            await pilot.press("d")
            await pilot.pause()
            await pilot.press("D")
            await pilot.pause()
            assert "Nothing waiting, nothing failed." in screen_text(app)
            await pilot.press("escape")
            await quiesce(pilot)
            assert store.actions() == []
            await wait_until(pilot, lambda: 3 in app.main.hlist.uids)
            assert "flagged" not in store.row(inbox, 2).flags
            await wait_until(pilot, lambda: "failed in" not in screen_text(app).splitlines()[-1])

            # a good sync clears the refusal: the mark goes
            store.set_folder_error(arch, None)
            app.bridge(FoldersChanged("test"))
            await wait_until(pilot, lambda: not archive_marked(app))

    run(go())
