"""Queuing user intents (flag, move, delete) to the account's writer thread (a mixin of MainScreen).

The key handler only queues: the row is repainted from the overlay at once (ui/overlay.py) and
the writer (store/writer.py) runs the store + journal transaction, then wakes the sync service.
Its report comes back as an IntentDone message: the intent leaves the overlay, the row is read
from the store again and the counts follow. A write that failed (a full disk, a read-only
file, a lock held too long) changed nothing: the row is drawn as stored again and one line says
why; a damaged store ends the app with its line (ui/crash.py).
"""

from __future__ import annotations

from textual.message import Message

from tuimail.errors import StoreError
from tuimail.mail.sanitize import sanitize_line
from tuimail.store.writer import Intent, IntentWriter

QUIT_FLUSH_TIMEOUT = 60.0  # seconds `q` waits for queued intents (a busy store waits 30 s at most)


class IntentDone(Message):
    """The writer thread ran an intent: `uids` changed in the store, or `error` (nothing changed)."""

    def __init__(self, account: str, intent: Intent, uids: list[int], error: BaseException | None) -> None:
        super().__init__()
        self.account, self.intent, self.uids, self.error = account, intent, uids, error


class IntentQueue:
    """Needs: self.tapp, hlist, folder, account, counts_changed(), notify(), post_message()."""

    def intent_writer(self, account: str) -> IntentWriter:
        app = self.tapp
        writers = app.intent_writers
        writer = writers.get(account)
        if writer is None:
            svc = app.services.get(account)
            post = self.post_message

            def done(intent: Intent, uids: list[int], error: BaseException | None) -> None:
                post(IntentDone(account, intent, uids, error))  # thread-safe, never blocks

            writer = writers[account] = IntentWriter(app.stores[account].path, done,
                                                     wake=getattr(svc, "wake", None), name=f"intents-{account}")
        return writer

    def submit_intent(self, account: str, intent: Intent) -> None:
        """Queue `intent`; the rows it changes are drawn changed from now on."""
        store = self.tapp.stores[account]
        self.tapp.overlay.add(store, intent)
        self.intent_writer(account).submit(intent)

    def flush_intents(self, timeout: float = QUIT_FLUSH_TIMEOUT) -> None:
        """Quitting: wait until every queued intent is in the store. One that failed after its
        last screen (no toast was shown) is said on the way out, one line (app.exit_line)."""
        failed: list[BaseException] = []
        late = False
        for writer in list(self.tapp.intent_writers.values()):
            late = not writer.flush(timeout) or late
            failed += writer.unreported()
        if (failed or late) and not self.tapp.exit_line:
            what = str(failed[0]) if failed else "the store stayed locked"
            n = len(failed) or sum(w.queued for w in self.tapp.intent_writers.values())
            self.tapp.exit_line = f"tuimail: {n} action{'s' if n != 1 else ''} not saved: {what}"

    def on_intent_done(self, msg: IntentDone) -> None:
        msg.stop()
        app, intent = self.tapp, msg.intent
        store = app.stores.get(msg.account)
        if store is None:
            return
        app.overlay.drop(store, intent)
        writer = app.intent_writers.get(msg.account)
        if writer is not None:
            writer.reported(intent)
        here = (self.folder is not None and msg.account == self.account and self.folder.id == intent.folder_id)
        versions = getattr(self, "_versions", None)
        if versions is not None and msg.account in versions:
            # our own commit (another connection): not a reason to reload everything (alerts.py)
            try:
                versions[msg.account] = store.data_version()
            except Exception:
                pass
        if msg.error is not None:
            err = msg.error
            if isinstance(err, StoreError) and err.kind == "corrupt":
                raise err
            if here:
                if intent.op == "flags":
                    self.hlist.invalidate(intent.ids)
                else:
                    self.hlist.rows_changed(reset=True)  # the rows come back
            text = str(err) if isinstance(err, StoreError) else sanitize_line(f"{type(err).__name__}: {err}")
            self.notify(text, severity="error", markup=False, timeout=10)
            return
        if here:
            if intent.op == "flags":
                self.hlist.flags_stored(msg.uids, intent.add, intent.remove)
            else:
                self.hlist.hidden_stored()
        self.counts_changed(msg.account, intent.folder_id)
        if intent.op == "move" and intent.dest:
            dest = store.folder_id(intent.dest)
            if dest is not None:
                self.counts_changed(msg.account, dest)
