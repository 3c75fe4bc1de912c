"""What the app remembers between runs that is not configuration: the theme picked in the
palette. A small JSON file in the state directory; the user's config.toml is never rewritten.

The remembered theme wins only while `[ui] theme` is what it was when the theme was picked:
editing the config file takes precedence again.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from tuimail import paths


def state_path() -> Path:
    return paths.state_dir() / "ui-state.json"


def load() -> dict:
    try:
        data = json.loads(state_path().read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def save(**values: object) -> str | None:
    """Merge values into the state file (written whole, atomically); a one-line problem or None."""
    path = state_path()
    data = {**load(), **values}
    try:
        paths.ensure_private_dir(path.parent)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(data, indent=1), encoding="utf-8")
        os.replace(tmp, path)
    except OSError as e:
        return f"could not remember the theme in {path}: {e.strerror or e}"
    return None


def remembered_theme(config_theme: str) -> str | None:
    """The theme picked last time, unless [ui] theme changed since."""
    data = load()
    theme = data.get("theme")
    if isinstance(theme, str) and theme and data.get("config_theme") == config_theme:
        return theme
    return None
