"""set_virtual_height skips the scrollbar's repaint when its thumb would be drawn the same: the
thumb's cells (virtual._thumb) must decide exactly what ScrollBarRender draws."""

import random

from textual.scrollbar import ScrollBarRender

from tuimail.ui.widgets.virtual import _thumb


def _drawn(bar: int, virtual: int, window: int, position: float) -> list[object]:
    window = window if window < virtual else 0  # as ScrollBar._render_bar passes it
    return list(ScrollBarRender.render_bar(size=bar, virtual_size=virtual, window_size=window,
                                           position=position).segments)


def test_same_thumb_is_the_same_drawing() -> None:
    rng = random.Random(7)
    for _ in range(3000):
        bar = rng.randint(1, 60)
        window = rng.randint(1, 60)
        virtual = rng.randint(1, 120_000)
        grown = virtual + rng.randint(1, 5000)
        position = float(rng.randint(0, max(0, virtual - window)))
        a, b = _thumb(bar, virtual, window, position), _thumb(bar, grown, window, position)
        if a is not None and a == b:
            assert _drawn(bar, virtual, window, position) == _drawn(bar, grown, window, position)


def test_a_moved_thumb_is_seen() -> None:
    # 40 rows on screen: 50 rows and 5000 rows draw different thumbs
    assert _thumb(40, 50, 40, 0.0) != _thumb(40, 5000, 40, 0.0)
    # 100k rows and 101k at the top: the same minimal thumb at the top
    assert _thumb(40, 100_000, 40, 0.0) == _thumb(40, 101_000, 40, 0.0)


def test_list_scrollbar_draws_again_only_when_its_thumb_moves(make_app) -> None:
    """The list's scrollbar keeps its drawing while the list grows under the same thumb (a layout
    of the screen sets its numbers again), and draws what Textual draws when the thumb moves."""
    from textual.scrollbar import ScrollBar

    from tests.ui.fixtures import run, settle
    from tuimail.ui.widgets.virtual import ThumbScrollBar, set_virtual_height

    app, _store, _svc = make_app(3000)
    drawn: list[int] = []
    real = ScrollBar.render_lines

    def counted(self, crop):
        drawn.append(1)
        return real(self, crop)

    async def go():
        async with app.run_test(size=(160, 45)) as pilot:
            await settle(pilot, app)
            hl = app.main.hlist
            bar = hl.vertical_scrollbar
            assert isinstance(bar, ThumbScrollBar) and bar.display
            ScrollBar.render_lines = counted
            try:
                for _ in range(5):
                    set_virtual_height(hl, hl.virtual_size.height + 50)
                    app.screen.refresh(layout=True)
                    await pilot.pause()
                assert not drawn  # the same thumb: the drawing kept
                for y in (1500, 2950, 0):
                    hl.scroll_to(y=y, animate=False)
                    await pilot.pause()
                    crop = bar.size.region
                    kept = bar.render_lines(crop)
                    bar._drawn = None
                    bar.refresh()
                    assert bar.render_lines(crop) == kept  # what a fresh drawing shows
                assert drawn
            finally:
                ScrollBar.render_lines = real

    run(go())
