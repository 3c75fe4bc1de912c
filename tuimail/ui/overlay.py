"""What the user did that the store does not show yet: the optimistic overlay of queued intents.

An intent goes to the account's writer thread (store/writer.py); until its transaction is done
the rows it changes are drawn from here: flags with the queued changes applied on top, moved and
deleted rows left out. When the writer reports back, the intent leaves the overlay (the store
has it now; or it failed, and the row is drawn as stored again).

Applying a queued change to a row that has it already changes nothing (set difference, then
union), so a row read after the commit but before the report is drawn right too.
"""

from __future__ import annotations

from tuimail.store.journal import _apply
from tuimail.store.store import MessageRow, Store
from tuimail.store.writer import Intent

_HIDING = ("move", "expunge")


class Overlay:
    def __init__(self) -> None:
        # (store, folder_id) -> {uid: [intent, ...]} in submission order
        self._by_folder: dict[tuple[object, int], dict[int, list[Intent]]] = {}

    def __bool__(self) -> bool:
        return bool(self._by_folder)

    def add(self, store: Store, intent: Intent) -> None:
        rows = self._by_folder.setdefault((store, intent.folder_id), {})
        for uid in intent.ids:
            rows.setdefault(uid, []).append(intent)

    def drop(self, store: Store, intent: Intent) -> None:
        rows = self._by_folder.get((store, intent.folder_id))
        if rows is None:
            return
        for uid in intent.ids:
            queued = rows.get(uid)
            if queued is not None:
                queued[:] = [i for i in queued if i.seq != intent.seq]
                if not queued:
                    del rows[uid]
        if not rows:
            del self._by_folder[(store, intent.folder_id)]

    def flags(self, store: Store, folder_id: int, uid: int, flags: frozenset[str]) -> frozenset[str]:
        """The row's (canonical) flags with every queued flag change applied, in order."""
        queued = self._by_folder.get((store, folder_id), {}).get(uid)
        if not queued:
            return flags
        out = set(flags)
        for i in queued:
            if i.op == "flags":
                out = _apply(out, i.add, i.remove)
        return frozenset(out)

    def row(self, store: Store, folder_id: int, row: MessageRow | None) -> MessageRow | None:
        """A MessageRow as the user expects to see it (None: moved or deleted, not yet stored)."""
        if row is None or not self._by_folder:
            return row
        queued = self._by_folder.get((store, folder_id), {}).get(row.id)
        if not queued:
            return row
        if any(i.op in _HIDING for i in queued):
            return None
        flags = self.flags(store, folder_id, row.id, row.flags)
        return row if flags == row.flags else row._replace(flags=flags)

    def hidden(self, store: Store, folder_id: int) -> set[int]:
        """Rows of the folder a queued move or delete takes out of it."""
        rows = self._by_folder.get((store, folder_id))
        if not rows:
            return set()
        return {uid for uid, queued in rows.items() if any(i.op in _HIDING for i in queued)}
