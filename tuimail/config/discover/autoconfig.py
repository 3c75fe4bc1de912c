"""The provider's autoconfig document (Thunderbird's ISPDB format, config-v1.1.xml): where to
fetch it and how to read it.

The document is untrusted input from the network: it is read with at most MAX_BYTES, by expat
with every DTD refused (no DOCTYPE, so no entity can be declared, expanded or fetched), and every
host name and port in it is checked before it becomes a candidate.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from xml.parsers import expat

from tuimail.config.discover.results import Address, Candidate, ascii_host

MAX_BYTES = 128 << 10  # real documents are 1-5 KB
MAX_ELEMENTS = 2000
MAX_DEPTH = 16

SOCKET_TYPES = {"ssl": "tls", "tls": "tls", "starttls": "starttls", "plain": "none"}
INCOMING_TYPES = {"imap": "imap", "pop3": "pop3"}
OUTGOING_TYPES = {"smtp": "smtp"}


class BadDocument(Exception):
    """Not a usable autoconfig document (str: one line)."""


def urls(address: Address) -> list[str]:
    """Where a provider publishes its document, in the order Thunderbird tries them."""
    d = address.domain
    from urllib.parse import quote

    q = "?emailaddress=" + quote(address.text, safe="@")
    return [
        f"https://autoconfig.{d}/mail/config-v1.1.xml{q}",
        f"https://{d}/.well-known/autoconfig/mail/config-v1.1.xml",
        f"http://autoconfig.{d}/mail/config-v1.1.xml{q}",
        f"http://{d}/.well-known/autoconfig/mail/config-v1.1.xml",
    ]


def parse_xml(data: bytes) -> ET.Element:
    """The document as an element tree; BadDocument for anything with a DTD, too big, too deep,
    or not well-formed."""
    if len(data) > MAX_BYTES:
        raise BadDocument(f"larger than {MAX_BYTES >> 10} KB")
    builder = ET.TreeBuilder()
    parser = expat.ParserCreate()
    counts = {"elements": 0, "depth": 0}

    def refuse(*_args: object) -> int:
        raise BadDocument("the document declares a DTD or entities (refused)")

    def start(tag: str, attrs: dict[str, str]) -> None:
        counts["elements"] += 1
        counts["depth"] += 1
        if counts["elements"] > MAX_ELEMENTS or counts["depth"] > MAX_DEPTH:
            raise BadDocument("too many or too deeply nested elements")
        builder.start(tag, attrs)

    def end(tag: str) -> None:
        counts["depth"] -= 1
        builder.end(tag)

    parser.StartDoctypeDeclHandler = refuse
    parser.EntityDeclHandler = refuse
    parser.UnparsedEntityDeclHandler = refuse
    parser.ExternalEntityRefHandler = refuse
    parser.SetParamEntityParsing(expat.XML_PARAM_ENTITY_PARSING_NEVER)
    parser.StartElementHandler = start
    parser.EndElementHandler = end
    parser.CharacterDataHandler = builder.data
    try:
        parser.Parse(data, True)
    except expat.ExpatError as exc:
        raise BadDocument(f"not well-formed XML ({expat.ErrorString(exc.code)}, line {exc.lineno})") from None
    try:
        return builder.close()
    except AssertionError:  # no root element
        raise BadDocument("empty document") from None


def _fill(text: str, address: Address) -> str:
    return (text.replace("%EMAILADDRESS%", address.text)
                .replace("%EMAILLOCALPART%", address.local)
                .replace("%EMAILDOMAIN%", address.domain))


def _text(server: ET.Element, tag: str) -> str:
    el = server.find(tag)
    return (el.text or "").strip() if el is not None else ""


def parse(data: bytes, address: Address, origin: str) -> tuple[list[Candidate], list[str]]:
    """Candidates from a document, and one line per server entry that was skipped (and why)."""
    root = parse_xml(data)
    if root.tag != "clientConfig":
        raise BadDocument(f"the root element is <{root.tag[:40]}>, not <clientConfig>")
    provider = root.find("emailProvider")
    if provider is None:
        raise BadDocument("no <emailProvider> element")
    found: list[Candidate] = []
    skipped: list[str] = []
    n = 0
    for server in provider:
        if server.tag == "incomingServer":
            kinds = INCOMING_TYPES
        elif server.tag == "outgoingServer":
            kinds = OUTGOING_TYPES
        else:
            continue
        n += 1
        kind = server.get("type", "").strip().lower()
        label = f"<{server.tag} type={kind[:20]!r}> #{n}"
        if kind not in kinds:
            skipped.append(f"{label}: not a kind tuimail speaks")
            continue
        host = ascii_host(_fill(_text(server, "hostname"), address))
        if host is None:
            skipped.append(f"{label}: bad host name {_text(server, 'hostname')[:60]!r}")
            continue
        port_text = _text(server, "port")
        if not re.fullmatch(r"[0-9]{1,5}", port_text) or not 0 < int(port_text) < 65536:
            skipped.append(f"{label}: bad port {port_text[:20]!r}")
            continue
        socket_type = SOCKET_TYPES.get(_text(server, "socketType").lower())
        if socket_type is None:
            skipped.append(f"{label}: unknown socketType {_text(server, 'socketType')[:20]!r}")
            continue
        username = _text(server, "username")
        auth = tuple(a.text.strip() for a in server.findall("authentication") if a.text and a.text.strip())
        note = ""
        if auth and all(a.lower() == "oauth2" for a in auth):
            note = "the provider allows only OAuth2 here (set oauth2_token_command)"
        found.append(Candidate(
            protocol=kinds[kind], host=host, port=int(port_text), security=socket_type,
            source="autoconfig", origin=origin, username=_fill(username, address) if username else None,
            auth=auth, priority=n, note=note,
        ))
    return found, skipped
