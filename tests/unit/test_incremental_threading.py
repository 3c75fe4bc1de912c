"""New mail is threaded with the threads it joins only (Engine.update_threads): whatever arrives,
in whatever batches, the stored order must be what threading the whole folder gives."""

from __future__ import annotations

from hypothesis import given, settings, strategies as st

from tuimail.mail.thread import thread_order
from tuimail.store import Store
from tuimail.store.threads import THREADS_ALL, THREADS_CLEAN
from tuimail.backends.imap.engine import Engine
from tests.support.rows import v6rows

# A small pool of ids, so messages share parents, miss them (dummies), duplicate each other's
# Message-ID and reference each other in loops.
ids = st.integers(min_value=0, max_value=25).map(lambda i: f"<{i}@x>")
message = st.tuples(st.none() | ids, st.none() | ids, st.lists(ids, max_size=5), st.integers(0, 40))
batches = st.lists(st.tuples(st.lists(message, min_size=1, max_size=12), st.booleans()), min_size=1, max_size=6)


def entries(store: Store, fid: int) -> dict:
    return {r[0]: r[1:] for r in store.db.execute("SELECT id, pos, sub, depth, root, prefix FROM threads"
                                                  " WHERE folder_id = ?", (fid,))}


@settings(max_examples=150, deadline=None)
@given(batches)
def test_incremental_threading_equals_threading_the_folder(tmp_path_factory, batches):
    d = tmp_path_factory.mktemp("t")
    with Store(d / "inc.sqlite3") as inc, Store(d / "full.sqlite3") as full:
        fid = inc.upsert_folder("INBOX", "/", (), None)
        assert full.upsert_folder("INBOX", "/", (), None) == fid
        engine = Engine(None, inc, None)
        uid = 0
        for msgs, remove_one in batches:
            rows = []
            for mid, irt, refs, date in msgs:
                uid += 1
                rows.append((uid, 0, "", 1_700_000_000 + date * 60, "f", "t", "", "s", mid, irt, " ".join(refs), 1, 0))
            for store in (inc, full):
                store.insert_headers(fid, v6rows(rows))
                if remove_one and uid > 3:
                    store.remove_sids(fid, [str(uid - 3)])
            engine.update_threads(fid)
            assert inc.threads_state(fid) == THREADS_CLEAN
            full.set_threads(fid, thread_order(full.headers_for_threading(fid)))
            assert entries(inc, fid) == entries(full, fid)
            assert inc.id_list(fid, "thread") == full.id_list(fid, "thread")


def test_new_mail_in_a_big_folder_reads_only_its_thread(tmp_path):
    with Store(tmp_path / "s.sqlite3") as st_:
        fid = st_.upsert_folder("INBOX", "/", (), None)
        st_.insert_headers(fid, v6rows([(u, 0, "", 1_700_000_000 + u, "f", "t", "", "s", f"<{u}@x>",
                                  f"<{u - 1}@x>" if u % 10 else None, f"<{u - 1}@x>" if u % 10 else "", 1, 0)
                                 for u in range(1, 3001)]))
        engine = Engine(None, st_, None)
        engine.update_threads(fid)
        assert st_.threads_state(fid) == THREADS_CLEAN
        # a reply to the last thread (2990..2999, chained) whose References also name 3000, a
        # thread of its own until now: JWZ makes 3000 a child of 2999, so the two threads join
        st_.insert_headers(fid, v6rows([(3001, 0, "", 1_700_000_000 + 3001, "f", "t", "", "s", "<3001@x>",
                                         "<3000@x>", "<2999@x> <3000@x>", 1, 0)]))
        assert st_.thread_closure(fid, st_.unthreaded_ids(fid), 500) == list(range(2990, 3002))
        written = []
        st_.db.set_trace_callback(lambda sql: written.append(sql) if sql.startswith("INSERT OR REPLACE INTO threads")
                                  else None)
        engine.update_threads(fid)
        st_.db.set_trace_callback(None)
        assert len(written) == 12  # the joined thread moved to the top: its rows, and no other
        assert st_.id_list(fid, "thread")[:13] == [*range(2990, 3002), 2980]
        # an expunge redraws the whole folder
        st_.remove_sids(fid, ["2995"])
        assert st_.threads_state(fid) == THREADS_ALL
        engine.update_threads(fid)
        assert st_.threads_state(fid) == THREADS_CLEAN
        info = {uid: (depth, root) for uid, depth, root in st_.thread_info(fid)}
        # only 2995's own References linked it to 2994: its replies now start a thread of their own
        assert info[2994] == (4, 2990) and info[2996] == (0, 2996) and info[3001] == (5, 2996)
        assert 2995 not in info
