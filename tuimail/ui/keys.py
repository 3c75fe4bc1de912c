"""Key bindings for Textual: the action table (tuimail/config/keys.py, plain data the config validator
checks [keys] against) turned into BINDINGS."""

from __future__ import annotations

from textual.binding import Binding, BindingType

from tuimail.config import keys as _table
from tuimail.config.keys import (  # noqa: F401  (the UI takes the table from here)
    ACTIONS,
    BY_NAME,
    display_key,
    effective_keys,
    keymap,
    unknown_actions,
)

__doc__ = (__doc__ or "") + "\n\n" + (_table.__doc__ or "")


def bindings(scope: str) -> list[BindingType]:
    """The BINDINGS of one scope, each with its action name as the binding id (for the keymap)."""
    # (an action with no default key gets one no terminal sends, so that [keys] can still bind it)
    return [Binding(",".join(_table._key(k) for k in a.keys) or _table._UNBOUND, a.action, a.description, show=False,
                    id=a.name)
            for a in ACTIONS if a.scope == scope]
