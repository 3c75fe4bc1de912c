"""Pilot tests of the three-pane reader over real Stores and a fake sync service."""

from __future__ import annotations

from tuimail.store.store import Store
from tuimail.core.events import FoldersChanged, RowsChanged, SyncState

from .fixtures import (NOW, FakeService, content_for, fill, header_row, make_config, run, screen_text, settle,
                       wait_until)


def test_opens_inbox_and_moves_with_j_k(make_app):
    app, store, svc = make_app(50)

    async def go():
        async with app.run_test(size=(120, 36)) as pilot:
            await settle(pilot, app)
            hl = app.main.hlist
            assert len(hl.uids) == 50 and hl.cursor == 0 and hl.current_uid == 1
            assert hl.has_focus
            assert "Lunch on Friday?" in screen_text(app)  # uid 1, the newest
            await pilot.press("j", "j", "j", "k")
            assert hl.current_uid == 3
            await pilot.press("G")
            assert hl.current_uid == 50
            await pilot.press("g")
            assert hl.cursor == 0
            assert ("watch_folder", "INBOX") in svc.calls
            status = screen_text(app).splitlines()[-1]
            assert "INBOX" in status and "50 msgs" in status

    run(go())


def test_open_message_shows_text_and_marks_read(make_app):
    app, store, svc = make_app(50)
    fid = store.folder_id("INBOX")
    assert not store.row(fid, 3).seen

    async def go():
        async with app.run_test(size=(120, 36)) as pilot:
            await settle(pilot, app)
            await pilot.press("j", "j", "enter")
            await settle(pilot, app)
            reader = app.main.reader
            assert reader.has_focus
            assert "this is message 3 in INBOX." in reader.plain_text
            assert "[1] https://example.org/details" in reader.plain_text
            assert "report.pdf" in reader.plain_text and "application/pdf" in reader.plain_text
            assert "this is message 3 in INBOX." in screen_text(app)
            assert ("open_message", "INBOX", 3, False) in svc.calls
            assert store.row(fid, 3).seen  # mark_read_delay = 0: at once
            assert ("wake",) in svc.calls
            assert [e.op for e in store.pending()] == ["flags"]
            # next message from the pager (J), back to the list (q)
            await pilot.press("J")
            await settle(pilot, app)
            assert "this is message 4 in INBOX." in reader.plain_text
            await pilot.press("q")
            assert app.main.hlist.has_focus and app.main.hlist.current_uid == 4

    run(go())


def test_mark_read_never(make_app):
    app, store, svc = make_app(10, config=make_config(mark_read_delay=None))
    fid = store.folder_id("INBOX")

    async def go():
        async with app.run_test(size=(120, 36)) as pilot:
            await settle(pilot, app)
            await pilot.press("j", "j", "enter")
            await settle(pilot, app)
            assert "message 3" in app.main.reader.plain_text
            assert not store.row(fid, 3).seen
            assert store.pending() == []

    run(go())


def test_flag_and_toggle_read_change_row_and_journal(make_app):
    app, store, svc = make_app(50)
    fid = store.folder_id("INBOX")

    async def go():
        async with app.run_test(size=(120, 36)) as pilot:
            await settle(pilot, app)
            await pilot.press("j")  # uid 2: seen, not flagged
            assert not store.row(fid, 2).flagged
            line_before = screen_text(app).splitlines()[1]
            await pilot.press("F")
            await pilot.pause()
            assert store.row(fid, 2).flagged
            entries = store.pending()
            assert len(entries) == 1 and entries[0].add_flags == ("flagged",) and entries[0].msg_id == 2
            assert ("wake",) in svc.calls
            line_after = screen_text(app).splitlines()[1]
            assert line_before != line_after and " ! " in line_after[:40].replace("▕", " ")
            await pilot.press("N")  # mark unread
            assert not store.row(fid, 2).seen
            await wait_until(pilot, lambda: "17 unread" in screen_text(app).splitlines()[-1])  # 16 + this one
            await pilot.press("F")
            assert not store.row(fid, 2).flagged

    run(go())


def test_delete_moves_to_trash_then_expunge_in_trash_asks(make_app):
    app, store, svc = make_app(20)
    inbox, trash = store.folder_id("INBOX"), store.folder_id("Trash")

    async def go():
        async with app.run_test(size=(120, 36)) as pilot:
            await settle(pilot, app)
            await pilot.press("j", "d")
            hl = app.main.hlist
            assert 2 not in hl.uids and hl.current_uid == 3  # the cursor stays at the same index
            assert [(e.op, e.msg_id, e.dest) for e in store.pending()] == [("move", 2, "Trash")]
            # archive the next one
            await pilot.press("a")
            assert [(e.op, e.msg_id, e.dest) for e in store.pending()][-1] == ("move", 3, "Archive")
            # in Trash, d asks first
            fill(store, trash, [500])
            app.main.open_folder("test", trash)
            await pilot.pause()
            assert list(app.main.hlist.uids) == list(store.ids_of(trash, ["500"]).values())  # (local ids)
            await pilot.press("d")
            await pilot.pause()
            assert type(app.screen).__name__ == "ConfirmScreen"
            await pilot.press("n")
            assert store.pending()[-1].op == "move"
            await pilot.press("d", "y")
            await pilot.pause()
            assert store.pending()[-1].op == "expunge" and list(app.main.hlist.uids) == []
            assert inbox != trash

    run(go())


def test_switch_folder_with_picker_and_tree(make_app):
    app, store, svc = make_app(30, folder_rows={"Archive": 7, "Lists/python": 3})

    async def go():
        async with app.run_test(size=(120, 36)) as pilot:
            await settle(pilot, app)
            await pilot.press("c")
            await pilot.pause()
            await pilot.press(*"archive")
            await pilot.press("enter")
            await pilot.pause()
            assert app.main.folder.name == "Archive"
            assert len(app.main.hlist.uids) == 7
            assert "Archive" in screen_text(app).splitlines()[-1]
            assert ("watch_folder", "Archive") in svc.calls
            # the tree: Tab to it, move down to "python", Enter
            app.main.folder_tree.focus()
            await pilot.pause()
            tree = app.main.folder_tree
            node = next(n for (acct, fid), n in tree._folder_nodes.items()
                        if fid == store.folder_id("Lists/python"))
            tree.move_cursor(node)
            await pilot.press("enter")
            await pilot.pause()
            assert app.main.folder.name == "Lists/python" and len(app.main.hlist.uids) == 3
            assert app.main.hlist.has_focus

    run(go())


def test_offline_state_and_back(make_app):
    app, store, svc = make_app(20, offline=True, service=FakeService(offline=True))

    async def go():
        async with app.run_test(size=(120, 36)) as pilot:
            await settle(pilot, app)
            assert "OFFLINE" in screen_text(app).splitlines()[-1]
            # actions queue offline
            await pilot.press("F")
            assert store.pending_count() == 1
            await wait_until(pilot, lambda: "1 pending" in screen_text(app).splitlines()[-1])
            # an uncached body offline: a one-line message, no crash
            await pilot.press("enter")
            await settle(pilot, app)
            assert "not available offline" in app.main.reader.plain_text
            # back online
            await pilot.press("escape", "ctrl+o")
            await pilot.pause()
            assert ("set_offline", False) in svc.calls
            assert "OFFLINE" not in screen_text(app).splitlines()[-1]
            app.event_sink(SyncState("test", "syncing", folder="INBOX", done=3, total=9, pending=1))
            await pilot.pause()
            assert "syncing INBOX 3/9" in screen_text(app).splitlines()[-1]
            # the server goes away: the service reports offline with an error
            app.event_sink(SyncState("test", "offline", error="connection refused\x1b[2J"))
            await pilot.pause()
            last = screen_text(app).splitlines()[-1]
            assert "OFFLINE" in last and "connection refused" in last and "\x1b" not in last

    run(go())


def test_new_mail_keeps_cursor_on_the_same_message(make_app):
    app, store, svc = make_app(50)
    fid = store.folder_id("INBOX")

    async def go():
        async with app.run_test(size=(120, 36)) as pilot:
            await settle(pilot, app)
            await pilot.press("j", "j", "j", "j", "enter")  # reading uid 5
            await settle(pilot, app)
            hl = app.main.hlist
            assert hl.current_uid == 5 and hl.cursor == 4
            new = [header_row(u, date=NOW + u, subject=f"fresh {u}") for u in range(51, 56)]
            store.insert_headers(fid, new)
            # from another thread, as the sync worker would
            import threading
            t = threading.Thread(target=lambda: [app.event_sink(RowsChanged("test", fid, added=(u,)))
                                                 for u in range(51, 56)])
            t.start()
            t.join()
            await pilot.pause(0.4)  # uid-list reloads are at most every 0.3 s
            assert hl.current_uid == 5 and hl.cursor == 9
            assert list(hl.uids[:5]) == [55, 54, 53, 52, 51]
            assert "this is message 5" in app.main.reader.plain_text
            assert "fresh 55" in screen_text(app)
            # flags changed elsewhere: only that row is refetched
            store.apply_server_flags(fid, [("7", {"flagged", "seen"}, "", 99)])
            app.event_sink(RowsChanged("test", fid, ids=(7,)))
            await pilot.pause()
            assert hl._rows.get(7) is None or hl._rows[7].flagged
            # counts follow
            app.event_sink(FoldersChanged("test"))
            await wait_until(pilot, lambda: "55 msgs" in screen_text(app).splitlines()[-1])

    run(go())


HOSTILE = "\x1b]0;pwned\x07 [@click=app.quit]x[/] \x1b[2J"


def test_hostile_strings_render_harmlessly(make_app, tmp_path):
    store = Store(tmp_path / "hostile.sqlite3")
    store.upsert_folder("INBOX", "/", [], "inbox")
    store.upsert_folder("[@click=app.quit]evil[/]\x1b[31m", "/", [], None)
    fid = store.folder_id("INBOX")
    store.insert_headers(fid, [header_row(1, subject=HOSTILE, from_=HOSTILE + " <a@b>"),
                               header_row(2, subject="normal")])
    svc = FakeService(contents={("INBOX", 1): content_for("INBOX", 1, text="body " + HOSTILE + "\n\x9b31mC1",
                                                          links=["https://x/\x1b]8;;evil\x07"])})
    app, _, _ = make_app(store=store, service=svc)

    async def go():
        async with app.run_test(size=(120, 36)) as pilot:
            await settle(pilot, app)
            text = screen_text(app)
            assert "[@click=app.quit]x[/]" in text  # shown literally, not as markup
            assert "\x1b" not in text and "\x07" not in text
            await pilot.click("#list", offset=(40, 0))
            await pilot.press("enter")
            await settle(pilot, app)
            text = screen_text(app)
            assert "\x1b" not in text and "\x9b" not in text and "\x07" not in text
            assert "body" in app.main.reader.plain_text
            await pilot.press("colon")
            await pilot.pause()
            await pilot.press(*"evil")
            await pilot.pause(0.5)
            assert "\x1b" not in screen_text(app)
            await pilot.press("escape")
            assert app.is_running and app.return_code is None

    run(go())
    assert app.return_code in (None, 0)


def test_mark_read_after_delay_only_if_still_shown(make_app):
    app, store, svc = make_app(10, config=make_config(mark_read_delay=1.0))
    fid = store.folder_id("INBOX")

    async def go():
        async with app.run_test(size=(120, 36)) as pilot:
            await settle(pilot, app)
            await pilot.press("j", "j", "enter")  # uid 3, unread
            await settle(pilot, app)
            assert not store.row(fid, 3).seen
            await pilot.press("J")  # to uid 4 before the delay ran out
            await settle(pilot, app)
            await pilot.pause(1.3)
            assert not store.row(fid, 3).seen  # left before the delay
            await pilot.press("J", "J")  # uid 6 (unread), stay
            await settle(pilot, app)
            await pilot.pause(1.3)
            assert store.row(fid, 6).seen

    run(go())


def test_tab_moves_between_panes(make_app):
    app, store, svc = make_app(10)

    async def go():
        async with app.run_test(size=(120, 36)) as pilot:
            await settle(pilot, app)
            m = app.main
            assert m.hlist.has_focus
            await pilot.press("tab")
            assert m.reader.has_focus
            await pilot.press("tab")
            assert m.folder_tree.has_focus
            await pilot.press("shift+tab")
            assert m.reader.has_focus

    run(go())


def test_first_sync_folders_join_the_tree_in_place(make_app, tmp_path):
    """A first sync starts with INBOX alone; the other folders arrive at its end: the tree shows
    them in order, keeps INBOX's node (cursor and all) and lays out no screen for it."""
    store = Store(tmp_path / "first.sqlite3")
    store.upsert_folder("INBOX", "/", [], "inbox")
    fill(store, store.folder_id("INBOX"), range(1, 21))
    app, _, _ = make_app(store=store)

    async def go():
        async with app.run_test(size=(120, 36)) as pilot:
            await settle(pilot, app)
            tree = app.main.folder_tree
            inbox = tree._folder_nodes[("test", store.folder_id("INBOX"))]
            store.upsert_folder("Archive", "/", [], "archive")
            store.upsert_folder("Lists", "/", [], None, selectable=False)
            store.upsert_folder("Lists/python", "/", [], None)
            store.upsert_folder("Zoo", "/", [], None)
            fill(store, store.folder_id("Zoo"), range(1, 4), flags="")
            layouts = []
            real = tree.refresh

            def refresh(*a, **kw):  # (whether the tree asked for a layout of the screen)
                out = real(*a, **kw)
                layouts.append(tree._layout_required)
                return out

            tree.refresh = refresh
            app.event_sink(FoldersChanged("test"))
            await wait_until(pilot, lambda: "python" in screen_text(app))
            await settle(pilot, app)
            lines = [ln[:27].strip(" ▏│") for ln in screen_text(app).splitlines()[:8]]
            want = ["Inbox", "Archive", "Lists", "python", "Zoo 3"]
            got = [next((w for w in want if w in ln), None) for ln in lines]
            assert [g for g in got if g] == want, lines
            assert tree._folder_nodes[("test", store.folder_id("INBOX"))] is inbox
            assert layouts and not any(layouts)
            # counts change: the folder's and the account's labels follow
            def account_unread() -> int:  # the account's line, first in the tree: "test 9"
                words = screen_text(app).splitlines()[0][:27].split()
                return int(words[words.index("test") + 1])

            before = account_unread()
            fill(store, store.folder_id("Zoo"), range(4, 6), flags="")
            app.event_sink(FoldersChanged("test"))
            await wait_until(pilot, lambda: "Zoo 5" in screen_text(app))
            assert account_unread() == before + 2

    run(go())


def test_tree_follows_removed_and_reordered_folders(make_app, tmp_path):
    """A folder gone from the store leaves the tree; one whose role moves it to the top (a kept
    node would change places) makes the tree rebuild: either way it shows the store's order."""
    store = Store(tmp_path / "order.sqlite3")
    for name in ("INBOX", "Archive", "Old", "Zoo"):
        store.upsert_folder(name, "/", [], "inbox" if name == "INBOX" else None)
    fill(store, store.folder_id("INBOX"), range(1, 11))
    app, _, _ = make_app(store=store)

    def tree_lines() -> list[str]:
        words = [ln[:27].strip(" ▏│▼▶├└─") for ln in screen_text(app).splitlines()[1:8]]
        return [w.split()[0] for w in words if w]

    async def go():
        async with app.run_test(size=(120, 36)) as pilot:
            await settle(pilot, app)
            assert tree_lines()[:4] == ["Inbox", "Archive", "Old", "Zoo"]
            store.delete_folder("Old")
            store.upsert_folder("Zoo", "/", [], "trash")  # (a role: shown by its role's name, after Inbox)
            app.event_sink(FoldersChanged("test"))
            await wait_until(pilot, lambda: "Old" not in tree_lines())
            await settle(pilot, app)
            assert tree_lines()[:3] == ["Inbox", "Trash", "Archive"]

    run(go())
