"""The JMAP sync engine: keeps one account's store and a JMAP server consistent (RFC 8620/8621).

One sync (``sync_all``): Mailbox/changes and the first group's Email/changes in one request, so a
resync that finds nothing is one small request; any mailbox change beyond counts (or a state the
server cannot calculate from) is a new Mailbox/get, which is a few KB (folders.py). Then the
Email changes of every filled folder (changes.py), the journal (replay.py), and the folders
never filled (fill.py: the first screen in one request, then anchored windows). Rows are made in
rows.py. This module holds the engine's state and the calls the parts share: Email/get in
chunks, Email/query + Email/get in one request, a window committed to the store.

Server ids are JMAP Email ids (immutable, account-wide: a move keeps the id). Events carry local ids.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from tuimail.backends.base import EngineBase
from tuimail.backends.jmap import changes, fill, folders, replay
from tuimail.backends.jmap.rows import HEADERS, as_list, email_objects, header_row
from tuimail.backends.jmap.state import FolderState
from tuimail.core.events import Event, FoldersChanged, RowsChanged, SyncState
from tuimail.core.summary import FolderSummary, SyncSummary
from tuimail.errors import ProtocolError
from tuimail.protocol.jmap import JmapClient
from tuimail.store import BodyCache, Store
from tuimail.trace import trace

WINDOW = 2000  # windows after the first (bounded by the server's maxObjectsInGet)


class Engine(EngineBase):
    """Runs on the thread that owns `client` (not thread-safe). `emit` must not block."""

    def __init__(self, account: Any, store: Store, client: JmapClient, bodies: BodyCache | None = None,
                 emit: Callable[[Event], None] | None = None):
        super().__init__(account, store, bodies, emit)
        self.client = client
        self.mode = "jmap"
        self._summaries: dict[str, FolderSummary] = {}

    # ------------------------------------------------------------------ whole account

    def sync_all(self, first: str | None = None, only: Iterable[str] | None = None) -> SyncSummary:
        """Mailboxes, changes since the stored states, the journal, then folders never filled
        (`first`, then INBOX, then the others). `only`: just these folders' fill and replay."""
        t0 = time.monotonic()
        self._summaries = {}
        states = self.states()
        mstate = next((st.mailboxes for _, st in states.values() if st.mailboxes), None)
        since: dict[str, str] = {}
        if mstate:
            since["Mailbox"] = mstate
        first_group = next(iter(changes.groups(states)), None)
        if first_group is not None:
            since["Email"] = first_group
        got = changes.fetch_changes(self, since) if since else {}
        mch = got.get("Mailbox")
        if mstate is None or mch is None or not (mch.empty or mch.counts_only):
            self.sync_mailboxes()
            states = self.states()
        elif mch.new_state != mstate:  # only counts changed (new mail, flags): the store counts its own rows
            for fid in states:
                self.set_state(fid, mailboxes=mch.new_state)
            states = self.states()
        wanted = set(only) if only is not None else None
        # folders filled before: their changes (the first group's are in hand already)
        for state, fids in changes.groups(states).items():
            if state == first_group and "Email" in got:
                ch = got["Email"]
            else:
                ch = changes.fetch_changes(self, {"Email": state}).get("Email")
            changes.apply_changes(self, ch, fids)  # (None: they resync)
        # the user's actions
        for name in sorted(self.store.pending_folders()):
            if wanted is None or name in wanted:
                self.summary(name).replayed += self.replay(name)
        # folders never filled: the one the user looks at, INBOX, the rest
        todo = [(fid, name) for fid, (name, st) in self.states().items() if st.email is None
                and (wanted is None or name in wanted)]
        todo.sort(key=lambda x: (x[1] != first, x[1] != "INBOX", x[1]))
        for i, (fid, name) in enumerate(todo):
            self.emit(SyncState(self.account.name, "syncing", name, i, len(todo), self.store.pending_count()))
            self.fill_folder(fid)
        if len(changes.groups(self.states())) > 1:
            # folders at different states (filled during this sync, or while mail arrived): each
            # catches up now, so the next resync is again the one request for all of them
            self.catch_up()
        for fid, (name, _st) in self.states().items():
            if wanted is None or name in wanted:
                self.update_threads(fid)
                self.store.set_folder_state(fid, synced=True)
        summary = SyncSummary(mode=self.mode)
        names = [name for name, _ in self.states().values() if wanted is None or name in wanted]
        summary.folders = [self._summaries.get(n) or FolderSummary(n, skipped=True) for n in sorted(names)]
        summary.seconds = time.monotonic() - t0
        self.index_after_sync(summary, t0)  # (a headless first fill leaves it for later)
        self.finish(summary)
        self.emit(FoldersChanged(self.account.name))
        return summary

    # ------------------------------------------------------------------ the parts (their modules)

    def sync_mailboxes(self) -> dict[str, int]:
        return folders.sync_mailboxes(self)

    def fill_folder(self, fid: int) -> FolderSummary:
        return fill.fill_folder(self, fid)

    def catch_up(self) -> None:
        changes.catch_up(self)

    def resync_folder(self, fid: int) -> None:
        changes.resync_folder(self, fid)

    def replay(self, folder: str) -> int:
        return replay.replay(self, folder)

    # ------------------------------------------------------------------ what the parts share

    def limit(self) -> int:
        """How many emails one Email/get may ask for."""
        session = self.client.session or self.client.fetch_session()
        return max(1, min(WINDOW, session.limit("maxObjectsInGet", 500)))

    def summary(self, name: str) -> FolderSummary:
        """This sync's summary of a folder (made on first use)."""
        s = self._summaries.get(name)
        if s is None:
            s = self._summaries[name] = FolderSummary(name)
        return s

    def states(self) -> dict[int, tuple[str, FolderState]]:
        """fid -> (name, state) of every folder that is a mailbox on the server."""
        out = {}
        for f in self.store.folders():
            st = FolderState.load(f.state)
            if st.mailbox is not None and not f.gone:
                out[f.id] = (f.name, st)
        return out

    def set_state(self, fid: int, **kw: str | None) -> None:
        st = FolderState.load(self.store.folder_state(fid)).but(**kw)
        self.store.set_folder_state(fid, st.dump())

    def get_emails(self, ids: Sequence[str], properties: Sequence[str]) -> tuple[dict[str, dict], set[str]]:
        """Email/get in chunks: ({id: email}, ids not found)."""
        found: dict[str, dict] = {}
        missing: set[str] = set()
        limit = self.limit()
        for i in range(0, len(ids), limit):
            res = self.client.call("Email/get", {"accountId": self.client.account_id,
                                                 "ids": list(ids[i:i + limit]), "properties": list(properties)})
            for e in email_objects(res.get("list")):
                found[e["id"]] = e
            missing.update(str(x) for x in as_list(res.get("notFound")))
        return found, missing

    def query_page(self, mailbox: str, anchor: str | None, limit: int, position: int = 0,
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
        ids = [str(i) for i in as_list(qa.get("ids"))]
        total = qa.get("total")
        state = ga.get("state")
        if not isinstance(state, str):
            raise ProtocolError("JMAP server sent no Email state")
        return email_objects(ga.get("list")), ids, state, total if isinstance(total, int) else None

    def _first_window_done(self) -> None:
        hook, self.after_first_window = self.after_first_window, None
        if hook is not None:
            hook()

    def commit(self, fid: int, emails: list[dict]) -> list[int]:
        """Store a window of emails (oldest first: the store appends local ids); their local ids."""
        rows = [header_row(e) for e in sorted(emails, key=lambda e: str(e.get("receivedAt") or ""))]
        ids = self.store.insert_headers(fid, rows)
        trace(f"window committed {len(rows)}")
        if ids:
            self.emit(RowsChanged(self.account.name, fid, added=tuple(ids)))
        return ids
