"""Writing mail: new messages, replies and forwards as a ``Draft``, the file the user edits in
$EDITOR (headers at the top, as mutt's ``edit_headers``) and its parsing back, and the MIME
message built from a draft with the standard library (``EmailMessage``, ``policy.SMTP``).

This module is what callers import; the work is in its parts:

- mail/draft.py: ``Draft``, ``Identity``, ``Attachment`` (safe names, the type from the name or
  the content), the address and message-id helpers the others share;
- mail/reply.py: drafts made from a message (reply to the sender, all, the list; forward inline
  or attached; a saved draft resumed), quoting, subjects; it parses the original (mail/parse.py,
  html2text) only when called, so importing this module (the UI, the CLI's ``send``) costs neither;
- mail/editfile.py: the edit file and its parsing back (``Attach:`` paths for the caller to read);
- mail/build.py: the message, Date and Message-ID, the bytes for Sent and for the wire (Bcc
  removed), SMTPUTF8 where an address needs it.

No I/O in any of them: attachments arrive as bytes (``make_attachment``).
"""

from __future__ import annotations

from tuimail.mail.build import build_message, envelope, needs_smtputf8, sent_copy
from tuimail.mail.draft import (
    Attachment, ComposeError, Draft, Identity, attachment_name, make_attachment, new_draft,
)
from tuimail.mail.editfile import edit_text, parse_edit_text
from tuimail.mail.reply import forward, forward_subject, quote_text, reply, reply_subject, resume

__all__ = [
    "ComposeError", "Identity", "Attachment", "Draft", "new_draft", "reply", "forward", "resume",
    "make_attachment", "attachment_name", "reply_subject", "forward_subject", "quote_text",
    "edit_text", "parse_edit_text", "build_message", "envelope", "sent_copy", "needs_smtputf8",
]
