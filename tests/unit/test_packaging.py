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
