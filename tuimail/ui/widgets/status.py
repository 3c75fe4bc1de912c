"""The status bar: account, folder, total/unread, sync state, pending actions, last error."""

from __future__ import annotations

from dataclasses import dataclass, field

from textual.content import Content
from textual.widgets import Static

from tuimail.mail.sanitize import sanitize_line


@dataclass
class AccountState:
    state: str = "idle"  # connecting | syncing | idle | offline | error
    folder: str | None = None
    done: int = 0
    total: int = 0
    pending: int = 0
    error: str | None = None
    failed: list[tuple[str, int]] = field(default_factory=list)  # failed actions: (folder, count)
    unsent: tuple[int, int] = (0, 0)  # the Outbox past its undo window: (waiting, of which failed)
    needs: str | None = None  # "login" | "password": the sync waits for the user (SyncState.needs)
    problem: str | None = None  # the last failure, kept while reconnecting, cleared once synced


@dataclass
class StatusInfo:
    account: str = ""
    folder: str = ""
    total: int = 0
    unread: int = 0
    position: str = ""
    sort: str = ""
    accounts: dict[str, AccountState] = field(default_factory=dict)
    note: str = ""
    folder_error: str = ""  # the server's refusal of the open (or highlighted) folder
    flash: str = ""  # a short message that has the whole line for a moment ("key not bound")
    limit: str = ""  # "limit: ~f haddad ~U (92 of 4,160)", or a virtual folder's "search: ..."
    tagged: int = 0  # tagged messages in the open folder (ui/controllers/bulk.py)
    activity: str = ""  # what a bulk action did ("moved 5,000 messages to Archive"), for a while


def _short(text: str, n: int = 60) -> str:
    text = sanitize_line(text)
    return text if len(text) <= n else text[: n - 1] + "…"


def _shown_account(info: StatusInfo) -> tuple[str, AccountState]:
    """The open folder's account; with none open (a first run), the first one with a problem."""
    st = info.accounts.get(info.account)
    if st is not None:
        return info.account, st
    for name, st in info.accounts.items():
        if st.problem or st.error:
            return name, st
    return next(iter(info.accounts.items()), (info.account, AccountState()))


def render_status(info: StatusInfo) -> Content:
    if info.flash:
        return Content.assemble((" " + _short(info.flash, 150), "bold"))  # (the bar clips it at its width)
    account, st = _shown_account(info)
    parts: list[str | tuple[str, str]] = [
        (f" {_short(account, 20)}", "bold"),
        " ▸ ",
        (_short(info.folder, 30) or "-", "bold"),
    ]
    if info.total >= 0:  # -1: not counted yet (the first screen comes before the counts)
        parts.append(f"  {info.total} msgs")
    if info.unread > 0:
        parts += ["  ", (f"{info.unread} unread", "bold")]
    if info.limit:
        parts += ["  ", (_short(info.limit, 70), "bold")]
    if info.sort:
        parts.append(f"  [{info.sort}]")
    if info.position:
        parts.append(f"  {info.position}")
    if info.tagged:
        parts.append(f"  {info.tagged:,} tagged")
    parts.append("  │ ")
    if st.state == "offline":
        parts.append(("OFFLINE", "bold reverse"))
    elif st.state == "syncing":
        what = f"syncing {_short(st.folder, 20)}" if st.folder else "syncing"
        parts.append(f"{what} {st.done}/{st.total}" if st.total else what)
    elif st.state == "error":
        parts.append(("error", "bold"))
    else:
        parts.append(_short(st.state, 12))
    if st.pending:
        parts.append(f" · {st.pending} pending")
    if info.activity:
        parts += [" · ", (_short(info.activity, 60), "bold")]
    if st.failed:
        n = sum(c for _, c in st.failed)
        where = _short(st.failed[0][0], 20) + (f" +{len(st.failed) - 1}" if len(st.failed) > 1 else "")
        parts += [" · ", (f"{n} failed in {where}", "bold reverse")]
    if st.unsent[0]:
        n, bad = st.unsent
        parts += [" · ", (f"Outbox {n}" + (f", {bad} failed" if bad else ""), "bold reverse" if bad else "bold")]
    if info.folder_error:
        parts += [" · ", ("⚠ " + _short(info.folder_error, 70), "bold")]
    error = st.error or (st.problem if st.state == "connecting" else None)
    if error:
        parts += [" · ", ("⚠ " + _short(error, 70), "bold")]
    if info.note:
        parts += [" · ", _short(info.note, 50)]
    return Content.assemble(*parts)


class StatusBar(Static):
    DEFAULT_CSS = """
    StatusBar { height: 1; width: 1fr; background: $primary-background; color: $foreground; }
    """

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__("", id=id, markup=False)
        self.info = StatusInfo()

    def show(self) -> None:
        # One line, the screen's width whatever it says: no layout pass. (With one, every
        # progress update of a cold fill reflowed and repainted the whole screen: ~20 ms.)
        self.update(render_status(self.info), layout=False)
