"""mutt-style search patterns (issue #13 item 1): parser, printer, evaluator, SQL and IMAP compilers.

Pure logic, no I/O. ``parse(text)`` gives an AST of frozen dataclasses; ``format(ast)`` prints it
back canonically (``parse(format(p)) == p``); ``matches(ast, msg)`` evaluates it on a
``MessageView`` with three values; ``to_sql(ast)`` splits it into what the store's ``messages``
columns answer and the residue; ``to_imap_search(ast)`` gives UID SEARCH keys.

Operators (as in mutt/neomutt; EXPR is a word, or a '...' / "..." string)
  ~f EXPR  From: contains EXPR            ~t EXPR  To: contains EXPR
  ~c EXPR  Cc: contains EXPR              ~C EXPR  To: or Cc: contains EXPR
  ~s EXPR  Subject: contains EXPR         ~i EXPR  Message-ID contains EXPR
  ~x EXPR  References or In-Reply-To contains EXPR
  ~b EXPR  the body contains EXPR         ~B EXPR  the whole message (headers or body) contains EXPR
  ~h EXPR  a header line contains EXPR; ``~h "Name: value"`` (a field name, a colon) means the
           field Name (any case) has a value containing "value" -- what IMAP ``HEADER`` does;
           ``~h "Name:"``: the message has that field
  ~N  new: unread (tuimail keeps no IMAP Recent flag, so every unread message is new, as mutt with
      $mark_old unset)                    ~O  old (unread and seen before): matches nothing here
  ~U  unread        ~R  read            ~F  flagged       ~D  deleted
  ~Q  replied (answered; mutt's ~Q, an addition to the issue's list)
  ~T  tagged (the UI's tags)            ~A  every message
  ~l  a mailing-list message: it has a List-Id or List-Post header (mutt: "addressed to a known
      list" from its `lists` command; tuimail has no such list, the headers say it)
  ~d RANGE  date sent (Date:) in range   ~r RANGE  date received (INTERNALDATE) in range
  ~z SIZE   message size (RFC822.SIZE, mutt: the body's length) in range
  !P  not P         P Q  both (implicit AND)       P | Q  either        ( P )  grouping
  WORD  a plain word (or quoted string) means ``~f WORD | ~s WORD`` (mutt's default $simple_search)
Precedence: ``!`` binds tightest, then AND, then ``|``: ``~f a ~s b | ~U`` is ``(~f a ~s b) | ~U``.

Strings. A substring match (mutt takes a regex; ``~=``-style and regex matching are out of scope:
``.`` ``*`` ``%`` ``_`` are literal characters here). mutt's case rule: EXPR with an uppercase letter
is case-sensitive, otherwise case-insensitive. Case folding is per character (``str.lower`` when it
gives one character and does not cross the ASCII boundary, so ASCII matches exactly as SQLite's
LIKE folds). An unquoted EXPR runs to whitespace, ``(``, ``)`` or ``|``; in quotes anything goes;
``\\`` escapes the next character inside and outside quotes. An empty EXPR is an error.

Dates (ranges are inclusive, whole days; ``now`` comes from the caller: an aware datetime fixes the
time zone of "a day", a naive one (the default, the clock) means the system's zone with DST):
  2024-01-31 / 20240131 / 31/01/2024 / 31/01/24 / 31/01 / 31   one day. D/M/Y is mutt's order
      (01/02/2024 is 1 February); a two-digit year < 70 is 20YY, else 19YY; a missing year or
      month is the current one (resolved when the pattern is parsed).
  A-B  from day A to day B (swapped if reversed)    A-  from A on    -B  up to day B
  <Nu  newer than N units    >Nu  older than N units    =Nu  on the day N units ago
      units y m w d (counted in whole days from the end of today, as neomutt: ``<1d`` is today,
      ``>1d`` is yesterday and before) and H M S (counted exactly from now). Months and years
      are calendar ones; a day past the month's end is clamped (31 March - 1m = 28/29 February).
  Not accepted (PatternError): mutt's error margins ``*2w`` ``+1d`` ``-1d`` after a date.
Sizes: ``N`` exactly, ``N-M`` (inclusive), ``N-``, ``-M``, ``<N``, ``>N`` (exclusive); a K or M
suffix (any case) multiplies by 1024 or 1048576.

Errors: ``PatternError(message, position)``; ``str()`` is one line,
``pattern: unknown operator ~q at column 6`` (columns count from 1, ``position`` from 0).
Limits (errors too): at most MAX_TERMS (200) terms, a plain word counting two, and MAX_DEPTH (20)
nested ``(`` / ``!``: deeper SQL overflows SQLite's parser, and nobody types that by hand.

Three values. ``matches`` returns True, False or None (unknown): a body or header term on a message
whose body/headers are not cached, or ~T/~l where the view cannot say. ``resolve(term, msg)``, if
given, answers such terms (e.g. from an FTS index or a server search for that one term).

SQL split (``to_sql``): each term the v6 columns answer is compiled exactly; each term they cannot
answer (~b ~B ~h ~T ~l ~r) is *residue*. ``SqlPlan.where`` is true for every matching row (a
superset: residue counts as "maybe"), ``SqlPlan.sure`` only for rows that match whatever the residue
says (a subset). Rows in ``where`` and not in ``sure`` need ``matches`` (then ``resolve``/server
for ``SqlPlan.residue``). ``SqlPlan.exact``: the two are the same, the SQL answer is the answer.
A case-insensitive term with a cased non-ASCII letter (``~s école``) is not residue but is wider in
``where`` (SQLite's LIKE folds ASCII only): ``matches`` on the row settles it. User text is always a
bound parameter; LIKE's ``%`` ``_`` ``\\`` are escaped (``ESCAPE '\\'``).

IMAP (``to_imap_search``): the keys' answer is a superset of the matches: IMAP compares whole days
in the message's own time zone (date terms are widened, or narrowed under NOT), it is always
case-insensitive, and ~T (or a term holding a NUL, which no IMAP string can carry) cannot be asked
(treated as "maybe"). ``imap_exact`` says when the answer is exactly the matches. Suggested use:
for the rows whose ``matches`` is None, ask the server per unknown term (``to_imap_search(term)``
over their uids) and pass the answers as ``resolve``. Tokens: atoms (``str``: keywords, dates,
numbers, "(" and ")") and ``SearchString`` values for every string from the user (a header field
name too). ``needs_literal`` is set for text with CR, LF, a quote, a backslash or non-ASCII, which
the IMAP layer must send as a literal (``wire.Literal``; non-ASCII then needs ``CHARSET UTF-8``),
never inline. ``imap_parts(tokens)`` joins the atoms with IMAP's spacing (none inside parentheses)
and leaves each SearchString for the layer: ``[b if isinstance(b, bytes) else wire.Literal(...)
or wire.quote(...)]`` is then a ``search_uids`` criteria list.
"""

from __future__ import annotations

import calendar
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Protocol


__all__ = [
    "And", "Date", "DateRange", "DateRel", "Flag", "MessageView", "Message", "Not", "Or", "Pattern",
    "PatternError", "SearchString", "Size", "SqlPlan", "Text", "format", "imap_exact", "matches",
    "parse", "to_imap_search", "to_sql", "Token", "date_bounds", "imap_parts", "leaves", "like_escape",
]

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


# ------------------------------------------------------------------------------------------ AST

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


# --------------------------------------------------------------------------------------- parser

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


def parse(text: str, *, today: date | None = None) -> Pattern:
    """The AST of a pattern; PatternError if it is malformed. ``today`` fills a date's missing
    month or year (default: the local date)."""
    return _Parser(text, today or date.today()).parse()


# -------------------------------------------------------------------------------------- printer

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


def leaves(p: Pattern) -> Iterator[Leaf]:
    """The terms of a pattern, left to right."""
    if isinstance(p, Not):
        yield from leaves(p.item)
    elif isinstance(p, (And, Or)):
        for x in p.items:
            yield from leaves(x)
    else:
        yield p


# ------------------------------------------------------------------------------ dates and folding

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


# ------------------------------------------------------------------------------------ evaluator

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


# ---------------------------------------------------------------------------------- SQL compiler

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


# --------------------------------------------------------------------------------- IMAP compiler

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
