"""A first download commits a window of messages at a time (download.py + the store's ledger,
backends/pop3/ledger.py): against Dovecot, with the real store, nothing is lost and nothing is
stored twice when the connection is cut after a window's commit, and in delete mode each DELE goes
out only after the commit that holds its message returned."""

from __future__ import annotations

import pytest

from tuimail.backends.pop3 import download as download_mod
from tuimail.backends.pop3.download import download
from tuimail.backends.pop3.ledger import StoreLedger
from tuimail.backends.pop3.plan import Policy
from tuimail.errors import NetworkError
from tuimail.protocol.pop3 import Pop3Session
from tuimail.store import Store
from tuimail.store.pop3ledger import Pop3Ledger

from .test_pop3_download import fill, on_server, session

N = 150  # more than the first window (a screenful) and several windows after it


def store_ledger(path, mode: str) -> tuple[Store, StoreLedger]:
    st = Store(path)
    pop = Pop3Ledger(st)
    return st, StoreLedger(pop, pop.local_folder("INBOX", "inbox"), "t", batch=mode == "keep")


def stored(path) -> tuple[list[str], int]:
    """(the subjects in the store, how many have their body), read by a connection of its own."""
    with Store(path) as st:
        subjects = sorted(r[0] for r in st.db.execute("SELECT subject FROM messages"))
        bodies = st.db.execute("SELECT count(*) FROM pop3_ledger WHERE has_body = 1").fetchone()[0]
    return subjects, bodies


@pytest.mark.parametrize("headers_first", [False, True, "pool"])
@pytest.mark.parametrize("mode", ["delete", "keep"])
def test_a_cut_after_a_window_loses_nothing_and_stores_nothing_twice(mailuser, proxy_factory, tmp_path, monkeypatch,
                                                                      mode, headers_first):
    if headers_first == "pool":  # the header rows worked out by the helper process (fieldpool.py)
        monkeypatch.setattr(download_mod, "POOL_OVER", 20)
    fill(mailuser, N)
    path = tmp_path / "s.sqlite3"
    proxy = proxy_factory(mailuser.pop3_port)
    commits: list[tuple[list[int], bool]] = []  # (the message numbers, with their bodies) of each commit
    sent: list[tuple[int, list[int]]] = []  # (commits returned by then, DELE numbers) per write
    real_many, real_bodies, real_send = StoreLedger.commit_many, StoreLedger.commit_bodies, Pop3Session._send_many
    numbers: dict = {}

    def commit_many(self, items, headers_only, fields=None):
        refs = real_many(self, items, headers_only, fields)
        commits.append(([m.number for m, _, _ in items], not headers_only))
        numbers.update({ref: m.number for ref, (m, _, _) in zip(refs, items, strict=True)})
        if len(commits) == 1 and cut[0]:
            proxy.cut_now()  # as a kill -9 or a dropped link right after this commit
        return refs

    def commit_bodies(self, items):
        real_bodies(self, items)
        commits.append(([numbers[ref] for ref, _ in items], True))

    def send_many(self, lines, name):
        if name == "DELE":
            dele = [int(line.split()[1]) for line in lines]
            sent.append((len(commits), dele))
            with Store(path) as other:  # durable: another connection sees each of them whole
                whole = {int(r[0][1:]) for r in other.db.execute(
                    "SELECT m.subject FROM messages m JOIN pop3_ledger l ON l.msg_id = m.id WHERE l.has_body = 1")}
            assert set(dele) <= whole
        return real_send(self, lines, name)

    monkeypatch.setattr(StoreLedger, "commit_many", commit_many)
    monkeypatch.setattr(StoreLedger, "commit_bodies", commit_bodies)
    monkeypatch.setattr(Pop3Session, "_send_many", send_many)
    cut = [True]
    st, led = store_ledger(path, mode)
    with st, pytest.raises(NetworkError):
        try:
            download(session(mailuser, proxy.port), led, Policy(mode), headers_first=headers_first)
        finally:
            led.flush()  # (as the service does: a batch in progress is committed)
    first = commits[0][0]
    assert 0 < len(first) <= download_mod.FIRST_WINDOW
    assert on_server(mailuser) == N and not sent  # no DELE went out, none applied
    subjects, _ = stored(path)
    if mode == "delete":
        assert len(subjects) >= len(first)  # each window durable once its commit returned
    assert len(set(subjects)) == len(subjects)

    cut[0] = False
    before = {n for c, body in commits for n in c if body}  # bodies stored by the cut sync
    commits.clear()
    st, led = store_ledger(path, mode)
    with st:
        download(session(mailuser), led, Policy(mode), headers_first=headers_first)
        led.flush()
    subjects, bodies = stored(path)
    assert subjects == sorted(f"m{i}" for i in range(1, N + 1))  # every message, once
    assert bodies == N
    if mode == "delete":
        assert on_server(mailuser) == 0
        for returned, dele in sent:  # each DELE after the commit of its message returned
            done = before | {n for c, body in commits[:returned] for n in c if body}
            assert set(dele) <= done
    else:
        assert on_server(mailuser) == N and not sent


def test_the_helper_of_a_long_header_download_stores_what_the_sync_alone_stores(mailuser, tmp_path, monkeypatch):
    """fieldpool.py: the same rows, server ids, fingerprints and ledger entries as without it."""
    fill(mailuser, N)

    def first_download(name: str, pool_over: int) -> tuple:
        monkeypatch.setattr(download_mod, "POOL_OVER", pool_over)
        path = tmp_path / name
        st, led = store_ledger(path, "keep")
        led.now = lambda: 1_800_000_000.0  # (no Date in these messages: the download time is theirs)
        with st:
            download(session(mailuser), led, Policy("keep"), headers_first=True, bodies=False, now=1_800_000_000.0)
            led.flush()
            return (st.db.execute("SELECT id, sid, date, from_, to_, cc, subject, message_id, in_reply_to, refs, size,"
                                  " has_attachment FROM messages ORDER BY id").fetchall(),
                    st.db.execute("SELECT id, msg_id, uidl, fingerprint, has_body FROM pop3_ledger"
                                  " ORDER BY id").fetchall())

    spawned: list = []
    real = download_mod._pool
    monkeypatch.setattr(download_mod, "_pool", lambda now: spawned.append(real(now)) or spawned[-1])
    alone, helped = first_download("alone.sqlite3", 10 ** 9), first_download("helped.sqlite3", 20)
    assert len(spawned) == 1 and spawned[0] is not None and spawned[0].pid is None  # made (once), then ended
    assert helped == alone and len(alone[0]) == N
