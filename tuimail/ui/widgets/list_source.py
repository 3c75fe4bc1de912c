"""Where the header list's ids come from: three sources behind one HeaderList.

- a folder: the folder's ordered local ids (ListLoader reads them, list_loading.py);
- a limited folder (`l PATTERN`): the same ids, kept only where they are in `Limit.ids`, the
  pattern's matches, computed off the UI thread (controllers/limit.py). Reloads caused by the sync
  keep the limit: they are filtered the same way.
- a virtual folder (`VirtualSource`): a result set across every folder of every account, one
  entry per match as three packed arrays (account index, folder id, local id). The list's ids are
  then entry numbers 0..n-1 (never a row object per match): rows are read for the entries on
  screen only, grouped by account and folder, and every action on one goes to its real folder
  and account through its Target (controllers/target.py).
"""

from __future__ import annotations

from array import array
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from tuimail.store.store import FolderInfo, MessageRow, Store
from tuimail.ui.overlay import Overlay


@dataclass(frozen=True)
class Limit:
    """A folder limited to a pattern's matches: `ids` (local ids) of `total` rows."""

    pattern: str
    ids: frozenset[int]
    total: int
    note: str = ""  # e.g. offline: what the store could not decide

    def status(self) -> str:
        return f"limit: {self.pattern} ({len(self.ids):,} of {self.total:,})"


@dataclass(frozen=True)
class Entry:
    account: str
    folder_id: int
    folder: str  # its name, for the Target
    id: int  # local id in that account's store


@dataclass
class VirtualSource:
    """A result set across stores (see the module doc). `hits` are (account, folder id, local id),
    in the order they are shown."""

    name: str
    pattern: str
    stores: Mapping[str, Store]
    overlay: Overlay | None = None
    note: str = ""
    accounts: list[str] = field(default_factory=list)
    _acct: array = field(default_factory=lambda: array("B"))
    _fid: array = field(default_factory=lambda: array("I"))
    _id: array = field(default_factory=lambda: array("I"))
    _names: dict[tuple[str, int], str] = field(default_factory=dict)
    _keys: dict[tuple[str, int], int] | None = None

    @classmethod
    def build(cls, name: str, pattern: str, stores: Mapping[str, Store], hits: Iterable[tuple[str, int, int]],
              *, overlay: Overlay | None = None, note: str = "") -> VirtualSource:
        src = cls(name, pattern, stores, overlay, note)
        index: dict[str, int] = {}
        for account, fid, id_ in hits:
            i = index.get(account)
            if i is None:
                i = index[account] = len(src.accounts)
                src.accounts.append(account)
            src._acct.append(i)
            src._fid.append(fid)
            src._id.append(id_)
        return src

    def __len__(self) -> int:
        return len(self._id)

    def keys(self) -> array:
        return array("I", range(len(self._id)))

    def entry(self, key: int) -> Entry | None:
        if not 0 <= key < len(self._id):
            return None
        account, fid = self.accounts[self._acct[key]], self._fid[key]
        return Entry(account, fid, self.folder_name(account, fid), self._id[key])

    def folder_name(self, account: str, fid: int) -> str:
        name = self._names.get((account, fid))
        if name is None:
            store = self.stores.get(account)
            info: FolderInfo | None = store.folder(fid, counts=False) if store is not None else None
            name = self._names[(account, fid)] = info.name if info is not None else "?"
        return name

    def folders(self) -> dict[str, dict[int, str]]:
        """{account: {folder id: name}} of the folders the entries are in."""
        out: dict[str, dict[int, str]] = {}
        for a, fid in set(zip(self._acct, self._fid, strict=True)):
            account = self.accounts[a]
            out.setdefault(account, {})[fid] = self.folder_name(account, fid)
        return out

    def key_of(self, account: str, id_: int) -> int | None:
        if self._keys is None:
            self._keys = {(self.accounts[a], i): k for k, (a, i) in enumerate(zip(self._acct, self._id, strict=True))}
        return self._keys.get((account, id_))

    def rows(self, keys: Sequence[int]) -> dict[int, MessageRow]:
        """The stored rows of these entries, read per account and folder."""
        groups: dict[tuple[int, int], list[int]] = {}
        for k in keys:
            if 0 <= k < len(self._id):
                groups.setdefault((self._acct[k], self._fid[k]), []).append(k)
        out: dict[int, MessageRow] = {}
        for (a, fid), ks in groups.items():
            store = self.stores.get(self.accounts[a])
            if store is None:
                continue
            got = store.rows(fid, [self._id[k] for k in ks])
            where = self.folder_name(self.accounts[a], fid)
            if len(self.accounts) > 1:
                where = f"{self.accounts[a]}:{where}"
            for k in ks:
                row = got.get(self._id[k])
                if row is not None:  # (the subject column says where the message is)
                    out[k] = row._replace(subject=f"[{where}] {row.subject}")
        return out

    def shown(self, key: int, row: MessageRow) -> MessageRow:
        """The row with the queued intents on top (ui/overlay.py)."""
        ov = self.overlay
        if not ov or not 0 <= key < len(self._id):
            return row
        store = self.stores.get(self.accounts[self._acct[key]])
        if store is None:
            return row
        return ov.row(store, self._fid[key], row) or row
