"""The last resort of `tuimail repair`: journal and folder rows read straight from the file's pages.

    scan_pages(path) -> (folders: {rowid: dict}, journal: {rowid: dict})

When SQLite cannot reach the rows (the schema page is destroyed, or an interior page above
them), every page that still looks like a table leaf is decoded by hand (the record format of
https://sqlite.org/fileformat.html) and the rows shaped like the journal's or the folders' are
kept. Only the main file is read (an older copy of a page in the -wal file could bring back an
action already done); freed pages hold zeros (SQLite's secure_delete), not deleted rows.
"""

from __future__ import annotations

import struct
from pathlib import Path

OPS = ("flags", "move", "expunge", "copy")
# v6 (the uid column dropped, msg_id and sid added at the end), and v5 (older stores)
JOURNAL_COLS = ("id", "created", "folder_id", "message_id", "op", "add_flags", "remove_flags", "dest",
                "attempts", "last_error", "state", "msg_size", "msg_date", "msg_id", "sid")
JOURNAL_COLS_V5 = ("id", "created", "folder_id", "uid", "message_id", "op", "add_flags", "remove_flags", "dest",
                   "attempts", "last_error", "state", "msg_size", "msg_date")
# v6: id, name, delimiter, role, attrs, selectable, server_total, server_unseen, synced_at,
# threads_dirty, error, gone, state (, local); v4/v5: uidvalidity, uidnext, highestmodseq after selectable
FOLDER_COLS = ("id", "name", "delimiter", "role", "attrs", "selectable", "uidvalidity")
_STATES = ("pending", "sending", "failed")


def _varint(buf: bytes, i: int) -> tuple[int, int]:
    v = 0
    for k in range(9):
        b = buf[i + k]
        if k == 8:
            return (v << 8) | b, i + 9
        v = (v << 7) | (b & 0x7F)
        if b < 0x80:
            return v, i + k + 1
    raise IndexError


def _record(payload: bytes) -> list | None:
    hlen, i = _varint(payload, 0)
    if hlen > len(payload) or hlen < 1:
        return None
    types = []
    while i < hlen:
        t, i = _varint(payload, i)
        types.append(t)
    out: list = []
    pos = hlen
    for t in types:
        if t == 0:
            out.append(None)
            continue
        if 1 <= t <= 6:
            n = (1, 2, 3, 4, 6, 8)[t - 1]
            out.append(int.from_bytes(payload[pos:pos + n], "big", signed=True))
        elif t == 7:
            n = 8
            out.append(struct.unpack(">d", payload[pos:pos + 8])[0])
        elif t in (8, 9):
            n = 0
            out.append(t - 8)
        elif t >= 12:
            n = (t - 12) // 2 if t % 2 == 0 else (t - 13) // 2
            raw = payload[pos:pos + n]
            if t % 2 == 0:
                out.append(bytes(raw))
            else:
                try:
                    out.append(raw.decode("utf-8"))
                except UnicodeDecodeError:
                    return None
        else:
            return None
        pos += n
        if pos > len(payload):
            return None
    return out


def _cells(page: bytes, start: int, usable: int):
    """(rowid, record) of each local cell of a table leaf page."""
    ncells = int.from_bytes(page[start + 3:start + 5], "big")
    max_local = usable - 35
    for k in range(min(ncells, (len(page) - start - 8) // 2)):
        off = int.from_bytes(page[start + 8 + 2 * k:start + 10 + 2 * k], "big")
        try:
            size, i = _varint(page, off)
            rowid, i = _varint(page, i)
            if size > max_local or i + size > len(page):
                continue  # spilled to overflow pages: not a journal or folder row
            rec = _record(page[i:i + size])
        except IndexError:
            continue
        if rec is not None:
            yield rowid, rec


def _journal_row(rowid: int, r: list) -> dict | None:
    if len(r) == len(JOURNAL_COLS) and r[0] is None and r[4] in OPS:
        if not (isinstance(r[1], (int, float)) and isinstance(r[2], int) and isinstance(r[5], str)
                and isinstance(r[6], str) and isinstance(r[8], int) and r[10] in _STATES
                and (r[14] is None or isinstance(r[14], str))):
            return None
        row = dict(zip(JOURNAL_COLS, r, strict=True))
        row["id"] = rowid
        return row
    if not 11 <= len(r) <= len(JOURNAL_COLS_V5) or r[0] is not None:
        return None
    if not (isinstance(r[1], (int, float)) and isinstance(r[2], int) and isinstance(r[3], int) and r[5] in OPS
            and isinstance(r[6], str) and isinstance(r[7], str) and isinstance(r[9], int)):
        return None
    if len(r) > 11 and r[11] not in _STATES:
        return None
    row = dict(zip(JOURNAL_COLS_V5, r, strict=False))
    row["id"] = rowid
    return row


def _folder_row(rowid: int, r: list) -> dict | None:
    # (v6, and 14 with the POP3 migration's `local` at the end; a row written before it has 13)
    if len(r) in (13, 14) and r[0] is None and (r[12] is None or isinstance(r[12], str)) and r[11] in (0, 1) \
            and (len(r) == 13 or r[13] in (0, 1)):
        if not (isinstance(r[1], str) and r[1] and isinstance(r[4], str) and r[5] in (0, 1)):
            return None
        return {"id": rowid, "name": r[1], "delimiter": r[2], "role": r[3], "attrs": r[4], "selectable": r[5],
                "state": r[12], "local": r[13] if len(r) == 14 else 0}
    if len(r) not in (13, 15) or r[0] is not None:
        return None
    if not (isinstance(r[1], str) and r[1] and isinstance(r[4], str) and r[5] in (0, 1)
            and (r[6] is None or isinstance(r[6], int))):
        return None
    row = dict(zip(FOLDER_COLS, r[:len(FOLDER_COLS)], strict=False))
    row["id"] = rowid
    return row


def page_size_of(path: Path) -> int:
    """The page size the header names, or SQLite's default when the header is garbage."""
    with open(path, "rb") as fh:
        head = fh.read(100)
    if head[:16] == b"SQLite format 3\0":
        n = int.from_bytes(head[16:18], "big")
        n = 65536 if n == 1 else n
        if 512 <= n <= 65536 and n & (n - 1) == 0:
            return n
    return 4096


def scan_pages(path: Path, page_size: int) -> tuple[dict[int, dict], dict[int, dict]]:
    folders: dict[int, dict] = {}
    journal: dict[int, dict] = {}
    with open(path, "rb") as fh:
        pgno = 0
        while True:
            page = fh.read(page_size)
            if len(page) < page_size:
                break
            pgno += 1
            start = 100 if pgno == 1 else 0
            if page[start] != 0x0D:  # a table b-tree leaf
                continue
            for rowid, rec in _cells(page, start, page_size):
                j = _journal_row(rowid, rec)
                if j is not None:
                    journal[rowid] = j
                    continue
                f = _folder_row(rowid, rec)
                if f is not None:
                    folders[rowid] = f
    return folders, journal
