"""Compact IMAP sequence sets ("1:500,502,510:900") and their parsing.

imapclient 4.1 sends a list of UIDs uncompressed, so 20k UIDs exceed Dovecot's 64 KB line limit.
Every command we build goes through `compact`/`chunked`, and every command line stays <= 8 KB.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable, Iterator, Sequence

MAX_SET_LEN = 7000  # leaves room for the rest of an 8 KB command line


def ranges(uids: Iterable[int]) -> list[tuple[int, int]]:
    """Sorted, merged (lo, hi) runs of the given positive integers."""
    out: list[tuple[int, int]] = []
    for u in sorted(set(uids)):
        if u <= 0:
            raise ValueError(f"invalid uid {u}")
        if out and u == out[-1][1] + 1:
            out[-1] = (out[-1][0], u)
        else:
            out.append((u, u))
    return out


def _fmt(lo: int, hi: int) -> str:
    return str(lo) if lo == hi else f"{lo}:{hi}"


def format_runs(runs: Iterable[tuple[int, int]]) -> str:
    """The set string of sorted, merged (lo, hi) runs."""
    return ",".join(_fmt(lo, hi) for lo, hi in runs)


def in_runs(runs: Sequence[tuple[int, int]], u: int) -> bool:
    """u lies inside one of the sorted, disjoint (lo, hi) runs (a binary search)."""
    i = bisect.bisect_right(runs, u, key=_lo) - 1
    return i >= 0 and u <= runs[i][1]


def _lo(run: tuple[int, int]) -> int:
    return run[0]


def compact(uids: Iterable[int]) -> str:
    """The shortest set string for these uids (no '*')."""
    s = format_runs(ranges(uids))
    if not s:
        raise ValueError("empty uid set")
    return s


def chunked(uids: Iterable[int], max_len: int = MAX_SET_LEN, reverse: bool = False) -> Iterator[str]:
    """Split into set strings of at most max_len characters each (highest uids first if reverse)."""
    runs = ranges(uids)
    if reverse:
        runs.reverse()
    buf: list[str] = []
    size = 0
    for lo, hi in runs:
        piece = _fmt(lo, hi)
        if buf and size + 1 + len(piece) > max_len:
            yield ",".join(buf)
            buf, size = [], 0
        buf.append(piece)
        size += len(piece) + (1 if size else 0)
    if buf:
        yield ",".join(buf)


def windows(uids: Iterable[int], first: int, size: int, max_len: int = MAX_SET_LEN) -> Iterator[list[int]]:
    """Newest first: the highest `first` uids, then batches of `size` going down."""
    ordered = sorted(set(uids), reverse=True)
    i, n = 0, first
    while i < len(ordered):
        yield ordered[i:i + n]
        i += n
        n = size


def parse(s: str | bytes, star: int | None = None, limit: int = 10_000_000) -> list[int]:
    """Parse a sequence set. '*' needs `star` (the largest value). Refuses absurd expansions."""
    out: list[int] = []
    for lo, hi in _runs(s, star):
        if hi - lo + 1 + len(out) > limit:
            raise ValueError("sequence set too large")
        out.extend(range(lo, hi + 1))
    return out


def _runs(s: str | bytes, star: int | None) -> Iterator[tuple[int, int]]:
    """The (lo, hi) runs of a set string, in the order given ('*' is `star`)."""
    if isinstance(s, bytes):
        s = s.decode("ascii", "replace")
    for part in s.strip().split(","):
        if not part:
            continue
        if ":" in part:
            a, b = part.split(":", 1)
            lo, hi = _num(a, star), _num(b, star)
            yield (lo, hi) if lo <= hi else (hi, lo)
        else:
            u = _num(part, star)
            yield u, u


def _num(tok: str, star: int | None) -> int:
    tok = tok.strip()
    if tok == "*":
        if star is None:
            raise ValueError("'*' in a set without a known maximum")
        return star
    if not tok.isdigit() or len(tok) > 19 or int(tok) >= 1 << 63:
        raise ValueError(f"bad number in sequence set: {tok[:20]!r}")
    return int(tok)


# ---------------------------------------------------------------------------- runs from a server

def iter_runs(s: str | bytes) -> Iterator[tuple[int, int]]:
    """The (lo, hi) runs of a set string, in the order given, without expanding them ('*' refused).

    A server's set (VANISHED, MODIFIED, COPYUID) can name millions of uids in a few bytes
    ("1:9999999"): kept as runs, it costs what it weighs on the wire."""
    return _runs(s, None)


def merge(runs: Iterable[tuple[int, int]]) -> list[tuple[int, int]]:
    """Sorted, disjoint runs covering the same uids (adjacent runs joined)."""
    out: list[tuple[int, int]] = []
    for lo, hi in sorted(runs):
        if out and lo <= out[-1][1] + 1:
            if hi > out[-1][1]:
                out[-1] = (out[-1][0], hi)
        else:
            out.append((lo, hi))
    return out


def clip(run: tuple[int, int], known: Sequence[tuple[int, int]]) -> Iterator[tuple[int, int]]:
    """The parts of `run` inside the sorted, disjoint `known` runs (a binary search, then a walk)."""
    lo, hi = run
    i = max(0, bisect.bisect_right(known, lo, key=_lo) - 1)
    while i < len(known) and known[i][0] <= hi:
        a, b = max(lo, known[i][0]), min(hi, known[i][1])
        if a <= b:
            yield a, b
        i += 1


def intersect(runs: Iterable[tuple[int, int]], known: Sequence[tuple[int, int]]) -> list[tuple[int, int]]:
    """The uids of `runs` that lie in the sorted, disjoint `known` runs, as merged runs."""
    return merge(piece for run in runs for piece in clip(run, known))


def count(runs: Iterable[tuple[int, int]]) -> int:
    return sum(hi - lo + 1 for lo, hi in runs)


def expand(runs: Iterable[tuple[int, int]]) -> list[int]:
    """Every uid of the runs (only for runs already bounded, e.g. intersected with the store's)."""
    return [u for lo, hi in runs for u in range(lo, hi + 1)]
