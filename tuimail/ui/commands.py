"""The command palette (`:`): every action, every theme, every folder.

The palette renders string prompts and help as markup, so folder names (server data) are passed
as rich `Text` objects and never appear in help strings.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import TYPE_CHECKING, Any

from rich.text import Text
from textual.command import DiscoveryHit, Hit, Hits, Provider
from textual.markup import escape

from tuimail.mail.sanitize import sanitize_line
from tuimail.ui import keys

if TYPE_CHECKING:
    from tuimail.ui.screens.main import MainScreen


class TuimailCommands(Provider):
    def _main(self) -> MainScreen | None:
        from tuimail.ui.screens.main import MainScreen

        for s in reversed(self.app.screen_stack):
            if isinstance(s, MainScreen):
                return s
        return None

    def _commands(self) -> list[tuple[str, Callable[[], Any], str]]:
        """(plain text, callback, help) — help is trusted text only."""
        main = self._main()
        out: list[tuple[str, Callable[[], Any], str]] = []
        if main is None:
            return out
        app = main.tapp
        eff = app.effective_keys
        for a in keys.ACTIONS:
            if a.scope == "tree":
                continue
            node = {"global": main, "list": main.hlist, "pager": main.reader}[a.scope]
            ks = ", ".join(keys.display_key(k) for k in eff.get(a.name, ()))
            out.append((a.description, partial(node.run_action, a.action), escape(f"{a.name}  {ks}".strip())))
        for name in app.tuimail_themes:
            out.append((f"Theme: {name}", partial(app.pick_theme, name),
                        "switch the colour theme (remembered)"))
        for label, (account, info) in main.folder_choices():
            out.append((f"Folder: {sanitize_line(label)}", partial(main.open_folder, account, info.id),
                        ""))
        return out

    async def discover(self) -> Hits:
        for text, cb, help_ in self._commands():
            yield DiscoveryHit(Text(text), cb, text=text, help=help_ or None)

    async def search(self, query: str) -> Hits:
        matcher = self.matcher(query)
        for text, cb, help_ in self._commands():
            score = matcher.match(text)
            if score > 0:
                yield Hit(score, Text(text), cb, text=text, help=help_ or None)
