"""The login of `tuimail serve`, without the web server: password hashes, the token check, sessions
and the throttle on failed logins. Plain standard library, a clock passed in, so that all of it is
tested without a socket.

- A password is stored as a scrypt hash (config.model.PasswordHash); a token comes from the
  config's token_command, or is drawn at random for one run on a loopback address. Both are
  compared in constant time (hmac.compare_digest on digests of equal length).
- A session is a random cookie value; the server keeps only its SHA-256, so the lookup leaks no
  timing about the value, and a dump of the server's memory holds no usable cookie.
- One session per login: a successful login ends the session before it (its app is stopped), so
  one browser drives the store at a time, as one terminal would.
- Failed logins are throttled per client address (a few free attempts, then a doubling wait) and
  overall (a ceiling per minute, which also bounds the CPU scrypt costs an attacker).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from collections import OrderedDict, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from tuimail.config.model import PasswordHash

# scrypt cost: 32 MB and ~0.1 s per check on our machines (OWASP's minimum is N=2**17, r=8 with
# p=1 for a server doing many logins; one user's login can afford N=2**15 with r=8).
SCRYPT_N = 2 ** 15
SCRYPT_R = 8
SCRYPT_P = 1
MIN_PASSWORD = 8  # characters
MIN_TOKEN = 16  # characters of a token_command's output


def _maxmem(n: int, r: int, p: int) -> int:
    return 128 * n * r * (p + 2) + (1 << 20)


def hash_password(password: str, *, n: int = SCRYPT_N, r: int = SCRYPT_R, p: int = SCRYPT_P) -> str:
    """The "scrypt$..." line for [serve] password_hash."""
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode("utf-8"), salt=salt, n=n, r=r, p=p, maxmem=_maxmem(n, r, p), dklen=32)
    return PasswordHash(n, r, p, salt, digest).text()


def verify_password(password: str, stored: PasswordHash) -> bool:
    """Constant time in the password's content (scrypt then compare_digest)."""
    digest = hashlib.scrypt(password.encode("utf-8"), salt=stored.salt, n=stored.n, r=stored.r, p=stored.p,
                            maxmem=_maxmem(stored.n, stored.r, stored.p), dklen=len(stored.digest))
    return hmac.compare_digest(digest, stored.digest)


def same_secret(given: str, expected: str) -> bool:
    """Constant time, the length included: compares SHA-256 digests."""
    a = hashlib.sha256(given.encode("utf-8", "surrogatepass")).digest()
    b = hashlib.sha256(expected.encode("utf-8")).digest()
    return hmac.compare_digest(a, b)


class Login:
    """What a login is checked against: a password hash or a token (exactly one)."""

    def __init__(self, *, password_hash: str | None = None, token: str | None = None, drawn: bool = False):
        self.drawn = drawn  # a random token for this run (printed in the start-up URL)
        if (password_hash is None) == (token is None):
            raise ValueError("a login has a password hash or a token")
        self._hash = PasswordHash.parse(password_hash) if password_hash is not None else None
        self._token = token
        self.kind = "password" if password_hash is not None else "token"

    @classmethod
    def random_token(cls) -> Login:
        return cls(token=secrets.token_urlsafe(24), drawn=True)

    @property
    def token(self) -> str | None:
        """The token (to print in the start-up URL when it was drawn at random)."""
        return self._token

    @property
    def slow(self) -> bool:
        """A check costs scrypt: run it off the event loop."""
        return self._hash is not None

    def check(self, secret: str) -> bool:
        if len(secret) > 1024:  # no scrypt over a megabyte of form data
            return False
        if self._hash is not None:
            return verify_password(secret, self._hash)
        assert self._token is not None
        return same_secret(secret, self._token)


def _key(cookie: str) -> bytes:
    return hashlib.sha256(cookie.encode("utf-8", "surrogatepass")).digest()


@dataclass
class Session:
    key: bytes = field(repr=False)
    created: float
    last_seen: float
    ended: bool = False
    # the web server's: the running app and what ends it (tuimail/serve/web.py)
    app: Any = None
    on_end: list[Callable[[], None]] = field(default_factory=list, repr=False)

    def end(self) -> None:
        if self.ended:
            return
        self.ended = True
        for callback in self.on_end:
            callback()
        self.on_end.clear()


class Sessions:
    """The live session (one per login: a new login ends the one before)."""

    COOKIE_BYTES = 32

    def __init__(self, *, idle_timeout: float = 12 * 3600, max_age: float = 7 * 86400,
                 clock: Callable[[], float] = time.monotonic):
        self.idle_timeout = idle_timeout
        self.max_age = max_age
        self.clock = clock
        self._by_key: dict[bytes, Session] = {}

    def create(self) -> tuple[str, Session]:
        """A new session and its cookie value; every other session ends."""
        self.end_all()
        cookie = secrets.token_urlsafe(self.COOKIE_BYTES)
        now = self.clock()
        session = Session(key=_key(cookie), created=now, last_seen=now)
        self._by_key[session.key] = session
        return cookie, session

    def get(self, cookie: str | None) -> Session | None:
        """The live session of this cookie value (and it was seen now), or None."""
        if not cookie or len(cookie) > 256:
            return None
        session = self._by_key.get(_key(cookie))
        if session is None:
            return None
        now = self.clock()
        busy = session.app is not None  # an open app is activity
        if session.ended or now - session.created > self.max_age or (
                not busy and now - session.last_seen > self.idle_timeout):
            self.end(session)
            return None
        session.last_seen = now
        return session

    def end(self, session: Session) -> None:
        self._by_key.pop(session.key, None)
        session.end()

    def live(self) -> list[Session]:
        return list(self._by_key.values())

    def end_all(self) -> None:
        for session in self.live():
            self.end(session)

    def __len__(self) -> int:
        return len(self._by_key)


class Throttle:
    """Failed logins: `free` per client address, then a wait that doubles with each failure (up to
    `max_wait`); and at most `per_minute` failures from everyone together. An attempt is charged
    before it is checked (so that parallel attempts cannot all pass) and a success forgets the
    address's failures."""

    def __init__(self, *, free: int = 5, max_wait: float = 300.0, per_minute: int = 30, forget_after: float = 3600.0,
                 max_clients: int = 10_000, clock: Callable[[], float] = time.monotonic):
        self.free = free
        self.max_wait = max_wait
        self.per_minute = per_minute
        self.forget_after = forget_after
        self.max_clients = max_clients
        self.clock = clock
        self._clients: OrderedDict[str, tuple[int, float]] = OrderedDict()  # address -> (failures, last)
        self._recent: deque[float] = deque()  # times of everyone's failures in the last minute

    def wait(self, client: str) -> float:
        """Seconds before `client` may try again; 0 = now."""
        now = self.clock()
        while self._recent and now - self._recent[0] >= 60:
            self._recent.popleft()
        wait = 0.0
        if len(self._recent) >= self.per_minute:
            wait = 60 - (now - self._recent[0])
        failures, last = self._clients.get(client, (0, 0.0))
        if failures and now - last > self.forget_after:
            del self._clients[client]
            failures = 0
        if failures >= self.free:
            wait = max(wait, last + min(self.max_wait, 2.0 ** (failures - self.free)) - now)
        return max(0.0, wait)

    def charge(self, client: str) -> None:
        """An attempt begins: counted as a failure until success() says otherwise."""
        now = self.clock()
        failures, _ = self._clients.pop(client, (0, 0.0))
        self._clients[client] = (failures + 1, now)
        while len(self._clients) > self.max_clients:
            self._clients.popitem(last=False)
        self._recent.append(now)

    def success(self, client: str) -> None:
        self._clients.pop(client, None)
        if self._recent:
            self._recent.pop()  # the charge of this attempt
