"""Changing a Line-API ScrollView's virtual height without a layout pass of the whole screen.

Textual's `virtual_size` is a reactive with layout=True: every assignment lays out the screen
again and repaints what moved, though a list or a message view that grows keeps its own place on
the screen. Only the scrollbar's appearing or disappearing changes a region (the gutter), so that
case still takes the layout; otherwise the new height goes in as Textual's own layout would put
it (`Widget._size_updated(layout=False)`: set the reactive without its watcher, update the
scrollbar, clamp the scroll offset) and the widget repaints itself.
"""

from __future__ import annotations

from math import ceil

from textual.geometry import Region, Size
from textual.scroll_view import ScrollView
from textual.scrollbar import ScrollBar, ScrollBarRender
from textual.strip import Strip
from textual.widget import Widget

_EIGHTHS = len(ScrollBarRender.VERTICAL_BARS)


def set_virtual_height(view: ScrollView, height: int) -> None:
    size = Size(0, height)
    if size == view.virtual_size:
        return
    container = view.container_size
    styles = view.styles
    if (not view.is_mounted or not container or styles.overflow_x != "hidden"
            or styles.overflow_y not in ("auto", "scroll", "hidden")):
        view.virtual_size = size  # (not laid out yet, or a horizontal scrollbar: Textual decides)
        return
    show = styles.overflow_y == "scroll" or (styles.overflow_y == "auto" and height > container.height)
    if show != view.show_vertical_scrollbar:
        view.virtual_size = size  # the scrollbar comes or goes: the content's width changes
        return
    view.set_reactive(Widget.virtual_size, size)
    if not _same_thumb(view, height):
        view._scroll_update(size)


def _thumb(bar_height: int, virtual: float, window: float, position: float) -> tuple[int, int] | None:
    """The cells of the scrollbar's thumb, in eighths, as ScrollBar draws them (render_bar)."""
    window = ceil(window) if window < virtual else 0
    virtual = ceil(virtual)
    if not (window and bar_height and virtual and bar_height != virtual):
        return None
    thumb = max(1, window / (virtual / bar_height))
    start = int((bar_height - thumb) * (position / (virtual - window)) * _EIGHTHS)
    return start, start + ceil(thumb * _EIGHTHS)


def _same_thumb(view: ScrollView, height: int) -> bool:
    """The list grew (or shrank) and its scrollbar would be drawn the same: its numbers change
    without a repaint (a repaint of a scrollbar is 3-9 ms of the UI thread; during a first sync
    the list grows twice a second, by a few rows of the thumb's eighth of a cell or less)."""
    if not view.show_vertical_scrollbar or not view.styles.scrollbar_size_vertical:
        return False
    bar = view.vertical_scrollbar
    window = view.container_size.height - view.scrollbar_size_horizontal
    before = _thumb(bar.size.height, bar.window_virtual_size, bar.window_size, bar.position)
    if before is None or before != _thumb(bar.size.height, height, window, bar.position):
        return False
    bar.set_reactive(ScrollBar.window_virtual_size, height)
    bar.set_reactive(ScrollBar.window_size, window)
    view.scroll_y = view.validate_scroll_y(view.scroll_y)
    return True


class ThumbScrollBar(ScrollBar):
    """A vertical scrollbar that draws again only when what it shows changes: its size, its
    thumb's cells (_thumb), its colours or the line filters. Textual repaints a scrollbar (3-9 ms
    of the UI thread on a busy machine) whenever its numbers are set, as every layout of the
    screen does while a list grows under a thumb that stays where it is."""

    _drawn: tuple[object, list[Strip]] | None = None

    def _drawing(self, crop: Region) -> object:
        parent = self.parent
        st = parent.styles if isinstance(parent, Widget) else None
        colours = None if st is None else (
            st.scrollbar_background, st.scrollbar_background_hover, st.scrollbar_background_active,
            st.scrollbar_color, st.scrollbar_color_hover, st.scrollbar_color_active,
            parent.background_colors if isinstance(parent, Widget) else None, self.screen.styles.scrollbar_color)
        return (crop, self.size, self.vertical, self.thickness, self.grabbed, self.mouse_over, colours,
                _thumb(self.size.height, self.window_virtual_size, self.window_size, self.position),
                tuple(map(id, self.get_line_filters())))

    def render_lines(self, crop: Region) -> list[Strip]:
        if not self.vertical:
            return super().render_lines(crop)
        key = self._drawing(crop)
        if self._drawn is not None and self._drawn[0] == key:
            return self._drawn[1]
        strips = super().render_lines(crop)
        self._drawn = (key, strips)
        return strips

    def notify_style_update(self) -> None:
        super().notify_style_update()
        self._drawn = None


def thumb_scrollbar(view: Widget) -> ScrollBar:
    """`view.vertical_scrollbar`, created as a ThumbScrollBar (Widget.vertical_scrollbar's code):
    a ScrollView's `vertical_scrollbar` property returns this."""
    bar = view._vertical_scrollbar
    if bar is None:
        bar = view._vertical_scrollbar = ThumbScrollBar(vertical=True, name="vertical",
                                                        thickness=view.scrollbar_size_vertical)
        bar.display = False
        view.app._start_widget(view, bar)
    return bar
