"""AST -> canonical text: parse(format(p)) == p."""

from __future__ import annotations


from tuimail.core.pattern.nodes import And, Date, DateRange, DateRel, Flag, Not, Or, Pattern, Size, Text


def _quote(text: str) -> str:
    if text and not any(c.isspace() or c in "()|\"'\\" for c in text) and text[0] not in "~!":
        return text
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _fmt_size(s: Size) -> str:
    if s.lo is not None and s.hi is not None:
        return str(s.lo) if s.lo == s.hi else f"{s.lo}-{s.hi}"
    if s.lo is not None:
        return f">{s.lo - 1}" if s.lo > 0 else "0-"
    assert s.hi is not None
    return f"<{s.hi + 1}" if s.hi >= 0 else f"-{s.hi}"


def _fmt_date(spec: DateRange | DateRel) -> str:
    if isinstance(spec, DateRel):
        return f"{spec.cmp}{spec.n}{spec.unit}"
    a = spec.start.isoformat() if spec.start else ""
    b = spec.end.isoformat() if spec.end else ""
    return a if spec.start == spec.end else f"{a}-{b}"


def format(p: Pattern) -> str:
    """The canonical text of a pattern: parse(format(p)) == p."""
    if isinstance(p, Text):
        return f"~{p.op} {_quote(p.text)}"
    if isinstance(p, Flag):
        return f"~{p.op}"
    if isinstance(p, Date):
        return f"~{p.op} {_fmt_date(p.spec)}"
    if isinstance(p, Size):
        return f"~z {_fmt_size(p)}"
    if isinstance(p, Not):
        inner = format(p.item)
        return f"!({inner})" if isinstance(p.item, (And, Or)) else f"!{inner}"
    if isinstance(p, And):
        return " ".join(f"({format(x)})" if isinstance(x, Or) else format(x) for x in p.items)
    return " | ".join(format(x) for x in p.items)
