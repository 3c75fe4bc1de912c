"""The date and size arguments: their grammar (RANGE, SIZE) and a date's bounds in epoch seconds."""

from __future__ import annotations

import calendar
import re
from datetime import UTC, date, datetime, time, timedelta

from tuimail.core.pattern.nodes import DateRange, DateRel, PatternError, Size


_DAY = r"(?:\d{4}-\d{1,2}-\d{1,2}|\d{8}|\d{1,2}(?:/\d{1,2}(?:/(?:\d{4}|\d{2}))?)?)"
_RANGE_RE = re.compile(rf"({_DAY})?(-)?({_DAY})?")
_REL_RE = re.compile(r"([<>=])(\d{1,6})([ymwdHMS])")


def _parse_day(t: str, pos: int, today: date) -> date:
    try:
        if "-" in t:
            y, m, d = (int(x) for x in t.split("-"))
        elif len(t) == 8 and "/" not in t:
            y, m, d = int(t[:4]), int(t[4:6]), int(t[6:])
        else:
            parts = [int(x) for x in t.split("/")]
            d = parts[0]
            m = parts[1] if len(parts) > 1 else today.month
            y = today.year
            if len(parts) > 2:
                y = parts[2]
                if len(t.split("/")[2]) == 2:
                    y += 2000 if y < 70 else 1900
        return date(y, m, d)
    except ValueError:
        raise PatternError(f"no such date {t}", pos) from None


def _parse_date(arg: str, pos: int, today: date) -> DateRange | DateRel:
    m = _REL_RE.fullmatch(arg)
    if m:
        return DateRel(m.group(1), int(m.group(2)), m.group(3))
    m = _RANGE_RE.fullmatch(arg)
    if not m or not (m.group(1) or m.group(3)) or (m.group(3) and not m.group(2)):
        raise PatternError(f"bad date {arg} (try 2024-01-31, 31/01/2024, A-B, <2w, >1m)", pos)
    a = _parse_day(m.group(1), pos, today) if m.group(1) else None
    b = _parse_day(m.group(3), pos + m.start(3), today) if m.group(3) else None
    if not m.group(2):
        b = a
    if a is not None and b is not None and a > b:
        a, b = b, a
    return DateRange(a, b)


_SIZE_RE = re.compile(r"(?:([<>])(\d+)([kKmM]?)|(\d+)?([kKmM]?)(-)?(?:(\d+)([kKmM]?))?)")
_MULT = {"": 1, "k": 1024, "m": 1048576}
_MAX_SIZE = 2**53  # SQLite integers are 64-bit; nothing is larger than this anyway


def _parse_size(arg: str, pos: int) -> Size:
    m = _SIZE_RE.fullmatch(arg)
    bad = PatternError(f"bad size {arg} (try 10K, >1M, <500K, 10K-1M)", pos)
    if not m:
        raise bad
    if m.group(1):
        n = int(m.group(2)) * _MULT[m.group(3).lower()]
        if n > _MAX_SIZE:
            raise PatternError(f"size {arg} is too large", pos)
        if m.group(1) == ">":
            return Size(n + 1, None)
        if n == 0:
            raise PatternError("no size is below 0", pos)
        return Size(None, n - 1)
    if m.group(4) is None and m.group(5):
        raise bad
    lo = int(m.group(4)) * _MULT[m.group(5).lower()] if m.group(4) is not None else None
    hi = int(m.group(7)) * _MULT[m.group(8).lower()] if m.group(7) is not None else None
    if lo is None and hi is None:
        raise bad
    if not m.group(6):
        if hi is not None or (lo or 0) > _MAX_SIZE:
            raise bad if hi is not None else PatternError(f"size {arg} is too large", pos)
        return Size(lo, lo)
    if lo is not None and hi is not None and lo > hi:
        lo, hi = hi, lo
    if max(lo or 0, hi or 0) > _MAX_SIZE:
        raise PatternError(f"size {arg} is too large", pos)
    return Size(lo, hi)


def _sub_months(d: date, months: int) -> date:
    y, m = divmod(d.year * 12 + d.month - 1 - months, 12)
    y = max(1, y)
    return date(y, m + 1, min(d.day, calendar.monthrange(y, m + 1)[1]))


def date_bounds(spec: DateRange | DateRel, now: datetime) -> tuple[int | None, int | None]:
    """Inclusive epoch-second bounds of a date spec (None: open). Days are now's: an aware ``now``
    fixes the zone; a naive one means the system's local zone, DST rules included."""
    tz = now.tzinfo

    def start_of(d: date) -> int:
        if tz is None:
            try:
                return int(datetime.combine(d, time()).timestamp())
            except (OverflowError, OSError, ValueError):  # year 1 or 9999 on some libcs
                pass
        return int(datetime.combine(d, time(), tz or UTC).timestamp())

    def end_of(d: date) -> int:
        return start_of(d + timedelta(days=1)) - 1 if d < date.max else start_of(d) + 86399

    if isinstance(spec, DateRange):
        lo = start_of(spec.start) if spec.start else None
        hi = end_of(spec.end) if spec.end else None
        return lo, hi
    if spec.unit in "HMS":
        sec = spec.n * {"H": 3600, "M": 60, "S": 1}[spec.unit]
        t = int(now.timestamp()) - sec
        if spec.cmp == "<":
            return t, None
        if spec.cmp == ">":
            return None, t
        when = datetime.fromtimestamp(t, tz) if tz else datetime.fromtimestamp(t)
        return start_of(when.date()), t  # neomutt: from that day's start to the instant
    today = now.date()
    try:
        if spec.unit in "ym":
            day = _sub_months(today, spec.n * (12 if spec.unit == "y" else 1))
        else:
            day = today - timedelta(days=spec.n * (7 if spec.unit == "w" else 1))
    except (OverflowError, ValueError):
        day = date.min
    end = end_of(day)  # that day 23:59:59, as neomutt
    if spec.cmp == "<":
        return end + 1, None  # after that day: <1d is today
    if spec.cmp == ">":
        return None, end
    return start_of(day), end
