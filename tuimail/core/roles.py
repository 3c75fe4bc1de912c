"""Folder roles by well-known name, for any kind: an IMAP server without SPECIAL-USE
(protocol/imap/roles.py, after the attributes), a POP3 account's local folders. The roles
themselves are the store's (store.ROLES); `accounts.NAME.roles` overrides both."""

from __future__ import annotations

WELL_KNOWN: dict[str, tuple[str, ...]] = {
    "sent": ("sent", "sent items", "sent messages", "sent mail", "[gmail]/sent mail", "gesendet", "envoyés"),
    "drafts": ("drafts", "draft", "[gmail]/drafts", "entwürfe", "brouillons"),
    "trash": ("trash", "deleted items", "deleted messages", "bin", "[gmail]/trash", "papierkorb", "corbeille"),
    "junk": ("junk", "spam", "junk e-mail", "junk email", "bulk mail", "[gmail]/spam"),
    "archive": ("archive", "archives", "all mail", "[gmail]/all mail"),
}


def role_by_name(name: str) -> str | None:
    """The role a folder's name says it has ("Sent Items": sent), or None."""
    low = name.lower()
    return next((role for role, names in WELL_KNOWN.items() if low in names), None)
