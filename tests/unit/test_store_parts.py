"""Store is composed of parts (issue #10 item 5): the journal, the thread order and the failed
actions are plain objects sharing the store's connection and transactions; Store delegates."""

from __future__ import annotations

import inspect

import pytest

from tuimail.store import Store
from tuimail.store.conn import StorePart
from tuimail.store.failures import Failures
from tuimail.store.journal import Journal
from tuimail.store.threads import ThreadOrder

from .test_store import row

PARTS = {"journal": Journal, "threads": ThreadOrder, "failures": Failures}


@pytest.fixture
def st(tmp_path):
    s = Store(tmp_path / "a" / "s.sqlite3")
    yield s
    s.close()


def _public_methods(cls: type) -> dict[str, object]:
    return {n: f for n, f in vars(cls).items() if not n.startswith("_") and inspect.isfunction(f)}


@pytest.mark.parametrize("attr", sorted(PARTS))
def test_store_delegates_every_public_method_of_its_parts_with_the_same_signature(attr):
    """A method added to a part is a Store method too (callers know one object)."""
    cls = PARTS[attr]
    assert issubclass(cls, StorePart)
    for name, fn in _public_methods(cls).items():
        if name in ("pending_flag_deltas",):  # (the store's own writes use it through .journal)
            continue
        mine = getattr(Store, name, None)
        assert mine is not None, f"Store.{name} is missing (delegating to Store.{attr}.{name})"
        assert str(inspect.signature(mine)) == str(inspect.signature(fn)), name


def test_the_parts_share_one_connection_and_its_transaction(st):
    fid = st.upsert_folder("INBOX", "/", (), "inbox")
    st.insert_headers(fid, [row(1), row(2)])
    assert st.journal.db is st.db and st.threads.db is st.db and st.failures.db is st.db
    # an intent inside the store's transaction joins it: a rollback takes back the row and the entry
    with pytest.raises(RuntimeError), st.transaction():
        assert st.in_transaction
        assert st.set_flags(fid, [1], add=["flagged"]) == [1]
        assert st.move(fid, [2], "Trash") == [2]
        assert st.pending_count() == 2 and st.row(fid, 1).flagged
        raise RuntimeError("rolled back")
    assert not st.in_transaction
    assert st.pending() == [] and not st.row(fid, 1).flagged and st.id_list(fid) == [2, 1]
    # the failures part sees the journal part's entries (one file, one connection)
    st.set_flags(fid, [1], add=["flagged"])
    (e,) = st.pending()
    st.journal_failed(e.id, "NO", final=True)
    assert st.failed_count() == 1 and st.discard([e.id]) == [(fid, 1)] and not st.row(fid, 1).flagged
