"""The JMAP sync engine: keeps one account's store and a JMAP server consistent (RFC 8620/8621).

- Mailboxes: Mailbox/get (all, with roles) -> store folders, named by their path ("Parent/Child";
  the inbox role is "INBOX"). Afterwards Mailbox/changes since the stored state; any change (or a
  state the server cannot calculate from) is a new Mailbox/get, which is a few KB.
- First fill of a folder: Email/query inMailbox sorted by receivedAt newest first + Email/get by
  back-reference, in one request: the first screen; then the rest in windows anchored on the last
  id seen (a removal elsewhere cannot shift a message out of the walk), each committed as it comes.
  The folder's state is the Email state of the first answer: what changed during the walk comes
  with the next Email/changes.
- Changes: Email/changes since each folder's stored Email state (folders filled at different
  times form groups; usually one), following hasMoreChanges; the Mailbox/changes and the first
  group's Email/changes share one request, so a resync that finds nothing is one small request.
  Created emails are fetched with the header properties, updated ones with only mailboxIds and
  keywords (plus the headers of any that arrived in a folder). A message in several mailboxes is
  a row in each folder. A state the server cannot calculate from (cannotCalculateChanges, or
  Cyrus's invalidArguments) resyncs that folder: all its ids by Email/query, compared with the rows.
- Journal replay: one Email/set per folder with ifInState = the folder's Email state: keyword
  patches (only the keywords the user touched), moves as mailboxIds patches, an expunge as a
  destroy (or, for a message also in other mailboxes, as taking this mailbox away: IMAP's
  semantics). stateMismatch: the changes are fetched (server truth) and the same intent applied
  again on top — the user wins for what they touched. A per-email refusal is kept and retried,
  then failed (as the IMAP engine does).

Server ids are JMAP Email ids (immutable, account-wide: a move keeps the id). Events carry local ids.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from typing import Any

from tuimail.backends.base import EngineBase
from tuimail.backends.jmap.flags import patch, to_canonical
from tuimail.backends.jmap.state import FolderState
from tuimail.core.events import Event, FoldersChanged, RowsChanged, SyncState
from tuimail.core.flags import SEEN
from tuimail.core.summary import FolderSummary, SyncSummary
from tuimail.errors import CommandFailed, ProtocolError
from tuimail.protocol.jmap import JmapClient, StateInvalid, StateMismatch
from tuimail.protocol.jmap.errors import MethodError
from tuimail.protocol.jmap.mail import HEADER_PROPERTIES, Changes, changes, changes_many, mailboxes
from tuimail.store import BodyCache, Store
from tuimail.trace import trace

FIRST_WINDOW = 200  # the first screen's worth, in the first request
PROGRESS_MIN = 500  # entries of one replay from which its progress is reported (a bulk action)
WINDOW = 2000  # later windows (bounded by the server's maxObjectsInGet)
MAX_ATTEMPTS = 3  # a refused action is retried this many times, then kept as failed
MAX_CONFLICTS = 4  # stateMismatch -> refetch -> re-apply, at most this many times in a row
LIGHT = ("id", "mailboxIds", "keywords")
# What a row needs and nothing more (no blobId/threadId: the reader asks for those when it opens one)
HEADERS = tuple(p for p in HEADER_PROPERTIES if p not in ("blobId", "threadId"))
DELIMITER = "/"


class Engine(EngineBase):
    """Runs on the thread that owns `client` (not thread-safe). `emit` must not block."""

    def __init__(self, account: Any, store: Store, client: JmapClient, bodies: BodyCache | None = None,
                 emit: Callable[[Event], None] | None = None):
        super().__init__(account, store, bodies, emit)
        self.client = client
        self.mode = "jmap"
        self._summaries: dict[str, FolderSummary] = {}

    # ------------------------------------------------------------------ helpers

    def _limit(self) -> int:
        session = self.client.session or self.client.fetch_session()
        return max(1, min(WINDOW, session.limit("maxObjectsInGet", 500)))

    def _summary(self, name: str) -> FolderSummary:
        s = self._summaries.get(name)
        if s is None:
            s = self._summaries[name] = FolderSummary(name)
        return s

    def _states(self) -> dict[int, tuple[str, FolderState]]:
        """fid -> (name, state) of every folder that is a mailbox on the server."""
        out = {}
        for f in self.store.folders():
            st = FolderState.load(f.state)
            if st.mailbox is not None and not f.gone:
                out[f.id] = (f.name, st)
        return out

    def _wanted(self, name: str, role: str | None) -> bool:
        limit = getattr(self.account, "folders", None)
        return not limit or name in limit or role == "inbox"

    def _set_state(self, fid: int, **kw: str | None) -> None:
        st = FolderState.load(self.store.folder_state(fid)).but(**kw)
        self.store.set_folder_state(fid, st.dump())

    # ------------------------------------------------------------------ whole account

    def sync_all(self, first: str | None = None, only: Iterable[str] | None = None) -> SyncSummary:
        """Mailboxes, changes since the stored states, the journal, then folders never filled
        (`first`, then INBOX, then the others). `only`: just these folders' fill and replay."""
        t0 = time.monotonic()
        self._summaries = {}
        states = self._states()
        mstate = next((st.mailboxes for _, st in states.values() if st.mailboxes), None)
        groups = self._groups(states)
        since: dict[str, str] = {}
        if mstate:
            since["Mailbox"] = mstate
        first_group = next(iter(groups), None)
        if first_group is not None:
            since["Email"] = first_group
        got = self._changes(since) if since else {}
        mch = got.get("Mailbox")
        if mstate is None or mch is None or not (mch.empty or mch.counts_only):
            self.sync_mailboxes()
            states = self._states()
        elif mch.new_state != mstate:  # only counts changed (new mail, flags): the store counts its own rows
            for fid in states:
                self._set_state(fid, mailboxes=mch.new_state)
            states = self._states()
        wanted = set(only) if only is not None else None
        # folders filled before: their changes (the first group's are in hand already)
        for state, fids in self._groups(states).items():
            if state == first_group and "Email" in got:
                ch = got["Email"]
            else:
                ch = self._changes({"Email": state}).get("Email")
            if ch is None:
                for fid in fids:
                    self.resync_folder(fid)
            else:
                self._apply(ch, fids)
        # the user's actions
        for name in sorted(self.store.pending_folders()):
            if wanted is None or name in wanted:
                self._summary(name).replayed += self.replay(name)
        # folders never filled: the one the user looks at, INBOX, the rest
        todo = [(fid, name) for fid, (name, st) in self._states().items() if st.email is None
                and (wanted is None or name in wanted)]
        todo.sort(key=lambda x: (x[1] != first, x[1] != "INBOX", x[1]))
        for i, (fid, name) in enumerate(todo):
            self.emit(SyncState(self.account.name, "syncing", name, i, len(todo), self.store.pending_count()))
            self.fill_folder(fid)
        if len(self._groups(self._states())) > 1:
            # folders at different states (filled during this sync, or while mail arrived): each
            # catches up now, so the next resync is again the one request for all of them
            self.catch_up()
        for fid, (name, _st) in self._states().items():
            if wanted is None or name in wanted:
                self.update_threads(fid)
                self.store.set_folder_state(fid, synced=True)
        summary = SyncSummary(mode=self.mode)
        names = [name for name, _ in self._states().values() if wanted is None or name in wanted]
        summary.folders = [self._summaries.get(n) or FolderSummary(n, skipped=True) for n in sorted(names)]
        summary.seconds = time.monotonic() - t0
        self.index_after_sync(summary, t0)  # (a headless first fill leaves it for later)
        self.finish(summary)
        self.emit(FoldersChanged(self.account.name))
        return summary

    def _groups(self, states: dict[int, tuple[str, FolderState]]) -> dict[str, list[int]]:
        groups: dict[str, list[int]] = {}
        for fid, (_name, st) in states.items():
            if st.email is not None:
                groups.setdefault(st.email, []).append(fid)
        return groups

    def _changes(self, since: dict[str, str]) -> dict[str, Changes | None]:
        """Changes of each type since its state, in one request where all are good; None for a
        type whose state the server cannot calculate from (resync)."""
        try:
            return dict(changes_many(self.client, since))
        except StateInvalid:
            pass
        out: dict[str, Changes | None] = {}
        for type_, state in since.items():
            try:
                out[type_] = changes(self.client, type_, state)
            except StateInvalid as exc:
                trace(f"{type_} state {state}: {exc.type}: resync")
                out[type_] = None
        return out

    def catch_up(self) -> None:
        """Email/changes for every filled folder (server truth), e.g. after a stateMismatch."""
        for state, fids in self._groups(self._states()).items():
            ch = self._changes({"Email": state}).get("Email")
            if ch is None:
                for fid in fids:
                    self.resync_folder(fid)
            else:
                self._apply(ch, fids)

    # ------------------------------------------------------------------ mailboxes

    def sync_mailboxes(self) -> dict[str, int]:
        """Mailbox/get -> the store's folders; mailbox id -> folder id. A folder no longer on the
        server goes (kept as gone while actions on it wait, as for IMAP)."""
        state, boxes = mailboxes(self.client)
        by_id = {str(b.get("id")): b for b in boxes if isinstance(b, dict) and b.get("id")}
        names: dict[str, str] = {}

        def path(mid: str, depth: int = 0) -> str:
            if mid in names:
                return names[mid]
            b = by_id[mid]
            if b.get("role") == "inbox" and not b.get("parentId"):
                name = "INBOX"
            else:
                name = str(b.get("name") or mid)
                parent = b.get("parentId")
                if isinstance(parent, str) and parent in by_id and depth < 20:
                    name = path(parent, depth + 1) + DELIMITER + name
            names[mid] = name
            return name

        taken: dict[str, str] = {}
        # two mailboxes under one path (or one named like the inbox): the second is told apart
        for mid in sorted(by_id, key=lambda m: by_id[m].get("role") != "inbox"):
            name = path(mid)
            if name in taken:
                names[mid] = name = f"{name} ({mid})"
            taken[name] = mid
        overrides = {v: k for k, v in (getattr(self.account, "roles", None) or {}).items()}
        known = {f.name: f for f in self.store.folders()}
        out: dict[str, int] = {}
        for mid, b in by_id.items():
            name = path(mid)
            role = b.get("role") if isinstance(b.get("role"), str) else None
            role = overrides.get(name, role)
            if not self._wanted(name, role):
                continue
            fid = self.store.upsert_folder(name, DELIMITER, (), role, True)
            st = FolderState.load(self.store.folder_state(fid))
            if st.mailbox is not None and st.mailbox != mid:  # another mailbox under an old name
                self.store.reset_folder(fid, None)
                st = FolderState()
                self.emit(RowsChanged(self.account.name, fid, reset=True))
            st = st.but(mailbox=mid, mailboxes=state)
            total, unread = b.get("totalEmails"), b.get("unreadEmails")
            self.store.set_folder_state(fid, st.dump(), server_total=total if isinstance(total, int) else None,
                                        server_unseen=unread if isinstance(unread, int) else None)
            out[mid] = fid
        for name in sorted(set(known) - {names[m] for m in out}):
            if known[name].gone:
                continue
            what = self.store.folder_vanished(name)
            if what == "gone":
                self.notes.append(f"{name} is gone from the server; its waiting actions failed")
        self.emit(FoldersChanged(self.account.name))
        return out

    # ------------------------------------------------------------------ first fill

    def fill_folder(self, fid: int) -> FolderSummary:
        """The folder's messages newest first: the first screen in one request, then windows
        anchored on the last id seen; the folder's state is the Email state of the first answer."""
        fi = self.store.folder(fid, counts=False)
        assert fi is not None
        st = FolderState.load(fi.state)
        res = self._summary(fi.name)
        res.first = True
        mid = st.mailbox
        if mid is None:
            return res
        emails, ids, state, total = self._query_page(mid, None, FIRST_WINDOW)
        res.new += len(self._commit(fid, emails))
        self._first_window_done()
        known = set(ids)
        limit = self._limit()

        def page(anchor: str, position: int) -> tuple[list[dict], list[str], str, int | None]:
            try:
                return self._query_page(mid, anchor, limit)
            except MethodError as exc:
                if exc.type != "anchorNotFound":
                    raise
                return self._query_page(mid, None, limit, position=position)

        # The next window is asked for while this one is stored: the server's time and ours
        # overlap. Only the helper thread uses the client meanwhile (it is not thread-safe).
        with ThreadPoolExecutor(1, thread_name_prefix="jmap-fill") as ex:
            ahead = ex.submit(page, ids[-1], len(known)) if ids and (total is None or len(known) < total) else None
            while ahead is not None:
                emails, ids, _s, total = ahead.result()
                if known.issuperset(ids):  # a server that does not move on: stop (the next sync goes on)
                    break
                known.update(ids)
                more = bool(ids) and (total is None or len(known) < total)
                ahead = ex.submit(page, ids[-1], len(known)) if more else None
                try:
                    res.new += len(self._commit(fid, emails))
                except BaseException:
                    if ahead is not None:
                        ahead.cancel()
                        with contextlib.suppress(Exception):
                            ahead.result()
                    raise
        self.store.set_folder_state(fid, st.but(email=state).dump(), server_total=total, synced=True)
        self.store.set_folder_error(fid, None)
        self.update_threads(fid)
        self.emit(FoldersChanged(self.account.name))
        return res

    def _query_page(self, mailbox: str, anchor: str | None, limit: int, position: int = 0,
                    properties: Sequence[str] | None = HEADERS
                    ) -> tuple[list[dict], list[str], str, int | None]:
        """Email/query (newest first, after `anchor` or from `position`) + Email/get of those ids
        by back-reference: (emails, ids, Email state, total)."""
        acc = self.client.account_id
        batch = self.client.batch()
        q: dict[str, Any] = {"accountId": acc, "filter": {"inMailbox": mailbox},
                             "sort": [{"property": "receivedAt", "isAscending": False}],
                             "limit": limit, "calculateTotal": True}
        if anchor is not None:
            q.update(anchor=anchor, anchorOffset=1)
        else:
            q["position"] = position
        qr = batch.call("Email/query", q)
        g: dict[str, Any] = {"accountId": acc, "#ids": qr.ref("/ids")}
        g["properties"] = list(properties) if properties is not None else ["id"]
        gr = batch.call("Email/get", g)
        res = self.client.send(batch)
        qa, ga = res[qr], res[gr]
        ids = [str(i) for i in _seq(qa.get("ids"))]
        total = qa.get("total")
        state = ga.get("state")
        if not isinstance(state, str):
            raise ProtocolError("JMAP server sent no Email state")
        return _emails(ga.get("list")), ids, state, total if isinstance(total, int) else None

    def _first_window_done(self) -> None:
        hook, self.after_first_window = self.after_first_window, None
        if hook is not None:
            hook()

    def _commit(self, fid: int, emails: list[dict]) -> list[int]:
        """Store a window of emails (oldest first: the store appends local ids); their local ids."""
        rows = [header_row(e) for e in sorted(emails, key=lambda e: str(e.get("receivedAt") or ""))]
        ids = self.store.insert_headers(fid, rows)
        trace(f"window committed {len(rows)}")
        if ids:
            self.emit(RowsChanged(self.account.name, fid, added=tuple(ids)))
        return ids

    # ------------------------------------------------------------------ changes

    def _get(self, ids: Sequence[str], properties: Sequence[str]) -> tuple[dict[str, dict], set[str]]:
        """Email/get in chunks: ({id: email}, ids not found)."""
        found: dict[str, dict] = {}
        missing: set[str] = set()
        limit = self._limit()
        for i in range(0, len(ids), limit):
            res = self.client.call("Email/get", {"accountId": self.client.account_id,
                                                 "ids": list(ids[i:i + limit]), "properties": list(properties)})
            for e in _emails(res.get("list")):
                found[e["id"]] = e
            missing.update(str(x) for x in _seq(res.get("notFound")))
        return found, missing

    def _apply(self, ch: Changes, fids: list[int]) -> None:
        """Email changes to these folders (all at ch.old_state); then they are at ch.new_state."""
        if not ch.empty:
            emails, missing = self._get(ch.created, HEADERS) if ch.created else ({}, set())
            light, gone = self._get(ch.updated, LIGHT) if ch.updated else ({}, set())
            emails.update({k: v for k, v in light.items() if k not in emails})
            destroyed = set(ch.destroyed) | missing | gone
            self._reconcile(fids, emails, destroyed, new=True)
        for fid in fids:
            self._set_state(fid, email=ch.new_state)

    def _reconcile(self, fids: list[int], emails: dict[str, dict], destroyed: set[str], *, new: bool) -> None:
        """Server truth for these emails in these folders: rows added where an email arrived
        (fetching their headers if only the light properties are in hand), flags updated,
        rows removed where it left or was destroyed."""
        states = self._states()
        want_headers: set[str] = set()
        plans = []
        for fid in fids:
            name, st = states.get(fid, ("", FolderState()))
            mid = st.mailbox
            if mid is None:
                continue
            present = self.store.ids_of(fid, [*emails, *destroyed])
            add = [e for sid, e in emails.items() if _boxes(e).get(mid) is True and sid not in present]
            keep = [(sid, *to_canonical(e.get("keywords")), None) for sid, e in emails.items()
                    if _boxes(e).get(mid) is True and sid in present]
            drop = [sid for sid in present if sid in destroyed
                    or (sid in emails and _boxes(emails[sid]).get(mid) is not True)]
            want_headers.update(str(e["id"]) for e in add if "subject" not in e)
            plans.append((fid, name, add, keep, drop))
        full: dict[str, dict] = {}
        if want_headers:
            full, _gone = self._get(sorted(want_headers), HEADERS)
        for fid, name, add, keep, drop in plans:
            res = self._summary(name)
            if drop:
                removed = self.store.remove_sids(fid, drop)
                res.vanished += len(removed)
                if removed:
                    self.emit(RowsChanged(self.account.name, fid, removed=tuple(removed)))
            if keep:
                upd = self.store.apply_server_flags(fid, keep)
                res.flags += len(upd)
                if upd:
                    self.emit(RowsChanged(self.account.name, fid, ids=tuple(upd)))
            add = [full.get(str(e["id"]), e) for e in add]
            add = [e for e in add if "subject" in e]
            if add:
                ids = self._commit(fid, add)
                res.new += len(ids)
                if new:
                    res.unseen_new += sum(1 for e in add if not (e.get("keywords") or {}).get("$seen"))

    def resync_folder(self, fid: int) -> None:
        """The server cannot tell the changes since the folder's state: every id of the mailbox
        by Email/query, compared with the rows (removed, added, flags refetched); its state then
        is the Email state from before the walk (what changed during it comes next time)."""
        st = FolderState.load(self.store.folder_state(fid))
        if st.mailbox is None:
            return
        limit = self._limit()
        _e, ids, state, total = self._query_page(st.mailbox, None, limit, properties=("id",))
        server = list(dict.fromkeys(ids))
        while ids and (total is None or len(server) < total):
            _e, ids, _s, total = self._query_page(st.mailbox, None, limit, position=len(server), properties=("id",))
            have = set(server)
            fresh_ids = [i for i in dict.fromkeys(ids) if i not in have]
            if not fresh_ids:
                break
            server += fresh_ids
        local = set(self.store.local_sids(fid))
        cached = [s for s in server if s in local]
        emails, gone = self._get(cached, LIGHT) if cached else ({}, set())
        fresh = [s for s in server if s not in local]
        if fresh:
            more, gone2 = self._get(fresh, HEADERS)
            emails.update(more)
            gone |= gone2
        destroyed = (local - set(server)) | gone
        self._reconcile([fid], emails, destroyed, new=False)
        fi = self.store.folder(fid, counts=False)
        if fi is not None:
            self._summary(fi.name).reset = True
        self._set_state(fid, email=state)

    # ------------------------------------------------------------------ journal replay

    def replay(self, folder: str) -> int:
        """The folder's pending actions in one Email/set with ifInState; on stateMismatch the
        changes are fetched and the same intents applied again (the user's intent wins for what it
        touched). Returns the number of actions the server confirmed."""
        fid = self.store.folder_id(folder)
        if fid is None:
            return 0
        entries = self.store.journal_claim(fid)
        if not entries:
            return 0
        # a bulk action of thousands: Email/set calls of at most the server's maxObjectsInSet
        # messages each (all of one message's entries in one call), progress after each
        session = self.client.session or self.client.fetch_session()
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
            got = self._replay_chunk(fid, folder, chunk)
            if got is None:  # (released: a later sync sends them)
                self.store.journal_release(e.id for c in chunks[i + 1:] for e in c)
                return done
            done += got
            if len(entries) >= PROGRESS_MIN:
                sent = sum(len(c) for c in chunks[:i + 1])
                self.emit(SyncState(self.account.name, "syncing", folder, sent, len(entries),
                                    self.store.pending_count()))
        return done

    def _replay_chunk(self, fid: int, folder: str, entries: list) -> int | None:
        """One Email/set of `entries` (ifInState; on stateMismatch the changes are fetched and it
        is tried again); None when they were released unsent."""
        for _attempt in range(MAX_CONFLICTS):
            st = FolderState.load(self.store.folder_state(fid))
            if st.mailbox is None or st.email is None:  # not filled yet: after its first sync
                self.store.journal_release(e.id for e in entries)
                return None
            # (a catch-up may have removed rows: their entries went with them)
            alive = set(self.store.sid_of(e.msg_id for e in entries if e.msg_id is not None))
            entries = [e for e in entries if e.msg_id in alive]
            if not entries:
                return 0
            try:
                return self._replay_once(fid, folder, st, entries)
            except StateMismatch:
                trace(f"replay {folder}: stateMismatch: refetch and apply again")
                self.catch_up()
        self.store.journal_release(e.id for e in entries)
        return None

    def _replay_once(self, fid: int, folder: str, st: FolderState, entries: list) -> int:
        mid = st.mailbox
        assert mid is not None
        mailbox_of = {name: s.mailbox for name, s in self._states().values()}
        update: dict[str, dict[str, Any]] = {}
        destroy: list[str] = []
        by_sid: dict[str, list] = {}
        unmovable = []
        expunged = [e.sid for e in entries if e.op == "expunge" and e.sid]
        boxes: dict[str, dict] = {}
        if expunged:  # in other mailboxes too: only this one is taken away (as an IMAP expunge)
            boxes, _gone = self._get(expunged, ("id", "mailboxIds"))
        for e in entries:
            sid = str(e.sid)
            p = update.setdefault(sid, {})
            if e.op == "flags":
                p.update(patch(e.add_flags, e.remove_flags))
            elif e.op == "move":
                dest = mailbox_of.get(e.dest or "")
                if dest is None:
                    unmovable.append(e)
                    continue
                if dest != mid:
                    p[f"mailboxIds/{mid}"] = None
                    p[f"mailboxIds/{dest}"] = True
            elif e.op == "copy":  # the same Email in one more mailbox (JMAP has no copies)
                dest = mailbox_of.get(e.dest or "")
                if dest is None:
                    unmovable.append(e)
                    continue
                if dest != mid:
                    p[f"mailboxIds/{dest}"] = True
            elif e.op == "expunge":
                others = {k for k, v in _boxes(boxes.get(sid, {})).items() if v is True} - {mid}
                if others:
                    p[f"mailboxIds/{mid}"] = None
                else:
                    update.pop(sid, None)
                    destroy.append(sid)
            by_sid.setdefault(sid, []).append(e)
        for e in unmovable:
            self._failed(e, f"no folder {e.dest!r} on the server")
        update = {k: v for k, v in update.items() if v and k not in destroy}
        if not update and not destroy:
            nothing = [e for e in entries if e not in unmovable]
            self.store.journal_done(e.id for e in nothing)
            return len(nothing)
        args: dict[str, Any] = {"accountId": self.client.account_id, "ifInState": st.email}
        if update:
            args["update"] = update
        if destroy:
            args["destroy"] = destroy
        res = self.client.call("Email/set", args)  # StateMismatch: the caller refetches
        new_state = res.get("newState")
        ok = set(map(str, _dict(res.get("updated")))) | set(map(str, _seq(res.get("destroyed"))))
        refused = {**_dict(res.get("notUpdated")), **_dict(res.get("notDestroyed"))}
        done = 0
        for sid, group in by_sid.items():
            if sid in refused:
                err = refused[sid] if isinstance(refused[sid], dict) else {}
                if err.get("type") == "notFound":  # gone on the server: the removal wins
                    self._remove_everywhere(sid)
                    continue
                for e in group:
                    self._failed(e, f"{err.get('type') or 'refused'}: {err.get('description') or ''}".strip(": "))
                continue
            if sid not in ok and sid not in update and sid not in destroy:
                self.store.journal_done(e.id for e in group)  # (nothing to send: e.g. a move to here)
                done += len(group)
                continue
            for e in group:
                if e.op == "move" and e.msg_id is not None:
                    dest_fid = self.store.folder_id(e.dest or "")
                    if dest_fid is not None:
                        self.store.move_row(fid, e.msg_id, dest_fid, sid)
                        self.emit(RowsChanged(self.account.name, fid, removed=(e.msg_id,)))
                        self.emit(RowsChanged(self.account.name, dest_fid, added=(e.msg_id,)))
                    else:
                        removed = self.store.remove_sids(fid, [sid])
                        self.emit(RowsChanged(self.account.name, fid, removed=tuple(removed)))
                elif e.op == "copy" and e.msg_id is not None:
                    dest_fid = self.store.folder_id(e.dest or "")
                    if dest_fid is not None and dest_fid != fid:
                        new = self.store.copy_rows(fid, [(e.msg_id, sid)], dest_fid)
                        if new:
                            self.emit(RowsChanged(self.account.name, dest_fid, added=tuple(new)))
                elif e.op == "expunge":
                    if sid in destroy:
                        self._remove_everywhere(sid)
                    else:
                        removed = self.store.remove_sids(fid, [sid])
                        self.emit(RowsChanged(self.account.name, fid, removed=tuple(removed)))
            self.store.journal_done(e.id for e in group)
            done += len(group)
        # Our own change is the only one between the state we named and the new one: the
        # folders at that state are at the new one, their rows already showing it.
        if isinstance(new_state, str) and res.get("oldState") in (None, st.email):
            for f, (_n, s) in self._states().items():
                if s.email == st.email:
                    self._set_state(f, email=new_state)
        return done

    def _remove_everywhere(self, sid: str) -> None:
        for fid in self._states():
            removed = self.store.remove_sids(fid, [sid])
            if removed:
                self.emit(RowsChanged(self.account.name, fid, removed=tuple(removed)))

    def _failed(self, entry: Any, error: str) -> None:
        final = entry.attempts + 1 >= MAX_ATTEMPTS
        self.store.journal_failed(entry.id, error, final=final)
        note = "; kept as failed (see `tuimail pending`)" if final else ""
        self.emit(SyncState(self.account.name, "error", entry.folder, error=f"{entry.op} failed: {error}{note}"))


# ---------------------------------------------------------------------------- rows


def header_row(e: dict[str, Any]) -> tuple:
    """A JMAP Email (HEADER_PROPERTIES) as the store's header row."""
    flags, kw = to_canonical(e.get("keywords"))
    date = _epoch(e.get("sentAt")) or _epoch(e.get("receivedAt"))
    mids = [m for m in _seq(e.get("messageId")) if isinstance(m, str)]
    irt = [m for m in _seq(e.get("inReplyTo")) if isinstance(m, str)]
    refs = [m for m in _seq(e.get("references")) if isinstance(m, str)]
    size = e.get("size")
    return (str(e["id"]), 0, flags, kw, date, addresses(e.get("from")), addresses(e.get("to")),
            addresses(e.get("cc")), str(e.get("subject") or ""), f"<{mids[0]}>" if mids else None,
            f"<{irt[0]}>" if irt else None, " ".join(f"<{r}>" for r in refs),
            size if isinstance(size, int) else 0, int(bool(e.get("hasAttachment"))))


_SPECIALS = set('()<>[]:;@\\,."')


_ADDR_CACHE: dict[tuple[Any, Any], str] = {}


def addresses(value: Any) -> str:
    """JMAP EmailAddress objects as header text ('"Doe, Jane" <j@x>, k@y'), decoded (as the
    IMAP rows hold them); a name with specials is quoted."""
    if isinstance(value, list) and len(value) == 1 and isinstance(value[0], dict):
        key = (value[0].get("name"), value[0].get("email"))  # (one sender: the common case, memoised)
        if isinstance(key[0], (str, type(None))) and isinstance(key[1], (str, type(None))):
            hit = _ADDR_CACHE.get(key)
            if hit is None:
                hit = _addresses(value)
                if len(_ADDR_CACHE) < 20000:
                    _ADDR_CACHE[key] = hit
            return hit
    return _addresses(value)


def _addresses(value: Any) -> str:
    out = []
    for a in _seq(value):
        if not isinstance(a, dict):
            continue
        name = str(a.get("name") or "").replace("\r", " ").replace("\n", " ").strip()
        email = str(a.get("email") or "").strip()
        if name and email:
            if any(c in _SPECIALS for c in name):
                name = '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'
            out.append(f"{name} <{email}>")
        elif email or name:
            out.append(email or name)
    return ", ".join(out)


def _epoch(value: Any) -> int | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        return int(datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp())
    except (ValueError, OverflowError):
        return None


def unseen(e: dict[str, Any]) -> bool:
    return SEEN not in to_canonical(e.get("keywords"))[0]


# A server's JSON is checked where it is used: a hostile or broken answer is skipped, never a crash.

def _dict(value: Any) -> dict:
    return value if isinstance(value, dict) else {}


def _seq(value: Any) -> list:
    return value if isinstance(value, list) else []


def _boxes(e: dict[str, Any]) -> dict:
    return _dict(e.get("mailboxIds"))


def _emails(value: Any) -> list[dict[str, Any]]:
    """The Email objects of a list that have a string id (others are skipped)."""
    return [e for e in _seq(value) if isinstance(e, dict) and isinstance(e.get("id"), str) and e["id"]]


__all__ = ["Engine", "header_row", "addresses", "CommandFailed"]
