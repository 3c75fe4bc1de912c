"""Canonical flag names: what every layer above the backends speaks (no I/O).

A backend maps its own spelling to these in one place (IMAP: tuimail/backends/imap/flags.py maps
its system flags to these names). Anything else a message carries is a keyword, kept as the backend spells it.
"""

from __future__ import annotations

SEEN, FLAGGED, ANSWERED, DRAFT, DELETED = "seen", "flagged", "answered", "draft", "deleted"
CANONICAL = (SEEN, FLAGGED, ANSWERED, DRAFT, DELETED)
