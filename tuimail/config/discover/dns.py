"""SRV look-ups (RFC 6186, RFC 8314, RFC 8620 §2.2) without a DNS library: one query over UDP to
the nameservers of /etc/resolv.conf (TCP when the answer is truncated), and a parser for the
answer that bounds every name and pointer.

`Resolver` is the seam: tests answer from a stub, or point `SystemResolver` at a stub server.
"""

from __future__ import annotations

import ipaddress
import secrets
import socket
import struct
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

TYPE_SRV = 33
CLASS_IN = 1
RCODE_NXDOMAIN = 3
MAX_POINTERS = 32


@dataclass(frozen=True)
class Srv:
    priority: int
    weight: int
    port: int
    target: str  # lower case, no trailing dot; "" when the service is explicitly not offered (".")


class DnsFailed(Exception):
    """No usable answer (str: one line)."""


class Resolver(Protocol):
    def srv(self, name: str, timeout: float) -> list[Srv]:
        """The SRV records of `name` ([] when there are none); DnsFailed when nobody answered."""
        ...


def nameservers(path: str | Path = "/etc/resolv.conf") -> list[str]:
    out = []
    try:
        text = Path(path).read_text(encoding="utf-8", errors="replace")
    except OSError:
        text = ""
    for line in text.splitlines():
        parts = line.split()
        if len(parts) >= 2 and parts[0] == "nameserver":
            try:
                ipaddress.ip_address(parts[1].split("%")[0])
            except ValueError:
                continue
            out.append(parts[1])
    return out or ["127.0.0.1"]


def encode_name(name: str) -> bytes:
    if name in ("", "."):
        return b"\0"  # the root
    out = b""
    for label in name.rstrip(".").split("."):
        raw = label.encode("ascii")
        if not 0 < len(raw) < 64:
            raise DnsFailed(f"bad DNS name {name[:80]!r}")
        out += bytes([len(raw)]) + raw
    if len(out) + 1 > 255:
        raise DnsFailed(f"DNS name too long: {name[:80]!r}")
    return out + b"\0"


def build_query(qid: int, name: str, qtype: int = TYPE_SRV) -> bytes:
    # header: id, flags (RD), 1 question; the question
    return struct.pack(">HHHHHH", qid, 0x0100, 1, 0, 0, 0) + encode_name(name) + struct.pack(">HH", qtype, CLASS_IN)


def read_name(msg: bytes, pos: int) -> tuple[str, int]:
    """The (possibly compressed) name at `pos`, and the offset just after it in the record."""
    labels: list[str] = []
    end = -1
    jumps = 0
    length = 0
    while True:
        if pos >= len(msg):
            raise DnsFailed("truncated DNS name")
        n = msg[pos]
        if n & 0xC0 == 0xC0:
            if pos + 1 >= len(msg):
                raise DnsFailed("truncated DNS name")
            jumps += 1
            if jumps > MAX_POINTERS:
                raise DnsFailed("DNS name pointer loop")
            if end < 0:
                end = pos + 2
            pos = ((n & 0x3F) << 8) | msg[pos + 1]
            continue
        if n & 0xC0:
            raise DnsFailed("bad DNS label type")
        if n == 0:
            return ".".join(labels).lower(), (end if end >= 0 else pos + 1)
        label = msg[pos + 1:pos + 1 + n]
        if len(label) != n:
            raise DnsFailed("truncated DNS name")
        length += n + 1
        if length > 255:
            raise DnsFailed("DNS name too long")
        labels.append(label.decode("ascii", "replace"))
        pos += 1 + n


def parse_answer(msg: bytes, qid: int, name: str) -> list[Srv] | None:
    """SRV records of an answer to query `qid` for `name`; None when the name does not exist;
    DnsFailed for anything else that is not a usable answer."""
    if len(msg) < 12:
        raise DnsFailed("short DNS answer")
    rid, flags, qd, an, _ns, _ar = struct.unpack(">HHHHHH", msg[:12])
    if rid != qid or not flags & 0x8000:
        raise DnsFailed("DNS answer to another query")
    rcode = flags & 0x000F
    if rcode == RCODE_NXDOMAIN:
        return None
    if rcode != 0:
        raise DnsFailed(f"DNS server error (rcode {rcode})")
    pos = 12
    for _ in range(qd):
        qname, pos = read_name(msg, pos)
        if qname != name.rstrip(".").lower():
            raise DnsFailed("DNS answer for another name")
        pos += 4
    out = []
    for _ in range(an):
        _owner, pos = read_name(msg, pos)
        if pos + 10 > len(msg):
            raise DnsFailed("truncated DNS record")
        rtype, rclass, _ttl, rdlen = struct.unpack(">HHIH", msg[pos:pos + 10])
        pos += 10
        rdata_end = pos + rdlen
        if rdata_end > len(msg):
            raise DnsFailed("truncated DNS record")
        if rtype == TYPE_SRV and rclass == CLASS_IN:
            if rdlen < 7:
                raise DnsFailed("short SRV record")
            priority, weight, port = struct.unpack(">HHH", msg[pos:pos + 6])
            target, _ = read_name(msg, pos + 6)
            out.append(Srv(priority, weight, port, target))
        pos = rdata_end
    return out


class SystemResolver:
    """SRV queries to the system's nameservers (or the `servers` given, each "ip" or "ip:port"
    for IPv4), UDP then TCP when truncated; all within the timeout of each call."""

    def __init__(self, servers: list[str] | None = None, port: int = 53):
        self.servers = servers if servers is not None else nameservers()
        self.port = port

    def _addr(self, server: str) -> tuple[str, int]:
        if server.count(":") == 1:
            host, _, port = server.partition(":")
            return host, int(port)
        return server, self.port

    def srv(self, name: str, timeout: float) -> list[Srv]:
        deadline = time.monotonic() + timeout
        errors = []
        for server in self.servers:
            left = (deadline - time.monotonic()) / max(1, len(self.servers))
            if left <= 0:
                break
            try:
                found = self._ask(self._addr(server), name, left)
            except (OSError, DnsFailed) as exc:
                errors.append(f"{server}: {exc.strerror if isinstance(exc, OSError) and exc.strerror else exc}")
                continue
            return sorted(found or [], key=lambda r: (r.priority, -r.weight))
        raise DnsFailed("; ".join(errors) or "no nameserver answered in time")

    def _ask(self, addr: tuple[str, int], name: str, timeout: float) -> list[Srv] | None:
        qid = secrets.randbits(16)
        query = build_query(qid, name)
        family = socket.AF_INET6 if ":" in addr[0] else socket.AF_INET
        deadline = time.monotonic() + timeout
        msg = b""
        with socket.socket(family, socket.SOCK_DGRAM) as s:
            s.connect(addr)  # answers from any other address are dropped by the kernel
            s.send(query)
            while True:
                s.settimeout(max(0.01, deadline - time.monotonic()))
                try:
                    msg = s.recv(65535)
                except TimeoutError:
                    raise DnsFailed("no answer in time (timeout)") from None
                if len(msg) >= 2 and struct.unpack(">H", msg[:2])[0] != qid:
                    continue  # a stray or spoofed datagram: keep waiting for ours
                break
        if len(msg) >= 4 and msg[2] & 0x02:  # TC: truncated, ask again over TCP
            msg = self._ask_tcp(addr, family, query, deadline)
        return parse_answer(msg, qid, name)

    def _ask_tcp(self, addr: tuple[str, int], family: int, query: bytes, deadline: float) -> bytes:
        with socket.socket(family, socket.SOCK_STREAM) as s:
            s.settimeout(max(0.01, deadline - time.monotonic()))
            s.connect(addr)
            s.sendall(struct.pack(">H", len(query)) + query)
            data = b""
            need = 2
            while len(data) < need:
                s.settimeout(max(0.01, deadline - time.monotonic()))
                try:
                    chunk = s.recv(65537 - len(data))
                except TimeoutError:
                    raise DnsFailed("no answer in time (timeout)") from None
                if not chunk:
                    raise DnsFailed("the DNS server closed the connection")
                data += chunk
                if len(data) >= 2:
                    need = 2 + struct.unpack(">H", data[:2])[0]
            return data[2:need]
