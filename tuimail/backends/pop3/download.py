"""One POP3 sync: the order of the steps that makes "nothing lost, nothing twice" hold, with the
store behind a small `Ledger` interface (the POP3 service adapts the store to it).

    session = Pop3Session.from_account(account, secret)
    result = download(session, ledger, Policy("delete"))

The order (issue 14, item 3):
1. UIDL. If every UIDL is known and nothing is due, that is all: a second sync with nothing new
   costs one UIDL exchange (plus login and QUIT). Otherwise LIST for the sizes (fingerprints).
2. plan(); if it asks for fingerprints (a UIDL reset, or no UIDL at all), TOP n 0 for those
   (RETR where the server has no TOP) and plan again.
3. Remaps are written to the ledger before anything else happens.
4. New messages: RETR (or TOP n 0 first with headers_first), committed to the ledger a window
   at a time as they arrive (the answers one read of the pipelined batch holds; the first window
   a screenful, so the list shows it at once). Then the DELEs (pipelined), each for a message
   whose commit has returned.
5. QUIT. Only when it succeeds are the deleted messages marked off the server. A cut anywhere
   before it deletes nothing on the server (RFC 1939: DELE takes effect at QUIT), and every
   committed message is known by its UIDL and fingerprint, so the next sync downloads it no more.
A ledger failure (a full disk) leaves without QUIT, so no DELE of this session takes effect.
"""

from __future__ import annotations

import os
import time
from collections import deque
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

from tuimail.backends.pop3.plan import KnownMessage, Plan, Policy, ServerMessage, fingerprint, plan
from tuimail.protocol.pop3 import Pop3Busy, Pop3Refused, Pop3Session
from tuimail.trace import trace

if TYPE_CHECKING:
    from tuimail.backends.pop3.fieldpool import FieldPool

__all__ = ["Ledger", "SyncResult", "download", "fetch_body"]

FIRST_WINDOW = 60  # the first header rows committed together: a screenful, listed at once
WINDOW = 500  # at most this many messages per commit after that (fewer when fewer have arrived)
WINDOW_BYTES = 8 << 20  # and at most about this many bytes of messages
POOL_OVER = 1000  # header downloads of this many messages or more share their work with a helper


class Ledger(Protocol):
    """What a POP3 sync needs from the store, for one account. Each write is durable when it returns."""

    def known(self) -> list[KnownMessage]: ...

    def commit_many(self, items: list[tuple[ServerMessage, bytes, str]], headers_only: bool,
                    fields: list[tuple] | None = None) -> list[Hashable]:
        """Store new messages (or only their header blocks), each (message, raw, fingerprint) with
        its UIDL and fingerprint, all durable when it returns; their refs, in order. `fields`:
        each one's row fields (ledger.row_fields) when worked out already (fieldpool.py)."""

    def commit_bodies(self, items: list[tuple[Hashable, bytes]]) -> None:
        """The whole messages, (ref, raw), for ones stored with headers_only; durable when it returns."""

    def remap(self, ref: Hashable, uidl: str | None) -> None:
        """A known message found again under a new UIDL (a server restore)."""

    def off_server(self, refs: list[Hashable]) -> None:
        """These messages are no longer on the server (our DELE applied, or gone): never DELE them again."""


@dataclass
class SyncResult:
    downloaded: int = 0  # messages committed whole (new, or bodies of header-only ones)
    headers: int = 0  # messages committed header-only (headers_first)
    deleted: int = 0  # DELEs applied by a successful QUIT
    remapped: int = 0
    gone: int = 0
    uidl_reset: bool = False
    notices: list[str] = field(default_factory=list)
    bytes_in: int = 0  # the whole session, login included
    bytes_out: int = 0
    commands: dict[str, int] = field(default_factory=dict)


def download(session: Pop3Session, ledger: Ledger, policy: Policy, *, headers_first: bool = False,
             bodies: bool = True, now: float | None = None, share: Callable[[], bool] = lambda: True) -> SyncResult:
    """Run one sync on `session` (connected here if it is not). Raises what the session raises
    (NetworkError, Pop3Busy: retry later) or what the ledger raises; the session is then dropped
    without QUIT. headers_first: commit new messages from TOP n 0 first; bodies=False: leave the
    bodies of header-only messages for later (opened, or a background sync); they are not DELE'd
    before their body is committed. share(): whether a long header download may work its rows
    out in a helper process too (fieldpool.py) from now on."""
    result = SyncResult()
    if session.sock is None:
        session.connect()
    try:
        _sync(session, ledger, policy, headers_first, bodies, time.time() if now is None else now, result, share)
    except BaseException:
        session.abort()
        raise
    finally:
        result.bytes_in, result.bytes_out = session.bytes_in, session.bytes_out
        result.commands = dict(session.commands)
    return result


def _sync(s: Pop3Session, ledger: Ledger, policy: Policy, headers_first: bool, bodies: bool, now: float,
          result: SyncResult, share: Callable[[], bool]) -> None:
    known = ledger.known()
    trace("pop3: logged in")
    sizes: dict[int, int] | None = None
    if known:
        uidls = s.uidl()
    else:  # nothing known: all of it is new, LIST is needed too (asked for in the same write)
        uidls, sizes = s.uidl_and_sizes()
    trace(f"pop3: UIDL {len(uidls or ())}")
    quiet = False
    if uidls is not None and (known or not uidls):  # (nothing known: all of it is new)
        # sizes matter only for fingerprints: no LIST when nothing is new
        p = plan([ServerMessage(n, 0, u) for n, u in sorted(uidls.items())], known, policy, now)
        quiet = not (p.new or p.need_fingerprints or p.remap)
    if not quiet:
        if sizes is None:
            sizes = s.list_sizes()
        uidls = uidls or {}
        server = [ServerMessage(n, size, uidls.get(n)) for n, size in sorted(sizes.items())]
        p = plan(server, known, policy, now)
        if p.need_fingerprints:
            p = plan(server, known, policy, now, fingerprints=_fingerprints(s, p, sizes))
    result.notices += p.notices
    result.uidl_reset = p.uidl_reset

    for k, m in p.remap:
        ledger.remap(k.ref, m.uidl)
        result.remapped += 1
    if p.gone:
        ledger.off_server([k.ref for k in p.gone])
        result.gone = len(p.gone)

    # DELEs are sent after the downloads (none may go between a pipelined batch's answers), each
    # for a message whose commit has returned; the server applies them only at QUIT anyway
    to_delete: list[tuple[int, Hashable]] = [(m.number, k.ref) for m, k in p.delete]

    assert sizes is not None or not p.new
    pending_bodies: list[tuple[ServerMessage, Hashable]] = [(m, k.ref) for m, k in p.bodies] if bodies else []
    # newest first (the highest message numbers): the first rows committed are the list's first
    # screen, as an IMAP account's first window is
    newest_first = [m.number for m in reversed(p.new)]
    if headers_first and p.new:
        by_number = {m.number: m for m in p.new}
        pool: FieldPool | None = None
        tried = False  # (a helper is made at most once)
        waiting: deque[tuple[list[ServerMessage], list[tuple[int, bytes]]]] = deque()  # sent to the pool

        def commit(new: list[ServerMessage], window: list[tuple[int, bytes]], fields: list | None) -> None:
            fps = [f[0] for f in fields] if fields is not None else [fingerprint(h, m.size) for m, (_, h) in
                                                                    zip(new, window, strict=True)]
            refs = ledger.commit_many([(m, head, fp) for m, (_, head), fp in zip(new, window, fps, strict=True)],
                                      headers_only=True, fields=[f[1] for f in fields] if fields else None)
            result.headers += len(refs)
            if bodies:
                pending_bodies.extend(zip(new, refs, strict=True))

        received = 0
        try:
            for window in s.top_windows(newest_first, first=FIRST_WINDOW, most=WINDOW):
                new = [by_number[n] for n, _ in window]
                received += len(window)
                # the first screenful is worked out here, at once; the rest in a helper as well once
                # `share` allows it (the app has drawn its first screen: until then the helper
                # would take a CPU from the app's start), when enough is left to be worth one
                if pool is None and not tried and result.headers and share() and \
                        len(p.new) - result.headers >= POOL_OVER:
                    tried = True
                    pool = _pool(now)
                    trace(f"pop3: header helper {'started' if pool else 'not made'} at {result.headers}")
                if pool is None:
                    commit(new, window, None)
                    continue
                heads = [(head, m.size) for m, (_, head) in zip(new, window, strict=True)]
                if received == len(p.new) and waiting:
                    # the last window is worked out here while the helper ends the one before
                    # (handed to it, this process would only wait for both)
                    from tuimail.backends.pop3.fieldpool import work_out
                    last = work_out(heads, now, True)
                    while waiting:
                        commit(*waiting.popleft(), pool.take())
                    commit(new, window, last)
                    continue
                # the pool works this window out while the one before is stored
                pool.submit(heads)
                waiting.append((new, window))
                if len(waiting) > 1:
                    commit(*waiting.popleft(), pool.take())
            while waiting:
                assert pool is not None
                commit(*waiting.popleft(), pool.take())
        finally:
            if pool is not None:
                pool.close()
        # every header is in: listed now, not with the first bodies (and the ledger may wait for
        # the app's first screen before the bodies start)
        done = getattr(ledger, "headers_done", None)
        if done is not None:
            done()
        trace(f"pop3: all headers committed {result.headers}")
    elif p.new:
        by_number = {m.number: m for m in p.new}
        for window in s.retr_windows(newest_first, first=FIRST_WINDOW, most=WINDOW, most_bytes=WINDOW_BYTES):
            new = [by_number[n] for n, _ in window]
            refs = ledger.commit_many([(m, raw, fingerprint(raw, m.size))
                                       for m, (_, raw) in zip(new, window, strict=True)], headers_only=False)
            result.downloaded += len(refs)
            if p.delete_after_download:
                to_delete += [(m.number, ref) for m, ref in zip(new, refs, strict=True)]
    if pending_bodies:
        refs_of = {m.number: ref for m, ref in pending_bodies}
        for window in s.retr_windows([m.number for m, _ in pending_bodies], most=WINDOW, most_bytes=WINDOW_BYTES):
            ledger.commit_bodies([(refs_of[n], raw) for n, raw in window])
            result.downloaded += len(window)
            if p.delete_after_download:
                to_delete += [(n, refs_of[n]) for n, _ in window]

    if to_delete:
        s.dele_many(n for n, _ in to_delete)
    s.quit()  # the server applies the DELEs now; if this raises, it is as if none were sent
    if to_delete:
        ledger.off_server([ref for _, ref in to_delete])
        result.deleted = len(to_delete)


def _pool(now: float) -> FieldPool | None:
    """A helper process for the fingerprints and row fields of a long header download
    (fieldpool.py), or None: no fork here."""
    if not hasattr(os, "fork"):
        return None
    from tuimail.backends.pop3.fieldpool import FieldPool
    try:
        return FieldPool(now)
    except OSError:
        return None


def _fingerprints(s: Pop3Session, p: Plan, sizes: dict[int, int]) -> dict[int, str]:
    """TOP n 0 for the messages the plan asks about; RETR (the body dropped) without TOP."""
    numbers = [m.number for m in p.need_fingerprints]
    if not s.capa_known or s.has("TOP"):
        try:
            return {n: fingerprint(head, sizes[n]) for n, head in s.top_many(numbers)}
        except Pop3Busy:
            raise
        except Pop3Refused:
            if s.has("TOP"):
                raise  # it offered TOP and refused it for a message: not a missing command
    return {n: fingerprint(raw, sizes[n]) for n, raw in s.retr_many(numbers)}


def fetch_body(session: Pop3Session, uidl: str) -> bytes | None:
    """The whole message with this UIDL (a header-only message being opened), or None when the
    server no longer lists it. One UIDL and one RETR; the session is left open for the caller."""
    if session.sock is None:
        session.connect()
    uidls = session.uidl()
    number = next((n for n, u in (uidls or {}).items() if u == uidl), None)
    return None if number is None else session.retr(number)
