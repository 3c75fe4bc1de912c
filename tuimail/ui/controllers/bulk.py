"""Acting on many messages (issue 13 item 5): tags, `;` (the next action on every tagged message),
thread-wide actions, mark all read, and copy.

Tags are local ids kept in memory by the header list, one set per folder shown
(HeaderList.tags), for as long as the app runs, as in mutt. A local id never changes while the
message stays in its folder (a resync, a re-sort or threading keeps it), so a tag survives
scrolling, sorting and new mail; a tag is a selection, not mail state, so it is not written to
the store (no write transaction per `t`, nothing for the sync to carry, nothing left behind by a
crash). A message that leaves the folder leaves its tag behind harmlessly: the store skips ids
that are not in the folder any more, and the count said is the one the store changed.

Every action here is ONE intent carrying every id (controllers/intents.py, store/writer.py): one
transaction, one overlay entry, one report, one step for undo; the sync side sends it as a few
compact uid sets and reports its progress (backends/imap/engine.py). Finding the ids (a pattern,
a thread, every unread message) reads the store in a worker thread on a connection of its own.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from textual.timer import Timer

from tuimail.core import pattern as pat
from tuimail.core.flags import FLAGGED, SEEN
from tuimail.mail.sanitize import sanitize_line
from tuimail.store import search
from tuimail.store.store import FolderInfo, Store
from tuimail.store.writer import Intent
from tuimail.ui.keys import display_key
from tuimail.ui.controllers.intents import IntentDone, IntentQueue
from tuimail.ui.controllers.save import SaveFile
from tuimail.ui.controllers.target import Target, current_target, error_text
from tuimail.ui.controllers.view import MainView

R = TypeVar("R")

CONFIRM_OVER = 100  # mark all read asks first when it would change more messages than this
ACTIVITY_SECONDS = 10.0  # how long the status line says what a bulk action did
PREFIX_ACTIONS = ("toggle_read", "flag", "delete", "move", "copy", "archive", "save_file", "tag")
_HINT = {"toggle_read": "read/unread", "flag": "flag/unflag", "save_file": "save", "tag": "untag all"}
_VERB = {"move": ("moving", "moved"), "copy": ("copying", "copied"), "expunge": ("deleting", "deleted"),
         "read": ("marking read", "marked read"), "unread": ("marking unread", "marked unread"),
         "flag": ("flagging", "flagged"), "unflag": ("unflagging", "unflagged")}


def _n(count: int) -> str:
    return f"{count:,} message{'s' if count != 1 else ''}"


class BulkActions:
    def __init__(self, view: MainView, intents: IntentQueue) -> None:
        self.view, self.intents = view, intents
        self._labels: dict[int, tuple[str, str | None]] = {}  # intent seq -> (what, destination)
        self._activity_timer: Timer | None = None
        self.saver = SaveFile(view)

    # ------------------------------------------------------------------ tags

    def _tags(self, account: str, folder_id: int) -> set[int]:
        store = self.view.tapp.stores[account]
        return self.view.hlist.tags.setdefault((str(store.path), folder_id), set())

    def tagged(self) -> tuple[str, int, str, set[int]] | None:
        """(account, folder id, folder name, tagged ids) of the open folder."""
        view = self.view
        if view.folder is None or view.account is None:
            return None
        return view.account, view.folder.id, view.folder.name, self._tags(view.account, view.folder.id)

    def tags_changed(self) -> None:
        """Repaint the rows (their marks) and the count in the status line."""
        self.view.hlist.refresh()
        self.view.update_status()  # (the tagged count)

    def _virtual(self) -> bool:
        """A virtual folder (search results across folders) is shown: tags are a folder's."""
        if self.view.hlist.source is None:
            return False
        self.view.notify("tags belong to a folder: open the message's folder to tag it", markup=False, timeout=4)
        return True

    def tag(self) -> None:
        """`t`: tag / untag the message, then the cursor goes to the next one (mutt's $resolve)."""
        view = self.view
        if self._virtual():
            return
        t = current_target(view)
        if t is None:
            return
        tags = self._tags(t.account, t.folder_id)
        hl = view.hlist
        if hl.threaded and t.uid in hl.collapsed and t.folder_id == hl.folder_id:
            # a collapsed thread is one line: `t` on it tags (untags) the whole thread, as in mutt
            ids = [u for u, root in hl._thread_root.items() if root == t.uid]
            if t.uid in tags:
                tags.difference_update(ids)
            else:
                tags.update(ids)
        else:
            tags.symmetric_difference_update((t.uid,))
        if view.hlist.has_focus and t.uid == view.hlist.current_uid:
            view.hlist.move_cursor(view.hlist.cursor + 1)
        self.tags_changed()

    def tag_thread(self) -> None:
        """Tag every message of the thread (untag them when all are tagged already)."""
        if self._virtual():
            return

        def then(t: Target, ids: list[int]) -> None:
            tags = self._tags(t.account, t.folder_id)
            untag = tags.issuperset(ids)
            if untag:
                tags.difference_update(ids)
            else:
                tags.update(ids)
            self.say(f"{'untagged' if untag else 'tagged'} the thread's {_n(len(ids))}")
            self.tags_changed()

        self._thread(then)

    def tag_pattern(self, untag: bool = False) -> None:
        """`T` / ctrl+t: tag (untag) every message of the folder a pattern matches."""
        from tuimail.ui.screens.modals import PromptScreen

        view = self.view
        cur = self.tagged()
        if cur is None or self._virtual():
            return
        account, fid, _name, tags = cur

        def got(text: str | None) -> None:
            if not text or not text.strip():
                return
            try:
                p = pat.parse(text)
            except pat.PatternError as e:
                view.notify(str(e), severity="error", markup=False, timeout=8)
                return
            snapshot = set(tags)

            def query(store: Store) -> search.Result:
                return search.evaluate(store, p, [fid], tagged=snapshot, unknown=False)

            def found(res: search.Result) -> None:
                ids = {h.id for h in res.hits}
                before = len(tags)
                if untag:
                    tags.difference_update(ids)
                else:
                    tags.update(ids)
                changed = abs(len(tags) - before)
                note = f"{'untagged' if untag else 'tagged'} {_n(changed)}"
                if res.unanswered:
                    note += " (bodies not cached are not searched)"
                self.say(note)
                self.tags_changed()

            self.read(account, query, found)

        title = "Untag messages matching (~A: all)" if untag else "Tag messages matching (e.g. ~f ann ~U)"
        view.tapp.push_screen(PromptScreen(title, placeholder="a pattern: ~f ~s ~U ~F ~d <2w ..."), got)

    # ------------------------------------------------------------------ `;`

    def prefix(self) -> None:
        """`;`: the next key's action applies to every tagged message."""
        from tuimail.ui.screens.keyprompt import KeyPromptScreen

        view = self.view
        cur = self.tagged()
        if self._virtual():
            return
        if cur is None or not cur[3]:
            view.notify("no tagged messages (t tags one, T by pattern)", markup=False, timeout=3)
            return
        eff = view.tapp.effective_keys
        offered = {a: eff.get(a, ()) for a in PREFIX_ACTIONS if eff.get(a)}
        hint = "  ".join(f"{display_key(ks[0])}:{_HINT.get(a, a)}" for a, ks in offered.items())
        text = f"apply to {len(cur[3]):,} tagged: {hint}   (Esc: cancel)"
        view.tapp.push_screen(KeyPromptScreen(text, offered), lambda name: self.apply(name) if name else None)

    def apply(self, name: str) -> None:
        cur = self.tagged()
        if cur is None or not cur[3]:
            return
        account, fid, folder, tags = cur
        ids = sorted(tags)
        if name == "tag":  # `;t`: untag them all
            tags.clear()
            self.tags_changed()
            return
        if name in ("toggle_read", "flag"):
            self._toggle_many(account, fid, ids, SEEN if name == "toggle_read" else FLAGGED)
        elif name == "save_file":
            self.saver.save_many([Target(account, fid, folder, i) for i in ids])
        else:
            self.hide_or_copy(account, fid, ids, name)

    def _toggle_many(self, account: str, fid: int, ids: list[int], flag: str) -> None:
        """Set `flag` on all of them, or clear it when every one has it (as N and F on one)."""
        app = self.view.tapp

        def query(store: Store) -> list[int]:
            return [r.id for r in store.rows(fid, ids).values() if flag not in r.flags]

        def found(lacking: list[int]) -> None:
            store = app.stores[account]
            lacking = [i for i in lacking if flag not in app.overlay.flags(store, fid, i, frozenset())]
            self.set_flags(account, fid, ids, flag, on=bool(lacking))

        self.read(account, query, found)

    def set_flags(self, account: str, fid: int, ids: list[int], flag: str, on: bool) -> None:
        what = ("read" if on else "unread") if flag == SEEN else ("flag" if on else "unflag")
        add, remove = ((flag,), ()) if on else ((), (flag,))
        self.submit(account, Intent("flags", fid, tuple(ids), add, remove), what, None)
        if self._here(account, fid):
            self.view.hlist.intent_queued(ids)

    def hide_or_copy(self, account: str, fid: int, ids: list[int], name: str) -> None:
        """delete / archive / move / copy of many, a picker or a question first where one is due."""
        view = self.view
        store = view.tapp.stores[account]
        if name == "archive":
            arch = store.folder_by_role("archive")
            if arch is None:
                view.notify("no Archive folder for this account", markup=False)
            elif arch.id != fid:
                self.hide(account, fid, ids, "move", arch.name)
        elif name == "delete":
            trash = store.folder_by_role("trash")
            if trash is not None and trash.id != fid:
                self.hide(account, fid, ids, "move", trash.name)
                return
            from tuimail.ui.screens.modals import ConfirmScreen

            view.tapp.push_screen(ConfirmScreen(f"Delete {_n(len(ids))} for good?", ""),
                                  lambda yes: self.hide(account, fid, ids, "expunge", None) if yes else None)
        elif name in ("move", "copy"):
            self.pick_folder(account, fid, "Move" if name == "move" else "Copy", len(ids),
                             lambda dest: (self.hide(account, fid, ids, "move", dest) if name == "move"
                                           else self.copy(account, fid, ids, dest)))

    def pick_folder(self, account: str, fid: int, verb: str, count: int, then: Callable[[str], None]) -> None:
        from tuimail.ui.screens.modals import PickerScreen

        def chosen(value: tuple[str, FolderInfo] | None) -> None:
            if value is not None:
                then(value[1].name)

        choices = self.view.folder_choices(account, exclude=fid)
        title = f"{verb} {_n(count)} to folder" if count > 1 else f"{verb} to folder"
        self.view.tapp.push_screen(PickerScreen(title, choices, [v[1].name for _l, v in choices]), chosen)

    def hide(self, account: str, fid: int, ids: list[int], op: str, dest: str | None) -> None:
        """A move or delete of many: one intent, the rows leave the list at once, their tags go."""
        view = self.view
        self.submit(account, Intent(op, fid, tuple(ids), dest=dest), op, dest)
        self._tags(account, fid).difference_update(ids)
        if self._here(account, fid):
            view.hlist.remove_uids(ids)
        r = view.reader
        if r.folder_key == (account, fid) and r.uid in set(ids):
            r.clear("Message moved.")
            view.hlist.focus()
        self.tags_changed()

    def copy(self, account: str, fid: int, ids: list[int], dest: str) -> None:
        self.submit(account, Intent("copy", fid, tuple(ids), dest=dest), "copy", dest)

    def copy_one(self) -> None:
        """`C`: copy the message to a folder chosen in a picker."""
        t = current_target(self.view)
        if t is not None:
            self.pick_folder(t.account, t.folder_id, "Copy", 1,
                             lambda dest: self.copy(t.account, t.folder_id, [t.uid], dest))

    # ------------------------------------------------------------------ threads and the folder

    def _thread(self, then: Callable[[Target, list[int]], None]) -> None:
        t = current_target(self.view)
        if t is None:
            return
        self.read(t.account, lambda store: store.thread_members(t.folder_id, t.uid),
                  lambda ids: then(t, ids or [t.uid]))

    def read_thread(self) -> None:
        self._thread(lambda t, ids: self.set_flags(t.account, t.folder_id, ids, SEEN, on=True))

    def delete_thread(self) -> None:
        self._thread(lambda t, ids: self.hide_or_copy(t.account, t.folder_id, ids, "delete"))

    def move_thread(self) -> None:
        self._thread(lambda t, ids: self.hide_or_copy(t.account, t.folder_id, ids, "move"))

    def mark_all_read(self) -> None:
        """Every unread message of the folder, read: one intent (asked first above CONFIRM_OVER)."""
        view = self.view
        if view.folder is None or view.account is None:
            return
        account, fid, name = view.account, view.folder.id, view.folder.name
        unread = pat.parse("~U")

        def query(store: Store) -> list[int]:
            return [h.id for h in search.evaluate(store, unread, [fid], unknown=False).hits]

        def found(ids: list[int]) -> None:
            if not ids:
                view.notify(f"no unread messages in {sanitize_line(name)}", markup=False, timeout=3)
                return
            if len(ids) <= CONFIRM_OVER:
                self.set_flags(account, fid, ids, SEEN, on=True)
                return
            from tuimail.ui.screens.modals import ConfirmScreen

            view.tapp.push_screen(ConfirmScreen(f"Mark {_n(len(ids))} read in {sanitize_line(name)}?", ""),
                                  lambda yes: self.set_flags(account, fid, ids, SEEN, on=True) if yes else None)

        self.read(account, query, found)

    # ------------------------------------------------------------------ intents and their reports

    def _here(self, account: str, fid: int) -> bool:
        v = self.view
        return v.folder is not None and v.account == account and v.folder.id == fid

    def submit(self, account: str, intent: Intent, what: str, dest: str | None) -> None:
        self.intents.submit(account, intent)
        self._labels[intent.seq] = (what, dest)
        doing = _VERB.get(what, (what, what))[0]
        self.say(f"{doing} {_n(len(intent.ids))}" + (f" to {sanitize_line(dest)}" if dest else "") + "…",
                 keep=True)

    def done(self, msg: IntentDone) -> None:
        """The writer stored one of ours (after IntentQueue.done): say what it did."""
        label = self._labels.pop(msg.intent.seq, None)
        if label is None:
            return
        if msg.error is not None:
            self.say("")  # (IntentQueue said why)
            return
        what, dest = label
        done = _VERB.get(what, (what, what))[1]
        left = len(msg.intent.ids) - len(msg.uids)
        why = ""  # (a local folder's message whose body is still downloading is not copied: no copy yet)
        svc = self.view.tapp.services.get(msg.account)
        if msg.intent.op == "copy" and left > 0 and svc is not None and not svc.capabilities.server_folders:
            why = f" ({left} still downloading)"
        self.say(f"{done} {_n(len(msg.uids))}" + (f" to {sanitize_line(dest)}" if dest else "") + why)
        if msg.intent.op == "copy" and dest:
            dest_id = self.view.tapp.stores[msg.account].folder_id(dest)
            if dest_id is not None:
                self.view.counts_changed(msg.account, dest_id)

    def say(self, text: str, keep: bool = False) -> None:
        """The status line's activity part: what a bulk action does / did, for a while."""
        view = self.view
        view.status.info.activity = text
        view.update_status()
        if self._activity_timer is not None:
            self._activity_timer.stop()
            self._activity_timer = None
        if text and not keep:
            def clear() -> None:
                self._activity_timer = None
                if view.status.info.activity == text:
                    view.status.info.activity = ""
                    view.update_status()

            self._activity_timer = view.set_timer(ACTIVITY_SECONDS, clear)

    def read(self, account: str, query: Callable[[Store], R], then: Callable[[R], None]) -> None:
        """query(store) in a worker thread on a connection of its own; then(result) on the UI."""
        view = self.view
        app = view.tapp
        path = app.stores[account].path

        def finish(result: list[R], error: BaseException | None) -> None:
            if error is not None:
                view.notify(error_text(error), severity="error", markup=False)
            elif result:
                then(result[0])

        def work() -> None:
            result: list[R] = []
            error: BaseException | None = None
            try:
                with Store(path) as store:
                    result.append(query(store))
            except Exception as exc:
                error = exc
            try:
                app.call_from_thread(finish, result, error)
            except RuntimeError:
                pass  # the app has ended

        view.run_worker(work, thread=True, group="bulk", exit_on_error=False)
