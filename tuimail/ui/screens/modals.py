"""Modal screens: help, confirm, prompt, folder picker, attachment list, text viewer.

Untrusted strings (folder names, file names, command output) reach widgets only as rich `Text` /
textual `Content` objects, after the sanitiser.
"""

from __future__ import annotations

import re
from typing import Generic, TypeVar

from rich.text import Text
from textual import events
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.content import Content
from textual.screen import ModalScreen
from textual.widgets import Input, OptionList, Static
from textual.widgets.option_list import Option

from tuimail.mail.sanitize import sanitize_line, sanitize_strict
from tuimail.core.content import Attachment
from tuimail.ui import keys
from tuimail.ui.widgets.message_view import Line, MessageView, format_bytes

T = TypeVar("T")

_MODAL_CSS = """
    {name} {{ align: center middle; background: $background 60%; }}
    {name} > Vertical {{
        width: 90%; max-width: 100; height: auto; max-height: 90%;
        border: round $primary; background: $panel; padding: 0 1;
    }}
    {name} .title {{ text-style: bold; color: $text-primary; height: 1; }}
    {name} .hint {{ color: $text-muted; height: 1; }}
"""


class HelpScreen(ModalScreen[None]):
    BINDINGS = [Binding("escape,q,question_mark", "dismiss", "Close")]
    DEFAULT_CSS = _MODAL_CSS.format(name="HelpScreen") + """
    HelpScreen > Vertical { height: 90%; }
    HelpScreen MessageView { height: 1fr; background: $panel; padding: 0; }
    """

    def __init__(self, effective: dict[str, tuple[str, ...]]) -> None:
        super().__init__()
        self.effective = effective

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Static(Content("Keys — rebind them by action name in the config's [keys] table"),
                         classes="title")
            yield MessageView()
            yield Static(Content("Esc / q: close   Tab / shift+Tab: next / previous pane"), classes="hint")

    def on_mount(self) -> None:
        lines: list[Line] = []
        titles = {"global": "Everywhere", "list": "Message list", "pager": "Message view", "tree": "Folder tree"}
        for scope in ("global", "list", "pager", "tree"):
            lines.append((titles[scope], "hname"))
            for a in keys.ACTIONS:
                if a.scope != scope:
                    continue
                ks = ", ".join(keys.display_key(k) for k in self.effective.get(a.name, ())) or "(unbound)"
                lines.append((f"  {ks:<12} {a.description:<30} {a.name}", "text"))
            lines.append(("", "text"))
        view = self.query_one(MessageView)
        view.show_lines(lines)
        view.focus()

    def action_close(self) -> None:
        self.dismiss(None)


class ConfirmScreen(ModalScreen[bool]):
    BINDINGS = [Binding("y", "answer(True)", "Yes"), Binding("n,escape,q", "answer(False)", "No")]
    DEFAULT_CSS = _MODAL_CSS.format(name="ConfirmScreen") + """
    ConfirmScreen .detail { height: auto; max-height: 4; margin: 0 0 1 0; }
    """

    def __init__(self, question: str, detail: str = "") -> None:
        super().__init__()
        self.question = question
        self.detail = detail  # what the question is about (e.g. the message), wrapped

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Static(Content(sanitize_line(self.question)), classes="title")
            if self.detail:
                yield Static(Content(sanitize_line(self.detail)), classes="detail")
            yield Static(Content("y: yes    n / Esc: no"), classes="hint")

    def action_answer(self, yes: bool) -> None:
        self.dismiss(yes)


class PromptScreen(ModalScreen[str | None]):
    BINDINGS = [Binding("escape", "cancel", "Cancel")]
    DEFAULT_CSS = _MODAL_CSS.format(name="PromptScreen")

    def __init__(self, title: str, value: str = "", placeholder: str = "") -> None:
        super().__init__()
        self.title_text, self.value, self.placeholder = title, value, placeholder

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Static(Content(self.title_text), classes="title")
            yield Input(value=self.value, placeholder=self.placeholder)
            yield Static(Content("Enter: ok    Esc: cancel"), classes="hint")

    def on_input_submitted(self, event: Input.Submitted) -> None:
        self.dismiss(event.value)

    def action_cancel(self) -> None:
        self.dismiss(None)


def match_rank(query: str, name: str, label: str) -> int | None:
    """How well `query` names a choice, best 0; None = no match. The name (a folder's) counts
    before the label (which also holds the account and counts): exact (any case), then the last
    path component exact, prefix, substring, letters in order (fuzzy), and last the label."""
    q, n = query.casefold().strip(), name.casefold()
    if not q:
        return 0
    leaf = re.split(r"[/.]", n)[-1]
    if n == q:
        return 0
    if leaf == q:
        return 1
    if n.startswith(q) or leaf.startswith(q):
        return 2
    if q in n:
        return 3
    it = iter(n)
    if all(c in it for c in q):
        return 4
    if q in label.casefold():
        return 5
    return None


class PickerScreen(ModalScreen[T | None], Generic[T]):
    """Pick one of (label, value); typing filters, best match first (see match_rank)."""

    BINDINGS = [Binding("escape", "cancel", "Cancel")]
    DEFAULT_CSS = _MODAL_CSS.format(name="PickerScreen") + """
    PickerScreen OptionList { height: auto; max-height: 20; border: none; background: $panel; }
    """

    def __init__(self, title: str, choices: list[tuple[str, T]], names: list[str] | None = None) -> None:
        super().__init__()
        self.title_text = title
        self.choices = [(sanitize_line(label), value) for label, value in choices]
        self.names = [sanitize_line(n) for n in names] if names is not None else [c[0] for c in self.choices]

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Static(Content(self.title_text), classes="title")
            yield Input(placeholder="type to filter")
            yield OptionList(*self._options(""))
            yield Static(Content("↑/↓: choose    Enter: ok    Esc: cancel"), classes="hint")

    def _options(self, query: str) -> list[Option]:
        ranked = []
        for i, (label, _v) in enumerate(self.choices):
            r = match_rank(query, self.names[i], label)
            if r is not None:
                ranked.append((r, i, label))
        return [Option(Text(label), id=str(i)) for _r, i, label in sorted(ranked)]

    def on_input_changed(self, event: Input.Changed) -> None:
        ol = self.query_one(OptionList)
        ol.clear_options()
        ol.add_options(self._options(event.value))
        if ol.option_count:
            ol.highlighted = 0

    def on_mount(self) -> None:
        ol = self.query_one(OptionList)
        if ol.option_count:
            ol.highlighted = 0

    def on_key(self, event: events.Key) -> None:
        if event.key in ("down", "up", "pagedown", "pageup"):
            ol = self.query_one(OptionList)
            {"down": ol.action_cursor_down, "up": ol.action_cursor_up,
             "pagedown": ol.action_page_down, "pageup": ol.action_page_up}[event.key]()
            event.stop()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        self._choose()

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        self.dismiss(self.choices[int(event.option.id or 0)][1])

    def _choose(self) -> None:
        ol = self.query_one(OptionList)
        if ol.highlighted is None:
            return
        opt = ol.get_option_at_index(ol.highlighted)
        self.dismiss(self.choices[int(opt.id or 0)][1])

    def action_cancel(self) -> None:
        self.dismiss(None)


class AttachmentScreen(ModalScreen[tuple[str, int] | None]):
    """The attachment list: returns (what, index) with what in save / pipe / open."""

    BINDINGS = [
        Binding("s", "pick('save')", "Save"),
        Binding("vertical_line", "pick('pipe')", "Pipe"),
        Binding("o,enter", "pick('open')", "Open"),
        Binding("escape,q,v", "cancel", "Close"),
    ]
    DEFAULT_CSS = _MODAL_CSS.format(name="AttachmentScreen") + """
    AttachmentScreen OptionList { height: auto; max-height: 20; border: none; background: $panel; }
    """

    def __init__(self, attachments: list[Attachment]) -> None:
        super().__init__()
        self.attachments = attachments

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Static(Content("Attachments"), classes="title")
            opts = []
            for i, a in enumerate(self.attachments):
                t = Text(f"{i + 1:>2}. {sanitize_strict(a.filename) or '(no name)'}  ")
                t.append(f"{sanitize_strict(a.mimetype)}, {format_bytes(a.size)}", style="dim")
                if a.label:
                    t.append(f"  [{sanitize_line(a.label)}]", style="bold")
                opts.append(Option(t, id=str(i)))
            yield OptionList(*opts)
            yield Static(Content("s: save  |: pipe  Enter: open (a message: in the reader)  Esc: close"),
                         classes="hint")

    def on_mount(self) -> None:
        ol = self.query_one(OptionList)
        if ol.option_count:
            ol.highlighted = 0
        ol.focus()

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        event.stop()
        self.dismiss(("open", int(event.option.id or 0)))

    def action_pick(self, what: str) -> None:
        ol = self.query_one(OptionList)
        if ol.highlighted is not None:
            self.dismiss((what, ol.highlighted))

    def action_cancel(self) -> None:
        self.dismiss(None)


class TextScreen(ModalScreen[None]):
    """Read-only text (command output, a text attachment) in a pager."""

    BINDINGS = [Binding("escape,q", "dismiss", "Close")]
    DEFAULT_CSS = _MODAL_CSS.format(name="TextScreen") + """
    TextScreen > Vertical { height: 90%; }
    TextScreen MessageView { height: 1fr; background: $panel; padding: 0; }
    """

    def __init__(self, title: str, lines: list[Line]) -> None:
        super().__init__()
        self.title_text, self.lines = title, lines

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Static(Content(sanitize_line(self.title_text)), classes="title")
            yield MessageView()
            yield Static(Content("Esc / q: close"), classes="hint")

    def on_mount(self) -> None:
        view = self.query_one(MessageView)
        view.show_lines(self.lines)
        view.focus()

    def action_close(self) -> None:
        self.dismiss(None)
