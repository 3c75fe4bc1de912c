"""backends/base.py: the worker loop every account kind shares. A service whose `_round` is a script
of outcomes (fault injection: no server is needed to refuse a login or drop the network) shows
the one reaction each failure gets, as the status bar sees it through the events."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import pytest

from tuimail.backends import registry
from tuimail.backends.base import ServiceBase
from tuimail.backends.lock import AccountLock
from tuimail.config.load import Account, Config
from tuimail.core.events import Event, SyncState
from tuimail.errors import AuthError, MissingSecret, NetworkError
from tuimail.store import Store


class Scripted(ServiceBase):
    """Each round runs the next step of the script (raise to fail); past its end, a round stays
    "online" until stopped or offline (as a backend's online loop does)."""

    thread_name = "scripted"

    def __init__(self, config: Config, account: Account, steps: list[Callable[[], None]]) -> None:
        self.events: list[Event] = []
        super().__init__(config, account, self.events.append)
        self.steps = steps
        self.rounds: list[float] = []  # when each round began
        self.pauses: list[float] = []

    def _round(self, store: Store, lock: AccountLock) -> float | None:
        self.rounds.append(time.monotonic())
        if self.steps:
            self.steps.pop(0)()
            self._connected()
            return 0.0
        while not self._stop.is_set() and not self._offline:
            self._wake.wait(0.02)
        return None

    def _pause(self, store: Store, seconds: float) -> None:
        self.pauses.append(seconds)
        self._wake.wait(min(seconds, 0.05))  # (the test does not wait the real backoff)

    def states(self) -> list[SyncState]:
        return [e for e in self.events if isinstance(e, SyncState)]


@pytest.fixture
def config(tuimail_env) -> Config:
    acc = Account(name="t", kind="imap", host="127.0.0.1", port=1, security="none", username="me", password="x")
    return Config(accounts={"t": acc})


def _until(cond: Callable[[], bool], timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


def _fail(exc: Exception) -> Callable[[], None]:
    def step() -> None:
        raise exc
    return step


def test_a_refused_login_waits_for_the_user_then_logs_in_again(config):
    svc = Scripted(config, config.account("t"), [_fail(AuthError("login refused"))])
    svc.start()
    try:
        _until(lambda: any(s.needs == "login" for s in svc.states()))
        time.sleep(0.2)
        assert len(svc.rounds) == 1, "a refused login was retried without the user"
        assert svc.login_blocked == "login refused"
        svc.request_sync(None)  # the user's `$`
        _until(lambda: len(svc.rounds) == 2)
    finally:
        svc.stop()


def test_a_missing_password_asks_for_one_and_a_typed_one_is_used(config):
    svc = Scripted(config, config.account("t"), [_fail(MissingSecret("no password"))])
    svc.start()
    try:
        _until(lambda: any(s.needs == "password" for s in svc.states()))
        svc.set_password("typed")
        _until(lambda: len(svc.rounds) == 2)
        assert svc._secret() == "typed"
    finally:
        svc.stop()


def test_the_network_backs_off_doubling_and_a_good_round_starts_over(config):
    down = _fail(NetworkError("connection refused"))
    svc = Scripted(config, config.account("t"), [down, down, down, lambda: None, down])
    svc.start()
    try:
        _until(lambda: len(svc.rounds) == 6)
    finally:
        svc.stop()
    offline = [s for s in svc.states() if s.state == "offline"]
    assert len(offline) == 4 and all(s.error == "connection refused" for s in offline)
    # 1, 2, 4 s; a round that got through (and paused 0 s), then 1 s again
    assert svc.pauses == [1.0, 2.0, 4.0, 0.0, 1.0]


def test_a_bug_in_a_round_is_one_line_and_the_loop_goes_on(config, tuimail_env):
    svc = Scripted(config, config.account("t"), [_fail(KeyError("oops"))])
    svc.start()
    try:
        _until(lambda: len(svc.rounds) == 2)
    finally:
        svc.stop()
    (err,) = [s for s in svc.states() if s.state == "error"]
    assert err.error == "internal error: KeyError: 'oops'"


def test_offline_stops_the_rounds_and_online_resumes_them(config):
    svc = Scripted(config, config.account("t"), [])
    svc.start()
    try:
        _until(lambda: len(svc.rounds) == 1)
        svc.set_offline(True)
        time.sleep(0.2)
        assert svc.offline and len(svc.rounds) == 1
        assert svc.state.state == "offline"
        svc.set_offline(False)
        _until(lambda: len(svc.rounds) == 2)
    finally:
        svc.stop()
    assert not any(t.name.startswith("scripted-") for t in threading.enumerate())


def test_the_registry_answers_capabilities_without_a_service():
    for kind in registry.implemented_kinds():
        caps = registry.capabilities(kind)
        assert caps == registry.backend(kind).capabilities
    assert registry.capabilities("imap").server_uids
    assert not registry.capabilities("pop3").server_flags
