"""Local SQLite store: the single source of truth for the UI. Knows nothing above it."""

from .bodycache import BodyCache
from .store import ROLES, SORTS, FolderInfo, JournalEntry, MessageRow, Store, norm_flags

__all__ = ["BodyCache", "FolderInfo", "JournalEntry", "MessageRow", "ROLES", "SORTS", "Store", "norm_flags"]
