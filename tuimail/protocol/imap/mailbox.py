"""Mailbox-level IMAP commands, sent raw after login (see connection.py for why).

A command group of ImapConnection: every method runs on the thread that owns the connection and
sends through its Session (`command`, `send_command`/`read_until` for pipelining).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator

from tuimail.errors import ProtocolError
from tuimail.protocol.imap import uidset, wire
from tuimail.protocol.imap.responses import (
    _FLAGS_RE,
    _MODSEQ_RE,
    _SIZE_RE,
    _UID_RE,
    HEADER_FIELDS,
    FolderEntry,
    HeaderItem,
    SelectResult,
    Unsolicited,
    _flags,
    encode_mailbox,
    flag_arg,
    internaldate_handler,
    mailbox_name,
    num,
    scan_header_fetches,
    status_dict,
    vanished_set,
)
from tuimail.protocol.imap.roles import assign_roles
from tuimail.protocol.imap.session import FastScan, Handler, Response, Session
from tuimail.protocol.imap.wire import ResponseReader

Progress = Callable[[int], None]  # uids sent so far (a bulk action's progress)

MAX_VANISHED_LINES = 100  # in one SELECT answer; more are unsolicited data
# A SEARCH answer cannot name more uids than a folder holds: past this many, a server is not
# answering but flooding (4M uids already take ~150 MB as Python ints).
MAX_SEARCH_UIDS = 4_000_000
# A FETCH gets one answer per message asked for (a few repeats tolerated): an endless stream of
# answers that look like ours ends here instead of in memory.
FETCH_SLACK = 1000


class MailboxCommands:
    """LIST, STATUS, ENABLE, SELECT and the commands on the selected folder's messages."""

    def __init__(self, session: Session, roles: dict[str, str] | None = None):
        self.session = session
        self.roles = roles if roles is not None else {}  # the account's `roles` key: role -> folder name

    def enable(self, *exts: str) -> set[str]:
        got: set[str] = set()

        def handler(resp: Response) -> bool:
            if resp[0].upper().startswith(b"* ENABLED"):
                got.update(x.decode().upper() for x in resp[0].split()[2:])
                return True
            return False

        self.session.command(b"ENABLE " + " ".join(exts).encode(), handler)
        self.session.enabled |= got
        return got

    def noop(self) -> None:
        self.session.command(b"NOOP")

    def list_folders(self, with_status: bool = False) -> list[FolderEntry]:
        """LIST "" * (with SPECIAL-USE attributes; LIST-STATUS where offered)."""
        out: dict[str, FolderEntry] = {}
        statuses: dict[str, dict] = {}
        cmd = b'LIST "" "*"'
        if with_status and self.session.has("LIST-STATUS"):
            cmd += b" RETURN (SPECIAL-USE STATUS (MESSAGES UNSEEN UIDNEXT UIDVALIDITY" + \
                (b" HIGHESTMODSEQ" if self.session.has("CONDSTORE") else b"") + b"))"
            if not self.session.has("SPECIAL-USE"):
                cmd = cmd.replace(b"SPECIAL-USE ", b"")

        def handler(resp: Response) -> bool:
            head = resp[0].upper()
            if head.startswith(b"* LIST ") or head.startswith(b"* STATUS "):
                toks = wire.tokenize(resp)
                if toks[1].upper() == b"LIST" and len(toks) >= 5:
                    attrs = tuple(a.decode("utf-8", "replace") for a in toks[2] if isinstance(a, bytes))
                    delim = toks[3].decode("utf-8", "replace") if isinstance(toks[3], bytes) else None
                    name = mailbox_name(toks[4])
                    out[name] = FolderEntry(name, delim, attrs)
                elif toks[1].upper() == b"STATUS" and len(toks) >= 4:
                    statuses[mailbox_name(toks[2])] = status_dict(toks[3])
                return True
            return False

        self.session.command(cmd, handler)
        for name, st in statuses.items():
            if name in out:
                out[name].status = st
        entries = list(out.values())
        assign_roles(entries, self.roles)
        return entries

    def status(self, folder: str) -> dict:
        items = b"MESSAGES UNSEEN UIDNEXT UIDVALIDITY" + (b" HIGHESTMODSEQ" if self.session.has("CONDSTORE") else b"")
        result: dict = {}

        def handler(resp: Response) -> bool:
            if resp[0].upper().startswith(b"* STATUS "):
                toks = wire.tokenize(resp)
                result.update(status_dict(toks[3]))
                return True
            return False

        self.session.command(b"STATUS " + encode_mailbox(folder) + b" (" + items + b")", handler)
        return result

    # ------------------------------------------------------------------ mailbox commands

    def select(self, folder: str, *, qresync: tuple[int, int, list[tuple[int, int]] | None] | None = None,
               condstore: bool = False, readonly: bool = False) -> SelectResult:
        res = SelectResult()
        cmd = (b"EXAMINE " if readonly else b"SELECT ") + encode_mailbox(folder)
        if qresync is not None:
            uv, modseq, known = qresync
            params = b"%d %d" % (uv, modseq)
            if known:
                known_s = uidset.format_runs(known).encode()  # (lo, hi) runs of the cached uids
                if len(known_s) < 4000:
                    params += b" " + known_s
            cmd += b" (QRESYNC (" + params + b"))"
        elif condstore:
            cmd += b" (CONDSTORE)"
        self.session.selected = None
        self.session.unsolicited = Unsolicited()
        # QRESYNC's answer: VANISHED (EARLIER) and FETCH of changed messages. Only what touches
        # the cached uids is kept (as runs, one entry per uid): the rest, and any repeat, is
        # handled as unsolicited data (bounded per command, no deadline credit).
        known_runs = uidset.merge(qresync[2] or []) if qresync is not None else None
        changed: dict[int, tuple[int, tuple[str, ...], int | None]] = {}
        vanished: list[tuple[int, int]] = []
        vanished_lines = [0]

        def qresync_answer(resp: Response, known_runs: list[tuple[int, int]]) -> bool:
            head = resp[0]
            if head.startswith(b"* VANISHED"):
                vanished_lines[0] += 1
                if vanished_lines[0] > MAX_VANISHED_LINES:
                    return False
                vanished[:] = uidset.merge([*vanished, *uidset.intersect(uidset.iter_runs(vanished_set(head)),
                                                                         known_runs)])
                return True
            if b" FETCH " in head[:24]:
                text = b" ".join(resp[0::2])
                um, fm = _UID_RE.search(text), _FLAGS_RE.search(text)
                if um and fm:
                    uid = num(um.group(1))
                    if uid in changed or not uidset.in_runs(known_runs, uid):
                        return False
                    mm = _MODSEQ_RE.search(text)
                    changed[uid] = (uid, _flags(fm.group(1)), num(mm.group(1)) if mm else None)
                    return True
            return False

        def handler(resp: Response) -> bool:
            head = resp[0]
            if known_runs and qresync_answer(resp, known_runs):
                return True
            if head.startswith(b"* OK ["):
                code, arg = wire.resp_code(head[5:])
                if code == b"UIDVALIDITY":
                    res.uidvalidity = num(arg)
                elif code == b"UIDNEXT":
                    res.uidnext = num(arg)
                elif code == b"HIGHESTMODSEQ":
                    res.highestmodseq = num(arg)
                elif code == b"NOMODSEQ":
                    res.nomodseq = True
                return True
            return False

        _, text = self.session.command(cmd, handler)
        self.session.selected = folder
        u = self.session.take_unsolicited()
        res.exists = u.exists or 0
        if known_runs is not None:
            if u.expunged:
                raise ProtocolError(f"{self.session.where}: too many VANISHED ranges in the answer to SELECT; refused")
            res.vanished = uidset.merge([*vanished, *uidset.intersect(u.vanished, known_runs)])
            for entry in u.flags:  # repeats (the later one wins) and uids we do not hold
                if entry[0] in changed or uidset.in_runs(known_runs, entry[0]):
                    changed[entry[0]] = entry
            res.changed = list(changed.values())
        else:
            res.vanished = u.vanished
            res.changed = u.flags
        return res

    def unselect(self) -> None:
        if self.session.selected is None:
            return
        self.session.command(b"UNSELECT" if self.session.has("UNSELECT") else b"CLOSE", check=False)
        self.session.selected = None

    def fetch_flags(self, uids: Iterable[int] | None = None, changedsince: int | None = None,
                    vanished: bool = False) -> list[tuple[int, tuple[str, ...], int | None]]:
        """UID FETCH set (FLAGS [MODSEQ]) [(CHANGEDSINCE m [VANISHED])]. With uids None: 1:*."""
        out: list[tuple[int, tuple[str, ...], int | None]] = []
        enabled = self.session.enabled
        want_modseq = changedsince is not None or "CONDSTORE" in enabled or "QRESYNC" in enabled
        items = b"(UID FLAGS MODSEQ)" if want_modseq else b"(UID FLAGS)"
        mod = b""
        if changedsince is not None:
            mod = b" (CHANGEDSINCE %d%s)" % (changedsince, b" VANISHED" if vanished else b"")

        uids = None if uids is None else list(uids)
        cap = (MAX_SEARCH_UIDS if uids is None else len(uids)) + FETCH_SLACK

        def handler(resp: Response) -> bool:
            head = resp[0]
            if len(resp) == 1 and b" FETCH " in head[:24]:
                um, fm = _UID_RE.search(head), _FLAGS_RE.search(head)
                if um and fm:
                    if len(out) >= cap:
                        raise ValueError("more FETCH answers than messages asked for")
                    mm = _MODSEQ_RE.search(head)
                    out.append((num(um.group(1)), _flags(fm.group(1)), num(mm.group(1)) if mm else None))
                    return True
            return False

        sets = [b"1:*"] if uids is None else [s.encode() for s in uidset.chunked(uids)]
        for s in sets:
            self.session.command(b"UID FETCH " + s + b" " + items + mod, handler)
        return out

    def fetch_internaldates(self, uids: Iterable[int]) -> dict[int, int]:
        """UID FETCH set (UID INTERNALDATE) -> {uid: arrival time, Unix seconds}: the date shown for
        a message without a Date: header (rare, so fetched only for those)."""
        out: dict[int, int] = {}
        for s in uidset.chunked(sorted(set(uids))):
            self.session.command(b"UID FETCH " + s.encode() + b" (UID INTERNALDATE)", internaldate_handler(out))
        return out

    def fetch_headers(self, uids: list[int]) -> Iterator[HeaderItem]:
        for window in self.fetch_header_windows([uids]):
            yield from window

    def fetch_header_seq(self, first: int, last: int) -> list[HeaderItem]:
        """Header-only FETCH of the messages at sequence numbers first..last (with their UIDs).

        A first sync's first screen: right after SELECT, the newest messages are the last
        sequence numbers (EXISTS), so they can be fetched before the UID SEARCH of the whole
        folder, which Dovecot takes ~30 ms to answer at 100k and we ~15 ms to expand."""
        items: list[HeaderItem] = []
        req, handler, fast = self._header_fetch_parts(items, last - first + 1 + FETCH_SLACK)
        self.session.command(b"FETCH %d:%d " % (first, last) + req, handler, fast=fast)
        return items

    def fetch_header_windows(self, windows: list[list[int]]) -> Iterator[list[HeaderItem]]:
        """Header-only FETCH, one list of items per window, highest uids first (hot path).

        Responses in Dovecot's usual shape are cut straight out of the read buffer by one regex
        (no per-line tokenising); anything else goes through the generic parser."""
        items: list[HeaderItem] = []
        # (Dovecot answers pipelined FETCHes in parallel: a window's items may include some of the
        # next window's, so the bound is everything asked for, not one window)
        req, handler, fast = self._header_fetch_parts(items, sum(map(len, windows)) + FETCH_SLACK)
        # Pipelined: the next window's FETCH is already on the wire while we parse this one, so
        # the server builds responses on the other core instead of waiting for us.
        cmds: list[tuple[int, bytes]] = []
        for w, uids in enumerate(windows):
            cmds += [(w, b"UID FETCH " + s.encode() + b" " + req) for s in uidset.chunked(uids, reverse=True)]
        # The first window goes alone: Dovecot answers pipelined FETCHes as they come, so the
        # next window's responses would arrive before the first tagged OK and the first screen
        # would wait for them (measured: 5,300 rows in the "first" window, +0.8 s at 100k).
        first_window = [i for i, (w, _) in enumerate(cmds) if w == 0]
        tags: dict[int, bytes] = {i: self.session.send_command(cmds[i][1]) for i in first_window}
        nxt = len(first_window)
        for i, (w, cmd) in enumerate(cmds):
            self.session.read_until(tags.pop(i), cmd, handler, fast=fast)
            while nxt < len(cmds) and nxt <= i + 2 and (w > 0 or i + 1 == len(first_window)):
                tags[nxt] = self.session.send_command(cmds[nxt][1])
                nxt += 1
            if i + 1 == len(cmds) or cmds[i + 1][0] != w:
                yield list(items)
                items.clear()

    def _header_fetch_parts(self, items: list[HeaderItem], cap: int) -> tuple[bytes, Handler, FastScan]:
        """(the FETCH items, the generic response handler, the fast scanner), both appending
        HeaderItems to `items` (at most `cap` of them)."""
        want_modseq = "CONDSTORE" in self.session.enabled or "QRESYNC" in self.session.enabled
        req = (b"(UID FLAGS " + (b"MODSEQ " if want_modseq else b"") + b"RFC822.SIZE BODY.PEEK[HEADER.FIELDS ("
               + HEADER_FIELDS + b")])")
        uid_search, flags_search, modseq_search, size_search = (_UID_RE.search, _FLAGS_RE.search,
                                                                _MODSEQ_RE.search, _SIZE_RE.search)

        def handler(resp: Response) -> bool:
            head = resp[0]
            if b" FETCH " not in head[:24]:
                return False
            text = b" ".join(resp[0::2])
            header = b""
            for i in range(1, len(resp), 2):
                # the literal follows "BODY[HEADER.FIELDS (...)]": look from the last "BODY[" (the
                # echoed field list is longer than 80 bytes, and Cyrus puts FLAGS before UID, so
                # its answers come here rather than through the fast scanner)
                before = resp[i - 1].upper()
                if b"HEADER" in before[before.rfind(b"BODY["):]:
                    header = resp[i]
            um = uid_search(text)
            sm = size_search(text)
            if um is None or sm is None or b"HEADER" not in text.upper():
                return False  # an unsolicited flag update, not our answer
            if len(items) >= cap:
                raise ValueError("more FETCH answers than messages asked for")
            fm, mm = flags_search(text), modseq_search(text)
            items.append(HeaderItem(num(um.group(1)), _flags(fm.group(1)) if fm else (),
                                    num(mm.group(1)) if mm else None, num(sm.group(1)), header))
            return True

        def fast(reader: ResponseReader) -> None:
            scan_header_fetches(reader, items, cap)

        return req, handler, fast

    def store_flags(self, uids: Iterable[int], add: Iterable[str] = (), remove: Iterable[str] = (),
                    unchangedsince: int | None = None, progress: Progress | None = None
                    ) -> tuple[list[int], list[tuple[int, int | None]]]:
        """UID STORE +FLAGS.SILENT / -FLAGS.SILENT, conditional when unchangedsince is given.
        Returns (uids that failed UNCHANGEDSINCE [MODIFIED], [(uid, new modseq)])."""
        modified: list[int] = []
        updated: list[tuple[int, int | None]] = []
        uids = list(uids)
        sent = 0  # (uids sent so far, for progress: both a + and a - pass count)

        def handler(resp: Response) -> bool:
            head = resp[0]
            if b" FETCH " in head[:24]:
                um, mm = _UID_RE.search(head), _MODSEQ_RE.search(head)
                if um:
                    updated.append((num(um.group(1)), num(mm.group(1)) if mm else None))
                    if _FLAGS_RE.search(head) is None:
                        return True
            return False

        for op, flags in ((b"+", sorted(set(add))), (b"-", sorted(set(remove)))):
            if not flags:
                continue
            flag_b = b" ".join(flag_arg(f) for f in flags)
            for s in uidset.chunked(uids):
                mod = b" (UNCHANGEDSINCE %d)" % unchangedsince if unchangedsince is not None else b""
                _, text = self.session.command(b"UID STORE " + s.encode() + mod + b" " + op + b"FLAGS.SILENT (" + flag_b
                                       + b")", handler)
                code, arg = wire.resp_code(text)
                if code == b"MODIFIED":  # (a subset of what we sent)
                    modified.extend(uidset.parse(arg, limit=len(uids)))
                if progress is not None:
                    sent += uidset.count(uidset.iter_runs(s))
                    progress(min(sent, len(uids)))
        return sorted(set(modified)), updated

    def move(self, uids: Iterable[int], dest: str, progress: Progress | None = None) -> dict[int, int]:
        """Move uids to dest. Returns {old uid: new uid} from COPYUID (empty when not reported).
        progress(n) after each command line's set (at most MAX_SET_LEN: thousands of uids go
        as a few compact sets), n the uids sent so far."""
        return self._copy_or_move(uids, dest, True, progress)

    def copy(self, uids: Iterable[int], dest: str, progress: Progress | None = None) -> dict[int, int]:
        """UID COPY to dest (in sets as `move`). Returns {uid: the copy's uid} from COPYUID."""
        return self._copy_or_move(uids, dest, False, progress)

    def _copy_or_move(self, uids: Iterable[int], dest: str, move: bool, progress: Progress | None) -> dict[int, int]:
        uids = sorted(set(uids))
        mapping: dict[int, int] = {}
        sent = 0

        def grab(text: bytes) -> None:
            code, arg = wire.resp_code(text)
            if code == b"COPYUID":
                parts = arg.split()
                if len(parts) == 3:  # (never more uids than we moved)
                    src, dst = uidset.parse(parts[1], limit=len(uids)), uidset.parse(parts[2], limit=len(uids))
                    mapping.update(zip(src, dst, strict=False))

        def handler(resp: Response) -> bool:
            head = resp[0]
            if head.startswith(b"* OK ["):
                grab(head[5:])
                return True
            return False

        for s in uidset.chunked(uids):
            if not move:
                _, text = self.session.command(b"UID COPY " + s.encode() + b" " + encode_mailbox(dest), handler)
                grab(text)
            elif self.session.has("MOVE"):
                _, text = self.session.command(b"UID MOVE " + s.encode() + b" " + encode_mailbox(dest), handler)
                grab(text)
            else:
                _, text = self.session.command(b"UID COPY " + s.encode() + b" " + encode_mailbox(dest), handler)
                grab(text)
                self.session.command(b"UID STORE " + s.encode() + b" +FLAGS.SILENT (\\Deleted)")
                if self.session.has("UIDPLUS"):
                    self.session.command(b"UID EXPUNGE " + s.encode())
                else:  # without UIDPLUS a plain EXPUNGE would also remove others' \Deleted mail
                    pass
            if progress is not None:
                sent += uidset.count(uidset.iter_runs(s))
                progress(sent)
        return mapping

    def expunge_uids(self, uids: Iterable[int], progress: Progress | None = None) -> None:
        uids = sorted(set(uids))
        sent = 0
        for s in uidset.chunked(uids):
            self.session.command(b"UID STORE " + s.encode() + b" +FLAGS.SILENT (\\Deleted)")
            if self.session.has("UIDPLUS"):
                self.session.command(b"UID EXPUNGE " + s.encode())
            else:
                self.session.command(b"EXPUNGE")
            if progress is not None:
                sent += uidset.count(uidset.iter_runs(s))
                progress(sent)

    def fetch_items(self, uid: int, items: bytes) -> dict:
        """UID FETCH uid (items) -> {ITEM NAME: value} through the full tokenizer."""
        result: dict = {}

        def handler(resp: Response) -> bool:
            if b" FETCH " in resp[0][:24]:
                toks = wire.tokenize(resp)
                if len(toks) >= 4 and isinstance(toks[3], tuple):
                    d = wire.pairs(toks[3])
                    if d.get(b"UID") == uid:
                        result.update(d)
                        return True
            return False

        self.session.command(b"UID FETCH %d (UID %s)" % (uid, items), handler)
        return result

    def fetch_bodystructure(self, uid: int):
        d = self.fetch_items(uid, b"BODYSTRUCTURE")
        return d.get(b"BODYSTRUCTURE")

    def fetch_section(self, uid: int, section: str, offset: int = 0, length: int | None = None) -> bytes | None:
        """BODY.PEEK[section]<offset.length> (partial fetch); None when the message is gone."""
        if not re.fullmatch(r"[0-9.]*(HEADER|TEXT|MIME)?|", section):
            raise ValueError(f"bad section {section!r}")
        partial = b"<%d.%d>" % (offset, length) if length is not None else b""
        d = self.fetch_items(uid, b"BODY.PEEK[%s]%s" % (section.encode(), partial))
        for k, v in d.items():
            if k.startswith(b"BODY["):
                return v if isinstance(v, bytes) else (b"" if v is None else str(v).encode())
        return None
