"""Mailboxes as the store's folders: Mailbox/get (all, with roles) -> folders named by their path
("Parent/Child"; the inbox role is "INBOX"), each holding its Mailbox id in its state. Run when
the Mailbox state changed in more than counts (Mailbox/changes, in backends/jmap/engine.py)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from tuimail.backends.jmap.state import FolderState
from tuimail.core.events import FoldersChanged, RowsChanged
from tuimail.protocol.jmap.mail import mailboxes

if TYPE_CHECKING:
    from tuimail.backends.jmap.engine import Engine

DELIMITER = "/"


def sync_mailboxes(engine: Engine) -> dict[str, int]:
    """Mailbox/get -> the store's folders; mailbox id -> folder id. A folder no longer on the
    server goes (kept as gone while actions on it wait, as for IMAP)."""
    state, boxes = mailboxes(engine.client)
    by_id = {str(b.get("id")): b for b in boxes if isinstance(b, dict) and b.get("id")}
    names: dict[str, str] = {}

    def path(mid: str, depth: int = 0) -> str:
        if mid in names:
            return names[mid]
        b = by_id[mid]
        if b.get("role") == "inbox" and not b.get("parentId"):
            name = "INBOX"
        else:
            name = str(b.get("name") or mid)
            parent = b.get("parentId")
            if isinstance(parent, str) and parent in by_id and depth < 20:
                name = path(parent, depth + 1) + DELIMITER + name
        names[mid] = name
        return name

    taken: dict[str, str] = {}
    # two mailboxes under one path (or one named like the inbox): the second is told apart
    for mid in sorted(by_id, key=lambda m: by_id[m].get("role") != "inbox"):
        name = path(mid)
        if name in taken:
            names[mid] = name = f"{name} ({mid})"
        taken[name] = mid
    overrides = {v: k for k, v in (getattr(engine.account, "roles", None) or {}).items()}
    known = {f.name: f for f in engine.store.folders()}
    out: dict[str, int] = {}
    for mid, b in by_id.items():
        name = path(mid)
        role = b.get("role") if isinstance(b.get("role"), str) else None
        role = overrides.get(name, role)
        if not _wanted(engine.account, name, role):
            continue
        fid = engine.store.upsert_folder(name, DELIMITER, (), role, True)
        st = FolderState.load(engine.store.folder_state(fid))
        if st.mailbox is not None and st.mailbox != mid:  # another mailbox under an old name
            engine.store.reset_folder(fid, None)
            st = FolderState()
            engine.emit(RowsChanged(engine.account.name, fid, reset=True))
        st = st.but(mailbox=mid, mailboxes=state)
        total, unread = b.get("totalEmails"), b.get("unreadEmails")
        engine.store.set_folder_state(fid, st.dump(), server_total=total if isinstance(total, int) else None,
                                      server_unseen=unread if isinstance(unread, int) else None)
        out[mid] = fid
    for name in sorted(set(known) - {names[m] for m in out}):
        if known[name].gone:
            continue
        what = engine.store.folder_vanished(name)
        if what == "gone":
            engine.notes.append(f"{name} is gone from the server; its waiting actions failed")
    engine.emit(FoldersChanged(engine.account.name))
    return out


def _wanted(account: Any, name: str, role: str | None) -> bool:
    limit = getattr(account, "folders", None)
    return not limit or name in limit or role == "inbox"
