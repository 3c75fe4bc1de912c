"""Discovery, in the order issue 16 gives: the provider's autoconfig document, SRV records
(RFC 6186/8314), .well-known/jmap, then probing the usual names and ports. Each step is reported
through `report` as it happens, always from the calling thread (the network work of a step runs
in parallel threads; their results are reported in a fixed order).

Implicit TLS is preferred, then STARTTLS; plain text is only ever used on loopback.
"""

from __future__ import annotations

import json
import ssl
import threading
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from typing import TypeVar

from tuimail.config.discover import autoconfig
from tuimail.config.discover.dns import DnsFailed, Resolver, Srv, SystemResolver
from tuimail.config.discover.net import (
    Connector,
    FetchFailed,
    Fetcher,
    HttpFetcher,
    TlsContext,
    default_tls,
    tcp_connect,
)
from tuimail.config.discover.probe import NO_STARTTLS, fingerprint, probe
from tuimail.config.discover.results import (
    SECURITY_RANK,
    INCOMING,
    Address,
    Candidate,
    Discovery,
    Jmap,
    Probe,
    Report,
    Step,
    ascii_host,
    is_loopback,
    jmap_candidate,
    parse_address,
)
from tuimail.errors import UsageError
from tuimail.mail.sanitize import sanitize_strict

TIMEOUT = 10.0  # seconds for one fetch, one DNS query or one probe
WORKERS = 8
MAX_JMAP_BYTES = 256 << 10

# (service, protocol, security); RFC 6186 and RFC 8314: the "s" services are implicit TLS
SRV_SERVICES = (
    ("_imaps._tcp", "imap", "tls"),
    ("_imap._tcp", "imap", "starttls"),
    ("_submissions._tcp", "smtp", "tls"),
    ("_submission._tcp", "smtp", "starttls"),
    ("_pop3s._tcp", "pop3", "tls"),
    ("_pop3._tcp", "pop3", "starttls"),
    ("_jmap._tcp", "jmap", "tls"),
)
JMAP_URN = "urn:ietf:params:jmap:"
LABELS = {"tls": "TLS", "starttls": "STARTTLS", "none": "plain text"}
INTERESTING = ("IDLE", "QRESYNC", "CONDSTORE", "STARTTLS", "STLS", "UIDL", "AUTH=PLAIN", "AUTH=LOGIN", "PIPELINING")

T = TypeVar("T")
R = TypeVar("R")


def guesses(domain: str) -> list[Candidate]:
    """The usual names and ports, implicit TLS first."""
    plan = (("imap", ("imap", "mail", ""), (993, "tls"), (143, "starttls")),
            ("pop3", ("pop", "mail"), (995, "tls"), (110, "starttls")),
            ("smtp", ("smtp", "mail"), (465, "tls"), (587, "starttls")))
    out = []
    n = 0
    for protocol, prefixes, *ports in plan:
        for port, security in ports:
            for prefix in prefixes:
                host = f"{prefix}.{domain}" if prefix else domain
                n += 1
                out.append(Candidate(protocol, host, port, security, "guess", "probing the usual names", priority=n))
    return out


def describe(c: Candidate) -> str:
    """`IMAP imap.example.org:993 (TLS)`; `JMAP https://example.org/.well-known/jmap`."""
    if c.protocol == "jmap":
        return f"JMAP {c.url}"
    return f"{c.protocol.upper()} {c.where} ({LABELS[c.security]})"


def features(p: Probe | frozenset[str]) -> str:
    """The capabilities worth showing (IDLE, QRESYNC, ...) of a probe or a capability set (a
    LoginCheck's, read after login: Dovecot names QRESYNC only then)."""
    caps = p.caps if isinstance(p, Probe) else p
    have = [cap for cap in INTERESTING if cap in caps]
    have += sorted(c.rsplit(":", 1)[-1] for c in caps if c.lower().startswith(JMAP_URN))  # a JMAP session's
    return ", ".join(have) if have else "no notable capabilities"


class Discoverer:
    def __init__(self, *, report: Report | None = None, resolver: Resolver | None = None,
                 fetch: Fetcher | None = None, connector: Connector = tcp_connect, tls: TlsContext = default_tls,
                 timeout: float = TIMEOUT, thorough: bool = False, workers: int = WORKERS):
        self.report_fn = report
        self.resolver = resolver if resolver is not None else SystemResolver()
        self.fetch = fetch if fetch is not None else HttpFetcher(connector, tls)
        self.connector = connector
        self.tls = _once(tls)
        self.timeout = timeout
        self.thorough = thorough
        self.workers = workers

    def _map(self, fn: Callable[[T], R], items: Iterable[T]) -> list[R]:
        items = list(items)
        if not items:
            return []
        with ThreadPoolExecutor(max_workers=min(self.workers, len(items))) as pool:
            return list(pool.map(fn, items))

    def run(self, address: str | Address) -> Discovery:
        addr = address if isinstance(address, Address) else parse_address(address)
        self.found = Discovery(addr)
        self._autoconfig(addr)
        if self._enough() and not self.thorough:
            self._say(Step("srv", "skipped", "SRV records: not needed, the autoconfig document named the servers"))
            self._say(Step("jmap", "skipped", ".well-known/jmap: not needed, the servers are known"))
        else:
            self._srv(addr)
            self._well_known_jmap(addr)
        self._probe_known()
        if self.thorough or self.found.incoming is None or self.found.outgoing is None:
            self._probe_guesses(addr)
        else:
            self._say(Step("probe", "skipped", "usual names and ports: not needed, the servers answered"))
        return self.found

    # -- reporting --------------------------------------------------------------------------

    def _say(self, step: Step) -> None:
        step = replace(step, text=sanitize_strict(step.text))  # server-made text reaches a terminal
        self.found.steps.append(step)
        if self.report_fn is not None:
            self.report_fn(step)

    def _enough(self) -> bool:
        protocols = {c.protocol for c in self.found.candidates}
        return bool(protocols & set(INCOMING)) and "smtp" in protocols

    def _add(self, c: Candidate) -> bool:
        if any(o.key() == c.key() for o in self.found.candidates):
            return False
        self.found.candidates.append(c)
        return True

    # -- 1. autoconfig ----------------------------------------------------------------------

    def _autoconfig(self, addr: Address) -> None:
        urls = autoconfig.urls(addr)
        self._say(Step("autoconfig", "start", f"asking autoconfig.{addr.domain} and {addr.domain} for the"
                                              " provider's settings"))

        def get(url: str) -> object:
            try:
                return self.fetch(url, self.timeout, autoconfig.MAX_BYTES)
            except FetchFailed as exc:
                return exc

        for url, got in zip(urls, self._map(get, urls), strict=True):
            shown = url.split("?")[0]
            if isinstance(got, Exception):
                self._say(Step("autoconfig", "error", f"{shown}: {got}"))
                continue
            status = getattr(got, "status", 0)
            if status != 200:
                self._say(Step("autoconfig", "none", f"{shown}: HTTP {status}"))
                continue
            try:
                found, skipped = autoconfig.parse(getattr(got, "body", b""), addr, shown)
            except autoconfig.BadDocument as exc:
                self._say(Step("autoconfig", "error", f"{shown}: {exc}"))
                continue
            for line in skipped:
                self._say(Step("autoconfig", "error", f"{shown}: {line}: skipped"))
            if not found:
                self._say(Step("autoconfig", "none", f"{shown}: no server tuimail can use"))
                continue
            unauthenticated = shown.startswith("http:")
            for c in found:
                if unauthenticated:
                    c = replace(c, note=_join(c.note, "from plain HTTP: check the host names"))
                if self._add(c):
                    self._say(Step("autoconfig", "found", f"{shown}: {describe(c)}", c))
            return  # the first document with servers wins, as in Thunderbird

    # -- 2. SRV ----------------------------------------------------------------------------

    def _srv(self, addr: Address) -> None:
        names = [f"{service}.{addr.domain}" for service, _, _ in SRV_SERVICES]
        self._say(Step("srv", "start", f"looking up the SRV records of {addr.domain}"))

        def ask(name: str) -> list[Srv] | Exception:
            try:
                return self.resolver.srv(name, self.timeout)
            except DnsFailed as exc:
                return exc

        for (_service, protocol, security), name, got in zip(SRV_SERVICES, names, self._map(ask, names),
                                                              strict=True):
            if isinstance(got, Exception):
                self._say(Step("srv", "error", f"{name}: {got}"))
                continue
            usable = [r for r in got if r.target and ascii_host(r.target) and 0 < r.port < 65536]
            if not got:
                self._say(Step("srv", "none", f"{name}: no record"))
            elif not usable and all(not r.target for r in got):
                self._say(Step("srv", "none", f"{name}: the service is not offered"))
            elif not usable:
                self._say(Step("srv", "error", f"{name}: no usable record (bad target name or port)"))
            for n, r in enumerate(sorted(usable, key=lambda r: (r.priority, -r.weight))):
                host = ascii_host(r.target) or ""
                note = ""
                if host != addr.domain and not host.endswith("." + addr.domain):
                    note = f"outside {addr.domain}: DNS is not authenticated, confirm {host}"
                if protocol == "jmap":
                    url = f"https://{host}{'' if r.port == 443 else f':{r.port}'}/.well-known/jmap"
                    self.found.jmap.append(Jmap(url, f"SRV {name}", needs_login=True))
                    self._say(Step("srv", "found", f"{name}: JMAP at {url}"))
                    continue
                c = Candidate(protocol, host, r.port, security, "srv", f"SRV {name}", priority=n, note=note)
                if self._add(c):
                    self._say(Step("srv", "found", f"{name}: {describe(c)}" + (f" ({note})" if note else ""), c))

    # -- 3. .well-known/jmap -------------------------------------------------------------------

    def _well_known_jmap(self, addr: Address) -> None:
        url = f"https://{addr.domain}/.well-known/jmap"
        self._say(Step("jmap", "start", f"asking {url}"))
        try:
            got = self.fetch(url, self.timeout, MAX_JMAP_BYTES)
        except FetchFailed as exc:
            self._say(Step("jmap", "error", f"{url}: {exc}"))
            return
        if got.status == 401:
            self.found.jmap.append(Jmap(got.url, url, needs_login=True))
            self._say(Step("jmap", "found", f"{url}: a JMAP session at {got.url} (needs the login)"))
            return
        if got.status == 200:
            try:
                doc = json.loads(got.body)
            except ValueError:
                doc = None
            if isinstance(doc, dict) and isinstance(doc.get("capabilities"), dict) \
                    and "urn:ietf:params:jmap:core" in doc["capabilities"]:
                self.found.jmap.append(Jmap(got.url, url, needs_login=False))
                self._say(Step("jmap", "found", f"{url}: a JMAP session at {got.url}"))
                return
            self._say(Step("jmap", "none", f"{url}: not a JMAP session resource"))
            return
        self._say(Step("jmap", "none", f"{url}: HTTP {got.status}"))

    # -- 4. probing ------------------------------------------------------------------------

    def _plan(self, c: Candidate) -> Candidate | None:
        """What is actually probed: plain text only on loopback (elsewhere STARTTLS is asked for)."""
        if c.security == "none" and not is_loopback(c.host):
            return replace(c, security="starttls", note=_join(c.note, "plain text refused: trying STARTTLS"))
        return c

    def _probe_all(self, todo: list[Candidate]) -> None:
        todo = [p for p in (self._plan(c) for c in todo) if p is not None]
        hosts = ", ".join(dict.fromkeys(c.host for c in todo))
        self._say(Step("probe", "start", f"asking {hosts} for their capabilities"
                                           f" ({len(todo)} port{'s' if len(todo) != 1 else ''})"))
        results = self._map(lambda c: probe(c, self.connector, self.tls, self.timeout), todo)
        for c, p in zip(todo, results, strict=True):
            if not p.ok and p.error == NO_STARTTLS and p.greeting:
                if is_loopback(c.host):  # a loopback test server without TLS: plain text is fine here
                    c = replace(c, security="none")
                    p = replace(p, ok=True, error="")
                else:
                    self._replace(c, p)
                    self._say(Step("probe", "refused", f"{describe(c)}: offers no STARTTLS; tuimail sends"
                                                       " passwords in plain text only on loopback", c))
                    continue
            if not p.ok and p.error.startswith("TLS certificate not trusted") and c.security == "tls":
                pin = fingerprint(c.host, c.port, self.connector, self.timeout)
                if pin:
                    p = replace(p, error=f"{p.error} (sha256 {pin}: pin it as tls_fingerprint if you trust it)")
            c = replace(c, probe=p)
            self._replace(c, p)
            if p.ok:
                self._say(Step("probe", "found", f"{describe(c)}: {features(p)}", c))
            else:
                self._say(Step("probe", "error", f"{describe(c)}: {p.error}", c))

    def _replace(self, c: Candidate, p: Probe) -> None:
        done = replace(c, probe=p)
        for i, o in enumerate(self.found.candidates):
            if o.protocol == c.protocol and o.host == c.host and o.port == c.port:
                self.found.candidates[i] = done
                return
        self.found.candidates.append(done)

    def _probe_known(self) -> None:
        todo = [c for c in self.found.candidates if c.probe is None]
        if todo:
            self._probe_all(todo)

    def _probe_guesses(self, addr: Address) -> None:
        need_in = self.thorough or self.found.incoming is None
        need_out = self.thorough or self.found.outgoing is None
        known = {(c.protocol, c.host, c.port) for c in self.found.candidates}
        todo = [g for g in guesses(addr.domain)
                if (g.protocol in INCOMING and need_in or g.protocol == "smtp" and need_out)
                and (g.protocol, g.host, g.port) not in known]
        self._probe_all(todo)
        if self.found.incoming is None:
            self._say(Step("probe", "none", f"no IMAP or POP3 server found for {addr.domain}:"
                                            " enter the server by hand"))
        if self.found.outgoing is None:
            self._say(Step("probe", "none", f"no SMTP server found for {addr.domain}: enter it by hand"))


def check_server(protocol: str, host: str, port: int | str, security: str, *, connector: Connector = tcp_connect,
                 tls: TlsContext = default_tls, timeout: float = TIMEOUT) -> Candidate:
    """A server the user named (`tuimail setup --host H --port P --security S`, or the wizard's
    form), probed like a discovered one. UsageError (one line) for a bad host, port or security;
    plain text off loopback comes back as a failed probe, without connecting."""
    if protocol not in ("imap", "pop3", "smtp"):
        raise UsageError(f"unknown server kind {protocol!r} (imap, pop3 or smtp)")
    name = ascii_host(host) if not is_loopback(host) else host.strip().lower()
    if not name:
        raise UsageError(f"not a host name: {host!r}")
    text = str(port).strip()
    if not text.isascii() or not text.isdigit() or not 0 < int(text) < 65536:
        raise UsageError(f"not a port number (1-65535): {str(port)[:20]!r}")
    if security not in SECURITY_RANK:
        raise UsageError(f"unknown security {security!r} (tls, starttls or none)")
    c = Candidate(protocol, name, int(text), security, "manual", "entered by hand")
    if security == "none" and not is_loopback(name):
        return replace(c, probe=Probe(ok=False, error="plain text is used only on loopback (use tls or starttls)"))
    return replace(c, probe=probe(c, connector, tls, timeout))


def jmap_server(host: str, port: int | str | None = None, security: str | None = None) -> Candidate:
    """A JMAP server the user named: its session URL, or a host (with --port/--security), which
    becomes https://HOST[:PORT]/.well-known/jmap (http only with security "none", for loopback).
    Not probed: the login check fetches the session. UsageError (one line) for bad values."""
    text = host.strip()
    if "://" in text:
        c = jmap_candidate(text, "manual", "entered by hand")
        if (port is not None and str(port).strip() not in ("", str(c.port))) or security not in (None, c.security):
            raise UsageError(f"the JMAP session URL says port {c.port}, security {c.security}: give the URL alone")
        return c
    name = ascii_host(text) if not is_loopback(text) else text.lower()
    if not name:
        raise UsageError(f"not a host name: {host!r}")
    security = security or "tls"
    if security not in ("tls", "none"):
        raise UsageError(f"JMAP security is tls (https) or none (http, loopback only), not {security!r}")
    scheme, default = ("https", 443) if security == "tls" else ("http", 80)
    where = name if ":" not in name else f"[{name}]"
    if port is not None:
        p = str(port).strip()
        if not p.isascii() or not p.isdigit() or not 0 < int(p) < 65536:
            raise UsageError(f"not a port number (1-65535): {str(port)[:20]!r}")
        if int(p) != default:
            where = f"{where}:{int(p)}"
    return jmap_candidate(f"{scheme}://{where}/.well-known/jmap", "manual", "entered by hand")


def _once(make: TlsContext) -> TlsContext:
    """One TLS context for all the probes of a discovery (each loads the CA store: ~0.1 s)."""
    made: list[ssl.SSLContext] = []
    lock = threading.Lock()

    def get() -> ssl.SSLContext:
        with lock:
            if not made:
                made.append(make())
            return made[0]

    return get


def _join(a: str, b: str) -> str:
    return f"{a}; {b}" if a else b


def discover(address: str, *, report: Report | None = None, resolver: Resolver | None = None,
             fetch: Fetcher | None = None, connector: Connector = tcp_connect, tls: TlsContext = default_tls,
             timeout: float = TIMEOUT, thorough: bool = False) -> Discovery:
    """Find the servers of `address` (UsageError, one line, if it is not an address). Nothing
    here logs in; see verify.py for that."""
    return Discoverer(report=report, resolver=resolver, fetch=fetch, connector=connector, tls=tls,
                      timeout=timeout, thorough=thorough).run(address)
