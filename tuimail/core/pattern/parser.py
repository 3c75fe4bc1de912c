"""Text -> AST: the recursive-descent parser of mutt-style patterns; see __init__.py."""

from __future__ import annotations

from datetime import date

from tuimail.core.pattern.nodes import (DATE_OPS, FLAG_OPS, SIZE_OPS, TEXT_OPS, And, Date, Flag, Not, Or, Pattern,
                                         PatternError, Text)
from tuimail.core.pattern.ranges import _parse_date, _parse_size


_STOP = "()|"
MAX_TERMS = 200  # terms in one pattern (a word counts two): SQLite's expression depth is 1000
MAX_DEPTH = 20  # ( and ! nesting; SQLite 3.40's parser overflows near 30 nested parentheses


class _Parser:
    def __init__(self, src: str, today: date):
        self.s = src
        self.i = 0
        self.today = today
        self.depth = 0
        self.terms = 0

    def ws(self) -> None:
        while self.i < len(self.s) and self.s[self.i].isspace():
            self.i += 1

    def peek(self) -> str:
        self.ws()
        return self.s[self.i] if self.i < len(self.s) else ""

    def parse(self) -> Pattern:
        if not self.peek():
            raise PatternError("empty pattern", self.i)
        p = self.or_expr()
        if self.peek():
            raise PatternError(f"unexpected {self.s[self.i]}", self.i)
        return p

    def or_expr(self) -> Pattern:
        items = [self.and_expr()]
        while self.peek() == "|":
            bar = self.i
            self.i += 1
            if self.peek() in ("", ")", "|"):
                raise PatternError("missing pattern after |", bar)
            items.append(self.and_expr())
        return _mk(Or, items)

    def and_expr(self) -> Pattern:
        ch = self.peek()
        if ch == ")":
            raise PatternError("unexpected )", self.i)
        if ch in ("", "|"):
            raise PatternError(f"missing pattern before {ch or 'the end'}", self.i)
        items = [self.unary()]
        while self.peek() not in ("", ")", "|"):
            items.append(self.unary())
        return _mk(And, items)

    def unary(self) -> Pattern:
        ch = self.peek()
        start = self.i
        if ch in "!(" and self.depth >= MAX_DEPTH:
            raise PatternError(f"nested more than {MAX_DEPTH} deep", start)
        if ch == "!":
            self.i += 1
            if self.peek() in ("", ")", "|"):
                raise PatternError("missing pattern after !", start)
            self.depth += 1
            inner = self.unary()
            self.depth -= 1
            return Not(inner)
        if ch == "(":
            self.i += 1
            if self.peek() == ")":
                raise PatternError("empty ( )", start)
            self.depth += 1
            p = self.or_expr()
            self.depth -= 1
            if self.peek() != ")":
                raise PatternError("missing ) for this (", start)
            self.i += 1
            return p
        self.terms += 1 if ch == "~" else 2
        if self.terms > MAX_TERMS:
            raise PatternError(f"more than {MAX_TERMS} terms", start)
        if ch == "~":
            return self.term()
        word, _ = self.string()
        return Or((Text("f", word), Text("s", word)))

    def term(self) -> Pattern:
        start = self.i
        self.i += 1
        if self.i >= len(self.s) or self.s[self.i].isspace():
            raise PatternError("missing operator after ~", start)
        op = self.s[self.i]
        self.i += 1
        if op in FLAG_OPS:
            return Flag(op)
        if op not in TEXT_OPS + DATE_OPS + SIZE_OPS:
            raise PatternError(f"unknown operator ~{op}", start)
        if self.peek() in ("", ")", "|", "("):
            raise PatternError(f"~{op} needs an argument", start)
        arg, apos = self.string()
        if op in TEXT_OPS:
            return Text(op, arg)
        if op in DATE_OPS:
            return Date(op, _parse_date(arg, apos, self.today))
        return _parse_size(arg, apos)

    def string(self) -> tuple[str, int]:
        """A word or a quoted string at the cursor (after whitespace): (text, position)."""
        self.ws()
        s, start = self.s, self.i
        out: list[str] = []
        q = s[start] if start < len(s) and s[start] in "\"'" else ""
        i = start + 1 if q else start
        while True:
            if i >= len(s):
                if q:
                    raise PatternError(f"missing closing {q}", start)
                break
            c = s[i]
            if c == "\\":
                if i + 1 >= len(s):
                    raise PatternError("\\ at the end of the pattern", i)
                out.append(s[i + 1])
                i += 2
                continue
            if q and c == q:
                i += 1
                break
            if not q and (c.isspace() or c in _STOP):
                break
            out.append(c)
            i += 1
        self.i = i
        text = "".join(out)
        if not text:
            raise PatternError("empty string", start)
        return text, start


def _mk(cls: type[And] | type[Or], items: list[Pattern]) -> Pattern:
    if len(items) == 1:
        return items[0]
    flat: list[Pattern] = []
    for p in items:
        flat.extend(p.items if isinstance(p, cls) else (p,))
    return cls(tuple(flat))

def parse(text: str, *, today: date | None = None) -> Pattern:
    """The AST of a pattern; PatternError if it is malformed. ``today`` fills a date's missing
    month or year (default: the local date)."""
    return _Parser(text, today or date.today()).parse()
