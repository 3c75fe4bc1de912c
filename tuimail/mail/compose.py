"""Writing mail: new messages, replies and forwards as a ``Draft``, the file the user edits in
$EDITOR (headers at the top, as mutt's ``edit_headers``) and its parsing back, and the MIME
message built from a draft with the standard library (``EmailMessage``, ``policy.SMTP``).

No I/O here: attachments arrive as bytes (``make_attachment``); paths named in the edit file
(``Attach:`` lines) are returned for the caller to read.

What is quoted in a reply is the original's text as written (decoded, not sanitised): the
sanitiser guards what tuimail shows, and the user's editor shows the quote itself. Line breaks
are normalised and NUL removed, nothing else.

The bytes a message is sent as: text parts are 7bit when they fit (ASCII, lines <= 78), else
quoted-printable; attachments base64; headers RFC 2047, or raw UTF-8 only when an address needs
it (SMTPUTF8, RFC 6531/6532). So no line is ever over 998 bytes, and 8BITMIME is needed only to
forward an 8-bit message as an attachment (message/rfc822 cannot be base64).
Bcc is kept in the built message (the Sent copy shows it) and removed from the bytes sent
(``envelope``).
"""

from __future__ import annotations

import email.utils
import mimetypes
import re
import textwrap
import time
import unicodedata
import urllib.parse
import uuid
from dataclasses import dataclass, field, replace
from email import policy as email_policy
from email.message import EmailMessage, MIMEPart
from typing import cast

from tuimail.errors import UsageError
from tuimail.mail.addresses import parse_addresses
from tuimail.mail.headers import parse_msgids
from tuimail.mail.parse import parse_message
from tuimail.mail.part import Part, attachments, choose_text_part, decode_text
from tuimail.mail.render import html_to_text, reflow_flowed

__all__ = [
    "ComposeError", "Identity", "Attachment", "Draft", "new_draft", "reply", "forward", "resume",
    "make_attachment", "attachment_name", "reply_subject", "forward_subject", "quote_text",
    "edit_text", "parse_edit_text", "build_message", "envelope", "sent_copy", "needs_smtputf8",
]

# 7bit where it fits, else quoted-printable/base64; headers RFC 2047 (utf8=True only when needed)
# refold_source="none": the threading headers are set pre-folded (set_raw) and must stay as they
# are: the policy would otherwise turn a message-id over 78 characters into encoded words (which
# breaks threading in every reader).
POLICY = email_policy.SMTP.clone(cte_type="7bit", linesep="\n", refold_source="none")
POLICY_UTF8 = POLICY.clone(utf8=True)

MAX_REFERENCES = 20  # message-ids kept in References (the first and the newest)
MAX_MSGID = 250  # characters; longer ids (no real mailer makes them) are dropped
QUOTE_WIDTH = 72  # flowed paragraphs are rewrapped to this width when quoted
MAX_NAME = 200  # bytes of an attachment's file name

REPLY_ALL_MODES = ("sender", "all", "list")
# headers the edit file may set (besides X-*); everything else is computed when the message is built
EDITABLE = ("From", "To", "Cc", "Bcc", "Subject", "Reply-To", "Mail-Followup-To", "Organization")
_ADDRESS_FIELDS = ("From", "To", "Cc", "Bcc", "Reply-To", "Mail-Followup-To")
_LISTS = ("To", "Cc", "Bcc")  # repeated in the edit file: their addresses are joined
_FIELD_NAME_RE = re.compile(r"^[!-9;-~]+$")
_PREFIX_RE = re.compile(r"^\s*(?:(?:re|aw|sv|antw|fwd?|wg|tr)\s*(?:\[\d+\])?\s*:\s*)+", re.I)
_RE_PREFIX_RE = re.compile(r"^\s*(?:(?:re|aw|sv|antw)\s*(?:\[\d+\])?\s*:\s*)+", re.I)
_MARKS_RE = re.compile(r"(?:>[ \t]?)+")
_FWD_PREFIX_RE = re.compile(r"^\s*(?:fwd?|wg|tr)\s*:", re.I)


class ComposeError(UsageError):
    """A draft that cannot become a message: the one-line reason (names the header or line)."""


@dataclass(frozen=True)
class Identity:
    """An address the user sends from: the account's ``from`` and its ``identities``."""

    address: str
    name: str = ""

    @property
    def formatted(self) -> str:
        return _format(self.name, self.address)

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


# ---------------------------------------------------------------------------- small helpers


def _addr_key(addr: str) -> str:
    """Compare addresses as mail systems do in practice: the domain and the local part
    case-insensitively (RFC 5321 lets the local part differ by case; nobody relies on it)."""
    return addr.strip().lower()


def _own(identities: list[Identity] | tuple[Identity, ...]) -> set[str]:
    return {_addr_key(i.address) for i in identities}


def _format(name: str, addr: str) -> str:
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


def _join(pairs: list[tuple[str, str]]) -> str:
    return ", ".join(_format(n, a) for n, a in pairs if a)


def _dedupe(pairs: list[tuple[str, str]], drop: set[str]) -> list[tuple[str, str]]:
    """Keep the first of each address, none of `drop` (updated with what is kept)."""
    out = []
    for name, addr in pairs:
        key = _addr_key(addr)
        if not addr or "@" not in addr or key in drop:
            continue
        drop.add(key)
        out.append((name, addr))
    return out


def reply_subject(subject: str) -> str:
    """'Re: ' once: 'Re: RE: Aw: x' -> 'Re: x'; a forward's 'Fwd:' stays behind it."""
    rest = _RE_PREFIX_RE.sub("", subject or "").strip()
    return f"Re: {rest}" if rest else "Re:"


def forward_subject(subject: str) -> str:
    subject = (subject or "").strip()
    if _FWD_PREFIX_RE.match(subject):
        return "Fwd: " + _FWD_PREFIX_RE.sub("", subject, count=1).strip()
    return f"Fwd: {subject}" if subject else "Fwd:"


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


# ---------------------------------------------------------------------------- the original


@dataclass
class _Original:
    headers: dict[str, str]
    text: str  # the text to quote (line breaks "\n")
    flowed: bool
    parts: list[tuple[Part, bytes]]  # attachments: (part, decoded bytes)
    raw: bytes

    def get(self, name: str) -> str:
        return self.headers.get(name.lower(), "") or ""

    def addresses(self, name: str) -> list[tuple[str, str]]:
        return [(n, a) for n, a in parse_addresses(self.get(name)) if a]


def _original(raw: bytes) -> _Original:
    parsed = parse_message(raw)
    chosen = choose_text_part(parsed.root)
    text, flowed = "", False
    if chosen is not None:
        data = parsed.part_bytes(chosen.section)
        text = decode_text(data, chosen.charset)
        text = text.replace("\r\n", "\n").replace("\r", "\n").replace("\0", "")
        if chosen.subtype == "html":
            text, _links = html_to_text(text)
        elif chosen.params.get("format", "").strip().lower() == "flowed":
            text = reflow_flowed(text, chosen.params.get("delsp", "").strip().lower() == "yes")
            flowed = True
    parts = [(p, parsed.part_bytes(p.section)) for p in attachments(parsed.root)]
    return _Original(parsed.headers, text, flowed, parts, bytes(raw))


def _attribution_date(value: str) -> str:
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError, OverflowError):
        return " ".join(value.split())
    if when is None:
        return " ".join(value.split())
    return when.strftime("%a, %d %b %Y %H:%M") + (when.strftime(" %z") if when.tzinfo else "")


def _who(orig: _Original) -> str:
    pairs = orig.addresses("from")
    if not pairs:
        return "someone"
    name, addr = pairs[0]
    return _format(name, addr)


def quote_text(text: str, flowed: bool = False, width: int = QUOTE_WIDTH) -> str:
    """Each line behind '> ' ('>' before a line already quoted, so '> text' becomes '>> text' and
    '> > text' becomes '>>> text').
    A flowed original (already joined into one line per paragraph) is rewrapped to `width`,
    keeping each paragraph's quote depth; a fixed text keeps its lines."""
    out: list[str] = []
    lines = text.split("\n")
    while lines and not lines[-1].strip():
        lines.pop()
    for line in lines:
        line = line.rstrip()
        if m := _MARKS_RE.match(line):  # (whenever the line starts with ">")
            marks = m.group()
            depth = marks.count(">")  # "> > x" and ">> x" are both two levels
            prefix, content = ">" * (depth + 1) + " ", line[len(marks):]
        else:
            prefix, content = "> ", line
        if not content:
            out.append(prefix.rstrip())
        elif flowed and len(prefix) + len(content) > width and content != "-- ":
            wrapped = textwrap.wrap(content, max(width - len(prefix), 20), break_long_words=False,
                                    break_on_hyphens=False)
            out.extend(prefix + w for w in wrapped or [content])
        else:
            out.append(prefix + content)
    return "\n".join(out)


def _without_signature(text: str) -> str:
    """The text above the last signature separator ("-- " alone on a line, RFC 3676 §4.3), which
    a reply does not quote."""
    lines = text.split("\n")
    for i in range(len(lines) - 1, -1, -1):
        if lines[i] in ("-- ", "--"):
            if lines[i] == "-- " or len(lines) - i <= 10:  # a bare "--" only near the end
                return "\n".join(lines[:i])
            break
    return text


def _choose_identity(orig: _Original, identities: list[Identity] | tuple[Identity, ...]) -> Identity:
    """The identity the original was addressed to (To, Cc, then Delivered-To, X-Original-To,
    Bcc), else the first one (the account's `from`)."""
    by_key = {_addr_key(i.address): i for i in identities}
    for name in ("to", "cc", "delivered-to", "x-original-to", "bcc", "from"):
        for _n, addr in orig.addresses(name):
            hit = by_key.get(_addr_key(addr))
            if hit is not None:
                return hit
    return identities[0]


def _list_post(orig: _Original) -> str | None:
    """The address in List-Post ('<mailto:list@x?subject=..>'), None if absent or 'NO'."""
    for m in re.finditer(r"<\s*mailto:([^>?\s]+)", orig.get("list-post"), re.I):
        addr = urllib.parse.unquote(m.group(1))
        if "@" in addr:
            return addr
    return None


def _msgids(value: str) -> list[str]:
    """'<a@b>' each; ids with spaces or controls (nothing a header could carry) dropped."""
    out = []
    for m in parse_msgids(value):
        m = m.strip().strip("<>")
        if (m and len(m) <= MAX_MSGID and m.isascii() and m.isprintable() and not any(c.isspace() for c in m)
                and "<" not in m and ">" not in m):
            out.append(f"<{m}>")
    return out


def _references(orig: _Original) -> tuple[str | None, list[str]]:
    own = _msgids(orig.get("message-id"))
    refs = _msgids(orig.get("references")) or _msgids(orig.get("in-reply-to"))[:1]
    msgid = own[0] if own else None
    chain = list(dict.fromkeys(refs))
    if msgid is not None:
        chain = [r for r in chain if r != msgid] + [msgid]
    if len(chain) > MAX_REFERENCES:  # the root, then the newest (RFC 5322 §3.6.4 allows trimming)
        chain = chain[:1] + chain[-(MAX_REFERENCES - 1):]
    return msgid, chain


# ---------------------------------------------------------------------------- drafts


def new_draft(identity: Identity, to: str = "", *, subject: str = "", body: str = "") -> Draft:
    return Draft(from_=identity.formatted, to=to, subject=subject, body=body)


def reply(raw: bytes, identities: list[Identity] | tuple[Identity, ...], mode: str = "sender") -> Draft:
    """A reply to the raw message: mode "sender" (r), "all" (g) or "list" (L).

    sender: Reply-To, else From (a message the user sent: its To). all: Mail-Followup-To if
    present, else Reply-To/From plus To and Cc; the user's own addresses and duplicates removed.
    list: the List-Post address (ComposeError if the message has none)."""
    if mode not in REPLY_ALL_MODES:
        raise ValueError(f"reply mode {mode!r}")
    if not identities:
        raise ComposeError("no sender address: set from in the account")
    orig = _original(raw)
    me = _choose_identity(orig, identities)
    own = _own(identities)
    from_me = any(_addr_key(a) in own for _n, a in orig.addresses("from"))
    to: list[tuple[str, str]]
    cc: list[tuple[str, str]] = []
    if mode == "list":
        post = _list_post(orig)
        if post is None:
            why = "says posting is not allowed" if orig.get("list-post").strip() else "has no List-Post header"
            raise ComposeError(f"cannot reply to the list: the message {why} (reply to all instead)")
        to = [("", post)]
    elif mode == "all" and orig.addresses("mail-followup-to"):
        to = orig.addresses("mail-followup-to")
    else:
        if from_me:  # replying to one's own message continues the conversation with its recipients
            to = orig.addresses("to")
        else:
            to = orig.addresses("reply-to") or orig.addresses("from")
        if mode == "all":
            cc = (orig.addresses("to") if not from_me else []) + orig.addresses("cc")
    seen = set(own)
    to_pairs = _dedupe(to, seen)
    cc_pairs = _dedupe(cc, seen)
    if not to_pairs and cc_pairs:
        to_pairs, cc_pairs = cc_pairs[:1], cc_pairs[1:]
    if not to_pairs and from_me and mode != "list":  # a note to oneself
        to_pairs = [(me.name, me.address)]
    msgid, refs = _references(orig)
    when = _attribution_date(orig.get("date"))
    attribution = f"On {when}, {_who(orig)} wrote:" if when else f"{_who(orig)} wrote:"
    quoted = quote_text(_without_signature(orig.text), orig.flowed)
    body = f"{attribution}\n{quoted}\n" if quoted else f"{attribution}\n"
    return Draft(from_=me.formatted, to=_join(to_pairs), cc=_join(cc_pairs), subject=reply_subject(orig.get("subject")),
                 body=body, in_reply_to=msgid, references=refs)


def forward(raw: bytes, identities: list[Identity] | tuple[Identity, ...], *, inline: bool = True) -> Draft:
    """Forward inline (the original's headers and text in the body, its attachments attached) or
    as an attachment (the whole message, message/rfc822; message/global when it is not 7-bit
    clean, RFC 6532 allowing base64 there)."""
    if not identities:
        raise ComposeError("no sender address: set from in the account")
    orig = _original(raw)
    me = _choose_identity(orig, identities)
    subject = forward_subject(orig.get("subject"))
    if not inline:
        name = attachment_name((orig.get("subject") or "forwarded message")[:80] + ".eml")
        return Draft(from_=me.formatted, subject=subject,
                     attachments=[_message_attachment(name, orig.raw)])
    lines = ["", "", "---------- Forwarded message ----------"]
    for label in ("From", "Date", "Subject", "To", "Cc"):
        value = " ".join(orig.get(label).split())
        if value:
            lines.append(f"{label}: {value}")
    lines.append("")
    body = "\n".join(lines) + "\n" + orig.text.rstrip("\n") + "\n"
    atts = []
    for part, data in orig.parts:
        if part.maintype == "multipart":
            continue
        atts.append(make_attachment(part.filename or f"part-{part.section}", data, part.mimetype))
    return Draft(from_=me.formatted, subject=subject, body=body, attachments=atts)


def _message_attachment(name: str, raw: bytes) -> Attachment:
    """message/rfc822 (7bit, or 8bit which then needs the server's 8BITMIME, as for mutt); an
    original with lines over 998 bytes cannot go as either: message/global, base64 (RFC 6532)."""
    short = all(len(line) <= 998 for line in raw.splitlines())
    return Attachment(name, raw, "message/rfc822" if short else "message/global")


def resume(raw: bytes) -> Draft:
    """A draft again from a message saved in Drafts (or the Outbox): its headers, its text and
    its attachments, threading kept. Date and Message-ID are made anew when it is sent."""
    orig = _original(raw)
    extra = {}
    for name in ("Reply-To", "Mail-Followup-To", "Organization"):
        value = " ".join(orig.get(name).split())
        if value:
            extra[name] = value
    atts = [make_attachment(p.filename or f"part-{p.section}", data, p.mimetype, inline=p.disposition == "inline")
            for p, data in orig.parts if p.maintype != "multipart"]
    in_reply_to = _msgids(orig.get("in-reply-to"))
    return Draft(from_=" ".join(orig.get("from").split()), to=" ".join(orig.get("to").split()),
                 cc=" ".join(orig.get("cc").split()), bcc=" ".join(orig.get("bcc").split()),
                 subject=" ".join(orig.get("subject").split()), body=orig.text,
                 in_reply_to=in_reply_to[0] if in_reply_to else None, references=_msgids(orig.get("references")),
                 extra=extra, attachments=atts)


# ---------------------------------------------------------------------------- the edit file


def edit_text(draft: Draft) -> str:
    """The file the user edits: headers, a blank line, the body (mutt's edit_headers). Empty To,
    Cc, Bcc and Subject are shown so they can be filled in."""
    lines = [f"From: {draft.from_}", f"To: {draft.to}", f"Cc: {draft.cc}", f"Bcc: {draft.bcc}",
             f"Subject: {draft.subject}"]
    for name, value in draft.extra.items():
        lines.append(f"{name}: {value}")
    return "\n".join(lines) + "\n\n" + draft.body


def _unfold(text: str) -> tuple[list[tuple[int, str, str]], str]:
    """(line number, name, value) of each header at the top, and the body."""
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    if text.startswith("\ufeff"):
        text = text[1:]
    lines = text.split("\n")
    fields: list[tuple[int, str, str]] = []
    i = 0
    while i < len(lines):
        line = lines[i]
        if not line.strip():
            i += 1
            break
        if line[:1] in (" ", "\t") and fields:
            n, name, value = fields[-1]
            fields[-1] = (n, name, value + " " + line.strip())
        else:
            name, colon, value = line.partition(":")
            if not colon or not _FIELD_NAME_RE.match(name.strip()) or name != name.rstrip():
                raise ComposeError(f"line {i + 1}: not a header ({line[:60]!r}); leave one blank line"
                                   " between the headers and the text")
            fields.append((i + 1, name.strip(), value.strip()))
        i += 1
    return fields, "\n".join(lines[i:])


def parse_edit_text(text: str, base: Draft) -> tuple[Draft, list[str]]:
    """The edited file -> (the draft, with the threading headers and attachments of `base`; the
    paths of ``Attach:`` lines, in order, for the caller to read). A header the file may not set
    (Date, Message-ID, Content-*, ...) or a repeated From/Subject is a ComposeError naming the line.
    A From line removed keeps the draft's sender (one left empty is an error when sending)."""
    fields, body = _unfold(text)
    canon = {n.lower(): n for n in EDITABLE}
    values: dict[str, str] = {}
    extra: dict[str, str] = {}
    paths: list[str] = []
    for lineno, name, value in fields:
        key = name.lower()
        if key == "attach":
            if value:
                paths.append(value)
            continue
        if key not in canon and not key.startswith("x-"):
            raise ComposeError(f"line {lineno}: the {name} header cannot be set here (it is made when the"
                               f" message is sent); editable: {', '.join(EDITABLE)}, X-*, Attach")
        cname = canon.get(key, name)
        if cname in values or cname in extra:
            if cname in _LISTS:
                values[cname] = ", ".join(v for v in (values[cname], value) if v)
                continue
            raise ComposeError(f"line {lineno}: a second {cname} header")
        if cname in ("From", "To", "Cc", "Bcc", "Subject"):
            values[cname] = value
        elif value:
            extra[cname] = value
    draft = replace(base, from_=values.get("From", base.from_), to=values.get("To", ""), cc=values.get("Cc", ""),
                    bcc=values.get("Bcc", ""), subject=values.get("Subject", ""), body=body, extra=extra,
                    attachments=list(base.attachments), references=list(base.references))
    return draft, paths


# ---------------------------------------------------------------------------- the message


def _check_value(name: str, value: str) -> None:
    if "\r" in value or "\n" in value:
        raise ComposeError(f"the {name} header contains a line break; refused (header injection)")
    if "\0" in value:
        raise ComposeError(f"the {name} header contains a NUL character; refused")


def _addresses(name: str, value: str, *, single: bool = False) -> list[tuple[str, str]]:
    """Parsed and checked: every entry an addr-spec with a domain."""
    _check_value(name, value)
    try:
        header = POLICY_UTF8.header_factory(name, value)
        found = [a for group in header.groups for a in group.addresses]
    except Exception:  # the stdlib's parser raises IndexError/HeaderParseError on some garbage
        raise ComposeError(f"{name}: {value.strip()[:80]!r} is not a list of addresses (user@example.org)") from None
    out = []
    for a in found:
        if not a.username or not a.domain or a.addr_spec.startswith("<"):
            raise ComposeError(f"{name}: {str(a)[:80]!r} is not an address (user@example.org)")
        if any(c.isspace() or ord(c) < 32 or ord(c) == 127 for c in a.addr_spec) or a.addr_spec.count("@") != 1:
            raise ComposeError(f"{name}: {a.addr_spec[:80]!r} is not an address (user@example.org)")
        out.append((a.display_name, a.addr_spec))
    if not out and value.strip():
        raise ComposeError(f"{name}: {value.strip()[:80]!r} is not an address (user@example.org)")
    if single and len(out) > 1:
        raise ComposeError(f"{name}: one address only")
    return out


def _fold_ids(ids: list[str]) -> str:
    """Message-ids one after another, a new line (" " continuation) before one that would pass
    78 characters; never inside an id."""
    lines = [ids[0]]
    width = len("References: ") + len(ids[0])
    for i in ids[1:]:
        if width + 1 + len(i) > 78:
            lines.append(i)
            width = 1 + len(i)
        else:
            lines[-1] += " " + i
            width += 1 + len(i)
    return "\n ".join(lines)


def needs_smtputf8(*addresses: str) -> bool:
    return any(not a.isascii() for a in addresses)


def _domain(addr: str) -> str:
    domain = addr.rpartition("@")[2].strip().strip("[]")
    if domain.isascii():
        return domain or "localhost"
    try:
        return domain.encode("idna").decode("ascii")
    except UnicodeError:
        return "localhost"


def build_message(draft: Draft, *, date: float | None = None, message_id: str | None = None) -> EmailMessage:
    """The MIME message of a draft, Bcc included (for the Sent copy; ``envelope`` removes it).
    Date and Message-ID (with the sender's domain, never the machine's name) are set here.
    ComposeError (one line) for a bad address, a header with a line break, or no recipient."""
    from_ = _addresses("From", draft.from_, single=True)
    if not from_:
        raise ComposeError("From: no sender address")
    lists = {n: _addresses(n, v) for n, v in (("To", draft.to), ("Cc", draft.cc), ("Bcc", draft.bcc))}
    if not any(lists.values()):
        raise ComposeError("no recipient: fill in To, Cc or Bcc")
    extra_addrs = {n: _addresses(n, v) for n, v in draft.extra.items() if n in _ADDRESS_FIELDS}
    for name, value in [("Subject", draft.subject), *draft.extra.items()]:
        _check_value(name, value)
    every = [a for pairs in (from_, *lists.values(), *extra_addrs.values()) for _n, a in pairs]
    pol = POLICY_UTF8 if needs_smtputf8(*every) else POLICY
    msg = EmailMessage(policy=pol)
    msg["From"] = _join(from_)
    for name, pairs in lists.items():
        if pairs:
            msg[name] = _join(pairs)
    if draft.subject:
        msg["Subject"] = draft.subject
    msg["Date"] = email.utils.formatdate(time.time() if date is None else date, localtime=True)
    domain = _domain(from_[0][1])
    msg["Message-ID"] = message_id or email.utils.make_msgid(domain=domain)
    in_reply_to = _msgids(draft.in_reply_to or "")[:1]
    if in_reply_to:
        msg.set_raw("In-Reply-To", in_reply_to[0])
    refs = _msgids(" ".join(draft.references))
    if refs:
        msg.set_raw("References", _fold_ids(refs))
    for name, value in draft.extra.items():
        if name in extra_addrs:
            if extra_addrs[name]:
                msg[name] = _join(extra_addrs[name])
        elif value:
            msg[name] = value
    body = draft.body.replace("\r\n", "\n").replace("\r", "\n")
    if body and not body.endswith("\n"):
        body += "\n"
    fits = body.isascii() and all(len(line) <= 78 for line in body.split("\n"))
    msg.set_content(body, cte="7bit" if fits else "quoted-printable")
    for att in draft.attachments:
        maintype, _, subtype = att.mimetype.partition("/")
        disposition = "inline" if att.inline else "attachment"
        if maintype == "message" and subtype == "rfc822":
            _attach_message(msg, att, disposition)
        else:
            msg.add_attachment(att.data, maintype=maintype, subtype=subtype or "octet-stream",
                               filename=att.filename, disposition=disposition)
    return msg


def _attach_message(msg: EmailMessage, att: Attachment, disposition: str) -> None:
    """message/rfc822 goes as it is, 7bit or 8bit (RFC 2046 forbids base64 there); the caller
    made sure its lines are short (else it is message/global). The generator cannot write 8-bit
    bytes there, so the part holds a token that ``_to_bytes`` replaces with the original bytes."""
    if msg.get_content_maintype() != "multipart":
        msg.make_mixed()
    part = MIMEPart(policy=msg.policy)
    part["Content-Type"] = "message/rfc822"
    part["Content-Disposition"] = disposition
    part.set_param("filename", att.filename, header="Content-Disposition")
    part["Content-Transfer-Encoding"] = "7bit" if att.data.isascii() else "8bit"
    token = f"tuimail-raw-part-{uuid.uuid4().hex}"
    part.set_payload(token)
    raw = re.sub(rb"\r?\n", b"\r\n", att.data)
    if raw.endswith(b"\r\n"):
        raw = raw[:-2]  # the generator writes the line break before the boundary
    msg.__dict__.setdefault("_tuimail_raw_parts", {})[token.encode("ascii")] = raw
    msg.attach(cast(EmailMessage, part))  # (the stubs want an EmailMessage; a MIMEPart is what a subpart is)


def _to_bytes(msg: EmailMessage) -> bytes:
    raws: dict[bytes, bytes] = msg.__dict__.get("_tuimail_raw_parts", {})
    for _attempt in range(5):
        data = re.sub(rb"\r?\n", b"\r\n", msg.as_bytes(policy=msg.policy))  # base64 bodies come with bare LF
        if not raws:
            return data
        boundary = (msg.get_boundary() or "").encode("ascii", "replace")
        if not any(b"--" + boundary in raw for raw in raws.values()):
            for token, raw in raws.items():
                data = data.replace(token, raw, 1)
            return data
        msg.set_boundary(f"=_tuimail_{uuid.uuid4().hex}")  # an attached message contains the boundary
    raise ComposeError("cannot find a MIME boundary that the attached message does not contain")


def sent_copy(msg: EmailMessage) -> bytes:
    """The bytes for the Sent folder (Bcc kept, so the user sees who got it)."""
    return _to_bytes(msg)


def envelope(msg: EmailMessage) -> tuple[bytes, str, list[str]]:
    """(bytes to send, envelope sender, recipients): the recipients are To, Cc and Bcc (each
    once); the bytes have no Bcc header."""
    from_ = _addresses("From", str(msg.get("From", "")), single=True)
    if not from_:
        raise ComposeError("From: no sender address")
    rcpts: list[str] = []
    seen: set[str] = set()
    for name in ("To", "Cc", "Bcc"):
        for value in msg.get_all(name) or []:
            for _n, addr in _addresses(name, str(value)):
                if _addr_key(addr) not in seen:
                    seen.add(_addr_key(addr))
                    rcpts.append(addr)
    if not rcpts:
        raise ComposeError("no recipient: fill in To, Cc or Bcc")
    return _without_bcc(_to_bytes(msg)), from_[0][1], rcpts


def _without_bcc(data: bytes) -> bytes:
    """The header block without Bcc fields (and their continuation lines); the rest untouched."""
    end = data.find(b"\r\n\r\n")
    head, rest = (data[: end + 2], data[end + 2 :]) if end >= 0 else (data, b"")
    out, skipping = [], False
    for line in head.split(b"\r\n")[:-1]:
        if line[:1] in (b" ", b"\t"):
            if not skipping:
                out.append(line)
            continue
        skipping = line.split(b":", 1)[0].strip().lower() == b"bcc"
        if not skipping:
            out.append(line)
    return b"".join(line + b"\r\n" for line in out) + rest
