"""Benchmark smoke for `make test`: the O(changes) property of a resync, on a real Dovecot.

Two accounts with 1,000 and 4,000 generated messages are synced, then synced again with nothing
changed: what the server sends (Dovecot's `out=` at logout, after login) must be <= 2 KB and the
same within 10% for both sizes. After k = 1 and k = 50 flag changes made by another connection a
resync stays <= 2 KB + 150 B per change (DESIGN.md §4). Bytes only: timings stay out of CI.
"""

from __future__ import annotations

import re

import pytest

from tests.integration.helpers import Cli
from tuimail.demo.generate import generate

SIZES = {"small": 1000, "large": 4000}


@pytest.fixture
def second_user(mailuser):
    user = mailuser.server.add_user()
    yield user
    mailuser.server.remove_user_data(user)


def _sync_bytes(cli: Cli, user, account: str, flags: int | None = None) -> int:
    server = user.server
    n0 = len(server.session_bytes(user))
    out = cli("--account", account, "sync")
    if flags is not None:
        m = re.search(r"(\d+) flag updates", out)
        assert m and int(m.group(1)) == flags, out
    sessions = server.wait_sessions(user, n0 + 1, timeout=10)[n0:]
    assert len(sessions) == 1, sessions
    return sessions[0][1]


def _flag_elsewhere(user, k: int) -> None:
    n0 = len(user.server.session_bytes(user))
    with user.client(select="INBOX") as c:
        uids = c.search(["UNFLAGGED"])[:k]
        assert len(uids) == k
        c.add_flags(uids, [b"\\Flagged"], silent=True)
    user.server.wait_sessions(user, n0 + 1, timeout=10)  # its logout is logged before we measure


def test_resync_bytes_do_not_grow_with_the_folder(mailuser, second_user, tuimail_env, capsys):
    users = {"small": mailuser, "large": second_user}
    for name, user in users.items():
        user.deliver_many("INBOX", ((m.raw, m.flags, m.date) for m in generate(SIZES[name], seed=7)))
    config = "\n".join(u.config_toml(name) for name, u in users.items())
    cli = Cli(tuimail_env.write_config(config), capsys)
    for name in users:
        assert f"{SIZES[name]} new" in cli("--account", name, "sync")

    noop = {name: _sync_bytes(cli, user, name, flags=0) for name, user in users.items()}
    assert all(b <= 2048 for b in noop.values()), noop
    assert abs(noop["small"] - noop["large"]) <= 0.10 * max(noop.values()), noop

    user = users["large"]
    for k in (1, 50):
        _flag_elsewhere(user, k)
        got = _sync_bytes(cli, user, "large", flags=k)
        assert got <= 2048 + 150 * k, (k, got)
