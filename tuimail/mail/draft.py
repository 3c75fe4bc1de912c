"""What the user writes: a ``Draft`` (address fields as header strings, the body, the threading
headers, attachments), the ``Identity`` it is sent from, and ``Attachment`` with the safe name and
the type it gets. Shared by the other parts of composing (mail/reply.py, mail/editfile.py,
mail/build.py); the public entry point is mail/compose.py.

No I/O here: attachments arrive as bytes (``make_attachment``).
"""

from __future__ import annotations

import mimetypes
import re
import unicodedata
from dataclasses import dataclass, field

from tuimail.errors import UsageError
from tuimail.mail.addresses import parse_addresses
from tuimail.mail.headers import parse_msgids

MAX_MSGID = 250  # characters; longer ids (no real mailer makes them) are dropped
MAX_NAME = 200  # bytes of an attachment's file name


class ComposeError(UsageError):
    """A draft that cannot become a message: the one-line reason (names the header or line)."""


@dataclass(frozen=True)
class Identity:
    """An address the user sends from: the account's ``from`` and its ``identities``."""

    address: str
    name: str = ""

    @property
    def formatted(self) -> str:
        return format_address(self.name, self.address)

    @classmethod
    def parse(cls, value: str) -> Identity:
        """'Name <addr>' or 'addr' (as in the config file)."""
        pairs = parse_addresses(value)
        if not pairs or not pairs[0][1]:
            raise ComposeError(f"not an address: {value.strip()[:80]!r}")
        return cls(pairs[0][1], pairs[0][0])


@dataclass(frozen=True)
class Attachment:
    filename: str  # safe (attachment_name)
    data: bytes = field(repr=False)
    mimetype: str = "application/octet-stream"
    inline: bool = False  # Content-Disposition inline (a forwarded message shown in place)


@dataclass
class Draft:
    """What the user writes. Address fields are header strings ('A <a@x>, b@y'), as edited."""

    from_: str
    to: str = ""
    cc: str = ""
    bcc: str = ""
    subject: str = ""
    body: str = ""
    in_reply_to: str | None = None  # "<id@host>"
    references: list[str] = field(default_factory=list)  # "<id@host>" each, oldest first
    extra: dict[str, str] = field(default_factory=dict)  # Reply-To, Mail-Followup-To, X-...
    attachments: list[Attachment] = field(default_factory=list)


def new_draft(identity: Identity, to: str = "", *, subject: str = "", body: str = "") -> Draft:
    return Draft(from_=identity.formatted, to=to, subject=subject, body=body)


# ---------------------------------------------------------------------------- addresses and ids


def addr_key(addr: str) -> str:
    """Compare addresses as mail systems do in practice: the domain and the local part
    case-insensitively (RFC 5321 lets the local part differ by case; nobody relies on it)."""
    return addr.strip().lower()


def format_address(name: str, addr: str) -> str:
    """'Name <addr>', the name quoted where it needs to be (non-ASCII addresses allowed)."""
    if not addr:
        return ""
    if not name or name == addr:
        return addr
    name = " ".join(name.split())
    if re.fullmatch(r"[\w!#$%&'*+/=?^`{|}~ .-]+", name) and not name.startswith(".") and ".." not in name:
        return f"{name} <{addr}>" if "." not in name else f'"{name}" <{addr}>'
    quoted = name.replace("\\", "\\\\").replace('"', '\\"')
    return f'"{quoted}" <{addr}>'


def join_addresses(pairs: list[tuple[str, str]]) -> str:
    return ", ".join(format_address(n, a) for n, a in pairs if a)


def msgids(value: str) -> list[str]:
    """'<a@b>' each; ids with spaces or controls (nothing a header could carry) dropped."""
    out = []
    for m in parse_msgids(value):
        m = m.strip().strip("<>")
        if (m and len(m) <= MAX_MSGID and m.isascii() and m.isprintable() and not any(c.isspace() for c in m)
                and "<" not in m and ">" not in m):
            out.append(f"<{m}>")
    return out


# ---------------------------------------------------------------------------- attachments


def attachment_name(name: str | None, fallback: str = "attachment") -> str:
    """A file name safe to put in a message and to save: the last path component, no control,
    format (bidi, zero-width) or line-separator characters, no leading dots, at most 200 bytes
    (the extension kept)."""
    name = (name or "").replace("\\", "/").rsplit("/", 1)[-1]
    out = []
    for ch in name:
        cat = unicodedata.category(ch)
        if cat[0] == "C" or cat in ("Zl", "Zp"):
            continue
        out.append("_" if ch in ':*?"<>|' or (cat == "Zs" and ch != " ") else ch)
    name = "".join(out).strip().lstrip(".").strip()
    if not name:
        name = fallback
    if len(name.encode("utf-8")) > MAX_NAME:
        stem, dot, ext = name.rpartition(".")
        ext = ext if dot and stem and len(ext) <= 10 else ""
        keep = stem if ext else name
        suffix = "." + ext if ext else ""
        while keep and len((keep + suffix).encode("utf-8")) > MAX_NAME:
            keep = keep[:-1]
        name = keep + suffix
    return name


_MAGIC = (
    (b"%PDF-", "application/pdf"), (b"\x89PNG\r\n\x1a\n", "image/png"), (b"\xff\xd8\xff", "image/jpeg"),
    (b"GIF87a", "image/gif"), (b"GIF89a", "image/gif"), (b"PK\x03\x04", "application/zip"),
    (b"\x1f\x8b", "application/gzip"),
)


def _detect_type(name: str, data: bytes) -> str:
    guessed, encoding = mimetypes.guess_type(name, strict=False)
    if guessed and not encoding:
        return guessed
    if encoding == "gzip":
        return "application/gzip"
    for magic, mimetype in _MAGIC:
        if data.startswith(magic):
            return mimetype
    if b"\0" not in data[:8192]:
        try:
            data[:65536].decode("utf-8")
            return "text/plain"
        except UnicodeDecodeError as exc:
            if exc.start >= 65530:  # cut inside a character at the sample's end
                return "text/plain"
    return "application/octet-stream"


def make_attachment(name: str | None, data: bytes, mimetype: str | None = None, *,
                    inline: bool = False) -> Attachment:
    """An attachment from a name (a path is cut to its last component) and its bytes; the type
    from the name, else from the content."""
    safe = attachment_name(name)
    if mimetype is None or "/" not in mimetype:
        mimetype = _detect_type(safe, data)
    return Attachment(safe, bytes(data), mimetype.lower(), inline)
