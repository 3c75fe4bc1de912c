"""The limit probe's choice of sender (tests/bench/limit_bench.py), on a real store file."""

from __future__ import annotations

from tests.bench.limit_bench import pick_name
from tests.ui.fixtures import make_store


def test_pick_name_takes_a_surname_and_counts_what_f_matches(tmp_path):
    path = tmp_path / "bench.sqlite3"
    make_store(path, 400).close()
    name, count = pick_name(path, 400)
    assert name == name.lower() and len(name) >= 4
    assert count == 50  # (the fixture's eight senders take turns)
