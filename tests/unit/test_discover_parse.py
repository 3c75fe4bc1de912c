"""Discovery's parsers and the config block, offline and without servers: the address, the
autoconfig document (hostile ones too), DNS answers, and rendering/writing the account."""

from __future__ import annotations

import stat
import struct
import time
from datetime import date

import pytest

from tuimail.config.discover import autoconfig, dns
from tuimail.config.discover.render import (
    Password,
    account_name,
    keyring_command,
    render_account,
    write_account,
)
from tuimail.config.discover.results import Candidate, Probe, ascii_host, parse_address
from tuimail.config.load import parse_config
from tuimail.errors import ConfigError, UsageError

ADDR = parse_address("Alice.Smith@Example.ORG")

DOC = b"""<?xml version="1.0" encoding="UTF-8"?>
<clientConfig version="1.1">
  <emailProvider id="example.org">
    <domain>example.org</domain>
    <displayName>Example Mail</displayName>
    <incomingServer type="imap">
      <hostname>imap.%EMAILDOMAIN%</hostname>
      <port>993</port>
      <socketType>SSL</socketType>
      <authentication>password-cleartext</authentication>
      <username>%EMAILADDRESS%</username>
    </incomingServer>
    <incomingServer type="pop3">
      <hostname>pop.example.org</hostname>
      <port>110</port>
      <socketType>STARTTLS</socketType>
      <username>%EMAILLOCALPART%</username>
    </incomingServer>
    <incomingServer type="exchange">
      <hostname>ews.example.org</hostname>
      <port>443</port>
      <socketType>SSL</socketType>
    </incomingServer>
    <outgoingServer type="smtp">
      <hostname>smtp.example.org</hostname>
      <port>465</port>
      <socketType>SSL</socketType>
      <authentication>OAuth2</authentication>
      <username>%EMAILADDRESS%</username>
    </outgoingServer>
  </emailProvider>
</clientConfig>
"""


# -- the address ---------------------------------------------------------------------------------

def test_address_is_split_at_the_last_at_and_the_domain_made_ascii():
    a = parse_address('  "odd@local"@Bücher.Example ')
    assert a.local == '"odd@local"'
    assert a.domain == "xn--bcher-kva.example"
    assert ADDR.domain == "example.org" and ADDR.local == "Alice.Smith"


@pytest.mark.parametrize("bad", ["", "alice", "alice@", "@example.org", "a b@example.org", "a@exa mple.org",
                                 "a@-bad-.org", "a@" + "x" * 64 + ".org", "a@ex\x1b[2Jample.org", "a@1.2.3.4]"])
def test_a_bad_address_is_one_line(bad):
    with pytest.raises(UsageError) as e:
        parse_address(bad)
    assert "\n" not in str(e.value) and "\x1b" not in str(e.value)


def test_ascii_host_refuses_what_is_not_a_host_name():
    assert ascii_host("IMAP.Example.org.") == "imap.example.org"
    for bad in ("", "a..b", "a_b.org", "a b", "x" * 300, "evil.org/path", "h:993"):
        assert ascii_host(bad) is None


# -- the autoconfig document --------------------------------------------------------------------------

def test_autoconfig_document_fills_placeholders_and_maps_socket_types():
    found, skipped = autoconfig.parse(DOC, ADDR, "https://autoconfig.example.org/mail/config-v1.1.xml")
    by = {(c.protocol, c.host): c for c in found}
    imap = by[("imap", "imap.example.org")]
    assert (imap.port, imap.security, imap.username, imap.source) == (993, "tls", "Alice.Smith@Example.ORG",
                                                                        "autoconfig")
    pop = by[("pop3", "pop.example.org")]
    assert (pop.port, pop.security, pop.username) == (110, "starttls", "Alice.Smith")
    smtp = by[("smtp", "smtp.example.org")]
    assert (smtp.port, smtp.security) == (465, "tls") and "OAuth2" in smtp.note
    assert skipped == ["<incomingServer type='exchange'> #3: not a kind tuimail speaks"]


def test_autoconfig_urls_are_the_two_places_https_first():
    urls = autoconfig.urls(ADDR)
    assert urls[0] == "https://autoconfig.example.org/mail/config-v1.1.xml?emailaddress=Alice.Smith@Example.ORG"
    assert urls[1] == "https://example.org/.well-known/autoconfig/mail/config-v1.1.xml"
    assert [u.split(":")[0] for u in urls] == ["https", "https", "http", "http"]


def _server(port: str = "993", host: str = "imap.example.org", socket_type: str = "SSL") -> bytes:
    return (f'<clientConfig><emailProvider id="x"><incomingServer type="imap"><hostname>{host}</hostname>'
            f"<port>{port}</port><socketType>{socket_type}</socketType></incomingServer>"
            f"</emailProvider></clientConfig>").encode()


@pytest.mark.parametrize("port", ["0", "65536", "99999", "-1", "993a", "", "１２３"])
def test_bad_ports_are_skipped_with_a_reason(port):
    found, skipped = autoconfig.parse(_server(port=port), ADDR, "u")
    assert found == [] and len(skipped) == 1 and "bad port" in skipped[0]


@pytest.mark.parametrize("host", ["", "evil.org:25", "a b", "x/y", "%EMAILADDRESS%", "x.&#x85;org", "x&#x9;y.org",
                                  "a&#x200f;b.org"])
def test_bad_host_names_are_skipped(host):
    found, skipped = autoconfig.parse(_server(host=host), ADDR, "u")
    assert found == [] and "bad host name" in skipped[0]


def test_unknown_socket_type_is_skipped():
    found, skipped = autoconfig.parse(_server(socket_type="SSLv2"), ADDR, "u")
    assert found == [] and "unknown socketType" in skipped[0]


BILLION_LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE lolz [
 <!ENTITY lol "lol">
 <!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
 <!ENTITY lol9 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
]>
<clientConfig><emailProvider><incomingServer type="imap"><hostname>&lol9;</hostname></incomingServer>
</emailProvider></clientConfig>"""

EXTERNAL = b"""<?xml version="1.0"?>
<!DOCTYPE c [ <!ENTITY x SYSTEM "file:///etc/passwd"> ]>
<clientConfig><emailProvider><incomingServer type="imap"><hostname>&x;</hostname></incomingServer>
</emailProvider></clientConfig>"""

PARAMETER = b"""<?xml version="1.0"?>
<!DOCTYPE c [ <!ENTITY % p SYSTEM "http://127.0.0.1:9/evil.dtd"> %p; ]>
<clientConfig/>"""


@pytest.mark.parametrize("doc", [BILLION_LAUGHS, EXTERNAL, PARAMETER,
                                 b'<!DOCTYPE clientConfig SYSTEM "http://127.0.0.1:9/x.dtd"><clientConfig/>'])
def test_documents_with_a_dtd_are_refused_quickly(doc):
    t0 = time.monotonic()
    with pytest.raises(autoconfig.BadDocument, match="DTD or entities"):
        autoconfig.parse(doc, ADDR, "u")
    assert time.monotonic() - t0 < 1


def test_an_undeclared_entity_is_not_well_formed():
    with pytest.raises(autoconfig.BadDocument, match="not well-formed"):
        autoconfig.parse(b"<clientConfig>&x;</clientConfig>", ADDR, "u")


def test_huge_deep_and_wide_documents_are_refused():
    with pytest.raises(autoconfig.BadDocument, match="larger than"):
        autoconfig.parse(b"<clientConfig>" + b" " * (autoconfig.MAX_BYTES + 1) + b"</clientConfig>", ADDR, "u")
    with pytest.raises(autoconfig.BadDocument, match="nested"):
        autoconfig.parse(b"<a>" * 100 + b"</a>" * 100, ADDR, "u")
    with pytest.raises(autoconfig.BadDocument, match="too many"):
        autoconfig.parse(b"<clientConfig>" + b"<x/>" * 5000 + b"</clientConfig>", ADDR, "u")


@pytest.mark.parametrize("doc,why", [(b"", "not well-formed"), (b"<html><body>hi</body></html>", "root element"),
                                     (b"<clientConfig/>", "no <emailProvider>"), (b"\xff\xfe<", "not well-formed"),
                                     (b"<clientConfig><unclosed></clientConfig>", "not well-formed")])
def test_not_an_autoconfig_document(doc, why):
    with pytest.raises(autoconfig.BadDocument, match=why):
        autoconfig.parse(doc, ADDR, "u")


# -- DNS wire ------------------------------------------------------------------------------------

def _answer(qid: int, name: str, records: list[tuple[int, int, int, str]], rcode: int = 0,
            compress: bool = True) -> bytes:
    head = struct.pack(">HHHHHH", qid, 0x8180 | rcode, 1, len(records), 0, 0)
    question = dns.encode_name(name) + struct.pack(">HH", dns.TYPE_SRV, 1)
    body = b""
    for prio, weight, port, target in records:
        owner = b"\xc0\x0c" if compress else dns.encode_name(name)
        rdata = struct.pack(">HHH", prio, weight, port) + dns.encode_name(target)
        body += owner + struct.pack(">HHIH", dns.TYPE_SRV, 1, 300, len(rdata)) + rdata
    return head + question + body


def test_srv_answer_is_parsed_with_compressed_owner_names():
    name = "_imaps._tcp.example.org"
    msg = _answer(7, name, [(10, 5, 993, "imap.example.org"), (0, 0, 993, "IMAP2.example.org")])
    assert dns.parse_answer(msg, 7, name) == [dns.Srv(10, 5, 993, "imap.example.org"),
                                              dns.Srv(0, 0, 993, "imap2.example.org")]


def test_nxdomain_is_none_and_other_errors_raise():
    name = "_imaps._tcp.example.org"
    assert dns.parse_answer(_answer(1, name, [], rcode=3), 1, name) is None
    with pytest.raises(dns.DnsFailed, match="rcode 2"):
        dns.parse_answer(_answer(1, name, [], rcode=2), 1, name)
    with pytest.raises(dns.DnsFailed, match="another query"):
        dns.parse_answer(_answer(2, name, []), 1, name)
    with pytest.raises(dns.DnsFailed, match="another name"):
        dns.parse_answer(_answer(1, "_imap._tcp.evil.org", []), 1, name)


def test_hostile_dns_answers_are_refused():
    name = "_imaps._tcp.example.org"
    good = _answer(1, name, [(0, 0, 993, "imap.example.org")])
    for cut in range(12, len(good)):
        with pytest.raises(dns.DnsFailed):
            dns.parse_answer(good[:cut], 1, name)
    # a pointer to itself in the answer's owner name
    loop = bytearray(good)
    owner_at = 12 + len(dns.encode_name(name)) + 4
    loop[owner_at:owner_at + 2] = struct.pack(">H", 0xC000 | owner_at)
    with pytest.raises(dns.DnsFailed, match="loop"):
        dns.parse_answer(bytes(loop), 1, name)
    with pytest.raises(dns.DnsFailed):
        dns.parse_answer(b"\x00" * 5, 1, name)


def test_query_encoding_and_name_limits():
    q = dns.build_query(0x1234, "_imaps._tcp.example.org")
    assert q[:2] == b"\x12\x34" and q.endswith(b"\x00\x21\x00\x01")
    with pytest.raises(dns.DnsFailed):
        dns.encode_name("a" * 64 + ".org")
    with pytest.raises(dns.DnsFailed):
        dns.encode_name(".".join(["abcdefgh"] * 40))


def test_nameservers_from_resolv_conf(tmp_path):
    conf = tmp_path / "resolv.conf"
    conf.write_text("# x\nsearch lan\nnameserver 10.0.0.1\nnameserver fe80::1%eth0\nnameserver bogus\n")
    assert dns.nameservers(conf) == ["10.0.0.1", "fe80::1%eth0"]
    assert dns.nameservers(tmp_path / "missing") == ["127.0.0.1"]


# -- the config block -----------------------------------------------------------------------------

IMAP = Candidate("imap", "imap.example.org", 993, "tls", "autoconfig", "https://autoconfig.example.org/x",
                 probe=Probe(ok=True, caps=frozenset({"IMAP4REV1", "IDLE", "AUTH=PLAIN"})))
SMTP = Candidate("smtp", "smtp.example.org", 587, "starttls", "srv", "SRV _submission._tcp.example.org")


def test_rendered_block_is_a_valid_account_without_a_password():
    block = render_account("example", ADDR, IMAP, ADDR.text, Password.command(["pass", "show", "mail/x"]),
                           display_name='Smith, Alice "A"', outgoing=SMTP, today=date(2026, 12, 6))
    acc = parse_config(block, "config.toml").account("example")
    assert (acc.kind, acc.host, acc.port, acc.security, acc.username) == ("imap", "imap.example.org", 993, "tls",
                                                                         "Alice.Smith@Example.ORG")
    assert acc.password is None and acc.password_command == ("pass", "show", "mail/x")
    assert acc.from_address == '"Smith, Alice \\"A\\"" <Alice.Smith@Example.ORG>'
    assert acc.smtp["host"] == "smtp.example.org" and acc.smtp["port"] == 587
    assert acc.smtp["security"] == "starttls" and acc.smtp["password_command"] == ("pass", "show", "mail/x")
    assert "# found: IMAP imap.example.org:993 (TLS) from https://autoconfig.example.org/x" in block
    assert "IDLE" in block and "2026-12-06" in block


def test_a_typed_password_is_written_only_when_asked():
    not_saved = render_account("x", ADDR, IMAP, "alice", Password.typed("hunter2", save=False))
    assert "hunter2" not in not_saved
    assert parse_config(not_saved).account("x").password is None
    saved = render_account("x", ADDR, IMAP, "alice", Password.typed('hun"ter\n2', save=True))
    assert parse_config(saved).account("x").password == 'hun"ter\n2'
    assert "hunter2" not in repr(Password.typed("hunter2", save=True))


def test_keyring_command_uses_what_is_installed():
    assert keyring_command("a@b.org", lambda n: "/usr/bin/keyring" if n == "keyring" else None) == \
        ("keyring", "get", "tuimail", "a@b.org")
    assert keyring_command("a@b.org", lambda n: "/x" if n == "secret-tool" else None)[0] == "secret-tool"
    assert keyring_command("a@b.org", lambda n: None) is None


def test_hostile_values_stay_inside_their_strings_and_comments():
    evil = Candidate("imap", "imap.example.org", 993, "tls", "autoconfig", 'http://x/\n[accounts.evil]\nhost="e"',
                     note="\nkind = 'pop3'")
    block = render_account("a.b", ADDR, evil, 'u"\n[x]', Password.prompt())
    cfg = parse_config(block)
    assert list(cfg.accounts) == ["a.b"] and cfg.account("a.b").username == 'u"\n[x]'


def test_account_names():
    assert account_name(ADDR) == "example"
    assert account_name(ADDR, {"example", "example-2"}) == "example-3"
    assert account_name(parse_address("a@localhost")) == "localhost"
    with pytest.raises(ConfigError):
        render_account("bad name", ADDR, IMAP, "u", Password.prompt())


def test_write_creates_0600_and_appends(tmp_path):
    path = tmp_path / "cfg" / "tuimail" / "config.toml"
    write_account(path, render_account("one", ADDR, IMAP, "u", Password.prompt()))
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    path.chmod(0o644)
    path.write_text(path.read_text() + "\n[ui]\ntheme = \"light\"   # mine\n")
    write_account(path, render_account("two", ADDR, IMAP, "u", Password.typed("pw", save=True)))
    text = path.read_text()
    assert "theme = \"light\"   # mine" in text and stat.S_IMODE(path.stat().st_mode) == 0o600
    cfg = parse_config(text, path)
    assert list(cfg.accounts) == ["one", "two"] and cfg.ui.theme == "light"


def test_write_refuses_a_duplicate_or_a_broken_config_and_writes_nothing(tmp_path):
    path = tmp_path / "config.toml"
    block = render_account("one", ADDR, IMAP, "u", Password.prompt())
    write_account(path, block)
    before = path.read_text()
    with pytest.raises(ConfigError):
        write_account(path, block)
    assert path.read_text() == before
    path.write_text(before + "\n[accounts.one.oops\n")
    with pytest.raises(ConfigError, match="fix that before adding an account"):
        write_account(path, render_account("two", ADDR, IMAP, "u", Password.prompt()))
    assert [p.name for p in tmp_path.iterdir()] == ["config.toml"]


def test_write_follows_a_symlinked_config(tmp_path):
    real = tmp_path / "dotfiles" / "config.toml"
    real.parent.mkdir()
    write_account(real, render_account("one", ADDR, IMAP, "u", Password.prompt()))
    link = tmp_path / "config.toml"
    link.symlink_to(real)
    write_account(link, render_account("two", ADDR, IMAP, "u", Password.prompt()))
    assert link.is_symlink() and list(parse_config(real.read_text()).accounts) == ["one", "two"]
