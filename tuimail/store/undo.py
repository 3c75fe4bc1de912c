"""The undo history (a part of Store: Store.undo), issue #13 item 6.

Every user intent the writer runs (store/writer.py run_intent) records its inverse in the same
transaction, computed generically from the rows' state before and after it ran: for each message
its flags as they were (exactly those the intent changed, per message: a bulk "mark read" of 10
messages of which 3 were read already gives back unread to the other 7 only), and for a message
that left its folder, a move back there. A delete for good (an expunge) has no inverse and
records nothing (the prompt warns). The last KEEP entries are kept, in the store: the history
survives a restart.

Undoing is itself an intent (op 'undo', ids: the entries): it runs through the same writer and the
same journal, so it works offline and reaches the server like any action. A move is undone from
where the message is now:
  - still waiting in the journal (not sent): the entry is dropped and the row shown again, nothing
    goes to the server;
  - sent, the server told the new id (IMAP COPYUID, JMAP): the row is in the destination under the
    same local id: moved back from there (a new journal entry);
  - sent without the new id: the message is looked up in the destination by Message-ID, size and
    date; not there yet, the move back waits in the journal for the next sync of the destination
    to find it (journal_rematch).
Undoing an entry undoes the later ones that touched the same messages first (newest first), so
that nothing is applied to a state the user never saw; later actions on other messages stay.

Another kind of intent is covered as it is when its effect shows in the rows (flags, keywords,
folder, hidden). One whose effect is elsewhere (a copy makes a new message) registers its
inverse with `register(op, inverse, describe)`.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from tuimail.core.flags import FLAGGED, SEEN
from tuimail.store.conn import StoreConn, StorePart
from tuimail.store.journal import MASK_SQL, Journal, flag_set

if TYPE_CHECKING:
    from tuimail.store.writer import Intent

KEEP = 100  # entries kept (per account: one store per account)
_CHUNK = 500


class UndoBusy(ValueError):
    """A move to undo is on the wire right now (its journal entry is being sent): nothing was
    changed; the same undo works once the server answered (a moment later)."""


@dataclass(frozen=True)
class Before:
    """A row's state before an intent ran."""

    folder_id: int
    flags: frozenset[str]  # canonical flags and keywords
    hidden: bool
    message_id: str | None
    size: int
    date: int | None
    subject: str


@dataclass(frozen=True)
class UndoEntry:
    id: int
    created: float
    op: str
    what: str  # "moved 3 messages to Trash"
    subject: str | None  # the message's, when the action was on one
    state: str  # 'done' | 'undone'
    undone_at: float | None
    steps: tuple[dict[str, Any], ...]

    @property
    def undoable(self) -> bool:
        return self.state == "done"

    @property
    def msg_ids(self) -> set[int]:
        """The local ids of the messages the action changed."""
        out: set[int] = set()
        for s in self.steps:
            out.update(s.get("ids", ()))
            out.update(m[0] for m in s.get("msgs", ()))
        return out

    @property
    def folder_ids(self) -> set[int]:
        """The folders the action (and its undo) changes."""
        return {f for s in self.steps for f in s.get("fids", ())}


# an op's inverse: (undo part, intent, rows before, local ids changed) -> steps (JSON-able dicts)
Inverse = Callable[["UndoLog", "Intent", dict[int, Before], list[int]], list[dict[str, Any]]]
Describe = Callable[["Intent", int], str]
Step = Callable[["UndoLog", dict[str, Any]], list[int]]
_INVERSES: dict[str, Inverse] = {}
_DESCRIBE: dict[str, Describe] = {}
_STEPS: dict[str, Step] = {}


def register(op: str, inverse: Inverse | None = None, describe: Describe | None = None) -> None:
    """For a kind of intent whose effect does not show in its rows' flags, folder or visibility
    (or that wants its own words in the history): how to compute its inverse and say it."""
    if inverse is not None:
        _INVERSES[op] = inverse
    if describe is not None:
        _DESCRIBE[op] = describe


def register_step(kind: str, apply: Step) -> None:
    """A kind of inverse step of one's own: apply(undo, step) -> local ids changed."""
    _STEPS[kind] = apply


def messages(n: int) -> str:
    return f"{n} message{'s' if n != 1 else ''}"


def describe(intent: Intent, n: int) -> str:
    """What the intent did, as the history and the status line say it."""
    custom = _DESCRIBE.get(intent.op)
    if custom is not None:
        return custom(intent, n)
    if intent.op == "flags":
        add, remove = set(intent.add), set(intent.remove)
        words = {(SEEN, True): "marked {} read", (SEEN, False): "marked {} unread",
                 (FLAGGED, True): "flagged {}", (FLAGGED, False): "unflagged {}"}
        if len(add) + len(remove) == 1:
            flag, on = (next(iter(add)), True) if add else (next(iter(remove)), False)
            if (flag, on) in words:
                return words[(flag, on)].format(messages(n))
        change = " ".join([*(f"+{f}" for f in sorted(add)), *(f"-{f}" for f in sorted(remove))])
        return f"changed flags ({change}) of {messages(n)}"
    if intent.op == "move":
        return f"moved {messages(n)} to {intent.dest}"
    return f"{intent.op}: {messages(n)}"


def _ph(n: int) -> str:
    return ",".join("?" * n)


class UndoLog(StorePart):
    """The undo history, on the store's connection (in the intents' transactions)."""

    def __init__(self, conn: StoreConn, journal: Journal) -> None:
        super().__init__(conn)
        self.journal = journal

    # ------------------------------------------------------------------ recording (writer thread)

    def before(self, ids: Iterable[int]) -> dict[int, Before]:
        """The rows' state, read inside the intent's transaction before it runs."""
        ids = list(ids)
        out: dict[int, Before] = {}
        for i in range(0, len(ids), _CHUNK):
            chunk = ids[i:i + _CHUNK]
            for r in self.db.execute(f"SELECT id, folder_id, {MASK_SQL}, keywords, hidden, message_id, size, date,"
                                     f" subject FROM messages WHERE id IN ({_ph(len(chunk))})", chunk):
                out[r[0]] = Before(r[1], frozenset({*flag_set(r[2]), *r[3].split()}), bool(r[4]), r[5], r[6],
                                   r[7], r[8])
        return out

    def record(self, intent: Intent, before: dict[int, Before], changed: Sequence[int]) -> int | None:
        """The intent ran (same transaction): write its inverse. None when there is nothing to
        undo (nothing changed, or a delete for good)."""
        inverse = _INVERSES.get(intent.op, _diff_inverse)
        steps = inverse(self, intent, before, list(changed))
        if not steps:
            return None
        touched: set[int] = set()
        for s in steps:
            touched.update(s.get("ids", ()))
            touched.update(m[0] for m in s.get("msgs", ()))
        n = len(touched) or len(changed)
        subject = before[next(iter(touched))].subject if len(touched) == 1 and next(iter(touched)) in before else None
        with self.transaction():
            cur = self.db.execute("INSERT INTO undo(created, op, what, subject, steps) VALUES (?, ?, ?, ?, ?)",
                                  (time.time(), intent.op, describe(intent, n), subject,
                                   json.dumps(steps, separators=(",", ":"))))
            entry = cur.lastrowid
            self.db.execute("DELETE FROM undo WHERE id <= (SELECT id FROM undo ORDER BY id DESC LIMIT 1 OFFSET ?)",
                            (KEEP,))
        return entry

    def after(self, ids: Iterable[int]) -> dict[int, Before]:
        return self.before(ids)

    def folder_name(self, folder_id: int) -> str | None:
        row = self.db.execute("SELECT name FROM folders WHERE id = ?", (folder_id,)).fetchone()
        return row[0] if row else None

    # ------------------------------------------------------------------ reading (any thread)

    _COLS = "id, created, op, what, subject, state, undone_at, steps"

    def _entry(self, r: tuple) -> UndoEntry:
        return UndoEntry(r[0], r[1], r[2], r[3], r[4], r[5], r[6], tuple(json.loads(r[7])))

    def history(self, limit: int = KEEP) -> list[UndoEntry]:
        """Newest first, undone ones included."""
        return [self._entry(r) for r in self.db.execute(
            f"SELECT {self._COLS} FROM undo ORDER BY id DESC LIMIT ?", (limit,))]

    def entry(self, entry_id: int) -> UndoEntry | None:
        r = self.db.execute(f"SELECT {self._COLS} FROM undo WHERE id = ?", (entry_id,)).fetchone()
        return self._entry(r) if r else None

    def latest(self, skip: Iterable[int] = ()) -> UndoEntry | None:
        """The newest entry not undone yet (`skip`: entries whose undo is queued)."""
        skip = set(skip)
        for r in self.db.execute(f"SELECT {self._COLS} FROM undo WHERE state = 'done' ORDER BY id DESC"):
            if r[0] not in skip:
                return self._entry(r)
        return None

    def closure(self, entry_id: int) -> list[UndoEntry]:
        """What undoing `entry_id` undoes: it and the later entries not undone yet that touched
        its messages (or those of another entry taken so), newest first. Empty: undone already."""
        first = self.entry(entry_id)
        if first is None or not first.undoable:
            return []
        out = [first]
        ids = first.msg_ids
        for r in self.db.execute(f"SELECT {self._COLS} FROM undo WHERE state = 'done' AND id > ? ORDER BY id",
                                 (entry_id,)):
            e = self._entry(r)
            if e.msg_ids & ids:
                out.append(e)
                ids |= e.msg_ids
        return out[::-1]

    # ------------------------------------------------------------------ undoing (writer thread)

    def undo(self, entry_ids: Iterable[int]) -> list[int]:
        """Undo these entries (each with the later ones on its messages), in one transaction.
        Returns the local ids changed. UndoBusy (nothing changed) when a move is on the wire
        right now: try again in a moment."""
        changed: list[int] = []
        with self.transaction():
            for entry_id in entry_ids:
                for e in self.closure(entry_id):
                    for step in reversed(e.steps):
                        apply = _STEPS.get(step["k"])
                        if apply is None:
                            raise ValueError(f"cannot undo {e.what}: unknown step {step['k']!r}")
                        changed += apply(self, step)
                    self.db.execute("UPDATE undo SET state = 'undone', undone_at = ? WHERE id = ?",
                                    (time.time(), e.id))
        return list(dict.fromkeys(changed))

    def _where(self, ids: Iterable[int]) -> dict[int, tuple[int, bool]]:
        """{local id: (folder id, hidden)} of the rows that exist."""
        ids = list(ids)
        out: dict[int, tuple[int, bool]] = {}
        for i in range(0, len(ids), _CHUNK):
            chunk = ids[i:i + _CHUNK]
            for r in self.db.execute(f"SELECT id, folder_id, hidden FROM messages WHERE id IN ({_ph(len(chunk))})",
                                     chunk):
                out[r[0]] = (r[1], bool(r[2]))
        return out


# ---------------------------------------------------------------------- the generic inverse

def _diff_inverse(log: UndoLog, intent: Intent, before: dict[int, Before], changed: list[int]
                  ) -> list[dict[str, Any]]:
    """From the rows before and after: flags back as they were, a message that left its folder
    moved back (one deleted for good, or hidden for an expunge: nothing)."""
    after = log.after(changed)
    flags: dict[tuple[tuple[str, ...], tuple[str, ...]], tuple[list[int], set[int]]] = {}
    moves: dict[tuple[int, str], list[list[Any]]] = {}
    names: dict[int, str | None] = {}
    for id_ in changed:
        b, a = before.get(id_), after.get(id_)
        if b is None or a is None:
            continue  # deleted for good
        if a.folder_id != b.folder_id or (a.hidden and not b.hidden):
            dest = intent.dest
            if a.folder_id != b.folder_id:
                if a.folder_id not in names:
                    names[a.folder_id] = log.folder_name(a.folder_id)
                dest = names[a.folder_id]
            if dest is None:
                continue  # to be expunged
            moves.setdefault((b.folder_id, dest), []).append([id_, b.message_id, b.size, b.date])
        if a.flags != b.flags:
            key = (tuple(sorted(b.flags - a.flags)), tuple(sorted(a.flags - b.flags)))
            ids, fids = flags.setdefault(key, ([], set()))
            ids.append(id_)
            fids.add(b.folder_id)
    steps: list[dict[str, Any]] = []
    for (add, remove), (ids, fids) in flags.items():
        steps.append({"k": "flags", "add": list(add), "remove": list(remove), "ids": ids, "fids": sorted(fids)})
    for (src, dest), msgs in moves.items():
        dest_row = log.db.execute("SELECT id FROM folders WHERE name = ?", (dest,)).fetchone()
        both = [src] if dest_row is None else [src, dest_row[0]]
        steps.append({"k": "move", "src": src, "dest": dest, "msgs": msgs, "fids": both})
    return steps


# ---------------------------------------------------------------------- applying the steps

def _undo_flags(log: UndoLog, step: dict[str, Any]) -> list[int]:
    """The flags the action changed, back as they were on each message, wherever it is now."""
    by_folder: dict[int, list[int]] = {}
    for id_, (fid, _hidden) in log._where(step["ids"]).items():
        by_folder.setdefault(fid, []).append(id_)
    changed: list[int] = []
    for fid, ids in by_folder.items():
        changed += log.journal.set_flags(fid, ids, add=step["add"], remove=step["remove"])
    return changed


def _undo_move(log: UndoLog, step: dict[str, Any]) -> list[int]:
    """Each message back to the folder it left, from where it is now."""
    src = log.folder_name(step["src"])
    if src is None:
        raise ValueError("cannot undo the move: the folder it came from is gone")
    db = log.db
    where = log._where(m[0] for m in step["msgs"])
    back: dict[int, list[int]] = {}  # folder now -> ids to move back from there
    unhidden: list[int] = []
    for id_, mid, size, date in step["msgs"]:
        here = where.get(id_)
        if here is not None:
            fid, hidden = here
            if hidden:
                j = db.execute("SELECT id, state FROM journal WHERE msg_id = ? AND op != 'flags'"
                               " ORDER BY id DESC LIMIT 1", (id_,)).fetchone()
                if j is None:
                    continue
                if j[1] == "sending":
                    raise UndoBusy("the move is on its way to the server: undo again in a moment")
                db.execute("DELETE FROM journal WHERE id = ?", (j[0],))  # never sent: nothing to undo there
                db.execute("UPDATE messages SET hidden = 0 WHERE id = ?", (id_,))
                unhidden.append(id_)
            if fid != step["src"]:
                back.setdefault(fid, []).append(id_)
            continue
        # moved on the server without telling the new id: the destination's copy (same
        # Message-ID, size and date), or, not synced yet, a move back that waits for it there
        dest_row = db.execute("SELECT id, local FROM folders WHERE name = ?", (step["dest"],)).fetchone()
        if dest_row is None or not mid:
            continue
        q = "SELECT id FROM messages WHERE folder_id = ? AND message_id = ? AND hidden = 0 AND size = ? AND date IS ?"
        hits = [r[0] for r in db.execute(q + " LIMIT 2", (dest_row[0], mid, size, date))]
        if len(hits) == 1:
            back.setdefault(dest_row[0], []).append(hits[0])
        elif not hits and not dest_row[1]:
            db.execute("INSERT INTO journal(created, folder_id, msg_id, sid, message_id, op, dest, msg_size, msg_date)"
                       " VALUES (?, ?, NULL, NULL, ?, 'move', ?, ?, ?)",
                       (time.time(), dest_row[0], mid, src, size, date))
    changed = unhidden
    for fid, ids in back.items():
        changed += log.journal.move(fid, ids, src)
    return changed


register_step("flags", _undo_flags)
register_step("move", _undo_move)
