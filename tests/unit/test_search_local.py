"""The local search evaluator (store/search.py) against core.pattern.matches, the reference: for every
pattern and every message, a hit where matches says True, undecided where it says None, nothing where
it says False; with part of the headers above the index's watermark and part of the bodies cached."""

from __future__ import annotations

import random
from datetime import UTC, datetime

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from tuimail.core.pattern import (And, Date, DateRange, DateRel, Flag, Message, Not, Or, Size, Text, matches,
                                  parse)
from tuimail.store import Store
from tuimail.store.search import evaluate, head_upto, index_body, index_headers, unindexed

NOW = datetime(2024, 6, 15, 12, 0, tzinfo=UTC)
WORDS = ["apple", "Apple", "APPLE", "pie", "école", "École", "straße", "ü", "Über", "50%", "a_b", "x*y", "ab",
         "\\back", 'say "hi"', "tab\tx", "o'neil"]
ALPHABET = "aAbeéÉpilc5%_*\\\"' ßüÜ"


def _text(rng: random.Random, n: int) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(rng.randint(0, n)))


def _messages(n: int = 80):
    rng = random.Random(13)
    out = []
    for i in range(n):
        out.append(dict(
            from_=f"{_text(rng, 2)} <u{i}@ex.org>", to=_text(rng, 2), cc=_text(rng, 1), subject=_text(rng, 3),
            message_id=f"<m{i}@ex.org>", in_reply_to=None, refs="",
            date=int(datetime(2024, rng.randint(1, 6), rng.randint(1, 28), tzinfo=UTC).timestamp()),
            size=rng.randint(0, 5000), flags=frozenset(f for f in ("seen", "flagged", "answered", "deleted")
                                                       if rng.random() < 0.4),
            body=_text(rng, 12) if rng.random() < 0.6 else None))
    return out


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    st_ = Store(tmp_path_factory.mktemp("search") / "store.db")
    msgs = _messages()
    fids = [st_.upsert_folder("INBOX", ".", (), "inbox"), st_.upsert_folder("Other", ".", (), None)]
    view: dict[int, Message] = {}
    for k, fid in enumerate(fids):
        part = msgs[k::2]
        rows = [(str(i + 1), 0, m["flags"], "", m["date"], m["from_"], m["to"], m["cc"], m["subject"],
                 m["message_id"], m["in_reply_to"], m["refs"], m["size"], 0) for i, m in enumerate(part)]
        ids = st_.insert_headers(fid, rows)
        if k == 0:
            index_headers(st_, batch=7)  # the first folder indexed, the other above the watermark
        for id_, m in zip(ids, part, strict=True):
            if m["body"] is not None:
                index_body(st_, id_, m["body"])
            view[id_] = Message(**m, tagged=None)
    # rows that go (the triggers keep both indexes in step) and a hidden row (never a hit)
    gone = st_.remove_sids(fids[0], ["1", "2"])
    for g in gone:
        view.pop(g)
    st_.db.execute("UPDATE messages SET hidden = 1 WHERE id = ?", (max(view),))
    view.pop(max(view))
    yield st_, view
    st_.close()


def _check(store, p):
    st_, view = store
    res = evaluate(st_, p, now=NOW)
    hits = {h.id for h in res.hits}
    unknown = {i for ids in res.unknown.values() for i in ids}
    for id_, m in view.items():
        want = matches(p, m, now=NOW, resolve=_ref_resolve)
        got = True if id_ in hits else None if id_ in unknown else False
        assert got == want, (p, id_, m)
    assert hits <= set(view) and unknown <= set(view)
    assert [h.id for h in evaluate(st_, p, now=NOW, unknown=False).hits] == [h.id for h in res.hits]


def _ref_resolve(p, m):
    """What the store decides where the message alone cannot (module doc of store/search.py):
    ~B reads From/To/Cc/Subject and the cached body; ~h ~l ~T are unknown."""
    if isinstance(p, Text) and p.op == "B":
        if any(matches(Text(op, p.text), m) for op in "ftcs") or (m.body is not None and matches(
                Text("b", p.text), m)):
            return True
        return None if m.body is None else False
    return None


_texts = st.text(alphabet=ALPHABET, min_size=1, max_size=6) | st.sampled_from(WORDS)
_leaf = st.one_of(
    st.builds(Text, st.sampled_from(list("ftcCsbBhix")), _texts),
    st.builds(Flag, st.sampled_from(list("NOURFDQTAl"))),
    st.builds(Date, st.just("d"), st.one_of(
        st.builds(DateRel, st.sampled_from(list("<>=")), st.integers(0, 300), st.sampled_from(list("mwd"))),
        st.builds(DateRange, st.none() | st.dates(), st.none() | st.dates()).filter(
            lambda r: r.start is not None or r.end is not None))),
    st.builds(Size, st.none() | st.integers(0, 5000), st.none() | st.integers(0, 5000)).filter(
        lambda s: s.lo is not None or s.hi is not None),
)


def _tree(children):
    def mk(cls):
        return st.lists(children, min_size=2, max_size=3).map(lambda xs: cls(tuple(xs)))
    return st.one_of(children.map(Not), mk(And), mk(Or))


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.recursive(_leaf, _tree, max_leaves=6))
def test_agrees_with_matches(store, p):
    _check(store, p)


@pytest.mark.parametrize("text", ["~b apple", "~B apple", "~b Apple", "~B école", "~b ü", "~B 50%", "~b a_b",
                                  "~b 'x*y'", "~B '\"hi\"'", "!~b pie", "~b pie | ~s pie", "~b pie ~U",
                                  "~h 'X: y'", "~T", "~l", "~b \\\\back", "~b 'tab\tx'", "~s straße ~b É",
                                  "(~b apple | ~F) !~B école", "apple", "~B ab", "~B ÜBER"])
def test_examples(store, text):
    _check(store, parse(text, today=NOW.date()))


def test_user_text_never_reaches_match_raw(store):
    st_, _ = store
    for text in ['"', '" OR "', "NEAR(a b)", "*", "a AND b", "^x", "{a}: b", "'"]:
        evaluate(st_, Text("b", text), now=NOW)  # no fts5 syntax error
        evaluate(st_, Text("B", text), now=NOW)


def test_index_integrity_and_watermark(store):
    st_, _ = store
    assert unindexed(st_) > 0  # the second folder's rows are above the watermark
    index_headers(st_)
    assert unindexed(st_) == 0 and head_upto(st_.db) == st_.db.execute("SELECT max(id) FROM messages").fetchone()[0]
    st_.db.execute("INSERT INTO fts_head(fts_head, rank) VALUES ('integrity-check', 1)")
    st_.db.execute("INSERT INTO fts_body(fts_body, rank) VALUES ('integrity-check', 1)")
    # a refetch that changes an indexed row's text keeps the index in step (update trigger)
    fid = st_.folder_id("INBOX")
    row = st_.rows(fid, st_.id_list(fid))
    some = next(iter(row.values()))
    st_.insert_headers(fid, [(some.sid, 0, some.flags, "", some.date, "Zed <z@x>", "", "", "zebra crossing",
                              some.message_id, None, "", some.size, 0)])
    st_.db.execute("INSERT INTO fts_head(fts_head, rank) VALUES ('integrity-check', 1)")
    assert [h.id for h in evaluate(st_, parse("~B zebra")).hits] == [some.id]


def test_body_of_a_removed_row_is_not_indexed(store):
    st_, _ = store
    index_body(st_, 10**9, "orphan text")  # no such row: skipped
    assert st_.db.execute("SELECT count(*) FROM bodytext WHERE id = ?", (10**9,)).fetchone()[0] == 0


def test_empty_scope_and_folder_scope(store):
    st_, view = store
    assert evaluate(st_, parse("~A"), []).hits == []
    fid = st_.folder_id("Other")
    hits = evaluate(st_, parse("~A"), [fid]).hits
    assert hits and {h.folder_id for h in hits} == {fid}
    assert len(evaluate(st_, parse("~A")).hits) == len(view)


def test_body_text_that_would_not_encode_is_indexed_anyway(store):
    st_, view = store
    some = next(iter(view))
    index_body(st_, some, "bad \udcff byte and \0 nul quokka")
    assert some in {h.id for h in evaluate(st_, parse("~b quokka")).hits}
