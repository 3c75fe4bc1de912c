"""Textual's parsed CSS, kept from one start to the next (as codecache.py keeps dataclass code).

At every start Textual parses the app's CSS and each widget class's DEFAULT_CSS (~38 KB here):
54 parses, 11-19 ms of the first screen measured (POP3 bench mailbox, 160x45), all of it before
the first paint. The result is a pure function of the text, where it was read from, the options
and the theme's variables, so `install()` wraps Stylesheet._parse_rules: a parse this file holds
is unpickled instead (~1 ms for all of them), a new one is parsed and kept; `save()` writes the
file when this run parsed something new, holding only what this run used (a theme changed
yesterday leaves nothing behind). It names the Textual it was made with (where it is installed,
the size and time of its CSS parser's files): made by another, it is not read.

Every hit is unpickled again, so each caller gets rule sets of its own, as from a parse. Any
trouble (another Textual, a damaged or unwritable file, a Stylesheet without this method) means
parsing as before: the file is a cache, nothing depends on it. It lives beside the code cache
(<cache>/tuimail/code): derived from the program's own text, it survives a cache clean as the
compiled code does.
"""

from __future__ import annotations

import hashlib
import os
import pickle
import sys
from pathlib import Path
from typing import Any

_FORMAT = 1
_path: Path | None = None
_textual: tuple = ()  # (where Textual is, and the size and time of its parser's files)
_held: dict[tuple, bytes] = {}  # what the file held
_used: dict[tuple, bytes] = {}  # what this run asked for (what save() writes)
_new = False
_digests: dict[int, tuple[dict, str]] = {}  # id(variables dict) -> (the dict, its digest)


def _variables_digest(variables: dict) -> str:
    hit = _digests.get(id(variables))
    if hit is not None and hit[0] is variables:
        return hit[1]
    digest = hashlib.blake2b(repr(sorted(variables.items())).encode(), digest_size=16).hexdigest()
    _digests[id(variables)] = (variables, digest)  # (the dict is kept: its id is not reused)
    return digest


def install(cache_dir: Path) -> None:
    """Use (and later fill) the cache in cache_dir. Call before the app's stylesheet is parsed."""
    global _path, _textual
    if _path is not None:
        return
    try:
        import textual
        from textual.css.stylesheet import Stylesheet
    except ImportError:
        return
    original = getattr(Stylesheet, "_parse_rules", None)
    if original is None or getattr(original, "_tuimail_cached", False):
        return
    # which Textual: its parser's files as installed (textual.__version__ would import
    # importlib.metadata, ~8 ms); another version or a reinstall writes them anew
    try:
        root = Path(textual.__file__).parent
        build = tuple((st.st_size, st.st_mtime_ns) for st in
                      (os.stat(root / "css" / name) for name in ("parse.py", "stylesheet.py", "styles.py", "model.py")))
    except (OSError, TypeError):
        return
    _textual = (str(root), build)
    _path = cache_dir / f"css-textual-{sys.implementation.cache_tag}.pickle"
    try:
        loaded = pickle.loads(_path.read_bytes())
        if isinstance(loaded, dict) and loaded.get("format") == _FORMAT and loaded.get("textual") == _textual \
                and isinstance(loaded.get("entries"), dict):
            _held.update(loaded["entries"])
    except Exception:  # (a damaged file: parsed as before, written again at save())
        _held.clear()

    def _parse_rules(self: Any, css: str, read_from: Any, is_default_rules: bool = False,
                     tie_breaker: int = 0, scope: str = "") -> Any:
        global _new
        try:
            key = (css, read_from, is_default_rules, tie_breaker, scope, _variables_digest(self._variables))
            blob = _held.get(key)
            if blob is not None:
                rules = pickle.loads(blob)
                _used[key] = blob
                return rules
        except Exception:
            return original(self, css, read_from, is_default_rules, tie_breaker, scope)
        rules = original(self, css, read_from, is_default_rules, tie_breaker, scope)
        try:
            _used[key] = _held[key] = pickle.dumps(rules, pickle.HIGHEST_PROTOCOL)
            _new = True
        except Exception:
            pass  # (rules that do not pickle: parsed at every start)
        return rules

    _parse_rules._tuimail_cached = True  # type: ignore[attr-defined]
    Stylesheet._parse_rules = _parse_rules  # type: ignore[method-assign]


def save() -> None:
    """Write the cache if this run parsed something it did not hold (atomically; errors ignored)."""
    global _new
    if _new and _path is not None:
        _new = False
        from tuimail.paths import write_cache_file
        write_cache_file(_path, lambda: pickle.dumps({"format": _FORMAT, "textual": _textual, "entries": dict(_used)},
                                                     pickle.HIGHEST_PROTOCOL))
