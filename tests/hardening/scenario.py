"""An isync-style scenario runner: stop a sync at every step and check the resumed run.

A `Scenario` builds a server state (`setup`), optionally syncs once cleanly, then makes changes on
both sides (`prepare`: another client's changes on the server, the user's offline intents in the
store) and records the user's intents. The sync under test then runs through a FaultProxy:

- `Runner.reference(s)` runs it uninterrupted and returns the final state and the number of
  server lines the proxy forwarded during that sync (its steps);
- `Runner.cut(s, k)` runs the same steps on a fresh user, cuts the connection after the k-th
  server line, resumes with one clean sync, and returns the final state;
- `Runner.kill(s, when)` runs `tuimail sync` as a subprocess and SIGKILLs it when the proxy has
  forwarded `when` lines (or after `when` seconds for a float), then resumes.

A state is the multiset of (folder, Message-ID, flags) on the server and in the store (moves
renumber UIDs, so UIDs are not compared), plus the journal left over.
"""

from __future__ import annotations

import contextlib
import io
import os
import signal
import subprocess
import sys
import tempfile
import time
from tests.support.rows import canon, imap_flags
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from tuimail import paths
from tuimail.cli.main import main
from tuimail.store import Store
from tests.support.dovecot import DovecotServer, MailUser
from tests.support.proxy import FaultProxy

ROOT = Path(__file__).resolve().parents[2]
IGNORED_FLAGS = {"\\Recent"}

Snapshot = tuple[tuple[str, str, tuple[str, ...]], ...]


@dataclass
class Intent:
    """One user action taken offline, by Message-ID (UIDs change under UIDVALIDITY and moves)."""

    op: str  # flags | move | expunge
    folder: str
    message_id: str
    add: tuple[str, ...] = ()
    remove: tuple[str, ...] = ()
    dest: str | None = None
    overruled: bool = False  # another client's expunge/move wins over it (README, conflicts)


@dataclass
class Ctx:
    """What `prepare` gets: the server user, and user intents applied to the local store."""

    user: MailUser
    intents: list[Intent] = field(default_factory=list)

    def other(self, folder: str = "INBOX"):
        """A second IMAP client (the user's phone, say), folder selected."""
        return self.user.client(select=folder)

    def _uid(self, st: Store, folder: str, mid: str) -> tuple[int, int]:
        fid = st.folder_id(folder)
        uid = st.find_by_message_id(fid, mid)
        assert uid is not None, f"{mid} not in the local {folder}"
        return fid, uid

    def flag(self, folder: str, mid: str, add=(), remove=(), overruled: bool = False) -> None:
        with Store(paths.account_store_path("test")) as st:
            fid, uid = self._uid(st, folder, mid)
            st.set_flags(fid, [uid], add=canon(add), remove=canon(remove))
        self.intents.append(Intent("flags", folder, mid, tuple(add), tuple(remove), overruled=overruled))

    def move(self, folder: str, mid: str, dest: str) -> None:
        with Store(paths.account_store_path("test")) as st:
            fid, uid = self._uid(st, folder, mid)
            assert st.move(fid, [uid], dest)
        self.intents.append(Intent("move", folder, mid, dest=dest))

    def expunge(self, folder: str, mid: str) -> None:
        with Store(paths.account_store_path("test")) as st:
            fid, uid = self._uid(st, folder, mid)
            assert st.expunge(fid, [uid])
        self.intents.append(Intent("expunge", folder, mid))


@dataclass
class Scenario:
    name: str
    setup: Callable[[MailUser], None]
    prepare: Callable[[Ctx], None] = lambda ctx: None
    folders: tuple[str, ...] = ("INBOX", "Archive", "Trash")
    initial_sync: bool = True
    sync_mode: str = "auto"


@dataclass
class Result:
    server: Snapshot
    store: Snapshot
    pending: list
    intents: list[Intent]
    lines: int = 0  # server lines forwarded during the sync under test
    first_code: int = 0  # exit code of the sync under test

    def summary(self) -> str:
        return f"server={len(self.server)} store={len(self.store)} pending={len(self.pending)}"


def msg(i: int, subject: str | None = None, folder_tag: str = "") -> bytes:
    subject = subject if subject is not None else f"message {i}"
    return (f"From: Sender {i} <s{i}@example.org>\r\nTo: me@example.org\r\nSubject: {subject}\r\n"
            f"Date: Mon, 01 Jan 2024 10:{i // 60 % 60:02d}:{i % 60:02d} +0000\r\n"
            f"Message-ID: <sc{i}{folder_tag}@example.org>\r\nMIME-Version: 1.0\r\n"
            f"Content-Type: text/plain; charset=utf-8\r\n\r\nbody {i}\r\n").encode()


def mid(i: int, folder_tag: str = "") -> str:
    return f"<sc{i}{folder_tag}@example.org>"


def server_snapshot(user: MailUser, folders) -> Snapshot:
    out = []
    with user.client() as c:
        existing = {f[2] for f in c.list_folders()}
        for folder in folders:
            if folder not in existing:
                continue
            c.select_folder(folder, readonly=True)
            uids = c.search("ALL")
            if not uids:
                continue
            for _uid, d in c.fetch(uids, ["FLAGS", "BODY.PEEK[HEADER.FIELDS (MESSAGE-ID)]"]).items():
                hdr = d[b"BODY[HEADER.FIELDS (MESSAGE-ID)]"].decode().strip()
                m = hdr.split(":", 1)[1].strip() if ":" in hdr else ""
                flags = tuple(sorted(f.decode() for f in d[b"FLAGS"] if f.decode() not in IGNORED_FLAGS))
                out.append((folder, m, flags))
    return tuple(sorted(out))


def store_snapshot(folders) -> tuple[Snapshot, list]:
    out = []
    with Store(paths.account_store_path("test")) as st:
        for folder in folders:
            fi = st.folder(folder)
            if fi is None:
                continue
            uids = st.id_list(fi.id)
            assert len(uids) == len(set(uids)), f"duplicate uid in the store's {folder}"
            for r in st.rows(fi.id, uids).values():
                flags = tuple(sorted(f for f in imap_flags(r) if f not in IGNORED_FLAGS))
                out.append((folder, r.message_id, flags))
        pending = [(e.op, e.folder, e.message_id, e.add_flags, e.remove_flags, e.dest, e.attempts, e.last_error)
                   for e in st.pending()]
    return tuple(sorted(out)), pending


def duplicates(snap: Snapshot) -> list:
    """Message-IDs present more than once across the compared folders."""
    counts = Counter(m for _f, m, _fl in snap)
    return [m for m, n in counts.items() if n > 1]


def check_intents(res: Result) -> None:
    """Every intent the server did not overrule is present on the server."""
    where = {}
    for folder, m, flags in res.server:
        where.setdefault(m, []).append((folder, set(flags)))
    for it in res.intents:
        if it.overruled:
            continue
        locs = where.get(it.message_id, [])
        if it.op == "expunge":
            assert not locs, f"expunged {it.message_id} is still on the server: {locs}"
        elif it.op == "move":
            if locs:  # (gone entirely = expunged elsewhere: the other client wins)
                assert any(f == it.dest for f, _ in locs), f"{it.message_id} not moved to {it.dest}: {locs}"
                assert all(f == it.dest for f, _ in locs), f"{it.message_id} left behind: {locs}"
        elif it.op == "flags":
            later = [x for x in res.intents if x.message_id == it.message_id and x is not it
                     and res.intents.index(x) > res.intents.index(it)]
            if not locs or any(x.op == "flags" for x in later):
                continue  # expunged/moved elsewhere (overruled), or a later intent supersedes it
            for _folder, flags in locs:
                assert set(it.add) <= flags, f"{it.message_id}: +{it.add} lost ({flags})"
                assert not (set(it.remove) & flags), f"{it.message_id}: -{it.remove} lost ({flags})"


class Runner:
    """Runs scenarios against one Dovecot, a fresh user and fresh XDG dirs per run."""

    def __init__(self, server: DovecotServer, monkeypatch, workdir: Path):
        self.server = server
        self.monkeypatch = monkeypatch
        self.workdir = workdir
        self.proxy = FaultProxy(server.imap_port)
        self.runs = 0

    def close(self) -> None:
        self.proxy.close()

    # -- one run ------------------------------------------------------------------------

    def _fresh(self, s: Scenario) -> tuple[MailUser, Path, Path]:
        self.runs += 1
        root = Path(tempfile.mkdtemp(prefix=f"run{self.runs}-", dir=self.workdir))
        for var, name in (("XDG_CONFIG_HOME", "config"), ("XDG_DATA_HOME", "data"),
                          ("XDG_CACHE_HOME", "cache"), ("XDG_STATE_HOME", "state")):
            (root / name).mkdir()
            self.monkeypatch.setenv(var, str(root / name))
        user = self.server.add_user()
        direct = root / "direct.toml"
        direct.write_text(user.config_toml(sync_mode=s.sync_mode))
        direct.chmod(0o600)  # it holds a password (else tuimail warns on stderr)
        proxied = root / "proxied.toml"
        proxied.write_text(user.config_toml(port=self.proxy.port, sync_mode=s.sync_mode))
        proxied.chmod(0o600)
        return user, direct, proxied

    @staticmethod
    def sync(config: Path) -> tuple[int, str]:
        out, err = io.StringIO(), io.StringIO()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            code = main(["--config", str(config), "sync"])
        text = err.getvalue()
        assert code in (0, 3), f"sync exit {code}: {text}"
        assert "Traceback" not in text and text.count("\n") <= 1, text
        return code, text

    def _before(self, s: Scenario):
        user, direct, proxied = self._fresh(s)
        s.setup(user)
        if s.initial_sync:
            code, err = self.sync(direct)
            assert code == 0, err
        ctx = Ctx(user)
        s.prepare(ctx)
        return user, direct, proxied, ctx

    def _after(self, s: Scenario, user, direct, ctx, lines: int, first_code: int) -> Result:
        code, err = self.sync(direct)  # resume: one clean sync
        assert code == 0, err
        store, pending = store_snapshot(s.folders)
        server = server_snapshot(user, s.folders)
        res = Result(server, store, pending, ctx.intents, lines, first_code)
        self.server.remove_user_data(user)
        return res

    def reference(self, s: Scenario) -> Result:
        user, direct, proxied, ctx = self._before(s)
        before = self.proxy.server_lines_seen
        code, err = self.sync(proxied)
        assert code == 0, err
        lines = self.proxy.server_lines_seen - before
        return self._after(s, user, direct, ctx, lines, code)

    def cut(self, s: Scenario, k: int) -> Result:
        user, direct, proxied, ctx = self._before(s)
        before = self.proxy.server_lines_seen
        self.proxy.cut_after_server_lines(k, per_connection=True, once=True)
        try:
            code, _ = self.sync(proxied)
        finally:
            self.proxy.clear_rules()
        return self._after(s, user, direct, ctx, self.proxy.server_lines_seen - before, code)

    def kill(self, s: Scenario, when: int | float) -> Result:
        """SIGKILL `tuimail sync` when the proxy forwarded `when` lines (int) or after `when` s."""
        user, direct, proxied, ctx = self._before(s)
        before = self.proxy.server_lines_seen
        p = subprocess.Popen([sys.executable, "-m", "tuimail", "--config", str(proxied), "sync"],
                             cwd=ROOT, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                             stderr=subprocess.PIPE)
        t0 = time.monotonic()
        while p.poll() is None:
            if isinstance(when, float):
                if time.monotonic() - t0 >= when:
                    break
            elif self.proxy.server_lines_seen - before >= when:
                break
            if time.monotonic() - t0 > 60:
                break
            time.sleep(0.0005)
        killed = p.poll() is None
        if killed:
            os.kill(p.pid, signal.SIGKILL)
        _, err = p.communicate(timeout=30)
        if not killed:
            assert p.returncode == 0, err.decode(errors="replace")
        self.proxy.cut_now()  # the dead client's connection
        return self._after(s, user, direct, ctx, self.proxy.server_lines_seen - before,
                           -9 if killed else p.returncode)


def sample_steps(total: int, budget: int | None) -> list[int]:
    """Every step 1..total, or `budget` of them spread evenly (always including the first ones
    and the last one, where login and the final state saves happen)."""
    steps = list(range(1, total + 1))
    if budget is None or total <= budget:
        return steps
    head = steps[:4]
    rest = budget - len(head) - 1
    spread = [steps[4 + round(i * (total - 5) / max(rest, 1))] for i in range(rest)]
    return sorted(set(head + spread + [total]))


def compare(ref: Result, got: Result, label: str) -> None:
    assert not duplicates(got.server), f"{label}: duplicate on the server: {duplicates(got.server)}"
    assert not duplicates(got.store), f"{label}: duplicate in the store: {duplicates(got.store)}"
    assert got.pending == [], f"{label}: journal entries left: {got.pending}"
    assert got.server == ref.server, f"{label}: server differs\n  ref {ref.server}\n  got {got.server}"
    assert got.store == ref.store, f"{label}: store differs\n  ref {ref.store}\n  got {got.store}"
