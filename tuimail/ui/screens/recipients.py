"""The prompt for a recipient header (To, Cc, Bcc) with address completion: the matches for the
recipient being typed (the text after the last comma) are listed under the input, from the
addresses the store has seen and the config's [aliases] (store/addresses.py). The lookup runs
in a thread worker, never on the UI thread.

    typing          the list follows (the best match is also offered inline: → takes it)
    down / tab      into the list;  enter there: that address replaces what was typed
    enter (input)   done;  escape: cancel (the header is unchanged)
"""

from __future__ import annotations

import re

from textual import events, on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.content import Content
from textual.screen import ModalScreen
from textual.suggester import Suggester
from textual.widgets import Input, OptionList, Static
from textual.widgets.option_list import Option

from tuimail.mail.sanitize import sanitize_line
from tuimail.store.addresses import AddressBook, Completion
from tuimail.ui.screens.modals import _MODAL_CSS

_LAST = re.compile(r"^(.*[,;]\s*)?([^,;]*)$", re.S)


def split_last(value: str) -> tuple[str, str]:
    """('Ann <a@x>, ', 'bo') for 'Ann <a@x>, bo': what stays, and the recipient being typed."""
    m = _LAST.match(value)
    if m is None:
        return "", value
    return m.group(1) or "", m.group(2).lstrip()


def with_choice(value: str, choice: str) -> str:
    head, _ = split_last(value)
    if head and not head.endswith(" "):
        head += " "
    return f"{head}{choice}, "


class AddressSuggester(Suggester):
    """Inline: the best match, when the address itself starts with what was typed (so the faded
    rest reads right); the list shows every match."""

    def __init__(self, book: AddressBook) -> None:
        super().__init__(use_cache=False, case_sensitive=True)
        self.book = book

    async def get_suggestion(self, value: str) -> str | None:
        import asyncio

        head, typed = split_last(value)
        if len(typed) < 2 or "<" in typed:
            return None
        found = await asyncio.to_thread(self.book.complete, typed, 1)
        for c in found:
            addr = c.text.rsplit("<", 1)[-1].rstrip(">") if c.text.endswith(">") else c.text
            if addr.casefold().startswith(typed.casefold()) and addr != typed:
                return value + addr[len(typed):]
        return None


class RecipientsPrompt(ModalScreen[str | None]):
    BINDINGS = [Binding("escape", "cancel", "Cancel")]
    DEFAULT_CSS = _MODAL_CSS.format(name="RecipientsPrompt") + """
    RecipientsPrompt OptionList { height: auto; max-height: 10; border: none; padding: 0; }
    """

    def __init__(self, header: str, value: str, book: AddressBook) -> None:
        super().__init__()
        self.header, self.value, self.book = header, value, book
        self.matches: list[Completion] = []

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Static(Content(f"{self.header}: (addresses complete as you type)"), classes="title")
            yield Input(value=self.value, placeholder="Name <name@example.org>, ...",
                        suggester=AddressSuggester(self.book), id="value", select_on_focus=False)
            yield OptionList(id="matches")
            yield Static(Content("Enter: ok   ↓/Tab: matches   →: take the faded address   Esc: cancel"),
                         classes="hint")

    def on_mount(self) -> None:
        self.query_one("#matches", OptionList).display = False
        self.query_one(Input).focus()

    @on(Input.Changed, "#value")
    def _changed(self, event: Input.Changed) -> None:
        _head, typed = split_last(event.value)
        value = event.value
        book = self.book

        def work() -> None:
            found = book.complete(typed) if len(typed) >= 1 else []
            self.app.call_from_thread(self._show, value, found)

        self.run_worker(work, thread=True, group="complete", exclusive=True, exit_on_error=False)

    def _show(self, value: str, found: list[Completion]) -> None:
        if value != self.query_one(Input).value:
            return  # typed on meanwhile: a newer lookup follows
        self.matches = found
        ol = self.query_one("#matches", OptionList)
        ol.clear_options()
        for i, c in enumerate(found):
            ol.add_option(Option(Content(f"{sanitize_line(c.text)}   ({sanitize_line(c.detail)})"), id=str(i)))
        ol.display = bool(found)

    def on_key(self, event: events.Key) -> None:
        ol = self.query_one("#matches", OptionList)
        if event.key in ("down", "tab") and self.query_one(Input).has_focus and self.matches:
            event.stop()
            event.prevent_default()
            ol.focus()
            ol.highlighted = 0
        elif event.key == "up" and ol.has_focus and ol.highlighted in (0, None):
            event.stop()
            event.prevent_default()
            self.query_one(Input).focus()

    @on(OptionList.OptionSelected, "#matches")
    def _chosen(self, event: OptionList.OptionSelected) -> None:
        i = int(event.option.id or 0)
        if not 0 <= i < len(self.matches):
            return
        inp = self.query_one(Input)
        inp.value = with_choice(inp.value, self.matches[i].text)
        inp.cursor_position = len(inp.value)
        inp.focus()

    @on(Input.Submitted, "#value")
    def _submitted(self, event: Input.Submitted) -> None:
        self.dismiss(" ".join(event.value.split()).strip().rstrip(",;").strip())

    def action_cancel(self) -> None:
        self.dismiss(None)
