"""Undoing a copy (`C`, `;C`): its inverse for the undo history (store/undo.py `register`).

A copy leaves its messages where they are, so the generic inverse (rows before and after) sees
nothing; this one removes the copies, from where they are by then:
  - still waiting in the journal (not sent): the entry is dropped, nothing goes to the server;
  - on its way (the entry is being sent): UndoBusy, nothing changed (again in a moment);
  - sent: the copy's row in the destination (COPYUID or a sync brought it; found by Message-ID,
    size and date) is deleted for good there (an expunge: a copy is not worth a Trash copy);
    not synced there yet, the delete waits in the journal for the destination's next sync to
    find it (journal_rematch), as a move back does;
  - a local folder's (POP3) copy, made at once: its row is deleted.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from tuimail.store.undo import Before, UndoBusy, UndoLog, messages, register, register_step

if TYPE_CHECKING:
    from tuimail.store.writer import Intent


def _inverse(log: UndoLog, intent: Intent, before: dict[int, Before], changed: list[int]) -> list[dict[str, Any]]:
    if not changed or intent.dest is None:
        return []
    db = log.db
    dest = db.execute("SELECT id, local FROM folders WHERE name = ?", (intent.dest,)).fetchone()
    if dest is None:
        return []
    copies = []
    for id_ in changed:
        b = before.get(id_)
        if b is None:
            continue
        if dest[1]:  # a local copy: the newest row made from this one (journal.copy_row's sid)
            row = db.execute("SELECT id FROM messages WHERE folder_id = ? AND sid LIKE ? ESCAPE '\\'"
                             " ORDER BY id DESC LIMIT 1", (dest[0], f"%#c{id_}.%")).fetchone()
            copies.append([id_, None, row[0] if row else None, b.message_id, b.size, b.date])
            continue
        j = db.execute("SELECT id FROM journal WHERE msg_id = ? AND op = 'copy' AND dest = ? ORDER BY id DESC"
                       " LIMIT 1", (id_, intent.dest)).fetchone()
        copies.append([id_, j[0] if j else None, None, b.message_id, b.size, b.date])
    if not copies:
        return []
    return [{"k": "uncopy", "dest": intent.dest, "copies": copies, "fids": [intent.folder_id, dest[0]]}]


def _undo(log: UndoLog, step: dict[str, Any]) -> list[int]:
    db = log.db
    dest = db.execute("SELECT id, local FROM folders WHERE name = ?", (step["dest"],)).fetchone()
    if dest is None:
        return []
    changed: list[int] = []
    for src_id, entry, local_copy, mid, size, date in step["copies"]:
        if dest[1]:
            if local_copy is not None:
                changed += log.journal.expunge(dest[0], [local_copy])
            continue
        state = db.execute("SELECT state FROM journal WHERE id = ?", (entry,)).fetchone() if entry else None
        if state is not None:
            if state[0] == "sending":
                raise UndoBusy("the copy is on its way to the server: undo again in a moment")
            db.execute("DELETE FROM journal WHERE id = ?", (entry,))  # never sent: nothing there
            continue
        if not mid:
            continue
        hit = db.execute("SELECT id FROM messages WHERE folder_id = ? AND message_id = ? AND hidden = 0 AND size = ?"
                         " AND date IS ? AND id != ? ORDER BY id DESC LIMIT 1",
                         (dest[0], mid, size, date, src_id)).fetchone()
        if hit is not None:
            changed += log.journal.expunge(dest[0], [hit[0]])
        else:  # not in the destination here yet: its next sync finds it (journal_rematch)
            db.execute("INSERT INTO journal(created, folder_id, msg_id, sid, message_id, op, msg_size, msg_date)"
                       " VALUES (?, ?, NULL, NULL, ?, 'expunge', ?, ?)", (time.time(), dest[0], mid, size, date))
    return changed


register("copy", _inverse, lambda intent, n: f"copied {messages(n)} to {intent.dest}")
register_step("uncopy", _undo)
