"""A damaged store (issue 9.6): one line, exit 4, and `tuimail repair` keeps the user's actions.

The store file is damaged the way a disk or a crash damages it: random bytes over pages in the
middle (every page of the message rows and their indexes in the middle third of the file) and
over the 100-byte header. The journal's own pages are left alone, as is SQLite's schema page
past its header: what `repair` can salvage, it must.
"""

from __future__ import annotations

import os
import random
import sqlite3

from tests.integration.helpers import msg, server_state
from tuimail import paths
from tuimail.store import Store

from tests.support.rows import id_of

from .conftest import one_line_error, run_tuimail

N = 600  # (enough message pages in the middle third whatever tables the migrations add)


def _setup(mailuser, tuimail_env, capsys):
    from tests.integration.helpers import Cli
    mailuser.create_folder("Archive")
    mailuser.deliver_many("INBOX", [(msg(i), "") for i in range(1, N + 1)])
    cfg = tuimail_env.write_config(mailuser.config_toml())
    cli = Cli(cfg, capsys)
    cli("sync")
    cli("read", "INBOX", "3")  # cached body: `read` of it needs no server
    # the user's actions, offline: flags on three messages, a move of a fourth
    cli("flag", "INBOX", "1", "+flagged")
    cli("flag", "INBOX", "2", "+seen", "+$Work")
    cli("flag", "INBOX", "5", "+seen")
    path = paths.account_store_path("test")
    with Store(path) as st:
        fid = st.folder_id("INBOX")
        st.move(fid, [id_of(st, fid, 7)], "Archive")
        assert len(st.pending()) == 4
    return cfg, cli, path


def _pages(path, names) -> list[int]:
    db = sqlite3.connect(path)
    try:
        return [p for (p,) in db.execute(f"SELECT pageno FROM dbstat WHERE name IN ({','.join('?' * len(names))})",
                                         names)]
    finally:
        db.close()


def damage(path, header: bool = True, seed: int = 9) -> int:
    """Random bytes over the message pages in the middle of the file (and the header)."""
    db = sqlite3.connect(path)
    db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    page_size = db.execute("PRAGMA page_size").fetchone()[0]
    db.close()
    keep = set(_pages(path, ["journal", "folders", "sqlite_schema", "sqlite_sequence"]))
    victims = _pages(path, ["messages", "msg_sid", "msg_date", "msg_unseen"])
    total = os.path.getsize(path) // page_size
    # (v6: the rows are a rowid table with a few indexes; each of them is hit)
    victims = [p for p in victims if total // 6 <= p <= 5 * total // 6 and p not in keep and p > 1]
    assert len(victims) >= 4
    rnd = random.Random(seed)
    with open(path, "r+b") as fh:
        for p in victims:
            fh.seek((p - 1) * page_size)
            fh.write(rnd.randbytes(page_size))
        if header:
            fh.seek(0)
            fh.write(rnd.randbytes(100))
    return len(victims)


def test_damaged_store_every_command_one_line_exit_4_then_repair_keeps_actions(mailuser, tuimail_env, capsys):
    cfg, cli, path = _setup(mailuser, tuimail_env, capsys)
    damage(path, header=False)
    for args in (("folders",), ("list", "INBOX"), ("read", "INBOX", "3"), ("flag", "INBOX", "9", "+seen"),
                 ("sync",), ("list", "INBOX", "--json")):
        err = one_line_error(run_tuimail(cfg, *args), code=4)
        assert "damaged" in err and "tuimail repair" in err and str(path) in err, (args, err)
        assert "move the file away" not in err
    damage(path, header=True, seed=10)
    for args in (("folders",), ("list", "INBOX"), ("sync",)):
        err = one_line_error(run_tuimail(cfg, *args), code=4)
        assert "damaged" in err and "tuimail repair" in err, (args, err)

    run = run_tuimail(cfg, "repair")
    assert run.code == 0, run.err
    assert run.out.count("\n") == 1 and "4 pending action(s) kept" in run.out and "lost" not in run.out, run.out
    moved = [p for p in path.parent.iterdir() if p.name.startswith(path.name + ".damaged-")]
    assert len(moved) == 1 and str(moved[0]) in run.out  # moved aside, never deleted
    with Store(path) as st:
        pend = st.pending()
        assert sorted((e.folder, e.sid, e.op) for e in pend) == [
            ("INBOX", "1", "flags"), ("INBOX", "2", "flags"), ("INBOX", "5", "flags"), ("INBOX", "7", "move")]
        assert {e.message_id for e in pend} == {"<m1@example.org>", "<m2@example.org>", "<m5@example.org>",
                                                "<m7@example.org>"}

    run = run_tuimail(cfg, "sync")
    assert run.code == 0, run.err
    state = server_state(mailuser)
    assert state["<m1@example.org>"] == {"\\Flagged"}
    assert state["<m2@example.org>"] == {"\\Seen", "$Work"}
    assert state["<m5@example.org>"] == {"\\Seen"}
    assert "<m7@example.org>" not in state and "<m7@example.org>" in server_state(mailuser, "Archive")
    assert len(state) == N - 1
    # the refilled store shows it all, and nothing is left pending
    assert len(cli.json("list", "INBOX", "--limit", "0")) == N - 1
    with Store(path) as st:
        assert st.pending_count() == 0


def test_repair_of_a_healthy_store_changes_nothing(mailuser, tuimail_env, capsys):
    cfg, cli, path = _setup(mailuser, tuimail_env, capsys)
    run = run_tuimail(cfg, "repair", "--account", "test")
    assert run.code == 0 and "healthy" in run.out, run.out + run.err
    assert [p.name for p in path.parent.iterdir() if ".damaged-" in p.name] == []
    with Store(path) as st:
        assert st.pending_count() == 4


def test_repair_with_a_damaged_journal_page_keeps_the_rest(mailuser, tuimail_env, capsys):
    """Many actions over several journal pages; one of them overwritten: the others are kept and
    the summary says part of the journal was unreadable."""
    mailuser.deliver_many("INBOX", [(msg(i, body="x" * 10), "") for i in range(1, 301)])
    cfg = tuimail_env.write_config(mailuser.config_toml())
    from tests.integration.helpers import Cli
    Cli(cfg, capsys)("sync")
    path = paths.account_store_path("test")
    with Store(path) as st:
        fid = st.folder_id("INBOX")
        for uid in range(1, 301):
            st.set_flags(fid, [uid], add=[f"$k{uid:03d}" + "x" * 40])
    db = sqlite3.connect(path)
    db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    page_size = db.execute("PRAGMA page_size").fetchone()[0]
    leaves = [p for (p,) in db.execute("SELECT pageno FROM dbstat WHERE name = 'journal' AND pagetype = 'leaf'"
                                       " ORDER BY pageno")]
    db.close()
    assert len(leaves) >= 3
    with open(path, "r+b") as fh:
        fh.seek((leaves[len(leaves) // 2] - 1) * page_size)
        fh.write(random.Random(3).randbytes(page_size))
    run = run_tuimail(cfg, "repair")
    assert run.code == 0, run.err
    assert "unreadable" in run.out, run.out
    with Store(path) as st:
        kept = st.pending_count()
    assert 300 - 150 < kept < 300, run.out
    assert f"{kept} pending action(s) kept" in run.out


def test_sync_service_reports_a_damaged_store_as_one_line(mailuser, tuimail_env, capsys):
    """The TUI's sync thread: a state event naming the file and `tuimail repair`, no traceback."""
    import threading

    from tuimail.config.load import load_config
    from tuimail.core.events import SyncState
    from tuimail.backends.imap.service import ImapService

    cfg, cli, path = _setup(mailuser, tuimail_env, capsys)
    damage(path, header=False)
    config = load_config(cfg)
    events, got = [], threading.Event()

    def sink(e):
        events.append(e)
        if isinstance(e, SyncState) and e.state == "error":
            got.set()

    svc = ImapService(config, config.account("test"), sink)
    svc.start()
    try:
        assert got.wait(30), events
    finally:
        svc.stop()
    err = next(e for e in events if isinstance(e, SyncState) and e.state == "error").error
    assert "damaged" in err and "tuimail repair" in err and str(path) in err and "\n" not in err
    assert "internal error" not in err


def test_repair_refuses_while_another_tuimail_has_the_store_open(mailuser, tuimail_env, capsys):
    import subprocess
    import sys

    from .conftest import ROOT

    cfg, cli, path = _setup(mailuser, tuimail_env, capsys)
    holder = subprocess.Popen([sys.executable, "-c", "import sys, time; from tuimail.store import Store;"
                               " s = Store(sys.argv[1]); s.pending_count(); print('ready', flush=True);"
                               " time.sleep(60)", str(path)], stdout=subprocess.PIPE, cwd=ROOT, text=True)
    try:
        assert holder.stdout.readline().strip() == "ready"
        err = one_line_error(run_tuimail(cfg, "repair", "--force"), code=4)
        assert "open in another tuimail" in err
    finally:
        holder.kill()
        holder.wait()
    assert [p.name for p in path.parent.iterdir() if ".damaged-" in p.name] == []
    run = run_tuimail(cfg, "repair", "--force")  # closed now: rebuilt, the actions kept
    assert run.code == 0 and "4 pending action(s) kept" in run.out, run.out + run.err


def test_damaged_body_cache_is_named_and_repair_moves_it_aside(mailuser, tuimail_env, capsys):
    cfg, _cli, path = _setup(mailuser, tuimail_env, capsys)
    cache = paths.account_cache_path("test")
    db = sqlite3.connect(cache)
    db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    db.close()
    with open(cache, "r+b") as fh:
        fh.write(random.Random(1).randbytes(100))
    err = one_line_error(run_tuimail(cfg, "read", "INBOX", "3"), code=4)
    assert str(cache) in err and "tuimail repair" in err
    run = run_tuimail(cfg, "repair")
    assert run.code == 0 and "store is healthy" in run.out and "damaged body cache moved to" in run.out, run.out
    assert any(p.name.startswith(cache.name + ".damaged-") for p in cache.parent.iterdir())
    run = run_tuimail(cfg, "read", "INBOX", "3")  # fetched again
    assert run.code == 0 and "Subject: message 3" in run.out, run.err
    with Store(path) as st:
        assert st.pending_count() == 4  # the store was left alone
