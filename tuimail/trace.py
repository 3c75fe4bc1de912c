"""Start-up timeline for profiling: TUIMAIL_TRACE=FILE appends "<unix time> <event>" lines.

Costs one environment lookup when unset. Used by the benchmark to see where a first screen's
time goes (imports, connect, first window, first paint). The file is created 0600 (it names
folders and timings of the user's mail), whatever the umask, and never through a symlink."""

from __future__ import annotations

import os
import threading
import time

_PATH = os.environ.get("TUIMAIL_TRACE")
_lock = threading.Lock()


def trace(event: str) -> None:
    if not _PATH:
        return
    with _lock:
        try:
            fd = os.open(_PATH, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_NOFOLLOW, 0o600)
        except OSError:
            return  # a trace must never break the program
        with open(fd, "a", encoding="utf-8") as fh:
            fh.write(f"{time.time():.4f} {threading.current_thread().name} {event}\n")
