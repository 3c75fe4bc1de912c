"""Changes since a folder's stored Email state, and the resync when the server cannot tell them.

- Email/changes since each folder's stored Email state (folders filled at different times form
  groups; usually one), following hasMoreChanges. Created emails are fetched with the header
  properties, updated ones with only mailboxIds and keywords (plus the headers of any that
  arrived in a folder). A message in several mailboxes is a row in each folder.
- A state the server cannot calculate from (cannotCalculateChanges, or Cyrus's
  invalidArguments) resyncs that folder: all its ids by Email/query, compared with the rows.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from tuimail.backends.jmap.flags import to_canonical
from tuimail.backends.jmap.rows import HEADERS, LIGHT, mailbox_ids
from tuimail.backends.jmap.state import FolderState
from tuimail.core.events import RowsChanged
from tuimail.protocol.jmap import StateInvalid
from tuimail.protocol.jmap.mail import Changes, changes, changes_many
from tuimail.trace import trace

if TYPE_CHECKING:
    from tuimail.backends.jmap.engine import Engine


def groups(states: dict[int, tuple[str, FolderState]]) -> dict[str, list[int]]:
    """The filled folders by their Email state: fids that catch up with one Email/changes."""
    out: dict[str, list[int]] = {}
    for fid, (_name, st) in states.items():
        if st.email is not None:
            out.setdefault(st.email, []).append(fid)
    return out


def fetch_changes(engine: Engine, since: dict[str, str]) -> dict[str, Changes | None]:
    """Changes of each type since its state, in one request where all are good; None for a
    type whose state the server cannot calculate from (resync)."""
    try:
        return dict(changes_many(engine.client, since))
    except StateInvalid:
        pass
    out: dict[str, Changes | None] = {}
    for type_, state in since.items():
        try:
            out[type_] = changes(engine.client, type_, state)
        except StateInvalid as exc:
            trace(f"{type_} state {state}: {exc.type}: resync")
            out[type_] = None
    return out


def catch_up(engine: Engine) -> None:
    """Email/changes for every filled folder (server truth), e.g. after a stateMismatch."""
    for state, fids in groups(engine.states()).items():
        apply_changes(engine, fetch_changes(engine, {"Email": state}).get("Email"), fids)


def apply_changes(engine: Engine, ch: Changes | None, fids: list[int]) -> None:
    """Email changes to these folders (all at ch.old_state); then they are at ch.new_state.
    None (the server cannot calculate the changes since their state): each folder resyncs."""
    if ch is None:
        for fid in fids:
            resync_folder(engine, fid)
        return
    if not ch.empty:
        emails, missing = engine.get_emails(ch.created, HEADERS) if ch.created else ({}, set())
        light, gone = engine.get_emails(ch.updated, LIGHT) if ch.updated else ({}, set())
        emails.update({k: v for k, v in light.items() if k not in emails})
        destroyed = set(ch.destroyed) | missing | gone
        reconcile(engine, fids, emails, destroyed, new=True)
    for fid in fids:
        engine.set_state(fid, email=ch.new_state)


def reconcile(engine: Engine, fids: list[int], emails: dict[str, dict], destroyed: set[str], *, new: bool) -> None:
    """Server truth for these emails in these folders: rows added where an email arrived
    (fetching their headers if only the light properties are in hand), flags updated,
    rows removed where it left or was destroyed."""
    states = engine.states()
    want_headers: set[str] = set()
    plans = []
    for fid in fids:
        name, st = states.get(fid, ("", FolderState()))
        mid = st.mailbox
        if mid is None:
            continue
        present = engine.store.ids_of(fid, [*emails, *destroyed])
        add = [e for sid, e in emails.items() if mailbox_ids(e).get(mid) is True and sid not in present]
        keep = [(sid, *to_canonical(e.get("keywords")), None) for sid, e in emails.items()
                if mailbox_ids(e).get(mid) is True and sid in present]
        drop = [sid for sid in present if sid in destroyed
                or (sid in emails and mailbox_ids(emails[sid]).get(mid) is not True)]
        want_headers.update(str(e["id"]) for e in add if "subject" not in e)
        plans.append((fid, name, add, keep, drop))
    full: dict[str, dict] = {}
    if want_headers:
        full, _gone = engine.get_emails(sorted(want_headers), HEADERS)
    for fid, name, add, keep, drop in plans:
        res = engine.summary(name)
        if drop:
            removed = engine.store.remove_sids(fid, drop)
            res.vanished += len(removed)
            if removed:
                engine.emit(RowsChanged(engine.account.name, fid, removed=tuple(removed)))
        if keep:
            upd = engine.store.apply_server_flags(fid, keep)
            res.flags += len(upd)
            if upd:
                engine.emit(RowsChanged(engine.account.name, fid, ids=tuple(upd)))
        add = [full.get(str(e["id"]), e) for e in add]
        add = [e for e in add if "subject" in e]
        if add:
            ids = engine.commit(fid, add)
            res.new += len(ids)
            if new:
                res.unseen_new += sum(1 for e in add if not (e.get("keywords") or {}).get("$seen"))


def resync_folder(engine: Engine, fid: int) -> None:
    """The server cannot tell the changes since the folder's state: every id of the mailbox
    by Email/query, compared with the rows (removed, added, flags refetched); its state then
    is the Email state from before the walk (what changed during it comes next time)."""
    st = FolderState.load(engine.store.folder_state(fid))
    if st.mailbox is None:
        return
    limit = engine.limit()
    _e, ids, state, total = engine.query_page(st.mailbox, None, limit, properties=("id",))
    server = list(dict.fromkeys(ids))
    while ids and (total is None or len(server) < total):
        _e, ids, _s, total = engine.query_page(st.mailbox, None, limit, position=len(server), properties=("id",))
        have = set(server)
        fresh_ids = [i for i in dict.fromkeys(ids) if i not in have]
        if not fresh_ids:
            break
        server += fresh_ids
    local = set(engine.store.local_sids(fid))
    cached = [s for s in server if s in local]
    emails, gone = engine.get_emails(cached, LIGHT) if cached else ({}, set())
    fresh = [s for s in server if s not in local]
    if fresh:
        more, gone2 = engine.get_emails(fresh, HEADERS)
        emails.update(more)
        gone |= gone2
    destroyed = (local - set(server)) | gone
    reconcile(engine, [fid], emails, destroyed, new=False)
    fi = engine.store.folder(fid, counts=False)
    if fi is not None:
        engine.summary(fi.name).reset = True
    engine.set_state(fid, email=state)
