"""Canonical flags (issue 10.2): above the backends nothing spells an IMAP system flag.

The IMAP backend maps them in one place (backends/imap/flags.py); protocol/imap speaks IMAP. The
demo is an IMAP server of its own (its generated messages carry IMAP flags), not a layer above
the backends.
"""

from __future__ import annotations

import re
from pathlib import Path

import tuimail
from tuimail.backends.imap.flags import canonical_name, to_canonical, to_imap
from tuimail.core.flags import CANONICAL

PKG = Path(tuimail.__file__).parent
ALLOWED = ("protocol/", "backends/imap/", "demo/")
SPELLED = re.compile(r"\\(Seen|Flagged|Answered|Draft|Deleted|Recent)\b")


def test_no_imap_system_flag_is_spelled_above_the_backends():
    found = []
    for path in sorted(PKG.rglob("*.py")):
        rel = path.relative_to(PKG).as_posix()
        if rel.startswith(ALLOWED):
            continue
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if SPELLED.search(line):
                found.append(f"{rel}:{n}: {line.strip()}")
    assert found == [], "\n".join(found)


def test_the_imap_mapping_is_one_table_both_ways():
    canon, kw = to_canonical(("\\Seen", "\\FLAGGED", "\\Recent", "$Work", "\\Answered", "\\Draft", "\\Deleted"))
    assert canon == frozenset(CANONICAL) and kw == ("$Work",)  # (case-insensitive; \Recent never stored)
    assert {to_imap(c) for c in CANONICAL} == {"\\Seen", "\\Flagged", "\\Answered", "\\Draft", "\\Deleted"}
    assert all(canonical_name(to_imap(c)) == c for c in CANONICAL)
    assert to_imap("$Work") == "$Work" and canonical_name("$Work") == "$Work"
