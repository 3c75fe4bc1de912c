"""What one POP3 sync does, decided from what the server lists and what the account already has.

Pure logic: no socket, no store. The backend feeds it the server's UIDL + LIST answer and the
account's known messages (UIDL, header fingerprint, download time, body committed or not, still
believed on the server) and gets back what to download, what to DELE and what to remap.

Identity. A message is known by its UIDL. Because a server restore changes every UIDL (Dovecot's
default UIDL is uid + UIDVALIDITY: losing dovecot-uidlist renumbers everything, DESIGN.md §3b), each
known message also carries a fingerprint: a hash of its header block (what `TOP n 0` returns, or the
head of the RETR'd message: both give the same) and its LIST size. When most of the server's UIDLs
are unknown while most of the UIDLs we expected are missing, `plan()` first asks for the
fingerprints of the unknown messages (`need_fingerprints`: the backend runs TOP n 0 and calls again);
those that match a known message are remapped to their new UIDL and not downloaded again, and the
plan says so. A server without UIDL is handled the same way for every message, with a warning.

Nothing lost, nothing twice: DELE is planned only for messages whose body is committed locally
(`has_body`); a message downloaded in this sync is DELE'd by the backend after its commit, when
`delete_after_download` says so. The server applies DELEs only at QUIT.
"""

from __future__ import annotations

import hashlib
import operator
from collections import defaultdict
from collections.abc import Hashable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import NamedTuple

__all__ = ["KnownMessage", "Plan", "Policy", "ServerMessage", "fingerprint", "header_block", "plan"]

DAY = 86400.0
MODES = ("keep", "delete")


def header_block(raw: bytes) -> bytes:
    """The header block of a message or of a TOP answer: everything before the first empty line."""
    if raw.startswith(b"\r\n") or raw.startswith(b"\n"):
        return b""  # no headers at all
    end = raw.find(b"\r\n\r\n")
    # a bare LF LF before it (none can start at end - 1 or end: raw[end] is CR), not in the body
    lf = raw.find(b"\n\n", 0, end) if end >= 0 else raw.find(b"\n\n")
    return raw[:lf] if lf >= 0 else raw[:end] if end >= 0 else raw


def fingerprint(raw_or_header: bytes, size: int) -> str:
    """The fingerprint of a message: sha256 of its header block (line ends normalised to LF) and
    its size as the server's LIST reports it. Equal for `TOP n 0` and the full message."""
    block = header_block(raw_or_header).replace(b"\r\n", b"\n").rstrip(b"\r\n")
    return hashlib.sha256(block + b"\n\0size=%d" % int(size)).hexdigest()


class ServerMessage(NamedTuple):
    """One line of the server's LIST (and UIDL) answer. uidl is None when the server has none.
    (Tuples, not frozen dataclasses: a first sync makes 5,000 of them, 5 ms as dataclasses.)"""

    number: int
    size: int
    uidl: str | None = None


class KnownMessage(NamedTuple):
    """A message the account already has. `ref` is the backend's own handle (a local id)."""

    ref: Hashable
    uidl: str | None
    fingerprint: str | None
    downloaded_at: float  # epoch seconds of the commit (keep_days counts from here)
    has_body: bool = True  # False: only the header block is stored (headers_first), no DELE yet
    on_server: bool = True  # False once a QUIT applied our DELE (or the server no longer lists it)


@dataclass(frozen=True)
class Policy:
    """mode "keep": leave mail on the server (keep_days N: delete N days after download);
    mode "delete": delete each message once it is committed locally."""

    mode: str = "keep"
    keep_days: float | None = None

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise ValueError(f"mode {self.mode!r}: use keep or delete")
        if self.keep_days is not None and not self.keep_days >= 0:
            raise ValueError(f"keep_days {self.keep_days!r}: use a number of days >= 0")

    def due(self, downloaded_at: float, now: float) -> bool:
        """Is a message committed at `downloaded_at` to be deleted from the server at `now`?"""
        if self.mode == "delete":
            return True
        return self.keep_days is not None and downloaded_at + self.keep_days * DAY <= now


@dataclass
class Plan:
    # messages the account does not have: download them (RETR, or TOP first with headers_first)
    new: list[ServerMessage] = field(default_factory=list)
    # known messages whose body is not committed yet: RETR them
    bodies: list[tuple[ServerMessage, KnownMessage]] = field(default_factory=list)
    # known, body committed, due under the policy: DELE them
    delete: list[tuple[ServerMessage, KnownMessage]] = field(default_factory=list)
    # known messages found again by fingerprint under another (or no) UIDL: store the new UIDL
    remap: list[tuple[KnownMessage, ServerMessage]] = field(default_factory=list)
    # every known message present on the server, by UIDL or by fingerprint
    present: list[tuple[ServerMessage, KnownMessage]] = field(default_factory=list)
    # known messages believed on the server that it no longer lists
    gone: list[KnownMessage] = field(default_factory=list)
    # non-empty: nothing else is decided; fetch these fingerprints (TOP n 0) and call plan() again
    need_fingerprints: list[ServerMessage] = field(default_factory=list)
    uidl_reset: bool = False
    no_uidl: bool = False
    delete_after_download: bool = False  # DELE each message of `new`/`bodies` after its commit
    notices: list[str] = field(default_factory=list)  # one line each, for the status bar / CLI


_number = operator.attrgetter("number")


def plan(server: Iterable[ServerMessage], known: Iterable[KnownMessage], policy: Policy, now: float,
         fingerprints: Mapping[int, str] | None = None) -> Plan:
    """Decide one sync. `fingerprints`: message number -> fingerprint() of its header block, for
    (at least) the messages a previous call listed in need_fingerprints."""
    server = sorted(server, key=_number)
    known = list(known)
    fps = dict(fingerprints or {})
    out = Plan(delete_after_download=policy.due(now, now))

    # Messages with a usable UIDL, and the rest (no UIDL, or one the server repeated)
    uidls = {m.uidl for m in server}
    if None not in uidls and len(uidls) == len(server):  # (nearly always: every UIDL given once)
        identified, anonymous = server, []
    else:
        counts: defaultdict[str, int] = defaultdict(int)
        for m in server:
            if m.uidl is not None:
                counts[m.uidl] += 1
        identified = [m for m in server if m.uidl is not None and counts[m.uidl] == 1]
        anonymous = [m for m in server if m.uidl is None or counts[m.uidl] > 1]
    if server and all(m.uidl is None for m in server):
        out.no_uidl = True
        out.notices.append("the server offers no UIDL: messages are recognised by their headers and size"
                           " (TOP for every message on each sync)")
    elif anonymous:
        out.notices.append(f"the server listed {len(anonymous)} messages without a unique UIDL:"
                           " they are recognised by their headers and size")

    by_uidl = {k.uidl: k for k in known if k.uidl is not None}
    matched: list[tuple[ServerMessage, KnownMessage]] = []
    unknown: list[ServerMessage] = []
    if not by_uidl:  # (a first sync: nothing to match by UIDL)
        unknown = list(identified)
    else:
        for m in identified:
            k = by_uidl.get(m.uidl or "")
            if k is not None:
                matched.append((m, k))
            else:
                unknown.append(m)

    # A UIDL reset? Most of the server's UIDLs unknown, and most of those we expected missing.
    expected = [k for k in known if k.on_server and k.uidl is not None]
    listed = {m.uidl for m in identified} if expected else set()
    missing = [k for k in expected if k.uidl not in listed]
    suspect = bool(unknown and missing) and 2 * len(unknown) > len(identified) and 2 * len(missing) > len(expected)

    candidates = anonymous + (unknown if suspect else [])
    lacking = [m for m in candidates if m.number not in fps]
    if lacking:
        out.need_fingerprints = lacking
        return out

    # Match candidates by fingerprint against the known messages no UIDL claimed (one to one)
    claimed = {id(k) for _, k in matched}
    pool: defaultdict[str, list[KnownMessage]] = defaultdict(list)
    for k in sorted(known, key=lambda k: (not k.on_server, k.downloaded_at)):
        if id(k) not in claimed and k.fingerprint is not None:
            pool[k.fingerprint].append(k)
    unknown_numbers = {m.number for m in unknown} if candidates else set()
    fresh: list[ServerMessage] = [] if suspect else list(unknown)
    recognised = 0
    for m in sorted(candidates, key=lambda m: m.number):
        same = pool.get(fps[m.number])
        if same:
            k = same.pop(0)
            matched.append((m, k))
            claimed.add(id(k))
            if k.uidl != m.uidl:
                out.remap.append((k, m))
                if m.number in unknown_numbers:
                    recognised += 1
        else:
            fresh.append(m)
    if suspect and recognised:
        out.uidl_reset = True
        n_new = sum(1 for m in fresh if m.number in unknown_numbers)
        out.notices.append(f"the server's message ids (UIDL) changed, a restore? {recognised} messages were"
                           f" recognised by their headers and size and not downloaded again; {n_new} new")

    matched.sort(key=lambda mk: mk[0].number)
    out.present = matched
    # (without candidates `fresh` is `unknown`, already in the server's order)
    out.new = sorted(fresh, key=_number) if candidates else fresh
    for m, k in matched:
        if not k.has_body:
            out.bodies.append((m, k))
        elif policy.due(k.downloaded_at, now):
            out.delete.append((m, k))
    out.gone = [k for k in known if k.on_server and id(k) not in claimed]
    return out
