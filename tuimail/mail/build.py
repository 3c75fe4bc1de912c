"""The message a draft becomes, built with the standard library (``EmailMessage``, ``policy.SMTP``),
with its Date and Message-ID; its bytes for the Sent folder (``sent_copy``) and for the wire
(``envelope``).

The bytes a message is sent as: text parts are 7bit when they fit (ASCII, lines <= 78), else
quoted-printable; attachments base64; headers RFC 2047, or raw UTF-8 only when an address needs
it (SMTPUTF8, RFC 6531/6532). So no line is ever over 998 bytes, and 8BITMIME is needed only to
forward an 8-bit message as an attachment (message/rfc822 cannot be base64).
Bcc is kept in the built message (the Sent copy shows it) and removed from the bytes sent
(``envelope``, ``without_bcc``).
"""

from __future__ import annotations

import email.utils
import re
import time
import uuid
from email import policy as email_policy
from email.message import EmailMessage, MIMEPart
from typing import cast

from tuimail.mail.draft import Attachment, ComposeError, Draft, addr_key, join_addresses, msgids

# 7bit where it fits, else quoted-printable/base64; headers RFC 2047 (utf8=True only when needed)
# refold_source="none": the threading headers are set pre-folded (set_raw) and must stay as they
# are: the policy would otherwise turn a message-id over 78 characters into encoded words (which
# breaks threading in every reader).
POLICY = email_policy.SMTP.clone(cte_type="7bit", linesep="\n", refold_source="none")
POLICY_UTF8 = POLICY.clone(utf8=True)

_ADDRESS_FIELDS = ("From", "To", "Cc", "Bcc", "Reply-To", "Mail-Followup-To")


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
    msg["From"] = join_addresses(from_)
    for name, pairs in lists.items():
        if pairs:
            msg[name] = join_addresses(pairs)
    if draft.subject:
        msg["Subject"] = draft.subject
    msg["Date"] = email.utils.formatdate(time.time() if date is None else date, localtime=True)
    domain = _domain(from_[0][1])
    msg["Message-ID"] = message_id or email.utils.make_msgid(domain=domain)
    in_reply_to = msgids(draft.in_reply_to or "")[:1]
    if in_reply_to:
        msg.set_raw("In-Reply-To", in_reply_to[0])
    refs = msgids(" ".join(draft.references))
    if refs:
        msg.set_raw("References", _fold_ids(refs))
    for name, value in draft.extra.items():
        if name in extra_addrs:
            if extra_addrs[name]:
                msg[name] = join_addresses(extra_addrs[name])
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
                if addr_key(addr) not in seen:
                    seen.add(addr_key(addr))
                    rcpts.append(addr)
    if not rcpts:
        raise ComposeError("no recipient: fill in To, Cc or Bcc")
    return without_bcc(_to_bytes(msg)), from_[0][1], rcpts


def without_bcc(data: bytes) -> bytes:
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
