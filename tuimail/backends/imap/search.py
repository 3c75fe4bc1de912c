"""Search on an IMAP account: the store first (store/search.py), the server for what the store
cannot decide (bodies not downloaded, ~h, ~l, ~r), merged by local id.

Each term the store could not settle for some rows is asked once per folder as
`UID SEARCH [CHARSET UTF-8] UID <those rows> <the term's keys>` (ESEARCH's compact answer where
offered; protocol/imap/literals.py), its strings from core.pattern.to_imap_search: quoted when they
are plain ASCII, else sent as literals (CR, LF, quotes, backslashes and non-ASCII never go inline:
imapclient's inline CR/LF is a command injection, mjs/imapclient#657). The server's answers become
`resolved` for a second local evaluation, so the merge follows the pattern's logic (a row the server
says has the word, and that is unread in the store, matches `~b word ~U`).

The server compares without case (a case-sensitive term is answered as a case-insensitive one there)
and reads every header line for ~B (TEXT); the store reads From/To/Cc/Subject and the cached body.
"""

from __future__ import annotations

from datetime import datetime

from tuimail.errors import CommandFailed
from tuimail.core.pattern import Leaf, Pattern, SearchString, imap_parts, to_imap_search
from tuimail.protocol.imap import uidset, wire
from tuimail.store import Store
from tuimail.store.search import Result, evaluate, server_terms

MAX_UID_SET = 8000  # bytes of a UID set sent with a term; past it the whole folder is asked


def criteria(tokens: list, uids: list[int] | None) -> list[bytes | wire.Literal]:
    """SEARCH criteria parts for pattern tokens, restricted to `uids` (None: every message)."""
    parts: list[bytes | wire.Literal] = []
    if uids is not None:
        parts.append(b"UID " + uidset.compact(uids).encode() + b" ")
    for p in imap_parts(tokens):
        if isinstance(p, SearchString):
            parts.append(wire.Literal(p.text.encode()) if p.needs_literal else wire.quote(p.text))
        else:
            parts.append(p)
    return parts


def ask_server(conn, store: Store, folder: str, pattern: Pattern, undecided: list[int], *,
               now: datetime | None = None) -> dict[Leaf, tuple[set[int], set[int]]]:
    """The server's answers, for the local ids `undecided` of `folder`, to each term of `pattern`
    it can settle: {term: (ids that match, ids asked)}. Selects `folder` read-only."""
    now = now or datetime.now()
    by_uid: dict[int, int] = {}
    for id_, sid in store.sid_of(undecided).items():
        if sid.isdigit():
            by_uid[int(sid)] = id_
    if not by_uid:
        return {}
    try:
        if conn.selected != folder:
            conn.select(folder, readonly=True)
    except CommandFailed:  # (a folder the server refuses: the store's answer stands)
        return {}
    uids = sorted(by_uid)
    restrict: list[int] | None = uids if len(uidset.compact(uids)) <= MAX_UID_SET else None
    asked = set(by_uid.values())
    out: dict[Leaf, tuple[set[int], set[int]]] = {}
    for term in server_terms(pattern):
        tokens = to_imap_search(term, now=now)
        if tokens == ["ALL"]:  # the server cannot narrow it (~T): stays undecided
            continue
        found = conn.search_uids(criteria(tokens, restrict))
        out[term] = ({by_uid[u] for u in found if u in by_uid}, asked)
    return out


def search_folder(store: Store, conn, folder: str, pattern: Pattern, *,
                  now: datetime | None = None) -> Result:
    """`pattern` over `folder`: the store's answer, and the server's for the rows the store cannot
    decide (conn None: offline, the store's answer with its undecided rows)."""
    now = now or datetime.now()
    fi = store.folder(folder, counts=False)
    if fi is None:
        return Result()
    local = evaluate(store, pattern, [fi.id], now=now, unknown=conn is not None)
    if conn is None or not local.unknown:
        return local
    resolved = ask_server(conn, store, folder, pattern, local.unknown.get(fi.id, []), now=now)
    if not resolved:
        return local
    return evaluate(store, pattern, [fi.id], now=now, resolved=resolved)
