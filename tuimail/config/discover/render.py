"""A discovered account as the commented [accounts.NAME] block the README documents, and writing
it: a new config file (0600, its directory 0700), or appended to an existing one. The new text is
validated as a whole before anything is written, and replaces the file atomically.

A typed password is written only when the caller asks for it (`Password.typed(..., save=True)`);
otherwise the block names a password_command (a command of the user's, or the system keyring's
command-line tool) or nothing, and the app asks for the password at each start.
"""

from __future__ import annotations

import re
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

from tuimail.config.discover.engine import describe, features
from tuimail.config.discover.results import Address, Candidate
from tuimail.config.validate import _BARE_KEY
from tuimail.config.write import replace_private, toml_string
from tuimail.errors import ConfigError
from tuimail.paths import ACCOUNT_NAME_RE


@dataclass(frozen=True)
class Password:
    """Where the password comes from: "command" (argv), "keyring" (argv of the keyring tool),
    "prompt" (asked at each start, kept in memory) or "config" (written in the file)."""

    source: str
    argv: tuple[str, ...] = ()
    secret: str | None = field(default=None, repr=False)

    @classmethod
    def command(cls, argv: list[str] | tuple[str, ...]) -> Password:
        if not argv or not all(isinstance(a, str) and a for a in argv):
            raise ConfigError("password command: expected a program and its arguments")
        return cls("command", tuple(argv))

    @classmethod
    def prompt(cls) -> Password:
        return cls("prompt")

    @classmethod
    def typed(cls, secret: str, *, save: bool) -> Password:
        """A password the user typed: written in the file only with save=True, else asked again
        at each start (the file never holds it)."""
        return cls("config", secret=secret) if save else cls("prompt")


def keyring_command(address: str, which: Callable[[str], str | None] = shutil.which) -> tuple[str, ...] | None:
    """The command that reads the password of `address` from the system keyring, if a keyring
    tool is installed: python-keyring's `keyring`, else libsecret's `secret-tool`."""
    if which("keyring"):
        return ("keyring", "get", "tuimail", address)
    if which("secret-tool"):
        return ("secret-tool", "lookup", "service", "tuimail", "account", address)
    return None


def keyring(address: str, which: Callable[[str], str | None] = shutil.which) -> Password | None:
    argv = keyring_command(address, which)
    return Password("keyring", argv) if argv else None


def account_name(address: Address, taken: set[str] | frozenset[str] = frozenset()) -> str:
    """A name for [accounts.NAME] from the domain: "example" for alice@example.org, then
    "example-2" ... when taken."""
    labels = address.domain.split(".")
    base = labels[-2] if len(labels) >= 2 else labels[0]
    base = re.sub(r"[^A-Za-z0-9_-]", "-", base).strip("-") or "mail"
    name, n = base, 1
    while name in taken:
        n += 1
        name = f"{base}-{n}"
    return name


def _sender(display_name: str, address: str) -> str:
    """`Name <address>`, the name quoted when it holds specials (kept as typed: no RFC 2047)."""
    name = " ".join(display_name.split())
    if not name:
        return address
    if re.search(r'[()<>@,;:\\".\[\]]', name):
        name = '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return f"{name} <{address}>"


def _key(name: str) -> str:
    return name if _BARE_KEY.fullmatch(name) else toml_string(name)


def _argv(argv: tuple[str, ...]) -> str:
    return "[" + ", ".join(toml_string(a) for a in argv) + "]"


def _comment(text: str) -> str:
    return "".join(c if c.isprintable() else "?" for c in text)


def render_account(name: str, address: Address, incoming: Candidate, username: str, password: Password,
                   *, display_name: str = "", outgoing: Candidate | None = None,
                   smtp_username: str | None = None, caps: frozenset[str] | None = None,
                   today: date | None = None) -> str:
    """The [accounts.NAME] block (and its .smtp table when an outgoing server is given), with
    comments saying what was found where; ends with a newline. `caps`: the capabilities read
    after login (LoginCheck.caps), else the probe's are shown."""
    if not ACCOUNT_NAME_RE.fullmatch(name):
        raise ConfigError(f'invalid account name {name!r}: use only letters, digits, "_", "." and "-"')
    if incoming.protocol not in ("imap", "pop3", "jmap"):
        raise ConfigError(f"not an incoming server: {incoming.protocol}")
    if incoming.protocol == "jmap" and not incoming.url:
        raise ConfigError("a JMAP server without its session URL")
    day = (today or date.today()).isoformat()
    lines = [f"# {_comment(address.text)}: added by `tuimail setup` on {day}"]
    if incoming.origin == "entered by hand":
        lines.append(f"# {_comment(describe(incoming))}: entered by hand")
    else:
        lines.append(f"# found: {_comment(describe(incoming))} from {_comment(incoming.origin)}")
    if caps:
        lines.append(f"#   it offers: {_comment(features(caps))}")
    elif incoming.probe is not None and incoming.probe.ok:
        lines.append(f"#   it offers: {_comment(features(incoming.probe))}")
    if incoming.note:
        lines.append(f"#   note: {_comment(incoming.note)}")
    lines.append(f"[accounts.{_key(name)}]")
    lines.append(f"kind = {toml_string(incoming.protocol)}")
    if incoming.protocol == "jmap":
        lines.append(f"url = {toml_string(incoming.url)}   # the JMAP session (https; http only for loopback)")
    else:
        lines.append(f"host = {toml_string(incoming.host)}")
        lines.append(f"port = {incoming.port}")
        lines.append(f"security = {toml_string(incoming.security):<15}# tls | starttls | none (none only for"
                     " loopback)")
    lines.append(f"username = {toml_string(username)}")
    lines += _password_lines(password, "")
    sender = _sender(display_name, address.text)
    lines.append(f"from = {toml_string(sender)}")
    if outgoing is not None:
        if outgoing.protocol != "smtp":
            raise ConfigError(f"not an outgoing server: {outgoing.protocol}")
        lines.append("")
        lines.append(f"# sending: {_comment(describe(outgoing))} from {_comment(outgoing.origin)}")
        if outgoing.note:
            lines.append(f"#   note: {_comment(outgoing.note)}")
        lines.append(f"[accounts.{_key(name)}.smtp]")
        lines.append(f"host = {toml_string(outgoing.host)}")
        lines.append(f"port = {outgoing.port}")
        lines.append(f"security = {toml_string(outgoing.security)}")
        lines.append(f"username = {toml_string(smtp_username or username)}")
        lines += _password_lines(password, "smtp.")
    return "\n".join(lines) + "\n"


def _password_lines(password: Password, where: str) -> list[str]:
    if password.source in ("command", "keyring"):
        why = "  # the system keyring" if password.source == "keyring" else ""
        return [f"password_command = {_argv(password.argv)}{why}"]
    if password.source == "config":
        if password.secret is None:
            raise ConfigError("no password to save")
        return [f"password = {toml_string(password.secret)}   # saved as asked; this file is 0600"]
    if where:
        return []  # the account's prompt covers sending too
    return ["# no password_command: tuimail asks for the password at start (kept in memory)"]


def write_account(path: Path | str, block: str) -> Path:
    """Append `block` to the config at `path`, or create it; returns the file written.
    ConfigError (one line) when the result would not be a valid config, or the account exists
    already: nothing is written then."""
    from tuimail.config.load import parse_config

    target = Path(path).expanduser()
    if target.is_symlink() or target.exists():
        target = target.resolve()
    shown = str(path)
    try:
        old = target.read_text(encoding="utf-8")
    except FileNotFoundError:
        old = None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{shown}: cannot read it: {getattr(exc, 'strerror', None) or exc}") from None
    before: set[str] = set()
    if old is not None and old.strip():
        try:
            before = set(parse_config(old, target).accounts)
        except ConfigError as exc:
            raise ConfigError(f"{exc} (fix that before adding an account)") from None
    new = block if not old else old.rstrip("\n") + "\n\n" + block
    try:
        after = parse_config(new, target)
    except ConfigError as exc:
        raise ConfigError(f"{shown}: the account was not added: {exc}") from None
    added = set(after.accounts) - before
    if len(after.accounts) != len(before) + 1 or not added:
        raise ConfigError(f"{shown}: the account was not added (is its name taken already?)")
    try:
        target.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError(f"{shown}: cannot create its directory: {exc.strerror or exc}") from None
    return replace_private(target, new, f"{shown}: cannot write it")
