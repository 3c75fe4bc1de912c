"""JMAP keywords <-> canonical flags, in one place (RFC 8621 §4.1.1).

`$seen`, `$flagged`, `$answered`, `$draft` are the canonical seen/flagged/answered/draft; JMAP has
no deleted flag (a destroy is immediate), so "deleted" is never sent. Every other keyword is kept
as the server spells it (lower case on Cyrus: JMAP keywords are case-insensitive).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from tuimail.core.flags import ANSWERED, DELETED, DRAFT, FLAGGED, SEEN

TO_CANONICAL = {"$seen": SEEN, "$flagged": FLAGGED, "$answered": ANSWERED, "$draft": DRAFT}
TO_KEYWORD = {v: k for k, v in TO_CANONICAL.items()}


def to_canonical(keywords: Mapping[str, Any] | None) -> tuple[frozenset[str], str]:
    """A JMAP `keywords` object -> (canonical flags, the other keywords space-separated, sorted)."""
    flags: set[str] = set()
    other: set[str] = set()
    for kw, on in (keywords.items() if isinstance(keywords, Mapping) else ()):
        if on is not True or not isinstance(kw, str):
            continue
        canon = TO_CANONICAL.get(kw.lower())
        if canon is not None:
            flags.add(canon)
        elif kw and not any(c.isspace() or ord(c) < 32 for c in kw):
            other.add(kw)
    return frozenset(flags), " ".join(sorted(other))


def keyword(flag: str) -> str | None:
    """The JMAP keyword for a canonical flag or a kept keyword; None for "deleted" (no JMAP form)."""
    if flag == DELETED:
        return None
    return TO_KEYWORD.get(flag, flag)


def patch(add: Iterable[str], remove: Iterable[str]) -> dict[str, Any]:
    """An Email/set patch setting/clearing only these keywords: the other keywords stay as the
    server has them (so re-applying it after a conflict keeps another client's changes)."""
    out: dict[str, Any] = {}
    for f in remove:
        kw = keyword(f)
        if kw is not None:
            out[f"keywords/{_escape(kw)}"] = None
    for f in add:
        kw = keyword(f)
        if kw is not None:
            out[f"keywords/{_escape(kw)}"] = True
    return out


def _escape(key: str) -> str:
    """A JSON pointer token (RFC 6901): ~ and / escaped."""
    return key.replace("~", "~0").replace("/", "~1")
