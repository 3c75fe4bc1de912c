"""The IMAP adapter: imapclient for connecting, TLS/STARTTLS and authentication; raw commands
through the same socket for everything after login.

Why (DESIGN.md §3, imapclient 4.1 pitfalls): its string message sets raise after the command ran
(#666), it sends UID lists uncompressed (Dovecot: "Too long argument"), it lacks QRESYNC SELECT,
VANISHED, UNCHANGEDSINCE/MODIFIED and ESEARCH, `copy()` drops COPYUID, `idle_check()` breaks on
split lines, and imaplib allocates whatever literal size a server claims. So after login we stop
using imapclient's reader: `wire.Reader` reads with bounds, every UID set is built compact by
`uidset`, every argument taken from data is quoted (CR/LF/NUL refused), and every command line
stays <= 8 KB.
"""

from __future__ import annotations

import hashlib
import re
import socket
import ssl
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field

import imapclient
from imapclient import imap4, imap_utf7
from imapclient import tls as imapclient_tls
from imapclient.exceptions import IMAPClientError, LoginError

from ..errors import AuthError, CommandFailed, NetworkError, ProtocolError, TLSError, TuimailError
from . import uidset, wire
from .roles import assign_roles

MAX_LINE = 8192
HEADER_FIELDS = b"FROM TO CC SUBJECT DATE MESSAGE-ID IN-REPLY-TO REFERENCES CONTENT-TYPE"

@dataclass
class FolderEntry:
    name: str
    delimiter: str | None
    attrs: tuple[str, ...]
    role: str | None = None
    status: dict = field(default_factory=dict)

    @property
    def selectable(self) -> bool:
        return not any(a.lower() in ("\\noselect", "\\nonexistent") for a in self.attrs)


@dataclass
class SelectResult:
    exists: int = 0
    uidvalidity: int | None = None
    uidnext: int | None = None
    highestmodseq: int | None = None
    nomodseq: bool = False
    vanished: list[int] = field(default_factory=list)
    changed: list[tuple[int, tuple[str, ...], int | None]] = field(default_factory=list)


@dataclass(slots=True)
class HeaderItem:
    uid: int
    flags: tuple[str, ...]
    modseq: int | None
    size: int
    header: bytes


@dataclass
class Unsolicited:
    """What the server told us without being asked (during any command or IDLE)."""

    exists: int | None = None
    expunged: bool = False  # EXPUNGE by sequence number (no QRESYNC): needs a full uid check
    vanished: list[int] = field(default_factory=list)
    flags: list[tuple[int, tuple[str, ...], int | None]] = field(default_factory=list)
    seq_flags: bool = False  # FETCH without UID (flag change by seq number): needs a flag resync

    def any(self) -> bool:
        return bool(self.exists is not None or self.expunged or self.vanished or self.flags or self.seq_flags)


_FLAGS_RE = re.compile(rb"FLAGS \(([^)]*)\)")
_UID_RE = re.compile(rb"UID (\d+)")
_MODSEQ_RE = re.compile(rb"MODSEQ \((\d+)\)")
_SIZE_RE = re.compile(rb"RFC822\.SIZE (\d+)")
_UNTAGGED_NUM = re.compile(rb"\* (\d+) ([A-Za-z]+)")


def encode_mailbox(name: str) -> bytes:
    return wire.quote(imap_utf7.encode(name))


def _flags(raw: bytes) -> tuple[str, ...]:
    # \Recent is a per-session flag: storing it would make every sync look like a change
    return tuple(f for f in raw.decode("utf-8", "replace").split() if f != "\\Recent")


def tls_context(ca_file=None, fingerprint: str | None = None) -> ssl.SSLContext:
    ctx = ssl.create_default_context(cafile=str(ca_file) if ca_file else None)
    if fingerprint:  # pinned: the pin replaces the CA check (self-signed servers)
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    return ctx


class _BoundedReads:
    """imaplib reads a literal with file.read(size), which allocates `size` bytes first. Refuse an
    oversized claim before that -- from the greeting on: imaplib reads the greeting and the first
    CAPABILITY answer inside its constructor, before any instance could be patched."""

    def __init__(self, *args, max_literal: int, **kw):
        self.max_literal = max_literal
        super().__init__(*args, **kw)

    def read(self, size):
        if size > self.max_literal:
            raise ProtocolError(f"server announced a {size}-byte literal (limit {self.max_literal}); refused")
        return super().read(size)


class _IMAP4(_BoundedReads, imap4.IMAP4WithTimeout):
    pass


class _IMAP4TLS(_BoundedReads, imapclient_tls.IMAP4_TLS):
    pass


class _Client(imapclient.IMAPClient):
    """IMAPClient whose imaplib object bounds literals from the first byte it reads."""

    def __init__(self, *args, max_literal: int, **kw):
        self._max_literal = max_literal
        super().__init__(*args, **kw)

    def _create_IMAP4(self):
        timeout = getattr(self._timeout, "connect", None)
        if self.ssl:
            return _IMAP4TLS(self.host, self.port, self.ssl_context, timeout, max_literal=self._max_literal)
        return _IMAP4(self.host, self.port, timeout, max_literal=self._max_literal)


class ImapConnection:
    """One IMAP connection. Not thread-safe: one thread owns it."""

    def __init__(self, account, secret: Callable[[], str], *, timeout: float = 60.0,
                 max_literal: int = 64 << 20, log: Callable[[str], None] | None = None):
        self.account = account
        self._secret = secret
        self.timeout = timeout
        self.max_literal = max_literal
        self.log = log
        self.client: imapclient.IMAPClient | None = None
        self.reader: wire.Reader | None = None
        self.sock: socket.socket | None = None
        self.caps: set[str] = set()
        self.enabled: set[str] = set()
        self.selected: str | None = None
        self.unsolicited = Unsolicited()
        self._tagnum = 0
        self.bytes_out = 0

    # ------------------------------------------------------------------ connect / login

    @property
    def where(self) -> str:
        return f"{self.account.host}:{self.account.port}"

    def connect(self) -> None:
        acc = self.account
        ctx = None
        if acc.security in ("tls", "starttls"):
            ctx = tls_context(acc.tls_ca_file, acc.tls_fingerprint)
        try:
            self.client = _Client(acc.host, port=acc.port, ssl=acc.security == "tls",
                                  ssl_context=ctx, timeout=self.timeout, max_literal=self.max_literal)
            if acc.security == "starttls":
                if b"STARTTLS" not in self.client.capabilities():
                    raise TLSError(f"{self.where} does not offer STARTTLS; refusing to log in in the clear"
                                   f" (accounts.{acc.name}.security)")
                self.client.starttls(ssl_context=ctx)
            if acc.tls_fingerprint and acc.security != "none":
                self._check_fingerprint(acc.tls_fingerprint)
            self._login()
            caps = self.client.capabilities()
        except TuimailError:  # TLS refusals, a refused login, a literal over the bound, a password_command error
            self._abort()
            raise
        except ssl.SSLCertVerificationError as exc:
            self._abort()
            raise TLSError(f"TLS certificate of {self.where} not trusted: {exc.verify_message}"
                           f" (set accounts.{acc.name}.tls_ca_file or tls_fingerprint)") from None
        except ssl.SSLError as exc:
            self._abort()
            raise TLSError(f"TLS with {self.where} failed: {exc.reason or exc}") from None
        except (OSError, EOFError) as exc:
            self._abort()
            raise NetworkError(f"cannot reach {self.where}: {exc.strerror or exc}") from None
        except IMAPClientError as exc:
            self._abort()
            raise NetworkError(f"{self.where}: {_one_line(exc)}") from None
        except Exception as exc:  # imapclient choking on a malformed answer (e.g. CAPABILITY without data)
            self._abort()
            raise ProtocolError(f"{self.where}: malformed answer during login ({type(exc).__name__})") from None
        self.caps = {c.decode("ascii", "replace").upper() for c in caps}
        imap = self.client._imap
        self.sock = imap.sock
        self.sock.settimeout(self.timeout)
        self.reader = wire.Reader(self.sock, max_literal=self.max_literal)

    def _check_fingerprint(self, expected: str) -> None:
        der = self.client._imap.sock.getpeercert(binary_form=True)
        got = hashlib.sha256(der or b"").hexdigest()
        if got != expected:
            raise TLSError(f"TLS certificate of {self.where} has sha256 fingerprint {got}, not the one in"
                           f" accounts.{self.account.name}.tls_fingerprint")

    def _login(self) -> None:
        acc = self.account
        try:
            secret = self._secret()
            if acc.oauth2_token_command:
                self.client.oauth2_login(acc.username, secret)
            elif b"AUTH=PLAIN" in self.client.capabilities():
                self.client.plain_login(acc.username, secret)
            else:
                self.client.login(acc.username, secret)
        except LoginError as exc:
            raise AuthError(f"{self.where} refused the login for {acc.username!r}: {_one_line(exc)}") from None

    def _abort(self) -> None:
        try:
            if self.client is not None:
                self.client.shutdown()
        except Exception:
            pass
        self.client = None

    def close(self) -> None:
        """Log out politely if we can; always release the socket."""
        if self.reader is not None:
            try:
                self.command(b"LOGOUT")
            except Exception:
                pass
        self._abort()
        self.reader = None
        self.selected = None

    def shutdown(self) -> None:
        """Drop the connection now (another thread may be blocked on it)."""
        try:
            if self.sock is not None:
                self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass

    def has(self, cap: str) -> bool:
        return cap.upper() in self.caps

    # ------------------------------------------------------------------ raw command machinery

    def _send(self, data: bytes) -> None:
        try:
            self.sock.sendall(data)
        except (OSError, AttributeError) as exc:
            raise NetworkError(f"connection to {self.where} lost: {exc}") from None
        self.bytes_out += len(data)

    def command(self, cmd: bytes, on_untagged: Callable[[list[bytes]], bool] | None = None,
                check: bool = True, fast: Callable[[wire.Reader], None] | None = None) -> tuple[str, bytes]:
        """Send one command and read to its tagged answer. Untagged responses go to on_untagged
        (return True when handled) and then to the generic handler. Returns (status, text)."""
        tag = self.send_command(cmd)
        return self.read_until(tag, cmd, on_untagged, check, fast)

    def send_command(self, cmd: bytes) -> bytes:
        """Send without waiting (pipelining); pair with read_until(tag, ...)."""
        if self.reader is None:
            raise NetworkError("not connected")
        self._tagnum += 1
        tag = b"T%d" % self._tagnum
        line = tag + b" " + cmd + b"\r\n"
        if len(line) > MAX_LINE:
            raise ValueError(f"command line of {len(line)} bytes exceeds {MAX_LINE}")
        if any(c in cmd for c in (b"\r", b"\n", b"\0")):
            raise ValueError("CR, LF or NUL inside an IMAP command")
        if self.log:
            self.log("C: " + _redact(line))
        self._send(line)
        return tag

    def read_until(self, tag: bytes, cmd: bytes, on_untagged=None, check: bool = True,
                   fast: Callable[[wire.Reader], None] | None = None) -> tuple[str, bytes]:
        try:
            return self._read_until(tag, cmd, on_untagged, check, fast)
        except ValueError as exc:  # a number or a set in a response that we cannot take (_num, uidset)
            raise ProtocolError(f"malformed server response: {exc}") from None

    def _read_until(self, tag, cmd, on_untagged, check, fast) -> tuple[str, bytes]:
        while True:
            if fast is not None:
                fast(self.reader)
            resp = self.reader.read_response()
            head = resp[0]
            if head.startswith(tag + b" "):
                rest = head[len(tag) + 1:]
                status, _, text = rest.partition(b" ")
                status_s = status.decode("ascii", "replace").upper()
                if self.log:
                    self.log("S: " + head[:200].decode("utf-8", "replace"))
                if check and status_s != "OK":
                    name = cmd.split(b" ", 2)
                    name = b" ".join(name[:2] if name[0] == b"UID" else name[:1]).decode("ascii", "replace")
                    raise CommandFailed(name, status_s, _one_line(text.decode("utf-8", "replace")))
                self._generic_code(text)
                return status_s, text
            if head.startswith(b"* "):
                if head.startswith(b"* BYE"):
                    # LOGOUT is answered with BYE and then the tagged OK
                    if not cmd.startswith(b"LOGOUT"):
                        raise NetworkError(f"{self.where} closed the session: "
                                           f"{_one_line(head[6:].decode('utf-8', 'replace'))}")
                    continue
                if on_untagged is not None and on_untagged(resp):
                    continue
                self._generic_untagged(resp)
            elif head.startswith(b"+"):
                raise ProtocolError("unexpected continuation request from the server")
            else:
                raise ProtocolError(f"unexpected server response: {head[:60]!r}")

    def _generic_code(self, text: bytes) -> None:
        code, arg = wire.resp_code(text)
        if code == b"CAPABILITY":
            self.caps = {c.upper() for c in arg.decode("ascii", "replace").split()}

    def _generic_untagged(self, resp: list[bytes]) -> None:
        head = resp[0]
        m = _UNTAGGED_NUM.match(head)
        if m:
            kind = m.group(2).upper()
            if kind == b"EXISTS":
                self.unsolicited.exists = _num(m.group(1))
            elif kind == b"EXPUNGE":
                self.unsolicited.expunged = True
            elif kind == b"FETCH":
                text = b" ".join(resp[0::2])
                fm, um = _FLAGS_RE.search(text), _UID_RE.search(text)
                if fm and um:
                    mm = _MODSEQ_RE.search(text)
                    self.unsolicited.flags.append((_num(um.group(1)), _flags(fm.group(1)),
                                                   _num(mm.group(1)) if mm else None))
                elif fm:
                    self.unsolicited.seq_flags = True
            return
        if head.startswith(b"* VANISHED"):
            rest = head[len(b"* VANISHED "):]
            if rest.upper().startswith(b"(EARLIER) "):
                rest = rest[len(b"(EARLIER) "):]
            self.unsolicited.vanished.extend(uidset.parse(rest))
            return
        if head.startswith(b"* OK ") or head.startswith(b"* NO ") or head.startswith(b"* BAD "):
            self._generic_code(head[5:] if head.startswith(b"* OK ") or head.startswith(b"* NO ") else head[6:])

    def take_unsolicited(self) -> Unsolicited:
        u, self.unsolicited = self.unsolicited, Unsolicited()
        return u

    # ------------------------------------------------------------------ session-level commands

    def enable(self, *exts: str) -> set[str]:
        got: set[str] = set()

        def handler(resp):
            if resp[0].upper().startswith(b"* ENABLED"):
                got.update(x.decode().upper() for x in resp[0].split()[2:])
                return True
            return False

        self.command(b"ENABLE " + " ".join(exts).encode(), handler)
        self.enabled |= got
        return got

    def noop(self) -> None:
        self.command(b"NOOP")

    def list_folders(self, with_status: bool = False) -> list[FolderEntry]:
        """LIST "" * (with SPECIAL-USE attributes; LIST-STATUS where offered)."""
        out: dict[str, FolderEntry] = {}
        statuses: dict[str, dict] = {}
        cmd = b'LIST "" "*"'
        if with_status and self.has("LIST-STATUS"):
            cmd += b" RETURN (SPECIAL-USE STATUS (MESSAGES UNSEEN UIDNEXT UIDVALIDITY" + \
                (b" HIGHESTMODSEQ" if self.has("CONDSTORE") else b"") + b"))"
            if not self.has("SPECIAL-USE"):
                cmd = cmd.replace(b"SPECIAL-USE ", b"")

        def handler(resp):
            head = resp[0].upper()
            if head.startswith(b"* LIST ") or head.startswith(b"* STATUS "):
                toks = wire.tokenize(resp)
                if toks[1].upper() == b"LIST" and len(toks) >= 5:
                    attrs = tuple(a.decode("utf-8", "replace") for a in toks[2] if isinstance(a, bytes))
                    delim = toks[3].decode("utf-8", "replace") if isinstance(toks[3], bytes) else None
                    name = _mailbox_name(toks[4])
                    out[name] = FolderEntry(name, delim, attrs)
                elif toks[1].upper() == b"STATUS" and len(toks) >= 4:
                    statuses[_mailbox_name(toks[2])] = _status_dict(toks[3])
                return True
            return False

        self.command(cmd, handler)
        for name, st in statuses.items():
            if name in out:
                out[name].status = st
        entries = list(out.values())
        assign_roles(entries, getattr(self.account, "roles", {}) or {})
        return entries

    def status(self, folder: str) -> dict:
        items = b"MESSAGES UNSEEN UIDNEXT UIDVALIDITY" + (b" HIGHESTMODSEQ" if self.has("CONDSTORE") else b"")
        result: dict = {}

        def handler(resp):
            if resp[0].upper().startswith(b"* STATUS "):
                toks = wire.tokenize(resp)
                result.update(_status_dict(toks[3]))
                return True
            return False

        self.command(b"STATUS " + encode_mailbox(folder) + b" (" + items + b")", handler)
        return result

    # ------------------------------------------------------------------ mailbox commands

    def select(self, folder: str, *, qresync: tuple[int, int, list[int] | None] | None = None,
               condstore: bool = False, readonly: bool = False) -> SelectResult:
        res = SelectResult()
        cmd = (b"EXAMINE " if readonly else b"SELECT ") + encode_mailbox(folder)
        if qresync is not None:
            uv, modseq, known = qresync
            params = b"%d %d" % (uv, modseq)
            if known:
                known_s = uidset.compact(known).encode()
                if len(known_s) < 4000:
                    params += b" " + known_s
            cmd += b" (QRESYNC (" + params + b"))"
        elif condstore:
            cmd += b" (CONDSTORE)"
        self.selected = None
        self.unsolicited = Unsolicited()

        def handler(resp):
            head = resp[0]
            if head.startswith(b"* OK ["):
                code, arg = wire.resp_code(head[5:])
                if code == b"UIDVALIDITY":
                    res.uidvalidity = _num(arg)
                elif code == b"UIDNEXT":
                    res.uidnext = _num(arg)
                elif code == b"HIGHESTMODSEQ":
                    res.highestmodseq = _num(arg)
                elif code == b"NOMODSEQ":
                    res.nomodseq = True
                return True
            return False

        _, text = self.command(cmd, handler)
        self.selected = folder
        u = self.take_unsolicited()
        res.exists = u.exists or 0
        res.vanished = u.vanished
        res.changed = u.flags
        return res

    def unselect(self) -> None:
        if self.selected is None:
            return
        self.command(b"UNSELECT" if self.has("UNSELECT") else b"CLOSE", check=False)
        self.selected = None

    def search_uids(self, criteria: bytes = b"ALL") -> list[int]:
        """UID SEARCH; ESEARCH's compact 'ALL' answer where the server offers it."""
        found: list[int] = []
        esearch = self.has("ESEARCH")
        cmd = b"UID SEARCH " + (b"RETURN (ALL) " if esearch else b"") + criteria

        def handler(resp):
            head = resp[0]
            up = head[:12].upper()
            if up.startswith(b"* ESEARCH"):
                toks = wire.tokenize(resp)
                for i, t in enumerate(toks):
                    if isinstance(t, bytes) and t.upper() == b"ALL" and i + 1 < len(toks):
                        val = toks[i + 1]
                        found.extend(uidset.parse(str(val) if isinstance(val, int) else val))
                return True
            if up.startswith(b"* SEARCH"):
                found.extend(_num(x) for x in head[8:].split() if x.isdigit())
                return True
            return False

        self.command(cmd, handler)
        return found

    def fetch_flags(self, uids: Iterable[int] | None = None, changedsince: int | None = None,
                    vanished: bool = False) -> list[tuple[int, tuple[str, ...], int | None]]:
        """UID FETCH set (FLAGS [MODSEQ]) [(CHANGEDSINCE m [VANISHED])]. With uids None: 1:*."""
        out: list[tuple[int, tuple[str, ...], int | None]] = []
        want_modseq = changedsince is not None or "CONDSTORE" in self.enabled or "QRESYNC" in self.enabled
        items = b"(UID FLAGS MODSEQ)" if want_modseq else b"(UID FLAGS)"
        mod = b""
        if changedsince is not None:
            mod = b" (CHANGEDSINCE %d%s)" % (changedsince, b" VANISHED" if vanished else b"")

        def handler(resp):
            head = resp[0]
            if len(resp) == 1 and b" FETCH " in head[:24]:
                um, fm = _UID_RE.search(head), _FLAGS_RE.search(head)
                if um and fm:
                    mm = _MODSEQ_RE.search(head)
                    out.append((_num(um.group(1)), _flags(fm.group(1)), _num(mm.group(1)) if mm else None))
                    return True
            return False

        sets = [b"1:*"] if uids is None else [s.encode() for s in uidset.chunked(uids)]
        for s in sets:
            self.command(b"UID FETCH " + s + b" " + items + mod, handler)
        return out

    def fetch_headers(self, uids: list[int]) -> Iterator[HeaderItem]:
        for window in self.fetch_header_windows([uids]):
            yield from window

    def fetch_header_windows(self, windows: list[list[int]]) -> Iterator[list[HeaderItem]]:
        """Header-only FETCH, one list of items per window, highest uids first (hot path).

        Responses in Dovecot's usual shape are cut straight out of the read buffer by one regex
        (no per-line tokenising); anything else goes through the generic parser."""
        items: list[HeaderItem] = []
        want_modseq = "CONDSTORE" in self.enabled or "QRESYNC" in self.enabled
        req = (b"(UID FLAGS " + (b"MODSEQ " if want_modseq else b"") + b"RFC822.SIZE BODY.PEEK[HEADER.FIELDS ("
               + HEADER_FIELDS + b")])")
        uid_search, flags_search, modseq_search, size_search = (_UID_RE.search, _FLAGS_RE.search,
                                                                _MODSEQ_RE.search, _SIZE_RE.search)

        def handler(resp):
            head = resp[0]
            if b" FETCH " not in head[:24]:
                return False
            text = b" ".join(resp[0::2])
            header = b""
            for i in range(1, len(resp), 2):
                if b"HEADER" in resp[i - 1][-80:].upper():
                    header = resp[i]
            um = uid_search(text)
            sm = size_search(text)
            if um is None or sm is None or b"HEADER" not in text.upper():
                return False  # an unsolicited flag update, not our answer
            fm, mm = flags_search(text), modseq_search(text)
            items.append(HeaderItem(_num(um.group(1)), _flags(fm.group(1)) if fm else (),
                                    _num(mm.group(1)) if mm else None, _num(sm.group(1)), header))
            return True

        def fast(reader):
            _scan_header_fetches(reader, items)

        # Pipelined: the next window's FETCH is already on the wire while we parse this one, so
        # the server builds responses on the other core instead of waiting for us.
        cmds: list[tuple[int, bytes]] = []
        for w, uids in enumerate(windows):
            cmds += [(w, b"UID FETCH " + s.encode() + b" " + req) for s in uidset.chunked(uids, reverse=True)]
        tags = [self.send_command(c) for _, c in cmds[:2]]
        for i, (w, cmd) in enumerate(cmds):
            self.read_until(tags[i], cmd, handler, fast=fast)
            if i + 2 < len(cmds):
                tags.append(self.send_command(cmds[i + 2][1]))
            if i + 1 == len(cmds) or cmds[i + 1][0] != w:
                yield list(items)
                items.clear()

    def store_flags(self, uids: Iterable[int], add: Iterable[str] = (), remove: Iterable[str] = (),
                    unchangedsince: int | None = None) -> tuple[list[int], list[tuple[int, int | None]]]:
        """UID STORE +FLAGS.SILENT / -FLAGS.SILENT, conditional when unchangedsince is given.
        Returns (uids that failed UNCHANGEDSINCE [MODIFIED], [(uid, new modseq)])."""
        modified: list[int] = []
        updated: list[tuple[int, int | None]] = []
        uids = list(uids)

        def handler(resp):
            head = resp[0]
            if b" FETCH " in head[:24]:
                um, mm = _UID_RE.search(head), _MODSEQ_RE.search(head)
                if um:
                    updated.append((_num(um.group(1)), _num(mm.group(1)) if mm else None))
                    if _FLAGS_RE.search(head) is None:
                        return True
            return False

        for op, flags in ((b"+", sorted(set(add))), (b"-", sorted(set(remove)))):
            if not flags:
                continue
            flag_b = b" ".join(_flag_arg(f) for f in flags)
            for s in uidset.chunked(uids):
                mod = b" (UNCHANGEDSINCE %d)" % unchangedsince if unchangedsince is not None else b""
                _, text = self.command(b"UID STORE " + s.encode() + mod + b" " + op + b"FLAGS.SILENT (" + flag_b
                                       + b")", handler)
                code, arg = wire.resp_code(text)
                if code == b"MODIFIED":
                    modified.extend(uidset.parse(arg))
        return sorted(set(modified)), updated

    def move(self, uids: Iterable[int], dest: str) -> dict[int, int]:
        """Move uids to dest. Returns {old uid: new uid} from COPYUID (empty when not reported)."""
        uids = sorted(set(uids))
        mapping: dict[int, int] = {}

        def grab(text: bytes):
            code, arg = wire.resp_code(text)
            if code == b"COPYUID":
                parts = arg.split()
                if len(parts) == 3:
                    src, dst = uidset.parse(parts[1]), uidset.parse(parts[2])
                    mapping.update(zip(src, dst))

        def handler(resp):
            head = resp[0]
            if head.startswith(b"* OK ["):
                grab(head[5:])
                return True
            return False

        for s in uidset.chunked(uids):
            if self.has("MOVE"):
                _, text = self.command(b"UID MOVE " + s.encode() + b" " + encode_mailbox(dest), handler)
                grab(text)
            else:
                _, text = self.command(b"UID COPY " + s.encode() + b" " + encode_mailbox(dest), handler)
                grab(text)
                self.command(b"UID STORE " + s.encode() + b" +FLAGS.SILENT (\\Deleted)")
                if self.has("UIDPLUS"):
                    self.command(b"UID EXPUNGE " + s.encode())
                else:  # without UIDPLUS a plain EXPUNGE would also remove others' \Deleted mail
                    pass
        return mapping

    def expunge_uids(self, uids: Iterable[int]) -> None:
        uids = sorted(set(uids))
        for s in uidset.chunked(uids):
            self.command(b"UID STORE " + s.encode() + b" +FLAGS.SILENT (\\Deleted)")
            if self.has("UIDPLUS"):
                self.command(b"UID EXPUNGE " + s.encode())
            else:
                self.command(b"EXPUNGE")

    def fetch_items(self, uid: int, items: bytes) -> dict:
        """UID FETCH uid (items) -> {ITEM NAME: value} through the full tokenizer."""
        result: dict = {}

        def handler(resp):
            if b" FETCH " in resp[0][:24]:
                toks = wire.tokenize(resp)
                if len(toks) >= 4 and isinstance(toks[3], tuple):
                    d = wire.pairs(toks[3])
                    if d.get(b"UID") == uid:
                        result.update(d)
                        return True
            return False

        self.command(b"UID FETCH %d (UID %s)" % (uid, items), handler)
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

    # ------------------------------------------------------------------ IDLE

    def idle(self, timeout: float, stop: Callable[[], bool], tick: float = 1.0) -> Unsolicited:
        """IDLE until the server reports something, `stop()` is true, or timeout. Then DONE."""
        try:
            return self._idle(timeout, stop, tick)
        except ValueError as exc:  # as in read_until
            raise ProtocolError(f"malformed server response: {exc}") from None

    def _idle(self, timeout: float, stop: Callable[[], bool], tick: float) -> Unsolicited:
        self._tagnum += 1
        tag = b"T%d" % self._tagnum
        self._send(tag + b" IDLE\r\n")
        while True:
            resp = self.reader.read_response()
            if resp[0].startswith(b"+"):
                break
            if resp[0].startswith(tag + b" "):
                raise CommandFailed("IDLE", "NO", _one_line(resp[0].decode("utf-8", "replace")))
            self._generic_untagged(resp)
        import time as _time
        deadline = _time.monotonic() + timeout
        while not self.unsolicited.any() and not stop() and _time.monotonic() < deadline:
            if self.reader.wait_readable(min(tick, max(0.0, deadline - _time.monotonic()))):
                resp = self.reader.read_response()
                if resp[0].startswith(b"* BYE"):
                    raise NetworkError(f"{self.where} closed the session during IDLE")
                self._generic_untagged(resp)
        self._send(b"DONE\r\n")
        while True:
            resp = self.reader.read_response()
            if resp[0].startswith(tag + b" "):
                break
            self._generic_untagged(resp)
        return self.take_unsolicited()


# ---------------------------------------------------------------------------- helpers

# (numbers of more than 18 digits do not match: the generic handler refuses them, see _num)
_HDR_FAST = re.compile(rb"\* \d+ FETCH \(UID (\d{1,18}) FLAGS \(([^)]*)\)(?: MODSEQ \((\d{1,18})\))? RFC822\.SIZE (\d{1,18})"
                       rb" BODY\[HEADER\.FIELDS \([^)]*\)\] \{(\d+)\}\r\n")


def _scan_header_fetches(reader: wire.Reader, out: list) -> None:
    """Consume every complete header FETCH response of the usual shape at the buffer's head."""
    buf = reader.buf  # a bytearray that _fill() extends in place
    pos = 0
    match = _HDR_FAST.match
    limit = reader.max_literal
    try:
        while True:
            if buf.find(b"\r\n", pos) < 0:
                del buf[:pos]
                pos = 0
                reader._fill()
                continue
            m = match(buf, pos)
            if m is None:
                return
            end = m.end()
            n = int(m.group(5))
            if n > limit:
                raise ProtocolError(f"server announced a {n}-byte literal (limit {limit}); refused")
            lit_end = end + n
            while len(buf) < lit_end + 3:
                reader._fill()
            if buf[lit_end:lit_end + 3] != b")\r\n":
                return
            mod = m.group(3)
            out.append(HeaderItem(int(m.group(1)), _flags(m.group(2)), int(mod) if mod else None,
                                  int(m.group(4)), bytes(buf[end:lit_end])))
            pos = lit_end + 3
            if pos > 1 << 20:
                del buf[:pos]
                pos = 0
    finally:
        del buf[:pos]


_MAX_NUM = (1 << 63) - 1  # what the store (SQLite INTEGER) can hold; UIDs are 32-bit, mod-sequences 63-bit


def _num(digits: bytes) -> int:
    """A number from a response; ValueError (ProtocolError in read_until) unless 0..2^63-1."""
    if len(digits) > 19 or not digits.isdigit() or int(digits) > _MAX_NUM:
        raise ValueError(f"bad number {bytes(digits[:24])!r}")
    return int(digits)


def _mailbox_name(tok) -> str:
    if isinstance(tok, int):
        tok = str(tok).encode()
    if tok is None:
        return ""
    try:
        return imap_utf7.decode(tok)
    except Exception:
        return tok.decode("utf-8", "replace")


def _status_dict(toks) -> dict:
    d = wire.pairs(toks if isinstance(toks, tuple) else ())
    return {k.decode().upper(): v for k, v in d.items() if isinstance(v, int)}


def _flag_arg(flag: str) -> bytes:
    b = flag.encode("utf-8")
    if not re.fullmatch(rb"\\?[!#$&'+,\-./0-9:;<=>?@A-Z^_`a-z|~]+", b):
        raise ValueError(f"invalid IMAP flag {flag!r}")
    return b


def _one_line(obj) -> str:
    from ..mail.sanitize import sanitize_line
    s = obj.decode("utf-8", "replace") if isinstance(obj, bytes) else str(obj)
    return sanitize_line(s)[:300]


def _redact(line: bytes) -> str:
    s = line.decode("utf-8", "replace").rstrip("\r\n")
    parts = s.split(" ", 2)
    if len(parts) >= 2 and parts[1].upper() in ("LOGIN", "AUTHENTICATE"):
        return f"{parts[0]} {parts[1]} <redacted>"
    return s
