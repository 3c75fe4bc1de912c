"""Drafts made from a message: a reply (to the sender, to all, to the list), a forward (inline or
as an attachment), and a draft saved earlier taken up again (``resume``).

What is quoted in a reply is the original's text as written (decoded, not sanitised): the
sanitiser guards what tuimail shows, and the user's editor shows the quote itself. Line breaks
are normalised and NUL removed, nothing else.

The original is parsed (mail/parse.py, and html2text for an HTML-only message) only when a draft
is made from one: importing this module costs neither.
"""

from __future__ import annotations

import email.utils
import re
import textwrap
import urllib.parse
from dataclasses import dataclass
from typing import TYPE_CHECKING

from tuimail.mail.addresses import parse_addresses
from tuimail.mail.draft import (
    Attachment, ComposeError, Draft, Identity, addr_key, attachment_name, format_address, join_addresses,
    make_attachment, msgids,
)

if TYPE_CHECKING:
    from tuimail.mail.part import Part

MAX_REFERENCES = 20  # message-ids kept in References (the first and the newest)
QUOTE_WIDTH = 72  # flowed paragraphs are rewrapped to this width when quoted
REPLY_ALL_MODES = ("sender", "all", "list")
_RE_PREFIX_RE = re.compile(r"^\s*(?:(?:re|aw|sv|antw)\s*(?:\[\d+\])?\s*:\s*)+", re.I)
_MARKS_RE = re.compile(r"(?:>[ \t]?)+")
_FWD_PREFIX_RE = re.compile(r"^\s*(?:fwd?|wg|tr)\s*:", re.I)


def reply_subject(subject: str) -> str:
    """'Re: ' once: 'Re: RE: Aw: x' -> 'Re: x'; a forward's 'Fwd:' stays behind it."""
    rest = _RE_PREFIX_RE.sub("", subject or "").strip()
    return f"Re: {rest}" if rest else "Re:"


def forward_subject(subject: str) -> str:
    subject = (subject or "").strip()
    if _FWD_PREFIX_RE.match(subject):
        return "Fwd: " + _FWD_PREFIX_RE.sub("", subject, count=1).strip()
    return f"Fwd: {subject}" if subject else "Fwd:"


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
    from tuimail.mail.parse import parse_message
    from tuimail.mail.part import attachments, choose_text_part, decode_text
    from tuimail.mail.render import html_to_text, reflow_flowed

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
    return format_address(name, addr)



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


# ---------------------------------------------------------------------------- who gets it


def _own(identities: list[Identity] | tuple[Identity, ...]) -> set[str]:
    return {addr_key(i.address) for i in identities}


def _dedupe(pairs: list[tuple[str, str]], drop: set[str]) -> list[tuple[str, str]]:
    """Keep the first of each address, none of `drop` (updated with what is kept)."""
    out = []
    for name, addr in pairs:
        key = addr_key(addr)
        if not addr or "@" not in addr or key in drop:
            continue
        drop.add(key)
        out.append((name, addr))
    return out


def _choose_identity(orig: _Original, identities: list[Identity] | tuple[Identity, ...]) -> Identity:
    """The identity the original was addressed to (To, Cc, then Delivered-To, X-Original-To,
    Bcc), else the first one (the account's `from`)."""
    by_key = {addr_key(i.address): i for i in identities}
    for name in ("to", "cc", "delivered-to", "x-original-to", "bcc", "from"):
        for _n, addr in orig.addresses(name):
            hit = by_key.get(addr_key(addr))
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


def _references(orig: _Original) -> tuple[str | None, list[str]]:
    own = msgids(orig.get("message-id"))
    refs = msgids(orig.get("references")) or msgids(orig.get("in-reply-to"))[:1]
    msgid = own[0] if own else None
    chain = list(dict.fromkeys(refs))
    if msgid is not None:
        chain = [r for r in chain if r != msgid] + [msgid]
    if len(chain) > MAX_REFERENCES:  # the root, then the newest (RFC 5322 §3.6.4 allows trimming)
        chain = chain[:1] + chain[-(MAX_REFERENCES - 1):]
    return msgid, chain



# ---------------------------------------------------------------------------- drafts


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
    from_me = any(addr_key(a) in own for _n, a in orig.addresses("from"))
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
    return Draft(from_=me.formatted, to=join_addresses(to_pairs), cc=join_addresses(cc_pairs),
                 subject=reply_subject(orig.get("subject")), body=body, in_reply_to=msgid, references=refs)


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
    in_reply_to = msgids(orig.get("in-reply-to"))
    return Draft(from_=" ".join(orig.get("from").split()), to=" ".join(orig.get("to").split()),
                 cc=" ".join(orig.get("cc").split()), bcc=" ".join(orig.get("bcc").split()),
                 subject=" ".join(orig.get("subject").split()), body=orig.text,
                 in_reply_to=in_reply_to[0] if in_reply_to else None, references=msgids(orig.get("references")),
                 extra=extra, attachments=atts)
