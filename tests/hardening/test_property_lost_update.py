"""Randomized lost-update test (issue 9): the user's last word is on the server.

The user (tuimail: intents written into the store from the test thread, as the TUI's writer or a
`tuimail flag` process does) and a second IMAP client (the user's phone, straight to Dovecot) act
on the same few messages, while `tuimail sync` runs on a thread through the FaultProxy, which
holds the nth `UID STORE` or `UID MOVE` of that sync (the command itself, or the server's answer
to it) while more actions happen. After a final clean sync:

- every (message, flag) whose last action was the user's has the user's value on the server
  (no lost update); where the phone acted after the user's last action, either value is right
  (it depends on whether the user's STORE went out before or after, README "Conflicts"); where
  only the phone acted, the phone's value; untouched flags keep their initial value;
- every message is in the folder the user last moved it to (the phone never moves);
- the store equals the server by (folder, Message-ID, flags), nothing is pending, no duplicate.

An action counts as the user's intent only if it changed what the store showed (adding a flag the
row already shows is no action, as in the UI). Each example uses a fresh Dovecot user and fresh
XDG dirs; one Dovecot and one proxy serve all examples. `make fuzz` (TUIMAIL_FUZZ=1) runs 2000.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from tests.support.rows import canon
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, note, settings
from hypothesis import strategies as st

from tests.support.proxy import FaultProxy
from tuimail import paths
from tuimail.cli.main import main
from tuimail.store import Store

from .scenario import duplicates, mid, msg, server_snapshot, store_snapshot
from .test_journal_race import BackgroundSync

FUZZ = os.environ.get("TUIMAIL_FUZZ") == "1"
EXAMPLES = 2000 if FUZZ else 300
FLAGS = ["\\Seen", "\\Flagged", "\\Answered"]
FOLDERS = ["INBOX", "Archive"]
INITIAL = {0: set(), 1: {"\\Seen"}, 2: {"\\Seen", "\\Flagged"}}
RUN = {"examples": 0, "seconds": 0.0, "holds": 0}

msgs = st.sampled_from(sorted(INITIAL))
user_op = st.one_of(st.tuples(st.just("t_flag"), msgs, st.sampled_from(FLAGS), st.booleans()),
                    st.tuples(st.just("t_move"), msgs))
other_op = st.tuples(st.just("o_flag"), msgs, st.sampled_from(FLAGS), st.booleans())
action = st.one_of(user_op, user_op, other_op)
# a sync: the user acts first (so that it has something to send), then the sync runs and its nth
# STORE or MOVE is held while more actions happen
sync_op = st.tuples(st.just("sync"), st.lists(user_op, min_size=1, max_size=3), st.sampled_from([1, 1, 1, 2, 3]),
                    st.integers(0, 1), st.booleans(), st.lists(action, min_size=1, max_size=4))
OPS = st.lists(st.one_of(action, sync_op, sync_op), min_size=1, max_size=6 if FUZZ else 4)


class World:
    """The real thing (store, server, phone) and what the test expects of it."""

    def __init__(self, server, proxy: FaultProxy, root: Path, monkeypatch):
        for var, name in (("XDG_CONFIG_HOME", "config"), ("XDG_DATA_HOME", "data"),
                          ("XDG_CACHE_HOME", "cache"), ("XDG_STATE_HOME", "state")):
            (root / name).mkdir()
            monkeypatch.setenv(var, str(root / name))
        self.server, self.proxy = server, proxy
        self.user = server.add_user()
        self.user.deliver_many("INBOX", [(msg(m), sorted(fl)) for m, fl in INITIAL.items()])
        self.user.folder_path("Archive")
        self.direct = root / "direct.toml"
        self.direct.write_text(self.user.config_toml())
        self.proxied = root / "proxied.toml"
        self.proxied.write_text(self.user.config_toml(port=proxy.port))
        self._phone = None  # logged in at its first action
        # expectations: per (m, flag) the actions in order, ("u"|"o", value); per m its folder
        self.events: dict[tuple[int, str], list[tuple[str, bool]]] = {}
        self.folder = {m: "INBOX" for m in INITIAL}
        self.sync(self.direct)

    @property
    def phone(self):
        if self._phone is None:
            self._phone = self.user.client()
        return self._phone

    def close(self) -> None:
        if self._phone is not None:
            try:
                self._phone.logout()
            except Exception:  # noqa: BLE001
                self._phone.shutdown()
        self.server.remove_user_data(self.user)

    @staticmethod
    def sync(config) -> None:
        assert main(["--config", str(config), "sync"]) == 0

    # -- the user, through the store ----------------------------------------------------

    def _visible(self, st: Store, m: int):
        return st.db.execute("SELECT m.folder_id, m.id, f.name FROM messages m JOIN folders f ON f.id = m.folder_id"
                             " WHERE m.message_id = ? AND m.hidden = 0", (mid(m),)).fetchone()

    def act(self, op) -> None:
        kind, m = op[0], op[1]
        if kind == "o_flag":
            return self.phone_flag(m, op[2], op[3])
        with Store(paths.account_store_path("test")) as st:
            row = self._visible(st, m)
            if row is None:
                return  # hidden while its move is pending: not on the user's screen
            fid, uid, folder = row
            if kind == "t_flag":
                flag, add = op[2], op[3]
                if st.set_flags(fid, [uid], add=canon([flag] if add else []), remove=canon([] if add else [flag])):
                    self.events.setdefault((m, flag), []).append(("u", add))
            else:
                dest = "Archive" if folder == "INBOX" else "INBOX"
                assert st.move(fid, [uid], dest) == [uid]
                self.folder[m] = dest

    # -- the phone, straight to the server -------------------------------------------------

    def phone_flag(self, m: int, flag: str, add: bool) -> None:
        for folder in FOLDERS:
            self.phone.select_folder(folder)
            uids = self.phone.search(["HEADER", "Message-ID", mid(m)])
            if uids:
                (self.phone.add_flags if add else self.phone.remove_flags)(uids, [flag])
                self.events.setdefault((m, flag), []).append(("o", add))
                return

    # -- a sync with a held command ----------------------------------------------------------

    def held_sync(self, nth: int, which: int, forward: bool, during) -> None:
        """Hold the nth (wrapped to what is pending) of the commands the journal will send: STOREs
        for flags (and expunges), MOVEs; `which` picks one kind when both are pending."""
        with Store(paths.account_store_path("test")) as st:
            ops = [e.op for e in st.pending()]
        kinds = [(p, n) for p, n in ((b" STORE ", ops.count("flags")), (b" MOVE ", ops.count("move"))) if n]
        pattern, n = kinds[which % len(kinds)] if kinds else (b" STORE ", 1)
        held = self.proxy.stall_on_client(pattern, nth=1 + (nth - 1) % n, forward=forward)
        bg = BackgroundSync(self.proxied)
        try:
            while not held.wait(0.005) and bg.thread.is_alive():
                pass
            if held.is_set():
                RUN["holds"] += 1
            for op in during:  # while the command is held (or after the sync, if it had none)
                self.act(op)
        finally:
            self.proxy.resume()
            self.proxy.clear_rules()
        assert bg.join() == 0

    # -- what must hold ------------------------------------------------------------------------

    def acceptable(self, m: int, flag: str) -> set[bool]:
        ev = self.events.get((m, flag), [])
        if not ev:
            return {flag in INITIAL[m]}
        users = [v for who, v in ev if who == "u"]
        if ev[-1][0] == "u":
            return {ev[-1][1]}  # the user acted last: their value, whatever the timing
        return {ev[-1][1], users[-1]} if users else {ev[-1][1]}

    def check(self) -> None:
        store, pending = store_snapshot(FOLDERS)
        server = server_snapshot(self.user, FOLDERS)
        note(f"server {server}\nstore  {store}\nevents {self.events}\nfolders {self.folder}")
        assert pending == [], pending
        assert not duplicates(server) and not duplicates(store)
        assert store == server
        where = {m_: (folder, set(flags)) for folder, m_, flags in server}
        for m in INITIAL:
            assert mid(m) in where, f"message {m} is gone"
            folder, flags = where[mid(m)]
            assert folder == self.folder[m], f"message {m} is in {folder}, the user moved it to {self.folder[m]}"
            for flag in FLAGS:
                ok = self.acceptable(m, flag)
                assert (flag in flags) in ok, (f"message {m}: {flag} is {'set' if flag in flags else 'unset'};"
                                               f" the actions on it were {self.events.get((m, flag))}")


@pytest.fixture(scope="module")
def workdir():
    d = Path(tempfile.mkdtemp(prefix="tuimail-lost-update-"))
    yield d
    shutil.rmtree(d, ignore_errors=True)


@pytest.fixture(scope="module")
def shared_proxy(dovecot):
    with FaultProxy(dovecot.imap_port) as proxy:
        yield proxy


@settings(max_examples=EXAMPLES, deadline=None, derandomize=not FUZZ, database=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(ops=OPS)
def test_property_no_lost_update(dovecot, shared_proxy, monkeypatch, workdir, ops):
    t0 = time.monotonic()
    RUN["examples"] += 1
    root = Path(tempfile.mkdtemp(dir=workdir))
    world = World(dovecot, shared_proxy, root, monkeypatch)
    try:
        for op in ops:
            if op[0] == "sync":
                for pre in op[1]:
                    world.act(pre)
                world.held_sync(*op[2:])
            else:
                world.act(op)
        world.sync(world.direct)
        world.check()
    finally:
        world.close()
        shutil.rmtree(root, ignore_errors=True)
        RUN["seconds"] += time.monotonic() - t0


def test_property_no_lost_update_ran_enough():
    """The randomized test above ran >= 300 examples (2000 under make fuzz), and most of them
    held a command while the user or the phone acted."""
    if RUN["examples"]:
        print(f"\nlost-update property: {RUN['examples']} examples, {RUN['holds']} held commands,"
              f" {RUN['seconds']:.1f} s")
        assert RUN["examples"] >= EXAMPLES
        assert RUN["holds"] >= EXAMPLES // 2
