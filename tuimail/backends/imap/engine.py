"""The sync engine: keeps one account's store and server consistent (DESIGN.md §2).

Per folder: SELECT (with QRESYNC when we have state) -> apply VANISHED and changed flags (pending
user intents stay on top) -> replay the journal (conditional STORE, MOVE, EXPUNGE) -> fetch the
headers of every server uid we lack, newest first, one committed window at a time -> save
UIDNEXT/HIGHESTMODSEQ last. Every step commits on its own and is idempotent, so a crash or a cut
connection at any point leaves a store that the next run completes.

The store speaks local ids and canonical flags: this engine maps IMAP uids to server ids (the uid
in decimal) and back, flags through backends/imap/flags.py, and keeps UIDVALIDITY, UIDNEXT and
HIGHESTMODSEQ as the folder's opaque state (backends/imap/state.py). Events carry local ids.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable

from tuimail.errors import CommandFailed
from tuimail.mail.headers import summarize
from tuimail.protocol.imap import uidset, wire
from tuimail.protocol.imap.connection import FolderEntry, ImapConnection
from tuimail.store import BodyCache, Store
from tuimail.backends.base import EngineBase
from tuimail.backends.imap.flags import imap_names, server_flags, to_canonical
from tuimail.backends.imap.state import FolderState
from tuimail.core.flags import SEEN
from tuimail.trace import trace
from tuimail.core.events import Event, FoldersChanged, RowsChanged, SyncState
from tuimail.core.summary import FolderSummary, SyncSummary

FIRST_WINDOW = 300  # the first screen's worth, committed at once so the UI can draw it
WINDOW = 5000
MAX_MOVE_ATTEMPTS = 3
PROGRESS_MIN = 500  # entries in one run from which its progress is reported (a bulk action)
MODES = ("plain", "condstore", "qresync")


# a headless first fill bigger than this leaves the thread order to the next sync (_defer_threads)
FIRST_FILL_THREAD_ROWS = 20_000


class Engine(EngineBase):
    """Runs on the thread that owns `conn`. `emit` must not block."""

    def __init__(self, account, store: Store, conn: ImapConnection, bodies: BodyCache | None = None,
                 emit: Callable[[Event], None] | None = None):
        super().__init__(account, store, bodies, emit)
        self.conn = conn
        self.mode = "plain"
        self._unseen_added = 0  # rows committed unseen (FolderSummary.unseen_new)
        # (folder, MODSEQ usable) of the folder this session's last sync_folder selected: the
        # light path (selected.py) acts on it without a resync.
        self.selected: tuple[str, bool] | None = None

    # ------------------------------------------------------------------ setup

    def negotiate(self) -> str:
        """Pick QRESYNC > CONDSTORE > plain from capabilities; `sync_mode` caps it."""
        want = getattr(self.account, "sync_mode", "auto") or "auto"
        cap = MODES.index(want) if want in MODES else 2
        mode = "plain"
        if cap >= 2 and self.conn.has("QRESYNC") and self.conn.has("ENABLE"):
            if "QRESYNC" in self.conn.enable("QRESYNC"):
                mode = "qresync"
        if mode == "plain" and cap >= 1 and self.conn.has("CONDSTORE"):
            if self.conn.has("ENABLE"):
                self.conn.enable("CONDSTORE")
            mode = "condstore"
        self.mode = mode
        return mode

    # ------------------------------------------------------------------ whole account

    def sync_folders_list(self) -> list:
        """LIST, then the store's folder list follows it, except: an empty answer is ignored (a
        server or proxy fault must not wipe the store); INBOX always stays; a folder that left
        the LIST while actions on it wait is kept as gone, its actions failed (never dropped)."""
        entries = self.conn.list_folders(with_status=True)
        known = {f.name: f for f in self.store.folders()}
        if not entries:
            if known:
                self.notes.append(f"the server listed no folders; kept the {len(known)} known")
                trace("LIST answered no folders: ignored")
            return [FolderEntry(f.name, f.delimiter, tuple(f.attrs.split()), f.role)
                    for f in known.values() if not f.gone]
        seen = set()
        for e in entries:
            self.store.upsert_folder(e.name, e.delimiter, e.attrs, e.role, e.selectable)
            seen.add(e.name)
        for name in sorted(set(known) - seen):
            what = self.store.folder_vanished(name)
            if what == "gone" and not known[name].gone:
                self.notes.append(f"{name} is gone from the server; its waiting actions failed")
            elif what == "kept":
                self.notes.append(f"the server's LIST lacks {name}; kept")
        self.emit(FoldersChanged(self.account.name))
        return entries

    def sync_all(self, only: Iterable[str] | None = None, first: str | None = None) -> SyncSummary:
        t0 = time.monotonic()
        summary = SyncSummary(mode=self.mode)
        done: set[str] = set()
        inbox = self.store.folder("INBOX")
        if (inbox is None or inbox.state is None) and (only is None or "INBOX" in set(only)):
            # First run: the user is waiting for INBOX's first screen; listing (and STATUS of)
            # every folder can come after it.
            if inbox is None:
                self.store.upsert_folder("INBOX", None, (), "inbox")
                self.emit(FoldersChanged(self.account.name))  # the UI opens INBOX now
            self.emit(SyncState(self.account.name, "syncing", "INBOX", 0, 1, self.store.pending_count()))
            summary.folders.append(self.sync_one("INBOX"))
            done.add("INBOX")
        entries = self.sync_folders_list()
        wanted = set(only) if only else None
        limit = getattr(self.account, "folders", None)
        todo = [e for e in entries if e.selectable and (wanted is None or e.name in wanted)
                and (not limit or e.name in limit or e.role == "inbox") and e.name not in done]
        # the folder the user looks at first, then INBOX, then the rest
        todo.sort(key=lambda e: (e.name != first, e.role != "inbox", e.name))
        for i, e in enumerate(todo):
            self.emit(SyncState(self.account.name, "syncing", e.name, i, len(todo), self.store.pending_count()))
            summary.folders.append(self.sync_one(e.name, status=e.status or None))
        summary.seconds = time.monotonic() - t0
        self.index_after_sync(summary, t0)  # (a headless first fill leaves it for later)
        self.finish(summary)
        return summary

    def _defer_threads(self, res: FolderSummary) -> bool:
        """A headless sync (no app: index_seconds unset) that filled a big folder for the first time
        leaves its thread order for later, like the search index: derived data, computed by the
        next sync (the app's, in its sync process, right after it starts) before anything needs it
        (the threaded view; the list's date order does not). At 100k it was ~27 % of `tuimail sync`
        (6.04 s -> 4.40 s, alternated with neomutt)."""
        return self.index_seconds is None and res.first and res.new > FIRST_FILL_THREAD_ROWS

    def sync_one(self, name: str, status: dict | None = None, force: bool = False) -> FolderSummary:
        """sync_folder, but a refusal (NO/BAD) is this folder's alone: it is kept on the folder
        (shown in the tree, cleared by its next good sync) and the other folders go on. A broken
        connection still raises (NetworkError)."""
        try:
            return self.sync_folder(name, status=status, force=force)
        except CommandFailed as exc:
            error = str(exc)
            trace(f"folder {name} refused: {error}")
            fid = self.store.folder_id(name)
            if fid is not None:
                self.store.set_folder_error(fid, error)
            self.emit(FoldersChanged(self.account.name))
            return FolderSummary(name, error=error)

    # ------------------------------------------------------------------ one folder

    def _unchanged(self, fi, st: FolderState, status: dict | None) -> bool:
        if not status or st.uidvalidity is None or st.uidnext is None:
            return False
        if self.mode == "plain" or st.highestmodseq is None:
            return False  # without MODSEQ a flag change elsewhere is invisible to STATUS
        if fi.error or self.store.pending(fi.id):
            return False
        return (status.get("UIDVALIDITY") == st.uidvalidity and status.get("UIDNEXT") == st.uidnext
                and status.get("HIGHESTMODSEQ") == st.highestmodseq
                and status.get("MESSAGES") == self.store.message_count(fi.id))

    def sync_folder(self, name: str, status: dict | None = None, force: bool = False) -> FolderSummary:
        """force: SELECT even when STATUS says nothing changed (the folder IDLE will watch)."""
        res = FolderSummary(name)
        fi = self.store.folder(name)
        if fi is None:
            fid = self.store.upsert_folder(name, None, (), None)
            fi = self.store.folder(fid)
            assert fi is not None  # (just written)
        fid = fi.id
        st = FolderState.load(fi.state)
        res.first = st.uidvalidity is None
        unseen_before = self._unseen_added
        if status is None and st.uidvalidity is not None and self.mode != "plain":
            status = self.conn.status(name)
        if not force and self._unchanged(fi, st, status):
            res.skipped = True
            self.update_threads(fid)  # (one read when clean; the order a headless first fill left)
            return res

        # The cached uids as (lo, hi) runs: what QRESYNC sends as known uids, and enough to tell
        # which server uids are new.
        known = self._known(fid)
        qresync = None
        if self.mode == "qresync" and st.uidvalidity and st.highestmodseq and known:
            qresync = (st.uidvalidity, st.highestmodseq, known)
        trace(f"select {name}")
        sel = self.conn.select(name, qresync=qresync, condstore=self.mode == "condstore")

        # (no rows held: everything is fetched, whatever UIDNEXT says: a repaired store keeps
        # the folder's state but not its rows)
        old_uidnext = (st.uidnext or 1) if known else 1
        if st.uidvalidity is not None and sel.uidvalidity is not None and sel.uidvalidity != st.uidvalidity:
            st = FolderState(uidvalidity=sel.uidvalidity)
            self.store.reset_folder(fid, st.dump())
            if self.bodies is not None:
                self.bodies.forget_folder(name)
            known, old_uidnext, res.reset = [], 1, True
            self.emit(RowsChanged(self.account.name, fid, reset=True))
        elif st.uidvalidity is None and sel.uidvalidity is not None:
            st = st.but(uidvalidity=sel.uidvalidity)
            self.store.set_folder_state(fid, st.dump())

        modseq_ok = self.mode != "plain" and not sel.nomodseq and sel.highestmodseq is not None
        self.selected = (name, modseq_ok)
        server_all: list[int] | None = None
        if known and not res.reset:
            if qresync is not None:
                # VANISHED comes as runs ("1:9999999" is legal): only the uids we hold are expanded
                vanished, changed = uidset.expand(uidset.intersect(sel.vanished, known)), sel.changed
            elif modseq_ok and st.highestmodseq:
                changed = (self.conn.fetch_flags(changedsince=st.highestmodseq)
                           if sel.highestmodseq != st.highestmodseq else [])
                cached = sum(hi - lo + 1 for lo, hi in known)
                server_all = self.conn.search_uids() if sel.exists != cached or changed else None
                vanished = self._gone(fid, server_all) if server_all is not None else []
            else:
                changed = self.conn.fetch_flags()  # every uid and its flags: the plain path
                server_all = [u for u, _, _ in changed]
                vanished = self._gone(fid, server_all)
            if vanished:
                removed = self.store.remove_sids(fid, map(str, vanished))
                res.vanished = len(removed)  # (gone from the server: never a candidate below)
                if removed:
                    self.emit(RowsChanged(self.account.name, fid, removed=tuple(removed)))
            if changed:
                upd = self.store.apply_server_flags(fid, server_flags(changed))
                res.flags = len(upd)
                if upd:
                    self.emit(RowsChanged(self.account.name, fid, ids=tuple(upd)))

        res.replayed = self.replay(fid, name, sel.highestmodseq if modseq_ok else None)

        # A first fill: the newest messages are the last sequence numbers, so the first screen
        # is fetched by number, before the UID SEARCH of the whole folder.
        first_new, got = 0, set()
        if not known and old_uidnext <= 1 and server_all is None and sel.exists:
            got = set(self._fetch_first_screen(fid, sel.exists))
            first_new = len(got)

        # New mail and anything an interrupted run left out: server uids >= old UIDNEXT we lack.
        if server_all is not None and old_uidnext <= 1:
            candidates = server_all
        else:
            candidates = self.conn.search_uids(b"UID %d:*" % max(1, old_uidnext))
        missing = [u for u in candidates
                   if u >= old_uidnext and u not in got and not uidset.in_runs(known, u)]
        res.new = first_new + self.fetch_headers(fid, missing, first=WINDOW if first_new else FIRST_WINDOW)
        res.unseen_new = self._unseen_added - unseen_before

        if self.store.journal_rematch(fid):  # (entries it cannot match are kept as failed)
            self.emit(RowsChanged(self.account.name, fid, reset=True))
            res.replayed += self.replay(fid, name, None)
        if not self._defer_threads(res):
            self.update_threads(fid)
        st = FolderState(sel.uidvalidity if sel.uidvalidity is not None else st.uidvalidity,
                         sel.uidnext or (max(missing, default=0) + 1),
                         sel.highestmodseq if modseq_ok else None)
        self.store.set_folder_state(fid, st.dump(), server_total=sel.exists, synced=True)
        self.store.set_folder_error(fid, None)
        self.emit(FoldersChanged(self.account.name))
        return res

    def _known(self, fid: int) -> list[tuple[int, int]]:
        """The folder's cached uids (hidden rows included) as sorted (lo, hi) runs."""
        return uidset.ranges(map(int, self.store.local_sids(fid)))

    def _gone(self, fid: int, server_all: list[int]) -> list[int]:
        """Cached uids the server no longer has (the paths without QRESYNC's VANISHED)."""
        return sorted(set(map(int, self.store.local_sids(fid))).difference(server_all))

    def fetch_headers(self, fid: int, uids: list[int], first: int = FIRST_WINDOW) -> int:
        """Headers of `uids`, newest first, committed window by window (the first holds `first`)."""
        total = 0
        undated: list[int] = []
        for items in self.conn.fetch_header_windows(list(uidset.windows(uids, first, WINDOW))):
            total += len(self._commit_headers(fid, items, undated))
            if first == FIRST_WINDOW:
                self._first_window_done()
        self._arrival_dates(fid, undated)  # after the pipeline: no other command in flight
        return total

    def _arrival_dates(self, fid: int, uids: list[int]) -> None:
        """Messages without a (parsable) Date: header are dated by their arrival (INTERNALDATE)."""
        if not uids:
            return
        try:
            dates = self.conn.fetch_internaldates(uids)
        except CommandFailed:
            return
        changed = self.store.set_missing_dates(fid, {str(u): ts for u, ts in dates.items()})
        if changed:
            self.emit(RowsChanged(self.account.name, fid, ids=tuple(changed)))

    def _first_window_done(self) -> None:
        hook, self.after_first_window = self.after_first_window, None
        if hook is not None:
            hook()

    def _fetch_first_screen(self, fid: int, exists: int) -> list[int]:
        """The last FIRST_WINDOW messages by sequence number; their uids ([] if the server
        refused the range, e.g. after an expunge by another client: the UID path fetches them)."""
        try:
            items = self.conn.fetch_header_seq(max(1, exists - FIRST_WINDOW + 1), exists)
        except CommandFailed:
            return []
        undated: list[int] = []
        uids = self._commit_headers(fid, items, undated)
        self._first_window_done()
        self._arrival_dates(fid, undated)
        return uids

    def _commit_headers(self, fid: int, items, undated: list[int]) -> list[int]:
        """Store a window of headers (in uid order: the store appends local ids); their uids."""
        rows = []
        uids = []
        for item in sorted(items, key=_uid_of):
            flags, kw = to_canonical(item.flags)  # (memoised: a handful of distinct flag lists)
            if SEEN not in flags:
                self._unseen_added += 1
            s = summarize(item.header)
            if s["date"] is None:
                undated.append(item.uid)
            uids.append(item.uid)
            rows.append((str(item.uid), item.modseq or 0, flags, " ".join(kw), s["date"], s["from_"],
                         s["to"], s["cc"], s["subject"], s["message_id"], s["in_reply_to"], s["references"],
                         item.size, int(bool(s["has_attachment"]))))
        ids = self.store.insert_headers(fid, rows)
        trace(f"window committed {len(rows)}")
        if ids:
            self.emit(RowsChanged(self.account.name, fid, added=tuple(ids)))
        return uids

    # ------------------------------------------------------------------ journal replay

    def replay(self, fid: int, folder: str, unchangedsince: int | None, sent=None) -> int:
        """Send pending user actions for the selected folder, oldest first, in runs of one kind.

        The entries are claimed first (state 'sending', one transaction): an intent the user
        makes while their command is on the wire becomes a new entry, sent after them, and a
        confirmation deletes exactly the entries that were sent. A cut connection leaves them
        'sending', to be sent again by the next run (every command here is idempotent).
        `sent` (a selected.Sent) gets the MODSEQs the server gave the flag changes."""
        entries = self.store.journal_claim(fid)
        done = 0
        # by local id: moved or expunged by this replay (later entries went with them); a flags
        # entry was refused (later ones wait: order per message)
        gone: set[int | None] = set()
        refused: set[int | None] = set()
        i = 0
        while i < len(entries):
            e = entries[i]
            key = (e.op, e.add_flags, e.remove_flags, e.dest)
            run = [e]
            i += 1
            while i < len(entries) and (entries[i].op, entries[i].add_flags, entries[i].remove_flags,
                                        entries[i].dest) == key:
                run.append(entries[i])
                i += 1
            held = [x for x in run if x.msg_id in gone or (x.op == "flags" and x.msg_id in refused)]
            if held:
                # (re-pointed to the message's new place by move_row, deleted with it, or behind a refusal)
                self.store.journal_release(x.id for x in held if x.msg_id not in gone)
                run = [x for x in run if x not in held]
                if not run:
                    continue
            ids = [x.msg_id for x in run]
            progress = self._progress(folder, len(run))
            try:
                uids = [_uid(x.sid) for x in run]
                if e.op == "flags":
                    self._replay_flags(fid, uids, imap_names(e.add_flags), imap_names(e.remove_flags),
                                       unchangedsince, sent, progress)
                elif e.op == "move":
                    gone.update(ids)
                    self._replay_move(fid, uids, e.dest, folder, [x.message_id for x in run],
                                      [x.msg_id for x in run], progress)
                elif e.op == "copy":
                    self._replay_copy(fid, uids, e.dest, [x.msg_id for x in run], progress)
                elif e.op == "expunge":
                    gone.update(ids)
                    self.conn.expunge_uids(uids, *([progress] if progress is not None else []))
                    removed = self.store.remove_sids(fid, map(str, uids))
                    self.emit(RowsChanged(self.account.name, fid, removed=tuple(removed)))
            except (CommandFailed, ValueError) as exc:  # ValueError: an argument we refuse to send
                if e.op == "flags":
                    refused.update(ids)
                else:
                    gone.difference_update(ids)
                for x in run:
                    self._failed(fid, x, str(exc))
                continue
            self.store.journal_done(x.id for x in run)
            done += len(run)
        return done

    def _progress(self, folder: str, total: int):
        """For a run of many entries (a bulk action), the status line's "syncing F n/N" as its
        command lines go out; None for a small one (one line, nothing to watch)."""
        if total < PROGRESS_MIN:
            return None
        pending = self.store.pending_count()

        def report(n: int) -> None:
            self.emit(SyncState(self.account.name, "syncing", folder, n, total, pending))

        report(0)
        return report

    def _replay_copy(self, fid, uids, dest, ids, progress=None) -> None:
        """Copy `uids` (local ids `ids`, in the same order) to `dest`: the copies appear there at
        once where the server says their uids (COPYUID), else with dest's next sync."""
        mapping = self.conn.copy(uids, dest, progress)
        dest_id = self.store.folder_id(dest)
        if dest_id is None or not mapping:
            return
        id_of = dict(zip(uids, ids, strict=False))
        new = self.store.copy_rows(fid, [(id_of[u], str(mapping[u])) for u in uids
                                         if u in mapping and id_of.get(u) is not None], dest_id)
        if new:
            self.emit(RowsChanged(self.account.name, dest_id, added=tuple(new)))

    def _replay_flags(self, fid, uids, add, remove, unchangedsince, sent=None, progress=None) -> None:
        more = {"progress": progress} if progress is not None else {}
        modified, updated = self.conn.store_flags(uids, add, remove, unchangedsince=unchangedsince, **more)
        if sent is not None:
            got = dict(updated)  # (FETCHes of other uids included: only ours are kept)
            sent.modseq.update((u, got.get(u)) for u in uids)
        if modified:
            # Changed elsewhere since we last looked: take the server's flags, then apply the
            # user's intent on top of them (the user wins for the flags they touched).
            fresh = self.conn.fetch_flags(modified)
            self.store.apply_server_flags(fid, server_flags(fresh))
            _, updated = self.conn.store_flags([u for u, _, _ in fresh], add, remove)
            if sent is not None:
                got = dict(updated)
                sent.modseq.update((u, got.get(u)) for u, _, _ in fresh)
                sent.seen.extend(m for _, _, m in fresh)  # (applied above)
            ids = self.store.ids_of(fid, (str(u) for u, _, _ in fresh))
            self.emit(RowsChanged(self.account.name, fid, ids=tuple(ids.values())))

    def _replay_move(self, fid, uids, dest, folder=None, mids=(), ids=(), progress=None) -> None:
        """Move `uids` (local ids `ids`, in the same order) to `dest`."""
        id_of = dict(zip(uids, ids, strict=False))
        if not self.conn.has("MOVE") and folder is not None:
            # COPY + STORE \Deleted + UID EXPUNGE is not atomic: a run cut after the COPY left a copy
            # in dest. Messages whose Message-ID dest already holds are only removed from here.
            there = self._already_in(folder, dest, dict(zip(uids, mids, strict=False)))
            if there:
                self.conn.expunge_uids(there)
                removed = self.store.remove_sids(fid, map(str, there))
                self.emit(RowsChanged(self.account.name, fid, removed=tuple(removed)))
                uids = [u for u in uids if u not in set(there)]
                if not uids:
                    return
        mapping = self.conn.move(uids, dest, *([progress] if progress is not None else []))
        dest_id = self.store.folder_id(dest)
        if not id_of:
            id_of = {int(s): i for s, i in self.store.ids_of(fid, map(str, uids)).items()}
        moved, pairs, lost = [], [], []
        for uid in uids:
            new = mapping.get(uid)
            id_ = id_of.get(uid)
            if new is not None and dest_id is not None and id_ is not None:
                pairs.append((id_, str(new)))  # (the local id goes with it)
                moved.append(id_)
            else:
                lost.append(str(uid))
        if pairs and dest_id is not None:
            self.store.move_rows(fid, pairs, dest_id)  # (one transaction for a bulk move)
        removed = self.store.remove_sids(fid, lost) if lost else []
        self.emit(RowsChanged(self.account.name, fid, removed=tuple(moved + removed)))
        if dest_id is not None and moved:
            self.emit(RowsChanged(self.account.name, dest_id, added=tuple(moved)))

    def _already_in(self, folder: str, dest: str, mids: dict[int, str | None]) -> list[int]:
        """The uids (of `folder`) whose Message-ID `dest` already holds; `folder` stays selected."""
        wanted = {m: u for u, m in mids.items() if m}
        if not wanted:
            return []
        found = []
        self.conn.select(dest, readonly=True)
        try:
            for m, u in wanted.items():
                if self.conn.search_uids([b"HEADER Message-ID ", wire.string(m)]):
                    found.append(u)
        finally:
            self.conn.select(folder)
        return found

    def _failed(self, fid, entry, error: str) -> None:
        """A refused action is kept and retried; after a few refusals it is kept as failed: not
        replayed, shown to the user (status bar, `tuimail pending`), who can discard it."""
        final = entry.attempts + 1 >= MAX_MOVE_ATTEMPTS
        self.store.journal_failed(entry.id, error, final=final)
        note = "; kept as failed (see `tuimail pending`)" if final else ""
        self.emit(SyncState(self.account.name, "error", entry.folder, error=f"{entry.op} failed: {error}{note}"))


def _uid_of(item) -> int:
    return item.uid


def _uid(sid: str | None) -> int:
    """An IMAP server id back to its uid (ValueError: not one; the entry is refused)."""
    uid = int(sid or "")
    if uid <= 0:
        raise ValueError(f"invalid uid {sid!r}")
    return uid

