"""What could not be done, kept for the user to see (a part of Store: Store.failures).

Nothing the user did is dropped silently. A journal entry the server refused for good, whose
folder left the server's LIST, or whose message cannot be found again after the server reset
the folder (UIDVALIDITY) is kept with state 'failed' and a reason; it is not replayed. The user
lists such entries (`tuimail pending`, the TUI's failed-actions list) and discards them, which
puts the row back as the server has it. A folder the server refuses (SELECT answered NO) keeps
the refusal in `folders.error` until its next good sync.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from tuimail.store.conn import StorePart
from tuimail.store.journal import MASK_SQL, _apply, flag_cols, flag_set, split_flags

_CHUNK = 500

GONE_REASON = "the folder is gone from the server (renamed or deleted elsewhere?)"
NOT_FOUND_REASON = "message not found after the server reset the folder (UIDVALIDITY changed)"
AMBIGUOUS_REASON = "several messages match after the server reset the folder (UIDVALIDITY changed)"
NO_ID_REASON = "the message has no Message-ID to find it again after the server reset the folder"


@dataclass(frozen=True)
class ActionInfo:
    """One journal entry as the user sees it (`tuimail pending`, the TUI's list)."""

    id: int
    folder: str
    msg_id: int | None  # the local id (None in a repaired store until the next sync links it)
    sid: str | None  # its server id when the action was made (None: lost after the server reset its ids)
    message_id: str | None
    subject: str | None
    op: str
    add_flags: tuple[str, ...]
    remove_flags: tuple[str, ...]
    dest: str | None
    state: str
    error: str | None
    attempts: int

    def describe(self) -> str:
        if self.op == "flags":
            return " ".join([*(f"+{f}" for f in self.add_flags), *(f"-{f}" for f in self.remove_flags)])
        if self.op == "move":
            return f"move to {self.dest}"
        if self.op == "copy":
            return f"copy to {self.dest}"
        return "delete for good"


class Failures(StorePart):
    """Failed actions and gone folders, on the store's connection (in its transactions)."""

    # ------------------------------------------------------------------ listing

    def actions(self, *, failed_only: bool = False) -> list[ActionInfo]:
        q = ("SELECT j.id, f.name, j.msg_id, j.sid, j.message_id, m.subject, j.op, j.add_flags, j.remove_flags,"
             " j.dest, j.state, j.last_error, j.attempts FROM journal j JOIN folders f ON f.id = j.folder_id"
             " LEFT JOIN messages m ON m.id = j.msg_id")
        if failed_only:
            q += " WHERE j.state = 'failed'"
        return [ActionInfo(r[0], r[1], r[2], r[3], r[4], r[5], r[6], tuple(r[7].split()), tuple(r[8].split()), r[9],
                           r[10], r[11], r[12]) for r in self.db.execute(q + " ORDER BY j.id")]

    def failed_summary(self) -> list[tuple[str, int]]:
        """(folder name, number of failed actions), most first."""
        return [(r[0], r[1]) for r in self.db.execute(
            "SELECT f.name, count(*) AS n FROM journal j JOIN folders f ON f.id = j.folder_id"
            " WHERE j.state = 'failed' GROUP BY f.name ORDER BY n DESC, f.name")]

    def failed_count(self) -> int:
        return self.db.execute("SELECT count(*) FROM journal WHERE state = 'failed'").fetchone()[0]

    # ------------------------------------------------------------------ discarding

    def discard(self, ids: Iterable[int]) -> list[tuple[int, int]]:
        """Forget these entries (pending or failed; one being sent is left alone) and put their rows
        back as the server has them: a move or delete shows the message again, a flag change takes
        back the flags it changed. Returns the (folder_id, local id) rows that changed. A folder that is
        gone from the server goes with its last entry."""
        changed: list[tuple[int, int]] = []
        folders: set[int] = set()
        with self.transaction():
            for jid in ids:
                row = self.db.execute("SELECT folder_id, msg_id, op, add_flags, remove_flags FROM journal"
                                      " WHERE id = ? AND state IN ('pending', 'failed')", (jid,)).fetchone()
                if row is None:
                    continue
                fid, mid, op, add, remove = row
                self.db.execute("DELETE FROM journal WHERE id = ?", (jid,))
                folders.add(fid)
                if mid is None:
                    continue
                if op == "flags":
                    if self._take_back_flags(mid, remove.split(), add.split()):
                        changed.append((fid, mid))
                elif not self.db.execute("SELECT 1 FROM journal WHERE msg_id = ? AND op != 'flags'",
                                         (mid,)).fetchone():
                    n = self.db.execute("UPDATE messages SET hidden = 0 WHERE id = ? AND hidden = 1",
                                        (mid,)).rowcount
                    if n:
                        changed.append((fid, mid))
            for fid in folders:
                self.db.execute("DELETE FROM folders WHERE id = ? AND gone = 1 AND NOT EXISTS"
                                " (SELECT 1 FROM journal WHERE folder_id = ?)", (fid, fid))
        return changed

    def _take_back_flags(self, id_: int, add: Iterable[str], remove: Iterable[str]) -> bool:
        """The row's flags with `add` added and `remove` removed; whether they changed. (The
        entry only holds changes that were real when the user made them (set_flags): taking
        them back gives the flags the server still has.)"""
        cur = self.db.execute(f"SELECT {MASK_SQL}, keywords FROM messages WHERE id = ?", (id_,)).fetchone()
        if cur is None:
            return False
        old = {*flag_set(cur[0]), *cur[1].split()}
        new = _apply(old, add, remove)
        if new == old:
            return False
        flags, kw = split_flags(new)
        self.db.execute("UPDATE messages SET seen = ?, flagged = ?, answered = ?, draft = ?, deleted = ?,"
                        " keywords = ? WHERE id = ?", (*flag_cols(flags), kw, id_))
        return True

    # ------------------------------------------------------------------ folders

    def folder_vanished(self, name: str) -> str:
        """`name` is not in the server's LIST any more. INBOX always exists (RFC 3501): kept. A
        folder with actions waiting is kept as gone, its actions failed; otherwise it goes, rows
        and all. Returns 'kept', 'gone' or 'deleted'."""
        if name.upper() == "INBOX":
            return "kept"
        with self.transaction():
            row = self.db.execute("SELECT id FROM folders WHERE name = ?", (name,)).fetchone()
            if row is None:
                return "deleted"
            fid = row[0]
            if self.db.execute("SELECT 1 FROM journal WHERE folder_id = ? LIMIT 1", (fid,)).fetchone():
                self.db.execute("UPDATE folders SET gone = 1 WHERE id = ?", (fid,))
                self.db.execute("UPDATE journal SET state = 'failed', last_error = ? WHERE folder_id = ?"
                                " AND state != 'failed'", (GONE_REASON, fid))
                return "gone"
            self.db.execute("DELETE FROM folders WHERE id = ?", (fid,))
            return "deleted"

    def folder_back(self, folder_id: int) -> None:
        """A gone folder is in the LIST again: its actions that failed for that reason are retried
        (a different folder of the same name has another UIDVALIDITY: they are re-matched)."""
        with self.transaction():
            if self.db.execute("UPDATE folders SET gone = 0 WHERE id = ? AND gone = 1", (folder_id,)).rowcount:
                self.db.execute("UPDATE journal SET state = 'pending', last_error = NULL WHERE folder_id = ?"
                                " AND state = 'failed' AND last_error = ?", (folder_id, GONE_REASON))

    def set_folder_error(self, folder_id: int, error: str | None) -> None:
        with self.transaction():
            self.db.execute("UPDATE folders SET error = ? WHERE id = ? AND error IS NOT ?",
                            (error[:300] if error else None, folder_id, error[:300] if error else None))

    # ------------------------------------------------------------------ ids reset (UIDVALIDITY)

    def journal_rematch(self, folder_id: int) -> int:
        """Entries without a row: after the server reset the folder's ids (reset_folder), or in
        a repaired store. Find each message again: by its server id where the ids are still
        valid (a repair keeps them: sid set), else by Message-ID + size + date. An entry is matched only when
        exactly one row fits and no entry for another message claims that row; otherwise it is
        kept as failed, with the reason. Returns the number matched."""
        orphans = self.db.execute(
            "SELECT id, sid, message_id, msg_size, msg_date, op, add_flags, remove_flags, msg_id FROM journal"
            " WHERE folder_id = ? AND (msg_id IS NULL OR sid IS NULL) AND state != 'failed' ORDER BY id",
            (folder_id,)).fetchall()
        if not orphans:
            return 0
        by_msg: dict[tuple, list[tuple]] = {}
        for o in orphans:
            # the entries for one message: its old local id (a reset), else its sid (a repair)
            key = ("id", o[8]) if o[8] is not None else ("sid", o[1]) if o[1] is not None else ("entry", o[0])
            by_msg.setdefault(key, []).append(o)
        found: dict[tuple, tuple[int, str] | str] = {}
        for old, group in by_msg.items():
            _, sid, mid, size, date = group[0][:5]
            if sid is not None:  # the server's ids are still valid (a repaired store): by sid
                hit = self.db.execute("SELECT id, sid FROM messages WHERE folder_id = ? AND sid = ?",
                                      (folder_id, sid)).fetchone()
                if hit is not None:
                    found[old] = (hit[0], hit[1])
                    continue
            if not mid:
                found[old] = NO_ID_REASON
                continue
            q = "SELECT id, sid FROM messages WHERE folder_id = ? AND message_id = ?"
            args: list = [folder_id, mid]
            if size is not None:
                q += " AND size = ? AND date IS ?"
                args += [size, date]
            cands = [(r[0], r[1]) for r in self.db.execute(q + " LIMIT 2", args)]
            found[old] = cands[0] if len(cands) == 1 else (AMBIGUOUS_REASON if cands else NOT_FOUND_REASON)
        claims: dict[int, int] = {}
        for v in found.values():
            if isinstance(v, tuple):
                claims[v[0]] = claims.get(v[0], 0) + 1
        n = 0
        with self.transaction():
            for old, group in by_msg.items():
                hit = found[old]
                if isinstance(hit, tuple) and claims[hit[0]] > 1:
                    hit = AMBIGUOUS_REASON
                if isinstance(hit, str):
                    for o in group:
                        self.db.execute("UPDATE journal SET state = 'failed', last_error = ? WHERE id = ?", (hit, o[0]))
                    continue
                id_, sid = hit
                for jid, _, _, _, _, op, a, r, _ in group:
                    self.db.execute("UPDATE journal SET msg_id = ?, sid = ? WHERE id = ?", (id_, sid, jid))
                    # the refilled row shows the server's flags: put the user's intent back on top
                    if op == "flags":
                        self._take_back_flags(id_, a.split(), r.split())
                    else:
                        self.db.execute("UPDATE messages SET hidden = 1 WHERE id = ?", (id_,))
                    n += 1
        return n
