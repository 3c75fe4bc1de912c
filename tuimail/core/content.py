"""What the message view shows: produced by the reader from the cache or the server."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Attachment:
    section: str  # IMAP section, e.g. "2" or "1.3"
    filename: str  # sanitised for display (sanitize_strict); make it safe before saving
    mimetype: str
    size: int  # encoded octets as the server reports them
    encoding: str = ""
    label: str | None = None  # "signed (PGP/MIME)", "encrypted (S/MIME)", ...


@dataclass(frozen=True)
class InlinePart:
    """Shown after the text: an attached message (title, its headers, its text) or a delivery
    report (title, its text). Everything sanitised."""

    title: str  # "Attached message", "Delivery status", ...
    headers: list[tuple[str, str]]
    text: str
    depth: int = 1  # 2: inside an attached message
    section: str = ""


@dataclass(frozen=True)
class MessageContent:
    folder: str
    uid: int
    # [("From", ...), ("To", ...), ("Cc", ...), ("Date", ...), ("Subject", ...)], sanitised
    headers: list[tuple[str, str]]
    text: str  # readable text, sanitised; HTML rendered by html2text with numbered links
    links: list[str] = field(default_factory=list)  # link N is links[N-1]; real targets
    attachments: list[Attachment] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # "signed (PGP/MIME)", "message truncated: ...", ...
    more: bool = False  # the text part was fetched partially: open_message(..., more=True) gets the rest
    inline: list[InlinePart] = field(default_factory=list)  # attached messages, delivery reports
    section: str | None = None  # set when this is a message attached to `uid`, at that section
    uncached: bool = False  # an inline part was not cached and could not be fetched (offline)
