"""pyproject.toml uses the SPDX `license` string (PEP 639): the table form made setuptools >= 77
print ~85 lines of deprecation warnings on every install (issue 11.7)."""

import tomllib
from pathlib import Path

PYPROJECT = Path(__file__).resolve().parents[2] / "pyproject.toml"


def test_license_is_an_spdx_string_and_the_build_backend_understands_it():
    doc = tomllib.loads(PYPROJECT.read_text())
    assert doc["project"]["license"] == "MIT"
    reqs = doc["build-system"]["requires"]
    st = [r for r in reqs if r.startswith("setuptools")]
    assert st and st[0].replace(" ", "") >= "setuptools>=77", reqs


def test_a_built_wheel_ships_the_themes(tmp_path):
    """The shipped themes are package data: a wheel holds them (before issue 10.7 it held none and
    the app silently fell back to Textual's theme). The top-level themes/ points at the same files."""
    import shutil
    import subprocess
    import sys
    import zipfile

    import pytest

    root = PYPROJECT.parent
    src = tmp_path / "src"  # (a copy: the build leaves build/ and *.egg-info behind)
    shutil.copytree(root, src, ignore=shutil.ignore_patterns(".git", ".venv", "tests", "build", "*.egg-info",
                                                             "__pycache__", "screenshots"))
    out = tmp_path / "wheel"
    proc = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(out), "."],
                          cwd=src, capture_output=True, text=True, timeout=300)
    if proc.returncode and "satisfies the requirement setuptools" in proc.stderr + proc.stdout:
        pytest.skip("no package index to fetch the build backend from")
    assert proc.returncode == 0, proc.stderr[-2000:]
    (wheel,) = out.glob("tuimail-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    shipped = {f"tuimail/themes/{n}.toml" for n in ("tuimail-dark", "tuimail-light", "tuimail-classic")}
    assert shipped <= names, sorted(n for n in names if "theme" in n)
    assert "tuimail/serve/assets/favicon.svg" in names  # `tuimail serve`'s icon
    top = {p.name for p in (root / "themes").glob("*.toml")}
    assert top == {n.rsplit("/", 1)[1] for n in shipped}
