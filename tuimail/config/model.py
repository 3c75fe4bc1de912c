"""The configuration's model: what a valid config.toml becomes (accounts, UI options, keys), and
the names and choices the validator checks against (config_validate.py)."""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tuimail.errors import UsageError
from tuimail.store.store import ROLES, SORTS  # noqa: F401  (one definition each: the store's folder roles and orders)

KINDS = ("imap", "pop3", "jmap")
SECURITIES = ("tls", "starttls", "none")
SYNC_MODES = ("auto", "qresync", "condstore", "plain")
PREVIEWS = ("right", "below")
KEYMAPS = ("default", "mutt")

DEFAULT_PORTS = {
    ("imap", True): 993,
    ("imap", False): 143,
    ("pop3", True): 995,
    ("pop3", False): 110,
}


TOP_KEYS = ("accounts", "ui", "keys", "mailcap", "serve", "aliases", "searches")
ACCOUNT_KEYS = (
    "kind", "host", "port", "security", "username", "password", "password_command",
    "oauth2_token_command", "tls_ca_file", "tls_fingerprint", "sync_mode", "allow_insecure",
    "roles", "smtp", "from", "identities", "undo_send", "folders", "idle", "timeout", "check_interval",
    "url",
    "mode", "keep_days", "headers_first", "delete_on_server",
)
POP3_KEYS = ("mode", "keep_days", "headers_first", "delete_on_server")  # kind = "pop3" only
POP3_MODES = ("keep", "delete")
SMTP_KEYS = ("host", "port", "security", "username", "password", "password_command", "oauth2_token_command",
             "tls_ca_file", "tls_fingerprint", "allow_insecure", "save_sent", "timeout", "from")
SMTP_PORTS = {"tls": 465, "starttls": 587, "none": 25}  # submissions, submission, plain SMTP
UNDO_SEND = 5.0  # seconds a sent message waits in the outbox so that it can be taken back
UI_KEYS = ("theme", "mark_read_delay", "preview", "keymap", "date_format", "sort", "prefer_html", "threaded",
           "bell_on_new_mail", "title")
CHECK_INTERVAL = 60.0  # seconds between checks of the other folders (accounts.NAME.check_interval)
MAILCAP_KEYS = ("path",)
CREDENTIAL_KEYS = ("password", "password_command", "oauth2_token_command")
SERVE_KEYS = ("host", "port", "cert", "key", "password_hash", "token_command")
SERVE_LOGIN_KEYS = ("password_hash", "token_command")
SERVE_HOST = "127.0.0.1"
SERVE_PORT = 8000


def default_port(kind: str, security: str) -> int:
    """993/143 for IMAP, 995/110 for POP3: implicit TLS or not (JMAP: 443/80, from its URL)."""
    if kind == "jmap":
        return 443 if security == "tls" else 80
    return DEFAULT_PORTS[(kind, security == "tls")]


@dataclass(frozen=True)
class Account:
    name: str
    kind: str  # "imap" | "pop3"
    host: str
    port: int
    security: str  # "tls" | "starttls" | "none"
    username: str
    password: str | None = field(default=None, repr=False)
    password_command: tuple[str, ...] | None = None
    oauth2_token_command: tuple[str, ...] | None = None  # set => authenticate with XOAUTH2
    tls_ca_file: Path | None = None
    tls_fingerprint: str | None = None  # sha256 of the server cert: 64 lower-case hex digits
    sync_mode: str = "auto"  # "auto" | "qresync" | "condstore" | "plain"
    allow_insecure: bool = False
    roles: dict[str, str] = field(default_factory=dict)  # role -> folder name
    # [accounts.NAME.smtp] as in the file (SMTP_KEYS); may hold a password, hence not in repr.
    # password_command / oauth2_token_command are normalised to tuples like the account's,
    # tls_ca_file to a Path. What is not set comes from the account (host, username, the
    # credentials, allow_insecure) or the defaults (starttls, SMTP_PORTS, save_sent = true):
    # backends/send.py smtp_settings().
    smtp: dict[str, Any] = field(default_factory=dict, repr=False)
    from_address: str | None = None
    identities: tuple[str, ...] = ()  # other addresses the user sends from ("Name <addr>" each)
    undo_send: float = UNDO_SEND  # seconds; 0: sent at once
    folders: tuple[str, ...] | None = None  # None = sync every folder
    idle: bool = True
    # Seconds for connecting and logging in, and for each command's answer (not the IDLE wait).
    timeout: float = 30.0
    check_interval: float = CHECK_INTERVAL  # seconds between checks of folders IDLE does not watch
    # JMAP: the session resource's URL (`url`), else https://host/.well-known/jmap (discovery)
    url: str | None = None
    # kind = "pop3" (folders: the local folders besides INBOX). mode "keep": the mail stays on the
    # server (keep_days N: deleted there N days after download); "delete": deleted there once stored.
    mode: str = "keep"
    keep_days: float | None = None
    headers_first: bool = False  # list new mail from TOP n 0 first, bodies after (or when opened)
    delete_on_server: bool = False  # keep mode: a message deleted here is deleted on the server too


@dataclass(frozen=True)
class UIConfig:
    theme: str = "dark"
    # Seconds before an opened message is marked read; None = never (the file says "never" or a
    # negative number).
    mark_read_delay: float | None = 0.0
    preview: str = "right"  # "right" | "below"
    keymap: str = "default"  # "default" | "mutt"
    date_format: str = ""  # strftime format; "": relative (14:05, Mar 05, 2023-03-05)
    sort: str = "date"  # one of SORTS, or "reverse-" + one of them
    prefer_html: bool = False
    threaded: bool = False
    bell_on_new_mail: bool = False  # ring the terminal bell when new mail arrives
    title: bool = True  # the terminal title shows the unread count / new mail


@dataclass(frozen=True)
class ServeConfig:
    """[serve]: `tuimail serve`, the app in a browser (tuimail/serve/)."""
    host: str = SERVE_HOST  # a non-loopback address needs cert + key and a login
    port: int = SERVE_PORT
    cert: Path | None = None  # PEM certificate chain; with key: HTTPS
    key: Path | None = None
    password_hash: str | None = field(default=None, repr=False)  # "scrypt$N$r$p$salt$hash" (PasswordHash)
    token_command: tuple[str, ...] | None = None  # its first line of output is the login token


@dataclass(frozen=True)
class PasswordHash:
    """A login password as `tuimail serve --hash-password` prints it: "scrypt$N$r$p$SALT$HASH", SALT
    and HASH in unpadded URL-safe base64 (hashlib.scrypt's n, r, p)."""
    n: int
    r: int
    p: int
    salt: bytes
    digest: bytes = field(repr=False)

    PREFIX = "scrypt"

    @classmethod
    def parse(cls, text: str) -> PasswordHash:
        """ValueError (a short reason, never the hash) when `text` is not one."""
        parts = text.split("$")
        if len(parts) != 6 or parts[0] != cls.PREFIX:
            raise ValueError('expected "scrypt$N$r$p$salt$hash" as `tuimail serve --hash-password` prints it')
        try:
            n, r, p = (int(x) for x in parts[1:4])
        except ValueError:
            raise ValueError("N, r and p must be integers") from None
        if n < 2 ** 14 or n > 2 ** 20 or n & (n - 1):
            raise ValueError("N must be a power of 2 from 16384 to 1048576")
        if not 1 <= r <= 32 or not 1 <= p <= 16:
            raise ValueError("r must be from 1 to 32 and p from 1 to 16")
        try:
            salt, digest = (base64.urlsafe_b64decode(x + "=" * (-len(x) % 4)) for x in parts[4:6])
        except (binascii.Error, ValueError):
            raise ValueError("the salt and the hash must be base64") from None
        if len(salt) < 16 or len(digest) < 32:
            raise ValueError("the salt or the hash is too short (16 and 32 bytes at least)")
        return cls(n, r, p, salt, digest)

    def text(self) -> str:
        def b64(b: bytes) -> str:
            return base64.urlsafe_b64encode(b).decode().rstrip("=")
        return f"{self.PREFIX}${self.n}${self.r}${self.p}${b64(self.salt)}${b64(self.digest)}"


@dataclass(frozen=True)
class Config:
    accounts: dict[str, Account]  # in file order
    ui: UIConfig = field(default_factory=UIConfig)
    keys: dict[str, tuple[str, ...]] = field(default_factory=dict)  # action -> key strings
    path: Path | None = None  # the file it was read from (None if built in code, e.g. the demo)
    mailcap_path: Path | None = None  # [mailcap] path
    serve: ServeConfig = field(default_factory=ServeConfig)  # [serve]
    aliases: dict[str, str] = field(default_factory=dict)  # [aliases] name -> "Name <addr>, ..." (completion)
    searches: dict[str, str] = field(default_factory=dict)  # [searches]: name -> pattern (in file order)

    def account(self, name: str | None = None) -> Account:
        if name is None:
            if len(self.accounts) == 1:
                return next(iter(self.accounts.values()))
            if not self.accounts:
                raise UsageError("no accounts configured")
            names = ", ".join(self.accounts)
            raise UsageError(f"several accounts configured ({names}): choose one with --account")
        try:
            return self.accounts[name]
        except KeyError:
            names = ", ".join(self.accounts) or "none"
            raise UsageError(f"unknown account {_show(name)} (configured: {names})") from None


def _show(value: Any, secret: bool = False) -> str:
    """A value as it would look in TOML, short and on one line."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, Mapping):
        return "a table"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, str):
        if secret:
            return "a string"
        if len(value) > 40:
            value = value[:40] + "..."
        return json.dumps(value)  # ASCII only: escapes control and bidi characters
    if secret:
        return "an integer" if isinstance(value, int) else "a " + type(value).__name__
    if isinstance(value, (int, float)):
        return repr(value)
    return "a date/time"  # the remaining TOML types
