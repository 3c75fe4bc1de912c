"""Starting `tuimail serve`: the address, TLS, the login, then the web server until Ctrl+C.

The rules (README "In a browser"):
- the default address is 127.0.0.1 ([serve] host, --host);
- any address that is not loopback needs TLS (--cert/--key or [serve] cert/key) and a login in the
  config ([serve] password_hash or token_command): without them it is refused in one line;
- on a loopback address without a configured login, a random token is drawn for this run and the
  URL that logs in with it is printed (as Jupyter does): other users of the machine cannot use it.
"""

from __future__ import annotations

import asyncio
import getpass
import shlex
import signal
import ssl
import sys
from dataclasses import dataclass
from pathlib import Path

from tuimail.config.load import run_secret_command
from tuimail.config.model import Config, ServeConfig
from tuimail.config.validate import _is_loopback
from tuimail.errors import ConfigError, UsageError
from tuimail.serve.auth import MIN_PASSWORD, MIN_TOKEN, Login, hash_password


@dataclass(frozen=True)
class ServeOptions:
    """The command line's: None = the config's (or the default)."""
    host: str | None = None
    port: int | None = None
    cert: str | None = None
    key: str | None = None
    account: str | None = None
    offline: bool = False


@dataclass(frozen=True)
class Plan:
    host: str
    port: int
    cert: Path | None
    key: Path | None
    loopback: bool
    command: list[str]


def plan(config: Config | None, options: ServeOptions) -> Plan:
    """Where to listen and what to run, or UsageError (one line) for an address the rules refuse."""
    s = config.serve if config is not None else ServeConfig()
    host = options.host if options.host is not None else s.host
    if not host or any(c.isspace() or ord(c) < 32 for c in host):
        raise UsageError(f"serve: not an address: {host!r}")
    port = options.port if options.port is not None else s.port
    if not 0 <= port <= 65535:
        raise UsageError(f"serve: --port {port}: expected 0 (any free port) to 65535")
    if (options.cert is None) != (options.key is None):
        raise UsageError("serve: give both --cert FILE and --key FILE")
    cert, key = s.cert, s.key
    if options.cert is not None and options.key is not None:
        cert, key = Path(options.cert).expanduser(), Path(options.key).expanduser()
        for flag, path in (("--cert", cert), ("--key", key)):
            if not path.is_file():
                raise UsageError(f"serve: {flag} {path}: {'not a file' if path.exists() else 'no such file'}")
    loopback = _is_loopback(host)
    if not loopback:
        if cert is None:
            raise UsageError(f"serve: {host} is not a loopback address: serving it needs TLS"
                             " (--cert FILE --key FILE, or cert and key in [serve])")
        if s.password_hash is None and s.token_command is None:
            raise UsageError(f"serve: {host} is not a loopback address: serving it needs a login in the config"
                             " ([serve] password_hash from `tuimail serve --hash-password`, or token_command)")
    argv = [sys.executable, "-m", "tuimail"]
    if config is not None and config.path is not None:
        argv += ["--config", str(Path(config.path).expanduser().absolute())]
    if options.account:
        argv += ["--account", options.account]
    if options.offline:
        argv.append("--offline")
    return Plan(host=host, port=port, cert=cert, key=key, loopback=loopback, command=argv)


def make_login(config: Config | None, loopback: bool) -> Login:
    s = config.serve if config is not None else ServeConfig()
    if s.password_hash is not None:
        return Login(password_hash=s.password_hash)
    if s.token_command is not None:
        token = run_secret_command(s.token_command, "serve.token_command")
        if len(token) < MIN_TOKEN:
            raise ConfigError(f"serve.token_command: the token is shorter than {MIN_TOKEN} characters")
        return Login(token=token)
    assert loopback  # plan() refused the rest
    return Login.random_token()


def tls_context(cert: Path, key: Path) -> ssl.SSLContext:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    try:
        ctx.load_cert_chain(cert, key)
    except ssl.SSLError as e:
        raise UsageError(f"serve: cannot use the certificate {cert} with the key {key}: {e.reason or e}") from None
    except OSError as e:
        raise UsageError(f"serve: cannot read the certificate or key: {e.strerror or e}") from None
    return ctx


def url(host: str, port: int, tls: bool) -> str:
    shown = f"[{host}]" if ":" in host and not host.startswith("[") else host
    return f"{'https' if tls else 'http'}://{shown}:{port}/"


def run_serve(config: Config | None, options: ServeOptions) -> int:
    p = plan(config, options)
    ctx = tls_context(p.cert, p.key) if p.cert is not None and p.key is not None else None
    login = make_login(config, p.loopback)
    try:
        return asyncio.run(_serve(p, login, ctx))
    except KeyboardInterrupt:
        return 0


async def _serve(p: Plan, login: Login, ctx: ssl.SSLContext | None) -> int:
    from aiohttp import web

    from tuimail.serve.web import ServeState, make_app

    state = ServeState(command=shlex.join(p.command), login=login, tls=ctx is not None, loopback=p.loopback)
    runner = web.AppRunner(make_app(state), access_log=None, handle_signals=False, shutdown_timeout=20)
    await runner.setup()
    site = web.TCPSite(runner, p.host, p.port, ssl_context=ctx, reuse_address=True)
    try:
        await site.start()
    except OSError as e:
        await runner.cleanup()
        raise UsageError(f"serve: cannot listen on {p.host} port {p.port}: {e.strerror or e}") from None
    port = p.port
    for address in runner.addresses:  # the port chosen for --port 0
        if isinstance(address, tuple) and len(address) >= 2:
            port = address[1]
            break
    base = url(p.host, port, ctx is not None)
    if login.drawn and login.token is not None:
        print(f"tuimail serve: {base}login?token={login.token}", flush=True)
    else:
        print(f"tuimail serve: {base} (log in with the {login.kind} of [serve])", flush=True)
    print("tuimail serve: Ctrl+C stops it", file=sys.stderr, flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        try:
            loop.add_signal_handler(sig, stop.set)
        except (NotImplementedError, RuntimeError):
            pass
    try:
        await stop.wait()
    finally:
        await runner.cleanup()
    print("tuimail serve: stopped", file=sys.stderr, flush=True)
    return 0


def hash_password_command() -> int:
    """`tuimail serve --hash-password`: read a password (without echo on a terminal; one line from
    stdin otherwise) and print the line to paste into [serve]."""
    if sys.stdin.isatty():
        password = getpass.getpass("Password for tuimail serve: ")
        if password != getpass.getpass("Again: "):
            raise UsageError("the two passwords differ")
    else:
        password = sys.stdin.readline().rstrip("\r\n")
    if len(password) < MIN_PASSWORD:
        raise UsageError(f"the password is too short: {MIN_PASSWORD} characters at least")
    print(f'password_hash = "{hash_password(password)}"')
    return 0
