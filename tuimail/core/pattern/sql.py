"""AST -> SQL over the store's messages columns (where/sure) and the residue; see __init__.py."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from tuimail.core.pattern.nodes import And, Date, Flag, Leaf, Not, Or, Pattern, Text
from tuimail.core.pattern.ranges import date_bounds


@dataclass(frozen=True)
class SqlPlan:
    """``where``: true for every match (residue read as "maybe"); ``sure``: true only for matches.
    Both are boolean expressions over the messages columns, never NULL, safe to AND with others;
    constants are folded: ``where == "1"`` means the columns do not narrow it at all, ``"0"``
    (or ``sure == "1"``) that they settle it for every row."""
    where: str
    params: tuple[object, ...]
    sure: str
    sure_params: tuple[object, ...]
    residue: tuple[Leaf, ...]  # the terms SQL could not answer, each once, in order

    @property
    def exact(self) -> bool:
        """The SQL answer is the answer: no residue and no superset (a case-insensitive term
        with a cased non-ASCII letter is wider in ``where``, SQLite's LIKE folding ASCII only)."""
        return not self.residue and (self.where, self.params) == (self.sure, self.sure_params)


_TEXT_COLS = {"f": ("from_",), "t": ("to_",), "c": ("cc",), "C": ("to_", "cc"), "s": ("subject",),
              "i": ("message_id",), "x": ("refs", "in_reply_to")}
_FLAG_SQL = {"N": "seen = 0", "U": "seen = 0", "R": "seen = 1", "F": "flagged = 1",
             "D": "deleted = 1", "Q": "answered = 1", "A": "1", "O": "0"}


def like_escape(text: str) -> str:
    """``text`` as a LIKE pattern matching itself (with ESCAPE '\\')."""
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _cased_nonascii(c: str) -> bool:
    return not c.isascii() and (c.lower() != c or c.upper() != c)


_Sql = tuple[str, list[object]]


def _sql_leaf(p: Leaf, now: datetime, col: Callable[[str], str]) -> tuple[_Sql, _Sql] | None:
    """(superset, subset) SQL of a term, or None when the columns cannot answer it."""
    if isinstance(p, Text):
        cols = _TEXT_COLS.get(p.op)
        if cols is None or "\0" in p.text:  # SQLite's LIKE/instr stop at a NUL
            return None
        if p.case_sensitive:
            sql = " OR ".join(f"instr(ifnull({col(c)}, ''), ?) > 0" for c in cols)
            exact: _Sql = (f"({sql})", [p.text] * len(cols))
            return exact, exact
        like = " OR ".join(f"ifnull({col(c)}, '') LIKE ? ESCAPE '\\'" for c in cols)
        low = "%" + like_escape(p.text) + "%"
        # SQLite's LIKE folds ASCII only: a cased non-ASCII letter becomes "_" in the superset
        wide = "%" + "".join("_" if _cased_nonascii(c) else like_escape(c) for c in p.text) + "%"
        return (f"({like})", [wide] * len(cols)), (f"({like})", [low] * len(cols))
    if isinstance(p, Flag):
        fsql = _FLAG_SQL.get(p.op)
        if fsql is None:
            return None
        if fsql not in ("0", "1"):
            fsql = col(fsql)
        return (fsql, []), (fsql, [])
    if isinstance(p, Date):
        if p.op != "d":
            return None
        lo, hi = date_bounds(p.spec, now)
        parts: list[str] = [f"{col('date')} IS NOT NULL"]
        params: list[object] = []
        if lo is not None:
            parts.append(f"{col('date')} >= ?")
            params.append(lo)
        if hi is not None:
            parts.append(f"{col('date')} <= ?")
            params.append(hi)
        e = ("(" + " AND ".join(parts) + ")", params)
        return e, e
    sparts: list[str] = []
    sparams: list[object] = []
    if p.lo is not None:
        sparts.append(f"{col('size')} >= ?")
        sparams.append(p.lo)
    if p.hi is not None:
        sparts.append(f"{col('size')} <= ?")
        sparams.append(p.hi)
    se = ("(" + " AND ".join(sparts) + ")", sparams)
    return se, se


def _closes_at_end(sql: str) -> bool:
    """Whether the "(" opening ``sql`` is closed by its last character (quotes hold no user text,
    only '' and '\\', which contain no parenthesis)."""
    depth = 0
    for i, c in enumerate(sql):
        depth += (c == "(") - (c == ")")
        if depth == 0:
            return i == len(sql) - 1
    return False


def to_sql(p: Pattern, *, now: datetime | None = None, table: str = "") -> SqlPlan:
    """The part of ``p`` the v6 ``messages`` columns answer, and the residue (see the module doc).
    ``table``: a prefix for the columns ("m" gives m.from_ ...)."""
    now = now or datetime.now()
    residue: list[Leaf] = []

    def col(expr: str) -> str:
        if not table:
            return expr
        name, _, rest = expr.partition(" ")
        return f"{table}.{name}" + (f" {rest}" if rest else "")

    def neg(e: _Sql) -> _Sql:
        if e[0] in ("0", "1"):
            return ("1" if e[0] == "0" else "0"), []
        if e[0].startswith("(NOT ") and _closes_at_end(e[0]):  # never NULL: NOT NOT x is x
            return e[0][5:-1], e[1]
        return f"(NOT {e[0]})", e[1]

    def join(es: list[_Sql], conj: bool) -> _Sql:
        absorb, unit = ("0", "1") if conj else ("1", "0")
        if any(e[0] == absorb for e in es):
            return absorb, []
        es = [e for e in es if e[0] != unit]
        if len(es) <= 1:
            return es[0] if es else (unit, [])
        return ("(" + (" AND " if conj else " OR ").join(e[0] for e in es) + ")",
                [a for e in es for a in e[1]])

    def comp(q: Pattern) -> tuple[_Sql, _Sql]:
        if isinstance(q, Not):
            up, low = comp(q.item)
            return neg(low), neg(up)
        if isinstance(q, (And, Or)):
            parts = [comp(x) for x in q.items]
            conj = isinstance(q, And)
            return join([u for u, _ in parts], conj), join([lw for _, lw in parts], conj)
        r = _sql_leaf(q, now, col)
        if r is None:
            if q not in residue:
                residue.append(q)
            return ("1", []), ("0", [])
        return r

    (w, wp), (s, sp) = comp(p)
    return SqlPlan(w, tuple(wp), s, tuple(sp), tuple(residue))
