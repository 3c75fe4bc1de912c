"""The functions @dataclass writes, compiled once per machine instead of at every start.

CPython 3.11's dataclasses builds each class's __init__, __repr__, __eq__... from source text and
compiles it (`exec` of a string in dataclasses._create_fn): at start-up, tuimail's and Textual's
~110 dataclasses cost 320 compilations, 40 ms of a 260 ms import (measured with `exec` timed
inside dataclasses). The text decides the code completely, so the code objects are kept in a
file (marshal, keyed by the text; one file per Python build) and a start finds them there.

`install()` (the CLI, before anything else is imported) points dataclasses' `exec` at
`_cached_exec`; `save()` writes the file when this run compiled something new, keeping only what
this run used. Any trouble (no such internals in another Python, a damaged or unwritable file)
means compiling as before: the file is a cache, nothing depends on it.
"""

from __future__ import annotations

import builtins
import marshal
import sys
from pathlib import Path
from types import CodeType
from typing import Any

_codes: dict[str, CodeType] = {}  # what the file held
_used: dict[str, CodeType] = {}  # what this run asked for (what save() writes)
_new = False  # something was compiled that the file did not have
_path: Path | None = None


def _cached_exec(source: Any, globals: Any = None, locals: Any = None, /) -> None:
    global _new
    if isinstance(source, str):
        code = _codes.get(source)
        if code is None:
            code = compile(source, "<string>", "exec")
            _new = True
        _used[source] = code
        source = code
    builtins.exec(source, globals, locals)


def install(cache_dir: Path) -> None:
    """Use (and later fill) the cache in cache_dir. Call before the dataclasses are made."""
    global _path
    import dataclasses

    if getattr(dataclasses, "_create_fn", None) is None or _path is not None:
        return  # (a Python whose dataclasses do not compile text this way)
    tag = f"{sys.implementation.cache_tag}-{sys.version_info.releaselevel}{sys.version_info.serial}"
    _path = cache_dir / f"dataclasses-{tag}-{sys.version_info.micro}.marshal"
    try:
        loaded = marshal.loads(_path.read_bytes())
        if isinstance(loaded, dict):
            _codes.update((k, v) for k, v in loaded.items() if isinstance(k, str) and isinstance(v, CodeType))
    except (OSError, ValueError, EOFError, TypeError):
        pass
    dataclasses.exec = _cached_exec  # type: ignore[attr-defined]  # (its global shadows the builtin)


def save() -> None:
    """Write the cache if this run compiled something it did not hold (atomically; errors ignored)."""
    global _new
    if _new and _path is not None:
        _new = False
        from tuimail.paths import write_cache_file
        write_cache_file(_path, lambda: marshal.dumps(dict(_used)))
