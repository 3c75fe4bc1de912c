"""Themes: Textual Theme definitions in TOML files.

Shipped themes are package data, ``tuimail/themes/*.toml`` (the top-level ``themes/`` is a link to
them), read with importlib.resources so an installed wheel has them; users add their own as
``<config dir>/themes/NAME.toml`` (a user file with the same name wins). A file holds the fields
of ``textual.theme.Theme`` (name, primary, secondary, accent, warning, error, success, foreground,
background, surface, panel, boost, dark, ansi, luminosity_spread, text_alpha) and an optional
``[variables]`` table of CSS variables, tuimail's own among them: ``tuimail-rule`` (the lines
between the panes) and ``tuimail-guides`` (the folder tree's guides); the focused pane's bar is
the ``accent`` colour. ``[ui] theme`` names one; "dark", "light" and "classic"
are short for the shipped ``tuimail-*`` themes; Textual's built-in themes work too.
"""

from __future__ import annotations

import dataclasses
import tomllib
from importlib import resources
from importlib.resources.abc import Traversable
from pathlib import Path

from textual.color import Color, ColorParseError
from textual.theme import Theme

from tuimail.paths import config_dir

DEFAULT_THEME = "tuimail-dark"
ALIASES = {"dark": "tuimail-dark", "light": "tuimail-light", "classic": "tuimail-classic"}
_FIELDS = {f.name: f.type for f in dataclasses.fields(Theme)} if dataclasses.is_dataclass(Theme) else {}
_COLOR_FIELDS = ("primary", "secondary", "warning", "error", "success", "accent", "foreground",
                 "background", "surface", "panel", "boost")


SHIPPED = tuple(sorted(ALIASES.values()))  # each has a file NAME.toml in the package


def shipped_dir() -> Traversable:
    return resources.files("tuimail") / "themes"


def theme_dirs() -> list[Traversable | Path]:
    return [shipped_dir(), config_dir() / "themes"]


def parse_theme(path: Traversable | Path) -> Theme:
    """One theme file -> Theme; ValueError with a one-line reason when it is not valid."""
    try:
        doc = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as e:
        raise ValueError(f"{path.name}: {' '.join(str(e).split())}") from None
    name = doc.get("name", path.name.removesuffix(".toml"))
    if not isinstance(name, str) or not name:
        raise ValueError(f"{path.name}: name must be a non-empty string")
    args: dict = {"name": name}
    for key, value in doc.items():
        if key == "name":
            continue
        if key == "variables":
            if not isinstance(value, dict) or not all(isinstance(v, str) for v in value.values()):
                raise ValueError(f"{path.name}: [variables] must map names to strings")
            args["variables"] = dict(value)
        elif key in _COLOR_FIELDS:
            if not isinstance(value, str):
                raise ValueError(f"{path.name}: {key} must be a colour string")
            try:
                Color.parse(value)
            except ColorParseError:
                raise ValueError(f"{path.name}: {key}: not a colour: {value[:30]!r}") from None
            args[key] = value
        elif key in ("dark", "ansi"):
            if not isinstance(value, bool):
                raise ValueError(f"{path.name}: {key} must be true or false")
            args[key] = value
        elif key in ("luminosity_spread", "text_alpha"):
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise ValueError(f"{path.name}: {key} must be a number")
            args[key] = float(value)
        else:
            raise ValueError(f"{path.name}: unknown key {key!r}")
    if "primary" not in args:
        raise ValueError(f"{path.name}: primary is required")
    if args.get("ansi"):
        # Textual's CSS for ANSI themes refers to these; without them the stylesheet fails to load
        variables = args.setdefault("variables", {})
        variables.setdefault("ansi-background", "ansi_black")
        variables.setdefault("ansi-foreground", "ansi_white")
    return Theme(**args)


def load_themes(dirs: list[Traversable | Path] | None = None) -> tuple[dict[str, Theme], list[str]]:
    """All themes found (later directories override earlier ones) and one-line problems, a
    shipped theme missing from the installed package among them."""
    themes: dict[str, Theme] = {}
    problems: list[str] = []
    if dirs is None:
        dirs = theme_dirs()
        shipped = shipped_dir()
        missing = [n for n in SHIPPED if not _is_file(shipped / f"{n}.toml")]
        if missing:
            problems.append(f"theme files missing from the installed tuimail package: "
                            f"{', '.join(m + '.toml' for m in missing)} (reinstall tuimail)")
    for d in dirs:
        try:
            files = sorted((f for f in d.iterdir() if f.name.endswith(".toml") and f.is_file()),
                           key=lambda f: f.name)
        except OSError:
            continue
        for f in files:
            try:
                t = parse_theme(f)
            except ValueError as e:
                problems.append(f"theme {e}")
                continue
            themes[t.name] = t
    return themes, problems


def _is_file(t: Traversable) -> bool:
    try:
        return t.is_file()
    except OSError:
        return False


def resolve_name(name: str | None) -> str:
    if not name:
        return DEFAULT_THEME
    return ALIASES.get(name, name)
