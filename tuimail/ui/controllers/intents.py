"""Queuing user intents (flag, move, delete) to the account's writer thread (held by MainScreen).

The key handler only queues: the row is repainted from the overlay at once (ui/overlay.py) and
the writer (store/writer.py) runs the store + journal transaction, then wakes the sync service.
Its report comes back as an IntentDone message: the intent leaves the overlay, the row is read
from the store again and the counts follow. A write that failed (a full disk, a read-only
file, a lock held too long) changed nothing: the row is drawn as stored again and one line says
why; a damaged store ends the app with its line (ui/crash.py).
"""

from __future__ import annotations

from collections.abc import Callable

from textual.message import Message

from tuimail.errors import StoreError
from tuimail.mail.sanitize import sanitize_line
from tuimail.store.writer import Intent, IntentWriter
from tuimail.ui.controllers.store_poll import StorePoll
from tuimail.ui.controllers.view import MainView

QUIT_FLUSH_TIMEOUT = 60.0  # seconds `q` waits for queued intents (a busy store waits 30 s at most)


class IntentDone(Message):
    """The writer thread ran an intent: `uids` changed in the store, or `error` (nothing changed)."""

    def __init__(self, account: str, intent: Intent, uids: list[int], error: BaseException | None) -> None:
        super().__init__()
        self.account, self.intent, self.uids, self.error = account, intent, uids, error


class IntentQueue:
    """The account's writer threads (kept by the app: they outlive the screen), fed here; their
    reports (IntentDone, posted to the screen) handled in `done`."""

    def __init__(self, view: MainView, poll: StorePoll) -> None:
        self.view, self.poll = view, poll
        # op -> what handles its report instead of done() (an undo: controllers/undo.py)
        self.handlers: dict[str, Callable[[IntentDone], None]] = {}

    def intent_writer(self, account: str) -> IntentWriter:
        app = self.view.tapp
        writers = app.intent_writers
        writer = writers.get(account)
        if writer is None:
            svc = app.services.get(account)
            post = self.view.post_message

            def done(intent: Intent, uids: list[int], error: BaseException | None) -> None:
                post(IntentDone(account, intent, uids, error))  # thread-safe, never blocks

            wake = svc.wake if svc is not None else None
            writer = writers[account] = IntentWriter(app.stores[account].path, done, wake=wake,
                                                     name=f"intents-{account}")
        return writer

    def submit(self, account: str, intent: Intent) -> None:
        """Queue `intent`; the rows it changes are drawn changed from now on."""
        store = self.view.tapp.stores[account]
        self.view.tapp.overlay.add(store, intent)
        self.intent_writer(account).submit(intent)

    def flush(self, timeout: float = QUIT_FLUSH_TIMEOUT) -> None:
        """Quitting: wait until every queued intent is in the store. One that failed after its
        last screen (no toast was shown) is said on the way out, one line (app.exit_line)."""
        app = self.view.tapp
        failed: list[BaseException] = []
        late = False
        for writer in list(app.intent_writers.values()):
            late = not writer.flush(timeout) or late
            failed += writer.unreported()
        if (failed or late) and not app.exit_line:
            what = str(failed[0]) if failed else "the store stayed locked"
            n = len(failed) or sum(w.queued for w in app.intent_writers.values())
            app.exit_line = f"tuimail: {n} action{'s' if n != 1 else ''} not saved: {what}"

    def report_error(self, msg: IntentDone) -> None:
        """One line for a write that failed (a damaged store ends the app with its line)."""
        err = msg.error
        if isinstance(err, StoreError) and err.kind == "corrupt":
            raise err
        text = str(err) if isinstance(err, StoreError) else sanitize_line(f"{type(err).__name__}: {err}")
        self.view.notify(text, severity="error", markup=False, timeout=10)

    def done(self, msg: IntentDone) -> None:
        handler = self.handlers.get(msg.intent.op)
        if handler is not None:
            handler(msg)
            return
        view = self.view
        app, intent = view.tapp, msg.intent
        store = app.stores.get(msg.account)
        if store is None:
            return
        app.overlay.drop(store, intent)
        writer = app.intent_writers.get(msg.account)
        if writer is not None:
            writer.reported(intent)
        here = (view.folder is not None and msg.account == view.account and view.folder.id == intent.folder_id)
        self.poll.own_commit(msg.account)
        if msg.error is not None:
            err = msg.error
            if isinstance(err, StoreError) and err.kind == "corrupt":
                raise err
            if here:
                if intent.op == "flags":
                    view.hlist.invalidate(intent.ids)
                else:
                    view.hlist.rows_changed(reset=True)  # the rows come back
            self.report_error(msg)
            return
        if here:
            if intent.op == "flags":
                view.hlist.flags_stored(msg.uids, intent.add, intent.remove)
            else:
                view.hlist.hidden_stored()
        elif intent.op == "flags" and view.hlist.source is not None:  # a virtual folder shows it
            view.hlist.entries_changed(msg.account, intent.ids)
        view.counts_changed(msg.account, intent.folder_id)
        if intent.op == "move" and intent.dest:
            dest = store.folder_id(intent.dest)
            if dest is not None:
                view.counts_changed(msg.account, dest)
