"""What the reader shows inline besides the main text part: attached messages (message/rfc822,
a forward or a bounce's returned message) with their headers and text, and delivery reports
(message/delivery-status, text/rfc822-headers) in a bounce.

``inline_plan`` lists the steps in message order; the reader fetches the one part each step
names (never the whole message) and renders it. Attached messages nest up to MAX_NESTING levels;
deeper ones stay in the attachment list only. The parts stay in the attachment list too (save,
pipe, open as a message), numbered as before.
"""

from __future__ import annotations

from dataclasses import dataclass

from tuimail.mail.part import Part, choose_text_part

__all__ = ["Step", "inline_plan", "is_message", "MAX_NESTING", "message_headers"]

MAX_NESTING = 3
MAX_STEPS = 50  # a digest of 1000 messages shows the first ones inline, the list has them all

_MESSAGE = ("message/rfc822", "message/global")
_STATUS = {"message/delivery-status": "Delivery status", "message/global-delivery-status": "Delivery status",
           "message/disposition-notification": "Read receipt",
           "text/rfc822-headers": "Headers of the returned message"}


@dataclass(frozen=True)
class Step:
    kind: str  # "message": an attached message (its headers, then `text`); "status": a delivery
    #            report shown as text
    part: Part
    depth: int  # 1 for a part of the message itself, 2 inside an attached message...
    title: str = ""
    text: Part | None = None  # "message": its text part (None: it has none)


def is_message(part: Part) -> bool:
    return part.mimetype in _MESSAGE


def message_headers(part: Part) -> list[tuple[str, str]]:
    """An attached message's headers as (Name, value), in the reader's order, not sanitised."""
    h = part.headers
    return [(name, h[name.lower()]) for name in ("From", "To", "Cc", "Date", "Subject") if h.get(name.lower())]


def inline_plan(root: Part, prefer: str = "plain", chosen: Part | None = None) -> list[Step]:
    """The steps after the main text part (`chosen`, choose_text_part(root) by default)."""
    if chosen is None:
        chosen = choose_text_part(root, prefer)
    steps: list[Step] = []
    _walk(root, prefer, chosen, 1, steps)
    return steps


def _walk(root: Part, prefer: str, chosen: Part | None, depth: int, steps: list[Step]) -> None:
    stack = [root]
    while stack and len(steps) < MAX_STEPS:
        part = stack.pop()
        if part is chosen:
            continue
        if part.maintype == "multipart":
            if part.subtype in ("alternative", "encrypted"):
                continue  # one alternative is shown (or none: encrypted)
            kids = part.children[:1] if part.subtype == "signed" else part.children
            stack.extend(reversed(kids))
            continue
        mime = part.mimetype
        if mime in _STATUS:
            steps.append(Step("status", part, depth, _STATUS[mime]))
        elif mime in _MESSAGE and part.children and depth <= MAX_NESTING:
            inner = part.children[0]
            text = choose_text_part(inner, prefer)
            steps.append(Step("message", part, depth, "Attached message", text))
            _walk(inner, prefer, text, depth + 1, steps)
