"""Folder roles: SPECIAL-USE attributes (RFC 6154) first, then well-known names, config overrides win."""

from __future__ import annotations

from tuimail.core.roles import WELL_KNOWN

ROLE_ATTRS = {b"\\sent": "sent", b"\\drafts": "drafts", b"\\trash": "trash", b"\\junk": "junk",
              b"\\archive": "archive", b"\\all": None, b"\\flagged": None}
ROLE_NAMES = WELL_KNOWN  # (core/roles.py: one table for every kind)


def assign_roles(entries: list, overrides: dict[str, str]) -> None:
    """SPECIAL-USE attributes first, then well-known names; config overrides win; INBOX is inbox."""
    taken: set[str] = set()
    by_name = {e.name: e for e in entries}
    for role, name in overrides.items():
        if name in by_name:
            by_name[name].role = role
            taken.add(role)
    for e in entries:
        if e.role:
            continue
        if e.name.upper() == "INBOX":
            e.role = "inbox" if "inbox" not in taken else None
            taken.add("inbox")
            continue
        for a in e.attrs:
            role = ROLE_ATTRS.get(a.lower().encode()) or ""
            if role and role not in taken:
                e.role = role
                taken.add(role)
                break
    for e in entries:
        if e.role or not e.selectable:
            continue
        low = e.name.lower()
        for role, names in ROLE_NAMES.items():
            if role not in taken and (low in names or (e.delimiter and low.split(e.delimiter.lower())[-1] in names
                                                        and low.count(e.delimiter.lower()) <= 1)):
                e.role = role
                taken.add(role)
                break
