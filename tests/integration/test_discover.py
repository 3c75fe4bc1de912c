"""Discovery against real listeners on loopback (issue 16): an autoconfig document from a local
HTTP server, SRV answers from a stub resolver, the stdlib resolver against a DNS server on a UDP
(and TCP) loopback port, and probing and logging in to real Dovecot listeners. Names such as
imap.example.test reach those listeners through an injected connector; nothing leaves the machine.
The small SMTP responder below stands in for a submission server (no aiosmtpd in the venv); the
hostile servers inject faults."""

from __future__ import annotations

import errno
import http.server
import socket
import ssl
import struct
import threading
import time
from collections.abc import Callable
from dataclasses import replace
from datetime import date

import pytest

from tuimail.config.discover import (
    Candidate,
    FetchFailed,
    HttpFetcher,
    Password,
    Srv,
    SystemResolver,
    check_server,
    discover,
    verify,
    parse_address,
    render_account,
    verify_imap,
    write_account,
)
from tuimail.config.discover import dns as dnsmod
from tuimail.config.discover.dns import DnsFailed
from tuimail.config.discover.probe import probe
from tuimail.config.load import load_config
from tuimail.errors import UsageError

# -- the seams ---------------------------------------------------------------------------------


class MapConnector:
    """(name, port) -> a loopback port; everything else is refused, as an absent server would be."""

    def __init__(self, routes: dict[tuple[str, int], int] | None = None):
        self.routes = dict(routes or {})
        self.asked: list[tuple[str, int]] = []
        self.lock = threading.Lock()

    def __call__(self, host: str, port: int, timeout: float) -> socket.socket:
        with self.lock:
            self.asked.append((host, port))
        target = self.routes.get((host, port))
        if target is None:
            raise ConnectionRefusedError(errno.ECONNREFUSED, "Connection refused")
        return socket.create_connection(("127.0.0.1", target), timeout=timeout)


class StubResolver:
    def __init__(self, answers: dict[str, list[Srv] | Exception] | None = None):
        self.answers = answers or {}
        self.asked: list[str] = []

    def srv(self, name: str, timeout: float) -> list[Srv]:
        self.asked.append(name)
        got = self.answers.get(name, [])
        if isinstance(got, Exception):
            raise got
        return got


class Site:
    """A local HTTP server: path (without query) -> (status, headers, body); records requests."""

    def __init__(self):
        self.routes: dict[str, tuple[int, dict[str, str], bytes]] = {}
        self.requests: list[tuple[str, str]] = []
        site = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                site.requests.append((self.headers.get("Host", ""), self.path))
                status, headers, body = site.routes.get(self.path.split("?")[0], (404, {}, b"not found"))
                self.send_response(status)
                for k, v in headers.items():
                    self.send_header(k, v)
                if "Content-Length" not in headers:
                    self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                try:
                    self.wfile.write(body)
                except OSError:
                    pass

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def site():
    s = Site()
    yield s
    s.close()


class Scripted:
    """A TCP listener answering each connection with `talk(conn)` (a stand-in server, or a
    hostile one)."""

    def __init__(self, talk: Callable[[socket.socket], None]):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self.talk = talk
        self.closed = False
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while not self.closed:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._one, args=(conn,), daemon=True).start()

    def _one(self, conn):
        try:
            with conn:
                self.talk(conn)
        except OSError:
            pass

    def close(self):
        self.closed = True
        self.sock.close()


@pytest.fixture
def scripted():
    made: list[Scripted] = []

    def make(talk):
        s = Scripted(talk)
        made.append(s)
        return s

    yield make
    for s in made:
        s.close()


def smtp_talk(conn: socket.socket) -> None:
    """Greeting, EHLO (PIPELINING, AUTH PLAIN LOGIN), QUIT: all a probe asks of submission."""
    f = conn.makefile("rb")
    conn.sendall(b"220 stub.example.test ESMTP\r\n")
    for line in f:
        cmd = line.strip().upper()
        if cmd.startswith(b"EHLO"):
            conn.sendall(b"250-stub.example.test\r\n250-PIPELINING\r\n250-SIZE 10240000\r\n250 AUTH PLAIN LOGIN\r\n")
        elif cmd == b"QUIT":
            conn.sendall(b"221 bye\r\n")
            return
        else:
            conn.sendall(b"502 no\r\n")


def autoconfig_doc(imap_host: str, imap_port: int, imap_socket: str, smtp_host: str, smtp_port: int,
                   smtp_socket: str, username: str = "%EMAILADDRESS%") -> bytes:
    return f"""<?xml version="1.0"?>
<clientConfig version="1.1"><emailProvider id="example.test">
  <domain>example.test</domain>
  <incomingServer type="imap"><hostname>{imap_host}</hostname><port>{imap_port}</port>
    <socketType>{imap_socket}</socketType><username>{username}</username>
    <authentication>password-cleartext</authentication></incomingServer>
  <outgoingServer type="smtp"><hostname>{smtp_host}</hostname><port>{smtp_port}</port>
    <socketType>{smtp_socket}</socketType><username>%EMAILADDRESS%</username></outgoingServer>
</emailProvider></clientConfig>""".encode()


# -- 1. autoconfig, end to end ----------------------------------------------------------------------

def test_autoconfig_document_then_probe_then_login_then_config(site, dovecot, scripted, tmp_path):
    """alice@example.test: https fails (nothing on 443), http://autoconfig.example.test serves the
    document naming localhost:143 (Dovecot, plain: loopback) and localhost:587 (SMTP responder);
    SRV and .well-known/jmap are skipped; the probe reads the capabilities; the login works with
    the full address as user name; the block written is a valid config."""
    user = dovecot.add_user(name=f"alice{time.monotonic_ns()}@example.test")
    address = user.name
    smtp = scripted(smtp_talk)
    site.routes["/mail/config-v1.1.xml"] = (200, {"Content-Type": "text/xml"},
                                            autoconfig_doc("localhost", 143, "plain", "localhost", 587, "STARTTLS"))
    conn = MapConnector({("autoconfig.example.test", 80): site.port, ("localhost", 143): dovecot.imap_port,
                         ("localhost", 587): smtp.port})
    resolver = StubResolver()
    steps = []
    found = discover(address, report=steps.append, resolver=resolver, connector=conn, timeout=5)

    assert steps == found.steps
    assert [s.text for s in steps if s.outcome == "start"] == [
        "asking autoconfig.example.test and example.test for the provider's settings",
        "asking localhost for their capabilities (2 ports)"]
    text = [f"{s.stage} {s.outcome}: {s.text}" for s in steps if s.outcome != "start"]
    assert text[0] == ("autoconfig error: https://autoconfig.example.test/mail/config-v1.1.xml: Connection refused")
    assert text[1] == ("autoconfig error: https://example.test/.well-known/autoconfig/mail/config-v1.1.xml:"
                       " Connection refused")
    assert text[2] == ("autoconfig found: http://autoconfig.example.test/mail/config-v1.1.xml:"
                       " IMAP localhost:143 (plain text)")
    assert text[3] == ("autoconfig found: http://autoconfig.example.test/mail/config-v1.1.xml:"
                       " SMTP localhost:587 (STARTTLS)")
    assert [t.split(":")[0] for t in text[4:6]] == ["srv skipped", "jmap skipped"]
    assert resolver.asked == []
    assert text[6].startswith("probe found: IMAP localhost:143 (plain text): IDLE")
    # the SMTP responder offers no STARTTLS, but it is on loopback: plain text is allowed there
    assert text[7] == "probe found: SMTP localhost:587 (plain text): AUTH=PLAIN, AUTH=LOGIN, PIPELINING"
    assert text[8] == "probe skipped: usual names and ports: not needed, the servers answered"
    host, path = site.requests[0]
    assert host == "autoconfig.example.test" and path.endswith("?emailaddress=" + address)

    imap, out = found.incoming, found.outgoing
    assert imap is not None and out is not None
    assert (imap.protocol, imap.host, imap.port, imap.security, imap.username) == ("imap", "localhost", 143,
                                                                                   "none", address)
    assert imap.probe is not None and imap.probe.has("IDLE") and imap.probe.has("AUTH=PLAIN")
    assert "from plain HTTP" in imap.note

    check = verify_imap(imap, user.password, found.address, connector=conn, timeout=10)
    assert check.ok, check.message
    assert check.username == address and check.tried == (address,)
    assert "QRESYNC" in check.caps and "IDLE" in check.caps  # Dovecot names QRESYNC after login

    path = tmp_path / "xdg" / "tuimail" / "config.toml"
    block = render_account("example", found.address, imap, check.username, Password.prompt(),
                           display_name="Alice", outgoing=out, caps=check.caps, today=date(2026, 12, 6))
    assert "#   it offers: IDLE, QRESYNC, CONDSTORE" in block
    write_account(path, block)
    acc = load_config(path).account("example")
    assert (acc.kind, acc.host, acc.port, acc.security, acc.username) == ("imap", "localhost", 143, "none", address)
    assert acc.password is None and acc.password_command is None
    assert acc.smtp == {"host": "localhost", "port": 587, "security": "none", "username": address}
    assert (path.stat().st_mode & 0o777) == 0o600


# -- 2. SRV -------------------------------------------------------------------------------------------

def test_srv_records_from_a_stub_resolver_with_implicit_tls(dovecot_factory, scripted):
    """No autoconfig anywhere; SRV says IMAP over TLS at localhost:993 (Dovecot's imaps port with
    its self-signed certificate, trusted through the injected TLS context), submission is
    explicitly not offered ("."), submissions at localhost:465, JMAP at jmap.example.test."""
    server = dovecot_factory(tls=True)
    smtp_tls = scripted(lambda c: _tls_then(c, server, smtp_talk))
    conn = MapConnector({("localhost", 993): server.imaps_port, ("localhost", 465): smtp_tls.port})
    resolver = StubResolver({
        "_imaps._tcp.example.test": [Srv(10, 0, 993, "localhost"), Srv(20, 0, 993, "backup.example.test")],
        "_submission._tcp.example.test": [Srv(0, 0, 0, "")],
        "_submissions._tcp.example.test": [Srv(0, 1, 465, "localhost")],
        "_jmap._tcp.example.test": [Srv(0, 1, 443, "jmap.example.test")],
        "_pop3._tcp.example.test": DnsFailed("no answer in time (timeout)"),
        "_pop3s._tcp.example.test": [Srv(0, 0, 0, "pop.example.test"), Srv(0, 0, 995, "bad_name!")],
    })

    def ctx():
        return ssl.create_default_context(cafile=str(server.cert_path))

    found = discover("bob@example.test", resolver=resolver, connector=conn, tls=ctx, timeout=5)
    text = [f"{s.stage} {s.outcome}: {s.text}" for s in found.steps if s.outcome != "start"]
    srv = [t for t in text if t.startswith("srv")]
    assert srv == [
        "srv found: _imaps._tcp.example.test: IMAP localhost:993 (TLS) (outside example.test: DNS is not"
        " authenticated, confirm localhost)",
        "srv found: _imaps._tcp.example.test: IMAP backup.example.test:993 (TLS)",
        "srv none: _imap._tcp.example.test: no record",
        "srv found: _submissions._tcp.example.test: SMTP localhost:465 (TLS) (outside example.test: DNS is"
        " not authenticated, confirm localhost)",
        "srv none: _submission._tcp.example.test: the service is not offered",
        "srv error: _pop3s._tcp.example.test: no usable record (bad target name or port)",
        "srv error: _pop3._tcp.example.test: no answer in time (timeout)",
        "srv found: _jmap._tcp.example.test: JMAP at https://jmap.example.test/.well-known/jmap",
    ]
    assert found.jmap[0].url == "https://jmap.example.test/.well-known/jmap"
    assert "jmap error: https://example.test/.well-known/jmap: Connection refused" in text
    imap = found.incoming
    assert imap is not None and (imap.host, imap.port, imap.security, imap.source) == ("localhost", 993, "tls", "srv")
    assert imap.probe is not None and imap.probe.tls and imap.probe.has("IDLE")
    assert "probe error: IMAP backup.example.test:993 (TLS): Connection refused" in text
    assert found.outgoing is not None and found.outgoing.port == 465 and found.outgoing.probe.tls
    assert not any(t.startswith("probe found: IMAP") and ":143" in t for t in text)  # no guessing was needed

    check = verify_imap(imap, "wrong", found.address, connector=conn, tls=ctx, timeout=10)
    assert check.outcome == "refused" and check.tried == ("bob@example.test", "bob")


def _tls_then(conn: socket.socket, server, talk) -> None:
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(str(server.cert_path), str(server.key_path))
    with ctx.wrap_socket(conn, server_side=True) as tls_conn:
        talk(tls_conn)


# -- 3. the stdlib resolver on the wire -----------------------------------------------------------------

class DnsStub:
    """A DNS server on a loopback UDP port (and TCP on the same port number): SRV answers from
    `records`, NXDOMAIN for unknown names; `truncate` names are answered TC over UDP, in full
    over TCP; `spoof_first` sends a datagram with a wrong id before the real answer."""

    def __init__(self, records: dict[str, list[tuple[int, int, int, str]]], truncate: set[str] = frozenset(),
                 spoof_first: bool = False, silent: bool = False):
        self.records, self.truncate, self.spoof_first, self.silent = records, truncate, spoof_first, silent
        self.udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.udp.bind(("127.0.0.1", 0))
        self.port = self.udp.getsockname()[1]
        self.tcp = socket.socket()
        self.tcp.bind(("127.0.0.1", self.port))
        self.tcp.listen(4)
        self.queries: list[tuple[str, str]] = []
        threading.Thread(target=self._serve_udp, daemon=True).start()
        threading.Thread(target=self._serve_tcp, daemon=True).start()

    def answer(self, query: bytes, tc: bool) -> bytes:
        qid = struct.unpack(">H", query[:2])[0]
        name, end = dnsmod.read_name(query, 12)
        question = query[12:end + 4]
        recs = self.records.get(name)
        if recs is None:
            return struct.pack(">HHHHHH", qid, 0x8183, 1, 0, 0, 0) + question
        if tc:
            return struct.pack(">HHHHHH", qid, 0x8380, 1, 0, 0, 0) + question
        body = b""
        for prio, weight, port, target in recs:
            # the target compressed against the question name when it ends with it
            rdata = struct.pack(">HHH", prio, weight, port) + dnsmod.encode_name(target)
            body += b"\xc0\x0c" + struct.pack(">HHIH", 33, 1, 60, len(rdata)) + rdata
        return struct.pack(">HHHHHH", qid, 0x8180, 1, len(recs), 0, 0) + question + body

    def _serve_udp(self):
        while True:
            try:
                query, peer = self.udp.recvfrom(512)
            except OSError:
                return
            name, _ = dnsmod.read_name(query, 12)
            self.queries.append(("udp", name))
            if self.silent:
                continue
            if self.spoof_first:
                bad = bytearray(self.answer(query, False))
                bad[0] ^= 0xFF
                self.udp.sendto(bytes(bad), peer)
            self.udp.sendto(self.answer(query, name in self.truncate), peer)

    def _serve_tcp(self):
        while True:
            try:
                conn, _ = self.tcp.accept()
            except OSError:
                return
            with conn:
                n = struct.unpack(">H", conn.recv(2))[0]
                query = b""
                while len(query) < n:
                    query += conn.recv(n - len(query))
                self.queries.append(("tcp", dnsmod.read_name(query, 12)[0]))
                out = self.answer(query, False)
                conn.sendall(struct.pack(">H", len(out)) + out)

    def close(self):
        self.udp.close()
        self.tcp.close()


def test_system_resolver_speaks_dns_over_udp_and_tcp():
    many = [(i, 10, 993, f"imap{i}.example.test") for i in range(3)]
    stub = DnsStub({"_imaps._tcp.example.test": [(20, 0, 993, "b.example.test"), (10, 5, 993, "a.example.test")],
                    "_imap._tcp.example.test": [(0, 0, 0, ".")],
                    "_pop3s._tcp.example.test": many},
                   truncate={"_pop3s._tcp.example.test"}, spoof_first=True)
    try:
        r = SystemResolver([f"127.0.0.1:{stub.port}"])
        assert r.srv("_imaps._tcp.example.test", 3) == [Srv(10, 5, 993, "a.example.test"),
                                                          Srv(20, 0, 993, "b.example.test")]
        assert r.srv("_imap._tcp.example.test", 3) == [Srv(0, 0, 0, "")]
        assert r.srv("_submission._tcp.example.test", 3) == []  # NXDOMAIN
        assert r.srv("_pop3s._tcp.example.test", 3) == [Srv(*m) for m in many]
        assert ("tcp", "_pop3s._tcp.example.test") in stub.queries
    finally:
        stub.close()


def test_system_resolver_gives_up_in_time_and_tries_the_next_server():
    silent = DnsStub({}, silent=True)
    good = DnsStub({"_imaps._tcp.example.test": [(0, 0, 993, "imap.example.test")]})
    try:
        t0 = time.monotonic()
        with pytest.raises(DnsFailed, match="timeout"):
            SystemResolver([f"127.0.0.1:{silent.port}"]).srv("_imaps._tcp.example.test", 0.5)
        assert time.monotonic() - t0 < 4  # (1 s, plus room for a loaded machine)
        both = SystemResolver([f"127.0.0.1:{silent.port}", f"127.0.0.1:{good.port}"])
        assert both.srv("_imaps._tcp.example.test", 2)[0].target == "imap.example.test"
    finally:
        silent.close()
        good.close()


def test_discovery_through_the_wire_resolver(dovecot):
    """SRV over real DNS packets to a loopback stub, then the probe of what it named."""
    stub = DnsStub({"_imap._tcp.example.test": [(0, 0, 143, "localhost")]})
    try:
        conn = MapConnector({("localhost", 143): dovecot.imap_port})
        found = discover("carol@example.test", resolver=SystemResolver([f"127.0.0.1:{stub.port}"]),
                         connector=conn, timeout=3)
    finally:
        stub.close()
    imap = found.incoming
    assert imap is not None and (imap.host, imap.port, imap.security, imap.source) == ("localhost", 143, "none", "srv")


# -- 4. probing the usual names ---------------------------------------------------------------------------

def test_guessing_finds_dovecot_and_refuses_plain_text_off_loopback(dovecot):
    """dave@localhost: no autoconfig, no SRV. localhost:143 is Dovecot (plain, loopback: fine);
    mail.localhost:110 is Dovecot's POP3 without STLS under a name that is not loopback: refused."""
    user = dovecot.add_user()
    conn = MapConnector({("localhost", 143): dovecot.imap_port, ("mail.localhost", 110): dovecot.pop3_port})
    steps = []
    found = discover(f"{user.name}@localhost", report=steps.append, resolver=StubResolver(), connector=conn,
                     timeout=5)
    text = [f"{s.stage} {s.outcome}: {s.text}" for s in steps if s.outcome != "start"]
    guessed = {(h, p) for h, p in conn.asked if p in (993, 143, 995, 110, 465, 587)}
    assert guessed == {(h, p) for p in (993, 143) for h in ("imap.localhost", "mail.localhost", "localhost")} | \
        {(h, p) for p in (995, 110) for h in ("pop.localhost", "mail.localhost")} | \
        {(h, p) for p in (465, 587) for h in ("smtp.localhost", "mail.localhost")}
    assert any(t.startswith("probe found: IMAP localhost:143 (plain text): IDLE") for t in text)
    assert ("probe refused: POP3 mail.localhost:110 (STARTTLS): offers no STARTTLS; tuimail sends passwords"
            " in plain text only on loopback") in text
    assert text[-1] == "probe none: no SMTP server found for localhost: enter it by hand"
    imap = found.incoming
    assert imap is not None and (imap.host, imap.port, imap.security) == ("localhost", 143, "none")
    assert found.outgoing is None

    # the login check: the full address is refused, the local part works
    check = verify_imap(imap, user.password, found.address, connector=conn, timeout=10)
    assert check.ok and check.username == user.name
    assert check.tried == (f"{user.name}@localhost", user.name)
    wrong = verify_imap(imap, "nope", found.address, connector=conn, timeout=10)
    assert wrong.outcome == "refused" and "check the user name and password" in wrong.message
    given = verify_imap(imap, user.password, found.address, username=user.name, connector=conn, timeout=10)
    assert given.ok and given.tried == (user.name,)


def test_probe_reads_pop3_capa_and_starttls_on_a_tls_dovecot(dovecot_factory):
    server = dovecot_factory(tls=True)

    def ctx():
        return ssl.create_default_context(cafile=str(server.cert_path))

    conn = MapConnector({("localhost", 110): server.pop3_port, ("localhost", 995): server.pop3s_port,
                         ("localhost", 143): server.imap_port})
    for protocol, port, security in (("pop3", 110, "starttls"), ("pop3", 995, "tls"), ("imap", 143, "starttls")):
        p = probe(Candidate(protocol, "localhost", port, security, "guess", "t"), conn, ctx, 5)
        assert p.ok and p.tls, p.error
        assert ("UIDL" if protocol == "pop3" else "IDLE") in p.caps
    user = server.add_user()
    check = verify_imap(Candidate("imap", "localhost", 143, "starttls", "guess", "t"), user.password,
                        parse_address(f"{user.name}@localhost"), connector=conn, tls=ctx, timeout=10)
    assert check.ok and check.username == user.name and "QRESYNC" in check.caps
    # without trusting the certificate: refused, with the fingerprint to pin
    found = discover("x@localhost", resolver=StubResolver(), connector=MapConnector(
        {("localhost", 993): server.imaps_port}), timeout=5)
    bad = [s.text for s in found.steps if s.outcome == "error" and s.text.startswith("IMAP localhost:993")]
    assert len(bad) == 1 and "TLS certificate not trusted" in bad[0] and "sha256 " in bad[0]
    assert found.incoming is None
    imap = Candidate("imap", "localhost", 993, "tls", "guess", "t")
    check = verify_imap(imap, "pw", found.address, connector=MapConnector({("localhost", 993): server.imaps_port}),
                        timeout=5)
    assert check.outcome == "tls" and "not trusted" in check.message


def test_verify_refuses_plain_text_off_loopback_without_connecting():
    conn = MapConnector()
    c = Candidate("imap", "imap.example.test", 143, "none", "guess", "t")
    check = verify_imap(c, "pw", parse_address("a@example.test"), connector=conn)
    assert check.outcome == "insecure" and conn.asked == []


# -- 5. .well-known/jmap --------------------------------------------------------------------------------

def test_well_known_jmap_through_an_injected_fetch(site):
    site.routes["/.well-known/jmap"] = (302, {"Location": "/jmap/session"}, b"")
    site.routes["/jmap/session"] = (200, {"Content-Type": "application/json"},
                                    b'{"capabilities": {"urn:ietf:params:jmap:core": {}}, "accounts": {}}')
    http_fetch = HttpFetcher(MapConnector({("example.test", 80): site.port}))

    def fetch(url, timeout, max_bytes):  # the test site speaks HTTP only
        return http_fetch(url.replace("https://", "http://"), timeout, max_bytes)

    found = discover("e@example.test", resolver=StubResolver(), fetch=fetch, connector=MapConnector(), timeout=3)
    assert [j.url for j in found.jmap] == ["http://example.test/jmap/session"]
    assert any(s.stage == "jmap" and s.outcome == "found" for s in found.steps)
    site.routes["/jmap/session"] = (401, {}, b"")
    found = discover("e@example.test", resolver=StubResolver(), fetch=fetch, connector=MapConnector(), timeout=3)
    assert found.jmap[0].needs_login


# -- 6. hostile servers ---------------------------------------------------------------------------------

def test_hostile_autoconfig_answers(site):
    huge = b"<clientConfig>" + b"x" * (1 << 20) + b"</clientConfig>"
    site.routes["/mail/config-v1.1.xml"] = (200, {}, huge)
    site.routes["/.well-known/autoconfig/mail/config-v1.1.xml"] = (
        200, {"Content-Length": "0"}, b"")
    conn = MapConnector({("autoconfig.example.test", 80): site.port, ("example.test", 80): site.port})
    t0 = time.monotonic()
    found = discover("f@example.test", resolver=StubResolver(), connector=conn, timeout=3)
    auto = [s.text for s in found.steps if s.stage == "autoconfig"]
    assert "http://autoconfig.example.test/mail/config-v1.1.xml: the answer is larger than 128 KB (1048605 bytes)" \
        in auto
    assert "http://example.test/.well-known/autoconfig/mail/config-v1.1.xml: not well-formed XML" \
           " (no element found, line 1)" in auto
    assert time.monotonic() - t0 < 20

    # a body larger than it says, a redirect loop
    site.routes["/mail/config-v1.1.xml"] = (200, {"Content-Length": "10"}, b"x" * 10)
    site.routes["/.well-known/autoconfig/mail/config-v1.1.xml"] = (
        302, {"Location": "/.well-known/autoconfig/mail/config-v1.1.xml"}, b"")
    found = discover("f@example.test", resolver=StubResolver(), connector=conn, timeout=3)
    auto = [s.text for s in found.steps if s.stage == "autoconfig"]
    assert "http://example.test/.well-known/autoconfig/mail/config-v1.1.xml: more than 3 redirects" in auto


def test_hostile_servers_are_cut_off(scripted):
    def endless_line(c):
        c.sendall(b"* OK ")
        while True:
            c.sendall(b"A" * 65536)

    def trickle(c):
        for b in b"* OK hi\r\n":
            c.sendall(bytes([b]))
            time.sleep(0.3)

    def flood_lines(c):
        c.sendall(b"* OK hi\r\n")
        c.recv(100)
        while True:
            c.sendall(b"* CAPABILITY IMAP4rev1\r\n" * 1000)

    def literal(c):
        c.sendall(b"* OK hi\r\n")
        c.recv(100)
        c.sendall(b"* CAPABILITY {999999999}\r\n")
        time.sleep(2)

    def pop3_is_not_imap(c):
        c.sendall(b"+OK POP3 ready\r\n")
        time.sleep(1)

    def hostile_greeting(c):
        c.sendall(b"* OK \x1b]0;pwned\x07\x1b[2J\xe2\x80\xaehello\r\n")
        c.recv(100)
        c.sendall(b"* CAPABILITY IMAP4rev1 \x1b[31mIDLE\r\np1 OK\r\n")
        time.sleep(0.5)

    expect = {endless_line: "a line longer than 8192 bytes", trickle: "no answer in time (timeout)",
              flood_lines: "the server sent more than 256 KB", pop3_is_not_imap: "not an IMAP greeting"}
    for talk, why in expect.items():
        s = scripted(talk)
        t0 = time.monotonic()
        p = probe(Candidate("imap", "localhost", 143, "none", "guess", "t"),
                  MapConnector({("localhost", 143): s.port}), ssl.create_default_context, 1.5)
        assert not p.ok and why in p.error, (talk.__name__, p)
        assert time.monotonic() - t0 < 4, talk.__name__
    s = scripted(literal)
    p = probe(Candidate("imap", "localhost", 143, "none", "guess", "t"), MapConnector({("localhost", 143): s.port}),
              ssl.create_default_context, 1)
    assert not p.ok  # no tagged OK: the probe ends at its deadline, nothing allocated for the "literal"
    s = scripted(hostile_greeting)
    p = probe(Candidate("imap", "localhost", 143, "none", "guess", "t"), MapConnector({("localhost", 143): s.port}),
              ssl.create_default_context, 2)
    assert p.ok and "\x1b" not in p.greeting and "\u202e" not in p.greeting and "hello" in p.greeting
    assert all(c.isprintable() for cap in p.caps for c in cap)


def test_a_plain_text_server_on_the_tls_port_is_named(scripted, dovecot):
    conn = MapConnector({("localhost", 993): dovecot.imap_port})
    p = probe(Candidate("imap", "localhost", 993, "tls", "guess", "t"), conn, ssl.create_default_context, 3)
    assert not p.ok and "plain text" in p.error


def test_verify_survives_a_hostile_login_server(scripted):
    def huge_literal(c):
        c.sendall(b"* OK [CAPABILITY IMAP4rev1] hi\r\n")
        f = c.makefile("rb")
        for line in f:
            tag = line.split(b" ")[0]
            if b"CAPABILITY" in line.upper():
                c.sendall(b"* CAPABILITY {99999999}\r\n")
                c.sendall(tag + b" OK\r\n")

    def silent(c):
        time.sleep(3)

    addr = parse_address("a@localhost")
    for talk, outcome, why in ((huge_literal, "protocol", "literal"), (silent, "unreachable", "no answer")):
        s = scripted(talk)
        t0 = time.monotonic()
        check = verify_imap(Candidate("imap", "localhost", 143, "none", "guess", "t"), "pw", addr,
                            connector=MapConnector({("localhost", 143): s.port}), timeout=1)
        assert check.outcome == outcome and why in check.message, check
        assert time.monotonic() - t0 < 4


def test_trickling_servers_meet_one_deadline(scripted):
    """A byte every 0.2 s never trips a per-read timeout; the whole probe, TLS handshake included,
    and the whole HTTP exchange, headers included, still end at their deadline."""
    def trickle_forever(c):
        c.sendall(b"\x16\x03\x03\x40\x00")  # a 16 KB handshake record, then its bytes one by one
        while True:
            c.sendall(b"\x02")
            time.sleep(0.2)

    def header_trickle(c):
        c.recv(1000)
        c.sendall(b"HTTP/1.0 200 OK\r\n")
        while True:
            c.sendall(b"X: y\r\n")
            time.sleep(0.2)

    tls_trickle = scripted(trickle_forever)
    t0 = time.monotonic()
    p = probe(Candidate("imap", "localhost", 993, "tls", "guess", "t"),
              MapConnector({("localhost", 993): tls_trickle.port}), ssl.create_default_context, 1)
    assert not p.ok and p.error == "no answer in time (timeout)"
    assert time.monotonic() - t0 < 4  # (1 s, plus room for a loaded machine)

    web = scripted(header_trickle)
    t0 = time.monotonic()
    with pytest.raises(Exception, match="no answer in time"):
        HttpFetcher(MapConnector({("example.test", 80): web.port}))("http://example.test/x", 1, 1000)
    assert time.monotonic() - t0 < 4  # (1 s, plus room for a loaded machine)


def test_autoconfig_over_https_and_no_downgrade_by_redirect(dovecot_factory, scripted):
    """An HTTPS site with Dovecot's self-signed certificate (made for "localhost", trusted through
    the injected context) serves the document at the .well-known place of g@localhost's domain;
    what came over HTTPS carries no "check the host names" note. A redirect from https to http
    is refused."""
    server = dovecot_factory(tls=True)

    def ctx():
        return ssl.create_default_context(cafile=str(server.cert_path))

    doc = autoconfig_doc("localhost", 993, "SSL", "localhost", 465, "SSL")
    pages = {b"/.well-known/autoconfig/mail/config-v1.1.xml": b"HTTP/1.0 200 OK\r\nContent-Length: %d\r\n\r\n"
             % len(doc) + doc,
             b"/down": b"HTTP/1.0 302 Found\r\nLocation: http://localhost/x\r\nContent-Length: 0\r\n\r\n"}

    def https_site(c):
        def talk(t):
            request = t.recv(4096).split(b" ")[1]
            t.sendall(pages.get(request, b"HTTP/1.0 404 Not Found\r\nContent-Length: 0\r\n\r\n"))
        _tls_then(c, server, talk)

    web = scripted(https_site)
    conn = MapConnector({("localhost", 443): web.port, ("localhost", 993): server.imaps_port})
    fetch = HttpFetcher(conn, ctx)
    with pytest.raises(Exception, match="from https to http"):
        fetch("https://localhost/down", 3, 1000)
    found = discover("g@localhost", resolver=StubResolver(), connector=conn, tls=ctx, timeout=5)
    auto = [s for s in found.steps if s.stage == "autoconfig" and s.outcome == "found"]
    assert [s.text for s in auto] == [
        "https://localhost/.well-known/autoconfig/mail/config-v1.1.xml: IMAP localhost:993 (TLS)",
        "https://localhost/.well-known/autoconfig/mail/config-v1.1.xml: SMTP localhost:465 (TLS)"]
    assert auto[0].candidate is not None and auto[0].candidate.note == ""
    imap = found.incoming
    assert imap is not None and imap.port == 993 and imap.probe is not None and imap.probe.tls
    # nothing answers on localhost:465: no outgoing server, and the usual names were probed for one
    assert found.outgoing is None and ("smtp.localhost", 587) in conn.asked


def test_thorough_discovery_runs_every_step(site, dovecot, scripted):
    site.routes["/mail/config-v1.1.xml"] = (200, {}, autoconfig_doc("localhost", 143, "plain", "localhost", 25,
                                                                    "plain"))
    conn = MapConnector({("autoconfig.example.test", 80): site.port, ("localhost", 143): dovecot.imap_port})
    resolver = StubResolver()
    found = discover("h@example.test", resolver=resolver, connector=conn, timeout=3, thorough=True)
    assert len(resolver.asked) == 7 and not any(s.outcome == "skipped" for s in found.steps)
    assert [s.stage for s in found.steps if s.outcome == "start"] == ["autoconfig", "srv", "jmap", "probe", "probe"]
    assert ("imap.example.test", 993) in conn.asked and ("smtp.example.test", 465) in conn.asked
    assert found.incoming is not None and found.incoming.source == "autoconfig"


def test_a_server_entered_by_hand(dovecot):
    conn = MapConnector({("localhost", 143): dovecot.imap_port})
    c = check_server("imap", "localhost", "143", "none", connector=conn, timeout=5)
    assert c.probe is not None and c.probe.ok and c.source == "manual" and c.probe.has("IDLE")
    off = check_server("imap", "imap.example.test", 143, "none", connector=conn)
    assert off.probe is not None and not off.probe.ok and "only on loopback" in off.probe.error
    assert ("imap.example.test", 143) not in conn.asked
    for bad in ((("imap", "localhost", "0", "tls"), "port"), (("imap", "localhost", "99999", "tls"), "port"),
                (("imap", "localhost", "１４３", "tls"), "port"), (("imap", "localhost", "-1", "tls"), "port"),
                (("imap", "a b", 143, "tls"), "host"), (("imap", "localhost", 143, "ssl"), "security"),
                (("jmap", "localhost", 143, "tls"), "kind")):
        with pytest.raises(UsageError, match=bad[1]):
            check_server(*bad[0], connector=conn)


def test_step_texts_are_sanitised(scripted):
    def rude(c):
        c.sendall(b"* BYE \x1b]0;title\x07\xe2\x80\xae go away\r\n")

    s = scripted(rude)
    found = discover("i@localhost", resolver=StubResolver({"_imap._tcp.localhost": [Srv(0, 0, 143, "localhost")]}),
                     connector=MapConnector({("localhost", 143): s.port}), timeout=2)
    bad = [st.text for st in found.steps if st.text.startswith("IMAP localhost:143")]
    assert bad and all("\x1b" not in t and "\u202e" not in t and "\x07" not in t for t in bad)


def test_a_redirect_to_a_bad_host_name_is_one_line(site):
    site.routes["/r"] = (302, {"Location": "http://a..b/x"}, b"")
    site.routes["/ftp"] = (302, {"Location": "ftp://example.test/x"}, b"")
    fetch = HttpFetcher()  # the real connector: the name is refused before any look-up
    with pytest.raises(FetchFailed, match="bad address 'a..b'"):
        fetch(f"http://127.0.0.1:{site.port}/r", 3, 1000)
    with pytest.raises(FetchFailed, match="non-HTTP"):
        fetch(f"http://127.0.0.1:{site.port}/ftp", 3, 1000)


def test_pop3_login_check_on_dovecot(dovecot, dovecot_factory):
    """Through protocol/pop3.py: the full address refused, the local part accepted; a wrong
    password; STLS with the server's private CA; a plain-text POP3 name off loopback refused."""
    user = dovecot.add_user()
    addr = parse_address(f"{user.name}@localhost")
    c = Candidate("pop3", "localhost", dovecot.pop3_port, "none", "guess", "t")
    check = verify(c, user.password, addr)
    assert check.ok and check.username == user.name and check.tried == (f"{user.name}@localhost", user.name)
    assert "UIDL" in check.caps
    wrong = verify(c, "nope", addr)
    assert wrong.outcome == "refused" and wrong.tried == (f"{user.name}@localhost", user.name)
    assert verify(replace(c, host="pop.example.test"), "pw", addr).outcome == "insecure"

    server = dovecot_factory(tls=True)
    tls_user = server.add_user()
    stls = Candidate("pop3", "localhost", server.pop3_port, "starttls", "guess", "t")
    got = verify(stls, tls_user.password, parse_address(f"{tls_user.name}@localhost"), username=tls_user.name,
                 ca_file=str(server.cert_path))
    assert got.ok and got.tried == (tls_user.name,)
    untrusted = verify(stls, tls_user.password, parse_address(f"{tls_user.name}@localhost"))
    assert untrusted.outcome == "tls" and "not trusted" in untrusted.message
