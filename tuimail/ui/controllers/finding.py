"""Evaluating a pattern for the app's finding keys (limit, list search, searches across folders),
always in a worker thread on store connections of its own; the result comes back to the screen
as a `Found` message whose `apply` runs on the UI thread.

Local first (store/search.py `evaluate`: headers, flags, the FTS index, cached bodies); where the
store cannot decide (~b/~B on bodies not cached, ~h ~l ~r), online, the account's service asks
its server (AccountService.search: the store's answer merged with the server's); offline, or on
an account that cannot search its server, the store's answer stands and a note says what it
could not decide.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from textual.message import Message

from tuimail.core.pattern import Pattern, PatternError, format as format_pattern, parse
from tuimail.core.service import AccountService, Unsupported
from tuimail.mail.sanitize import sanitize_line
from tuimail.store.search import Result, evaluate
from tuimail.store.store import Store
from tuimail.ui.controllers.view import MainView

ALL_WORDS = ("", "all", "~A", ".")  # `l` with one of these: the whole folder again


class Found(Message, bubble=False):
    """A finding worker is done: `apply()` on the UI thread (it checks it is still wanted)."""

    def __init__(self, apply: Callable[[], None]) -> None:
        super().__init__()
        self.apply = apply


def pattern_error(text: str, exc: PatternError) -> str:
    """One line that points at the bad token: `unknown pattern ~Q at column 11: ~f haddad ▶~Q`."""
    pos = max(0, min(exc.position, len(text)))
    shown = sanitize_line(text[:pos]) + "▶" + sanitize_line(text[pos:])
    return f"{exc.message} at column {pos + 1}: {shown}"[:200]


def parse_or_say(view: MainView, text: str) -> Pattern | None:
    """The pattern, or None after one line saying what is wrong with it."""
    try:
        return parse(text)
    except PatternError as exc:
        view.notify(pattern_error(text, exc), severity="error", markup=False, timeout=6)
        return None


def offline_note(result: Result) -> str:
    n = result.unknown_count
    what = ", ".join(format_pattern(q) for q in result.unanswered) or "some terms"
    return (f"offline: {what} not decided for {n:,} message{'s' if n != 1 else ''}"
            " (body not cached)")


@dataclass
class FolderMatch:
    ids: set[int] = field(default_factory=set)
    note: str = ""


def match_folder(store: Store, svc: AccountService | None, offline: bool, folder_id: int, folder: str,
                 query: str, pattern: Pattern) -> FolderMatch:
    """The local ids of one folder matching `pattern` (see the module doc)."""
    local = evaluate(store, pattern, [folder_id])
    out = FolderMatch({h.id for h in local.hits})
    if not local.unknown:
        return out
    if offline or svc is None:
        out.note = offline_note(local)
        return out
    try:
        out.ids = set(svc.search(folder, query))  # (the store's answer merged with the server's)
    except Unsupported:
        out.note = f"{offline_note(local).removeprefix('offline: ')}: the server cannot be asked"
    except Exception as exc:  # the network: the store's answer stands
        out.note = f"answered from the local store ({sanitize_line(str(exc))[:80]})"
    return out


@dataclass
class AllMatch:
    hits: list[tuple[str, int, int]] = field(default_factory=list)  # (account, folder id, local id)
    notes: list[str] = field(default_factory=list)


def match_all(stores: Mapping[str, Store], services: Mapping[str, AccountService], offline: bool,
              query: str, pattern: Pattern, *, ask_servers: bool = True) -> AllMatch:
    """Every selectable folder of every account, newest first. ask_servers=False: the store alone
    (the saved searches' live counts)."""
    found: list[tuple[int, str, int, int]] = []  # (date, account, folder id, id)
    notes: list[str] = []
    for account, store in stores.items():
        folders = dict(store.db.execute("SELECT id, name FROM folders WHERE selectable AND NOT gone"))
        local = evaluate(store, pattern, list(folders), unknown=ask_servers)
        dates = {h.id: h.date or 0 for h in local.hits}
        by_folder: dict[int, set[int]] = {}
        for h in local.hits:
            by_folder.setdefault(h.folder_id, set()).add(h.id)
        svc = services.get(account)
        for fid in local.unknown:
            if offline or svc is None or fid not in folders:
                continue
            m = match_folder(store, svc, offline, fid, folders[fid], query, pattern)
            by_folder[fid] = m.ids
            if m.note:
                notes.append(f"{account}: {m.note}")
        if local.unknown and (offline or svc is None):
            notes.append(offline_note(local))
        missing = [i for ids in by_folder.values() for i in ids if i not in dates]
        for fid, ids in by_folder.items():
            need = [i for i in ids if i in missing]
            if need:
                dates.update({i: r.date or 0 for i, r in store.rows(fid, need).items()})
            found += [(dates.get(i, 0), account, fid, i) for i in ids]
    found.sort(key=lambda t: (t[0], t[3]), reverse=True)
    return AllMatch([(a, f, i) for _d, a, f, i in found], notes)


def run_finding(view: MainView, accounts: Iterable[str], work: Callable[[dict[str, Store]], Any],
                done: Callable[[Any], None], failed: Callable[[BaseException], None] | None = None) -> None:
    """work({account: own Store}) in a thread; done(result) (or failed(error)) on the UI thread."""
    app = view.tapp
    paths = {a: app.stores[a].path for a in accounts if a in app.stores}
    post = view.post_message

    def thread() -> None:
        own = {a: Store(p) for a, p in paths.items()}
        try:
            result = work(own)
        except Exception as exc:
            err = exc
            post(Found(lambda: failed(err) if failed is not None else view.notify(
                sanitize_line(f"{type(err).__name__}: {err}"), severity="error", markup=False)))
            return
        finally:
            for st in own.values():
                st.close()
        post(Found(lambda: done(result)))  # thread-safe, never blocks

    view.run_worker(thread, thread=True, group="finding", exit_on_error=False)
