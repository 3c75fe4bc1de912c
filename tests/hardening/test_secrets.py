"""Secrets (issue 5, item 5): the password never lands in the store, the cache, the state dir
(lock, crash log), the protocol log, any logger or the program's output; the protocol log redacts
LOGIN/AUTHENTICATE; every file we create is 0600 in a 0700 directory."""

from __future__ import annotations

import base64
import logging
import os
import stat
import sys
import threading
import time
from pathlib import Path

import pytest

from tuimail import paths
from tuimail.cli.main import main
from tuimail.config.load import load_config
from tuimail.protocol.imap.session import _redact
from tuimail.core.events import SyncState
from tuimail.backends.imap.service import ImapService, open_connection
from tests.integration.helpers import msg
from tests.support.proxy import GarbageServer

from .conftest import run_tuimail

PASSWORD = "Zq9-SeCrEt-7731-uNiQuE"


def needles(user: str, password: str) -> list[bytes]:
    """The password as it could leak: plain, and inside AUTH=PLAIN / LOGIN encodings."""
    pw = password.encode()
    plain = base64.b64encode(b"\0" + user.encode() + b"\0" + pw)
    return [pw, plain, base64.b64encode(pw), pw.hex().encode(), password.encode("utf-16-le")]


def files_under(*roots: Path) -> list[Path]:
    return [p for r in roots if r.exists() for p in r.rglob("*") if p.is_file()]


def assert_nowhere(paths_: list[Path], texts: list[str], needle_list: list[bytes]) -> None:
    assert paths_, "nothing was written?"
    for p in paths_:
        data = p.read_bytes()
        for n in needle_list:
            assert n not in data, f"secret found in {p}"
    for t in texts:
        for n in needle_list:
            assert n.decode("latin-1") not in t, "secret found in output/log text"


def assert_private(env) -> None:
    """Files 0600, directories 0700, for everything tuimail created."""
    for root in (env.data_home / "tuimail", env.cache_home / "tuimail", env.state_home / "tuimail"):
        if not root.exists():
            continue
        for p in [root, *root.rglob("*")]:
            mode = stat.S_IMODE(p.stat().st_mode)
            if p.is_dir():
                assert mode == 0o700, f"{p} is {oct(mode)}"
            else:
                assert mode == 0o600, f"{p} is {oct(mode)}"


@pytest.fixture
def loose_umask():
    old = os.umask(0o022)  # what most users have: nothing may rely on a strict umask
    yield
    os.umask(old)


@pytest.fixture
def secret_user(dovecot):
    user = dovecot.add_user(password=PASSWORD)
    user.deliver_many("INBOX", [(msg(i), "S" if i % 2 else "") for i in range(20)])
    yield user
    dovecot.remove_user_data(user)


def _in_process(config_path, capsys, *args) -> tuple[int, str]:
    capsys.readouterr()
    code = main(["--config", str(config_path), *args])
    out, err = capsys.readouterr()
    return code, out + err


def test_password_never_written_anywhere(tuimail_env, secret_user, capsys, caplog, loose_umask):
    caplog.set_level(logging.DEBUG)  # imapclient logs the whole protocol at DEBUG
    cfg = tuimail_env.write_config(secret_user.config_toml())
    texts = []
    for args in (("sync",), ("list", "INBOX"), ("read", "INBOX", "3"), ("flag", "INBOX", "3", "+flagged"),
                 ("sync",), ("folders",)):
        code, text = _in_process(cfg, capsys, *args)
        assert code == 0, text
        texts.append(text)
    # a wrong password's error, and the same runs as a separate process
    bad = tuimail_env.config_home / "wrong.toml"
    bad.write_text(secret_user.config_toml(password=PASSWORD + "-wrong"))
    bad.chmod(0o600)
    code, text = _in_process(bad, capsys, "sync")
    assert code == 3
    texts.append(text)
    run = run_tuimail(cfg, "sync")
    assert run.code == 0, run.err
    texts += [run.out, run.err]
    texts += [r.getMessage() for r in caplog.records]
    assert any("LOGIN" in t or "AUTHENTICATE" in t for t in texts), "the protocol log was not captured"
    env_files = files_under(tuimail_env.data_home, tuimail_env.cache_home, tuimail_env.state_home)
    assert any(p.suffix == ".sqlite3" for p in env_files)
    assert_nowhere(env_files, texts, needles(secret_user.name, PASSWORD))
    assert_nowhere(env_files, [], needles(secret_user.name, PASSWORD + "-wrong"))
    assert_private(tuimail_env)


def test_password_command_secret_never_written_anywhere(tuimail_env, secret_user, capsys, caplog, loose_umask):
    caplog.set_level(logging.DEBUG)
    helper = tuimail_env.config_home / "pw.py"
    helper.parent.mkdir(parents=True, exist_ok=True)
    helper.write_text(f"print({PASSWORD!r})\nprint('second line is ignored')\n")
    cfg = tuimail_env.write_config(secret_user.config_toml(password=None,
                                                           password_command=[sys.executable, str(helper)]))
    texts = []
    for args in (("sync",), ("read", "INBOX", "2"), ("sync",)):
        code, text = _in_process(cfg, capsys, *args)
        assert code == 0, text
        texts.append(text)
    run = run_tuimail(cfg, "sync")
    assert run.code == 0, run.err
    texts += [run.out, run.err, *(r.getMessage() for r in caplog.records)]
    # a password_command that prints the secret and then fails: its output is not shown
    failing = tuimail_env.config_home / "pw_fail.py"
    failing.write_text(f"import sys\nprint({PASSWORD!r})\nprint({PASSWORD!r}, file=sys.stderr)\nsys.exit(1)\n")
    cfg2 = tuimail_env.write_config(secret_user.config_toml(password=None,
                                                            password_command=[sys.executable, str(failing)]))
    code, text = _in_process(cfg2, capsys, "sync")
    assert code == 2 and "password_command" in text
    texts.append(text)
    assert_nowhere(files_under(tuimail_env.data_home, tuimail_env.cache_home, tuimail_env.state_home), texts,
                   needles(secret_user.name, PASSWORD))
    assert_private(tuimail_env)


def test_sync_service_writes_no_secret_and_private_files(tuimail_env, secret_user, caplog, loose_umask):
    """The TUI's path: the worker thread, its lock and its on-demand fetch connection."""
    caplog.set_level(logging.DEBUG)
    config = load_config(tuimail_env.write_config(secret_user.config_toml()))
    account = config.account()
    idle = threading.Event()
    states = []

    def on_event(ev):
        if isinstance(ev, SyncState):
            states.append(ev.state)
            if ev.state == "idle":
                idle.set()

    svc = ImapService(config, account, on_event)
    svc.start()
    try:
        assert idle.wait(30), states
        content = svc.open_message("INBOX", 1)
        assert "hello" in content.text
    finally:
        svc.stop()
    assert repr(account).find(PASSWORD) < 0 and repr(config).find(PASSWORD) < 0
    assert_nowhere(files_under(tuimail_env.data_home, tuimail_env.cache_home, tuimail_env.state_home),
                   [r.getMessage() for r in caplog.records], needles(secret_user.name, PASSWORD))
    assert_private(tuimail_env)


def test_protocol_log_redacts_login_and_authenticate():
    assert _redact(b'T1 LOGIN alice "Zq9 secret"\r\n') == "T1 LOGIN <redacted>"
    assert _redact(b"T2 authenticate PLAIN AGFsaWNlAHB3\r\n") == "T2 authenticate <redacted>"
    assert _redact(b"T3 AUTHENTICATE XOAUTH2 dXNlcj1h\r\n") == "T3 AUTHENTICATE <redacted>"
    assert _redact(b"T4 SELECT INBOX\r\n") == "T4 SELECT INBOX"


def test_protocol_log_of_a_real_session_has_no_secret(tuimail_env, secret_user):
    config = load_config(tuimail_env.write_config(secret_user.config_toml()))
    lines: list[str] = []
    conn = open_connection(config.account(), log=lines.append)
    try:
        conn.list_folders(with_status=True)
        conn.select("INBOX")
        conn.fetch_flags()
        # a LOGIN sent through our own raw path (a re-login after a failover, say) is redacted too
        conn.command(b'LOGIN "x" "' + PASSWORD.encode() + b'"', check=False)
    finally:
        conn.close()
    assert any(line.startswith("C: ") for line in lines) and any(line.startswith("S: ") for line in lines)
    assert any("LOGIN <redacted>" in line for line in lines)
    for line in lines:
        for n in needles(secret_user.name, PASSWORD):
            assert n.decode("latin-1") not in line


def test_login_command_path_is_redacted_in_imapclient_debug_log(tuimail_env, caplog):
    """A server without AUTH=PLAIN gets LOGIN (password on the command line): the DEBUG log of
    the whole exchange never shows it."""
    caplog.set_level(logging.DEBUG)

    def reply(line):
        tag, _, rest = line.partition(b" ")
        cmd = rest.split(b" ", 1)[0].upper()
        if cmd == b"CAPABILITY":
            return b"* CAPABILITY IMAP4rev1\r\n" + tag + b" OK done\r\n"
        if cmd == b"LOGIN":
            return tag + b" OK [CAPABILITY IMAP4rev1] in\r\n"
        if cmd == b"LOGOUT":
            return b"* BYE bye\r\n" + tag + b" OK done\r\n"
        return tag + b" OK done\r\n"

    with GarbageServer(reply=reply) as server:
        text = (f'[accounts.test]\nkind = "imap"\nhost = "127.0.0.1"\nport = {server.port}\nsecurity = "none"\n'
                f'username = "alice"\npassword = "{PASSWORD}"\n')
        config = load_config(tuimail_env.write_config(text))
        lines: list[str] = []
        conn = open_connection(config.account(), log=lines.append)
        conn.close()
        assert any(PASSWORD.encode() in line for line in server.received), "LOGIN path not exercised"
    msgs = [r.getMessage() for r in caplog.records]
    assert any("LOGIN" in m for m in msgs)
    for m in msgs + lines:
        assert PASSWORD not in m


def test_crash_log_is_private_and_secret_free(tuimail_env, loose_umask):
    password = PASSWORD  # a local the traceback could show if it dumped locals
    try:
        raise RuntimeError("boom in the sync loop")
    except RuntimeError:
        ImapService._log_crash(None)
    log = paths.state_dir() / "tuimail.log"
    assert log.exists()
    assert stat.S_IMODE(log.stat().st_mode) == 0o600, oct(log.stat().st_mode)
    assert stat.S_IMODE(log.parent.stat().st_mode) == 0o700
    text = log.read_text()
    assert "boom in the sync loop" in text and password not in text
    # appending keeps the mode (and does not follow a symlink planted in its place)
    try:
        raise ValueError("second")
    except ValueError:
        ImapService._log_crash(None)
    assert "second" in log.read_text() and stat.S_IMODE(log.stat().st_mode) == 0o600


def test_files_stay_private_after_kill(tuimail_env, secret_user, loose_umask):
    """Even a sync killed mid-way leaves only private files (-wal/-shm included)."""
    import signal
    import subprocess
    cfg = tuimail_env.write_config(secret_user.config_toml())
    p = subprocess.Popen([sys.executable, "-m", "tuimail", "--config", str(cfg), "sync"],
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    store = paths.account_store_path("test")
    deadline = time.monotonic() + 20
    while not Path(str(store) + "-wal").exists() and time.monotonic() < deadline and p.poll() is None:
        time.sleep(0.005)
    p.send_signal(signal.SIGKILL)
    p.wait()
    assert_private(tuimail_env)
