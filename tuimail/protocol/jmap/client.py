"""The JMAP transport (RFC 8620): the session resource, batched method calls, blobs.

Standard library only (http.client): one keep-alive connection per origin, owned by one thread.
TLS is always verified (protocol/tls.py's context, or a pinned fingerprint); plain http is allowed to
a loopback host, or anywhere with ``allow_insecure``. Every exchange is bounded: a socket timeout,
an overall deadline per request (a trickling server cannot hold it open), and a byte limit on what
is read (``max_response`` for API answers, ``max_bytes`` for a download). Bytes on the wire are
counted per request (``last``) and in total, so a test can check that a no-change resync is one
HTTP request under 2 KB.

    client = JmapClient.connect("https://mail.example.org", username="me", password="...")
    batch = client.batch()
    q = batch.call("Email/query", {"accountId": client.account_id, "limit": 50})
    g = batch.call("Email/get", {"accountId": client.account_id, "#ids": q.ref("/ids")})
    res = client.send(batch)
    res[g]["list"]        # a method error raises its typed exception (errors.py)
"""

from __future__ import annotations

import base64
import http.client
import io
import json
import socket
import ssl
import threading
import time
import urllib.parse
from dataclasses import dataclass, field
from typing import Any, cast

from tuimail.errors import AuthError, NetworkError, ProtocolError, TLSError, UsageError
from tuimail.protocol.jmap.errors import MethodError, RequestError, method_error, server_text
from tuimail.protocol.tls import check_pin, is_loopback, verified_context
from tuimail.trace import trace

__all__ = ["CORE", "MAIL", "SUBMISSION", "Exchange", "Session", "CallRef", "Batch", "Response", "JmapClient",
           "discovery_url"]

CORE = "urn:ietf:params:jmap:core"
MAIL = "urn:ietf:params:jmap:mail"
SUBMISSION = "urn:ietf:params:jmap:submission"

MAX_SESSION = 1 << 20  # a session resource is a few KB
MAX_RESPONSE = 64 << 20  # an API answer: 4096 emails' headers fit many times over
MAX_REDIRECTS = 5


def discovery_url(host_or_url: str) -> str:
    """The session URL to fetch: a bare host name becomes https://host/.well-known/jmap (RFC 8620
    §2.2); a URL is used as it is."""
    text = host_or_url.strip()
    if "://" in text:
        return text
    if not text or "/" in text or " " in text:
        raise UsageError(f"JMAP server {server_text(text, 80)!r}: give a host name or the session URL")
    return f"https://{text}/.well-known/jmap"


@dataclass
class Exchange:
    """One HTTP request: what it was and the bytes on the wire both ways (headers included)."""

    method: str
    path: str
    status: int = 0
    sent: int = 0
    received: int = 0
    seconds: float = 0.0


@dataclass
class Session:
    """The parts of the session resource the client uses (RFC 8620 §2), URLs made absolute."""

    url: str
    username: str
    api_url: str
    download_url: str
    upload_url: str
    event_source_url: str
    state: str
    capabilities: dict[str, Any]
    accounts: dict[str, Any]
    primary_accounts: dict[str, str]

    @classmethod
    def parse(cls, url: str, data: Any) -> Session:
        if not isinstance(data, dict):
            raise ProtocolError(f"JMAP session at {url} is not a JSON object")

        def text(key: str, required: bool = True) -> str:
            value = data.get(key)
            if isinstance(value, str):
                return value
            if required or value is not None:
                raise ProtocolError(f"JMAP session at {url} has no {key}")
            return ""

        def obj(key: str) -> dict:
            value = data.get(key, {})
            if not isinstance(value, dict):
                raise ProtocolError(f"JMAP session at {url}: {key} is not an object")
            return value

        def absolute(value: str) -> str:
            # RFC 8620 says URLs; servers send relative ones too (Cyrus: "/jmap/"). The templates'
            # "{...}" must survive the join.
            return urllib.parse.urljoin(url, value) if value else ""

        return cls(url=url, username=text("username"), api_url=absolute(text("apiUrl")),
                   download_url=absolute(text("downloadUrl")), upload_url=absolute(text("uploadUrl")),
                   event_source_url=absolute(text("eventSourceUrl", required=False)), state=text("state"),
                   capabilities=obj("capabilities"), accounts=obj("accounts"),
                   primary_accounts={k: v for k, v in obj("primaryAccounts").items() if isinstance(v, str)})

    def limit(self, name: str, default: int) -> int:
        value = self.capabilities.get(CORE, {}).get(name)
        return value if isinstance(value, int) and value > 0 else default


@dataclass(frozen=True)
class CallRef:
    """A method call in a batch: its call id and name; ``ref(path)`` is a back-reference to its result."""

    id: str
    method: str

    def ref(self, path: str) -> dict[str, str]:
        return {"resultOf": self.id, "name": self.method, "path": path}


@dataclass
class Batch:
    """Method calls sent in one request; later calls may refer to earlier results ("#ids": ref)."""

    calls: list[list[Any]] = field(default_factory=list)
    using: set[str] = field(default_factory=lambda: {CORE, MAIL})

    @property
    def repeatable(self) -> bool:
        """Safe to send again after a dropped connection: nothing is created (no Email/import, no
        EmailSubmission, no create). A repeated update or destroy leaves the same result."""
        return not any(m in ("Email/import", "EmailSubmission/set", "Email/copy") or a.get("create")
                       for m, a, _ in self.calls)

    def call(self, method: str, args: dict[str, Any], call_id: str | None = None) -> CallRef:
        cid = call_id or f"c{len(self.calls)}"
        if method.startswith(("EmailSubmission/", "Identity/")):
            self.using.add(SUBMISSION)
        self.calls.append([method, args, cid])
        return CallRef(cid, method)


class Response:
    """The method responses of one request, by call id. ``res[ref]`` raises a method's error."""

    def __init__(self, data: dict[str, Any], exchange: Exchange):
        self.exchange = exchange
        self.session_state = data.get("sessionState")
        self.created_ids = data.get("createdIds") or {}
        self.responses: list[tuple[str, dict[str, Any], str]] = []
        for item in data.get("methodResponses", []):
            if not (isinstance(item, list) and len(item) == 3 and isinstance(item[0], str)
                    and isinstance(item[1], dict) and isinstance(item[2], str)):
                raise ProtocolError(f"JMAP server sent a malformed method response: {server_text(item, 120)}")
            self.responses.append((item[0], item[1], item[2]))

    def all(self, ref: CallRef | str) -> list[tuple[str, dict[str, Any]]]:
        """Every response with this call id (a method may answer more than once, e.g. set + implicit get)."""
        cid = ref.id if isinstance(ref, CallRef) else ref
        return [(name, args) for name, args, rid in self.responses if rid == cid]

    def __getitem__(self, ref: CallRef | str) -> dict[str, Any]:
        cid = ref.id if isinstance(ref, CallRef) else ref
        method = ref.method if isinstance(ref, CallRef) else cid
        answers = self.all(ref)
        if not answers:
            raise ProtocolError(f"JMAP server sent no response to {server_text(method, 80)} ({cid})")
        for name, args in answers:
            if name == "error":
                raise method_error(method, args)
        for name, args in answers:
            if name == method:
                return args
        return answers[0][1]

    def error(self, ref: CallRef) -> MethodError | None:
        """The method's error, or None (without raising)."""
        for name, args in self.all(ref):
            if name == "error":
                return method_error(ref.method, args)
        return None


class _CountingReader:
    """Wraps the response's socket file and counts the bytes read through it."""

    def __init__(self, raw: Any, client: JmapClient):
        self.raw, self.client = raw, client

    def _count(self, data: bytes) -> bytes:
        self.client._received += len(data)
        return data

    def read(self, n: int = -1) -> bytes:
        return self._count(self.raw.read(n))

    def read1(self, n: int = -1) -> bytes:
        return self._count(self.raw.read1(n))

    def readline(self, limit: int = -1) -> bytes:
        return self._count(self.raw.readline(limit))

    def readinto(self, b: Any) -> int:
        n = self.raw.readinto(b)
        self._count(b"") if n is None else self._count(bytes(memoryview(b)[:n]))
        return n

    def peek(self, n: int = 0) -> bytes:
        return self.raw.peek(n)

    def close(self) -> None:
        self.raw.close()

    def flush(self) -> None:
        pass

    @property
    def closed(self) -> bool:
        return bool(self.raw.closed)


class JmapClient:
    """A JMAP session: Basic auth (username/password) or a bearer token. Not thread-safe."""

    def __init__(self, url: str, *, username: str | None = None, password: str | None = None,
                 token: str | None = None, allow_insecure: bool = False, ca_file: str | None = None,
                 fingerprint: str | None = None, timeout: float = 30.0, deadline: float = 120.0,
                 max_response: int = MAX_RESPONSE, user_agent: str = "tuimail"):
        if token:
            self.authorization = f"Bearer {token}"
        elif username is not None and password is not None:
            self.authorization = "Basic " + base64.b64encode(f"{username}:{password}".encode()).decode("ascii")
        else:
            raise UsageError("JMAP needs a password or an OAuth2 token")
        self.url = discovery_url(url)
        self.allow_insecure = allow_insecure
        self.ca_file, self.fingerprint = ca_file, fingerprint
        self.timeout, self.deadline, self.max_response = timeout, deadline, max_response
        self.user_agent = user_agent
        self.session: Session | None = None
        self.session_stale = False
        self.exchanges: list[Exchange] = []  # every request, oldest first (bounded)
        self._conns: dict[tuple[str, str, int], _CountingHTTP | _CountingHTTPS] = {}
        self._received = 0

    # -- lifecycle --------------------------------------------------------------------------

    @classmethod
    def connect(cls, url: str, **kwargs: Any) -> JmapClient:
        client = cls(url, **kwargs)
        client.fetch_session()
        return client

    def close(self) -> None:
        for conn in self._conns.values():
            conn.close()
        self._conns.clear()

    def __enter__(self) -> JmapClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- byte counting ----------------------------------------------------------------------

    @property
    def last(self) -> Exchange:
        return self.exchanges[-1]

    def mark(self) -> int:
        """A position in `exchanges`: ``since(mark)`` lists the requests made after it."""
        return len(self.exchanges)

    def since(self, mark: int) -> list[Exchange]:
        return self.exchanges[mark:]

    # -- session ----------------------------------------------------------------------------

    def fetch_session(self) -> Session:
        """GET the session resource (following redirects: .well-known/jmap usually redirects)."""
        status, body, final_url = self._get_following(self.url, MAX_SESSION)
        if status != 200:
            raise ProtocolError(f"JMAP session at {final_url} answered HTTP {status}")
        self.session = Session.parse(final_url, self._json(body, final_url))
        self.session_stale = False
        trace("jmap: session")
        return self.session

    @property
    def account_id(self) -> str:
        """The primary mail account."""
        session = self._session()
        acc = session.primary_accounts.get(MAIL)
        if not acc:
            raise ProtocolError(f"JMAP session at {session.url} has no mail account")
        return acc

    def _session(self) -> Session:
        if self.session is None or self.session_stale:
            return self.fetch_session()
        return self.session

    # -- method calls -----------------------------------------------------------------------

    def batch(self) -> Batch:
        return Batch()

    def call(self, method: str, args: dict[str, Any]) -> dict[str, Any]:
        """One method call in its own request; its arguments (or its typed error)."""
        batch = self.batch()
        ref = batch.call(method, args)
        return self.send(batch)[ref]

    def send(self, batch: Batch) -> Response:
        session = self._session()
        max_calls = session.limit("maxCallsInRequest", 16)
        if len(batch.calls) > max_calls:
            raise UsageError(f"{len(batch.calls)} JMAP method calls in one request: the server takes {max_calls}")
        body = json.dumps({"using": sorted(batch.using), "methodCalls": batch.calls},
                          separators=(",", ":")).encode()
        max_request = session.limit("maxSizeRequest", 10 << 20)
        if len(body) > max_request:
            raise UsageError(f"JMAP request of {len(body)} bytes: the server takes {max_request}")
        status, headers, data = self._request("POST", session.api_url, body, "application/json", self.max_response,
                                              retry=batch.repeatable)
        if status != 200:
            self._raise_http(status, headers, data, session.api_url)
        parsed = self._json(data, session.api_url)
        if not isinstance(parsed, dict) or not isinstance(parsed.get("methodResponses"), list):
            raise ProtocolError(f"JMAP server at {session.api_url} sent no methodResponses")
        response = Response(parsed, self.last)
        trace(f"jmap: {' '.join(c[0] for c in batch.calls)} ({len(data)} B)")
        if response.session_state is not None and response.session_state != session.state:
            self.session_stale = True  # refetched before the next request
        return response

    # -- blobs ------------------------------------------------------------------------------

    def download(self, blob_id: str, *, name: str = "blob", type_: str = "application/octet-stream",
                 account_id: str | None = None, max_bytes: int = 50 << 20) -> bytes:
        """A blob's bytes via the session's downloadUrl template; more than max_bytes is refused."""
        session = self._session()
        values = {"accountId": account_id or self.account_id, "blobId": blob_id, "name": name, "type": type_}
        url = session.download_url
        for key, value in values.items():
            url = url.replace("{" + key + "}", urllib.parse.quote(value, safe=""))
        status, headers, data = self._request("GET", url, None, None, max_bytes)
        if status != 200:
            self._raise_http(status, headers, data, url)
        return data

    def upload(self, data: bytes, type_: str = "message/rfc822", account_id: str | None = None) -> str:
        """POST a blob to the uploadUrl; its blobId."""
        session = self._session()
        max_upload = session.limit("maxSizeUpload", 50 << 20)
        if len(data) > max_upload:
            raise UsageError(f"upload of {len(data)} bytes: the server takes {max_upload}")
        url = session.upload_url.replace("{accountId}", urllib.parse.quote(account_id or self.account_id, safe=""))
        status, headers, body = self._request("POST", url, data, type_, MAX_SESSION)
        if status not in (200, 201):
            self._raise_http(status, headers, body, url)
        parsed = self._json(body, url)
        blob_id = parsed.get("blobId") if isinstance(parsed, dict) else None
        if not isinstance(blob_id, str):
            raise ProtocolError(f"JMAP upload to {url} answered without a blobId")
        return blob_id

    # -- HTTP -------------------------------------------------------------------------------

    def _get_following(self, url: str, limit: int) -> tuple[int, bytes, str]:
        for _ in range(MAX_REDIRECTS + 1):
            status, headers, data = self._request("GET", url, None, None, limit)
            if status in (301, 302, 303, 307, 308) and headers.get("location"):
                target = urllib.parse.urljoin(url, headers["location"])
                old, new = urllib.parse.urlsplit(url), urllib.parse.urlsplit(target)
                if old.scheme == "https" and new.scheme != "https":
                    raise TLSError(f"JMAP server at {old.hostname} redirected from https to {server_text(target, 120)}")
                url = target
                continue
            if status >= 400:
                self._raise_http(status, headers, data, url)
            return status, data, url
        raise ProtocolError(f"JMAP session at {self.url}: more than {MAX_REDIRECTS} redirects")

    def _conn(self, parts: urllib.parse.SplitResult) -> _CountingHTTP | _CountingHTTPS:
        key = _origin(parts)
        conn = self._conns.get(key)
        if conn is None:
            conn = self._conns[key] = self.new_connection(parts)
        return conn

    def new_connection(self, parts: urllib.parse.SplitResult, timeout: float | None = None
                       ) -> _CountingHTTP | _CountingHTTPS:
        """A connection (not yet open) to the URL's origin, TLS verified, plain http only to loopback
        or with allow_insecure. push.py opens its long-lived EventSource stream on one of its own."""
        scheme, host, port = _origin(parts)
        if scheme == "http" and not (is_loopback(host) or self.allow_insecure):
            raise TLSError(f"JMAP server {host} over plain http: use https, or set allow_insecure to send the "
                           "password unencrypted")
        conn: _CountingHTTP | _CountingHTTPS
        if scheme == "https":
            ctx = verified_context(self.ca_file, self.fingerprint)
            conn = _CountingHTTPS(host, port, timeout=timeout or self.timeout, context=ctx)
        else:
            conn = _CountingHTTP(host, port, timeout=timeout or self.timeout)
        conn.response_class = _response_class(self)
        return conn

    def headers(self, content_type: str | None = None, accept: str = "application/json") -> dict[str, str]:
        headers = {"Authorization": self.authorization, "Accept": accept, "User-Agent": self.user_agent,
                   "Accept-Encoding": "identity"}
        if content_type:
            headers["Content-Type"] = content_type
        return headers

    def _request(self, method: str, url: str, body: bytes | None, content_type: str | None,
                 limit: int, *, retry: bool = True) -> tuple[int, dict[str, str], bytes]:
        parts = urllib.parse.urlsplit(url)
        path = parts.path or "/"
        if parts.query:
            path += "?" + parts.query
        headers = self.headers(content_type)
        exchange = Exchange(method, path)
        self.exchanges.append(exchange)
        del self.exchanges[:-1000]
        t0 = time.monotonic()
        for attempt in (0, 1):
            conn = self._conn(parts)
            fresh = conn.sock is None
            self._received = 0
            sent_before = conn.bytes_sent
            # The overall deadline: a socket timeout bounds each read, not a server trickling one
            # byte at a time; at the deadline a watchdog shuts the socket down under the reader.
            expired = threading.Event()
            timer = threading.Timer(max(0.0, t0 + self.deadline - time.monotonic()), _expire, (conn, expired))
            timer.daemon = True
            timer.start()
            try:
                conn.request(method, path, body=body, headers=headers)
                if self.fingerprint and parts.scheme == "https":
                    check_pin(conn.sock, self.fingerprint, parts.hostname or "", "fingerprint")
                resp = conn.getresponse()
                status = resp.status
                resp_headers = {k.lower(): v for k, v in resp.getheaders()}
                data = _read_bounded(resp, limit, url)
                if expired.is_set():
                    raise TimeoutError
            except Exception as e:
                self._drop(conn, parts)
                if expired.is_set() or isinstance(e, TimeoutError):
                    raise NetworkError(f"JMAP server {parts.hostname} did not answer in time ({self.timeout:.0f} s "
                                       f"per read, {self.deadline:.0f} s per request)") from None
                if isinstance(e, (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError)):
                    if attempt == 0 and not fresh and retry:
                        # a keep-alive connection the server had closed: once more on a new one. Not
                        # for a request that must not run twice: the server may have acted on it.
                        continue
                    raise NetworkError(f"JMAP server {parts.hostname} closed the connection") from None
                if isinstance(e, ssl.SSLCertVerificationError):
                    raise TLSError(f"TLS certificate of {parts.hostname} not accepted: {e.verify_message}") from None
                if isinstance(e, ssl.SSLError):
                    raise TLSError(f"TLS with {parts.hostname} failed: {e.reason or e}") from None
                if isinstance(e, (ProtocolError, TLSError)):
                    raise
                if isinstance(e, socket.gaierror):
                    raise NetworkError(f"JMAP server {parts.hostname}: host not found") from None
                if isinstance(e, (OSError, http.client.HTTPException)):
                    raise NetworkError(f"JMAP server {parts.hostname}:{conn.port}: {server_text(e, 200)}") from None
                raise
            finally:
                timer.cancel()
            if resp.will_close:
                self._drop(conn, parts)
            exchange.status, exchange.sent, exchange.received = status, conn.bytes_sent - sent_before, self._received
            exchange.seconds = time.monotonic() - t0
            return status, resp_headers, data
        raise AssertionError("unreachable")

    def _drop(self, conn: http.client.HTTPConnection, parts: urllib.parse.SplitResult) -> None:
        conn.close()
        for key, value in list(self._conns.items()):
            if value is conn:
                del self._conns[key]

    def _raise_http(self, status: int, headers: dict[str, str], data: bytes, url: str) -> None:
        host = urllib.parse.urlsplit(url).hostname
        if status in (401, 403):
            raise AuthError(f"JMAP server {host} refused the login (HTTP {status})")
        problem: Any = None
        if "json" in headers.get("content-type", ""):
            try:
                problem = json.loads(data)
            except ValueError:
                problem = None
        if isinstance(problem, dict) and status < 500:
            raise RequestError(status, str(problem.get("type") or ""), str(problem.get("detail") or ""),
                               str(problem["limit"]) if problem.get("limit") else None)
        if status >= 500:
            raise NetworkError(f"JMAP server {host} failed (HTTP {status}): {server_text(data[:200])}")
        raise RequestError(status, "", server_text(data[:200]))

    @staticmethod
    def _json(data: bytes, url: str) -> Any:
        try:
            return json.loads(data)
        except ValueError:
            raise ProtocolError(f"JMAP server at {url} sent something that is not JSON") from None


def _response_class(client: JmapClient) -> type[http.client.HTTPResponse]:
    class CountingResponse(http.client.HTTPResponse):
        def __init__(self, sock: socket.socket, *args: Any, **kwargs: Any):
            super().__init__(sock, *args, **kwargs)
            self.fp = cast(io.BufferedReader, _CountingReader(self.fp, client))  # (reads like one)

    return CountingResponse


class _CountingHTTP(http.client.HTTPConnection):
    bytes_sent = 0

    def send(self, data: Any) -> None:
        self.bytes_sent += len(data)
        super().send(data)


class _CountingHTTPS(http.client.HTTPSConnection):
    bytes_sent = 0

    def send(self, data: Any) -> None:
        self.bytes_sent += len(data)
        super().send(data)


def _origin(parts: urllib.parse.SplitResult) -> tuple[str, str, int]:
    scheme, host = parts.scheme, parts.hostname or ""
    if scheme not in ("http", "https") or not host:
        raise UsageError(f"JMAP URL {server_text(parts.geturl(), 120)!r} is not an http(s) URL")
    return scheme, host, parts.port or (443 if scheme == "https" else 80)


def _expire(conn: http.client.HTTPConnection, expired: threading.Event) -> None:
    expired.set()
    sock = conn.sock
    if sock is not None:
        try:
            sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass


def _read_bounded(resp: http.client.HTTPResponse, limit: int, url: str) -> bytes:
    length = resp.getheader("content-length")
    if length is not None and length.isdigit() and int(length) > limit:
        raise ProtocolError(f"JMAP server at {url} sent {int(length)} bytes, more than the {limit} allowed")
    chunks: list[bytes] = []
    total = 0
    while True:
        chunk = resp.read(min(1 << 16, limit + 1 - total))
        if not chunk:
            break
        chunks.append(chunk)
        total += len(chunk)
        if total > limit:
            raise ProtocolError(f"JMAP server at {url} sent more than the {limit} bytes allowed")
    if length is not None and length.isdigit() and total < int(length):
        raise http.client.IncompleteRead(b"", int(length) - total)  # a dropped connection, not an answer
    return b"".join(chunks)
