"""Reloads of the header list while a sync adds rows (issue #10's stall): what is on screen is
redrawn only when it changed, and a flag change that comes with the new rows shows at once."""

from __future__ import annotations

from tuimail.core.flags import FLAGGED

from .fixtures import fill, run, screen_text, settle, wait_until


def test_rows_added_below_the_screen_keep_the_drawn_rows_and_a_reset_redraws_them(make_app):
    app, store, svc = make_app(100)

    async def go():
        async with app.run_test(size=(160, 45)) as pilot:
            await settle(pilot, app)
            hl = app.main.hlist
            fid = store.folder_id("INBOX")
            await wait_until(pilot, lambda: len(hl.uids) == 100 and len(hl._strips) > 20)
            await pilot.pause(0.4)  # (past the reload interval)
            before = screen_text(app).splitlines()
            drawn = dict(hl._strips)
            top = hl.uids[0]
            row = hl.scroll_offset.y + hl.region.y  # the screen line of the list's first row
            assert "!" not in before[row][:40]

            fill(store, fid, range(101, 131))  # older mail: below the screen
            added = list(store.ids_of(fid, [str(u) for u in range(101, 131)]).values())
            store.set_flags(fid, [top], add=[FLAGGED])  # (and a flag change in the same event)
            hl.rows_changed([top], added=added)
            await wait_until(pilot, lambda: len(hl.uids) == 130)
            await settle(pilot, app)
            after = screen_text(app).splitlines()
            assert "!" in after[row][:40]  # the flag, at once
            kept = [k for k in drawn if k[0] != top]
            assert kept and all(hl._strips.get(k) is drawn[k] for k in kept)  # not drawn again
            bar = hl.region.right - 1  # (the scrollbar's column: its thumb moves, the list grew)
            def cut(line: str) -> str:
                return line[:bar] + line[bar + 1:]

            changed = [i for i, (a, b) in enumerate(zip(before, after, strict=True)) if cut(a) != cut(b)]
            assert row in changed and all(i == row or i >= len(after) - 2 for i in changed), changed

            hl.rows_changed(reset=True)  # e.g. another process wrote the store: every row again
            await wait_until(pilot, lambda: not any(hl._strips.get(k) is drawn[k] for k in kept))
            await settle(pilot, app)
            assert screen_text(app).splitlines()[1:-2] == after[1:-2]

    run(go())
