"""Start-up timeline for profiling: TUIMAIL_TRACE=FILE appends "<unix time> <event>" lines.

Costs one environment lookup when unset. Used by the benchmark to see where a first screen's
time goes (imports, connect, first window, first paint)."""

from __future__ import annotations

import os
import threading
import time

_PATH = os.environ.get("TUIMAIL_TRACE")
_lock = threading.Lock()


def trace(event: str) -> None:
    if not _PATH:
        return
    with _lock, open(_PATH, "a", encoding="utf-8") as fh:
        fh.write(f"{time.time():.4f} {threading.current_thread().name} {event}\n")
