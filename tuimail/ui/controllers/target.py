"""The message an action applies to, and the one line an action's failure is told in."""

from __future__ import annotations

from dataclasses import dataclass

from tuimail.errors import NotCached, TuimailError
from tuimail.mail.sanitize import sanitize_line
from tuimail.ui.controllers.view import MainView


@dataclass(frozen=True)
class Target:
    account: str
    folder_id: int
    folder: str
    uid: int


def error_text(exc: BaseException) -> str:
    if isinstance(exc, NotCached):
        return "not available offline (not in the local cache)"
    if isinstance(exc, TuimailError):
        return sanitize_line(str(exc))
    return sanitize_line(f"{type(exc).__name__}: {exc}")


def current_target(view: MainView, *, prefer_open: bool | None = None) -> Target | None:
    """The message an action applies to: the open one when the reader has the focus (or in
    full screen), else the one under the list cursor."""
    reader = view.reader
    if prefer_open is None:
        prefer_open = reader.has_focus or view.has_class("fullscreen")
    if prefer_open and reader.uid is not None and reader.folder_key is not None:
        account, fid = reader.folder_key
        if view.folder is not None and (account, fid) == (view.account, view.folder.id):
            return Target(account, fid, view.folder.name, reader.uid)
        info = view.tapp.stores[account].folder(fid)
        if info is not None:
            return Target(account, fid, info.name, reader.uid)
    uid = view.hlist.current_uid
    return list_target(view, uid) if uid is not None else None


def list_target(view: MainView, key: int) -> Target | None:
    """The message of list id `key`: in the open folder, or, in a virtual folder (a search across
    folders, ui/widgets/list_source.py), in the folder and account its entry names."""
    source = view.hlist.source
    if source is not None:
        e = source.entry(key)
        return Target(e.account, e.folder_id, e.folder, e.id) if e is not None else None
    if view.folder is None or view.account is None:
        return None
    return Target(view.account, view.folder.id, view.folder.name, key)


def shows(view: MainView, t: Target) -> bool:
    """The reader shows message t (not necessarily loaded yet)."""
    r = view.reader
    return r.uid == t.uid and r.folder_key == (t.account, t.folder_id)
