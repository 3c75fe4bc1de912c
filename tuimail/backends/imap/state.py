"""The IMAP folder sync state, stored opaquely by the store (folders.state) as JSON.

    FolderState.load(store.folder_state(fid)) -> FolderState(uidvalidity, uidnext, highestmodseq)
    store.set_folder_state(fid, state.dump())
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace


@dataclass(frozen=True)
class FolderState:
    uidvalidity: int | None = None
    uidnext: int | None = None
    highestmodseq: int | None = None

    @classmethod
    def load(cls, text: str | None) -> FolderState:
        if not text:
            return cls()
        try:
            d = json.loads(text)
        except ValueError:
            return cls()  # (unreadable: as if never synced; the folder is filled again)
        if not isinstance(d, dict):
            return cls()
        return cls(*(v if isinstance(v, int) and not isinstance(v, bool) else None
                     for v in (d.get("uidvalidity"), d.get("uidnext"), d.get("highestmodseq"))))

    def dump(self) -> str:
        return json.dumps({"uidvalidity": self.uidvalidity, "uidnext": self.uidnext,
                           "highestmodseq": self.highestmodseq}, separators=(",", ":"))

    def but(self, **kw) -> FolderState:
        return replace(self, **kw)


def load(store, folder_id: int) -> FolderState:
    return FolderState.load(store.folder_state(folder_id))


def save(store, folder_id: int, state: FolderState) -> None:
    store.set_folder_state(folder_id, state.dump())
