"""The pattern AST (frozen dataclasses), the operator letters and PatternError; see __init__.py."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date


TEXT_OPS = "ftcCsbBhix"
_FIELD_RE = re.compile(r"([!-9;-~]+):[ \t]*(.*)", re.S)  # ~h "Name: value"
FLAG_OPS = "NOURFDQTAl"
DATE_OPS = "dr"
SIZE_OPS = "z"


class PatternError(ValueError):
    """A malformed pattern; ``position`` is the 0-based offset of the bad token."""

    def __init__(self, message: str, position: int):
        super().__init__(message, position)
        self.message = message
        self.position = position

    def __str__(self) -> str:
        return f"pattern: {self.message} at column {self.position + 1}"


@dataclass(frozen=True)
class Text:
    op: str  # one of TEXT_OPS
    text: str

    @property
    def case_sensitive(self) -> bool:
        """mutt's rule: an uppercase letter makes it case-sensitive (for ``~h "Name: value"``,
        one in the value: field names are case-insensitive)."""
        text = self.text
        if self.op == "h":
            f = _FIELD_RE.fullmatch(text)
            if f:
                text = f.group(2)
        return any(c.isupper() for c in text)


@dataclass(frozen=True)
class Flag:
    op: str  # one of FLAG_OPS


@dataclass(frozen=True)
class DateRange:
    start: date | None  # inclusive days; at least one is set
    end: date | None


@dataclass(frozen=True)
class DateRel:
    cmp: str  # "<" newer than, ">" older than, "=" on that day
    n: int
    unit: str  # y m w d H M S


@dataclass(frozen=True)
class Date:
    op: str  # "d" sent, "r" received
    spec: DateRange | DateRel


@dataclass(frozen=True)
class Size:
    lo: int | None  # inclusive bytes; at least one is set
    hi: int | None


@dataclass(frozen=True)
class Not:
    item: Pattern


@dataclass(frozen=True)
class And:
    items: tuple[Pattern, ...]  # two or more, none an And


@dataclass(frozen=True)
class Or:
    items: tuple[Pattern, ...]  # two or more, none an Or


Pattern = Text | Flag | Date | Size | Not | And | Or
Leaf = Text | Flag | Date | Size

def leaves(p: Pattern) -> Iterator[Leaf]:
    """The terms of a pattern, left to right."""
    if isinstance(p, Not):
        yield from leaves(p.item)
    elif isinstance(p, (And, Or)):
        for x in p.items:
            yield from leaves(x)
    else:
        yield p
