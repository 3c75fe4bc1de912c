"""Journal replay: one Email/set per folder with ifInState = the folder's Email state: keyword
patches (only the keywords the user touched), moves as mailboxIds patches, a copy as one more
mailbox, an expunge as a destroy (or, for a message also in other mailboxes, as taking this
mailbox away: IMAP's semantics). stateMismatch: the changes are fetched (server truth) and the
same intent applied again on top — the user wins for what they touched. A per-email refusal is
kept and retried, then failed (as the IMAP engine does)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from tuimail.backends.jmap.changes import catch_up
from tuimail.backends.jmap.flags import patch
from tuimail.backends.jmap.rows import as_dict, as_list, mailbox_ids
from tuimail.backends.jmap.state import FolderState
from tuimail.core.events import RowsChanged, SyncState
from tuimail.protocol.jmap import StateMismatch
from tuimail.trace import trace

if TYPE_CHECKING:
    from tuimail.backends.jmap.engine import Engine

PROGRESS_MIN = 500  # entries of one replay from which its progress is reported (a bulk action)
MAX_ATTEMPTS = 3  # a refused action is retried this many times, then kept as failed
MAX_CONFLICTS = 4  # stateMismatch -> refetch -> re-apply, at most this many times in a row


def replay(engine: Engine, folder: str) -> int:
    """The folder's pending actions in one Email/set with ifInState; on stateMismatch the
    changes are fetched and the same intents applied again (the user's intent wins for what it
    touched). Returns the number of actions the server confirmed."""
    fid = engine.store.folder_id(folder)
    if fid is None:
        return 0
    entries = engine.store.journal_claim(fid)
    if not entries:
        return 0
    # a bulk action of thousands: Email/set calls of at most the server's maxObjectsInSet
    # messages each (all of one message's entries in one call), progress after each
    session = engine.client.session or engine.client.fetch_session()
    size = max(1, session.limit("maxObjectsInSet", 500))
    chunks: list[list] = [[]]
    sids: set[str | None] = set()
    for e in entries:
        if e.sid not in sids and len(sids) >= size:
            chunks.append([])
            sids = set()
        sids.add(e.sid)
        chunks[-1].append(e)
    done = 0
    for i, chunk in enumerate(chunks):
        got = _replay_chunk(engine, fid, folder, chunk)
        if got is None:  # (released: a later sync sends them)
            engine.store.journal_release(e.id for c in chunks[i + 1:] for e in c)
            return done
        done += got
        if len(entries) >= PROGRESS_MIN:
            sent = sum(len(c) for c in chunks[:i + 1])
            engine.emit(SyncState(engine.account.name, "syncing", folder, sent, len(entries),
                                  engine.store.pending_count()))
    return done


def _replay_chunk(engine: Engine, fid: int, folder: str, entries: list) -> int | None:
    """One Email/set of `entries` (ifInState; on stateMismatch the changes are fetched and it
    is tried again); None when they were released unsent."""
    for _attempt in range(MAX_CONFLICTS):
        st = FolderState.load(engine.store.folder_state(fid))
        if st.mailbox is None or st.email is None:  # not filled yet: after its first sync
            engine.store.journal_release(e.id for e in entries)
            return None
        # (a catch-up may have removed rows: their entries went with them)
        alive = set(engine.store.sid_of(e.msg_id for e in entries if e.msg_id is not None))
        entries = [e for e in entries if e.msg_id in alive]
        if not entries:
            return 0
        try:
            return _replay_once(engine, fid, folder, st, entries)
        except StateMismatch:
            trace(f"replay {folder}: stateMismatch: refetch and apply again")
            catch_up(engine)
    engine.store.journal_release(e.id for e in entries)
    return None


def _replay_once(engine: Engine, fid: int, folder: str, st: FolderState, entries: list) -> int:
    mid = st.mailbox
    assert mid is not None
    mailbox_of = {name: s.mailbox for name, s in engine.states().values()}
    update: dict[str, dict[str, Any]] = {}
    destroy: list[str] = []
    by_sid: dict[str, list] = {}
    unmovable = []
    expunged = [e.sid for e in entries if e.op == "expunge" and e.sid]
    boxes: dict[str, dict] = {}
    if expunged:  # in other mailboxes too: only this one is taken away (as an IMAP expunge)
        boxes, _gone = engine.get_emails(expunged, ("id", "mailboxIds"))
    for e in entries:
        sid = str(e.sid)
        p = update.setdefault(sid, {})
        if e.op == "flags":
            p.update(patch(e.add_flags, e.remove_flags))
        elif e.op in ("move", "copy"):  # a copy: the same Email in one more mailbox (JMAP has no copies)
            dest = mailbox_of.get(e.dest or "")
            if dest is None:
                unmovable.append(e)
                continue
            if dest != mid:
                if e.op == "move":
                    p[f"mailboxIds/{mid}"] = None
                p[f"mailboxIds/{dest}"] = True
        elif e.op == "expunge":
            others = {k for k, v in mailbox_ids(boxes.get(sid, {})).items() if v is True} - {mid}
            if others:
                p[f"mailboxIds/{mid}"] = None
            else:
                update.pop(sid, None)
                destroy.append(sid)
        by_sid.setdefault(sid, []).append(e)
    for e in unmovable:
        _failed(engine, e, f"no folder {e.dest!r} on the server")
    update = {k: v for k, v in update.items() if v and k not in destroy}
    if not update and not destroy:
        nothing = [e for e in entries if e not in unmovable]
        engine.store.journal_done(e.id for e in nothing)
        return len(nothing)
    args: dict[str, Any] = {"accountId": engine.client.account_id, "ifInState": st.email}
    if update:
        args["update"] = update
    if destroy:
        args["destroy"] = destroy
    res = engine.client.call("Email/set", args)  # StateMismatch: the caller refetches
    new_state = res.get("newState")
    ok = set(map(str, as_dict(res.get("updated")))) | set(map(str, as_list(res.get("destroyed"))))
    refused = {**as_dict(res.get("notUpdated")), **as_dict(res.get("notDestroyed"))}
    done = 0
    for sid, group in by_sid.items():
        if sid in refused:
            err = refused[sid] if isinstance(refused[sid], dict) else {}
            if err.get("type") == "notFound":  # gone on the server: the removal wins
                _remove_everywhere(engine, sid)
                continue
            for e in group:
                _failed(engine, e, f"{err.get('type') or 'refused'}: {err.get('description') or ''}".strip(": "))
            continue
        if sid not in ok and sid not in update and sid not in destroy:
            engine.store.journal_done(e.id for e in group)  # (nothing to send: e.g. a move to here)
            done += len(group)
            continue
        for e in group:
            if e.op == "move" and e.msg_id is not None:
                dest_fid = engine.store.folder_id(e.dest or "")
                if dest_fid is not None:
                    engine.store.move_row(fid, e.msg_id, dest_fid, sid)
                    engine.emit(RowsChanged(engine.account.name, fid, removed=(e.msg_id,)))
                    engine.emit(RowsChanged(engine.account.name, dest_fid, added=(e.msg_id,)))
                else:
                    removed = engine.store.remove_sids(fid, [sid])
                    engine.emit(RowsChanged(engine.account.name, fid, removed=tuple(removed)))
            elif e.op == "copy" and e.msg_id is not None:
                dest_fid = engine.store.folder_id(e.dest or "")
                if dest_fid is not None and dest_fid != fid:
                    new = engine.store.copy_rows(fid, [(e.msg_id, sid)], dest_fid)
                    if new:
                        engine.emit(RowsChanged(engine.account.name, dest_fid, added=tuple(new)))
            elif e.op == "expunge":
                if sid in destroy:
                    _remove_everywhere(engine, sid)
                else:
                    removed = engine.store.remove_sids(fid, [sid])
                    engine.emit(RowsChanged(engine.account.name, fid, removed=tuple(removed)))
        engine.store.journal_done(e.id for e in group)
        done += len(group)
    # Our own change is the only one between the state we named and the new one: the
    # folders at that state are at the new one, their rows already showing it.
    if isinstance(new_state, str) and res.get("oldState") in (None, st.email):
        for f, (_n, s) in engine.states().items():
            if s.email == st.email:
                engine.set_state(f, email=new_state)
    return done


def _remove_everywhere(engine: Engine, sid: str) -> None:
    for fid in engine.states():
        removed = engine.store.remove_sids(fid, [sid])
        if removed:
            engine.emit(RowsChanged(engine.account.name, fid, removed=tuple(removed)))


def _failed(engine: Engine, entry: Any, error: str) -> None:
    final = entry.attempts + 1 >= MAX_ATTEMPTS
    engine.store.journal_failed(entry.id, error, final=final)
    note = "; kept as failed (see `tuimail pending`)" if final else ""
    engine.emit(SyncState(engine.account.name, "error", entry.folder, error=f"{entry.op} failed: {error}{note}"))
