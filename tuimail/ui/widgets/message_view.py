"""The message view: headers, text, links and attachments as plain lines in a Line-API ScrollView.

Text is rendered as text (never Markdown, DESIGN.md §3): logical lines are wrapped to the width
once per resize, and `render_line` styles one wrapped line by its kind (header, quote level,
note, link...). Everything shown here has been sanitised by the caller (`build_lines`).
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING
from rich.cells import cell_len, set_cell_size
from rich.segment import Segment
from textual import events
from textual.message import Message
from textual.scroll_view import ScrollView
from textual.scrollbar import ScrollBar
from textual.strip import Strip

from tuimail.mail.sanitize import sanitize, sanitize_line
from tuimail.mail.present import Line, format_bytes, message_lines
from tuimail.ui import keys
from tuimail.ui.widgets.virtual import set_virtual_height, thumb_scrollbar

if TYPE_CHECKING:
    from rich.style import Style

    from tuimail.core.content import MessageContent

_QUOTE_PREFIX_RE = re.compile(r"[ >]*> ?")

__all__ = ["Line", "MessageView", "build_lines", "format_bytes", "text_lines"]


def build_lines(content: MessageContent, *, all_headers: list[tuple[str, str]] | None = None) -> list[Line]:
    """The logical lines of a message, every string sanitised (mail/present.py, shared with
    `tuimail read`)."""
    return message_lines(content, all_headers=all_headers)


def text_lines(text: str, kind: str = "text") -> list[Line]:
    return [(line.expandtabs(8), kind) for line in sanitize(text).split("\n")]


class MessageView(ScrollView, can_focus=True):
    BINDINGS = keys.bindings("pager")

    COMPONENT_CLASSES = {
        "message-view--header",
        "message-view--hname",
        "message-view--note",
        "message-view--quote1",
        "message-view--quote2",
        "message-view--quote3",
        "message-view--link",
        "message-view--attach",
        "message-view--rule",
        "message-view--dim",
        "message-view--more",
        "message-view--error",
    }

    DEFAULT_CSS = """
    MessageView {
        overflow-x: hidden;
        overflow-y: auto;
        background: $surface;
        color: $foreground;
        padding: 0 1;
        scrollbar-size-vertical: 1;
    }
    MessageView > .message-view--header { color: $text-secondary; }
    MessageView > .message-view--hname { text-style: bold; }
    MessageView > .message-view--note { color: $warning; text-style: bold; }
    MessageView > .message-view--quote1 { color: $text-accent; }
    MessageView > .message-view--quote2 { color: $text-success; }
    MessageView > .message-view--quote3 { color: $text-secondary; }
    MessageView > .message-view--link { color: $text-primary; }
    MessageView > .message-view--attach { color: $text-warning; }
    MessageView > .message-view--rule { color: $text-muted; }
    MessageView > .message-view--dim { color: $text-muted; text-style: italic; }
    MessageView > .message-view--more { color: $text-muted; text-style: reverse; }
    MessageView > .message-view--error { color: $text-error; }
    """

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.lines: list[Line] = [("Press Enter on a message to read it.", "dim")]
        self._wrapped: list[tuple[str, str]] = []
        self._wrap_width = -1
        self._rich_components: dict[str, Style] = {}
        self.content: MessageContent | None = None
        self.folder_key: tuple[str, int] | None = None  # (account, folder_id) of the open message
        self.uid: int | None = None

    # ------------------------------------------------------------------ content

    @property
    def vertical_scrollbar(self) -> ScrollBar:
        return thumb_scrollbar(self)  # (drawn again only when its thumb moves)

    def show_lines(self, lines: list[Line], *, keep_scroll: bool = False) -> None:
        self.lines = lines
        self._wrap_width = -1
        self._rewrap()
        if not keep_scroll:
            self.scroll_to(y=0, animate=False, immediate=True)
        self.refresh()

    def show_message(self, content: MessageContent, *, all_headers: list[tuple[str, str]] | None = None,
                     keep_scroll: bool = False, lines: list[Line] | None = None) -> None:
        """lines: build_lines(content) made earlier (in the fetching thread)."""
        self.content = content
        if lines is None:
            lines = build_lines(content, all_headers=all_headers)
        self.show_lines(lines, keep_scroll=keep_scroll)

    def show_status(self, text: str, kind: str = "dim") -> None:
        self.show_lines([(sanitize_line(text), kind)])

    def clear(self, text: str = "Press Enter on a message to read it.") -> None:
        self.content = None
        self.uid = None
        self.folder_key = None
        self.show_status(text)

    @property
    def plain_text(self) -> str:
        return "\n".join(t for t, _ in self.lines)

    def _rewrap(self) -> None:
        width = self.scrollable_content_region.width
        if width == self._wrap_width:
            return
        self._wrap_width = width
        out: list[tuple[str, str]] = []
        if self.lines:  # (imported once a message is shown: its patterns take a while to compile)
            from tuimail.ui.wrap import wrap
        for text, kind in self.lines:
            if kind == "rule":
                out.append(("─" * max(0, width), kind))
                continue
            if kind.startswith("quote") and cell_len(text) > width:
                # a quoted line keeps its quote marks on every screen line (as mutt reflows)
                m = _QUOTE_PREFIX_RE.match(text)
                prefix = m.group() if m and len(m.group()) < width // 2 else ""
                out.extend((prefix + part, kind) for part in wrap(text[len(prefix):], width - len(prefix)))
                continue
            for part in wrap(text, width):
                out.append((part, kind))
        self._wrapped = out
        set_virtual_height(self, len(out))

    def on_resize(self, event: events.Resize) -> None:
        self._rewrap()
        self.refresh()

    def notify_style_update(self) -> None:
        super().notify_style_update()
        self.__dict__.pop("_base_style_cache", None)
        self._rich_components.clear()
        self.refresh()

    @property
    def _base_style(self) -> Style:
        """self.rich_style once per style change (Textual walks every ancestor's CSS per call)."""
        base = self.__dict__.get("_base_style_cache")
        if base is None:
            base = self.__dict__["_base_style_cache"] = self.rich_style
        return base

    def _component(self, name: str, default: Style) -> Style:
        """get_component_rich_style(name), kept until the next style change (Textual forgets its
        own copy on every refresh: each message shown)."""
        style = self._rich_components.get(name)
        if style is None:
            style = self._rich_components[name] = self.get_component_rich_style(name, default=default)
        return style

    def render_line(self, y: int) -> Strip:
        width = self.scrollable_content_region.width
        if self._wrap_width != width:
            self._rewrap()
        idx = self.scroll_offset.y + y
        base = self._base_style
        if idx >= len(self._wrapped):
            return Strip.blank(width, base)
        text, kind = self._wrapped[idx]
        style = base
        if kind != "text":
            style = base + self._component(f"message-view--{kind}", base)
        if kind == "header" and ": " in text:
            name, value = text.split(": ", 1)
            hstyle = style + self._component("message-view--hname", base)
            segs = [Segment(name + ":", hstyle), Segment(set_cell_size(" " + value, max(0, width - cell_len(name) - 1)),
                                                         style)]
            return Strip(segs).adjust_cell_length(width, base)
        return Strip([Segment(set_cell_size(text, width), style)], width)

    # ------------------------------------------------------------------ keys

    def action_scroll_down(self) -> None:
        self.scroll_to(y=self.scroll_offset.y + 1, animate=False, immediate=True)

    def action_scroll_up(self) -> None:
        self.scroll_to(y=self.scroll_offset.y - 1, animate=False, immediate=True)

    def action_pager_page_down(self) -> None:
        if self.scroll_offset.y >= self.max_scroll_y:
            self.post_message(self.AtEnd())
            return
        self.scroll_to(y=self.scroll_offset.y + max(1, self.size.height - 1), animate=False, immediate=True)

    def action_pager_page_up(self) -> None:
        self.scroll_to(y=self.scroll_offset.y - max(1, self.size.height - 1), animate=False, immediate=True)

    def action_pager_top(self) -> None:
        self.scroll_to(y=0, animate=False, immediate=True)

    def action_pager_bottom(self) -> None:
        self.scroll_to(y=self.max_scroll_y, animate=False, immediate=True)

    class AtEnd(Message):
        """Space at the end of the message (mutt goes on to the next one; we load more if any)."""
