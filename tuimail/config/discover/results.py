"""What discovery finds and says: the parsed address, the server candidates with where they came
from and what a probe read from them, and the steps reported to a UI or CLI as they happen."""

from __future__ import annotations

import encodings.idna
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from tuimail.config.validate import _is_loopback
from tuimail.errors import UsageError

PROTOCOLS = ("imap", "pop3", "smtp")
INCOMING = ("imap", "pop3")
SECURITY_RANK = {"tls": 0, "starttls": 1, "none": 2}
SOURCE_RANK = {"manual": 0, "autoconfig": 1, "srv": 2, "well-known": 2, "guess": 3}
_LABEL = re.compile(r"(?!-)[a-z0-9-]{1,63}(?<!-)")


def is_loopback(host: str) -> bool:
    """The validator's rule: "localhost" or a loopback address (plain text is allowed only there)."""
    return _is_loopback(host)


def ascii_host(text: str) -> str | None:
    """`text` as a lower-case ASCII host name (IDNA for non-ASCII labels), or None if it is not one.
    IP literals are refused: discovery works on names."""
    name = text.strip().rstrip(".").lower()
    if not name or len(name) > 253 or any(c.isspace() or ord(c) < 32 for c in name):
        return None
    labels = []
    for label in name.split("."):
        if not label.isascii():
            try:
                label = encodings.idna.ToASCII(label).decode("ascii")
            except UnicodeError:
                return None
        if not _LABEL.fullmatch(label):
            return None
        labels.append(label)
    out = ".".join(labels)
    return out if len(out) <= 253 else None


@dataclass(frozen=True)
class Address:
    text: str  # as typed (stripped)
    local: str
    domain: str  # ASCII (IDNA), lower case

    @property
    def ascii(self) -> str:
        return f"{self.local}@{self.domain}"


def parse_address(text: str) -> Address:
    """An e-mail address split at its last "@"; UsageError (one line) when it is not one."""
    s = text.strip()
    if not s:
        raise UsageError("no e-mail address given")
    if any(ord(c) < 32 or ord(c) == 127 or c.isspace() for c in s):
        raise UsageError(f"not an e-mail address (spaces or control characters): {s!r}")
    local, at, domain_text = s.rpartition("@")
    if not at or not local or not domain_text:
        raise UsageError(f"not an e-mail address (expected name@domain): {s!r}")
    if len(local) > 64 * 4:
        raise UsageError("not an e-mail address: the part before @ is too long")
    domain = ascii_host(domain_text)
    if domain is None:
        raise UsageError(f"not an e-mail address: {domain_text!r} is not a domain name")
    return Address(text=s, local=local, domain=domain)


@dataclass(frozen=True)
class Probe:
    """What a server said when asked for its greeting and capabilities (no login)."""

    ok: bool
    greeting: str = ""  # one line, sanitised and shortened
    caps: frozenset[str] = frozenset()  # upper case; IMAP CAPABILITY, POP3 CAPA, SMTP EHLO keywords
    error: str = ""  # one line when not ok
    tls: bool = False  # the session ran over TLS (implicit or after STARTTLS)

    def has(self, cap: str) -> bool:
        return cap.upper() in self.caps


@dataclass(frozen=True)
class Candidate:
    """One server to try: a protocol at host:port with a security mode, and where it came from."""

    protocol: str  # "imap" | "pop3" | "smtp"
    host: str
    port: int
    security: str  # "tls" | "starttls" | "none"
    source: str  # "autoconfig" | "srv" | "guess" | "manual"
    origin: str  # one line: the URL or the DNS name it came from
    username: str | None = None  # from autoconfig (placeholders filled in), else None
    auth: tuple[str, ...] = ()  # autoconfig's <authentication> values
    priority: int = 0  # SRV priority/weight order or document order (lower first)
    note: str = ""  # a warning to show (SRV target outside the domain, OAuth2 only, ...)
    probe: Probe | None = None
    url: str = ""  # JMAP: the session resource (host/port/security are its origin's)

    @property
    def where(self) -> str:
        return f"{self.host}:{self.port}"

    def key(self) -> tuple[str, str, int, str]:
        return (self.protocol, self.host, self.port, self.security)

    @property
    def usable(self) -> bool:
        """Worth a login: the probe answered, or a JMAP session (not probed: checked at login)."""
        return self.protocol == "jmap" or (self.probe is not None and self.probe.ok)

    def rank(self) -> tuple:
        probed = 0 if self.probe is not None and self.probe.ok else 1 if self.probe is None else 2
        return (probed, SECURITY_RANK[self.security], SOURCE_RANK.get(self.source, 9), self.priority)


@dataclass(frozen=True)
class Jmap:
    """A JMAP session resource found by SRV or .well-known/jmap (offered as kind = "jmap")."""

    url: str
    origin: str
    needs_login: bool  # the server answered 401: it exists, the session needs credentials

    def candidate(self) -> Candidate:
        return jmap_candidate(self.url, "srv" if self.origin.startswith("SRV ") else "well-known", self.origin)


def jmap_candidate(url: str, source: str, origin: str) -> Candidate:
    """The account candidate of a JMAP session URL: host, port and security are its origin's
    (https: "tls", http: "none"). UsageError (one line) when it is not an http(s) URL."""
    parts = urlsplit(url.strip())
    try:
        port = parts.port
    except ValueError:
        port = -1
    if parts.scheme not in ("http", "https") or not parts.hostname or port == -1 or any(
            c.isspace() or ord(c) < 32 for c in url):
        raise UsageError(f"not a JMAP session URL (expected http(s)://host/...): {url[:80]!r}")
    security = "tls" if parts.scheme == "https" else "none"
    return Candidate("jmap", parts.hostname, port or (443 if security == "tls" else 80), security, source, origin,
                     url=url.strip())


@dataclass(frozen=True)
class Step:
    """One thing discovery did, as it happened. `stage`: autoconfig | srv | jmap | probe;
    `outcome`: start (the stage begins: show a spinner) | found | none | error | skipped | refused;
    `text`: one line for the user."""

    stage: str
    outcome: str
    text: str
    candidate: Candidate | None = None


Report = Callable[[Step], None]


@dataclass
class Discovery:
    address: Address
    candidates: list[Candidate] = field(default_factory=list)
    jmap: list[Jmap] = field(default_factory=list)
    steps: list[Step] = field(default_factory=list)

    def working(self, protocols: tuple[str, ...]) -> list[Candidate]:
        """Candidates of these protocols whose probe succeeded, best first (IMAP before POP3 for
        incoming; then implicit TLS, STARTTLS, plain; then autoconfig, SRV, guesses)."""
        found = [c for c in self.candidates if c.protocol in protocols and c.probe is not None and c.probe.ok]
        return sorted(found, key=lambda c: (protocols.index(c.protocol),) + c.rank())

    @property
    def incoming(self) -> Candidate | None:
        best = self.working(INCOMING)
        return best[0] if best else None

    @property
    def jmap_candidates(self) -> list[Candidate]:
        """The JMAP sessions found, as account candidates (.well-known first, then SRV order);
        the ones whose URL is unusable are left out."""
        out: list[Candidate] = []
        for j in sorted(self.jmap, key=lambda j: j.origin.startswith("SRV ")):
            try:
                c = j.candidate()
            except UsageError:
                continue
            if all(o.url != c.url for o in out):
                out.append(c)
        return out

    @property
    def outgoing(self) -> Candidate | None:
        best = self.working(("smtp",))
        return best[0] if best else None
