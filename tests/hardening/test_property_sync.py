"""Randomized two-client property test (issue 5, item 7).

Random sequences of flag, move and expunge operations from tuimail (online: intent + sync;
offline: intent only) and from a second IMAP client, interleaved with syncs and new mail. After
the final sync: store == server by (folder, Message-ID, flags), nothing pending, no duplicate, and
the server equals a model of the README's conflict rules, which means every tuimail action the
server did not overrule is present:

- an intent is recorded relative to what the store showed (adding a flag it already shows is no
  action); flag intents on one message coalesce;
- at sync, pending intents go out in order; for a flag the user changed the user wins (also over
  a change the other client made meanwhile); other flags follow the server;
- an expunge or move by the other client wins over any pending intent on that message (the
  message tuimail knew is gone from its folder: a move gives it a new UID, even a move back).

Each example uses a fresh Dovecot user and fresh XDG dirs (a user costs milliseconds).
`make fuzz` (TUIMAIL_FUZZ=1) runs 1000 random examples instead of 200 derandomized ones.
"""

from __future__ import annotations

import contextlib
import io
import itertools
import os
import shutil
import tempfile
from tests.support.rows import canon
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, note, settings
from hypothesis import strategies as st

from tuimail import paths
from tuimail.cli.main import main
from tuimail.store import Store

from .scenario import duplicates, mid, msg, server_snapshot, store_snapshot

FUZZ = os.environ.get("TUIMAIL_FUZZ") == "1"
FLAGS = ["\\Seen", "\\Flagged", "\\Answered", "$Work"]
FOLDERS = ["INBOX", "Archive"]
INITIAL = {0: ("INBOX", {"\\Seen"}), 1: ("INBOX", set()), 2: ("INBOX", {"\\Seen", "\\Flagged"}),
           3: ("INBOX", {"$Work"}), 4: ("Archive", {"\\Seen"}), 5: ("Archive", set())}
MAX_ID = 9  # appends create ids 6.. (ids past the existing ones are no-ops)
EXAMPLES = {"run": 0}

# --------------------------------------------------------------------------- the model


@dataclass
class Msg:
    folder: str
    flags: set
    inst: int  # a new instance (UID) after every move


@dataclass
class Entry:
    op: str
    mid: int
    inst: int
    add: set = field(default_factory=set)
    remove: set = field(default_factory=set)
    dest: str | None = None


class Model:
    def __init__(self):
        self._inst = itertools.count(1)
        self.S = {m: Msg(f, set(fl), next(self._inst)) for m, (f, fl) in INITIAL.items()}
        self.next_id = max(INITIAL) + 1
        self.journal: list[Entry] = []
        self._sync_local()

    def _sync_local(self):
        self.L = {m: Msg(s.folder, set(s.flags), s.inst) for m, s in self.S.items()}
        self.hidden: set[int] = set()

    def visible(self, m):
        return m in self.L and m not in self.hidden

    # tuimail intents, relative to the local view (Store.set_flags / move / expunge)
    def t_flag(self, m, flag, add) -> bool:
        if not self.visible(m):
            return False
        loc = self.L[m]
        a = {flag} - loc.flags if add else set()
        r = {flag} & loc.flags if not add else set()
        if not a and not r:
            return False
        loc.flags = (loc.flags - r) | a
        prev = next((e for e in reversed(self.journal) if e.mid == m and e.inst == loc.inst and e.op == "flags"), None)
        later = prev is not None and any(e.mid == m and e.op != "flags"
                                         for e in self.journal[self.journal.index(prev) + 1:])
        if prev is not None and not later:
            prev.add, prev.remove = (prev.add - r) | a, (prev.remove - a) | r
            if not prev.add and not prev.remove:
                self.journal.remove(prev)
        else:
            self.journal.append(Entry("flags", m, loc.inst, a, r))
        return True

    def t_move(self, m, dest) -> bool:
        if not self.visible(m) or self.L[m].folder == dest:
            return False
        self.hidden.add(m)
        self.journal.append(Entry("move", m, self.L[m].inst, dest=dest))
        return True

    def t_expunge(self, m) -> bool:
        if not self.visible(m):
            return False
        self.hidden.add(m)
        self.journal.append(Entry("expunge", m, self.L[m].inst))
        return True

    # the other client, straight on the server
    def o_flag(self, m, flag, add) -> bool:
        if m not in self.S:
            return False
        s = self.S[m]
        s.flags = (s.flags | {flag}) if add else (s.flags - {flag})
        return True

    def o_move(self, m, dest) -> bool:
        if m not in self.S or self.S[m].folder == dest:
            return False
        self.S[m].folder, self.S[m].inst = dest, next(self._inst)
        return True

    def o_expunge(self, m) -> bool:
        return self.S.pop(m, None) is not None

    def o_append(self, folder) -> int:
        m = self.next_id
        self.next_id += 1
        self.S[m] = Msg(folder, set(), next(self._inst))
        return m

    def sync(self):
        for e in self.journal:
            s = self.S.get(e.mid)
            if s is None or s.inst != e.inst:
                continue  # moved or expunged by the other client: it wins
            if e.op == "flags":
                s.flags = (s.flags | e.add) - e.remove
            elif e.op == "move":
                s.folder, s.inst = e.dest, next(self._inst)
            else:
                del self.S[e.mid]
        self.journal = []
        self._sync_local()

    def snapshot(self):
        return tuple(sorted((s.folder, mid(m), tuple(sorted(s.flags))) for m, s in self.S.items()))


# --------------------------------------------------------------------------- the real thing


class Real:
    def __init__(self, server, root: Path, monkeypatch):
        self.root = root
        for var, name in (("XDG_CONFIG_HOME", "config"), ("XDG_DATA_HOME", "data"),
                          ("XDG_CACHE_HOME", "cache"), ("XDG_STATE_HOME", "state")):
            (root / name).mkdir()
            monkeypatch.setenv(var, str(root / name))
        self.server = server
        self.user = server.add_user()
        for m, (folder, flags) in INITIAL.items():
            self.user.deliver(folder, msg(m), flags=[f for f in flags if f.startswith("\\")])
        self.config = root / "config.toml"
        self.config.write_text(self.user.config_toml())
        self.config.chmod(0o600)  # it holds a password (else tuimail warns on stderr)
        self.other = self.user.client()
        kw = [m for m, (_, fl) in INITIAL.items() if "$Work" in fl]  # keywords cannot be delivered
        for m in kw:
            self._other_uids(INITIAL[m][0], m)
            self.other.add_flags(self._uids, ["$Work"])
        self.sync()

    def close(self):
        try:
            self.other.logout()
        except Exception:
            self.other.shutdown()
        self.server.remove_user_data(self.user)

    def sync(self):
        out, err = io.StringIO(), io.StringIO()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            code = main(["--config", str(self.config), "sync"])
        assert code == 0, err.getvalue()

    def _other_uids(self, folder, m):
        self.other.select_folder(folder)
        self._uids = self.other.search(["HEADER", "Message-ID", mid(m)])
        return self._uids

    def _local(self, st: Store, m, folder):
        fid = st.folder_id(folder)
        uid = st.find_by_message_id(fid, mid(m))
        assert uid is not None
        return fid, uid

    def t(self, op, m, folder, *args):
        with Store(paths.account_store_path("test")) as st:
            fid, uid = self._local(st, m, folder)
            if op == "flag":
                flag, add = args
                assert st.set_flags(fid, [uid], add=canon([flag] if add else []), remove=canon([] if add else [flag]))
            elif op == "move":
                assert st.move(fid, [uid], args[0])
            else:
                assert st.expunge(fid, [uid])

    def o_flag(self, m, folder, flag, add):
        uids = self._other_uids(folder, m)
        (self.other.add_flags if add else self.other.remove_flags)(uids, [flag])

    def o_move(self, m, folder, dest):
        self.other.move(self._other_uids(folder, m), dest)

    def o_expunge(self, m, folder):
        uids = self._other_uids(folder, m)
        self.other.delete_messages(uids)
        self.other.uid_expunge(uids)

    def o_append(self, m, folder):
        self.other.append(folder, msg(m))


ids = st.integers(0, MAX_ID)
OPS = st.lists(st.one_of(
    st.tuples(st.just("t_flag"), ids, st.sampled_from(FLAGS), st.booleans(), st.booleans()),
    st.tuples(st.just("t_move"), ids, st.sampled_from(FOLDERS), st.booleans()),
    st.tuples(st.just("t_expunge"), ids, st.booleans()),
    st.tuples(st.just("o_flag"), ids, st.sampled_from(FLAGS), st.booleans()),
    st.tuples(st.just("o_move"), ids, st.sampled_from(FOLDERS)),
    st.tuples(st.just("o_expunge"), ids),
    st.tuples(st.just("o_append"), st.sampled_from(FOLDERS)),
    st.just(("sync",)),
), min_size=1, max_size=9)


@pytest.fixture(scope="module")
def workdir():
    d = Path(tempfile.mkdtemp(prefix="tuimail-prop-"))
    yield d
    shutil.rmtree(d, ignore_errors=True)


@settings(max_examples=1000 if FUZZ else 200, deadline=None, derandomize=not FUZZ, database=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(ops=OPS)
def test_property_two_clients_converge(dovecot, monkeypatch, workdir, ops):
    EXAMPLES["run"] += 1
    root = Path(tempfile.mkdtemp(dir=workdir))
    model = Model()
    real = Real(dovecot, root, monkeypatch)
    try:
        for op in ops:
            kind = op[0]
            if kind == "sync":
                real.sync()
                model.sync()
                continue
            if kind == "o_append":
                m = model.o_append(op[1])
                real.o_append(m, op[1])
                continue
            m = op[1]
            if kind.startswith("t_"):
                if not model.visible(m):
                    continue
                folder = model.L[m].folder
                online = op[-1]
                if kind == "t_flag" and model.t_flag(m, op[2], op[3]):
                    real.t("flag", m, folder, op[2], op[3])
                elif kind == "t_move" and model.t_move(m, op[2]):
                    real.t("move", m, folder, op[2])
                elif kind == "t_expunge" and model.t_expunge(m):
                    real.t("expunge", m, folder)
                else:
                    continue
                if online:
                    real.sync()
                    model.sync()
            else:
                if m not in model.S:
                    continue
                folder = model.S[m].folder
                if kind == "o_flag" and model.o_flag(m, op[2], op[3]):
                    real.o_flag(m, folder, op[2], op[3])
                elif kind == "o_move" and model.o_move(m, op[2]):
                    real.o_move(m, folder, op[2])
                elif kind == "o_expunge" and model.o_expunge(m):
                    real.o_expunge(m, folder)
        real.sync()
        model.sync()
        store, pending = store_snapshot(FOLDERS)
        server = server_snapshot(real.user, FOLDERS)
        note(f"server {server}\nstore  {store}\nmodel  {model.snapshot()}")
        assert pending == [], pending
        assert not duplicates(server) and not duplicates(store)
        assert store == server
        assert server == model.snapshot(), "a tuimail action the server did not overrule is missing (or extra)"
    finally:
        real.close()
        shutil.rmtree(root, ignore_errors=True)


def test_property_example_count():
    """Reports the examples run by the property test above (>= 200 in CI)."""
    if EXAMPLES["run"]:
        assert EXAMPLES["run"] >= (1000 if FUZZ else 200)
