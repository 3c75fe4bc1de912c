"""Writing one key back into the user's config file: the password typed in the app, when the user
ticked "save in config". Everything else in the file (comments, order, spacing) stays as it was.

The new text is validated before it replaces the file; the file is replaced atomically (a temporary
file in the same directory, then rename) and is 0600 afterwards, whatever it was before. A symlinked
config (a dotfiles repository) is written where the link points.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from tuimail.errors import ConfigError


def toml_string(value: str) -> str:
    """A TOML basic string: quotes, backslashes and control characters escaped."""
    out = ['"']
    for ch in value:
        if ch in '"\\':
            out.append("\\" + ch)
        elif ord(ch) < 0x20 or ord(ch) == 0x7F:
            out.append(f"\\u{ord(ch):04x}")
        else:
            out.append(ch)
    out.append('"')
    return "".join(out)


def _header(name: str) -> re.Pattern[str]:
    quoted = re.escape(name)
    return re.compile(rf'^[ \t]*\[[ \t]*accounts[ \t]*\.[ \t]*(?:{quoted}|"{quoted}"|\'{quoted}\')'
                      r'[ \t]*\][ \t]*(?:#.*)?$', re.MULTILINE)


def save_password(path: Path | str, account: str, password: str) -> Path:
    """Add `password = "..."` to [accounts.ACCOUNT] in the file at `path`; returns the file written.
    ConfigError (one line) when that is not safely possible: nothing is written then."""
    from tuimail.config.load import parse_config

    target = Path(path).expanduser().resolve()
    shown = str(path)
    try:
        text = target.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{shown}: cannot read it to save the password: {getattr(exc, 'strerror', None) or exc}") \
            from None
    m = _header(account).search(text)
    if m is None:
        raise ConfigError(f"{shown}: no [accounts.{account}] table found to save the password in;"
                          " add password or password_command there")
    line_end = text.find("\n", m.end())
    line_end = len(text) if line_end < 0 else line_end + 1
    head = text[:line_end] if text[:line_end].endswith("\n") else text[:line_end] + "\n"
    new = head + f"password = {toml_string(password)}\n" + text[line_end:]
    try:
        acc = parse_config(new, target).account(account)
    except Exception as exc:  # ConfigError, or the account missing: refuse, write nothing
        raise ConfigError(f"{shown}: the password was not saved: {exc}") from None
    if acc.password != password:
        raise ConfigError(f"{shown}: the password was not saved ([accounts.{account}] is not a plain table)")
    return replace_private(target, new, f"{shown}: cannot write the password")


def replace_private(target: Path, text: str, failure: str) -> Path:
    """Write `text` to `target` (0600) atomically: a private temporary file beside it, fsync'd,
    then renamed over it; a failure leaves the old file whole and is one ConfigError line,
    `failure: <the OS's reason>`."""
    tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
        try:
            os.fchmod(fd, 0o600)
            os.write(fd, text.encode("utf-8"))
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, target)
    except OSError as exc:
        try:
            tmp.unlink()
        except OSError:
            pass
        raise ConfigError(f"{failure}: {exc.strerror or exc}") from None
    return target
