"""The bench's sections beside IMAP (sections.py, report_sections.py), without running a bench:
--only picks sections, a section that cannot be measured says why in RESULTS.md instead of failing
the run, and each measured figure gets its target and ✅/❌."""

from __future__ import annotations

import pytest

from tests.bench import report, sections
from tests.bench.run import parse_args

META = {"date": "2026-12-06 09:00 UTC", "machine": "2 cores", "load_start": "0.1", "command": "x",
        "versions": {}, "fs": "tmpfs"}


def test_only_picks_sections_and_refuses_an_unknown_one(capsys):
    a = parse_args(["--only", "pop3,search", "--quick"])
    assert a.only == ["pop3", "search"] and a.search_n == 10_000 and a.jmap_n == 2000
    assert parse_args([]).only == list(sections.SECTIONS) and parse_args([]).search_n == 100_000
    with pytest.raises(SystemExit):
        parse_args(["--only", "pop4"])
    assert "the sections are imap,pop3,search,jmap" in capsys.readouterr().err


def test_a_missing_cyrus_is_reported_not_raised(monkeypatch):
    monkeypatch.setenv("TUIMAIL_CYRUS_ROOT", "/nonexistent/cyrus")
    logged = []
    got = sections.jmap(100, 1, logged.append)
    assert "not installed" in got["not_measured"]
    text = report.render(META, {}, {"jmap": got})
    assert "### JMAP on Cyrus (issue #15)" in text and "not measured: CyrusNotInstalled: Cyrus IMAP is not" in text


def test_the_sections_render_with_their_targets():
    extra = {
        "pop3": {"neomutt_cold": [2.0, 2.2], "tuimail_cold": [0.8, 0.9], "tuimail_cold_all": [2.5], "floor": [0.5],
                 "noop_out": [114000, 114000], "noop_commands": {"CAPA": 2, "AUTH": 2, "UIDL": 1, "QUIT": 1},
                 "noop_tuimail_counted": [[114122, 66]], "errors": []},
        "search": {"n": 10000, "bodies": 1000, "fulltext_ms": 3.5, "fulltext_hits": 263, "limit_ms": 1.6,
                   "fill_with_s": 0.12, "fill_without_s": 0.11, "fill_n": 5000,
                   "fill": {"not_measured": "DovecotNotInstalled: no dovecot"},
                   "header_summary": {"n": 2000, "summarize_us": 12.0, "compat32_us": 36.0, "ratio": 3.0,
                                      "target": 2.5}},
        "jmap": {"n": 2000, "jmap_first": 0.26, "imap_first": 0.38, "jmap_all": 1.0, "imap_all": 0.7,
                 "noop": {"requests": 1, "bytes": 1002}, "errors": [],
                 "push": {"push": {"median": 0.2, "max": 0.4, "push_state": "on"},
                          "poll": {"max": 2.5, "interval": 3.0}, "push_within_1s": True}},
    }
    text = report.render(META, {}, extra)
    lines = text.splitlines()

    def row(start: str) -> str:
        return next(ln for ln in lines if ln.startswith(f"| {start}"))

    assert row("POP3 cold open, first screen").endswith("| ≤ 0.5× neomutt | ✅ |")  # 0.85 / 2.1
    assert row("POP3 cold open, all headers").endswith("| ❌ |")
    assert "114,000 B" in row("POP3 second sync") and row("POP3 second sync").endswith("| ✅ |")
    assert row("search a word").endswith("| ≤ 50 ms | ✅ |")
    assert "not measured" in row("cold fill of 5,000 messages")
    assert row("header summary vs email compat32").endswith("| 3.0× faster | summarize 12.0 µs, compat32 36.0 µs "
                                                            "a message | ≥ 2.5× faster | ✅ |")
    assert row("JMAP resync with nothing changed").endswith("| one request < 2 KB | ✅ |")
    assert row("JMAP push").endswith("| ≤ 1 s | ✅ |") and "median 0.20 s" in row("JMAP push")
    assert "**Other sections: 9 of 10 targets met.**" in text


def test_header_speed_measures_both_parsers_on_the_fetched_fields():
    """header_speed.py (in the search section) without its timing mattering: the figures are there
    and the headers are cut to what the sync fetches."""
    from tests.bench import header_speed

    raw = (b"Received: from x\r\n\tby y\r\nSubject: a\r\n b\r\nX-Other: 1\r\nFrom: c@d\r\n\r\nbody")
    assert header_speed.fetched_fields(raw) == b"Subject: a\r\n b\r\nFrom: c@d\r\n\r\n"
    d = header_speed.measure(20)
    assert d["n"] == 20 and d["summarize_us"] > 0 and d["compat32_us"] > 0 and d["target"] == 2.5
    assert header_speed.line(d).startswith("header summary vs email compat32: ")
