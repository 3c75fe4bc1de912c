"""A one-line prompt on the bottom line of the screen, as mutt asks for a pattern: `Limit: ___`.

Enter gives the text (perhaps empty), Escape gives None. The screen behind stays visible.
"""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal
from textual.content import Content
from textual.screen import ModalScreen
from textual.widgets import Input, Static

from tuimail.trace import trace


class LinePrompt(ModalScreen[str | None]):
    BINDINGS = [Binding("escape", "cancel", "Cancel")]
    DEFAULT_CSS = """
    LinePrompt { align: left bottom; background: transparent; }
    LinePrompt > Horizontal { height: 1; width: 100%; background: $panel; }
    LinePrompt .label { width: auto; height: 1; padding: 0 1 0 0; text-style: bold; }
    LinePrompt Input { height: 1; width: 1fr; border: none; padding: 0; background: $panel; }
    LinePrompt Input:focus { border: none; }
    """

    def __init__(self, label: str, value: str = "", *, placeholder: str = "") -> None:
        super().__init__()
        self.label, self.value, self.placeholder = label, value, placeholder

    def compose(self) -> ComposeResult:
        with Horizontal():
            yield Static(Content(self.label), classes="label")
            yield Input(value=self.value, placeholder=self.placeholder, select_on_focus=False)

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        trace("prompt submitted")
        self.dismiss(event.value)

    def action_cancel(self) -> None:
        self.dismiss(None)
