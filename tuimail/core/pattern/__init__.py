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

Modules (the import path is this package: ``from tuimail.core.pattern import parse, to_sql``):
nodes.py (the AST, the operator letters, PatternError, leaves), parser.py (text -> AST),
ranges.py (date and size arguments, date_bounds), printer.py (format), evaluate.py (matches),
sql.py (to_sql), imap.py (to_imap_search, imap_exact, imap_parts).
"""

from __future__ import annotations

from tuimail.core.pattern.evaluate import Message, MessageView, Resolver, Truth, _fold, _header_lines, matches
from tuimail.core.pattern.imap import SearchString, Token, imap_exact, imap_parts, to_imap_search
from tuimail.core.pattern.nodes import (DATE_OPS, FLAG_OPS, SIZE_OPS, TEXT_OPS, And, Date, DateRange, DateRel, Flag,
                                        Leaf, Not, Or, Pattern, PatternError, Size, Text, leaves)
from tuimail.core.pattern.parser import MAX_DEPTH, MAX_TERMS, parse
from tuimail.core.pattern.printer import format
from tuimail.core.pattern.ranges import date_bounds
from tuimail.core.pattern.sql import SqlPlan, _cased_nonascii, like_escape, to_sql

__all__ = [
    "And", "Date", "DateRange", "DateRel", "Flag", "MessageView", "Message", "Not", "Or", "Pattern",
    "PatternError", "SearchString", "Size", "SqlPlan", "Text", "format", "imap_exact", "matches",
    "parse", "to_imap_search", "to_sql", "Token", "date_bounds", "imap_parts", "leaves", "like_escape",
]
# (also importable from here, as before the split: the operator letters, the limits, Leaf, the
# evaluator's Truth/Resolver, and the helpers the unit tests reach: _fold, _header_lines,
# _cased_nonascii)
_REEXPORTED = (DATE_OPS, FLAG_OPS, SIZE_OPS, TEXT_OPS, MAX_DEPTH, MAX_TERMS, Leaf, Truth, Resolver, _fold,
               _header_lines, _cased_nonascii)
