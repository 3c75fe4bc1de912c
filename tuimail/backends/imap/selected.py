"""The light path on the selected folder (DESIGN.md §1: a woken worker acts at once).

While the worker idles on a folder, the server reports what others change there (IDLE), so a
user's action on that folder needs no resync: DONE, the one command (a conditional STORE, a
MOVE, a STORE \\Deleted + UID EXPUNGE) and IDLE again. No STATUS (Dovecot answers [CLIENTBUG]
for the selected folder), no re-SELECT, no UID SEARCH of the folder.

MODSEQ: the folder's stored HIGHESTMODSEQ is what the next QRESYNC SELECT asks changes since.
It moves past a change only when every modification sequence between it and the change has been
applied here: RFC 7162 §3.1 gives each STORE on a mailbox its own MODSEQ, increasing, so a run of
values that continues the stored one without a gap (our STORE's answer, the FETCHes IDLE and the
command brought) leaves nothing unseen in between. A gap (another client's change we were not
told about, an expunge) leaves it where it is: the next resync asks from there, as before.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from tuimail.protocol.imap import uidset
from tuimail.protocol.imap.responses import Unsolicited
from tuimail.core.events import RowsChanged
from tuimail.backends.imap.flags import server_flags
from tuimail.backends.imap.state import FolderState


@dataclass
class Sent:
    """What a replay on the selected folder did, for the news that came with it."""

    modseq: dict[int, int | None] = field(default_factory=dict)  # uid -> MODSEQ of our flag change
    seen: list[int | None] = field(default_factory=list)  # MODSEQs of flags fetched and applied


def advance_modseq(highest: int, seen: Iterable[int | None]) -> int:
    """`highest` moved along the values of `seen` that continue it without a gap."""
    for m in sorted({m for m in seen if m}):
        if m == highest + 1:
            highest = m
        elif m > highest:
            break
    return highest


def apply_news(engine, name: str, news: Unsolicited, sent: Sent | None = None) -> bool:
    """What the server said on the selected folder `name` (during IDLE or a replayed command),
    applied to the store. True when it needs a resync of the folder (new mail, an expunge by
    sequence number or of messages we still hold, flags changed by sequence number)."""
    store, sent = engine.store, sent or Sent()
    fi = store.folder(name, counts=False)
    if fi is None:
        return True
    if news.exists is not None or news.expunged or news.seq_flags:
        return True
    if news.vanished and uidset.intersect(news.vanished, engine._known(fi.id)):
        return True  # (uids we moved or expunged ourselves are no longer in the store)
    flags, seen = _fresh(engine, news.flags, sent)
    if flags:
        changed = store.apply_server_flags(fi.id, server_flags(flags))
        if changed:
            engine.emit(RowsChanged(engine.account.name, fi.id, ids=tuple(changed)))
    st = FolderState.load(fi.state)
    if engine.selected == (name, True) and st.highestmodseq:
        highest = advance_modseq(st.highestmodseq, [*sent.modseq.values(), *sent.seen, *seen])
        if highest != st.highestmodseq:
            store.set_folder_state(fi.id, st.but(highestmodseq=highest).dump())
    return False


def _fresh(engine, flags: list, sent: Sent) -> tuple[list, list[int | None]]:
    """The reported flags that are news, and the MODSEQs seen. A FETCH the server sent while our
    STORE of the same message was under way may tell the flags from before it (the entry is done,
    so they would paint the user's change away): one older than our change's MODSEQ is dropped
    (an older change we had not seen made the conditional STORE answer MODIFIED: its flags were
    fetched after it); one we cannot place (no MODSEQ) is asked for again."""
    news, again = [], []
    for uid, fl, m in flags:
        if uid not in sent.modseq:
            news.append((uid, fl, m))
        elif m is None or sent.modseq[uid] is None:
            again.append(uid)
        elif m >= sent.modseq[uid]:  # (at our MODSEQ: the state our STORE left)
            news.append((uid, fl, m))
    seen = [m for _, _, m in flags]
    if again:
        fetched = engine.conn.fetch_flags(sorted(set(again)))
        news += fetched
        seen += [m for _, _, m in fetched]
    return news, seen


def replay_selected(engine, name: str) -> tuple[int, bool] | None:
    """Send the pending actions on the selected folder `name` with no resync around them.
    Returns (entries sent, a resync is needed), or None when the light path does not apply (the
    folder is not the one selected by this session's last sync of it): sync it instead."""
    conn, store = engine.conn, engine.store
    if engine.selected is None or engine.selected[0] != name or conn.selected != name:
        return None
    fi = store.folder(name, counts=False)
    st = FolderState.load(fi.state if fi is not None else None)
    if fi is None or st.uidvalidity is None or fi.error or fi.gone:
        return None
    with_modseq = engine.selected[1] and st.highestmodseq is not None
    sent = Sent()
    done = engine.replay(fi.id, name, st.highestmodseq if with_modseq else None, sent)
    resync = apply_news(engine, name, conn.take_unsolicited(), sent)
    # entries of a folder whose UIDVALIDITY changed wait for a resync to match them again
    resync = resync or any(e.msg_id is None or e.sid is None for e in store.pending(fi.id))
    engine.update_threads(fi.id)  # (after a move or an expunge; nothing to do after flags)
    return done, resync
