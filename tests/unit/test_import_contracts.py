"""The import contracts of pyproject.toml ([tool.importlinter], DESIGN.md §1) hold, and they bite: a copy
of the tree with one forbidden import added breaks the contract that names it. `make check` runs the
same contracts with `lint-imports`; this file makes `make test` catch a broken layer too."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

LINT = "import sys\nfrom importlinter.cli import lint_imports\nsys.exit(lint_imports(no_cache=True))\n"

# Modules outside the layers contract and where they stand. A new package must be given a place in
# the contracts first, then here.
ENTRY_POINTS = {"__main__", "launcher", "cli", "demo", "serve"}
SHARED = {"codecache", "config", "errors", "paths", "trace"}


def _lint(tree: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(tree)}
    return subprocess.run([sys.executable, "-c", LINT], cwd=tree, env=env, capture_output=True, text=True,
                          timeout=120)


def _contracts() -> list[dict]:
    with open(ROOT / "pyproject.toml", "rb") as f:
        return tomllib.load(f)["tool"]["importlinter"]["contracts"]


def test_the_tree_keeps_every_contract():
    out = _lint(ROOT)
    assert out.returncode == 0, out.stdout + out.stderr
    assert f"Contracts: {len(_contracts())} kept, 0 broken." in out.stdout


LAYERS = "Layers: ui above backends above store | protocol above mail above core"
THROUGH_REGISTRY = "ui and cli import backends only through tuimail.backends.registry"
SERVE_ALONE = "tuimail.serve imports the config, never the app's layers"
CLI_ALONE = "Nothing imports tuimail.cli but the entry points"
BAD_IMPORTS = [
    # (file, line added, name of the contract it breaks)
    ("tuimail/store/db.py", "import textual.widgets", "Textual (and rich) are imported only under tuimail.ui"),
    ("tuimail/backends/imap/engine.py", "from rich.text import Text",
     "Textual (and rich) are imported only under tuimail.ui"),
    ("tuimail/core/__init__.py", "import textual", "Textual (and rich) are imported only under tuimail.ui"),
    ("tuimail/protocol/imap/wire.py", "from tuimail.ui import keys", "Only the entry points import tuimail.ui"),
    ("tuimail/backends/pop3.py", "from ..ui import app", "Only the entry points import tuimail.ui"),
    ("tuimail/config/load.py", "from ..ui import themes", "Only the entry points import tuimail.ui"),
    ("tuimail/ui/keys.py", "from tuimail.cli import main", CLI_ALONE),
    ("tuimail/backends/imap/service.py", "from ...cli import main", CLI_ALONE),
    ("tuimail/codecache.py", "from tuimail.cli import main", CLI_ALONE),
    ("tuimail/store/store.py", "from ..backends import waker", LAYERS),
    ("tuimail/protocol/imap/connection.py", "from ...store import db", LAYERS),
    ("tuimail/mail/render.py", "from ..protocol.imap import uidset", LAYERS),
    ("tuimail/core/events.py", "from ..mail import sanitize", LAYERS),
    ("tuimail/ui/launch.py", "from tuimail.backends.imap.service import ImapService", THROUGH_REGISTRY),
    ("tuimail/ui/controllers/reader.py", "from ...backends import waker", THROUGH_REGISTRY),
    ("tuimail/cli/main.py", "from tuimail.backends.imap import engine", THROUGH_REGISTRY),
    ("tuimail/demo/screenshots.py", "from tuimail.backends.imap.opener import MessageOpener", THROUGH_REGISTRY),
    ("tuimail/ui/app.py", "from tuimail.serve import web", "Only tuimail.cli imports tuimail.serve"),
    ("tuimail/store/db.py", "import tuimail.serve.auth", "Only tuimail.cli imports tuimail.serve"),
    ("tuimail/serve/web.py", "from tuimail.ui import app", SERVE_ALONE),
    ("tuimail/serve/run.py", "from tuimail.store import Store", SERVE_ALONE),
    ("tuimail/serve/auth.py", "import rich.console", SERVE_ALONE),
]


@pytest.mark.parametrize("path,line,contract", BAD_IMPORTS, ids=[f"{p}:{ln}" for p, ln, _ in BAD_IMPORTS])
def test_a_forbidden_import_breaks_its_contract(tmp_path, path, line, contract):
    tree = tmp_path / "tree"
    shutil.copytree(ROOT / "tuimail", tree / "tuimail", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", tree / "pyproject.toml")
    target = tree / path
    target.parent.mkdir(parents=True, exist_ok=True)
    (target.parent / "__init__.py").touch()
    target.write_text((target.read_text() if target.exists() else "") + f"\n{line}\n")
    out = _lint(tree)
    assert out.returncode != 0, out.stdout
    assert f"{contract} BROKEN" in out.stdout, out.stdout


def test_every_package_has_a_place_in_the_contracts():
    """A new top-level module or package must be placed: in the layers, or named here as an entry point
    or a shared module (and then kept out of tuimail.ui's importers)."""
    layered = set()
    for c in _contracts():
        if c["type"] == "layers":
            for layer in c["layers"]:
                layered |= {m.strip().removeprefix("tuimail.") for m in layer.replace(":", "|").split("|")}
    found = {p.stem for p in (ROOT / "tuimail").glob("*.py") if p.stem != "__init__"}
    found |= {p.parent.name for p in (ROOT / "tuimail").glob("*/__init__.py")}
    assert found - layered - ENTRY_POINTS - SHARED == set(), "place the new module in [tool.importlinter]"
    protected_ui = next(c for c in _contracts() if c.get("protected_modules") == ["tuimail.ui"])
    assert {m.removeprefix("tuimail.") for m in protected_ui["allowed_importers"]} <= ENTRY_POINTS


HEADLESS = """
import sys
import tuimail.cli.main, tuimail.config.load, tuimail.config.write, tuimail.backends.imap.service
import tuimail.store.store
import tuimail.store.repair, tuimail.protocol.imap.connection, tuimail.mail.render, tuimail.demo.server
print(",".join(sorted(m for m in sys.modules if m.split(".")[0] in ("textual", "rich")
                      or m.startswith("tuimail.ui"))))
"""


def test_the_core_runs_headless():
    """At run time too (lazy imports included): the CLI, sync, store and protocol load no Textual."""
    out = subprocess.run([sys.executable, "-c", HEADLESS], capture_output=True, text=True, check=True,
                         env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert out.stdout.strip() == ""
