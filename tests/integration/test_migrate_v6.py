"""Schema v6 (issue 10.2): a v4 or v5 store with actions waiting migrates to local ids, server ids
as text, canonical flags and the IMAP state as JSON, and its waiting actions then replay on Dovecot.

The old store is built with the MIGRATIONS list up to v4 or v5, filled as that version's sync
filled it (IMAP flags as text, uids, the folders' UIDVALIDITY/UIDNEXT/HIGHESTMODSEQ columns,
thread order keyed by uid) with the server's real uids, and a journal of the user's actions.
"""

from __future__ import annotations

import json
import sqlite3

import pytest

from tuimail import paths
from tuimail.store import Store
from tuimail.store.db import MIGRATIONS, SCHEMA_VERSION, connect

from .helpers import Cli, msg, server_state, store_state

# message i: its IMAP flags on the server, and in the old store
FLAGS = {0: (), 1: ("\\Seen",), 2: ("\\Seen", "\\Answered"), 3: ("\\Flagged", "$Work"), 4: ("\\Seen",), 5: ()}


def _old_store(path, version: int, user) -> dict[int, int]:
    """A v`version` store of INBOX and Archive as that version's sync left it; {i: uid}."""
    for i, flags in FLAGS.items():
        user.append("INBOX", msg(i, body=f"body {i}\r\n"), flags=[f for f in flags if f != "$Work"])
    with user.client("INBOX") as c:
        c.add_flags(c.search(["HEADER", "Message-ID", "<m3@example.org>"]), [b"$Work"])
        fetched = c.fetch(c.search("ALL"), ["FLAGS", "MODSEQ", "RFC822.SIZE", "BODY.PEEK[HEADER.FIELDS (MESSAGE-ID)]"])
        c.unselect_folder()
        info = c.folder_status("INBOX", [b"UIDVALIDITY", b"UIDNEXT", b"HIGHESTMODSEQ"])
        archive = c.folder_status("Archive", [b"UIDVALIDITY", b"UIDNEXT", b"HIGHESTMODSEQ"])
    uids = {}
    for uid, d in fetched.items():
        header = next(v for k, v in d.items() if k.startswith(b"BODY"))
        uids[int(header.split(b"<m")[1].split(b"@")[0])] = uid
    connect(path, MIGRATIONS[:version]).close()
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("INSERT INTO folders(id, name, delimiter, role, uidvalidity, uidnext, highestmodseq, threads_dirty)"
               " VALUES (1, 'INBOX', '.', 'inbox', ?, ?, ?, 0)",
               (info[b"UIDVALIDITY"], info[b"UIDNEXT"], info[b"HIGHESTMODSEQ"]))
    db.execute("INSERT INTO folders(id, name, delimiter, role, uidvalidity, uidnext, highestmodseq, threads_dirty)"
               " VALUES (2, 'Archive', '.', 'archive', ?, ?, ?, 0)",
               (archive[b"UIDVALIDITY"], archive[b"UIDNEXT"], archive[b"HIGHESTMODSEQ"]))
    # the rows as that version's intents left them: the server's flags with the user's on top
    mine = {0: ({"\\Flagged"}, set()), 1: (set(), {"\\Seen"}), 2: ({"$Todo"}, set())}
    for i, uid in uids.items():
        d = fetched[uid]
        add, remove = mine.get(i, (set(), set()))
        flags = " ".join(sorted(({f.decode() for f in d[b"FLAGS"]} - {"\\Recent"} - remove) | add))
        db.execute("INSERT INTO messages(folder_id, uid, modseq, flags, seen, flagged, hidden, date, from_, subject,"
                   " message_id, size) VALUES (1, ?, ?, ?, ?, ?, ?, ?, 'Sender <s@example.org>', ?, ?, ?)",
                   (uid, d[b"MODSEQ"][0], flags, int("\\Seen" in flags), int("\\Flagged" in flags), int(i == 4),
                    1_700_000_000 + i, f"message {i}", f"<m{i}@example.org>", d[b"RFC822.SIZE"]))
    # thread order: 1 and 2 a thread rooted at 1 (uids), the others threads of their own
    for i, uid in uids.items():
        root = uids[1] if i in (1, 2) else uid
        db.execute("INSERT INTO threads(folder_id, uid, pos, sub, depth, root, prefix) VALUES (1, ?, ?, ?, ?, ?, ?)",
                   (uid, (9 << 32) | root, int(i == 2), int(i == 2), root, "└─>" if i == 2 else ""))
    # the user's actions, not yet sent: +flagged on 0, -seen on 1 (an IMAP flag), +$Todo on 2
    # (a keyword), 4 moved to Archive (hidden), and 5 +flagged waiting to be re-matched after a
    # UIDVALIDITY reset (uid -99: found again by its Message-ID)
    cols = "created, folder_id, uid, message_id, op, add_flags, remove_flags, dest"
    for uid, mid, op, add, remove, dest in [
            (uids[0], "<m0@example.org>", "flags", "\\Flagged", "", None),
            (uids[1], "<m1@example.org>", "flags", "", "\\Seen", None),
            (uids[2], "<m2@example.org>", "flags", "$Todo", "", None),
            (uids[4], "<m4@example.org>", "move", "", "", "Archive"),
            (-99, "<m5@example.org>", "flags", "\\Flagged", "", None)]:
        db.execute(f"INSERT INTO journal({cols}) VALUES (1, 1, ?, ?, ?, ?, ?, ?)", (uid, mid, op, add, remove, dest))
    db.close()
    return uids


@pytest.mark.parametrize("version", [4, 5])
def test_a_store_with_waiting_actions_migrates_and_they_replay(tuimail_env, mailuser, capsys, version):
    path = paths.account_store_path("test")
    paths.ensure_private_dir(path.parent)
    uids = _old_store(path, version, mailuser)
    with Store(path) as st:
        assert st.db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
        ids = st.ids_of(1, [str(u) for u in uids.values()])
        by_i = {i: ids[str(u)] for i, u in uids.items()}
        # local ids follow the old uid order; the server ids are the uids as text
        assert [by_i[i] for i in sorted(by_i, key=uids.get)] == sorted(by_i.values())
        rows = st.rows(1, list(by_i.values()))
        r = {i: rows[by_i[i]] for i in by_i}
        assert r[0].flags == {"flagged"} and r[0].keywords == "" and r[1].flags == frozenset()
        assert r[2].flags == {"seen", "answered"} and r[2].answered and r[2].keywords == "$Todo"
        assert r[3].flags == {"flagged"} and r[3].keywords == "$Work" and r[3].sid == str(uids[3])
        assert st.id_list(1) == [by_i[i] for i in (5, 3, 2, 1, 0)]  # 4 is hidden (its move waits)
        assert st.counts(1) == (5, 4)
        # thread order: the same threads, keyed by local ids
        info = {i: d_root for i in by_i for (x, *d_root) in st.thread_info(1) if x == by_i[i]}
        assert info[2] == [1, by_i[1]] and info[1] == [0, by_i[1]] and info[3] == [0, by_i[3]]
        assert rows[by_i[2]].thread_prefix == "└─>"
        # the folders' IMAP state, as JSON
        state = json.loads(st.folder("INBOX").state)
        assert state["uidvalidity"] > 0 and state["uidnext"] == max(uids.values()) + 1 and state["highestmodseq"]
        assert {"uidvalidity", "uidnext", "highestmodseq"}.isdisjoint(
            r[1] for r in st.db.execute("PRAGMA table_info(folders)"))
        # the journal: local ids, server ids, canonical flag names (keywords as they were)
        pend = [(e.msg_id, e.sid, e.op, e.add_flags, e.remove_flags, e.dest) for e in st.pending()]
        assert pend == [(by_i[0], str(uids[0]), "flags", ("flagged",), (), None),
                        (by_i[1], str(uids[1]), "flags", (), ("seen",), None),
                        (by_i[2], str(uids[2]), "flags", ("$Todo",), (), None),
                        (by_i[4], str(uids[4]), "move", (), (), "Archive"),
                        (-99, None, "flags", ("flagged",), (), None)]
        assert [e.state for e in st.pending()] == ["pending"] * 5
    cli = Cli(tuimail_env.write_config(mailuser.config_toml()), capsys)
    out = cli("sync")
    assert "5 pending actions sent" in out, out
    server = server_state(mailuser)
    assert server["<m0@example.org>"] == {"\\Flagged"}
    assert server["<m1@example.org>"] == set()
    assert server["<m2@example.org>"] == {"\\Seen", "\\Answered", "$Todo"}
    assert server["<m5@example.org>"] == {"\\Flagged"}, "the orphan was re-matched by its Message-ID"
    assert "<m4@example.org>" not in server and "<m4@example.org>" in server_state(mailuser, "Archive")
    assert store_state() == server and store_state(folder="Archive") == server_state(mailuser, "Archive")
    with Store(path) as st:
        assert st.pending() == [] and st.actions() == []
        # the rows kept their local ids through the resync
        assert st.ids_of(1, [str(uids[i]) for i in (0, 1, 2, 3, 5)]) == {
            str(uids[i]): by_i[i] for i in (0, 1, 2, 3, 5)}
