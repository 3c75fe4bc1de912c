"""`tuimail repair` for the local folders of a POP3 account: their mail exists nowhere else.

An IMAP or JMAP store is a copy of the server's and comes back with the next sync; a POP3
account's rows, their stored copies (pop3_raw) and the UIDL ledger (pop3_ledger) are the mail
itself (in delete mode the server no longer has it) and what keeps keep mode from downloading
everything again. So for every folder marked `local` they are copied into the fresh store with
their ids, row by row, stepping over unreadable pages (the rows on a damaged page are lost, the
others kept), one row at a time (a large store's copies never sit in memory together):

- a message row whose copy survived keeps its id, folder, flags and place; one whose row was
  lost but whose copy survived is rebuilt from the copy's headers in the account's INBOX;
- a ledger entry keeps its UIDL, fingerprint, download time and on_server; its msg_id is kept
  when the row is there (else NULL: the message counts as deleted here, never downloaded again);
  a message with a copy but no ledger entry gets one from its server id (the UIDL), so the next
  sync does not download it twice;
- a row whose copy was lost: its body is fetched again when the server still has it (has_body 0
  on an entry still on_server), else it is reported as lost text (its headers stay listed);
  one that lost its entry as well gets one from its server id, its body due.

Derived data (threads, the search index) is rebuilt by the next sync.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass

from tuimail.mail.headers import summarize

_MAX_PROBES = 200_000  # point lookups past one damaged spot of a table
_MSG_COLS = ("id", "folder_id", "sid", "modseq", "seen", "flagged", "answered", "draft", "deleted", "keywords",
             "hidden", "date", "from_", "to_", "cc", "subject", "message_id", "in_reply_to", "refs", "size",
             "has_attachment")
_LEDGER_COLS = ("id", "msg_id", "uidl", "fingerprint", "downloaded_at", "has_body", "on_server")


@dataclass
class Pop3Salvage:
    messages: int = 0  # rows of local folders kept (rebuilt ones included)
    copies: int = 0  # stored copies (pop3_raw) kept
    rebuilt: int = 0  # rows rebuilt from a surviving copy
    ledger: int = 0  # ledger entries kept or rebuilt
    refetch: int = 0  # rows whose copy was lost and that the server still has: fetched again
    lost_text: int = 0  # rows whose copy was lost and that the server no longer has
    unreadable: bool = False  # a damaged page was stepped over


def _rows(db: sqlite3.Connection, table: str, found: Pop3Salvage) -> Iterator[dict]:
    """Every readable row of `table` in rowid order, stepping over damaged pages."""
    last = -(2 ** 63)
    resume = last  # the last row a probe found: the next probe starts past it (always progress)
    while True:
        try:
            cur = db.execute(f"SELECT rowid, * FROM {table} WHERE rowid > ? ORDER BY rowid", (last,))
            cols = [d[0] for d in cur.description]
            for r in cur:
                last = r[0]
                yield dict(zip(cols[1:], r[1:], strict=True))
            return
        except sqlite3.Error:
            found.unreadable = True
        start = max(last, resume, 0)
        for rowid in range(start + 1, start + 1 + _MAX_PROBES):  # the next row that can be read
            try:
                if db.execute(f"SELECT rowid FROM {table} WHERE rowid = ?", (rowid,)).fetchone() is not None:
                    last, resume = rowid - 1, rowid
                    break
            except sqlite3.Error:
                continue
        else:
            return


def _tables(db: sqlite3.Connection) -> set[str]:
    try:
        return {r[0] for r in db.execute("SELECT name FROM sqlite_schema WHERE type = 'table'")}
    except sqlite3.Error:
        return set()


def _has_body(raw: bytes) -> bool:
    """A whole message (not the header block a TOP n 0 gave): something after the blank line."""
    for sep in (b"\r\n\r\n", b"\n\n"):
        i = raw.find(sep)
        if i >= 0:
            return bool(raw[i + len(sep):].strip())
    return False


def salvage_pop3(src: sqlite3.Connection, dst: sqlite3.Connection, folders: dict[int, dict]) -> Pop3Salvage | None:
    """Copy the local folders' rows, copies and the ledger from `src` (the damaged copy) into
    `dst` (the fresh store, its folders written with their ids). None: no local folder."""
    local = {fid for fid, f in folders.items() if f.get("local") == 1}
    if not local:
        return None
    have = _tables(src)
    out = Pop3Salvage()
    inbox = next((fid for fid in local if folders[fid].get("role") == "inbox"), None)
    if inbox is None:
        inbox = next((fid for fid in local if str(folders[fid].get("name", "")).upper() == "INBOX"), min(local))
    dst.execute("BEGIN IMMEDIATE")
    try:
        kept: set[int] = set()
        if "messages" in have:
            for r in _rows(src, "messages", out):
                if r.get("folder_id") not in local or not isinstance(r.get("id"), int):
                    continue
                cols = [c for c in _MSG_COLS if c in r]
                try:
                    dst.execute(f"INSERT INTO messages({', '.join(cols)}) VALUES ({', '.join('?' * len(cols))})",
                                [r[c] for c in cols])
                    kept.add(r["id"])
                except sqlite3.Error:  # a damaged value (NOT NULL): the row is rebuilt from its copy if any
                    pass
        entries: dict[int, dict] = {}
        by_msg: dict[int, dict] = {}
        if "pop3_ledger" in have:
            for e in _rows(src, "pop3_ledger", out):
                if isinstance(e.get("id"), int) and isinstance(e.get("fingerprint"), str):
                    entries[e["id"]] = e
                    if isinstance(e.get("msg_id"), int):
                        by_msg[e["msg_id"]] = e
        copied: set[int] = set()
        whole: set[int] = set()  # copies without an entry that hold a whole message
        if "pop3_raw" in have:
            for r in _rows(src, "pop3_raw", out):
                msg_id, raw = r.get("msg_id"), r.get("raw")
                if not isinstance(msg_id, int) or not isinstance(raw, bytes):
                    continue
                entry = by_msg.get(msg_id)
                if msg_id not in kept:  # its row was lost: rebuilt from the copy (with or without an entry)
                    _rebuild_row(dst, msg_id, inbox, raw, entry)
                    kept.add(msg_id)
                    out.rebuilt += 1
                dst.execute("INSERT INTO pop3_raw(msg_id, raw) VALUES (?, ?)", (msg_id, raw))
                copied.add(msg_id)
                if entry is None:
                    if _has_body(raw):
                        whole.add(msg_id)
        for e in entries.values():
            msg_id = e.get("msg_id") if e.get("msg_id") in kept else None
            vals = {**e, "msg_id": msg_id}
            if msg_id is not None and msg_id not in copied and vals.get("has_body"):
                if vals.get("on_server"):
                    vals["has_body"] = 0  # its body comes again with the next sync
                    out.refetch += 1
                else:
                    out.lost_text += 1
            cols = [c for c in _LEDGER_COLS if c in vals]
            try:
                dst.execute(f"INSERT INTO pop3_ledger({', '.join(cols)}) VALUES ({', '.join('?' * len(cols))})",
                            [vals[c] for c in cols])
                out.ledger += 1
            except sqlite3.Error:
                pass
        # a row whose entry was lost gets one from its server id (its UIDL), so that the next
        # sync does not download it twice: body had when its copy holds a whole message, else due
        # (a headers_first row has no copy until its body comes). After the entries kept (whose
        # ids these must not take), and none for a local copy (`#c` in its server id: never a
        # download of its own) or a UIDL the ledger knows already.
        with_entry = {e.get("msg_id") for e in entries.values()}
        uidls = {e.get("uidl") for e in entries.values()}
        for msg_id in sorted(kept - with_entry):
            sid = dst.execute("SELECT sid FROM messages WHERE id = ?", (msg_id,)).fetchone()[0]
            uidl = None if "#" in sid else sid
            if "#c" in sid or (uidl is not None and uidl in uidls) or (uidl is None and msg_id not in copied):
                continue
            uidls.add(uidl)
            dst.execute("INSERT INTO pop3_ledger(msg_id, uidl, fingerprint, downloaded_at, has_body)"
                        " VALUES (?, ?, '', strftime('%s', 'now'), ?)", (msg_id, uidl, int(msg_id in whole)))
            out.ledger += 1
            if msg_id not in whole:
                out.refetch += 1
        out.messages, out.copies = len(kept), len(copied)
        dst.execute("COMMIT")
    except BaseException:
        dst.execute("ROLLBACK")
        raise
    return out


def _rebuild_row(dst: sqlite3.Connection, msg_id: int, inbox: int, raw: bytes, entry: dict | None) -> None:
    """A message row from its stored copy's headers, in INBOX, unread."""
    s = summarize(raw.split(b"\r\n\r\n", 1)[0] + b"\r\n\r\n")
    uidl = entry.get("uidl") if entry else None
    taken = isinstance(uidl, str) and dst.execute("SELECT 1 FROM messages WHERE folder_id = ? AND sid = ?",
                                                  (inbox, uidl)).fetchone() is not None
    sid = uidl if isinstance(uidl, str) and not taken else f"{uidl or ''}#r{msg_id}"
    dst.execute("INSERT INTO messages(id, folder_id, sid, date, from_, to_, cc, subject, message_id, in_reply_to,"
                " refs, size, has_attachment) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (msg_id, inbox, sid, s["date"], s["from_"], s["to"], s["cc"], s["subject"], s["message_id"],
                 s["in_reply_to"], s["references"], len(raw), int(bool(s["has_attachment"]))))
