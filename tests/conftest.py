"""Fixtures shared by every test suite.

- `dovecot`: one real Dovecot for the whole session (tests/support/dovecot.py). If Dovecot is not
  installed, the tests that need it FAIL with a message saying how to install it — never skip.
- `mailuser`: a fresh user (own Maildir) on that server, per test.
- `dovecot_factory`: extra servers with other settings (tls=True, capabilities="..."), per test.
- `tuimail_env`: XDG_* dirs pointing at fresh temp dirs, plus `write_config(text)`.
- `proxy_factory`: FaultProxy objects in front of a port or user, closed at teardown.
- `cyrus`, `cyrususer`, `cyrus_sink`: one real Cyrus IMAP/JMAP for the session (relaying
  EmailSubmission to an aiosmtpd sink), a fresh account per test (tests/support/cyrus.py).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.support.cyrus import cyrus, cyrus_sink, cyrususer  # noqa: F401 (fixtures)
from tests.support.dovecot import DovecotError, DovecotNotInstalled, DovecotServer, MailUser
from tests.support.proxy import FaultProxy


def _start_dovecot(**kwargs) -> DovecotServer:
    try:
        return DovecotServer(**kwargs)
    except DovecotNotInstalled as e:
        pytest.fail(str(e), pytrace=False)
    except DovecotError as e:
        pytest.fail(f"could not start Dovecot: {e}", pytrace=False)


@pytest.fixture(autouse=True)
def _umask_is_left_alone():
    """The umask is the whole process's: code that changes it (in any thread) and a test that
    does not put it back would change every file and directory created after it."""
    before = os.umask(0o022)
    os.umask(before)
    yield
    after = os.umask(before)
    assert after == before, f"the umask was left at {after:03o} (it was {before:03o})"


@pytest.fixture(scope="session")
def dovecot():
    server = _start_dovecot()
    yield server
    server.stop()


@pytest.fixture
def mailuser(dovecot) -> MailUser:
    if not dovecot.running:
        pytest.fail(f"the session's Dovecot has died\n{dovecot.log_tail()}", pytrace=False)
    user = dovecot.add_user()
    yield user
    if os.environ.get("TUIMAIL_KEEP_DOVECOT") != "1":
        dovecot.remove_user_data(user)  # bounded disk use when tests deliver 10k+ messages


@pytest.fixture
def dovecot_factory():
    """make(**DovecotServer kwargs) -> a started server, stopped at teardown."""
    servers: list[DovecotServer] = []

    def make(**kwargs) -> DovecotServer:
        server = _start_dovecot(**kwargs)
        servers.append(server)
        return server

    yield make
    for server in servers:
        server.stop()


@dataclass
class TuimailEnv:
    config_home: Path
    data_home: Path
    cache_home: Path
    state_home: Path

    @property
    def config_path(self) -> Path:
        return self.config_home / "tuimail" / "config.toml"

    def write_config(self, text: str) -> Path:
        path = self.config_path
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        path.chmod(0o600)  # it holds a password
        return path


@pytest.fixture
def tuimail_env(tmp_path, monkeypatch) -> TuimailEnv:
    dirs = {}
    for var, name in (("XDG_CONFIG_HOME", "config"), ("XDG_DATA_HOME", "data"),
                      ("XDG_CACHE_HOME", "cache"), ("XDG_STATE_HOME", "state")):
        path = tmp_path / "xdg" / name
        path.mkdir(parents=True)
        monkeypatch.setenv(var, str(path))
        dirs[name] = path
    return TuimailEnv(dirs["config"], dirs["data"], dirs["cache"], dirs["state"])


@pytest.fixture
def proxy_factory():
    """make(target, host="127.0.0.1") -> FaultProxy; target is a port, a MailUser (its IMAP
    port) or anything with `.port`. All are closed at teardown."""
    proxies: list[FaultProxy] = []

    def make(target, host: str = "127.0.0.1", **kwargs) -> FaultProxy:
        if isinstance(target, MailUser):
            host, port = target.host, target.imap_port
        elif isinstance(target, int):
            port = target
        else:
            port = target.port
        proxy = FaultProxy(port, host, **kwargs)
        proxies.append(proxy)
        return proxy

    yield make
    for proxy in proxies:
        proxy.close()
