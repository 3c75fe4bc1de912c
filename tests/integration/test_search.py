"""Search on Dovecot and Cyrus IMAP (issue #13): the store's answer and the server's agree on the same messages;
every folder at once; strings with CR/LF, quotes, *, %, non-ASCII go as literals; the CLI's exit
codes (0 matches, 1 none, 2 a bad pattern)."""

from __future__ import annotations

import json

import pytest

from tuimail import paths
from tuimail.core.pattern import parse
from tuimail.store import Store
from tuimail.store.search import evaluate, index_headers, unindexed

from .helpers import Cli, msg
from tests.support.cyrus import IMAP_SERVERS, imap_user

# (subject, body, seen)
MESSAGES = [
    ("apple pie", "nothing here\r\n", False),
    ("hello", "I like apple and banana\r\n", False),
    ("banana split", "plain\r\n", True),
    ("hi", "Ünïcödé text über alles\r\n", False),
    ("percent", "we got 50% off a*b today\r\n", True),
    ("quotes", 'he said "quote" loudly\r\n', False),
    ("two words", "the quick brown fox\r\n", True),
    ("Apple Caps", "APPLE uppercase\r\n", True),
]

# pattern -> the messages (1-based, as MESSAGES) it matches
AGREE = {
    "~b apple": {2, 8},
    "~B apple": {1, 2, 8},
    "~b apple ~U": {2},
    "!~b apple": {1, 3, 4, 5, 6, 7},
    "~b apple | ~s banana": {2, 3, 8},
    "~b über": {4},
    "~b ünïcödé": {4},
    "~b 50%": {5},
    "~b a*b": {5},
    "~b '\"quote\"'": {6},
    "~b 'quick brown'": {7},
    "~b fox ~s two": {7},
    "~b zebra": set(),
}


@pytest.fixture(params=IMAP_SERVERS)
def mailuser(request):
    """Every scenario here runs against Dovecot and against Cyrus IMAP."""
    return imap_user(request)


def _deliver(user, folder: str = "INBOX", start: int = 1) -> None:
    for i, (subject, body, seen) in enumerate(MESSAGES, start):
        user.deliver(folder, msg(i, subject=subject, body=body), flags="S" if seen else "")


def _numbers(rows) -> set[int]:
    """The message numbers (as MESSAGES, from the Message-ID <mN@...>) of search --json rows."""
    return {int(r["message_id"][2:].split("@")[0]) for r in rows}


def _search(cli: Cli, *args: str, offline: bool = False, expect: int | None = None) -> list[dict]:
    """`tuimail [--offline] search ARGS --json`; exit 0 with rows, 1 without (or `expect`)."""
    from tuimail.cli.main import main
    cli.capsys.readouterr()
    code = main(["--config", str(cli.config_path), *(["--offline"] if offline else []), "search", *args, "--json"])
    out, err = cli.capsys.readouterr()
    cli.last_err = err
    rows = json.loads(out) if out.strip() else []
    assert code == (expect if expect is not None else (0 if rows else 1)), (code, err)
    return rows


def test_local_and_server_agree(tuimail_env, mailuser, capsys):
    _deliver(mailuser)
    cli = Cli(tuimail_env.write_config(mailuser.config_toml()), capsys)
    cli("sync")
    with Store(paths.account_store_path("test")) as st:
        assert unindexed(st) == 0  # the sync indexed the headers after the fill
    # no body cached: the server answers the body terms
    server = {q: _numbers(_search(cli, "--folder", "INBOX", q)) for q in AGREE}
    # offline before any body is cached: nothing it cannot decide is a match, and it says so
    rows = _search(cli, "~b apple", offline=True)
    assert rows == [] and "offline" in cli.last_err and "~b apple" in cli.last_err
    # every body opened once (the reader caches and indexes it): the store alone answers
    for uid in range(1, len(MESSAGES) + 1):
        cli("read", "INBOX", str(uid))
    local = {q: _numbers(_search(cli, q, offline=True)) for q in AGREE}
    assert server == AGREE
    assert local == AGREE
    assert "offline" not in cli.last_err  # every body is cached: nothing left unanswered


def test_first_fill_leaves_the_index_for_the_next_sync(tuimail_env, mailuser, capsys, monkeypatch):
    """A headless first fill of more than a batch does not index (issue #13: the index must not
    slow the fill); search still finds the rows (it scans what is not indexed); the next sync
    indexes them."""
    monkeypatch.setattr("tuimail.backends.base.FIRST_FILL_INDEX_ROWS", 3)  # (the rule every engine follows)
    _deliver(mailuser)
    cli = Cli(tuimail_env.write_config(mailuser.config_toml()), capsys)
    cli("sync")
    with Store(paths.account_store_path("test")) as st:
        assert unindexed(st) == len(MESSAGES)
    offline = _numbers(_search(cli, "~s apple", offline=True))
    assert offline == {1, 8}  # apple pie, Apple Caps
    cli("sync")
    with Store(paths.account_store_path("test")) as st:
        assert unindexed(st) == 0
    assert _numbers(_search(cli, "~s apple", offline=True)) == offline


def test_store_answer_merges_with_server_for_uncached_bodies(tuimail_env, mailuser, capsys):
    """Half the bodies cached: the store answers those, the server the rest, one answer."""
    _deliver(mailuser)
    cli = Cli(tuimail_env.write_config(mailuser.config_toml()), capsys)
    cli("sync")
    for uid in (1, 2, 3, 4):
        cli("read", "INBOX", str(uid))
    with Store(paths.account_store_path("test")) as st:
        res = evaluate(st, parse("~b apple"))
        assert len(res.hits) == 1 and res.unknown_count == 4  # 2 from the store; 5-8 undecided
    for q, want in AGREE.items():
        assert _numbers(_search(cli, "--folder", "INBOX", q)) == want, q


def test_cross_folder(tuimail_env, mailuser, capsys):
    mailuser.create_folder("Archive")
    _deliver(mailuser)
    _deliver(mailuser, "Archive", start=101)
    cli = Cli(tuimail_env.write_config(mailuser.config_toml()), capsys)
    cli("sync")
    rows = _search(cli, "~s banana")
    assert {(r["folder"], r["subject"]) for r in rows} == {("INBOX", "banana split"), ("Archive", "banana split")}
    rows = _search(cli, "~b apple")  # bodies from the server, in both folders
    assert _numbers(rows) == {2, 8, 102, 108}
    assert {r["folder"] for r in rows} == {"INBOX", "Archive"}
    assert [r["date"] for r in rows] == sorted((r["date"] for r in rows), reverse=True)
    assert _numbers(_search(cli, "--folder", "Archive", "~b apple")) == {102, 108}
    # the same JSON as `list` (plus the folder)
    listed = {r["id"]: r for r in cli.json("list", "Archive")}
    for r in _search(cli, "--folder", "Archive", "~A"):
        assert {k: v for k, v in r.items() if k != "folder"} == listed[r["id"]]


@pytest.mark.parametrize("text", [
    "x\r\nA1 STORE 1:* +FLAGS (\\Deleted)",  # a command injection if CR/LF went inline
    "line\nA2 LOGOUT",
    "tab\there",
])
def test_cr_lf_in_search_strings_go_as_literals(tuimail_env, mailuser, capsys, text):
    _deliver(mailuser)
    cli = Cli(tuimail_env.write_config(mailuser.config_toml()), capsys)
    cli("sync")
    pattern = '~b "' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'
    assert _search(cli, "--folder", "INBOX", pattern) == []
    # nothing was injected: no message got \Deleted, the session went on
    with mailuser.client("INBOX") as c:
        assert not c.search(["DELETED"])
    assert _numbers(_search(cli, "--folder", "INBOX", "~b apple")) == {2, 8}


def test_server_search_sees_the_strings_as_written(tuimail_env, mailuser, capsys):
    """*, %, quotes, backslashes and non-ASCII reach the server as the user typed them (a
    literal with CHARSET UTF-8 for non-ASCII), in subject and body terms."""
    mailuser.deliver("INBOX", msg(1, subject='a "b" \\ c', body="x\r\n"))
    mailuser.deliver("INBOX", msg(2, subject="100% *star*", body="y\r\n"))
    mailuser.deliver("INBOX", msg(3, subject="=?utf-8?q?Gr=C3=BC=C3=9Fe?=", body="Grüße aus Köln\r\n"))
    cli = Cli(tuimail_env.write_config(mailuser.config_toml()), capsys)
    cli("sync")
    assert _numbers(_search(cli, "--folder", "INBOX", "~b köln")) == {3}
    assert _numbers(_search(cli, "--folder", "INBOX", "~h 'Subject: *star*'")) == {2}
    assert _numbers(_search(cli, "--folder", "INBOX", "~h 'Subject: 100%'")) == {2}
    assert _numbers(_search(cli, "--folder", "INBOX", "~s '\"b\" \\\\'")) == {1}
    assert _numbers(_search(cli, "--folder", "INBOX", "~B grüße")) == {3}
    assert _numbers(_search(cli, "--folder", "INBOX", "~b '%'")) == set()


def test_exit_codes(tuimail_env, mailuser, capsys):
    _deliver(mailuser)
    cli = Cli(tuimail_env.write_config(mailuser.config_toml()), capsys)
    cli("sync")
    assert "apple pie" in cli("search", "~s apple")
    cli("search", "~s zebra", expect=1)
    cli("search", "~q x", expect=2)
    assert cli.last_err == "tuimail: pattern: unknown operator ~q at column 1\n"
    cli("search", "(~s a", expect=2)
    assert "missing ) for this (" in cli.last_err and cli.last_err.count("\n") == 1
    cli("--offline", "search", "~s apple")
    cli("search", "--folder", "Nope", "~s apple", expect=2)


def test_index_follows_removed_rows(tuimail_env, mailuser, capsys):
    """A message expunged elsewhere leaves the index with its row (no stale hit, no damage)."""
    _deliver(mailuser)
    cli = Cli(tuimail_env.write_config(mailuser.config_toml()), capsys)
    cli("sync")
    cli("read", "INBOX", "2")
    with mailuser.client("INBOX") as c:
        c.delete_messages([2])
        c.expunge()
    cli("sync")
    with Store(paths.account_store_path("test")) as st:
        assert evaluate(st, parse("~B hello")).hits == []
        st.db.execute("INSERT INTO fts_head(fts_head, rank) VALUES ('integrity-check', 1)")
        st.db.execute("INSERT INTO fts_body(fts_body, rank) VALUES ('integrity-check', 1)")
        assert st.db.execute("SELECT count(*) FROM bodytext").fetchone()[0] == 0
        assert index_headers(st) == 0


def test_the_app_worker_indexes_in_the_gaps_and_searches(tuimail_env, mailuser, monkeypatch):
    """The started service indexes in steps between its looks at requests (a step of a few
    rows here), then IDLEs; its search() merges the store's and the server's answers."""
    import time

    from tuimail.backends.imap import service as service_mod
    from tuimail.config.load import load_config
    from tuimail.store import search as search_mod

    monkeypatch.setattr(service_mod, "INDEX_STEP", 0.0)  # one batch per step
    monkeypatch.setattr(search_mod, "ROWS_PER_TX", 7)
    _deliver(mailuser)
    mailuser.deliver_many("INBOX", ((msg(i, subject=f"filler {i}"), "S") for i in range(200, 260)))
    cfg = load_config(tuimail_env.write_config(mailuser.config_toml()))
    states = []
    svc = service_mod.ImapService(cfg, cfg.account(None), states.append)
    svc.start()
    try:
        deadline = time.monotonic() + 20
        with Store(paths.account_store_path("test")) as st:
            while time.monotonic() < deadline:
                if st.folder("INBOX") is not None and st.message_count(st.folder_id("INBOX")) == 68 \
                        and unindexed(st) == 0:
                    break
                time.sleep(0.05)
            assert unindexed(st) == 0
            fid = st.folder_id("INBOX")
            want = [i for i in st.id_list(fid) if st.row(fid, i).message_id in ("<m2@example.org>",
                                                                              "<m8@example.org>")]
        assert svc.search("INBOX", "~b apple") == want  # (bodies from the server, newest first)
        found = svc.search("inbox", "~s 'filler 25'")  # (INBOX in any case)
        assert len(found) == 10 and found == sorted(found, reverse=True)
    finally:
        svc.stop()


def test_options_after_the_subcommand(tuimail_env, mailuser, capsys):
    _deliver(mailuser)
    cli = Cli(tuimail_env.write_config(mailuser.config_toml()), capsys)
    cli("sync")
    rows = json.loads(cli("search", "~s apple", "--account", "test", "--offline", "--json", "--limit", "1"))
    assert len(rows) == 1 and rows[0]["subject"] in ("apple pie", "Apple Caps")
    cli("search", "~s apple", "--account", "nobody", expect=2)


def test_terms_only_the_server_answers(tuimail_env, mailuser, capsys):
    """~r (arrival), ~l (list headers) and ~h (any header) are not in the store: the server says,
    combined with what the store knows; offline they are named as unanswered."""
    import time
    old = time.time() - 40 * 86400
    mailuser.deliver("INBOX", msg(1, subject="old news"), internal_date=old)
    mailuser.deliver("INBOX", msg(2, subject="list post", extra="List-Id: <dev.lists.example.org>\r\n"))
    mailuser.deliver("INBOX", msg(3, subject="tagged", extra="X-Colour: deep blue\r\n"), flags="S")
    cli = Cli(tuimail_env.write_config(mailuser.config_toml()), capsys)
    cli("sync")
    assert _numbers(_search(cli, "~r <1w")) == {2, 3}
    assert _numbers(_search(cli, "~r >1m")) == {1}
    assert _numbers(_search(cli, "~l")) == {2}
    assert _numbers(_search(cli, "!~l ~U")) == {1}
    assert _numbers(_search(cli, "~h 'X-Colour: blue'")) == {3}
    assert _numbers(_search(cli, "~h X-Colour: | ~s old")) == {1, 3}
    assert _search(cli, "~l", offline=True) == []
    assert "~l" in cli.last_err and "3 messages" in cli.last_err
    assert _numbers(_search(cli, "~l | ~s old", offline=True)) == {1}  # what the store can say
