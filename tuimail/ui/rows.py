"""How one header row is laid out: columns sized to the width, compact dates, sizes, sender names."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import datetime, tzinfo
from functools import cached_property, partial

from tuimail.mail.addresses import sender_name  # noqa: F401  (the header list takes it from here)
from tuimail.mail.sanitize import sanitize_line
from tuimail.mail.present import format_bytes

format_size = partial(format_bytes, compact=True)  # the list's size column


class DateFormatter:
    """Compact dates relative to a clock (injectable, so snapshots are stable)."""

    def __init__(self, clock: Callable[[], float] = time.time, tz: tzinfo | None = None, fmt: str | None = None):
        self.clock, self.tz, self.fmt = clock, tz, fmt

    @cached_property
    def width(self) -> int:
        """Cells the full format needs (the compact one needs COMPACT): the longest of a sample of
        dates (every month and weekday, two-digit days and hours), so no day is cut off."""
        if self.fmt:
            samples = (datetime(2024, m, d, 23, 59, 59).strftime(self.fmt) for m in range(1, 13) for d in range(22, 29))
            return max(1, min(30, max(len(sanitize_line(s)) for s in samples)))
        return 10

    def __call__(self, ts: int | None, compact: bool = False) -> str:
        if ts is None:
            return ""
        try:
            d = datetime.fromtimestamp(ts, self.tz or None)
        except (OverflowError, OSError, ValueError):
            return "?"
        if self.fmt:
            return sanitize_line(d.strftime(self.fmt))
        now = datetime.fromtimestamp(self.clock(), self.tz or None)
        if d.date() == now.date():
            return d.strftime("%H:%M")
        if 0 <= (now - d).days < 180:
            return d.strftime("%b %d")
        return d.strftime("%y-%m-%d" if compact else "%Y-%m-%d")  # compact: still the day (11.7)


COMPACT = 8  # cells of a compact date: "14:05", "Mar 05" or "23-03-05"


def columns(width: int, date: int = 10) -> tuple[int, int, int, int, int]:
    """(flags, date, from, subject, size) widths for a line of `width` cells (1-cell gaps)."""
    flags = 3
    size = 5 if width >= 70 else 0
    rest = width - flags - date - 2 - (size + 1 if size else 0)
    frm = max(8, min(28, rest * 3 // 10))
    subject = max(0, rest - frm - 1)
    return flags, date, frm, subject, size


