"""The file the user edits in $EDITOR: the draft's headers at the top (as mutt's ``edit_headers``),
a blank line, the body; and that file parsed back into a draft. Paths named in ``Attach:`` lines
are returned for the caller to read (no I/O here).
"""

from __future__ import annotations

import re
from dataclasses import replace

from tuimail.mail.draft import ComposeError, Draft

# headers the edit file may set (besides X-*); everything else is computed when the message is built
EDITABLE = ("From", "To", "Cc", "Bcc", "Subject", "Reply-To", "Mail-Followup-To", "Organization")
_LISTS = ("To", "Cc", "Bcc")  # repeated in the edit file: their addresses are joined
_FIELD_NAME_RE = re.compile(r"^[!-9;-~]+$")


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
