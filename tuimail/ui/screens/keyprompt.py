"""One line at the bottom that takes one key: mutt's `;` prompt ("apply to 12 tagged: ...").

Dismissed with the action name the key is bound to (among those offered), or None for any other
key (Esc included): a stray key after `;` does nothing rather than something else.
"""

from __future__ import annotations

from textual import events
from textual.app import ComposeResult
from textual.content import Content
from textual.screen import ModalScreen
from textual.widgets import Static

from tuimail.config.keys import _SAME, _key
from tuimail.mail.sanitize import sanitize_line


class KeyPromptScreen(ModalScreen[str | None]):
    DEFAULT_CSS = """
    KeyPromptScreen { align: left bottom; background: transparent; }
    KeyPromptScreen > Static { height: 1; width: 1fr; background: $primary-background; color: $foreground;
                               text-style: bold; }
    """

    def __init__(self, text: str, actions: dict[str, tuple[str, ...]]) -> None:
        """actions: action name -> its keys (as the [keys] table spells them)."""
        super().__init__()
        self.text = text
        self.by_key: dict[str, str] = {}
        for name, ks in actions.items():
            for k in ks:
                for spelled in (k, _key(k), _SAME.get(k, k)):
                    self.by_key.setdefault(spelled, name)

    def compose(self) -> ComposeResult:
        yield Static(Content(sanitize_line(self.text)))

    def on_key(self, event: events.Key) -> None:
        event.stop()
        event.prevent_default()
        name = self.by_key.get(event.key)
        if name is None and event.character:
            name = self.by_key.get(event.character)
        self.dismiss(None if event.key == "escape" else name)
