"""Measuring helpers for the benchmark: a raw IMAP client, the generated folder, Dovecot's byte
counters, RSS, statistics and bounded waits. Loopback only; nothing here imports Textual.

The raw client is deliberately dumb (one socket, literals read by size): it warms Dovecot's own
index, makes flag changes "on another device" and stands in for a client that only logs in.
"""

from __future__ import annotations

import collections
import email.header
import email.parser
import email.policy
import os
import re
import socket
import statistics
import time
import unicodedata
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from tuimail.demo.generate import generate, write_maildir
from tuimail.protocol.imap.responses import HEADER_FIELDS as TUIMAIL_FIELDS

# What each client asks for, so Dovecot has parsed (and may cache) every field before a measured run.
NEOMUTT_FIELDS = (b"DATE FROM SENDER SUBJECT TO CC MESSAGE-ID REFERENCES CONTENT-TYPE CONTENT-DESCRIPTION "
                  b"IN-REPLY-TO REPLY-TO LINES LIST-POST LIST-SUBSCRIBE LIST-UNSUBSCRIBE X-LABEL X-ORIGINAL-TO")
_LITERAL = re.compile(rb"\{(\d+)\+?\}\r\n$")


class BenchError(RuntimeError):
    """A measurement could not be made (timeout, unexpected answer); the message says which."""


def wait_for(pred: Callable[[], object], timeout: float, what: str, interval: float = 0.01):
    """Poll `pred` until it returns something truthy; BenchError after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        got = pred()
        if got:
            return got
        if time.monotonic() > deadline:
            raise BenchError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(interval)


# ------------------------------------------------------------------------------------------ IMAP

class RawImap:
    """Minimal IMAP4rev1 client over a plain loopback socket."""

    def __init__(self, port: int, user: str, password: str, host: str = "127.0.0.1", timeout: float = 120.0):
        self.sock = socket.create_connection((host, port), timeout=timeout)
        self.f = self.sock.makefile("rb", buffering=1 << 16)
        self.n = 0
        greeting = self.f.readline()
        if not greeting.startswith(b"* OK"):
            raise BenchError(f"unexpected IMAP greeting {greeting[:80]!r}")
        self.command(f'LOGIN "{user}" "{password}"'.encode())

    def command(self, cmd: bytes, keep: Callable[[bytes], bool] | None = None) -> list[bytes]:
        """Send one command; return the untagged lines `keep` accepts (literals stay inline).
        Raise BenchError on NO/BAD."""
        self.n += 1
        tag = b"B%d" % self.n
        self.sock.sendall(tag + b" " + cmd + b"\r\n")
        kept = []
        while True:
            line = self.f.readline()
            if not line:
                raise BenchError(f"connection closed during {cmd[:40]!r}")
            while True:  # a line ending in {n} is followed by n bytes of literal, then more line
                m = _LITERAL.search(line)
                if not m:
                    break
                line += self.f.read(int(m.group(1))) + self.f.readline()
            if line.startswith(tag + b" "):
                if not line[len(tag) + 1:].startswith(b"OK"):
                    raise BenchError(f"{cmd[:60]!r} failed: {line.strip()[:200]!r}")
                return kept
            if keep is not None and keep(line):
                kept.append(line)

    def search(self, criteria: bytes) -> list[int]:
        lines = self.command(b"UID SEARCH " + criteria, keep=lambda ln: ln.startswith(b"* SEARCH"))
        return [int(x) for ln in lines for x in ln.split()[2:]]

    def close(self) -> None:
        try:
            self.command(b"LOGOUT")
        except (BenchError, OSError):
            pass
        finally:
            self.f.close()
            self.sock.close()

    def __enter__(self) -> RawImap:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def compact(uids: Iterable[int]) -> str:
    out: list[list[int]] = []
    for u in sorted(set(uids)):
        if out and u == out[-1][1] + 1:
            out[-1][1] = u
        else:
            out.append([u, u])
    return ",".join(str(a) if a == b else f"{a}:{b}" for a, b in out)


def warm_dovecot(user) -> float:
    """One full header FETCH per client's field set (and the SORT aerc asks for): Dovecot's
    index and cache are warm before any measured run. Returns the seconds it took."""
    t0 = time.monotonic()
    with RawImap(user.imap_port, user.name, user.password) as c:
        c.command(b"SELECT INBOX")
        c.command(b"UID FETCH 1:* (UID FLAGS RFC822.SIZE BODY.PEEK[HEADER.FIELDS (" + TUIMAIL_FIELDS + b")])")
        c.command(b"UID FETCH 1:* (UID FLAGS INTERNALDATE RFC822.SIZE BODY.PEEK[HEADER.FIELDS ("
                  + NEOMUTT_FIELDS + b")])")
        c.command(b"UID FETCH 1:* (UID FLAGS INTERNALDATE RFC822.SIZE ENVELOPE)")
        c.command(b"UID SORT (REVERSE DATE) UTF-8 ALL")
    return time.monotonic() - t0


def raw_fetch_seconds(user, items: bytes) -> tuple[float, int]:
    """`UID FETCH 1:* items` read off the socket without parsing: how fast the server is right
    now, comparable with DESIGN §3's "raw socket reader" figures. Returns (seconds, bytes)."""
    with RawImap(user.imap_port, user.name, user.password) as c:
        c.command(b"EXAMINE INBOX")
        sock, end = c.sock, (b"\r\nBF OK", b"\r\nBF NO", b"\r\nBF BAD")
        t0 = time.monotonic()
        sock.sendall(b"BF UID FETCH 1:* " + items + b"\r\n")
        n, tail = 0, b""
        while not any(e in tail for e in end):
            data = sock.recv(1 << 20)
            if not data:
                raise BenchError("connection closed during the raw FETCH")
            n += len(data)
            tail = (tail + data)[-300:]
        dt = time.monotonic() - t0
    return dt, n


def raw_idle_latency(user, samples: int = 6) -> list[float]:
    """Dovecot alone: one raw connection IDLEs, another sets/clears \\Flagged; milliseconds until
    the idling one reads the FETCH. The floor under any client's IDLE latency."""
    out = []
    with RawImap(user.imap_port, user.name, user.password) as idler, \
            RawImap(user.imap_port, user.name, user.password) as other:
        idler.command(b"SELECT INBOX")
        other.command(b"SELECT INBOX")
        uid = other.search(b"UNFLAGGED")[-1]
        for i in range(samples):
            idler.sock.sendall(b"I%d IDLE\r\n" % i)
            if not idler.f.readline().startswith(b"+"):
                raise BenchError("IDLE was not accepted")
            t0 = time.monotonic()
            other.command(b"UID STORE %d %sFLAGS.SILENT (\\Flagged)" % (uid, b"+" if i % 2 == 0 else b"-"))
            while b"FETCH" not in idler.f.readline():
                if time.monotonic() - t0 > 10:
                    raise BenchError("the idling connection heard nothing within 10 s")
            out.append((time.monotonic() - t0) * 1000)
            idler.sock.sendall(b"DONE\r\n")
            while not idler.f.readline().startswith(b"I%d " % i):
                pass
            time.sleep(0.2)
    return out


def change_flags(user, k: int, *, add: bool, uids: list[int] | None = None) -> list[int]:
    """Set (or clear) \\Flagged on k unflagged messages from another connection; returns the uids."""
    with RawImap(user.imap_port, user.name, user.password) as c:
        c.command(b"SELECT INBOX")
        if uids is None:
            free = c.search(b"UNFLAGGED")
            if len(free) < k:
                raise BenchError(f"only {len(free)} unflagged messages, {k} needed")
            uids = free[:k]
        sign = b"+" if add else b"-"
        c.command(b"UID STORE " + compact(uids).encode() + b" " + sign + b"FLAGS.SILENT (\\Flagged)")
    return uids


def new_sessions(server, user, fn: Callable[[], object], expect: int | None = 1,
                 timeout: float = 15.0) -> tuple[object, list[tuple[int, int]]]:
    """Run fn(); return its result and the (in, out) byte counts of the IMAP sessions of `user`
    that ended meanwhile (Dovecot's logout line). With `expect`, wait for that many; with None,
    for at least one, then 0.3 s more for any other (a client may open several connections)."""
    n0 = len(server.session_bytes(user))
    result = fn()
    got = server.wait_sessions(user, n0 + (expect or 1), timeout=timeout)
    if not expect:
        time.sleep(0.3)
        got = server.session_bytes(user)
    return result, got[n0:]


# ------------------------------------------------------------------------------ the folder

@dataclass
class Folder:
    n: int
    user: object
    newest: list[str]  # subject needles of the newest messages, newest first
    big_uids: list[int] = field(default_factory=list)
    big_text_bytes: int = 0  # encoded size of the text part of the big-attachment message
    write_seconds: float = 0.0
    warm_seconds: float = 0.0
    calibration: dict = field(default_factory=dict)  # raw FETCH (seconds, bytes), see raw_fetch_seconds


def display_prefix(text: str, cells: int = 18) -> str:
    """The first `cells` terminal cells of `text` (wide characters count 2), spaces collapsed."""
    text = " ".join(text.split())
    out, used = [], 0
    for ch in text:
        w = 2 if unicodedata.east_asian_width(ch) in "WF" else 1
        if used + w > cells:
            break
        out.append(ch)
        used += w
    return "".join(out).rstrip()


def decoded_subject(raw: bytes) -> str:
    hdr = email.parser.BytesHeaderParser(policy=email.policy.compat32).parsebytes(raw)
    value = hdr.get("Subject", "")
    return str(email.header.make_header(email.header.decode_header(value)))


def text_part_bytes(raw: bytes) -> int:
    """Encoded size of the first text/plain part, as BODY[n] sends it."""
    msg = email.parser.BytesParser(policy=email.policy.compat32).parsebytes(raw)
    for part in msg.walk():
        if part.get_content_type() == "text/plain":
            return len(part.get_payload(decode=False).encode("utf-8", "surrogateescape"))
    raise BenchError("the big message has no text/plain part")


def build_folder(server, n: int, seed: int = 1, needles: int = 3, name: str | None = None,
                 imap: bool = True) -> Folder:
    """A user whose INBOX holds n generated messages (5 carry a 2 MB attachment), written
    straight into the Maildir, then Dovecot's index warmed (imap=False: the caller warms it its
    own way, e.g. a POP3 session; no IMAP calibration)."""
    user = server.add_user(name or f"bench{n}")
    last = collections.deque(maxlen=needles)
    big = []

    def stream():
        for m in generate(n, seed=seed, big_attachment_every=max(n // 5, 1)):
            last.append(m)
            if m.kind == "big":
                big.append(m.raw)
            yield m

    t0 = time.monotonic()
    uid, gid = server.mail_ids
    write_maildir(user.maildir, stream(), uid=uid, gid=gid)
    folder = Folder(n, user, [display_prefix(decoded_subject(m.raw)) for m in reversed(last)])
    folder.write_seconds = time.monotonic() - t0
    if not imap:
        return folder
    folder.warm_seconds = warm_dovecot(user)
    folder.calibration = {"flags": raw_fetch_seconds(user, b"(UID FLAGS)"),
                          "headers": raw_fetch_seconds(user, b"(UID FLAGS RFC822.SIZE BODY.PEEK[HEADER.FIELDS ("
                                                       + TUIMAIL_FIELDS + b")])")}
    with RawImap(user.imap_port, user.name, user.password) as c:
        c.command(b"EXAMINE INBOX")
        folder.big_uids = c.search(b"LARGER 1500000")
        total = c.search(b"ALL")
    if len(total) != n or not folder.big_uids:
        raise BenchError(f"Dovecot lists {len(total)} messages ({len(folder.big_uids)} big), expected {n}")
    folder.big_text_bytes = text_part_bytes(big[-1])
    return folder


# ------------------------------------------------------------------------ processes, stats

def descendants(pid: int) -> list[int]:
    """pid and every process below it (from /proc)."""
    children: dict[int, list[int]] = collections.defaultdict(list)
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as f:
                stat = f.read()
        except OSError:
            continue
        ppid = int(stat[stat.rindex(b")") + 2:].split()[1])
        children[ppid].append(int(entry))
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        todo.extend(children.get(p, ()))
    return out


def rss_mb(pid: int) -> float:
    """Sum of VmRSS (MB) over pid and its descendants (a shell in between counts too: we exec)."""
    total = 0
    for p in descendants(pid):
        try:
            with open(f"/proc/{p}/status") as f:
                for line in f:
                    if line.startswith("VmRSS:"):
                        total += int(line.split()[1])
        except OSError:
            continue
    return total / 1024


def median(xs: list[float]) -> float | None:
    xs = [x for x in xs if x is not None]
    return statistics.median(xs) if xs else None


def percentile(xs: list[float], q: float) -> float | None:
    xs = sorted(x for x in xs if x is not None)
    if not xs:
        return None
    return xs[min(len(xs) - 1, int(round(q * (len(xs) - 1))))]


def loadavg() -> str:
    try:
        with open("/proc/loadavg") as f:
            return " ".join(f.read().split()[:3])
    except OSError:
        return "?"
