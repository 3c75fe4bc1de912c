"""The web server of `tuimail serve`: aiohttp routes in front of textual-serve's AppService.

textual-serve's own Server has no login and builds its URLs from the bound address, so we keep only
its parts that run an app: AppService (one `python -m tuimail` subprocess per websocket, speaking
Textual's web-driver protocol over stdin/stdout), DownloadManager, and the page's JavaScript
(xterm.js) and fonts. Routes:

    GET  /login[?token=T]  the login form (or a login by the token of the start-up URL)
    POST /login            password or token -> a session cookie, then /
    POST /logout           ends the session and its app
    GET  /                 the terminal page (title and icon: tuimail's)
    GET  /ws               the websocket of the session's app: one app per session (a reload
                           replaces it), the app stops when the socket closes
    GET  /download/{key}   a file the session's app delivers
    GET  /static/...       textual-serve's JavaScript, CSS and fonts; /assets/... ours

Every route but the login form and the icon needs the session cookie (HttpOnly, SameSite=Strict,
Secure over TLS). A POST and the websocket must come from the page's own origin. On a loopback
address the Host header must name a loopback host (DNS rebinding). Responses carry a strict
Content-Security-Policy: the page loads nothing from elsewhere.
"""

from __future__ import annotations

import asyncio
import html
import ipaddress
import json
import logging
import sys
from collections.abc import Awaitable, Callable
from importlib import resources
from pathlib import Path
from typing import Any
from urllib.parse import quote

import textual_serve
from aiohttp import WSMsgType, web
from textual_serve.app_service import AppService
from textual_serve.download_manager import DownloadManager

from tuimail.serve.auth import Login, Session, Sessions, Throttle

log = logging.getLogger("tuimail.serve")

COOKIE = "tuimail_session"
APP_STOP_TIMEOUT = 10.0  # seconds an app may take to quit before it is killed
MAX_WS_MESSAGE = 1 << 20  # keystrokes and resizes: small
TEXTUAL_SERVE_STATIC = Path(textual_serve.__file__).resolve().parent / "static"
ASSETS = resources.files("tuimail.serve") / "assets"



def _asset(name: str) -> bytes:
    return (ASSETS / name).read_bytes()


def _int(value: str | None, default: int, low: int, high: int) -> int:
    try:
        return min(high, max(low, int(value or default)))
    except ValueError:
        return default


def _loopback_name(host: str) -> bool:
    h = host.lower().rstrip(".")
    if h == "localhost" or h.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(h.strip("[]")).is_loopback
    except ValueError:
        return False


def _split_host(host: str) -> str:
    """The host name of a Host header value ("[::1]:8000" -> "::1", "a:80" -> "a")."""
    if host.startswith("["):
        return host[1:].split("]", 1)[0]
    return host.rsplit(":", 1)[0] if host.count(":") == 1 else host


class ServeState:
    """What the handlers share: the login, the sessions, the throttle and how an app is started."""

    def __init__(self, *, command: str, login: Login, tls: bool, loopback: bool,
                 sessions: Sessions | None = None, throttle: Throttle | None = None,
                 app_factory: Callable[..., AppService] = AppService):
        self.command = command
        self.login = login
        self.tls = tls
        self.loopback = loopback
        self.sessions = sessions or Sessions()
        self.throttle = throttle or Throttle()
        self.app_factory = app_factory
        self.downloads = DownloadManager()
        self.check_lock = asyncio.Semaphore(2)  # scrypt checks at once (32 MB each)
        self.tasks: set[asyncio.Task[Any]] = set()

    def spawn(self, coro: Awaitable[Any]) -> None:
        task: asyncio.Task[Any] = asyncio.ensure_future(coro)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)


STATE = web.AppKey("tuimail_serve", ServeState)
SESSION: web.RequestKey[Session | None] = web.RequestKey("tuimail_session", Session)


def _redirect(location: str) -> web.Response:
    return web.Response(status=303, headers={"Location": location}, text=f"see {location}\n")


def make_app(state: ServeState) -> web.Application:
    app = web.Application(middlewares=[_guard], client_max_size=64 * 1024)
    app[STATE] = state
    app.add_routes([
        web.get("/login", login_page),
        web.post("/login", login_post),
        web.post("/logout", logout),
        web.get("/", index),
        web.get("/ws", websocket),
        web.get("/download/{key}", download),
        web.get("/favicon.svg", favicon),
        web.get("/favicon.ico", favicon),
        web.get("/assets/{name}", asset),
        web.static("/static", TEXTUAL_SERVE_STATIC, show_index=False, follow_symlinks=False),
    ])
    app.on_shutdown.append(_on_shutdown)
    return app


def _state(request: web.Request) -> ServeState:
    return request.app[STATE]


PUBLIC = {"/login", "/favicon.svg", "/favicon.ico", "/assets/login.css"}


def _origin(request: web.Request) -> str:
    return f"{'https' if _state(request).tls else 'http'}://{request.host}"


def _csp(request: web.Request) -> str:
    ws = f"{'wss' if _state(request).tls else 'ws'}://{request.host}"
    return ("default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:;"
            f" font-src 'self'; connect-src 'self' {ws}; form-action 'self'; frame-ancestors 'none';"
            " base-uri 'none'")


@web.middleware
async def _guard(request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
                 ) -> web.StreamResponse:
    state = _state(request)
    if state.loopback and not _loopback_name(_split_host(request.host)):
        # a page on another name that resolves to 127.0.0.1 (DNS rebinding) must not reach the app
        return web.Response(status=421, text="tuimail serve answers to a loopback host name only\n")
    if request.method not in ("GET", "HEAD") or request.path == "/ws":
        origin = request.headers.get("Origin")
        if origin is None and request.path == "/ws" or origin is not None and origin != _origin(request):
            return web.Response(status=403, text="cross-origin request refused\n")
    session = state.sessions.get(request.cookies.get(COOKIE))
    request[SESSION] = session
    if session is None and request.path not in PUBLIC:
        if request.method == "GET" and request.path == "/":
            response: web.StreamResponse = _redirect("/login")
        else:
            response = web.Response(status=401, text="log in first\n")
    else:
        try:
            response = await handler(request)
        except web.HTTPException as exc:
            response = web.Response(status=exc.status, text=exc.text, headers=exc.headers)
    if response.prepared:  # the websocket, a download: their handlers sent their own headers
        return response
    response.headers["Content-Security-Policy"] = _csp(request)
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["X-Frame-Options"] = "DENY"
    response.headers["Referrer-Policy"] = "same-origin"  # (no-referrer would make form posts say Origin: null)
    response.headers.setdefault("Cache-Control", "no-store")
    if state.tls:
        response.headers["Strict-Transport-Security"] = "max-age=31536000"
    return response


# -- login ---------------------------------------------------------------------------------------------------

LOGIN_PAGE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>tuimail: log in</title>
<link rel="icon" type="image/svg+xml" href="/favicon.svg">
<link rel="stylesheet" href="/assets/login.css">
</head>
<body>
<form method="post" action="/login">
<h1><img src="/favicon.svg" alt="" width="32" height="32"> tuimail</h1>
<label for="secret">{label}</label>
<input type="password" id="secret" name="secret" autocomplete="current-password" autofocus required>
<button type="submit" id="login">Log in</button>
<p class="message" id="message" role="alert">{message}</p>
</form>
</body>
</html>
"""


def _login_response(state: ServeState, message: str = "", status: int = 200) -> web.Response:
    label = "Password" if state.login.kind == "password" else "Token"
    page = LOGIN_PAGE.format(label=label, message=html.escape(message))
    return web.Response(text=page, content_type="text/html", charset="utf-8", status=status)


async def login_page(request: web.Request) -> web.StreamResponse:
    state = _state(request)
    token = request.query.get("token")
    if token is not None and state.login.kind == "token":  # the start-up URL: log in, drop the token from view
        return await _attempt(request, token)
    if request[SESSION] is not None:
        return _redirect("/")
    return _login_response(state)


async def login_post(request: web.Request) -> web.StreamResponse:
    form = await request.post()
    secret = form.get("secret")
    return await _attempt(request, secret if isinstance(secret, str) else "")


async def _attempt(request: web.Request, secret: str) -> web.StreamResponse:
    state = _state(request)
    client = request.remote or "?"
    wait = state.throttle.wait(client)
    if wait > 0:
        response = _login_response(state, f"Too many failed logins: try again in {int(wait) + 1} s.", 429)
        response.headers["Retry-After"] = str(int(wait) + 1)
        return response
    state.throttle.charge(client)
    if state.login.slow:
        async with state.check_lock:
            ok = await asyncio.get_running_loop().run_in_executor(None, state.login.check, secret)
    else:
        ok = state.login.check(secret)
    if not ok:
        print(f"tuimail serve: failed login from {client}", file=sys.stderr, flush=True)
        return _login_response(state, f"Wrong {state.login.kind}.", 401)
    state.throttle.success(client)
    cookie, _session = state.sessions.create()  # the session before it ends: one session per login
    response = _redirect("/")
    response.set_cookie(COOKIE, cookie, path="/", httponly=True, secure=state.tls, samesite="Strict")
    return response


async def logout(request: web.Request) -> web.StreamResponse:
    session: Session | None = request[SESSION]
    if session is not None:
        _state(request).sessions.end(session)
    response = _redirect("/login")
    response.del_cookie(COOKIE, path="/", secure=_state(request).tls, samesite="Strict", httponly=True)
    return response


# -- the page ------------------------------------------------------------------------------------------------

INDEX_PAGE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>tuimail</title>
<link rel="icon" type="image/svg+xml" href="/favicon.svg">
<link rel="stylesheet" href="/static/css/xterm.css">
<link rel="stylesheet" href="/assets/page.css">
<script src="/static/js/textual.js"></script>
<script src="/assets/page.js"></script>
</head>
<body>
<div class="dialog-container intro-dialog">
  <div class="shade"></div>
  <div class="intro"><img src="/favicon.svg" alt="" width="48" height="48"><div>tuimail</div>
  <button type="button" id="start">Start</button></div>
</div>
<div class="dialog-container closed-dialog">
  <div class="shade"></div>
  <div class="intro"><div class="message">Session ended.</div>
  <button type="button" id="restart">Restart</button>
  <form method="post" action="/logout"><button type="submit" id="logout">Log out</button></form></div>
</div>
<div id="terminal" class="textual-terminal" data-session-websocket-url="{ws_url}" data-font-size="{font_size}">
</div>
</body>
</html>
"""


async def index(request: web.Request) -> web.StreamResponse:
    state = _state(request)
    ws_url = f"{'wss' if state.tls else 'ws'}://{request.host}/ws"
    page = INDEX_PAGE.format(ws_url=html.escape(ws_url, quote=True),
                             font_size=_int(request.query.get("fontsize"), 16, 6, 64))
    return web.Response(text=page, content_type="text/html", charset="utf-8")


async def favicon(request: web.Request) -> web.StreamResponse:
    return web.Response(body=_asset("favicon.svg"), content_type="image/svg+xml",
                        headers={"Cache-Control": "max-age=86400"})


ASSET_TYPES = {"page.css": "text/css", "login.css": "text/css", "page.js": "text/javascript"}


async def asset(request: web.Request) -> web.StreamResponse:
    name = request.match_info["name"]
    if name not in ASSET_TYPES:
        raise web.HTTPNotFound()
    return web.Response(body=_asset(name), content_type=ASSET_TYPES[name])


# -- the app -------------------------------------------------------------------------------------------------

class _Running:
    """The app of a session: its service, its websocket and when it has stopped."""

    def __init__(self, websocket: web.WebSocketResponse):
        self.websocket = websocket
        self.service: AppService | None = None
        self.stopped = asyncio.Event()


async def websocket(request: web.Request) -> web.StreamResponse:
    state = _state(request)
    session = request[SESSION]
    assert session is not None  # (the guard)
    previous: _Running | None = session.app
    if previous is not None:  # one app per session: a reload (or a second tab) replaces the app
        await previous.websocket.close(code=4000, message=b"replaced by a newer page")
        try:
            await asyncio.wait_for(previous.stopped.wait(), APP_STOP_TIMEOUT + 5)
        except TimeoutError:
            pass
    ws = web.WebSocketResponse(heartbeat=15, max_msg_size=MAX_WS_MESSAGE)
    await ws.prepare(request)
    running = _Running(ws)
    session.app = running

    def end() -> None:  # the session ends (a newer login, logout, expiry): so does its app
        state.spawn(ws.close(code=4001, message=b"session ended"))

    session.on_end.append(end)
    try:
        service = state.app_factory(state.command, write_bytes=ws.send_bytes, write_str=ws.send_str, close=ws.close,
                                    download_manager=state.downloads)
        running.service = service
        await service.start(_int(request.query.get("width"), 80, 10, 1000),
                            _int(request.query.get("height"), 24, 5, 1000))
        try:
            await _relay(ws, service)
        finally:
            await _stop(service)
    except asyncio.CancelledError:
        await ws.close()
        raise
    except Exception as exc:  # noqa: BLE001  (one connection's failure; the server goes on)
        log.exception("the app of a session failed: %s", exc)
    finally:
        if end in session.on_end:
            session.on_end.remove(end)
        if session.app is running:
            session.app = None
            session.last_seen = state.sessions.clock()  # idle from now on
        running.stopped.set()
        if not ws.closed:
            await ws.close()
    return ws


async def _relay(ws: web.WebSocketResponse, service: AppService) -> None:
    """The browser's messages to the app (as textual-serve's Server does)."""
    async for message in ws:
        if message.type != WSMsgType.TEXT:
            continue
        try:
            envelope = json.loads(message.data)
            kind, data = envelope[0], envelope[1] if len(envelope) > 1 else None
        except (ValueError, TypeError, IndexError, KeyError):
            continue
        if kind == "stdin" and isinstance(data, str):
            await service.send_bytes(data.encode("utf-8"))
        elif kind == "resize" and isinstance(data, dict):
            await service.set_terminal_size(_int(str(data.get("width")), 80, 10, 1000),
                                            _int(str(data.get("height")), 24, 5, 1000))
        elif kind == "ping":
            await ws.send_json(["pong", data])
        elif kind == "blur":
            await service.blur()
        elif kind == "focus":
            await service.focus()


async def _stop(service: AppService) -> None:
    """Ask the app to quit; kill it if it does not within APP_STOP_TIMEOUT."""
    try:
        await asyncio.wait_for(asyncio.shield(service.stop()), APP_STOP_TIMEOUT)
    except TimeoutError:
        process: Any = getattr(service, "_process", None)  # (textual-serve keeps it private)
        if process is not None and process.returncode is None:
            process.kill()


async def download(request: web.Request) -> web.StreamResponse:
    state = _state(request)
    session = request[SESSION]
    assert session is not None  # (the guard)
    key = request.match_info["key"]
    try:
        meta = await state.downloads.get_download_metadata(key)
    except KeyError:
        raise web.HTTPNotFound() from None
    running: _Running | None = session.app
    if running is None or meta.app_service is not running.service:  # another session's file
        raise web.HTTPNotFound()
    response = web.StreamResponse()
    response.content_type = meta.mime_type if "/" in meta.mime_type else "application/octet-stream"
    if meta.encoding:
        response.charset = meta.encoding
    disposition = "inline" if meta.open_method == "browser" else "attachment"
    response.headers["Content-Disposition"] = f"{disposition}; filename*=UTF-8''{quote(meta.file_name, safe='')}"
    # a file from a message, shown in our origin: it runs nothing and reaches nothing
    response.headers["Content-Security-Policy"] = "default-src 'none'; style-src 'unsafe-inline'; sandbox"
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Cache-Control"] = "no-store"
    await response.prepare(request)
    async for chunk in state.downloads.download(key):
        await response.write(chunk)
    await response.write_eof()
    return response


async def _on_shutdown(app: web.Application) -> None:
    """Every app is asked to quit (and killed if it does not) before the server goes."""
    state = app[STATE]
    running = [s.app for s in state.sessions.live() if s.app is not None]
    state.sessions.end_all()
    if running:
        await asyncio.wait([asyncio.ensure_future(r.stopped.wait()) for r in running], timeout=APP_STOP_TIMEOUT + 5)
