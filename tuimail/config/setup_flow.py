"""`tuimail setup` (issue 16): from an e-mail address to a checked [accounts.NAME] block in the
config file, asking only what it must. The steps, each usable on its own (the TUI's first-run
screen, ui/screens/setup.py, calls `find`, `check_logins` and `save` from a worker thread):

1. the address and a display name;
2. `find`: discovery (config/discover), each step reported as it happens -- or the server the
   user named (--host/--port/--security), probed like a discovered one;
3. the servers found (kind, host, port, security, IDLE/QRESYNC) shown, and changed if the user
   wants;
4. where the password comes from: a command (`pass show mail/x`), the system keyring (when the
   `keyring` package is importable), or typed -- at each start (never written) or saved in the
   file when asked;
5. `check_logins`: the login checked on the incoming server (the user name tried as the full
   address, then its local part, unless --username or autoconfig says) and SMTP AUTH on the
   outgoing one, before anything is written;
6. `save`: the commented block appended to the config (created 0600 when missing).

Questions and output go through a `Terminal` (input/getpass/print by default; tests script it).
Errors are TuimailErrors with one line: UsageError/ConfigError exit 2, NetworkError/AuthError 3.
"""

from __future__ import annotations

import getpass
import shlex
import shutil
import sys
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Protocol

from tuimail.config.discover import (
    Address,
    Candidate,
    Connector,
    Discovery,
    Fetcher,
    LoginCheck,
    Password,
    Resolver,
    Step,
    account_name,
    check_server,
    describe,
    discover,
    features,
    jmap_server,
    parse_address,
    render_account,
    tcp_connect,
    verify,
    write_account,
)
from tuimail.config.discover.net import TlsContext, default_tls
from tuimail.config.discover.verify import usernames
from tuimail.config.model import default_port
from tuimail.errors import AuthError, ConfigError, NetworkError, TuimailError, UsageError
from tuimail.mail.sanitize import sanitize_line
from tuimail.paths import default_config_path

KINDS = ("imap", "pop3", "jmap")  # the account kinds setup offers (backends/registry.py has them all)
MARKS = {"start": "…", "found": "✓", "none": "-", "error": "✗", "skipped": "·", "refused": "✗"}
KEYRING_SERVICE = "tuimail"
TRIES = 3  # typed passwords per run before giving up


class Terminal(Protocol):
    def say(self, text: str) -> None: ...

    def ask(self, prompt: str, default: str = "") -> str: ...

    def secret(self, prompt: str) -> str: ...


class StdTerminal:
    """stdin/stdout; the password through getpass (not echoed)."""

    def say(self, text: str) -> None:
        print(text, flush=True)

    def ask(self, prompt: str, default: str = "") -> str:
        shown = f"{prompt} [{default}]: " if default else f"{prompt}: "
        try:
            got = input(shown).strip()
        except EOFError:
            raise UsageError("setup: no answer (end of input); use --yes with the options for scripts") from None
        return got or default

    def secret(self, prompt: str) -> str:
        try:
            return getpass.getpass(f"{prompt}: ")
        except EOFError:
            raise UsageError("setup: no password given (end of input)") from None


@dataclass
class Seams:
    """What discovery and the login checks use to reach the network (tests map names to loopback
    ports and serve autoconfig locally), and the keyring module (None: not importable)."""

    resolver: Resolver | None = None
    fetch: Fetcher | None = None
    connector: Connector = tcp_connect
    tls: TlsContext = default_tls
    timeout: float = 10.0
    keyring_module: Keyring | None = field(default_factory=lambda: _import_keyring())


class Keyring(Protocol):
    """What setup uses of python-keyring (the module, or a test's stand-in)."""

    def set_password(self, service: str, username: str, password: str, /) -> None: ...


def _import_keyring() -> Keyring | None:
    try:
        import keyring as module  # optional: the system keyring
    except Exception:  # not installed, or no usable backend
        return None
    return module


@dataclass
class Options:
    """`tuimail setup`'s flags; None: ask (or discover)."""

    email: str | None = None
    name: str | None = None
    username: str | None = None
    kind: str | None = None
    host: str | None = None
    port: str | None = None
    security: str | None = None
    smtp_host: str | None = None
    smtp_port: str | None = None
    smtp_security: str | None = None
    password_command: str | None = None
    save_password: bool = False
    yes: bool = False
    config: Path | None = None


@dataclass
class Found:
    incoming: Candidate | None
    outgoing: Candidate | None
    discovery: Discovery | None = None
    other: Candidate | None = None  # the JMAP session found beside an IMAP/POP3 server (offered)


@dataclass
class Checked:
    incoming: LoginCheck
    outgoing: LoginCheck | None  # None: no outgoing server


@dataclass
class Written:
    path: Path
    account: str
    block: str


# -- the steps, for the CLI and the TUI --------------------------------------------------------

def step_line(step: Step) -> str:
    return f"  {MARKS.get(step.outcome, ' ')} {step.text}"


def find(address: Address, seams: Seams, report: Callable[[Step], None] | None = None, *,
         kind: str | None = None, security: str | None = None) -> Found:
    """Discover the servers of `address`; `kind` ("imap"/"pop3"/"jmap") and `security` narrow
    the incoming one. Without a kind, IMAP then POP3 is chosen and a JMAP session found beside
    them is offered (`Found.other`); JMAP is chosen when it is all there is. With kind "jmap"
    every step runs (SRV and .well-known/jmap are skipped otherwise when autoconfig was enough)."""
    found = discover(address.text, report=report, resolver=seams.resolver, fetch=seams.fetch,
                     connector=seams.connector, tls=seams.tls, timeout=seams.timeout, thorough=kind == "jmap")
    jmap = [c for c in found.jmap_candidates if security is None or c.security == security]
    if kind == "jmap":
        return Found(jmap[0] if jmap else None, found.outgoing, found)
    best = [c for c in found.working((kind,) if kind else ("imap", "pop3"))
            if security is None or c.security == security]
    if best:
        return Found(best[0], found.outgoing, found, other=jmap[0] if jmap and kind is None else None)
    if kind is None and jmap:
        return Found(jmap[0], found.outgoing, found)
    return Found(None, found.outgoing, found)


def manual(protocol: str, host: str, port: str | None, security: str | None, seams: Seams) -> Candidate:
    """A server the user named, probed (JMAP: its session URL, checked at login); UsageError for
    bad values."""
    if protocol == "jmap":
        return jmap_server(host, port, security)
    security = security or "tls"
    if protocol not in ("imap", "pop3", "smtp"):
        raise UsageError(f"unknown account kind {protocol!r} (imap, pop3 or jmap)")
    if security not in ("tls", "starttls", "none"):
        raise UsageError(f"unknown security {security!r} (tls, starttls or none)")
    if not port:
        port = str({"imap": default_port("imap", security), "pop3": default_port("pop3", security),
                    "smtp": 465 if security == "tls" else 587}[protocol])
    return check_server(protocol, host, port, security, connector=seams.connector, tls=seams.tls,
                        timeout=seams.timeout)


def server_line(c: Candidate | None, caps: frozenset[str] | None = None) -> str:
    if c is None:
        return "none"
    what = describe(c)
    if caps:
        return f"{what}: {features(caps)}"
    if c.probe is not None and c.probe.ok:
        return f"{what}: {features(c.probe)}"
    if c.probe is not None:
        return f"{what}: {c.probe.error}"
    return what


def check_logins(address: Address, found: Found, password: str, seams: Seams, *,
                 username: str | None = None) -> Checked:
    """The login on the incoming server, then SMTP AUTH on the outgoing one (with the user name
    that worked first)."""
    assert found.incoming is not None
    kw = _verify_kw(found.incoming, seams)
    incoming = verify(found.incoming, password, address, username=username, **kw)
    if not incoming.ok or found.outgoing is None:
        return Checked(incoming, None)
    out = found.outgoing
    smtp_user = username or out.username or incoming.username
    outgoing = verify(out, password, address, username=smtp_user, **_verify_kw(out, seams))
    if outgoing.outcome == "refused" and not username and not out.username:
        tried = list(outgoing.tried)
        for other in usernames(address, out):  # the other user names, each once
            if other in tried:
                continue
            again = verify(out, password, address, username=other, **_verify_kw(out, seams))
            tried.append(other)
            outgoing = replace(again, tried=tuple(tried))
            if again.outcome != "refused":
                break
    return Checked(incoming, outgoing)


def _verify_kw(c: Candidate, seams: Seams) -> dict:
    kw: dict = {"timeout": max(seams.timeout, 10.0)}
    if c.protocol == "jmap":
        return kw  # JMAP's client opens its own http(s) connections (no connector seam)
    kw["connector"] = seams.connector
    kw["tls"] = seams.tls
    return kw


def taken_names(path: Path) -> set[str]:
    from tuimail.config.load import load_config
    if not path.exists():
        return set()
    return set(load_config(path).accounts)


def save(path: Path, address: Address, display_name: str, found: Found, checked: Checked,
         password: Password) -> Written:
    """Append the account to the config at `path` (created 0600 when missing)."""
    assert found.incoming is not None and checked.incoming.username is not None
    name = account_name(address, taken_names(path))
    out = found.outgoing
    smtp_user = None
    if out is not None and checked.outgoing is not None and checked.outgoing.username:
        smtp_user = checked.outgoing.username
    block = render_account(name, address, found.incoming, checked.incoming.username, password,
                           display_name=display_name, outgoing=out, smtp_username=smtp_user,
                           caps=checked.incoming.caps or None)
    written = write_account(path, block)
    return Written(written, name, block)


def keyring_password(address: Address, seams: Seams) -> Password | None:
    """The password_command reading the keyring (None: no keyring here)."""
    if seams.keyring_module is None:
        return None
    if shutil.which("keyring"):  # python-keyring's own command (the one that reads what it stored)
        return Password("keyring", ("keyring", "get", KEYRING_SERVICE, address.ascii))
    return Password("keyring", (sys.executable, "-m", "keyring", "get", KEYRING_SERVICE, address.ascii))


# -- the conversation ----------------------------------------------------------------------------

class Setup:
    def __init__(self, options: Options, term: Terminal | None = None, seams: Seams | None = None):
        self.o = options
        self.term = term or StdTerminal()
        self.seams = seams or Seams()
        self.path = Path(options.config).expanduser() if options.config else default_config_path()

    def say(self, text: str) -> None:
        self.term.say(text)

    def run(self) -> Written:
        o = self.o
        if o.yes and not o.email:
            raise UsageError("setup --yes needs --email ADDRESS")
        if o.yes and not o.password_command:
            raise UsageError("setup --yes needs --password-command CMD (the login is checked before anything"
                             " is written)")
        if o.port is not None and o.host is None:
            raise UsageError("--port needs --host")
        self._check_existing()
        address = self._address()
        display = o.name if o.name is not None else ("" if o.yes else self.term.ask("Your name (for From:)", ""))
        found = self._servers(address)
        while True:
            if not o.yes:
                found = self._review(found)
            if found.incoming is None:
                raise NetworkError(f"no incoming server for {address.domain}: give it with --host (and --port,"
                                   " --security)")
            password, source = self._password(address)
            checked = check_logins(address, found, password, self.seams, username=o.username)
            problem = self._judge(checked, found)
            if problem is None:
                break
            if o.yes:
                raise problem
            if self.term.ask("Try again (another password or other servers)? [Y/n]", "y").lower().startswith("n"):
                raise problem
        if checked.outgoing is not None and checked.outgoing.outcome == "unsupported":
            self.say(f"  note: {checked.outgoing.message} (the login is not checked there)")
        if source.source == "keyring":
            self._store_in_keyring(address, password)
        written = save(self.path, address, display, found, checked, source)
        self.say(f"✓ account {written.account!r} written to {written.path} (0600)")
        where = "the password command" if source.source in ("command", "keyring") else (
            "the file" if source.source == "config" else "a prompt at each start (not written anywhere)")
        self.say(f"  the password comes from {where}; start tuimail with `tuimail`"
                 + (f" (or `tuimail --account {written.account}`)" if len(taken_names(written.path)) > 1 else ""))
        return written

    # -- pieces ----------------------------------------------------------------------------------

    def _check_existing(self) -> None:
        try:
            taken_names(self.path)
        except ConfigError as exc:
            raise ConfigError(f"{exc} (fix that before adding an account)") from None

    def _address(self) -> Address:
        if self.o.email is not None:
            return parse_address(self.o.email)
        while True:
            text = self.term.ask("E-mail address")
            try:
                return parse_address(text)
            except UsageError as exc:
                self.say(f"✗ {exc}")

    def _servers(self, address: Address) -> Found:
        o = self.o
        if o.kind is not None and o.kind not in KINDS:
            raise UsageError(f"--kind: unknown account kind {o.kind!r} (imap, pop3 or jmap)")
        outgoing = None
        if o.smtp_host:
            outgoing = manual("smtp", o.smtp_host, o.smtp_port, o.smtp_security, self.seams)
            self.say(f"  {'✓' if outgoing.probe and outgoing.probe.ok else '✗'} {server_line(outgoing)}")
        if o.host:
            c = manual(o.kind or "imap", o.host, o.port, o.security, self.seams)
            if c.protocol == "jmap":  # nothing to probe: the login check fetches the session
                self.say(f"  · {server_line(c)}")
                return Found(c, outgoing)
            self.say(f"  {'✓' if c.probe and c.probe.ok else '✗'} {server_line(c)}")
            if (c.probe is None or not c.probe.ok) and o.yes:
                raise NetworkError(f"{server_line(c)}")
            return Found(c, outgoing)
        self.say(f"Looking for the servers of {address.domain}:")
        found = find(address, self.seams, lambda s: self.say(step_line(s)), kind=o.kind, security=o.security)
        if outgoing is not None:
            found.outgoing = outgoing
        return found

    def _review(self, found: Found) -> Found:
        while True:
            self.say("Found:")
            self.say(f"  incoming: {server_line(found.incoming)}")
            self.say(f"  outgoing: {server_line(found.outgoing)}")
            if found.incoming is None:
                self.say("  no incoming server: enter it")
                found = self._edit(found)
                continue
            if found.other is not None:
                self.say(f"  also offered: {server_line(found.other)} (kind = \"{found.other.protocol}\")")
                answer = self.term.ask(f"Use these? [Y]es, [{found.other.protocol[0]}] use "
                                       f"{found.other.protocol.upper()} instead, [e]dit, [q]uit", "y").lower()
                if answer[:1] == found.other.protocol[0]:
                    found = Found(found.other, found.outgoing, found.discovery, other=found.incoming)
                    continue
            else:
                answer = self.term.ask("Use these? [Y]es, [e]dit, [q]uit", "y").lower()
            if answer.startswith("q"):
                raise UsageError("setup cancelled; nothing written")
            if answer.startswith("e"):
                found = self._edit(found)
                continue
            return found

    def _edit(self, found: Found) -> Found:
        inc = found.incoming
        try:
            kind = self.term.ask("Incoming kind (imap, pop3, jmap)", inc.protocol if inc else "imap").lower()
            if kind == "jmap":
                url = self.term.ask("JMAP session URL or host", inc.url if inc and inc.url else "")
                new_in = manual("jmap", url, None, None, self.seams) if url else None
            else:
                host = self.term.ask("Incoming host", inc.host if inc and not inc.url else "")
                security = self.term.ask("Security (tls, starttls, none)", inc.security if inc else "tls").lower()
                port = self.term.ask("Port", str(inc.port) if inc and inc.host == host and inc.security == security
                                     else "")
                new_in = manual(kind, host, port or None, security, self.seams) if host else None
            out = found.outgoing
            shost = self.term.ask("Outgoing (SMTP) host, '-' for none", out.host if out else "-")
            new_out = None
            if shost and shost != "-":
                ssec = self.term.ask("Security (tls, starttls, none)", out.security if out else "starttls").lower()
                sport = self.term.ask("Port", str(out.port) if out and out.host == shost and out.security == ssec
                                      else "")
                new_out = manual("smtp", shost, sport or None, ssec, self.seams)
        except UsageError as exc:
            self.say(f"✗ {exc}")
            return found
        if self.o.username is None:
            user = self.term.ask("User name (empty: the address, then its local part)", "")
            self.o.username = user or None
        return Found(new_in, new_out, found.discovery)

    def _password(self, address: Address) -> tuple[str, Password]:
        o = self.o
        from tuimail.config.load import run_secret_command
        if o.password_command:
            try:
                argv = shlex.split(o.password_command)
            except ValueError as exc:
                raise UsageError(f"--password-command: {exc}") from None
            source = Password.command(argv) if argv else None
            if source is None:
                raise UsageError("--password-command: empty command")
            return run_secret_command(argv, "--password-command"), source
        ring = keyring_password(address, self.seams)
        self.say("Where does the password come from?")
        self.say("  1. a command that prints it (e.g. pass show mail/me)")
        if ring is not None:
            self.say("  2. the system keyring (typed once now, stored there)")
        else:
            self.say("  2. (the system keyring: not available here; install the Python package `keyring`)")
        self.say("  3. typed now, and asked again at each start (written nowhere)")
        self.say("  4. typed now and saved in the config file (0600)")
        while True:
            choice = self.term.ask("Choice", "3").strip()
            if choice == "1":
                text = self.term.ask("Command")
                try:
                    argv = shlex.split(text)
                    if not argv:
                        raise UsageError("an empty command")
                    return run_secret_command(argv, "the password command"), Password.command(argv)
                except (ValueError, TuimailError) as exc:
                    self.say(f"✗ {sanitize_line(str(exc))}")
                    continue
            if choice == "2" and ring is not None:
                return self._typed(), ring
            if choice in ("3", "4"):
                secret = self._typed()
                return secret, Password.typed(secret, save=choice == "4" or o.save_password)
            self.say("✗ choose 1, " + ("2, " if ring is not None else "") + "3 or 4")

    def _typed(self) -> str:
        for _ in range(TRIES):
            secret = self.term.secret("Password")
            if secret:
                return secret
            self.say("✗ empty password")
        raise UsageError("no password given")

    def _judge(self, checked: Checked, found: Found) -> TuimailError | None:
        inc = checked.incoming
        self.say(f"  {'✓' if inc.ok else '✗'} {inc.message}")
        if inc.ok:
            self.say(f"  incoming: {server_line(found.incoming, inc.caps)}")
        if not inc.ok:
            return AuthError(inc.message) if inc.outcome == "refused" else NetworkError(inc.message)
        out = checked.outgoing
        if out is None:
            if found.outgoing is None:
                self.say("  no outgoing server: mail can be read; add [accounts.NAME.smtp] to send")
            return None
        self.say(f"  {'✓' if out.ok else '·' if out.outcome == 'unsupported' else '✗'} {out.message}")
        if out.ok or out.outcome == "unsupported":
            return None
        return AuthError(out.message) if out.outcome == "refused" else NetworkError(out.message)

    def _store_in_keyring(self, address: Address, password: str) -> None:
        module = self.seams.keyring_module
        try:
            assert module is not None  # (the keyring is offered only where there is one)
            module.set_password(KEYRING_SERVICE, address.ascii, password)
        except Exception as exc:
            why = sanitize_line(str(exc)) or type(exc).__name__
            raise ConfigError(f"the system keyring refused the password: {why}") from None


def run_setup(options: Options, term: Terminal | None = None, seams: Seams | None = None) -> Written:
    return Setup(options, term, seams).run()


__all__ = ["Checked", "Found", "Options", "Seams", "Setup", "StdTerminal", "Terminal", "Written", "check_logins",
           "find", "keyring_password", "manual", "run_setup", "save", "server_line", "step_line"]
