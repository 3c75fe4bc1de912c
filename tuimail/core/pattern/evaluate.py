"""The evaluator: matches(pattern, MessageView) with three values (True, False, None: unknown)."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from tuimail.core.pattern.nodes import _FIELD_RE, And, Date, Flag, Leaf, Not, Or, Pattern, Text
from tuimail.core.pattern.ranges import date_bounds


def _fold(s: str) -> str:
    if s.isascii():
        return s.lower()
    out = []
    for c in s:
        low = c.lower()
        out.append(low if len(low) == 1 and low.isascii() == c.isascii() else c)
    return "".join(out)


def _contains(hay: str | None, needle: str) -> bool:
    if not hay:
        return False
    if any(c.isupper() for c in needle):
        return needle in hay
    return _fold(needle) in _fold(hay)


class MessageView(Protocol):
    """What the evaluator reads. Headers are decoded text; None means "not known here"."""

    @property
    def from_(self) -> str: ...
    @property
    def to(self) -> str: ...
    @property
    def cc(self) -> str: ...
    @property
    def subject(self) -> str: ...
    @property
    def date(self) -> int | None: ...  # epoch seconds (Date:)
    @property
    def received(self) -> int | None: ...  # epoch seconds (INTERNALDATE); None: use date
    @property
    def size(self) -> int: ...
    @property
    def flags(self) -> frozenset[str]: ...  # canonical: seen flagged answered draft deleted
    @property
    def tagged(self) -> bool | None: ...
    @property
    def message_id(self) -> str | None: ...
    @property
    def in_reply_to(self) -> str | None: ...
    @property
    def refs(self) -> str: ...
    @property
    def headers(self) -> str | None: ...  # the header block (decoded), None if not cached
    @property
    def body(self) -> str | None: ...  # the body text, None if not cached
    @property
    def lists(self) -> tuple[str, ...] | None: ...  # List-Id / List-Post values; None: unknown


@dataclass(frozen=True)
class Message:
    """A plain MessageView (tests, and callers building one from a store row)."""
    from_: str = ""
    to: str = ""
    cc: str = ""
    subject: str = ""
    date: int | None = None
    received: int | None = None
    size: int = 0
    flags: frozenset[str] = frozenset()
    tagged: bool | None = False
    message_id: str | None = None
    in_reply_to: str | None = None
    refs: str = ""
    headers: str | None = None
    body: str | None = None
    lists: tuple[str, ...] | None = None


Truth = bool | None
Resolver = Callable[[Leaf, MessageView], Truth]


def _header_lines(block: str) -> list[str]:
    return re.sub(r"\r?\n[ \t]+", " ", block).splitlines()


def _eval_leaf(p: Leaf, m: MessageView, now: datetime) -> Truth:
    if isinstance(p, Text):
        op, t = p.op, p.text
        if op == "f":
            return _contains(m.from_, t)
        if op == "t":
            return _contains(m.to, t)
        if op == "c":
            return _contains(m.cc, t)
        if op == "C":
            return _contains(m.to, t) or _contains(m.cc, t)
        if op == "s":
            return _contains(m.subject, t)
        if op == "i":
            return _contains(m.message_id, t)
        if op == "x":
            return _contains(m.refs, t) or _contains(m.in_reply_to, t)
        if op == "b":
            return None if m.body is None else _contains(m.body, t)
        if op == "h":
            return None if m.headers is None else _header_match(m.headers, t)
        # B: headers or body
        if _contains(m.body, t) or (m.headers is not None and _contains(m.headers, t)):
            return True
        return None if m.body is None or m.headers is None else False
    if isinstance(p, Flag):
        op, fl = p.op, m.flags
        if op in "NU":
            return "seen" not in fl
        if op == "R":
            return "seen" in fl
        if op == "F":
            return "flagged" in fl
        if op == "D":
            return "deleted" in fl
        if op == "Q":
            return "answered" in fl
        if op == "A":
            return True
        if op == "O":
            return False
        if op == "T":
            return m.tagged
        return None if m.lists is None else bool(m.lists)
    if isinstance(p, Date):
        when = m.date if p.op == "d" else (m.received if m.received is not None else m.date)
        if when is None:
            return False
        lo, hi = date_bounds(p.spec, now)
        return (lo is None or when >= lo) and (hi is None or when <= hi)
    return (p.lo is None or m.size >= p.lo) and (p.hi is None or m.size <= p.hi)


def _header_match(block: str, needle: str) -> bool:
    lines = _header_lines(block)
    f = _FIELD_RE.fullmatch(needle)
    if f:
        name, value = f.group(1).lower(), f.group(2)
        for line in lines:
            k, sep, v = line.partition(":")
            if sep and k.strip().lower() == name and (not value or _contains(v, value)):
                return True
        return False
    return any(_contains(line, needle) for line in lines)


def matches(p: Pattern, msg: MessageView, *, now: datetime | None = None,
            resolve: Resolver | None = None) -> Truth:
    """True, False, or None when a term cannot be decided from ``msg`` (body/headers not cached,
    ~T/~l unknown) and ``resolve`` (if given) cannot either. None is falsy: ``if matches(...)``
    treats unknown as no match."""
    now = now or datetime.now()

    def ev(q: Pattern) -> Truth:
        if isinstance(q, Not):
            v = ev(q.item)
            return None if v is None else not v
        if isinstance(q, And):
            unknown = False
            for x in q.items:
                v = ev(x)
                if v is False:
                    return False
                unknown |= v is None
            return None if unknown else True
        if isinstance(q, Or):
            unknown = False
            for x in q.items:
                v = ev(x)
                if v is True:
                    return True
                unknown |= v is None
            return None if unknown else False
        v = _eval_leaf(q, msg, now)
        if v is None and resolve is not None:
            v = resolve(q, msg)
        return v

    return ev(p)
