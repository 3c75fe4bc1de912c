"""The review screen after the editor: who the message goes to, its subject, its attachments, and
what to do with it (send, edit again, postpone to Drafts, discard).

The screen shows the draft — its headers, the first lines of its text (scrollable) and its
attachments — and returns the user's choice ("send", "edit", "postpone", "discard"); the compose
controller (ui/controllers/compose.py) does the work. Attachments are added (a path, with
completion) and removed here, and the To / Cc / Bcc (with address completion: screens/recipients.py)
and Subject headers edited, on the draft itself. Everything shown from the draft passes through
the sanitiser, as in the reader.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical, VerticalScroll
from textual.content import Content
from textual.screen import Screen
from textual.suggester import Suggester
from textual.widgets import OptionList, Static
from textual.widgets.option_list import Option

from tuimail.mail.sanitize import sanitize, sanitize_line
from tuimail.ui.rows import format_size

if TYPE_CHECKING:
    from tuimail.store.addresses import AddressBook
    from tuimail.ui.controllers.compose import ComposeSession

PREVIEW_LINES = 200  # of the text shown under the headers (the editor has it all)


class PathSuggester(Suggester):
    """Completes a file path: the first entry of the directory that starts with what was typed."""

    def __init__(self) -> None:
        super().__init__(use_cache=False, case_sensitive=True)

    async def get_suggestion(self, value: str) -> str | None:
        if not value:
            return None
        expanded = os.path.expanduser(value)
        head, _, tail = expanded.rpartition(os.sep)
        directory = Path(head or ("/" if expanded.startswith(os.sep) else "."))
        try:
            names = sorted(n for n in os.listdir(directory) if n.startswith(tail) and (tail.startswith(".")
                                                                                       or not n.startswith(".")))
        except OSError:
            return None
        if not names or names[0] == tail:
            return None
        rest = names[0][len(tail):]
        if (directory / names[0]).is_dir():
            rest += os.sep
        return value + rest


class ReviewScreen(Screen[str]):
    # (p postpones: mutt's compose menu has it on P, which the main window binds to the layout;
    # P works here too)
    BINDINGS = [
        Binding("y", "choose('send')", "Send"),
        Binding("e", "choose('edit')", "Edit again"),
        Binding("p,P", "postpone", "Postpone to Drafts"),
        Binding("q,escape", "discard", "Discard"),
        Binding("a", "add", "Attach a file"),
        Binding("D", "remove", "Remove the attachment"),
        Binding("t", "header('To')", "Edit To"),
        Binding("c", "header('Cc')", "Edit Cc"),
        Binding("b", "header('Bcc')", "Edit Bcc"),
        Binding("s", "header('Subject')", "Edit the subject"),
    ]

    DEFAULT_CSS = """
    ReviewScreen { layout: vertical; }
    ReviewScreen #headers { height: auto; padding: 1 2 0 2; }
    ReviewScreen #error { height: auto; padding: 0 2; color: $error; }
    ReviewScreen #body { height: 1fr; margin: 1 2 0 2; border-top: solid $panel-lighten-2; }
    ReviewScreen #text { height: auto; }
    ReviewScreen #atitle { height: 1; padding: 0 2; margin-top: 1; }
    ReviewScreen #attachments { height: auto; max-height: 8; margin: 0 2; }
    ReviewScreen #hint { height: auto; padding: 0 1; background: $panel; }
    """

    def __init__(self, session: ComposeSession, *, can_postpone: bool, postpone_note: str = "",
                 book: AddressBook | None = None) -> None:
        super().__init__()
        self.session = session
        self.can_postpone = can_postpone
        self.postpone_note = postpone_note
        self.book = book

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Static(id="headers")
            yield Static(id="error")
            with VerticalScroll(id="body"):
                yield Static(id="text")
            yield Static(Content("Attachments"), id="atitle")
            yield OptionList(id="attachments")
        yield Static(id="hint")

    def on_mount(self) -> None:
        self.refresh_view()
        self.query_one("#body", VerticalScroll).focus()

    def hint_text(self) -> str:
        parts = ["y send", "e edit", "t/c/b To/Cc/Bcc", "s subject", "a attach", "D remove attachment",
                 "q discard"]
        if self.can_postpone:
            parts.insert(2, "p postpone")
        text = "  ".join(parts)
        if not self.can_postpone and self.postpone_note:
            text += f"   ({self.postpone_note})"
        return text

    def refresh_view(self) -> None:
        d = self.session.draft
        rows = [("From", d.from_), ("To", d.to), ("Cc", d.cc), ("Bcc", d.bcc), ("Subject", d.subject)]
        lines = [f"{name:8} {sanitize_line(value)}" for name, value in rows if value or name in ("To", "Subject")]
        self.query_one("#headers", Static).update(Content("\n".join(lines)))
        err = self.session.error
        self.query_one("#error", Static).update(Content(sanitize_line(err) if err else ""))
        lines = sanitize(d.body).splitlines()
        preview = "\n".join(lines[:PREVIEW_LINES])
        if len(lines) > PREVIEW_LINES:
            preview += f"\n[… {len(lines) - PREVIEW_LINES} more lines: e shows them in the editor]"
        self.query_one("#text", Static).update(Content(preview or "(no text)"))
        ol = self.query_one("#attachments", OptionList)
        ol.clear_options()
        for i, att in enumerate(d.attachments):
            label = f"{sanitize_line(att.filename)}  {att.mimetype}  {format_size(len(att.data))}"
            ol.add_option(Option(Content(label), id=str(i)))
        ol.display = bool(d.attachments)
        if d.attachments and ol.highlighted is None:
            ol.highlighted = 0
        self.query_one("#atitle", Static).update(
            Content(f"Attachments ({len(d.attachments)})" if d.attachments else "No attachments"))
        self.query_one("#hint", Static).update(Content(self.hint_text()))

    def action_choose(self, what: str) -> None:
        self.dismiss(what)

    def action_postpone(self) -> None:
        if not self.can_postpone:
            self.notify(self.postpone_note or "postponing is not available for this account", markup=False)
            return
        self.dismiss("postpone")

    def action_discard(self) -> None:
        from tuimail.ui.screens.modals import ConfirmScreen

        def answered(yes: bool | None) -> None:
            if yes:
                self.dismiss("discard")

        self.app.push_screen(ConfirmScreen("Discard this message?", "the text you wrote is deleted"), answered)

    def action_add(self) -> None:
        from textual.widgets import Input

        from tuimail.ui.screens.modals import PromptScreen

        def got(value: str | None) -> None:
            if not value or not value.strip():
                return
            self.session.error = self.session.attach(value.strip())
            self.refresh_view()

        class PathPrompt(PromptScreen):
            # Tab takes the completion, as in mutt's and a shell's file prompts (Textual's Input
            # takes it on → only; Tab would move the focus off the only field and lose the path)
            BINDINGS = [Binding("tab", "complete", "Complete", show=False, priority=True)]

            def on_mount(self) -> None:
                self.query_one(Input).suggester = PathSuggester()

            def action_complete(self) -> None:
                field = self.query_one(Input)
                field.cursor_position = len(field.value)
                field.action_cursor_right()  # at the end: takes the suggestion

        self.app.push_screen(PathPrompt("Attach a file (→ completes)", placeholder="~/path/to/file"), got)

    def action_header(self, name: str) -> None:
        """Edit To / Cc / Bcc (address completion) or Subject on the draft (the edit file follows)."""
        from tuimail.ui.screens.modals import PromptScreen
        from tuimail.ui.screens.recipients import RecipientsPrompt

        field_name = {"To": "to", "Cc": "cc", "Bcc": "bcc", "Subject": "subject"}[name]
        current = getattr(self.session.draft, field_name)

        def got(value: str | None) -> None:
            if value is None:
                return
            self.session.set_header(name, value)
            self.refresh_view()

        if name != "Subject" and self.book is not None:
            self.app.push_screen(RecipientsPrompt(name, current, self.book), got)
        else:
            self.app.push_screen(PromptScreen(name, current), got)

    def action_remove(self) -> None:
        ol = self.query_one("#attachments", OptionList)
        i = ol.highlighted
        atts = self.session.draft.attachments
        if i is None or not 0 <= i < len(atts):
            self.notify("no attachment selected", markup=False)
            return
        del atts[i]
        self.refresh_view()
