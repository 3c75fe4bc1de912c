"""AST -> IMAP UID SEARCH keys (a superset of the matches); see __init__.py."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

from tuimail.core.pattern.nodes import _FIELD_RE, And, Date, Flag, Leaf, Not, Or, Pattern, Text
from tuimail.core.pattern.ranges import date_bounds


@dataclass(frozen=True)
class SearchString:
    """A string argument from the user: the IMAP layer sends it quoted, or as a literal when
    ``needs_literal`` (CR, LF, a quote, a backslash, non-ASCII: never inline)."""
    text: str

    @property
    def needs_literal(self) -> bool:
        return not self.text.isascii() or any(c in self.text for c in "\r\n\"\\")


Token = str | SearchString
_Keys = list[Token] | bool  # True: every message, False: none

_IMAP_TEXT = {"f": "FROM", "t": "TO", "c": "CC", "s": "SUBJECT", "b": "BODY", "B": "TEXT"}
_IMAP_FLAG = {"N": "UNSEEN", "U": "UNSEEN", "R": "SEEN", "F": "FLAGGED", "D": "DELETED",
              "Q": "ANSWERED"}
_TZ_EAST, _TZ_WEST = 14 * 3600, 12 * 3600  # the widest offsets a Date: header carries


def _imap_day(d: date) -> str:
    return f"{d.day}-{_MONTHS[d.month - 1]}-{d.year}"


_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


def _utc_day(t: int) -> date:
    return datetime.fromtimestamp(t, UTC).date()


def _key(tokens: list[Token]) -> list[Token]:
    """Several search keys as one (a parenthesised list is their AND)."""
    return tokens if len(tokens) <= 2 or tokens[0] in ("HEADER", "OR", "NOT", "(") else [
        "(", *tokens, ")"]


def _or(keys: list[_Keys]) -> _Keys:
    if any(k is True for k in keys):
        return True
    lists = [k for k in keys if isinstance(k, list)]
    if not lists:
        return False
    out = lists[-1]
    for k in reversed(lists[:-1]):
        out = ["OR", *k, *out]
    return out


def _and(keys: list[_Keys]) -> _Keys:
    if any(k is False for k in keys):
        return False
    lists = [k for k in keys if isinstance(k, list)]
    if not lists:
        return True
    if len(lists) == 1:
        return lists[0]
    return ["(", *[t for k in lists for t in k], ")"]


def _imap_leaf(p: Leaf, upper: bool, now: datetime) -> _Keys:
    if isinstance(p, Text):
        if "\0" in p.text:  # cannot be sent at all
            return upper
        s = SearchString(p.text)
        if p.op in _IMAP_TEXT:
            k: _Keys = [_IMAP_TEXT[p.op], s]
        elif p.op == "C":
            k = ["OR", "TO", s, "CC", s]
        elif p.op == "i":
            k = ["HEADER", "Message-ID", s]
        elif p.op == "x":
            k = ["OR", "HEADER", "References", s, "HEADER", "In-Reply-To", s]
        else:  # h
            f = _FIELD_RE.fullmatch(p.text)
            if f:
                k = ["HEADER", SearchString(f.group(1)), SearchString(f.group(2))]
            else:  # a word in any header line: TEXT holds the headers too, a superset
                return ["TEXT", s] if upper else False
        # IMAP is case-insensitive: a case-sensitive term's answer is only a superset
        return k if upper or not p.case_sensitive else False
    if isinstance(p, Flag):
        if p.op in _IMAP_FLAG:
            return [_IMAP_FLAG[p.op]]
        if p.op == "A":
            return True
        if p.op == "O":
            return False
        if p.op == "l":
            return ["OR", "HEADER", "List-Id", SearchString(""), "HEADER", "List-Post",
                    SearchString("")]
        return upper  # ~T: the server knows no tags
    if isinstance(p, Date):
        lo, hi = date_bounds(p.spec, now)
        since, before = ("SENTSINCE", "SENTBEFORE") if p.op == "d" else ("SINCE", "BEFORE")
        # the server compares the day in the message's own zone, offsets -12h..+14h
        d1 = d2 = None
        if upper:
            if lo is not None:
                d1 = _utc_day(lo - _TZ_WEST)
            if hi is not None:
                d2 = _utc_day(hi + _TZ_EAST) + timedelta(days=1)
        else:
            if lo is not None:
                d1 = _utc_day(lo + _TZ_EAST - 1) + timedelta(days=1)
            if hi is not None:
                d2 = _utc_day(hi + 1 - _TZ_WEST)
            if d1 is not None and d2 is not None and d1 >= d2:
                return False
        keys: list[Token] = []
        if d1 is not None:
            keys += [since, _imap_day(d1)]
        if d2 is not None:
            keys += [before, _imap_day(d2)]
        return _key(keys)
    if p.lo is not None and p.hi is not None and p.lo > p.hi:
        return False
    sk: list[Token] = []
    if p.lo:
        sk += ["LARGER", str(p.lo - 1)]
    if p.hi is not None:
        if p.hi < 0:
            return False
        sk += ["SMALLER", str(p.hi + 1)]
    return _key(sk) if sk else True


def _imap(p: Pattern, upper: bool, now: datetime) -> _Keys:
    if isinstance(p, Not):
        k = _imap(p.item, not upper, now)
        return (not k) if isinstance(k, bool) else ["NOT", *k]
    if isinstance(p, And):
        return _and([_imap(x, upper, now) for x in p.items])
    if isinstance(p, Or):
        return _or([_imap(x, upper, now) for x in p.items])
    return _imap_leaf(p, upper, now)


def to_imap_search(p: Pattern, *, now: datetime | None = None) -> list[Token]:
    """UID SEARCH keys whose answer holds every match (see the module doc). ``["ALL"]`` when the
    server cannot narrow it, ``["NOT", "ALL"]`` when nothing can match."""
    k = _imap(p, True, now or datetime.now())
    if k is True:
        return ["ALL"]
    if k is False:
        return ["NOT", "ALL"]
    if k[0] == "(":  # the top level is an AND of its keys already
        return k[1:-1]
    return k


def imap_exact(p: Pattern, *, now: datetime | None = None) -> bool:
    """Whether the server's answer to ``to_imap_search(p)`` is exactly the matches."""
    now = now or datetime.now()
    return _imap(p, True, now) == _imap(p, False, now)


def imap_parts(tokens: list[Token]) -> list[bytes | SearchString]:
    """The tokens as command parts: atoms joined with the right spacing (none inside parentheses'
    edges) as bytes; each SearchString left for the IMAP layer to quote or send as a literal."""
    out: list[bytes | SearchString] = []
    buf = ""
    prev: Token | None = None
    for t in tokens:
        sep = "" if prev is None or prev == "(" or t == ")" else " "
        prev = t
        if isinstance(t, SearchString):
            out.append((buf + sep).encode())
            out.append(t)
            buf = ""
        else:
            buf += sep + t
    if buf:
        out.append(buf.encode())
    return [p for p in out if p != b""]
