"""Undo (issue #13 item 6): `u` takes back the most recent thing, `U` lists the history.

The history is the accounts' stores' (store/undo.py): each intent the writer ran recorded its
inverse there. Undoing is an intent too (op 'undo', ids: the history entries), queued to the
account's writer like a flag change, so it is journalled, works offline and reaches the server
when the worker replays it. Its report (IntentDone) comes back here: the status line says what
was undone, the open list and the folder counts follow.

The most recent thing may be a message being sent (still in its undo window, compose.py): `u`
takes the send back then, as it did before the history existed.
"""

from __future__ import annotations

from tuimail.mail.sanitize import sanitize_line
from tuimail.store.undo import UndoBusy, UndoEntry
from tuimail.store.writer import Intent
from tuimail.ui.controllers.compose import ComposeController
from tuimail.ui.controllers.intents import IntentDone, IntentQueue
from tuimail.ui.controllers.view import MainView

FLASH = 5.0  # seconds the status line says what was undone
RETRY = 1.0  # seconds before an undo is tried again when its move was on the wire


class UndoController:
    def __init__(self, view: MainView, intents: IntentQueue, compose: ComposeController) -> None:
        self.view, self.intents, self.compose = view, intents, compose
        # intent seq -> (account, the entries it undoes, newest first): their undo is queued
        self._queued: dict[int, tuple[str, list[UndoEntry]]] = {}
        self._retry: set[int] = set()  # intent seqs tried again if UndoBusy
        intents.handlers["undo"] = self.done

    def _queued_ids(self, account: str) -> set[int]:
        return {e.id for acc, entries in self._queued.values() if acc == account for e in entries}

    def latest(self) -> tuple[str, UndoEntry] | None:
        """The most recent action not undone (nor being undone) of any account."""
        best: tuple[str, UndoEntry] | None = None
        for account, store in self.view.tapp.stores.items():
            e = store.undo.latest(skip=self._queued_ids(account))
            if e is not None and (best is None or e.created > best[1].created):
                best = (account, e)
        return best

    def undo_last(self) -> None:
        """`u`: the most recent thing: a send still in its window, else the latest action."""
        latest = self.latest()
        sent_at = self.compose.waiting_send_at()
        if sent_at is not None and (latest is None or sent_at >= latest[1].created):
            self.compose.undo()
            return
        if latest is None:
            self.view.notify("nothing to undo", markup=False)
            return
        self.submit(*latest)

    def submit(self, account: str, entry: UndoEntry, *, retry: bool = True) -> None:
        """Undo `entry` (and the later actions on the same messages, store/undo.py closure);
        retry: once more a moment later if a move to undo was on the wire."""
        store = self.view.tapp.stores.get(account)
        if store is None:
            return
        queued = self._queued_ids(account)
        if entry.id in queued:
            self.view.notify("being undone already", markup=False)
            return
        # (the writer takes the closure again when it runs: after the undos queued before)
        entries = [e for e in store.undo.closure(entry.id) if e.id not in queued]
        if not entries:
            self.view.notify("undone already", markup=False)
            return
        intent = Intent("undo", 0, (entry.id,))
        self._queued[intent.seq] = (account, entries)
        if retry:
            self._retry.add(intent.seq)
        self.intents.intent_writer(account).submit(intent)

    def history(self) -> None:
        """`U`: the recent actions of every account, newest first; Enter undoes one."""
        from tuimail.ui.screens.undo import UndoScreen

        view = self.view
        items = [(account, e) for account, store in view.tapp.stores.items() for e in store.undo.history()]
        items.sort(key=lambda x: x[1].created, reverse=True)

        def chosen(value: tuple[str, UndoEntry] | None) -> None:
            if value is not None:
                self.submit(*value)

        view.tapp.push_screen(UndoScreen(items, many=len(view.tapp.stores) > 1), chosen)

    def done(self, msg: IntentDone) -> None:
        """The writer ran an undo: say what, and draw what changed."""
        view = self.view
        account, entries = self._queued.pop(msg.intent.seq, (msg.account, []))
        retry = msg.intent.seq in self._retry
        self._retry.discard(msg.intent.seq)
        writer = view.tapp.intent_writers.get(account)
        if writer is not None:
            writer.reported(msg.intent)
        self.intents.poll.own_commit(account)
        if isinstance(msg.error, UndoBusy) and retry and entries:
            last = entries[-1]  # (the entry asked for: the closure is newest first)
            view.set_timer(RETRY, lambda: self.submit(account, last, retry=False))
            return
        if msg.error is not None:
            text = sanitize_line(str(msg.error)) if isinstance(msg.error, ValueError) else None
            if text is None:
                self.intents.report_error(msg)
            else:
                view.notify(f"not undone: {text}", severity="warning", markup=False, timeout=6)
            return
        what = sanitize_line(entries[-1].what) if entries else "the last action"
        more = len(entries) - 1
        if more > 0:
            what += f" (and {more} later action{'s' if more != 1 else ''} on the same messages)"
        self.compose.flash(f"undone: {what}", FLASH)
        folders = {f for e in entries for f in e.folder_ids}
        if view.account == account and view.folder is not None and view.folder.id in folders:
            if all(s["k"] == "flags" for e in entries for s in e.steps):
                view.hlist.invalidate(msg.uids)  # the same rows, their flags read again
            else:
                view.hlist.rows_changed(reset=True)
        for fid in folders:
            view.counts_changed(account, fid)
