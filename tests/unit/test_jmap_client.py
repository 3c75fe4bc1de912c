"""protocol/jmap's transport faults, against a small scripted HTTP server (fault injection only: the
behaviour against a real server is in tests/integration/test_jmap_cyrus.py): size bounds, the
per-request deadline, redirects, plain http refused off loopback, bearer tokens, malformed answers,
a keep-alive connection the server closed. Plus remove_bcc and the error mapping."""

from __future__ import annotations

import hashlib
import json
import socket
import ssl
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from tests.support.smtpserver import make_cert
from tuimail.errors import AuthError, NetworkError, ProtocolError, TLSError, UsageError
from tuimail.protocol.jmap import JmapClient, MethodError, RequestError, StateInvalid, StateMismatch
from tuimail.protocol.jmap.client import discovery_url
from tuimail.protocol.jmap.errors import AccountNotFound, method_error
from tuimail.protocol.jmap.mail import changes, remove_bcc
from tuimail.protocol.jmap.push import EventSource, PushUnavailable

SESSION = {"username": "alice", "apiUrl": "/api/", "downloadUrl": "/dl/{accountId}/{blobId}/{name}?accept={type}",
           "uploadUrl": "/up/{accountId}/", "eventSourceUrl": "/es/", "state": "s1",
           "capabilities": {"urn:ietf:params:jmap:core": {"maxCallsInRequest": 4, "maxSizeRequest": 100000}},
           "accounts": {"A1": {"name": "alice"}}, "primaryAccounts": {"urn:ietf:params:jmap:mail": "A1"}}


class Script:
    """What the server does for each path: a function (handler) -> None that writes the answer."""

    def __init__(self) -> None:
        self.routes: dict[str, Callable[[BaseHTTPRequestHandler], None]] = {}
        self.requests: list[tuple[str, str, dict[str, str], bytes]] = []
        self.api: list[dict] = []  # scripted API answers, in order


def send_json(h: BaseHTTPRequestHandler, obj, status: int = 200, ctype: str = "application/json") -> None:
    body = json.dumps(obj).encode()
    h.send_response(status)
    h.send_header("Content-Type", ctype)
    h.send_header("Content-Length", str(len(body)))
    h.end_headers()
    h.wfile.write(body)


def _serve(cert=None):
    script = Script()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args):
            pass

        def _handle(self):
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            script.requests.append((self.command, self.path, dict(self.headers), body))
            path = self.path.split("?")[0]
            for prefix, fn in script.routes.items():
                if path.startswith(prefix):
                    return fn(self)
            if path == "/jmap/":
                return send_json(self, SESSION)
            if path == "/api/" and script.api:
                return send_json(self, script.api.pop(0))
            send_json(self, {"type": "about:blank"}, 404, "application/problem+json")

        do_GET = do_POST = _handle

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    httpd.daemon_threads = True
    scheme = "http"
    if cert is not None:
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ctx.load_cert_chain(*cert)
        httpd.socket = ctx.wrap_socket(httpd.socket, server_side=True)
        scheme = "https"
    t = threading.Thread(target=httpd.serve_forever, daemon=True)
    t.start()
    script.url = f"{scheme}://localhost:{httpd.server_address[1]}"  # type: ignore[attr-defined]
    return script, httpd


@pytest.fixture
def server():
    script, httpd = _serve()
    script.url = script.url.replace("localhost", "127.0.0.1")
    yield script
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture
def tls_server(tmp_path):
    cert = make_cert(tmp_path)
    script, httpd = _serve(cert)
    script.cert = cert  # type: ignore[attr-defined]
    yield script
    httpd.shutdown()
    httpd.server_close()


def connect(server, **kw) -> JmapClient:
    kw.setdefault("username", "alice")
    kw.setdefault("password", "pw")
    return JmapClient.connect(server.url + "/jmap/", **kw)


def test_session_urls_are_made_absolute_and_basic_auth_is_sent(server):
    c = connect(server)
    assert c.session.api_url == server.url + "/api/"
    assert c.account_id == "A1"
    assert server.requests[0][2]["Authorization"] == "Basic YWxpY2U6cHc="
    assert c.last.sent > 0 and c.last.received > len(json.dumps(SESSION))


def test_bearer_token(server):
    connect(server, username=None, password=None, token="tok-1")
    assert server.requests[0][2]["Authorization"] == "Bearer tok-1"


def test_no_secret_is_a_usage_error():
    with pytest.raises(UsageError, match="password or an OAuth2 token"):
        JmapClient("http://127.0.0.1:1/jmap/", username="a")


def test_discovery_url():
    assert discovery_url("mail.example.org") == "https://mail.example.org/.well-known/jmap"
    assert discovery_url("https://x.example/jmap/session") == "https://x.example/jmap/session"
    with pytest.raises(UsageError):
        discovery_url("no such/host")


def test_plain_http_off_loopback_is_refused_before_connecting():
    c = JmapClient("http://mail.example.org/jmap/", username="a", password="b")
    with pytest.raises(TLSError, match="allow_insecure"):
        c.fetch_session()


def test_https_is_verified_and_never_downgraded_by_a_redirect(tls_server):
    with pytest.raises(TLSError, match="certificate"):
        JmapClient.connect(tls_server.url + "/jmap/", username="a", password="b")  # self-signed
    c = JmapClient.connect(tls_server.url + "/jmap/", username="a", password="b", ca_file=str(tls_server.cert[0]))
    assert c.session.api_url == tls_server.url + "/api/"

    def redirect(h):
        h.send_response(301)
        h.send_header("Location", "http://127.0.0.1:1/jmap/")
        h.send_header("Content-Length", "0")
        h.end_headers()

    tls_server.routes["/.well-known/jmap"] = redirect
    with pytest.raises(TLSError, match="redirected from https"):
        JmapClient.connect(tls_server.url + "/.well-known/jmap", username="a", password="b",
                           ca_file=str(tls_server.cert[0]))


def test_a_pinned_fingerprint_replaces_the_ca_check(tls_server):
    der = ssl.PEM_cert_to_DER_cert(tls_server.cert[0].read_text())
    pin = hashlib.sha256(der).hexdigest()
    c = JmapClient.connect(tls_server.url + "/jmap/", username="a", password="b", fingerprint=pin)
    assert c.account_id == "A1"
    with pytest.raises(TLSError, match="fingerprint"):
        JmapClient.connect(tls_server.url + "/jmap/", username="a", password="b", fingerprint="00" * 32)


def test_too_large_answers_are_refused(server):
    big = b"x" * 5000

    def large(h):
        h.send_response(200)
        h.send_header("Content-Length", str(len(big)))
        h.end_headers()
        h.wfile.write(big)

    def chunked(h):
        h.send_response(200)
        h.send_header("Transfer-Encoding", "chunked")
        h.end_headers()
        for _ in range(5):
            h.wfile.write(b"400\r\n" + b"y" * 1024 + b"\r\n")
        h.wfile.write(b"0\r\n\r\n")

    server.routes["/dl/A1/big/"] = large
    server.routes["/dl/A1/chunky/"] = chunked
    c = connect(server)
    with pytest.raises(ProtocolError, match="5000 bytes, more than the 1000"):
        c.download("big", max_bytes=1000)
    with pytest.raises(ProtocolError, match="more than the 1000 bytes"):
        c.download("chunky", max_bytes=1000)
    assert c.download("big", max_bytes=5000) == big
    assert len(c.download("chunky")) == 5120


def test_a_trickling_server_hits_the_request_deadline(server):
    def trickle(h):
        h.send_response(200)
        h.send_header("Content-Length", "100")
        h.end_headers()
        try:
            for _ in range(100):
                h.wfile.write(b"x")
                h.wfile.flush()
                time.sleep(0.05)
        except OSError:
            pass

    server.routes["/dl/"] = trickle
    c = connect(server, timeout=1, deadline=0.5)
    t0 = time.monotonic()
    with pytest.raises(NetworkError, match="did not answer in time"):
        c.download("slow")
    assert time.monotonic() - t0 < 2


def test_http_errors(server):
    server.routes["/dl/A1/e500/"] = lambda h: send_json(h, {"oops": 1}, 500)
    server.routes["/dl/A1/e401/"] = lambda h: send_json(h, {}, 401)
    server.routes["/dl/A1/notjson/"] = lambda h: None
    c = connect(server)
    with pytest.raises(NetworkError, match="HTTP 500"):
        c.download("e500")
    with pytest.raises(AuthError):
        c.download("e401")
    server.api.append({"type": "urn:ietf:params:jmap:error:limit", "limit": "maxSizeRequest",
                       "detail": "too big\n\x1b[31mred"})
    server.routes["/api/"] = lambda h: send_json(h, server.api.pop(0), 400, "application/problem+json")
    with pytest.raises(RequestError) as e:
        c.call("Mailbox/get", {"accountId": "A1"})
    assert str(e.value) == "JMAP request refused (400 limit), limit maxSizeRequest: too big red"


def test_malformed_api_answers_are_protocol_errors(server):
    c = connect(server)
    server.routes["/api/"] = lambda h: (h.send_response(200), h.send_header("Content-Length", "3"),
                                        h.end_headers(), h.wfile.write(b"{x]"))
    with pytest.raises(ProtocolError, match="not JSON"):
        c.call("Mailbox/get", {})
    server.routes["/api/"] = lambda h: send_json(h, {"methodResponses": [["Mailbox/get", "nope", "c0"]]})
    with pytest.raises(ProtocolError, match="malformed method response"):
        c.call("Mailbox/get", {})


def test_too_many_calls_are_refused_locally(server):
    c = connect(server)
    batch = c.batch()
    for _ in range(5):
        batch.call("Mailbox/get", {})
    with pytest.raises(UsageError, match="server takes 4"):
        c.send(batch)


def test_a_closed_keepalive_connection_is_retried_once(server):
    c = connect(server)
    server.api.append({"methodResponses": [["Mailbox/get", {"state": "m1", "list": []}, "c0"]],
                       "sessionState": "s1"})
    conn = next(iter(c._conns.values()))
    conn.sock.shutdown(socket.SHUT_RDWR)  # as if the server had dropped the idle connection
    assert c.call("Mailbox/get", {"accountId": "A1"})["state"] == "m1"


def test_a_submission_is_not_sent_twice_after_a_dropped_connection(server):
    c = connect(server)
    conn = next(iter(c._conns.values()))
    conn.sock.shutdown(socket.SHUT_RDWR)
    n = len(server.requests)
    batch = c.batch()
    batch.call("EmailSubmission/set", {"accountId": "A1", "create": {"s": {"emailId": "e1"}}})
    assert not batch.repeatable
    with pytest.raises(NetworkError, match="closed the connection"):
        c.send(batch)
    assert len(server.requests) == n  # the outbox decides, knowing it may have gone out


def test_session_state_change_refetches_the_session(server):
    c = connect(server)
    server.api.append({"methodResponses": [["Mailbox/get", {"state": "m1", "list": []}, "c0"]],
                       "sessionState": "s2"})
    server.api.append({"methodResponses": [["Mailbox/get", {"state": "m1", "list": []}, "c0"]],
                       "sessionState": "s1"})
    c.call("Mailbox/get", {})
    assert c.session_stale
    n = len(server.requests)
    c.call("Mailbox/get", {})
    assert [r[1] for r in server.requests[n:]] == ["/jmap/", "/api/"]


def test_changes_merges_pages_and_refuses_a_loop(server):
    c = connect(server)
    server.api += [
        {"methodResponses": [["Email/changes", {"oldState": "1", "newState": "2", "hasMoreChanges": True,
                                                "created": ["a", "b"], "updated": ["x"], "destroyed": []}, "c0"]]},
        {"methodResponses": [["Email/changes", {"oldState": "2", "newState": "3", "hasMoreChanges": False,
                                                "created": ["c"], "updated": ["a", "y"],
                                                "destroyed": ["b", "x", "z"]}, "c0"]]},
    ]
    got = changes(c, "Email", "1")
    assert (got.created, got.updated, got.destroyed, got.requests) == (["a", "c"], ["y"], ["x", "z"], 2)
    server.api.append({"methodResponses": [["Email/changes", {"oldState": "3", "newState": "3",
                                                              "hasMoreChanges": True}, "c0"]]})
    with pytest.raises(ProtocolError, match="hasMoreChanges"):
        changes(c, "Email", "3")


def test_method_errors_are_typed():
    assert isinstance(method_error("Email/set", {"type": "stateMismatch"}), StateMismatch)
    assert isinstance(method_error("Email/changes", {"type": "cannotCalculateChanges"}), StateInvalid)
    assert isinstance(method_error("Mailbox/changes", {"type": "invalidArguments"}), StateInvalid)
    e = method_error("Email/get", {"type": "invalidArguments", "description": "bad\r\nthing"})
    assert type(e) is MethodError and str(e) == "server refused Email/get: invalidArguments bad thing"
    assert isinstance(method_error("Email/get", {"type": "accountNotFound"}), AccountNotFound)


def test_remove_bcc():
    raw = (b"From: a@x\r\nBcc: hidden@x,\r\n  other@x\r\nTo: b@x\r\nbcc:third@x\r\nBcc-Like: keep\r\n"
           b"Subject: s\r\n\r\nBcc: this line is body text\r\n")
    assert remove_bcc(raw) == (b"From: a@x\r\nTo: b@x\r\nBcc-Like: keep\r\nSubject: s\r\n\r\n"
                               b"Bcc: this line is body text\r\n")
    assert remove_bcc(b"Bcc: a\nTo: b\n\nbody\n") == b"To: b\n\nbody\n"
    assert remove_bcc(b"To: b\r\nBcc: a\r\n") == b"To: b\r\n"


def _stream(chunks, ctype="text/event-stream", pause=0.0):
    def handler(h):
        h.send_response(200)
        h.send_header("Content-Type", ctype)
        h.send_header("Transfer-Encoding", "chunked")
        h.end_headers()
        try:
            for chunk in chunks:
                h.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
                h.wfile.flush()
                time.sleep(pause)
            h.wfile.write(b"0\r\n\r\n")
        except OSError:
            pass
    return handler


def test_event_source_yields_state_changes(server):
    state = {"@type": "StateChange", "changed": {"A1": {"Email": "e7", "Mailbox": "m3"}}}
    server.routes["/es/"] = _stream([
        b": keep-alive comment\n\n",
        b'event: ping\ndata: {"interval": 30}\n\n',
        b"id: 42\nevent: state\ndata: " + json.dumps(state).encode() + b"\n\n",
        b'event: state\ndata: {"@type": "StateChange",\r\ndata:  "changed": {"A1": {"Email": "e8"}}}\r\n\r\n',
    ])
    c = connect(server)
    with EventSource(c, ping=30, last_event_id="41") as es:
        got = list(es)
    assert [(g.types("A1"), g.event_id) for g in got] == [({"Email": "e7", "Mailbox": "m3"}, "42"),
                                                          ({"Email": "e8"}, "42")]
    method, path, headers, _ = server.requests[-1]
    assert path == "/es/" and headers["Last-Event-ID"] == "41" and headers["Accept"] == "text/event-stream"


def test_event_source_unavailable_bounded_and_closable(server):
    c = connect(server)
    server.routes["/es/"] = lambda h: (h.send_response(204), h.end_headers())
    with pytest.raises(PushUnavailable, match="204"):
        list(EventSource(c))
    server.routes["/es/"] = _stream([b"data: " + b"x" * 70000 + b"\n\n"])
    with pytest.raises(ProtocolError, match="64 KB"):
        list(EventSource(c))
    server.routes["/es/"] = _stream([b'event: ping\ndata: {"interval": 1}\n\n'] * 100, pause=0.05)
    es = EventSource(c, ping=1)
    threading.Timer(0.3, es.close).start()
    t0 = time.monotonic()
    assert list(es) == []
    assert time.monotonic() - t0 < 3
