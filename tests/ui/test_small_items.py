"""Issue 11.7's smaller items, each as the user sees it: help, unbound keys, the preview, the
delete dialog, folder matching in `c`, dates, themes, the palette."""

from __future__ import annotations

import dataclasses

from .fixtures import make_config, run, screen_text, settle, wait_until
from datetime import UTC


def _opens(svc) -> list[tuple]:
    return [c for c in svc.calls if c[0] == "open_message"]


def test_help_lists_each_key_once(make_app):
    cfg = dataclasses.replace(make_config(), keys={"cursor_down": ("j", "j", "down")})
    app, store, svc = make_app(5, config=cfg)

    async def go():
        async with app.run_test(size=(120, 40)) as pilot:
            await settle(pilot, app)
            await pilot.press("question_mark")
            await settle(pilot, app)
            text = app.screen.query_one("MessageView").plain_text
            line = next(ln for ln in text.splitlines() if ln.rstrip().endswith("cursor_down"))
            assert line.split()[:2] == ["j,", "↓"], line

    run(go())


def test_an_unbound_key_says_so_in_the_status_line(make_app):
    app, store, svc = make_app(5)

    async def go():
        async with app.run_test(size=(120, 36)) as pilot:
            await settle(pilot, app)
            await pilot.press("x")
            await pilot.pause()
            status = screen_text(app).splitlines()[-1]
            assert "x: key not bound, ? for help" in status
            await pilot.press("j")  # a bound key says nothing
            assert app.main.hlist.current_uid == 2

    run(go())


def test_the_preview_follows_the_cursor_once_it_rests(make_app):
    app, store, svc = make_app(30)

    async def go():
        async with app.run_test(size=(160, 45)) as pilot:
            await settle(pilot, app)
            assert not _opens(svc)
            await pilot.press(*["j"] * 11)  # faster than the debounce: nothing fetched yet
            assert not _opens(svc)
            await wait_until(pilot, lambda: "this is message 12" in app.main.reader.plain_text)
            await settle(pilot, app)
            assert _opens(svc) == [("open_message", "INBOX", 12, False)]
            assert app.main.hlist.has_focus  # the preview does not take the focus
            fid = store.folder_id("INBOX")
            assert not store.row(fid, 12).seen  # a preview is not reading: scrolling marks nothing read
            await pilot.press("enter")  # opening it is
            await settle(pilot, app)
            assert store.row(fid, 12).seen and app.main.reader.has_focus
            assert len(_opens(svc)) == 1  # shown already: not fetched again

    run(go())


def test_changing_folder_clears_the_preview(make_app):
    app, store, svc = make_app(10, folder_rows={"Archive": 3})

    async def go():
        async with app.run_test(size=(160, 45)) as pilot:
            await settle(pilot, app)
            await pilot.press("enter")
            await wait_until(pilot, lambda: "this is message 1 in INBOX" in app.main.reader.plain_text)
            await pilot.press("escape", "c")
            await settle(pilot, app)
            await pilot.press(*"archive", "enter")
            await settle(pilot, app)
            assert app.main.folder.name == "Archive"
            assert "message 1 in INBOX" not in app.main.reader.plain_text
            assert app.main.reader.uid is None

    run(go())


def test_delete_for_good_names_the_message(make_app):
    app, store, svc = make_app(3, folder_rows={"Trash": 2})
    fid = store.folder_id("Trash")
    [nine] = store.insert_headers(fid, [("9", 9, frozenset(), "", 1710000000, "Mallory \x1b[31m<m@evil.example>",
                                         "me@example.org", "", "Wire \x1b]0;pwned\x07transfer", "<m9@x>", None, "",
                                         100, False)])

    async def go():
        async with app.run_test(size=(160, 45)) as pilot:
            await settle(pilot, app)
            app.main.open_folder("test", fid)
            await settle(pilot, app)
            app.main.hlist.select_uid(nine)
            await pilot.press("d")
            await settle(pilot, app)
            text = screen_text(app)
            assert "Delete this message for good?" in text and "From Mallory" in text
            assert "Wire" in text and "transfer" in text
            assert "\x1b]0" not in text and "\x07" not in text
            await pilot.press("n")
            assert store.row(fid, nine) is not None

    run(go())


def test_change_folder_matches_folder_names_before_the_account(tmp_path):
    """On an account named `work`, typing `Work` opens the folder Work, not the first folder of
    the account (Archive, whose label "work: Archive" holds "work" too)."""

    from tuimail.config.load import Config
    from tuimail.ui.app import TuimailApp

    from .fixtures import NOW, FakeService, fill, make_store

    store = make_store(tmp_path / "w.sqlite3", 3)
    for name in ("Work", "Workshop", "Lists/work-archive"):
        store.upsert_folder(name, "/", [], None)
        fill(store, store.folder_id(name), range(1, 3))
    acc = dataclasses.replace(make_config().accounts["test"], name="work")
    app = TuimailApp(Config(accounts={"work": acc}, ui=make_config().ui), {"work": store},
                     {"work": FakeService()}, clock=lambda: NOW, tz=UTC)

    async def pick(pilot, query: str) -> str:
        await pilot.press("c")
        await settle(pilot, app)
        await pilot.press(*query, "enter")
        await settle(pilot, app)
        return app.main.folder.name

    async def go():
        async with app.run_test(size=(120, 36)) as pilot:
            await settle(pilot, app)
            assert await pick(pilot, "Work") == "Work"
            assert await pick(pilot, "inbox") == "INBOX"
            assert await pick(pilot, "works") == "Workshop"  # prefix
            assert await pick(pilot, "pytn") == "Lists/python"  # letters in order
            assert await pick(pilot, "textual") == "Lists/textual"  # the last component

    try:
        run(go())
    finally:
        store.close()


def test_dates_keep_the_day_on_a_narrow_terminal_and_sort_and_date_format_apply(make_app):
    from .fixtures import NOW

    app, store, svc = make_app(3)
    fid = store.folder_id("INBOX")
    store.db.execute("UPDATE messages SET date = ? WHERE folder_id = ? AND id = 3", (int(NOW) - 86400 * 400, fid))
    store.db.commit()

    async def go():
        async with app.run_test(size=(80, 24)) as pilot:
            await settle(pilot, app)
            assert "23-02-09" in screen_text(app)  # was "Feb'23": no day

    run(go())
    cfg = make_config(sort="reverse-date", date_format="%d.%m.%Y")
    app, store, svc = make_app(3, config=cfg, store=store)

    async def go2():
        async with app.run_test(size=(80, 24)) as pilot:
            await settle(pilot, app)
            assert app.main.hlist.current_uid == 3  # the oldest first
            assert "09.02.2023" in screen_text(app)
            assert "date ↑" in screen_text(app).splitlines()[-1]

    run(go2())


def _cell(app, x: int, y: int):
    """(character, style) of one screen cell."""
    from rich.cells import cell_len
    strip = app.screen._compositor.render_strips()[y]
    pos = 0
    for seg in strip:
        for ch in seg.text:
            if pos == x:
                return ch, seg.style
            pos += cell_len(ch)
    raise IndexError(x)


def test_the_focused_pane_is_marked_in_every_theme_and_tree_guides_are_visible(make_app):
    """issue 11.7: a bar in the accent colour on the focused pane's edge (tree, list, reader), and
    the classic theme's tree guides are not black."""
    from textual.color import Color

    for theme in ("dark", "light", "classic"):
        app, store, svc = make_app(5, config=make_config(theme=theme, preview="right"))

        async def go(app=app, theme=theme):
            async with app.run_test(size=(170, 30)) as pilot:
                await settle(pilot, app)
                main = app.main
                accent = app.theme_variables["accent"]
                # a widget's region holds its border: the left edge is the region's first column
                edges = {"tree": main.folder_tree.region.x, "list": main.hlist.region.x, "reader": main.reader.region.x}
                for pane, widget in (("list", main.hlist), ("tree", main.folder_tree), ("reader", main.reader)):
                    widget.focus()
                    await pilot.pause()
                    for other, x in edges.items():
                        ch, style = _cell(app, x, 2)
                        if other == pane:
                            assert ch == "▌", (theme, pane, ch)
                            assert style.color == Color.parse(accent).rich_color, (theme, pane, style)
                        else:
                            assert ch != "▌", (theme, pane, other)
                guide, style = _cell(app, main.folder_tree.region.x + 1, 2)  # "├" of the second folder
                assert guide in "├└│", guide
                assert style.color is not None and style.color.name not in ("default", "black", "color(0)")
                assert style.color != style.bgcolor

        run(go())


def test_the_palette_lists_only_tuimail_commands_and_themes_and_remembers_the_theme(make_app, tmp_path,
                                                                                    monkeypatch):
    from textual.widgets import OptionList

    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))

    async def palette(pilot, app, query: str) -> list[str]:
        await pilot.press("colon")
        await pilot.pause(0.2)
        await pilot.press(*query)
        await pilot.pause(0.5)
        ol = app.screen.query_one(OptionList)
        return [str(ol.get_option_at_index(i).prompt) for i in range(ol.option_count)]

    app, store, svc = make_app(5)

    async def go():
        async with app.run_test(size=(120, 36)) as pilot:
            await settle(pilot, app)
            themes = await palette(pilot, app, "theme")
            assert any("tuimail-light" in t for t in themes), themes
            assert not any(n in t for t in themes for n in ("nord", "textual-dark", "gruvbox", "dracula"))
            await pilot.press("escape")
            await pilot.pause()
            assert not await palette(pilot, app, "screenshot")  # Textual's system commands are gone
            await pilot.press("escape")
            await pilot.pause()
            await palette(pilot, app, "theme light")
            await pilot.press("enter")
            await pilot.pause(0.2)
            assert app.theme == "tuimail-light"

    run(go())
    assert (tmp_path / "state" / "tuimail" / "ui-state.json").exists()
    app2, _s, _v = make_app(5, store=store)
    assert app2.theme == "tuimail-light"  # remembered at the next start
    app3, _s, _v = make_app(5, store=store, config=make_config(theme="classic"))
    assert app3.theme == "tuimail-classic"  # the config file changed since: it wins


def test_missing_themes_are_a_one_line_error_not_a_silent_fallback(make_app, tmp_path, monkeypatch):
    """A package without its theme files (a broken install) says which files are missing, and an
    unknown [ui] theme says which key to fix; both on one line (issue 10.7)."""
    from tuimail.ui import themes

    from .fixtures import make_config, run, settle

    empty = tmp_path / "no-themes"
    empty.mkdir()
    monkeypatch.setattr(themes, "shipped_dir", lambda: empty)
    app, _, _ = make_app(config=make_config(theme="dark"))
    assert app.problems == ["theme files missing from the installed tuimail package: tuimail-classic.toml,"
                            " tuimail-dark.toml, tuimail-light.toml (reinstall tuimail)"]
    monkeypatch.undo()
    app2, _, _ = make_app(config=make_config(theme="nosuch"))
    assert len(app2.problems) == 1 and app2.problems[0].startswith("[ui] theme: no theme 'nosuch' (")
    assert app2.problems[0].endswith("using tuimail-dark") and "\n" not in app2.problems[0]
    assert app2.theme == "tuimail-dark"

    async def go():
        async with app.run_test(size=(160, 40), notifications=True) as pilot:
            await settle(pilot, app)
            shown = [n.message for n in app._notifications]
            assert any("tuimail-dark.toml" in m and "reinstall tuimail" in m for m in shown), shown
            assert app.theme == "textual-dark"

    run(go())
