"""Search over the local store (issue #13): the FTS index (derived data) and the local evaluator.

The index (schema: the search entry of db.MIGRATIONS)
  fts_head  FTS5, trigram, external content over `messages` (subject, from_, to_, cc), keyed by the
            local id. Filled by the sync side in batches (index_headers) up to a watermark,
            search_state.head_upto: local ids are appended and never reused, so what is above it
            is exactly what is not indexed yet, in every folder. The evaluator never depends on it
            for correctness, only for speed: rows above the watermark are scanned.
  bodytext  the text the reader showed of a message's text part (index_body, called when the
            opener caches one), with its own FTS5 index fts_body. A removed message takes both
            with it (a delete trigger: deletes are rare, inserts are the cold fill's hot path).

The evaluator (evaluate) answers a core.pattern over one folder or every folder with three values
per row, all in one SQL statement: SQL's NULL is the pattern's "unknown", and AND/OR/NOT on NULL
follow the same (Kleene) rules as pattern.matches. Each term becomes a 1/0/NULL expression:
  - what the message columns hold (~f ~t ~c ~C ~s ~i ~x, flags, ~d, ~z): exact; pattern.to_sql for
    each term, and for a case-insensitive term with a cased non-ASCII letter (SQLite's LIKE folds
    ASCII only) pattern.matches through a SQL function on the rows its wider LIKE lets through;
  - ~b: the cached body text (FTS narrows, the exact rule checks); NULL where no body is cached;
  - ~B: From/To/Cc/Subject or the cached body (the other header lines are not in the store: a row
    whose body is cached and that matches neither is a no, where the server would also read its
    Received: lines); NULL where no body is cached and the fields do not match;
  - ~h ~l ~r ~T: NULL (not in the store) unless `resolved` (a server's answers) or `tagged` says.
The plan's `where` (pattern.to_sql: a superset of the matches) limits the rows looked at.
Rows that come out NULL are `unknown`: the caller may ask a server about them (backends/imap/
search.py) and evaluate again with its answers as `resolved`.
"""

from __future__ import annotations

import json
import re
import sqlite3
import time
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime

from tuimail.core.pattern import (And, Date, Flag, Leaf, Message, Not, Or, Pattern, Text, leaves, like_escape, matches,
                                  to_sql)
from tuimail.store.writer import yield_to_intents

# header rows indexed per transaction: the user's intent waits for one (~60 ms at 1000 rows on a
# busy 2-core machine: 100k took 6 s), not for all
ROWS_PER_TX = 1000
MAX_BODY_CHARS = 1_000_000  # text indexed of one body (the reader shows a first slice anyway)
_MIN_FTS = 3  # the trigram tokenizer finds substrings of at least 3 characters

_COLS = {"f": ("from_",), "t": ("to_",), "c": ("cc",), "C": ("to_", "cc"), "s": ("subject",),
         "i": ("message_id",), "x": ("refs", "in_reply_to")}
_HEAD_COLS = ("from_", "to_", "cc", "subject")  # what ~B reads in the store (and fts_head indexes)
_FTS_HEAD_OPS = "ftcCs"  # the terms whose columns fts_head indexes


# ------------------------------------------------------------------------------------ indexing

def head_upto(db: sqlite3.Connection) -> int:
    row = db.execute("SELECT head_upto FROM search_state").fetchone()
    return int(row[0]) if row else 0


def unindexed(store) -> int:
    """How many message rows are not in the header index yet."""
    return store.db.execute("SELECT count(*) FROM messages WHERE id > ?", (head_upto(store.db),)).fetchone()[0]


def index_headers(store, *, batch: int | None = None, limit: int | None = None,
                  seconds: float | None = None) -> int:
    """Index the header fields of the rows above the watermark, `batch` rows per transaction
    (the user's intents take the write lock between two), at most `limit` rows and about
    `seconds` in all (None: until none are left). Returns the rows indexed. The sync side runs
    it after a sync, in the gaps (backends/imap/engine.py)."""
    done = 0
    batch = batch or ROWS_PER_TX
    end = None if seconds is None else time.monotonic() + seconds
    while limit is None or done < limit:
        if end is not None and done and time.monotonic() >= end:
            break
        n = batch if limit is None else min(batch, limit - done)
        if done:
            yield_to_intents(store.path)
        with store.transaction():
            upto = head_upto(store.db)
            top = store.db.execute("SELECT max(id), count(*) FROM (SELECT id FROM messages WHERE id > ?"
                                   " ORDER BY id LIMIT ?)", (upto, n)).fetchone()
            if not top[1]:
                return done
            store.db.execute("INSERT INTO fts_head(rowid, subject, from_, to_, cc) SELECT id, subject, from_,"
                             " to_, cc FROM messages WHERE id > ? AND id <= ? ORDER BY id", (upto, top[0]))
            store.db.execute("UPDATE search_state SET head_upto = ?", (top[0],))
        done += top[1]
    return done


def index_body(store, id: int, text: str) -> None:
    """The text the reader shows of message `id`'s text part, for ~b/~B (kept until the message
    row goes). A row that is gone meanwhile is skipped."""
    # (no NUL; a lone surrogate from a mis-decoded part would not encode)
    text = text[:MAX_BODY_CHARS].replace("\0", "").encode("utf-8", "replace").decode("utf-8")
    with store.transaction():
        store.db.execute("INSERT INTO bodytext(id, text) SELECT ?, ? WHERE EXISTS (SELECT 1 FROM messages"
                         " WHERE id = ?) ON CONFLICT(id) DO UPDATE SET text = excluded.text"
                         " WHERE text != excluded.text", (id, text, id))


def has_body(store, ids: Iterable[int]) -> set[int]:
    ids = list(ids)
    out: set[int] = set()
    for i in range(0, len(ids), 500):
        chunk = ids[i:i + 500]
        out.update(r[0] for r in store.db.execute(
            f"SELECT id FROM bodytext WHERE id IN ({','.join('?' * len(chunk))})", chunk))
    return out


# ---------------------------------------------------------------------------------- evaluation

@dataclass(frozen=True)
class Hit:
    folder_id: int
    id: int
    date: int | None


@dataclass
class Result:
    """hits: the matches, newest first. unknown: {folder id: local ids} the store could not
    decide (a body not cached, a term only a server answers). unanswered: the terms behind them."""
    hits: list[Hit] = field(default_factory=list)
    unknown: dict[int, list[int]] = field(default_factory=dict)
    unanswered: tuple[Leaf, ...] = ()

    @property
    def unknown_count(self) -> int:
        return sum(len(v) for v in self.unknown.values())


# A server's (or anyone's) answers for some terms: term -> (local ids that match, local ids asked).
Resolved = Mapping[Leaf, tuple[Collection[int], Collection[int]]]


def _fts_string(text: str) -> str:
    """User text as one FTS5 string (never raw in MATCH: a quote or an operator is a syntax error)."""
    return '"' + text.replace('"', '""') + '"'


def _contains_fn(hay: str | None, needle: str) -> int:
    # pattern's own rule (mutt's case rule, per-character folding), through a public entry
    return int(bool(matches(Text("s", needle), Message(subject=hay or ""))))


class _Compiler:
    """Builds SQL over `messages m` with named parameters (pieces are built in any order)."""

    def __init__(self, now: datetime, resolved: Resolved, tagged: Collection[int] | None, upto: int):
        self.now = now
        self.resolved = resolved
        self.tagged = tagged
        self.upto = upto
        self.params: dict[str, object] = {}

    def bind(self, value: object) -> str:
        name = f"p{len(self.params)}"
        self.params[name] = value
        return ":" + name

    def plan_sql(self, where: str, params: tuple[object, ...]) -> str:
        """pattern.to_sql's text with its ? bound here (its literals hold no ?)."""
        it = iter(params)
        return re.sub(r"\?", lambda _m: self.bind(next(it)), where)

    def ids_in(self, ids: Collection[int]) -> str:
        return f"(SELECT value FROM json_each({self.bind(json.dumps(sorted(ids)))}))"

    def exact(self, col: str, text: str) -> str:
        """1 when `col` contains `text` by pattern's rule, else 0 (never NULL)."""
        case = any(c.isupper() for c in text)
        if "\0" in text or (not case and not text.isascii()):
            return f"tm_contains({col}, {self.bind(text)})"
        if case:
            return f"(instr(ifnull({col}, ''), {self.bind(text)}) > 0)"
        return f"(ifnull({col}, '') LIKE {self.bind('%' + like_escape(text) + '%')} ESCAPE '\\')"

    def _fts(self, text: str) -> bool:
        return len(text) >= _MIN_FTS and "\0" not in text

    def body_cond(self, text: str) -> str:
        """On `bodytext b`: its text contains `text` (the index narrows first)."""
        sub = ""
        if self._fts(text):
            sub = f"b.id IN (SELECT rowid FROM fts_body WHERE fts_body MATCH {self.bind(_fts_string(text))}) AND "
        return sub + self.exact("b.text", text)

    def body_match(self, text: str) -> str:
        """Ids whose cached body contains `text`."""
        return f"(SELECT b.id FROM bodytext b WHERE {self.body_cond(text)})"

    def head_hits(self, text: str) -> str:
        """A superset of the rows whose From/To/Cc/Subject may hold `text`: the index's hits and
        the rows above its watermark ("1" when the index cannot narrow: a short term)."""
        if not self._fts(text):
            return "1"
        return (f"(m.id > {self.bind(self.upto)} OR m.id IN (SELECT rowid FROM fts_head WHERE fts_head MATCH"
                f" {self.bind(_fts_string(text))}))")

    def head_match(self, text: str) -> str:
        """1 when From, To, Cc or Subject contains `text` (the index narrows the indexed rows)."""
        return ("(" + self.head_hits(text) + " AND (" + " OR ".join(self.exact(f"m.{c}", text)
                                                                   for c in _HEAD_COLS) + "))")

    # three-valued value of a term / pattern -------------------------------------------------
    def leaf(self, p: Leaf) -> str:
        got = self.resolved.get(p)
        if got is not None:
            yes, asked = got
            return (f"(CASE WHEN m.id IN {self.ids_in(yes)} THEN 1 WHEN m.id IN {self.ids_in(asked)} THEN 0"
                    f" ELSE {self.local(p)} END)")
        return self.local(p)

    def local(self, p: Leaf) -> str:
        if isinstance(p, Text):
            if p.op in _COLS:
                return "(" + " OR ".join(self.exact(f"m.{c}", p.text) for c in _COLS[p.op]) + ")"
            if p.op == "b":
                m = self.body_match(p.text)
                return f"(CASE WHEN m.id IN {m} THEN 1 WHEN m.id IN (SELECT id FROM bodytext) THEN 0 END)"
            if p.op == "B":
                h = self.head_match(p.text)
                m = self.body_match(p.text)
                return (f"(CASE WHEN {h} OR m.id IN {m} THEN 1"
                        " WHEN m.id IN (SELECT id FROM bodytext) THEN 0 END)")
            return "NULL"  # ~h
        if isinstance(p, Flag):
            if p.op == "T":
                return "NULL" if self.tagged is None else f"(m.id IN {self.ids_in(self.tagged)})"
            if p.op == "l":
                return "NULL"
        if isinstance(p, Date) and p.op == "r":
            return "NULL"
        plan = to_sql(p, now=self.now, table="m")
        return f"({self.plan_sql(plan.where, plan.params)})"

    def tv(self, p: Pattern) -> str:
        if isinstance(p, Not):
            return f"(NOT {self.tv(p.item)})"
        if isinstance(p, (And, Or)):
            return "(" + (" AND " if isinstance(p, And) else " OR ").join(self.tv(x) for x in p.items) + ")"
        return self.leaf(p)

    # supersets that drive the scan: rows where the value may be 1 (pos) / may be 0 (neg) ------
    def pos(self, p: Pattern) -> str:
        """SQL true for every row whose value may be 1. An id list where it can be one (a union
        of index hits): SQLite then looks the rows up by id instead of scanning the folder."""
        kind, sql = self._pos(p)
        return f"m.id IN ({sql})" if kind == "ids" else sql

    def _pos(self, p: Pattern) -> tuple[str, str]:
        if isinstance(p, Not):
            return "expr", self.neg(p.item)
        if isinstance(p, Or):
            parts = [self._pos(x) for x in p.items]
            if all(k == "ids" for k, _ in parts):
                return "ids", " UNION ".join(q for _, q in parts)
            return "expr", _join([f"m.id IN ({q})" if k == "ids" else q for k, q in parts], False)
        if isinstance(p, And):
            parts = sorted((self._pos(x) for x in p.items), key=lambda kq: kq[0] != "ids")
            return "expr", _join([f"m.id IN ({q})" if k == "ids" else q for k, q in parts], True)
        got = self.resolved.get(p)
        yes = f"SELECT value FROM json_each({self.bind(json.dumps(sorted(got[0])))})" if got is not None else None
        if isinstance(p, Text) and p.op in "bB":
            queries = [f"SELECT b.id FROM bodytext b WHERE {self.body_cond(p.text)}"]
            if p.op == "B":
                if not self._fts(p.text):
                    return "expr", "1"
                queries += [f"SELECT rowid FROM fts_head WHERE fts_head MATCH {self.bind(_fts_string(p.text))}",
                          f"SELECT id FROM messages WHERE id > {self.bind(self.upto)}"]
            return "ids", " UNION ".join(queries + ([yes] if yes else []))
        if isinstance(p, Text) and p.op == "h" or isinstance(p, Flag) and p.op in "lT" and not (
                p.op == "T" and self.tagged is not None) or isinstance(p, Date) and p.op == "r":
            return ("ids", yes) if yes else ("expr", "0")  # unknown here: never 1
        if isinstance(p, Text) and p.op in _FTS_HEAD_OPS and self._fts(p.text):
            # the header index's hits in those columns, and the rows above its watermark
            cols = " ".join(_COLS[p.op])
            query = f"{{{cols}}} : " + _fts_string(p.text)
            queries = [f"SELECT rowid FROM fts_head WHERE fts_head MATCH {self.bind(query)}",
                     f"SELECT id FROM messages WHERE id > {self.bind(self.upto)}"]
            return "ids", " UNION ".join(queries + ([yes] if yes else []))
        plan = to_sql(p, now=self.now, table="m")
        local = f"({self.plan_sql(plan.where, plan.params)})" if plan.where not in ("0", "1") else plan.where
        return "expr", _join([f"m.id IN ({yes})", local], False) if yes else local

    def neg(self, p: Pattern) -> str:
        if isinstance(p, Not):
            return self.pos(p.item)
        if isinstance(p, (And, Or)):
            return _join([self.neg(x) for x in p.items], isinstance(p, Or))
        if p in self.resolved or (isinstance(p, Text) and p.op in "bB"):
            return "1"
        if isinstance(p, Text) and p.op == "h" or isinstance(p, Flag) and p.op in "lT" and not (
                p.op == "T" and self.tagged is not None) or isinstance(p, Date) and p.op == "r":
            return "0"  # unknown here: never 0
        plan = to_sql(p, now=self.now, table="m")
        if plan.sure in ("0", "1"):
            return "1" if plan.sure == "0" else "0"
        return f"(NOT {self.plan_sql(plan.sure, plan.sure_params)})"


def _join(parts: list[str], conj: bool) -> str:
    absorb, unit = ("0", "1") if conj else ("1", "0")
    if absorb in parts:
        return absorb
    parts = [x for x in parts if x != unit]
    if not parts:
        return unit
    return parts[0] if len(parts) == 1 else "(" + (" AND " if conj else " OR ").join(parts) + ")"


def _register(db: sqlite3.Connection) -> None:
    db.create_function("tm_contains", 2, _contains_fn, deterministic=True)


def evaluate(store, pattern: Pattern, folder_ids: Iterable[int] | None = None, *, now: datetime | None = None,
             resolved: Resolved | None = None, tagged: Collection[int] | None = None,
             unknown: bool = True) -> Result:
    """The pattern over the folders' visible rows (None: every folder), from the store alone (and
    `resolved` answers). unknown=False skips listing the undecided rows (a scan of every row the
    plan allows: the hits alone are driven by the indexes). See the module doc."""
    now = now or datetime.now()
    resolved = resolved or {}
    db = store.db
    _register(db)
    comp = _Compiler(now, resolved, tagged, head_upto(db))
    scope = ""
    if folder_ids is not None:
        fids = sorted(set(folder_ids))
        if not fids:
            return Result()
        scope = f" AND m.folder_id IN ({','.join(comp.bind(f) for f in fids)})"
    value = comp.tv(pattern)
    pos = comp.pos(pattern)
    plan = to_sql(pattern, now=now, table="m")
    where = comp.plan_sql(plan.where, plan.params)
    exact = plan.exact and not resolved and not any(isinstance(q, Flag) and q.op == "T" for q in leaves(pattern))
    own_tx = not store.in_transaction
    if own_tx:
        db.execute("BEGIN")  # one snapshot: the watermark and the rows agree
    try:
        if pos == "0":
            found = []
        else:
            test = f" AND {value} IS 1"  # (pos is a superset: index hits are checked by the exact rule)
            # (+folder_id: an id list from the indexes drives the lookups, not the folder's date index)
            drive = scope.replace("m.folder_id", "+m.folder_id") if "m.id IN (" in pos else scope
            found = db.execute(f"SELECT m.folder_id, m.id, m.date FROM messages m WHERE {pos} AND m.hidden = 0"
                               f"{drive}{test}", comp.params).fetchall()
        open_rows = []
        if unknown and not exact:
            # one string per folder: a 100k folder whose bodies are mostly not cached has 90k
            # undecided rows, cheaper as one string than as 90k Python tuples
            open_rows = db.execute(f"SELECT m.folder_id, group_concat(m.id) FROM messages m WHERE m.hidden = 0"
                                   f"{scope} AND {where} AND {value} IS NULL GROUP BY m.folder_id",
                                   comp.params).fetchall()
    finally:
        if own_tx:
            db.execute("COMMIT")
    hits = [Hit(*r) for r in found]
    hits.sort(key=lambda h: (h.date if h.date is not None else -1, h.id), reverse=True)
    undecided = {fid: list(map(int, ids_s.split(","))) for fid, ids_s in open_rows}
    unanswered: tuple[Leaf, ...] = ()
    if undecided or (not unknown and not exact):
        unanswered = tuple(dict.fromkeys(
            q for q in leaves(pattern) if q not in resolved and (
                (isinstance(q, Text) and q.op in "bBh") or (isinstance(q, Flag) and q.op in "lT"
                                                              and not (q.op == "T" and tagged is not None))
                or (isinstance(q, Date) and q.op == "r"))))
    return Result(hits, undecided, unanswered)


def server_terms(pattern: Pattern, resolved: Resolved | None = None) -> list[Leaf]:
    """The terms of `pattern` a server could settle that the store may not (each once)."""
    resolved = resolved or {}
    return list(dict.fromkeys(q for q in leaves(pattern) if q not in resolved and (
        (isinstance(q, Text) and q.op in "bBh") or (isinstance(q, Flag) and q.op == "l")
        or (isinstance(q, Date) and q.op == "r"))))
