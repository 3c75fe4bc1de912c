"""`tuimail serve`'s login pieces (tuimail/serve/auth.py), its [serve] config, the address rules, and the
routes (tuimail/serve/web.py) through aiohttp's test client with a stand-in for the app process (the
real one runs in tests/integration/test_serve_browser.py)."""

from __future__ import annotations

import asyncio
import sys

import pytest
from aiohttp import WSMsgType
from aiohttp.test_utils import TestClient, TestServer

from tuimail.cli.main import main
from tuimail.config.load import parse_config
from tuimail.config.model import PasswordHash
from tuimail.errors import ConfigError, UsageError
from tuimail.serve.auth import Login, Sessions, Throttle, hash_password, same_secret, verify_password
from tuimail.serve.run import ServeOptions, plan
from tuimail.serve.web import COOKIE, ServeState, make_app

FAST = {"n": 2 ** 14}  # the smallest cost PasswordHash accepts: quick tests
ACCOUNT = '[accounts.a]\nkind = "imap"\nhost = "imap.example.org"\nusername = "me"\n'


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


# -- hashes and secrets --------------------------------------------------------------------------------------

def test_a_password_hash_round_trips_and_checks():
    line = hash_password("s3cret password", **FAST)
    stored = PasswordHash.parse(line)
    assert stored.text() == line and line.startswith("scrypt$16384$8$1$")
    assert verify_password("s3cret password", stored)
    assert not verify_password("s3cret passwore", stored)
    assert hash_password("s3cret password", **FAST) != line  # salted


@pytest.mark.parametrize("text,reason", [
    ("argon2$x", "expected"), ("scrypt$a$8$1$x$y", "integers"), ("scrypt$1000$8$1$x$y", "power of 2"),
    ("scrypt$16384$99$1$x$y", "r must be"), ("scrypt$16384$8$1$!!$y", "base64"),
    ("scrypt$16384$8$1$c2FsdA$aGFzaA", "too short"),
])
def test_a_bad_password_hash_says_why_without_echoing_it(text, reason):
    with pytest.raises(ValueError) as e:
        PasswordHash.parse(text)
    assert reason in str(e.value) and text not in str(e.value)


def test_tokens_compare_by_digest():
    assert same_secret("a" * 20, "a" * 20)
    assert not same_secret("a" * 19, "a" * 20) and not same_secret("", "a")
    login = Login(token="t" * 20)
    assert login.check("t" * 20) and not login.check("t" * 21) and not login.slow
    assert not login.check("x" * 5000)  # bounded work for a huge form field
    with pytest.raises(ValueError):
        Login()
    drawn = Login.random_token()
    assert drawn.drawn and len(drawn.token or "") >= 24 and Login.random_token().token != drawn.token


# -- sessions ------------------------------------------------------------------------------------------------

def test_one_session_per_login_and_the_cookie_is_not_kept():
    clock = Clock()
    sessions = Sessions(clock=clock)
    ended = []
    cookie1, s1 = sessions.create()
    s1.on_end.append(lambda: ended.append(1))
    assert sessions.get(cookie1) is s1
    assert cookie1.encode() not in repr(sessions._by_key).encode()  # only its digest is kept
    cookie2, s2 = sessions.create()  # a new login ends the one before (and its app)
    assert ended == [1] and s1.ended
    assert sessions.get(cookie1) is None and sessions.get(cookie2) is s2 and len(sessions) == 1
    assert sessions.get(None) is None and sessions.get("") is None and sessions.get("x" * 1000) is None


def test_sessions_expire_when_idle_but_not_while_an_app_runs():
    clock = Clock()
    sessions = Sessions(idle_timeout=60, max_age=1000, clock=clock)
    cookie, s = sessions.create()
    clock.now += 59
    assert sessions.get(cookie) is s
    s.app = object()  # an open page
    clock.now += 500
    assert sessions.get(cookie) is s
    s.app = None
    clock.now += 61
    assert sessions.get(cookie) is None and s.ended
    cookie, s = sessions.create()
    s.app = object()
    clock.now += 1001  # and every session ends at max_age
    assert sessions.get(cookie) is None


# -- the throttle --------------------------------------------------------------------------------------------

def test_failed_logins_wait_longer_and_longer_per_address():
    clock = Clock()
    t = Throttle(free=3, max_wait=8, per_minute=1000, clock=clock)
    for _ in range(3):
        assert t.wait("a") == 0
        t.charge("a")
    assert t.wait("a") == pytest.approx(1) and t.wait("b") == 0
    waits = []
    for _ in range(6):
        clock.now += t.wait("a")
        t.charge("a")
        waits.append(t.wait("a"))
    assert waits == [2, 4, 8, 8, 8, 8]  # doubling, up to max_wait
    t.success("a")
    assert t.wait("a") == 0


def test_a_success_forgets_and_an_hour_forgives():
    clock = Clock()
    t = Throttle(free=2, per_minute=1000, forget_after=3600, clock=clock)
    t.charge("a")
    t.success("a")  # (the charge of a successful attempt)
    t.charge("a")
    t.charge("a")
    assert t.wait("a") > 0
    clock.now += 3601
    assert t.wait("a") == 0


def test_failures_from_everyone_have_a_ceiling():
    clock = Clock()
    t = Throttle(free=100, per_minute=5, clock=clock)
    for i in range(5):
        t.charge(f"10.0.0.{i}")
    assert t.wait("10.9.9.9") == pytest.approx(60)
    clock.now += 30
    assert t.wait("10.9.9.9") == pytest.approx(30)
    clock.now += 30
    assert t.wait("10.9.9.9") == 0


def test_the_throttle_remembers_a_bounded_number_of_addresses():
    t = Throttle(max_clients=10, per_minute=10 ** 6)
    for i in range(1000):
        t.charge(str(i))
    assert len(t._clients) == 10


# -- [serve] in the config -----------------------------------------------------------------------------------

def test_the_serve_table(tmp_path):
    (tmp_path / "c.pem").write_text("x")
    (tmp_path / "k.pem").write_text("x")
    line = hash_password("password!", **FAST)
    cfg = parse_config(ACCOUNT + f'[serve]\nhost = "::"\nport = 8443\ncert = "c.pem"\nkey = "k.pem"\n'
                       f'password_hash = "{line}"\n', tmp_path / "config.toml")
    assert (cfg.serve.host, cfg.serve.port, cfg.serve.cert, cfg.serve.key) == ("::", 8443, tmp_path / "c.pem",
                                                                               tmp_path / "k.pem")
    assert cfg.serve.password_hash == line and line not in repr(cfg.serve)
    default = parse_config(ACCOUNT).serve
    assert (default.host, default.port, default.password_hash, default.token_command) == ("127.0.0.1", 8000,
                                                                                          None, None)
    assert parse_config(ACCOUNT + '[serve]\ntoken_command = "pass show tuimail"\n').serve.token_command == (
        "pass", "show", "tuimail")


@pytest.mark.parametrize("table,error", [
    ('hots = "x"', 'serve.hots: unknown key (did you mean "host"?)'),
    ("port = 0", "serve.port: expected a port number from 1 to 65535, got 0"),
    ('cert = "c.pem"', "serve: set both cert and key"),
    ('password_hash = "plain text"', 'serve.password_hash: expected "scrypt$N$r$p$salt$hash"'),
    ("password_hash = 5", "serve.password_hash: expected a string, got an integer"),
    ('password_hash = "scrypt$16384$8$1$AAAAAAAAAAAAAAAAAAAAAA$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"\n'
     'token_command = "x"', "serve: set only one of password_hash, token_command"),
])
def test_a_bad_serve_table_is_one_line(tmp_path, table, error):
    (tmp_path / "c.pem").write_text("x")
    with pytest.raises(ConfigError) as e:
        parse_config(ACCOUNT + "[serve]\n" + table + "\n", tmp_path / "config.toml")
    assert error in str(e.value) and "\n" not in str(e.value)


# -- the address rules ---------------------------------------------------------------------------------------

def test_loopback_by_default_and_the_app_runs_with_the_same_config(tmp_path):
    cfg = parse_config(ACCOUNT, tmp_path / "config.toml")
    p = plan(cfg, ServeOptions(account="a", offline=True))
    assert (p.host, p.port, p.loopback, p.cert) == ("127.0.0.1", 8000, True, None)
    assert p.command == [sys.executable, "-m", "tuimail", "--config", str(tmp_path / "config.toml"),
                         "--account", "a", "--offline"]
    assert plan(cfg, ServeOptions(host="::1", port=0)).loopback


@pytest.mark.parametrize("table,options,error", [
    ("", ServeOptions(host="0.0.0.0"), "0.0.0.0 is not a loopback address: serving it needs TLS"),
    ('host = "192.0.2.7"', ServeOptions(), "192.0.2.7 is not a loopback address: serving it needs TLS"),
    ("", ServeOptions(host="example.org"), "needs TLS"),
    ("", ServeOptions(host="0.0.0.0", cert="c.pem", key="k.pem"), "needs a login in the config"),
    ("", ServeOptions(cert="c.pem"), "give both --cert FILE and --key FILE"),
    ("", ServeOptions(cert="nope.pem", key="k.pem"), "--cert nope.pem: no such file"),
    ("", ServeOptions(port=70000), "expected 0 (any free port) to 65535"),
])
def test_a_non_loopback_address_needs_tls_and_a_login(tmp_path, monkeypatch, table, options, error):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "c.pem").write_text("x")
    (tmp_path / "k.pem").write_text("x")
    cfg = parse_config(ACCOUNT + ("[serve]\n" + table + "\n" if table else ""), tmp_path / "config.toml")
    with pytest.raises(UsageError) as e:
        plan(cfg, options)
    assert error in str(e.value) and "\n" not in str(e.value)


def test_the_cli_refuses_in_one_line(tmp_path, capsys):
    config = tmp_path / "config.toml"
    config.write_text(ACCOUNT)
    assert main(["--config", str(config), "serve", "--host", "0.0.0.0"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("tuimail: serve: 0.0.0.0 is not a loopback address") and err.count("\n") == 1


def test_hash_password_reads_stdin_when_it_is_not_a_terminal(monkeypatch, capsys):
    import io
    monkeypatch.setattr(sys, "stdin", io.StringIO("long enough password\n"))
    assert main(["serve", "--hash-password"]) == 0
    out = capsys.readouterr().out
    line = out.split('"')[1]
    assert out.startswith("password_hash = ") and verify_password("long enough password", PasswordHash.parse(line))
    monkeypatch.setattr(sys, "stdin", io.StringIO("short\n"))
    assert main(["serve", "--hash-password"]) == 2
    assert "too short" in capsys.readouterr().err


# -- the routes ----------------------------------------------------------------------------------------------

class FakeApp:
    """Stands in for textual-serve's AppService: records what the page sends."""
    started: list[FakeApp] = []

    def __init__(self, command, *, write_bytes, write_str, close, download_manager):
        self.command = command
        self.close = close
        self.received: list[bytes] = []
        self.stopped = False
        FakeApp.started.append(self)

    async def start(self, width, height):
        self.size = (width, height)

    async def stop(self):
        self.stopped = True

    async def send_bytes(self, data):
        self.received.append(data)
        return True

    async def send_meta(self, data):  # (a download's chunk request: this stand-in has no file)
        return False

    async def set_terminal_size(self, width, height):
        self.size = (width, height)

    async def blur(self):
        pass

    async def focus(self):
        pass


def _run(login: Login, scenario, *, tls: bool = False, loopback: bool = True, throttle: Throttle | None = None):
    FakeApp.started = []

    async def go():
        state = ServeState(command="tuimail", login=login, tls=tls, loopback=loopback, app_factory=FakeApp,
                           throttle=throttle)
        async with TestClient(TestServer(make_app(state), host="127.0.0.1")) as client:
            await scenario(client, state)

    asyncio.run(go())


TOKEN = "a-token-of-twenty-chars"


def _origin(client) -> dict[str, str]:
    return {"Origin": f"http://127.0.0.1:{client.port}"}


async def _login(client, secret: str = TOKEN):
    return await client.post("/login", data={"secret": secret}, headers=_origin(client), allow_redirects=False)


def test_every_page_but_the_login_needs_a_session():
    async def scenario(client, state):
        r = await client.get("/", allow_redirects=False)
        assert r.status == 303 and r.headers["Location"] == "/login"
        for path in ("/ws", "/static/js/textual.js", "/download/x", "/assets/page.js"):
            assert (await client.get(path, headers=_origin(client), allow_redirects=False)).status == 401, path
        r = await client.get("/login")
        assert r.status == 200 and "<title>tuimail: log in</title>" in await r.text()
        assert "default-src 'none'" in r.headers["Content-Security-Policy"]
        assert r.headers["X-Frame-Options"] == "DENY"
        r = await client.get("/favicon.svg")
        assert r.status == 200 and r.content_type == "image/svg+xml" and b"<svg" in await r.read()
    _run(Login(token=TOKEN), scenario)


def test_a_login_sets_a_strict_cookie_and_shows_tuimails_page():
    async def scenario(client, state):
        r = await _login(client, "wrong")
        assert r.status == 401 and "Wrong token." in await r.text() and COOKIE not in r.cookies
        r = await _login(client)
        assert r.status == 303 and r.headers["Location"] == "/"
        cookie = r.headers["Set-Cookie"]
        assert "HttpOnly" in cookie and "SameSite=Strict" in cookie and "Path=/" in cookie
        assert "Secure" not in cookie  # plain HTTP on loopback (see the TLS test)
        r = await client.get("/")
        page = await r.text()
        assert "<title>tuimail</title>" in page and 'href="/favicon.svg"' in page
        assert f'data-session-websocket-url="ws://127.0.0.1:{client.port}/ws"' in page
        assert "googleapis" not in page
        assert (await client.get("/static/js/textual.js")).status == 200
    _run(Login(token=TOKEN), scenario)


def test_the_cookie_is_secure_over_tls():
    async def scenario(client, state):
        r = await client.post("/login", data={"secret": TOKEN}, allow_redirects=False,
                              headers={"Origin": f"https://127.0.0.1:{client.port}"})
        assert r.status == 303 and "Secure" in r.headers["Set-Cookie"]
        assert r.headers["Strict-Transport-Security"].startswith("max-age=")
    _run(Login(token=TOKEN), scenario, tls=True)


def test_a_password_login_and_the_start_up_url():
    line = hash_password("open sesame!", **FAST)

    async def scenario(client, state):
        assert (await _login(client, "open sesame?")).status == 401
        assert (await _login(client, "open sesame!")).status == 303
    _run(Login(password_hash=line), scenario)

    async def by_url(client, state):
        r = await client.get(f"/login?token={TOKEN}", allow_redirects=False)
        assert r.status == 303 and r.headers["Location"] == "/" and COOKIE in r.cookies
    _run(Login(token=TOKEN), by_url)

    async def not_a_password(client, state):  # a password never travels in a URL
        r = await client.get("/login?token=open%20sesame!", allow_redirects=False)
        assert r.status == 200 and COOKIE not in r.cookies
    _run(Login(password_hash=line), not_a_password)


def test_failed_logins_are_throttled():
    async def scenario(client, state):
        for _ in range(3):
            assert (await _login(client, "wrong")).status == 401
        r = await _login(client)  # even the right token waits
        assert r.status == 429 and int(r.headers["Retry-After"]) >= 1
        assert "Too many failed logins" in await r.text()
    _run(Login(token=TOKEN), scenario, throttle=Throttle(free=3))


def test_cross_origin_and_rebinding_requests_are_refused():
    async def scenario(client, state):
        r = await client.post("/login", data={"secret": TOKEN}, headers={"Origin": "http://evil.example"})
        assert r.status == 403
        r = await client.get("/login", headers={"Host": f"evil.example:{client.port}"})
        assert r.status == 421  # a name that resolves to 127.0.0.1 is not enough
        assert (await client.get("/login", headers={"Host": f"localhost:{client.port}"})).status == 200
        await _login(client)
        r = await client.get("/ws", headers={"Origin": "http://evil.example"})
        assert r.status == 403
        r = await client.get("/ws")  # a websocket must say where it comes from
        assert r.status == 403
    _run(Login(token=TOKEN), scenario)


def test_one_app_per_session_and_a_new_login_ends_the_old_one():
    async def scenario(client, state):
        await _login(client)
        ws1 = await client.ws_connect("/ws?width=100&height=30", headers=_origin(client))
        await ws1.send_json(["stdin", "j"])
        await ws1.send_json(["ping", "x"])
        assert (await ws1.receive_json()) == ["pong", "x"]
        (app1,) = FakeApp.started
        assert app1.command == "tuimail" and app1.size == (100, 30) and app1.received == [b"j"]
        ws2 = await client.ws_connect("/ws", headers=_origin(client))  # a reload: the first app stops
        assert (await ws1.receive()).type in (WSMsgType.CLOSE, WSMsgType.CLOSED, WSMsgType.CLOSING)
        await asyncio.sleep(0.05)
        assert app1.stopped and len(FakeApp.started) == 2
        app2 = FakeApp.started[1]
        old = client.session.cookie_jar.filter_cookies(client.make_url("/"))[COOKIE].value
        r = await _login(client)  # a second login (as from another browser) ends this session and its app
        assert r.status == 303
        assert (await ws2.receive()).type in (WSMsgType.CLOSE, WSMsgType.CLOSED, WSMsgType.CLOSING)
        await asyncio.sleep(0.05)
        assert app2.stopped
        assert state.sessions.get(old) is None and len(state.sessions) == 1
    _run(Login(token=TOKEN), scenario)


def test_logout_ends_the_session():
    async def scenario(client, state):
        await _login(client)
        assert (await client.get("/", allow_redirects=False)).status == 200
        r = await client.post("/logout", headers=_origin(client), allow_redirects=False)
        assert r.status == 303 and r.headers["Location"] == "/login"
        assert len(state.sessions) == 0
        assert (await client.get("/", allow_redirects=False)).status == 303
    _run(Login(token=TOKEN), scenario)


def test_a_download_is_the_sessions_own_and_runs_nothing():
    async def scenario(client, state):
        await _login(client)
        ws = await client.ws_connect("/ws", headers=_origin(client))
        await ws.send_json(["ping", 1])
        await ws.receive_json()
        (app,) = FakeApp.started
        await state.downloads.create_download(app_service=app, delivery_key="k1", file_name='a "b".html',
                                              open_method="browser", mime_type="text/html", encoding="utf-8")
        other = FakeApp("x", write_bytes=None, write_str=None, close=None, download_manager=None)
        await state.downloads.create_download(app_service=other, delivery_key="k2", file_name="x",
                                              open_method="download", mime_type="text/plain")
        assert (await client.get("/download/k2")).status == 404  # another app's file
        assert (await client.get("/download/nope")).status == 404
        r = await client.get("/download/k1")
        assert r.status == 200 and r.headers["Content-Type"].startswith("text/html")
        assert r.headers["Content-Disposition"] == "inline; filename*=UTF-8''a%20%22b%22.html"
        assert "sandbox" in r.headers["Content-Security-Policy"] and r.headers["X-Content-Type-Options"] == "nosniff"
        await ws.close()
    _run(Login(token=TOKEN), scenario)
