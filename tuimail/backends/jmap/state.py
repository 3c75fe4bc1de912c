"""A JMAP folder's sync state, kept opaque in the store (folders.state) as JSON:

    {"mailbox": "<Mailbox id>", "email": "<Email state>", "mailboxes": "<Mailbox state>"}

Email and Mailbox states are the account's (JMAP has no per-mailbox state): `email` is the state
since which this folder's rows are complete and current (None: never filled), so folders filled at
different times catch up from their own state. A garbage value loads as an empty state (resync).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace


@dataclass(frozen=True)
class FolderState:
    mailbox: str | None = None
    email: str | None = None
    mailboxes: str | None = None

    @classmethod
    def load(cls, text: str | None) -> FolderState:
        try:
            data = json.loads(text) if text else {}
        except ValueError:
            return cls()
        if not isinstance(data, dict):
            return cls()

        def s(key: str) -> str | None:
            v = data.get(key)
            return v if isinstance(v, str) and v else None

        return cls(s("mailbox"), s("email"), s("mailboxes"))

    def dump(self) -> str:
        return json.dumps({"mailbox": self.mailbox, "email": self.email, "mailboxes": self.mailboxes},
                          separators=(",", ":"))

    def but(self, **kw: str | None) -> FolderState:
        return replace(self, **kw)
