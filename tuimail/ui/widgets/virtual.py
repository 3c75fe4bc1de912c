"""Changing a Line-API ScrollView's virtual height without a layout pass of the whole screen.

Textual's `virtual_size` is a reactive with layout=True: every assignment lays out the screen
again and repaints what moved, though a list or a message view that grows keeps its own place on
the screen. Only the scrollbar's appearing or disappearing changes a region (the gutter), so that
case still takes the layout; otherwise the new height goes in as Textual's own layout would put
it (`Widget._size_updated(layout=False)`: set the reactive without its watcher, update the
scrollbar, clamp the scroll offset) and the widget repaints itself.
"""

from __future__ import annotations

from textual.geometry import Size
from textual.scroll_view import ScrollView
from textual.widget import Widget


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
    view._scroll_update(size)
