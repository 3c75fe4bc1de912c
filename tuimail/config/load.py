"""The TOML configuration: accounts, UI options, key bindings.

Every problem found in the file is reported as a ConfigError whose message is one line naming
the file (as given) and the key, e.g.

    config.toml: accounts.work.prot: unknown key (did you mean "port"?)

Secrets never appear in a message: the value of a password is not echoed, and the output of a
password or token command is never shown.
"""

from __future__ import annotations

import json
import os
import time
import tomllib
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

# The model is re-exported: callers import Account, Config, ... from here.
from tuimail.config.model import (  # noqa: F401
    ACCOUNT_KEYS,
    CREDENTIAL_KEYS,
    DEFAULT_PORTS,
    KEYMAPS,
    KINDS,
    MAILCAP_KEYS,
    PREVIEWS,
    ROLES,
    SECURITIES,
    SMTP_KEYS,
    SYNC_MODES,
    TOP_KEYS,
    UI_KEYS,
    Account,
    Config,
    UIConfig,
    _show,
    default_port,
)
from tuimail.config.validate import _Validator
from tuimail.errors import ConfigError, MissingSecret
from tuimail.paths import default_config_path

if TYPE_CHECKING:  # (subprocess is imported by the commands that run one: most starts run none)
    import subprocess

# Seconds a password_command / oauth2_token_command may run, and how much of its output is read
# (a secret is one short line; a command printing 200 MB must not fill the memory).
SECRET_COMMAND_TIMEOUT = 30
SECRET_COMMAND_MAX_OUTPUT = 64 * 1024


# ---------------------------------------------------------------------------------------------
# Loading


def load_config(path: Path | str | None = None) -> Config:
    """Read and validate the config file; None means paths.default_config_path()."""
    if path is None:
        path = default_config_path()
    shown = _display_path(path)
    file = Path(path).expanduser()
    try:
        data = file.read_bytes()
    except FileNotFoundError:
        raise ConfigError(
            f"config file not found: {shown} (create it; see README 'Configuration')"
        ) from None
    except IsADirectoryError:
        raise ConfigError(f"{shown}: is a directory, not a config file") from None
    except OSError as e:
        raise ConfigError(f"{shown}: cannot read: {e.strerror or e}") from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise ConfigError(f"{shown}: not valid UTF-8 (byte {e.start})") from None
    return parse_config(text, path)


def parse_config(text: str, path: Path | str = "config.toml") -> Config:
    """Validate TOML text as if read from `path` (used in messages and for relative paths)."""
    shown = _display_path(path)
    file = Path(path).expanduser()
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        msg = " ".join(str(e).split())
        raise ConfigError(f"{shown}: invalid TOML: {msg}") from None
    v = _Validator(shown, file.absolute().parent)
    return v.config(doc, file)


def config_mode_warning(config: Config) -> str | None:
    """One line when the file holds a password and its group or others may read it."""
    if config.path is None:
        return None
    if not any(a.password is not None or "password" in (a.smtp or {}) for a in config.accounts.values()):
        return None
    try:
        mode = Path(config.path).expanduser().stat().st_mode
    except OSError:
        return None
    who = [w for bit, w in ((0o040, "its group"), (0o004, "other users")) if mode & bit]
    if not who:
        return None
    shown = _display_path(config.path)
    return f"{shown} holds a password and is readable by {' and '.join(who)}: run `chmod 600 {shown}`"


def _display_path(path: Path | str) -> str:
    s = os.fspath(path)
    if any(ord(c) < 32 or ord(c) == 127 for c in s):
        return json.dumps(s)
    return s


# ---------------------------------------------------------------------------------------------
# Secrets


def resolve_password(account: Account) -> str:
    """The account's password: the configured one, or the first line of its password_command."""
    if account.password is not None:
        return account.password
    if account.password_command:
        return run_secret_command(
            account.password_command, f"accounts.{account.name}.password_command"
        )
    if account.oauth2_token_command:
        raise ConfigError(
            f"accounts.{account.name}: no password or password_command "
            "(this account uses oauth2_token_command)"
        )
    raise MissingSecret(
        f"accounts.{account.name}: no password configured: set password, password_command or "
        "oauth2_token_command (the app asks for it)"
    )


def resolve_oauth2_token(account: Account) -> str:
    """The XOAUTH2 access token: the first line of the account's oauth2_token_command."""
    if account.oauth2_token_command:
        return run_secret_command(
            account.oauth2_token_command, f"accounts.{account.name}.oauth2_token_command"
        )
    raise ConfigError(f"accounts.{account.name}: no oauth2_token_command configured")


def run_secret_command(argv: Sequence[str], key: str) -> str:
    """Run `argv` (no shell) and return the first line of its stdout, without the newline.

    Any failure raises ConfigError("<key>: <what happened>"). Neither the command's output nor
    its stderr ever goes into a message; the command's name (argv[0]) may.
    """
    import subprocess

    argv = list(argv)
    name = _show(argv[0]) if argv else '""'
    try:
        proc = subprocess.Popen(argv, shell=False, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                stderr=subprocess.DEVNULL)
    except FileNotFoundError:
        raise ConfigError(f"{key}: command not found: {name}") from None
    except PermissionError:
        raise ConfigError(f"{key}: permission denied running {name}") from None
    except (OSError, ValueError) as e:
        reason = e.strerror if isinstance(e, OSError) and e.strerror else type(e).__name__
        raise ConfigError(f"{key}: cannot run {name}: {reason}") from None
    with proc:
        try:
            out = _read_capped(proc, SECRET_COMMAND_TIMEOUT, SECRET_COMMAND_MAX_OUTPUT)
        except subprocess.TimeoutExpired:
            proc.kill()
            raise ConfigError(
                f"{key}: {name} did not finish within {SECRET_COMMAND_TIMEOUT} seconds"
            ) from None
        except _TooMuch:
            proc.kill()
            raise ConfigError(
                f"{key}: {name} printed more than {SECRET_COMMAND_MAX_OUTPUT // 1024} KB;"
                " expected the secret on its first line"
            ) from None
    if proc.returncode < 0:
        raise ConfigError(f"{key}: {name} was killed by signal {-proc.returncode}")
    if proc.returncode != 0:
        raise ConfigError(f"{key}: {name} failed with exit status {proc.returncode}")
    first = out.split(b"\n", 1)[0]
    if first.endswith(b"\r"):
        first = first[:-1]
    if not first:
        what = "printed nothing" if not out.strip() else "printed an empty first line"
        raise ConfigError(f"{key}: {name} {what}")
    try:
        return first.decode("utf-8")
    except UnicodeDecodeError:
        raise ConfigError(f"{key}: the output of {name} is not valid UTF-8") from None


class _TooMuch(Exception):
    pass


def _read_capped(proc: subprocess.Popen, timeout: float, cap: int) -> bytes:
    """Everything `proc` writes to stdout, up to `cap` bytes (_TooMuch past it), then its exit,
    all within `timeout` seconds (subprocess.TimeoutExpired past it)."""
    import selectors
    import subprocess

    deadline = time.monotonic() + timeout
    buf = bytearray()
    assert proc.stdout is not None  # the caller opened it with stdout=PIPE
    fd = proc.stdout.fileno()
    with selectors.DefaultSelector() as sel:
        sel.register(fd, selectors.EVENT_READ)
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise subprocess.TimeoutExpired(proc.args, timeout)
            if not sel.select(left):
                continue
            chunk = os.read(fd, 65536)
            if not chunk:
                break
            buf += chunk
            if len(buf) > cap:
                raise _TooMuch()
    proc.wait(max(0.0, deadline - time.monotonic()))
    return bytes(buf)
