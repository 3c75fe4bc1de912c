"""A message as logical lines of (text, kind): what the reader draws and `tuimail read` prints.

One function for both, so their attachment numbers, link numbers and inline parts agree. Every
string is sanitised here. No Textual: the CLI imports this.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from tuimail.mail.sanitize import sanitize, sanitize_line, sanitize_strict

if TYPE_CHECKING:
    from tuimail.core.content import Attachment, MessageContent

Line = tuple[str, str]  # (text, kind)

__all__ = ["Line", "format_bytes", "attachment_line", "message_lines"]


def format_bytes(n: int, compact: bool = False) -> str:
    """A size in bytes for people: "999 B", "1.5 KB", "12 MB"; compact (the list's size column,
    at most 4 characters): "999", "1.5K", "12M". The one size formatter."""
    if n < 1000:
        return str(n) if compact else f"{n} B"
    x = float(n)
    for unit in "KMGT":
        x /= 1024
        if x < 9.95:
            num = f"{x:.1f}"
            break
        if x < 999.5 or unit == "T":
            num = f"{x:.0f}"
            break
    return num + unit if compact else f"{num} {unit}B"


def attachment_line(number: int, a: Attachment) -> str:
    """' 2. name  (type, size) [label]': attachment `number` (1-based, the order of
    MessageContent.attachments) as the reader, the attachment list and `tuimail read` show it."""
    label = f" [{sanitize_line(a.label)}]" if a.label else ""
    return (f"{number:>2}. {sanitize_strict(a.filename) or '(no name)'}  "
            f"({sanitize_strict(a.mimetype)}, {format_bytes(a.size)}){label}")


def _text(out: list[Line], text: str, quote_depth, *, trim: bool = False) -> None:
    text = sanitize(text)
    if trim:  # an inline part: no run of blank lines before the next one
        text = text.strip("\n")
    for line in text.split("\n"):
        d = quote_depth(line)
        out.append((line.expandtabs(8), f"quote{min(3, (d - 1) % 3 + 1)}" if d else "text"))


def message_lines(content: MessageContent, *, all_headers: list[tuple[str, str]] | None = None) -> list[Line]:
    """The logical lines of a message: headers, notes, text, attached messages and delivery
    reports inline, links, attachments."""
    from tuimail.mail.render import quote_depth  # html2text & co. load on the first open, not at startup

    out: list[Line] = []
    for name, value in (all_headers if all_headers is not None else content.headers):
        out.append((f"{sanitize_line(name)}: {sanitize_line(value)}", "header"))
    for note in content.notes:
        out.append((f"[{sanitize_line(note)}]", "note"))
    out.append(("", "rule"))
    if content.text or not content.inline:
        _text(out, content.text, quote_depth)
    if content.more:
        out.append(("", "text"))
        out.append(("-- the message continues: press L to load the rest --", "more"))
    numbers = {a.section: i for i, a in enumerate(content.attachments, 1)}
    for part in content.inline:
        while len(out) > 1 and out[-1] == ("", "text"):
            out.pop()
        if out[-1][1] != "rule":
            out.append(("", "text"))
        title = sanitize_line(part.title)
        n = numbers.get(part.section)
        if n is not None:
            title += f" (attachment {n})"
        if part.depth > 1:
            title += f", inside attached message (level {part.depth})"
        out.append((f"── {title} ──", "hname"))
        for name, value in part.headers:
            out.append((f"{sanitize_line(name)}: {sanitize_line(value)}", "header"))
        if part.headers:
            out.append(("", "text"))
        _text(out, part.text, quote_depth, trim=True)
    if content.links:
        out.append(("", "text"))
        out.append(("Links:", "hname"))
        for i, url in enumerate(content.links, 1):
            out.append((f"[{i}] {sanitize_strict(url)}", "link"))
    if content.attachments:
        out.append(("", "text"))
        out.append(("Attachments:", "hname"))
        for i, a in enumerate(content.attachments, 1):
            out.append((attachment_line(i, a), "attach"))
    return out
