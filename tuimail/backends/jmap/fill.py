"""The first fill of a folder: Email/query inMailbox sorted by receivedAt newest first + Email/get
by back-reference, in one request: the first screen; then the rest in windows anchored on the
last id seen (a removal elsewhere cannot shift a message out of the walk), each committed as it
comes, the next window asked for while this one is stored. The folder's state is the Email state
of the first answer: what changed during the walk comes with the next Email/changes."""

from __future__ import annotations

import contextlib
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING

from tuimail.backends.jmap.state import FolderState
from tuimail.core.events import FoldersChanged
from tuimail.core.summary import FolderSummary
from tuimail.protocol.jmap.errors import MethodError

if TYPE_CHECKING:
    from tuimail.backends.jmap.engine import Engine

FIRST_WINDOW = 200  # the first screen's worth, in the first request


def fill_folder(engine: Engine, fid: int) -> FolderSummary:
    """The folder's messages newest first: the first screen in one request, then windows
    anchored on the last id seen; the folder's state is the Email state of the first answer."""
    fi = engine.store.folder(fid, counts=False)
    assert fi is not None
    st = FolderState.load(fi.state)
    res = engine.summary(fi.name)
    res.first = True
    mid = st.mailbox
    if mid is None:
        return res
    emails, ids, state, total = engine.query_page(mid, None, FIRST_WINDOW)
    res.new += len(engine.commit(fid, emails))
    engine._first_window_done()
    known = set(ids)
    limit = engine.limit()

    def page(anchor: str, position: int) -> tuple[list[dict], list[str], str, int | None]:
        try:
            return engine.query_page(mid, anchor, limit)
        except MethodError as exc:
            if exc.type != "anchorNotFound":
                raise
            return engine.query_page(mid, None, limit, position=position)

    # The next window is asked for while this one is stored: the server's time and ours
    # overlap. Only the helper thread uses the client meanwhile (it is not thread-safe).
    with ThreadPoolExecutor(1, thread_name_prefix="jmap-fill") as ex:
        ahead = ex.submit(page, ids[-1], len(known)) if ids and (total is None or len(known) < total) else None
        while ahead is not None:
            emails, ids, _s, total = ahead.result()
            if known.issuperset(ids):  # a server that does not move on: stop (the next sync goes on)
                break
            known.update(ids)
            more = bool(ids) and (total is None or len(known) < total)
            ahead = ex.submit(page, ids[-1], len(known)) if more else None
            try:
                res.new += len(engine.commit(fid, emails))
            except BaseException:
                if ahead is not None:
                    ahead.cancel()
                    with contextlib.suppress(Exception):
                        ahead.result()
                raise
    engine.store.set_folder_state(fid, st.but(email=state).dump(), server_total=total, synced=True)
    engine.store.set_folder_error(fid, None)
    engine.update_threads(fid)
    engine.emit(FoldersChanged(engine.account.name))
    return res
