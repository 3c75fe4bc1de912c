from hypothesis import given, settings, strategies as st

from tuimail.protocol.imap import uidset

uid_lists = st.lists(st.integers(min_value=1, max_value=200_000), max_size=3000)


@given(uid_lists.filter(bool))
def test_compact_roundtrip(uids):
    s = uidset.compact(uids)
    assert uidset.parse(s) == sorted(set(uids))
    assert "," not in s or all(p for p in s.split(","))


@given(uid_lists.filter(bool), st.integers(min_value=20, max_value=8000), st.booleans())
@settings(max_examples=200)
def test_chunked_covers_everything_within_the_limit(uids, limit, reverse):
    chunks = list(uidset.chunked(uids, max_len=limit, reverse=reverse))
    got = []
    for c in chunks:
        # a single run can never be split, so only a lone run may exceed a tiny limit
        assert len(c) <= limit or "," not in c
        got.extend(uidset.parse(c))
    assert sorted(got) == sorted(set(uids))
    assert len(got) == len(set(got))


def test_compact_is_compact():
    assert uidset.compact([5, 1, 2, 3, 3, 7, 8]) == "1:3,5,7:8"
    assert uidset.compact(range(1, 100_001)) == "1:100000"


def test_twenty_thousand_scattered_uids_stay_under_8k_per_command():
    uids = list(range(1, 40_001, 2))  # 20k uids, no runs: imapclient would send 120 KB
    chunks = list(uidset.chunked(uids))
    assert all(len(c) <= uidset.MAX_SET_LEN for c in chunks)
    assert sum(len(uidset.parse(c)) for c in chunks) == 20_000


def test_windows_newest_first():
    w = list(uidset.windows(range(1, 1001), 100, 400))
    assert w[0] == list(range(1000, 900, -1))
    assert [len(x) for x in w] == [100, 400, 400, 100]


def test_parse_star_and_bad_input():
    assert uidset.parse("3:*", star=5) == [3, 4, 5]
    assert uidset.parse(b"9:7") == [7, 8, 9]
    for bad in ("1:x", "*", "1,,a"):
        try:
            uidset.parse(bad)
        except ValueError:
            continue
        raise AssertionError(bad)


@given(uid_lists, st.lists(st.integers(min_value=0, max_value=5000), max_size=50))
def test_in_runs_is_membership_and_format_runs_is_compact(uids, probes):
    runs = uidset.ranges(uids)
    for u in probes + uids:
        assert uidset.in_runs(runs, u) == (u in set(uids))
    if uids:
        assert uidset.format_runs(runs) == uidset.compact(uids)
        assert sorted(uidset.parse(uidset.format_runs(runs))) == sorted(set(uids))


@settings(deadline=None)  # a store per example: file creation time is not what is tested
@given(uid_lists)
def test_the_store_reads_its_uids_as_the_same_runs(tmp_path_factory, uids):
    from tuimail.backends.imap.engine import Engine
    from tuimail.store import Store

    with Store(tmp_path_factory.mktemp("s") / "s.sqlite3") as store:
        fid = store.upsert_folder("INBOX", "/", (), None)
        store.insert_headers(fid, [(str(u), 0, frozenset(), "", None, "", "", "", "", None, None, "", 0, 0)
                                   for u in uids])
        assert Engine(None, store, None)._known(fid) == uidset.ranges(uids)
