"""`tuimail repair` on a POP3 account's store (Dovecot's POP3): the downloaded mail exists only in
the store (delete mode) and the UIDL ledger keeps keep mode from downloading everything again, so
a repair keeps both: nothing is lost, nothing is downloaded twice."""

from __future__ import annotations

import random
import sqlite3

from tuimail import paths

from .helpers import Cli
from .test_pop3_account import fill, on_server, pop3_toml, subjects


def _smash_leaf(path, table: str) -> int:
    """Overwrite one leaf page of `table` (in the middle) with noise; how many leaves it has."""
    db = sqlite3.connect(path)
    try:
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        size = db.execute("PRAGMA page_size").fetchone()[0]
        leaves = [p for (p,) in db.execute("SELECT pageno FROM dbstat WHERE name = ? AND pagetype = 'leaf'"
                                           " ORDER BY pageno", (table,))]
    finally:
        db.close()
    assert len(leaves) >= 3, leaves
    page = leaves[len(leaves) // 2]
    with open(path, "r+b") as fh:
        fh.seek((page - 1) * size)
        fh.write(random.Random(page).randbytes(size))
    return len(leaves)


def test_repair_keeps_delete_mode_mail_flags_folders_and_the_ledger(tuimail_env, mailuser, capsys):
    fill(mailuser, 6)
    cli = Cli(tuimail_env.write_config(pop3_toml(mailuser, mode="delete", folders=["Archive"])), capsys)
    assert "6 new" in cli("sync")
    assert on_server(mailuser) == 0  # the store holds the only copy
    rows = {r["subject"]: r for r in cli.json("list", "INBOX", "--limit", "0")}
    cli("flag", "INBOX", str(rows["message 2"]["uid"]), "+flagged", "+seen")
    from tuimail.store import Store
    with Store(paths.account_store_path("test")) as st:  # a local move (what `m` does in the app)
        st.move(st.folder_id("INBOX"), [rows["message 5"]["id"]], "Archive")
    before = {f["name"]: (f["total"], f["unread"]) for f in cli.json("folders")}

    out = cli("repair", "--force")
    assert "store rebuilt" in out and "6 downloaded message(s) and the UIDL ledger kept (6 stored copies" in out
    assert {f["name"]: (f["total"], f["unread"]) for f in cli.json("folders")} == before
    assert subjects(cli, "Archive") == ["message 5"]
    assert subjects(cli) == [f"message {i}" for i in (1, 2, 3, 4, 6)]
    two = next(r for r in cli.json("list", "INBOX") if r["subject"] == "message 2")
    assert cli("flag", "INBOX", str(two["uid"])).split() == ["seen", "flagged"]
    assert "body of 2" in cli("--offline", "read", "INBOX", str(two["uid"]))
    # the ledger survived: nothing new, nothing downloaded again; new mail still arrives
    assert "0 new" in cli("sync")
    fill(mailuser, 1, start=7)
    assert "1 new" in cli("sync")
    assert len(cli.json("list", "INBOX", "--limit", "0")) == 6


def test_repair_of_a_damaged_keep_mode_store_downloads_nothing_twice(tuimail_env, mailuser, capsys):
    fill(mailuser, 60)
    cli = Cli(tuimail_env.write_config(pop3_toml(mailuser)), capsys)
    assert "60 new" in cli("sync")
    store = paths.account_store_path("test")
    _smash_leaf(store, "pop3_raw")  # some stored copies are gone

    out = cli("repair")
    assert "store rebuilt" in out and "bodies to fetch again" in out and "unreadable" in out
    assert "some downloaded mail could not be read: the damaged file keeps it" in out
    # every message is still listed once; the lost copies come again with the next sync, by
    # UIDL (RETR), without a second row
    assert subjects(cli) == sorted(f"message {i}" for i in range(1, 61))
    out = cli("sync")
    assert "0 new" in out
    rows = cli.json("list", "INBOX", "--limit", "0")
    assert len(rows) == 60
    for r in rows:
        n = r["subject"].split()[1]
        assert f"body of {n}" in cli("--offline", "read", "INBOX", str(r["uid"]))
