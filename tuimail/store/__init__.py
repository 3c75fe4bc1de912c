"""Local SQLite store: the single source of truth for the UI. Knows nothing above it."""

from tuimail.store.store import ROLES, SORTS, FolderInfo, JournalEntry, MessageRow, Store, norm_flags

__all__ = ["BodyCache", "FolderInfo", "JournalEntry", "MessageRow", "ROLES", "SORTS", "Store", "norm_flags"]


def __getattr__(name: str):
    # The body cache is for the reader and the sync worker: the UI's first screen does not load it.
    if name == "BodyCache":
        from tuimail.store.bodycache import BodyCache

        return BodyCache
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
