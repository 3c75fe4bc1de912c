"""TLS shared by the protocols that use the standard library (smtplib, poplib), which verify no
certificate unless given a context (DESIGN §3b): the one verified context, the pin check, and
whether a host is loopback (where security = "none" is allowed without allow_insecure)."""

from __future__ import annotations

import hashlib
import ipaddress
import socket
import ssl
from pathlib import Path

from tuimail.errors import TLSError

__all__ = ["verified_context", "check_pin", "peer_fingerprint", "is_loopback", "PLAIN_TEXT_REASONS", "one_line"]

# OpenSSL's reasons when the other side of a TLS handshake speaks plain text (a greeting)
PLAIN_TEXT_REASONS = frozenset({"WRONG_VERSION_NUMBER", "RECORD_LAYER_FAILURE", "PACKET_LENGTH_TOO_LONG",
                                "HTTP_REQUEST", "UNKNOWN_PROTOCOL"})


def one_line(obj: object) -> str:
    """A server's text, made safe for a one-line message."""
    from tuimail.mail.sanitize import sanitize_line
    s = obj.decode("utf-8", "replace") if isinstance(obj, bytes) else str(obj)
    return sanitize_line(s)[:300]


def verified_context(ca_file: str | Path | None = None, fingerprint: str | None = None) -> ssl.SSLContext:
    """The system's CAs (or `ca_file`), host name checked, TLS 1.2 at least. With a pinned sha256
    `fingerprint` the pin replaces the CA check (self-signed servers): call ``check_pin`` right
    after the handshake."""
    ctx = ssl.create_default_context(cafile=str(ca_file) if ca_file else None)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    if fingerprint:
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    return ctx


def peer_fingerprint(sock: socket.socket | None) -> str:
    """The sha256 of the peer's certificate, lower-case hex ("" without TLS)."""
    if not isinstance(sock, ssl.SSLSocket):
        return ""
    der = sock.getpeercert(binary_form=True)
    return hashlib.sha256(der or b"").hexdigest()


def check_pin(sock: socket.socket | None, expected: str, where: str, key: str) -> None:
    """TLSError unless the peer's certificate has the pinned fingerprint (`key` names the setting)."""
    got = peer_fingerprint(sock)
    if got != expected.lower().replace(":", ""):
        raise TLSError(f"TLS certificate of {where} has sha256 fingerprint {got or 'none'}, not the one in {key}")


def is_loopback(host: str) -> bool:
    h = host.lower().rstrip(".")
    if h == "localhost":
        return True
    if h.startswith("[") and h.endswith("]"):
        h = h[1:-1]
    try:
        ip = ipaddress.ip_address(h)
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_loopback
