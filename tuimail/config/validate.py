"""Validating a parsed config.toml into the model (config_model.py). Every problem is one
ConfigError line naming the file and the key; secrets are never echoed."""

from __future__ import annotations

import difflib
import ipaddress
import json
import math
import re
import shlex
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from tuimail.backends.registry import implemented_kinds
from tuimail.config.model import (
    ACCOUNT_KEYS,
    CHECK_INTERVAL,
    CREDENTIAL_KEYS,
    KEYMAPS,
    KINDS,
    MAILCAP_KEYS,
    POP3_KEYS,
    POP3_MODES,
    PREVIEWS,
    ROLES,
    SECURITIES,
    SERVE_KEYS,
    SERVE_LOGIN_KEYS,
    SMTP_KEYS,
    SMTP_PORTS,
    SORTS,
    UNDO_SEND,
    SYNC_MODES,
    TOP_KEYS,
    UI_KEYS,
    Account,
    Config,
    PasswordHash,
    ServeConfig,
    UIConfig,
    _show,
    default_port,
)
from tuimail.errors import ConfigError
from tuimail.paths import ACCOUNT_NAME_RE

_BARE_KEY = re.compile(r"[A-Za-z0-9_-]+")


def _join(prefix: str, key: str) -> str:
    part = key if _BARE_KEY.fullmatch(key) else json.dumps(key)
    return f"{prefix}.{part}" if prefix else part


def _is_loopback(host: str) -> bool:
    h = host.lower().rstrip(".")
    if h == "localhost":
        return True
    if h.startswith("[") and h.endswith("]"):
        h = h[1:-1]
    try:
        ip = ipaddress.ip_address(h)
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_loopback


class _Validator:
    def __init__(self, shown: str, base: Path):
        self.shown = shown
        self.base = base

    def error(self, key: str, msg: str) -> ConfigError:
        return ConfigError(f"{self.shown}: {key}: {msg}" if key else f"{self.shown}: {msg}")

    # -- generic checks --

    def known_keys(self, prefix: str, table: Mapping[str, Any], allowed: Sequence[str]) -> None:
        for key in table:
            if key in allowed:
                continue
            guess = difflib.get_close_matches(key, allowed, n=1)
            if guess:
                hint = f" (did you mean {json.dumps(guess[0])}?)"
            elif len(allowed) <= 8:
                hint = f" (expected one of: {', '.join(allowed)})"
            else:
                hint = ""
            raise self.error(_join(prefix, key), f"unknown key{hint}")

    def table(self, key: str, value: Any) -> Mapping[str, Any]:
        if not isinstance(value, Mapping):
            raise self.error(key, f"expected a table, got {_show(value)}")
        return value

    def string(self, key: str, value: Any, *, empty_ok: bool = False, secret: bool = False) -> str:
        if not isinstance(value, str):
            raise self.error(key, f"expected a string, got {_show(value, secret)}")
        if not value and not empty_ok:
            raise self.error(key, "must not be empty")
        return value

    def boolean(self, key: str, value: Any) -> bool:
        if not isinstance(value, bool):
            raise self.error(key, f"expected true or false, got {_show(value)}")
        return value

    def port(self, key: str, value: Any) -> int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise self.error(key, f"expected an integer, got {_show(value)}")
        if not 1 <= value <= 65535:
            raise self.error(key, f"expected a port number from 1 to 65535, got {value}")
        return value

    def choice(self, key: str, value: Any, choices: Sequence[str]) -> str:
        quoted = [json.dumps(c) for c in choices]
        options = ", ".join(quoted[:-1]) + " or " + quoted[-1] if len(quoted) > 1 else quoted[0]
        if not isinstance(value, str) or value not in choices:
            raise self.error(key, f"expected {options}, got {_show(value)}")
        return value

    def string_list(self, key: str, value: Any) -> tuple[str, ...]:
        if not isinstance(value, list):
            raise self.error(key, f"expected a list of strings, got {_show(value)}")
        return tuple(self.string(f"{key}[{i}]", item) for i, item in enumerate(value))

    def command(self, key: str, value: Any) -> tuple[str, ...]:
        """A command as a list of arguments, or a string split like a shell would (no shell runs)."""
        if isinstance(value, str):
            try:
                argv = tuple(shlex.split(value))
            except ValueError as e:
                raise self.error(key, f"cannot split the command: {e}") from None
        elif isinstance(value, list):
            argv = self.string_list(key, value)
        else:
            raise self.error(key, f"expected a command (a string or a list of strings), got {_show(value)}")
        if not argv or not argv[0]:
            raise self.error(key, "the command is empty")
        return argv

    def file_path(self, key: str, value: Any, *, must_exist: bool) -> Path:
        raw = self.string(key, value)
        p = Path(raw).expanduser()
        if not p.is_absolute():
            p = self.base / p  # relative to the config file's directory
        if must_exist and not p.is_file():
            what = "is not a file" if p.exists() else "does not exist"
            raise self.error(key, f"{_show(str(p))} {what}")
        return p

    # -- sections --

    def config(self, doc: Mapping[str, Any], file: Path) -> Config:
        self.known_keys("", doc, TOP_KEYS)
        if "accounts" not in doc:
            raise self.error("accounts", "no account configured: add an [accounts.NAME] table")
        accounts_t = self.table("accounts", doc["accounts"])
        if not accounts_t:
            raise self.error("accounts", "no account configured: add an [accounts.NAME] table")
        accounts: dict[str, Account] = {}
        for name, value in accounts_t.items():
            accounts[name] = self.account(name, value)
        ui = self.ui(doc["ui"]) if "ui" in doc else UIConfig()
        keys = self.keys(doc["keys"], ui.keymap) if "keys" in doc else {}
        mailcap_path = None
        if "mailcap" in doc:
            mailcap = self.table("mailcap", doc["mailcap"])
            self.known_keys("mailcap", mailcap, MAILCAP_KEYS)
            if "path" in mailcap:
                mailcap_path = self.file_path("mailcap.path", mailcap["path"], must_exist=True)
        serve = self.serve(doc["serve"]) if "serve" in doc else ServeConfig()
        aliases = self.aliases(doc["aliases"]) if "aliases" in doc else {}
        searches = self.searches(doc["searches"]) if "searches" in doc else {}
        return Config(accounts=accounts, ui=ui, keys=keys, path=file, mailcap_path=mailcap_path, serve=serve,
                      aliases=aliases, searches=searches)

    def aliases(self, value: Any) -> dict[str, str]:
        """[aliases]: name = "Full Name <addr>" (or a list of them): offered when recipients are
        typed. Each must hold at least one address (an @)."""
        from tuimail.mail.addresses import parse_addresses
        out: dict[str, str] = {}
        for name, v in self.table("aliases", value).items():
            key = f"aliases.{name}"
            items = self.string_list(key, v) if isinstance(v, list) else (self.string(key, v),)
            text = ", ".join(" ".join(i.split()) for i in items)
            found = parse_addresses(text)
            if not found or not all("@" in a for _n, a in found):
                raise self.error(key, f'expected addresses like "Full Name <name@example.org>", got {_show(text)}')
            out[name] = text
        return out

    def searches(self, value: Any) -> dict[str, str]:
        """[searches]: name = pattern (core/pattern.py), each parsed here: a bad one is one line
        naming its key and the token at fault."""
        from tuimail.core.pattern import PatternError, parse

        t = self.table("searches", value)
        out: dict[str, str] = {}
        for name, v in t.items():
            key = _join("searches", name)
            text = self.string(key, v).strip()
            if not text:
                raise self.error(key, "must not be empty")
            try:
                parse(text)
            except PatternError as exc:
                raise self.error(key, str(exc)) from None
            out[name] = text
        return out

    def serve(self, value: Any) -> ServeConfig:
        """[serve]: where `tuimail serve` listens, its TLS files and its login. Whether a non-loopback
        host has TLS and a login is checked when it starts (the command line may add them)."""
        t = self.table("serve", value)
        self.known_keys("serve", t, SERVE_KEYS)
        d = ServeConfig()
        host = self.host("serve.host", t["host"]) if "host" in t else d.host
        port = self.port("serve.port", t["port"]) if "port" in t else d.port
        cert = self.file_path("serve.cert", t["cert"], must_exist=True) if "cert" in t else None
        key = self.file_path("serve.key", t["key"], must_exist=True) if "key" in t else None
        if (cert is None) != (key is None):
            raise self.error("serve", "set both cert and key (a PEM certificate and its private key), or neither")
        given = [k for k in SERVE_LOGIN_KEYS if k in t]
        if len(given) > 1:
            raise self.error("serve", f"set only one of {', '.join(given)}")
        password_hash = None
        if "password_hash" in t:
            password_hash = self.string("serve.password_hash", t["password_hash"], secret=True)
            try:
                PasswordHash.parse(password_hash)
            except ValueError as e:
                raise self.error("serve.password_hash", str(e)) from None
        token_command = self.command("serve.token_command", t["token_command"]) if "token_command" in t else None
        return ServeConfig(host=host, port=port, cert=cert, key=key, password_hash=password_hash,
                           token_command=token_command)

    def account(self, name: str, value: Any) -> Account:
        prefix = _join("accounts", name)
        if not ACCOUNT_NAME_RE.fullmatch(name):
            raise self.error(
                prefix, 'invalid account name: use only letters, digits, "_", "." and "-"'
            )
        t = self.table(prefix, value)
        self.known_keys(prefix, t, ACCOUNT_KEYS)
        if "url" in t and t.get("kind") != "jmap":
            raise self.error(_join(prefix, "url"), 'only a JMAP account (kind = "jmap") has a url')

        def k(key: str) -> str:
            return _join(prefix, key)

        if "kind" not in t:
            raise self.error(k("kind"), "missing (required)")
        kind = self.choice(k("kind"), t["kind"], KINDS)
        if kind not in implemented_kinds():
            raise ConfigError(f"{self.shown}: {k('kind')} = {_show(kind)} is not available yet"
                              f" (this tuimail has: {', '.join(implemented_kinds())})")
        url = None
        if kind == "jmap":
            url, t = self.jmap(prefix, t)
        for required in ("host", "username"):
            if required not in t:
                raise self.error(k(required), "missing (required)")
        host = self.host(k("host"), t["host"])
        security = self.choice(k("security"), t.get("security", "tls"), SECURITIES)
        port = self.port(k("port"), t["port"]) if "port" in t else default_port(kind, security)
        username = self.string(k("username"), t["username"])

        password = None
        if "password" in t:
            password = self.string(k("password"), t["password"], empty_ok=True, secret=True)
        password_command = (
            self.command(k("password_command"), t["password_command"])
            if "password_command" in t else None
        )
        oauth2_token_command = (
            self.command(k("oauth2_token_command"), t["oauth2_token_command"])
            if "oauth2_token_command" in t else None
        )
        given = [c for c in CREDENTIAL_KEYS if c in t]
        if len(given) > 1:
            raise self.error(prefix, f"set only one of {', '.join(given)}")
        # None given: the app asks for the password (kept in memory); `tuimail sync` says which
        # keys to set.

        tls_ca_file = None
        if "tls_ca_file" in t:
            tls_ca_file = self.file_path(k("tls_ca_file"), t["tls_ca_file"], must_exist=True)
        tls_fingerprint = None
        if "tls_fingerprint" in t:
            tls_fingerprint = self.fingerprint(k("tls_fingerprint"), t["tls_fingerprint"])
        if security == "none":
            for key in ("tls_ca_file", "tls_fingerprint"):
                if key in t:
                    raise self.error(k(key), 'has no effect with security = "none"')

        sync_mode = self.choice(k("sync_mode"), t.get("sync_mode", "auto"), SYNC_MODES)
        allow_insecure = self.boolean(k("allow_insecure"), t.get("allow_insecure", False))
        idle = self.boolean(k("idle"), t.get("idle", True))
        timeout = self.seconds(k("timeout"), t["timeout"]) if "timeout" in t else Account.timeout
        check_interval = self.seconds(k("check_interval"), t.get("check_interval", CHECK_INTERVAL), minimum=1.0)
        from_address = self.address(k("from"), t["from"]) if "from" in t else None
        identities = tuple(self.address(f"{k('identities')}[{i}]", v)
                           for i, v in enumerate(self.list_of(k("identities"), t.get("identities", []))))
        undo_send = UNDO_SEND
        if "undo_send" in t:
            undo_send = self.undo_seconds(k("undo_send"), t["undo_send"])
        folders = self.string_list(k("folders"), t["folders"]) if "folders" in t else None

        pop3 = self.pop3(k, kind, t)

        roles: dict[str, str] = {}
        if "roles" in t:
            roles_t = self.table(k("roles"), t["roles"])
            self.known_keys(k("roles"), roles_t, ROLES)
            for role, folder in roles_t.items():
                roles[role] = self.string(_join(k("roles"), role), folder)

        smtp = self.smtp(k("smtp"), t["smtp"]) if "smtp" in t else {}

        if kind == "jmap" and security == "none" and not allow_insecure and not _is_loopback(host):
            raise self.error(k("url"), f"plain http would send the password unencrypted to {_show(host)}: "
                             "use https, or set allow_insecure = true")
        if security == "none" and not allow_insecure and not _is_loopback(host):
            raise self.error(
                k("security"),
                f'"none" would send the password unencrypted to {_show(host)}: '
                'use "tls" or "starttls", or set allow_insecure = true',
            )
        smtp_host = smtp.get("host", host)
        smtp_insecure = smtp.get("allow_insecure", allow_insecure)
        if smtp.get("security") == "none" and not smtp_insecure and not _is_loopback(smtp_host):
            raise self.error(
                _join(k("smtp"), "security"),
                f'"none" would send mail and the password unencrypted to {_show(smtp_host)}: '
                'use "tls" or "starttls", or set allow_insecure = true',
            )

        return Account(
            name=name, kind=kind, host=host, port=port, security=security, username=username,
            password=password, password_command=password_command,
            oauth2_token_command=oauth2_token_command, tls_ca_file=tls_ca_file,
            tls_fingerprint=tls_fingerprint, sync_mode=sync_mode, allow_insecure=allow_insecure,
            roles=roles, smtp=smtp, from_address=from_address, identities=identities, undo_send=undo_send,
            folders=folders, idle=idle,
            timeout=timeout,
            check_interval=check_interval, url=url,
            **pop3,
        )

    def jmap(self, prefix: str, t: Mapping[str, Any]) -> tuple[str | None, dict[str, Any]]:
        """A JMAP account: `url` (the session resource) or `host` (https://HOST/.well-known/jmap);
        the URL's scheme stands for `security` (http only to loopback, or with allow_insecure)."""
        for key in ("port", "security", "sync_mode", "idle"):
            if key in t:
                raise self.error(_join(prefix, key), "not used by a JMAP account (its url says where and how)")
        out = dict(t)
        url = None
        if "url" in t:
            url = self.string(_join(prefix, "url"), t["url"])
            import urllib.parse
            parts = urllib.parse.urlsplit(url)
            if parts.scheme not in ("http", "https") or not parts.hostname or any(
                    c.isspace() or ord(c) < 32 for c in url):
                raise self.error(_join(prefix, "url"), f"expected an http(s) URL of the JMAP session, got {_show(url)}")
            if "host" in t and t["host"] != parts.hostname:
                raise self.error(_join(prefix, "host"), "set url or host, not both")
            out["host"] = parts.hostname
            out["security"] = "tls" if parts.scheme == "https" else "none"
            if parts.port:
                out["port"] = parts.port
        elif "host" not in t:
            raise self.error(_join(prefix, "url"), "missing: set url (the JMAP session URL) or host (discovery"
                             " by https://HOST/.well-known/jmap)")
        return url, out

    def pop3(self, k, kind: str, t: Mapping[str, Any]) -> dict[str, Any]:
        """mode, keep_days, headers_first, delete_on_server: for kind = "pop3" only."""
        if kind != "pop3":
            for key in POP3_KEYS:
                if key in t:
                    raise self.error(k(key), 'is for POP3 accounts only (kind = "pop3")')
            return {}
        mode = self.choice(k("mode"), t.get("mode", "keep"), POP3_MODES)
        keep_days = None
        if "keep_days" in t:
            v = t["keep_days"]
            if isinstance(v, bool) or not isinstance(v, (int, float)) or math.isnan(v) or not 0 <= v <= 36500:
                raise self.error(k("keep_days"), f"expected a number of days from 0 to 36500, got {_show(v)}")
            keep_days = float(v)
        headers_first = self.boolean(k("headers_first"), t.get("headers_first", False))
        delete_on_server = self.boolean(k("delete_on_server"), t.get("delete_on_server", False))
        if mode == "delete":
            for key in ("keep_days", "delete_on_server"):
                if key in t:
                    raise self.error(k(key), 'has no effect with mode = "delete" (every message is deleted'
                                             ' from the server once stored)')
        return {"mode": mode, "keep_days": keep_days, "headers_first": headers_first,
                "delete_on_server": delete_on_server}

    def seconds(self, key: str, value: Any, minimum: float = 0.0) -> float:
        """A number of seconds above 0 (at least `minimum` when given) and at most an hour."""
        if isinstance(value, bool) or not isinstance(value, (int, float)) or math.isnan(value):
            raise self.error(key, f"expected a number of seconds, got {_show(value)}")
        if not 0 < value <= 3600:
            raise self.error(key, f"expected a number of seconds above 0 and at most 3600, got {_show(value)}")
        if value < minimum:
            raise self.error(key, f"at least {minimum:g} second(s), got {_show(value)}")
        return float(value)

    def host(self, key: str, value: Any) -> str:
        host = self.string(key, value)
        if any(c.isspace() or ord(c) < 32 or ord(c) == 127 for c in host):
            raise self.error(key, f"not a host name: {_show(host)}")
        return host

    def fingerprint(self, key: str, value: Any) -> str:
        raw = self.string(key, value)
        hexdigits = raw.replace(":", "").strip().lower()
        if not re.fullmatch(r"[0-9a-f]{64}", hexdigits):
            raise self.error(
                key, "expected the SHA-256 of the server certificate: 64 hex digits (colons allowed)"
            )
        return hexdigits

    def smtp(self, prefix: str, value: Any) -> dict[str, Any]:
        t = self.table(prefix, value)
        self.known_keys(prefix, t, SMTP_KEYS)
        out: dict[str, Any] = {}
        for key, v in t.items():
            kk = _join(prefix, key)
            if key == "host":
                out[key] = self.host(kk, v)
            elif key == "port":
                out[key] = self.port(kk, v)
            elif key == "security":
                out[key] = self.choice(kk, v, SECURITIES)
            elif key == "password":
                out[key] = self.string(kk, v, empty_ok=True, secret=True)
            elif key in ("password_command", "oauth2_token_command"):
                out[key] = self.command(kk, v)
            elif key == "tls_ca_file":
                out[key] = self.file_path(kk, v, must_exist=True)
            elif key == "tls_fingerprint":
                out[key] = self.fingerprint(kk, v)
            elif key in ("allow_insecure", "save_sent"):
                out[key] = self.boolean(kk, v)
            elif key == "timeout":
                out[key] = self.seconds(kk, v)
            elif key == "from":
                out[key] = self.address(kk, v)
            else:  # username; "" sends without AUTH (a local relay)
                out[key] = self.string(kk, v, empty_ok=True)
        given = [c for c in CREDENTIAL_KEYS if c in out]
        if len(given) > 1:
            raise self.error(prefix, f"set only one of {', '.join(given)}")
        if out.get("security") == "none":
            for key in ("tls_ca_file", "tls_fingerprint"):
                if key in out:
                    raise self.error(_join(prefix, key), 'has no effect with security = "none"')
        if "port" not in out:
            out["port"] = SMTP_PORTS[out.get("security", "starttls")]
        return out

    def list_of(self, key: str, value: Any) -> list[Any]:
        if not isinstance(value, list):
            raise self.error(key, f"expected a list, got {_show(value)}")
        return value

    def address(self, key: str, value: Any) -> str:
        """'Name <addr@example.org>' or 'addr@example.org': one address with a domain."""
        from tuimail.mail.addresses import parse_addresses
        text = self.string(key, value)
        if any(c in text for c in "\r\n\0"):
            raise self.error(key, "contains a line break or a NUL character")
        pairs = parse_addresses(text)
        if len(pairs) != 1 or "@" not in (pairs[0][1] or "") or not pairs[0][1].rpartition("@")[2]:
            raise self.error(key, f"expected one address like \"Ada <ada@example.org>\", got {_show(text)}")
        return text

    def undo_seconds(self, key: str, value: Any) -> float:
        if isinstance(value, bool) or not isinstance(value, (int, float)) or math.isnan(value):
            raise self.error(key, f"expected a number of seconds, got {_show(value)}")
        if not 0 <= value <= 300:
            raise self.error(key, f"expected a number of seconds from 0 to 300, got {_show(value)}")
        return float(value)

    def ui(self, value: Any) -> UIConfig:
        t = self.table("ui", value)
        self.known_keys("ui", t, UI_KEYS)
        d = UIConfig()
        delay = d.mark_read_delay
        if "mark_read_delay" in t:
            delay = self.delay("ui.mark_read_delay", t["mark_read_delay"])
        return UIConfig(
            theme=self.string("ui.theme", t.get("theme", d.theme)),
            mark_read_delay=delay,
            preview=self.choice("ui.preview", t.get("preview", d.preview), PREVIEWS),
            keymap=self.choice("ui.keymap", t.get("keymap", d.keymap), KEYMAPS),
            date_format=self.date_format("ui.date_format", t.get("date_format", d.date_format)),
            sort=self.choice("ui.sort", t.get("sort", d.sort), SORTS + tuple("reverse-" + s for s in SORTS)),
            prefer_html=self.boolean("ui.prefer_html", t.get("prefer_html", d.prefer_html)),
            threaded=self.boolean("ui.threaded", t.get("threaded", d.threaded)),
            bell_on_new_mail=self.boolean("ui.bell_on_new_mail", t.get("bell_on_new_mail", d.bell_on_new_mail)),
            title=self.boolean("ui.title", t.get("title", d.title)),
        )

    def date_format(self, key: str, value: Any) -> str:
        fmt = self.string(key, value, empty_ok=True)
        if any(ord(c) < 32 or ord(c) == 127 for c in fmt):
            raise self.error(key, "control characters in the format")
        try:
            out = time.strftime(fmt, time.gmtime(86400 * 12345))
        except ValueError as e:
            raise self.error(key, f"not a strftime format: {e}") from None
        if fmt and "%" not in fmt:
            raise self.error(key, 'no %-directive in the format (e.g. "%Y-%m-%d %H:%M")')
        if fmt and not out.strip():
            raise self.error(key, 'the format shows nothing (e.g. "%Y-%m-%d %H:%M")')
        return fmt

    def delay(self, key: str, value: Any) -> float | None:
        if value == "never":
            return None
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise self.error(key, f'expected a number of seconds or "never", got {_show(value)}')
        if math.isnan(value):
            raise self.error(key, f'expected a number of seconds or "never", got {_show(value)}')
        if value < 0 or math.isinf(value):
            return None
        return float(value)

    def keys(self, value: Any, preset: str = "default") -> dict[str, tuple[str, ...]]:
        from tuimail.config import keys as keytable  # the action table

        t = self.table("keys", value)
        out: dict[str, tuple[str, ...]] = {}
        names = list(keytable.BY_NAME)
        for action, v in t.items():
            kk = _join("keys", action)
            if action not in keytable.BY_NAME:
                guess = difflib.get_close_matches(action, names, n=1)
                hint = f" (did you mean {json.dumps(guess[0])}?)" if guess else " (`?` in tuimail lists them)"
                raise self.error(kk, f"unknown action{hint}")
            if isinstance(v, str):
                out[action] = (self.string(kk, v),)
            elif isinstance(v, list):
                out[action] = self.string_list(kk, v)
            else:
                raise self.error(kk, f"expected a key string or a list of key strings, got {_show(v)}")
        for key, a, b in keytable.conflicts(preset, out):
            mine, other = (a, b) if a in out else (b, a)
            scope = keytable.BY_NAME[other].scope
            raise self.error(_join("keys", mine), f"key {_show(key)} is also bound to {other} ({scope});"
                             f" unbind it there or choose another key")
        return out
