"""Tags and bulk actions in the app (issue 13 item 5), on a real store with the fake service: what
the user sees (the `*` mark, the status line), and what reaches the store: one intent, one
journal entry per message. The same against a real Dovecot: tests/integration/test_bulk_ui.py."""

from __future__ import annotations

from textual.widgets import Input

from tuimail.config import keys
from tuimail.core.events import SyncState

from .fixtures import quiesce, run, screen_text, settle, wait_until


def said(app) -> str:
    """The screen and the notifications shown (toasts)."""
    return screen_text(app) + "\n" + "\n".join(str(n.message) for n in app._notifications)


def _row(app, uid: int) -> str:
    """The screen line of the row whose subject names message `uid` (its marks first)."""
    hl = app.screen.hlist
    idx = hl.loader.index_of(uid)
    assert idx is not None
    y = idx - hl.scroll_offset.y
    return "".join(seg.text for seg in hl.render_line(y))


def test_keys_have_no_new_conflicts():
    for preset in ("default", "mutt"):
        assert list(keys._pairs(keys.effective_keys(preset))) == [("q", "quit", "close")]
    assert keys.BY_NAME["threaded"].keys == ("V",) and keys.BY_NAME["tag"].keys == ("t",)


def test_tag_marks_survive_sorting_and_semicolon_flags_them_all(make_app):
    app, store, _svc = make_app(30)
    fid = store.folder_id("INBOX")

    async def go():
        async with app.run_test(size=(120, 30)) as pilot:
            await settle(pilot, app)
            hl = app.screen.hlist
            first = hl.current_uid
            await pilot.press("t", "t", "t")  # tags three, the cursor going down
            second, third = hl.uids[1], hl.uids[2]
            assert hl.tagged == {first, second, third}
            assert hl.cursor == 3
            assert _row(app, first)[1] == "*"
            assert "3 tagged" in screen_text(app)
            await pilot.press("k", "t")  # untag the third
            assert hl.tagged == {first, second}
            await pilot.press("o", "O")  # another order: the tags stay on the same messages
            await quiesce(pilot)
            assert _row(app, first)[1] == "*" and _row(app, second)[1] == "*" and _row(app, third)[1] != "*"
            await pilot.press("V")  # threaded view moved off `t`
            await quiesce(pilot)
            assert hl.threaded and _row(app, first)[1] == "*"
            await pilot.press("semicolon")
            await pilot.pause()
            assert "apply to 2 tagged" in screen_text(app)
            await pilot.press("F")
            await settle(pilot, app)
            await wait_until(pilot, lambda: not app.overlay)
            rows = store.rows(fid, [first, second])
            assert all("flagged" in r.flags for r in rows.values())
            flagged = [e for e in store.pending(fid) if e.op == "flags" and "flagged" in e.add_flags]
            assert sorted(e.msg_id for e in flagged) == sorted([first, second])
            assert "flagged 2 messages" in screen_text(app)
            await pilot.press("semicolon", "x")  # any other key: nothing
            await settle(pilot, app)
            assert hl.tagged == {first, second}
            await pilot.press("semicolon", "t")  # `;t`: untag them all
            await pilot.pause()
            assert hl.tagged == set() and "tagged" not in screen_text(app).split("│")[0]
            await pilot.press("t", "k", "d")  # a tagged message that leaves the folder leaves its tag
            await settle(pilot, app)
            assert hl.tagged == set()

    run(go())


def test_tag_by_pattern_and_a_bad_pattern_points_at_the_token(make_app):
    app, store, _svc = make_app(40)
    fid = store.folder_id("INBOX")

    async def go():
        async with app.run_test(size=(120, 30)) as pilot:
            await settle(pilot, app)
            hl = app.screen.hlist
            await pilot.press("T")
            await pilot.pause()
            app.screen.query_one(Input).value = "~f alice ~q"
            await pilot.press("enter")
            await settle(pilot, app)
            assert hl.tagged == set()
            assert "unknown operator ~q at column 10" in said(app)
            await pilot.press("T")
            await pilot.pause()
            app.screen.query_one(Input).value = "~f alice"
            await pilot.press("enter")
            await settle(pilot, app)
            alice = {r.id for r in store.rows(fid, store.id_list(fid)).values() if "alice" in r.from_.lower()}
            assert alice and hl.tagged == alice
            assert f"tagged {len(alice)} messages" in screen_text(app)
            await pilot.press("ctrl+t")
            await pilot.pause()
            app.screen.query_one(Input).value = "~A"
            await pilot.press("enter")
            await settle(pilot, app)
            assert hl.tagged == set()

    run(go())


def test_semicolon_delete_moves_every_tagged_to_trash_in_one_intent(make_app):
    app, store, _svc = make_app(20)
    fid, trash = store.folder_id("INBOX"), store.folder_id("Trash")
    submitted = []

    async def go():
        async with app.run_test(size=(120, 30)) as pilot:
            await settle(pilot, app)
            screen = app.screen
            real = screen.intents.submit
            screen.intents.submit = lambda account, intent: (submitted.append(intent), real(account, intent))[1]
            hl = screen.hlist
            chosen = list(hl.uids[:5])
            await pilot.press(*["t"] * 5)
            await pilot.press("semicolon", "d")
            await settle(pilot, app)
            assert len(submitted) == 1 and submitted[0].op == "move" and submitted[0].dest == "Trash"
            assert sorted(submitted[0].ids) == sorted(chosen)
            assert not set(chosen) & set(hl.uids)  # gone from the list at once
            assert hl.tagged == set()
            await wait_until(pilot, lambda: "moved 5 messages to Trash" in screen_text(app))
            # the sync side's progress as the sets go out, beside what was done
            app.event_sink(SyncState("test", "syncing", folder="INBOX", done=2, total=5, pending=5))
            await wait_until(pilot, lambda: "syncing INBOX 2/5" in screen_text(app))
            status = screen_text(app).splitlines()[-1]
            assert "syncing INBOX 2/5 · 5 pending · moved 5 messages to Trash" in status
            assert sorted(e.msg_id for e in store.pending(fid) if e.op == "move") == sorted(chosen)
            assert store.counts(fid)[0] == 15 and trash is not None

    run(go())


def test_mark_all_read_asks_above_the_threshold(make_app, monkeypatch):
    from tuimail.ui.controllers import bulk

    monkeypatch.setattr(bulk, "CONFIRM_OVER", 5)
    app, store, _svc = make_app(40)
    fid = store.folder_id("INBOX")

    async def go():
        async with app.run_test(size=(120, 30)) as pilot:
            await settle(pilot, app)
            unread = store.counts(fid)[1]
            assert unread > 5
            await pilot.press("ctrl+a")
            await settle(pilot, app)
            assert type(app.screen).__name__ == "ConfirmScreen"
            assert f"Mark {unread} messages read in INBOX?" in screen_text(app)
            await pilot.press("y")
            await settle(pilot, app)
            await wait_until(pilot, lambda: store.counts(fid)[1] == 0)
            assert f"marked read {unread} messages" in screen_text(app)
            await pilot.press("ctrl+a")
            await settle(pilot, app)
            assert "no unread messages in INBOX" in said(app)

    run(go())


def test_save_to_mbox_appends_and_never_overwrites_unasked(make_app, tmp_path):
    app, store, svc = make_app(5)
    box = tmp_path / "saved.mbox"
    plain = tmp_path / "notes.txt"
    plain.write_bytes(b"my notes\n")

    async def go():
        async with app.run_test(size=(120, 30)) as pilot:
            await settle(pilot, app)
            await pilot.press("w")
            await pilot.pause()
            inp = app.screen.query_one(Input)
            assert inp.value == "~/"
            inp.value = str(box)
            await pilot.press("enter")
            await settle(pilot, app)
            await pilot.press("j", "w")
            await pilot.pause()
            app.screen.query_one(Input).value = str(box)  # an mbox now: appended to
            await pilot.press("enter")
            await settle(pilot, app)
            data = box.read_bytes()
            assert data.count(b"\nFrom alice@example.org ") + data.startswith(b"From alice@example.org ") == 2
            assert b"\r\n" not in data
            assert "appended 1 message to" in said(app)
            await pilot.press("w")
            await pilot.pause()
            app.screen.query_one(Input).value = str(plain)
            await pilot.press("enter")
            await pilot.pause()
            assert type(app.screen).__name__ == "ConfirmScreen"
            await pilot.press("n")
            await settle(pilot, app)
            assert plain.read_bytes() == b"my notes\n"
            await pilot.press("w")
            await pilot.pause()
            app.screen.query_one(Input).value = str(tmp_path / "nodir" / "x.mbox")
            await pilot.press("enter")
            await settle(pilot, app)
            assert "nodir: no such directory" in said(app)

    run(go())


def test_semicolon_copy_and_save_and_a_thread_to_trash(make_app, tmp_path):
    app, store, _svc = make_app(12)
    fid = store.folder_id("INBOX")
    store.set_threads(fid, [(1, 0, 1, ""), (4, 1, 1, "├─>"), (7, 2, 1, "│ └─>"), (9, 1, 1, "└─>"),
                            *[(u, 0, u, "") for u in (2, 3, 5, 6, 8, 10, 11, 12)]])
    box = tmp_path / "tagged.mbox"

    async def go():
        async with app.run_test(size=(120, 30)) as pilot:
            await settle(pilot, app)
            hl = app.screen.hlist
            hl.select_uid(2)
            await pilot.press("t", "t")
            pair = set(hl.tagged)
            await pilot.press("semicolon", "C")
            await pilot.pause()
            assert "Copy 2 messages to folder" in screen_text(app)
            app.screen.query_one(Input).value = "Archive"
            await pilot.press("enter")
            await settle(pilot, app)
            await wait_until(pilot, lambda: len([e for e in store.pending(fid) if e.op == "copy"]) == 2)
            copies = store.pending(fid)
            assert {e.msg_id for e in copies} == pair and {e.dest for e in copies} == {"Archive"}
            assert hl.tagged == pair and pair <= set(hl.uids)  # a copy leaves them here, tagged
            await pilot.press("semicolon", "w")
            await pilot.pause()
            app.screen.query_one(Input).value = str(box)
            await pilot.press("enter")
            await settle(pilot, app)
            await wait_until(pilot, lambda: box.exists() and box.read_bytes().count(b"From alice@example.org ") == 2)
            await pilot.press("V")  # threaded; a collapsed thread is one line: `t` tags all of it
            await quiesce(pilot)
            hl.select_uid(1)
            await pilot.press("minus")
            await quiesce(pilot)
            hl.select_uid(1)
            await pilot.press("t")
            assert hl.tagged == pair | {1, 4, 7, 9}
            hl.select_uid(1)
            await pilot.press("t")
            assert hl.tagged == pair
            await pilot.press("minus", "V")
            await quiesce(pilot)
            hl.select_uid(4)
            await app.screen.run_action("tag_thread")  # (the palette's "Tag / untag the thread")
            await settle(pilot, app)
            await wait_until(pilot, lambda: hl.tagged == pair | {1, 4, 7, 9})
            hl.tagged.difference_update({1, 4, 7, 9})
            hl.select_uid(7)  # in the thread of 1
            await pilot.press("ctrl+d")
            await settle(pilot, app)
            await wait_until(pilot, lambda: not {1, 4, 7, 9} & set(hl.uids))
            moved = [e for e in store.pending(fid) if e.op == "move"]
            assert sorted(e.msg_id for e in moved) == [1, 4, 7, 9] and {e.dest for e in moved} == {"Trash"}
            assert "moved 4 messages to Trash" in screen_text(app)

    run(go())


def test_a_tagged_thread_moved_with_one_key_comes_back_with_u(make_app):
    """The issue's walk-through: tag a thread, move it, undo (one intent: one step back)."""
    app, store, _svc = make_app(12)
    fid, arch = store.folder_id("INBOX"), store.folder_id("Archive")
    store.set_threads(fid, [(1, 0, 1, ""), (4, 1, 1, "├─>"), (7, 2, 1, "│ └─>"), (9, 1, 1, "└─>"),
                            *[(u, 0, u, "") for u in (2, 3, 5, 6, 8, 10, 11, 12)]])

    async def go():
        async with app.run_test(size=(120, 30)) as pilot:
            await settle(pilot, app)
            hl = app.screen.hlist
            hl.select_uid(7)
            await app.screen.run_action("tag_thread")
            await settle(pilot, app)
            assert hl.tagged == {1, 4, 7, 9}
            await pilot.press("semicolon", "s")
            await pilot.pause()
            app.screen.query_one(Input).value = "Archive"
            await pilot.press("enter")
            await settle(pilot, app)
            await wait_until(pilot, lambda: {e.msg_id for e in store.pending(fid) if e.dest == "Archive"}
                             == {1, 4, 7, 9})  # (the fake sends nothing: the move waits in the journal)
            assert not {1, 4, 7, 9} & set(hl.uids)
            await pilot.press("u")
            await settle(pilot, app)
            await wait_until(pilot, lambda: {1, 4, 7, 9} <= set(store.id_list(fid)))
            await wait_until(pilot, lambda: {1, 4, 7, 9} <= set(hl.uids))
            assert store.pending(fid) == [] and store.id_list(arch) == []

    run(go())


def test_in_a_virtual_folder_t_says_tags_belong_to_a_folder(make_app):
    app, store, _svc = make_app(30)

    async def go():
        async with app.run_test(size=(160, 45), notifications=True) as pilot:
            await settle(pilot, app)
            hl = app.screen.hlist
            await pilot.press("S")  # H1's search of every folder: a virtual folder
            await pilot.pause()
            app.screen.query_one(Input).value = "~A"
            await pilot.press("enter")
            await wait_until(pilot, lambda: hl.source is not None)
            await pilot.press("t")
            await settle(pilot, app)
            assert "tags belong to a folder" in said(app)
            assert hl.tagged == set() and all(not v for v in hl.tags.values())
            await pilot.press("semicolon")
            await settle(pilot, app)
            assert type(app.screen).__name__ == "MainScreen"

    run(go())


def test_a_single_flag_does_not_make_the_bulk_controller(make_app):
    """F on one message is the intent queue's, not a bulk action: its report must not make (and
    import) the bulk controller on the UI thread (~30 ms, measured as the longest stall pressing
    F/N/j during a first download)."""
    app, store, _svc = make_app(10)

    async def go():
        async with app.run_test(size=(120, 30)) as pilot:
            await settle(pilot, app)
            uid = app.screen.hlist.current_uid
            await pilot.press("F")
            await wait_until(pilot, lambda: store.db.execute("SELECT flagged FROM messages WHERE id = ?",
                                                             (uid,)).fetchone()[0] == 1)
            await quiesce(pilot)
            assert not app.screen.made("bulk")

    run(go())


def test_a_pop3_message_still_downloading_is_not_copied_and_the_status_says_so(make_app, tmp_path):
    """A POP3 account's local folders: of two tagged messages, the one whose body is still to
    come (headers_first) has nothing to copy yet; the other is copied at once, and the status
    line says why one was left."""
    from tuimail.backends.pop3.ledger import StoreLedger
    from tuimail.backends.pop3.plan import ServerMessage
    from tuimail.store import Store
    from tuimail.store.pop3ledger import Pop3Ledger

    st = Store(tmp_path / "pop3.sqlite3")
    pop = Pop3Ledger(st)
    inbox = pop.local_folder("INBOX", "inbox")
    arch = pop.local_folder("Archive", "archive")
    led = StoreLedger(pop, inbox, "test")

    def msg(i: int) -> bytes:
        return (b"From: A <a@example.org>\r\nSubject: message %d\r\nMessage-ID: <%d@x>\r\n"
                b"Date: Mon, 01 Jan 2024 10:00:0%d +0000\r\n\r\nbody %d\r\n" % (i, i, i, i))

    led.commit(ServerMessage(1, 100, "U1"), msg(1), "fp1", headers_only=False)
    led.commit(ServerMessage(2, 100, "U2"), msg(2).split(b"\r\n\r\n")[0] + b"\r\n\r\n", "fp2", headers_only=True)
    led.flush()
    from tuimail.core.service import Capabilities

    from .fixtures import FakeService
    pop3 = FakeService()
    pop3.capabilities = Capabilities(server_folders=False)  # (what a POP3 account's service says)
    app, store, _svc = make_app(store=st, service=pop3)

    async def go():
        async with app.run_test(size=(120, 30)) as pilot:
            await settle(pilot, app)
            hl = app.screen.hlist
            for uid in hl.uids:
                hl.select_uid(uid)
                await pilot.press("t")
            await pilot.press("semicolon", "C")
            await pilot.pause()
            app.screen.query_one(Input).value = "Archive"
            await pilot.press("enter")
            await settle(pilot, app)
            await wait_until(pilot, lambda: "1 still downloading" in said(app))
            assert "copied 1 message to Archive (1 still downloading)" in said(app)
            assert [r.subject for r in store.rows(arch, store.id_list(arch)).values()] == ["message 1"]

    run(go())
