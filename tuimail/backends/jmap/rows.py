"""A JMAP Email as the store's header row, and the checks every use of a server's JSON goes
through (a hostile or broken answer is skipped, never a crash)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from tuimail.backends.jmap.flags import to_canonical
from tuimail.core.flags import SEEN
from tuimail.protocol.jmap.mail import HEADER_PROPERTIES

LIGHT = ("id", "mailboxIds", "keywords")  # where an email is and its flags: what a changed one needs
# What a row needs and nothing more (no blobId/threadId: the reader asks for those when it opens one)
HEADERS = tuple(p for p in HEADER_PROPERTIES if p not in ("blobId", "threadId"))


def header_row(e: dict[str, Any]) -> tuple:
    """A JMAP Email (HEADER_PROPERTIES) as the store's header row."""
    flags, kw = to_canonical(e.get("keywords"))
    date = _epoch(e.get("sentAt")) or _epoch(e.get("receivedAt"))
    mids = [m for m in as_list(e.get("messageId")) if isinstance(m, str)]
    irt = [m for m in as_list(e.get("inReplyTo")) if isinstance(m, str)]
    refs = [m for m in as_list(e.get("references")) if isinstance(m, str)]
    size = e.get("size")
    return (str(e["id"]), 0, flags, kw, date, addresses(e.get("from")), addresses(e.get("to")),
            addresses(e.get("cc")), str(e.get("subject") or ""), f"<{mids[0]}>" if mids else None,
            f"<{irt[0]}>" if irt else None, " ".join(f"<{r}>" for r in refs),
            size if isinstance(size, int) else 0, int(bool(e.get("hasAttachment"))))


_SPECIALS = set('()<>[]:;@\\,."')
_ADDR_CACHE: dict[tuple[Any, Any], str] = {}


def addresses(value: Any) -> str:
    """JMAP EmailAddress objects as header text ('"Doe, Jane" <j@x>, k@y'), decoded (as the
    IMAP rows hold them); a name with specials is quoted."""
    if isinstance(value, list) and len(value) == 1 and isinstance(value[0], dict):
        key = (value[0].get("name"), value[0].get("email"))  # (one sender: the common case, memoised)
        if isinstance(key[0], (str, type(None))) and isinstance(key[1], (str, type(None))):
            hit = _ADDR_CACHE.get(key)
            if hit is None:
                hit = _addresses(value)
                if len(_ADDR_CACHE) < 20000:
                    _ADDR_CACHE[key] = hit
            return hit
    return _addresses(value)


def _addresses(value: Any) -> str:
    out = []
    for a in as_list(value):
        if not isinstance(a, dict):
            continue
        name = str(a.get("name") or "").replace("\r", " ").replace("\n", " ").strip()
        email = str(a.get("email") or "").strip()
        if name and email:
            if any(c in _SPECIALS for c in name):
                name = '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'
            out.append(f"{name} <{email}>")
        elif email or name:
            out.append(email or name)
    return ", ".join(out)


def _epoch(value: Any) -> int | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        return int(datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp())
    except (ValueError, OverflowError):
        return None


def unseen(e: dict[str, Any]) -> bool:
    return SEEN not in to_canonical(e.get("keywords"))[0]


# A server's JSON is checked where it is used: a hostile or broken answer is skipped, never a crash.

def as_dict(value: Any) -> dict:
    return value if isinstance(value, dict) else {}


def as_list(value: Any) -> list:
    return value if isinstance(value, list) else []


def mailbox_ids(e: dict[str, Any]) -> dict:
    return as_dict(e.get("mailboxIds"))


def email_objects(value: Any) -> list[dict[str, Any]]:
    """The Email objects of a list that have a string id (others are skipped)."""
    return [e for e in as_list(value) if isinstance(e, dict) and isinstance(e.get("id"), str) and e["id"]]
