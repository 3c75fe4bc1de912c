"""IMAP system flags <-> canonical flags: the one place above protocol/ that spells "\\Seen".

    to_canonical(["\\Seen", "$Work"]) -> (frozenset({"seen"}), ("$Work",))
    to_imap("seen") -> "\\Seen";  to_imap("$Work") -> "$Work" (a keyword goes as it is)

System flags are case-insensitive (RFC 3501 §2.3.2); keywords are kept as the server spells them.
\\Recent is never stored (it is the server's, per session).
"""

from __future__ import annotations

from collections.abc import Iterable

from tuimail.core.flags import ANSWERED, DELETED, DRAFT, FLAGGED, SEEN

_TO_IMAP = {SEEN: "\\Seen", FLAGGED: "\\Flagged", ANSWERED: "\\Answered", DRAFT: "\\Draft", DELETED: "\\Deleted"}
_FROM_IMAP = {v.lower(): k for k, v in _TO_IMAP.items()}
_cache: dict[tuple, tuple[frozenset[str], tuple[str, ...]]] = {}


def to_canonical(imap_flags: Iterable[str]) -> tuple[frozenset[str], tuple[str, ...]]:
    """(canonical flags, other keywords sorted) of an IMAP flag list. Memoised: a folder's rows
    share a handful of distinct flag lists (a cold fill of 100k rows maps each once)."""
    key = imap_flags if isinstance(imap_flags, tuple) else tuple(imap_flags)
    got = _cache.get(key)
    if got is not None:
        return got
    canon, kw = set(), set()
    for f in key:
        c = _FROM_IMAP.get(f.lower())
        if c is not None:
            canon.add(c)
        elif f and f.lower() != "\\recent":
            kw.add(f)
    got = frozenset(canon), tuple(sorted(kw))
    if len(_cache) < 4096:
        _cache[key] = got
    return got


def to_imap(name: str) -> str:
    """A canonical flag's IMAP spelling; any other name is a keyword and goes as it is."""
    return _TO_IMAP.get(name, name)


def imap_names(names: Iterable[str]) -> tuple[str, ...]:
    return tuple(to_imap(n) for n in names)


def canonical_name(token: str) -> str:
    """One IMAP flag token as the store keeps it: "\\\\Seen" -> "seen", a keyword unchanged."""
    return _FROM_IMAP.get(token.lower(), token)


def server_flags(fetched) -> list[tuple[str, frozenset[str], str, int | None]]:
    """(uid, IMAP flags, modseq) as the server sent them -> the store's (sid, flags, keywords, modseq)."""
    out = []
    for uid, flags, modseq in fetched:
        canon, kw = to_canonical(flags)
        out.append((str(uid), canon, " ".join(kw), modseq))
    return out
