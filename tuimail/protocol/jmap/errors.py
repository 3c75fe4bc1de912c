"""JMAP errors as typed exceptions, each a one-line message quoting the server's type/description.

- request level (RFC 8620 §3.6.1, problem details over HTTP): ``RequestError`` (``type``, ``status``,
  ``limit``); 401/403 are ``AuthError``; a 5xx or a dropped connection is a ``NetworkError``.
- method level (§3.6.2, ["error", {...}, id]): ``MethodError`` (``method``, ``type``, ``description``)
  and the ones a backend acts on: ``StateMismatch`` (an ifInState that is not the current state:
  refetch and re-apply the intent), ``StateInvalid`` (a */changes since a state the server cannot
  calculate from: ``cannotCalculateChanges``, and ``invalidArguments`` which Cyrus answers for a
  state it does not know — both mean resync), ``AccountNotFound``.
"""

from __future__ import annotations

from typing import Any

from tuimail.errors import CommandFailed, ProtocolError
from tuimail.mail.sanitize import sanitize_line

__all__ = ["server_text", "RequestError", "MethodError", "StateMismatch", "StateInvalid", "AccountNotFound",
           "method_error"]


def server_text(obj: Any, limit: int = 300) -> str:
    """A server's text made safe for a one-line message."""
    s = obj.decode("utf-8", "replace") if isinstance(obj, bytes) else str(obj)
    return sanitize_line(s)[:limit]


class RequestError(ProtocolError):
    """The server refused the whole request (HTTP 4xx with a problem-details body)."""

    def __init__(self, status: int, type_: str, detail: str, limit: str | None = None):
        self.status, self.type, self.detail, self.limit = status, type_, detail, limit
        short = type_.rsplit(":", 1)[-1] if type_ else f"HTTP {status}"
        text = f"JMAP request refused ({status} {server_text(short, 80)})"
        if limit:
            text += f", limit {server_text(limit, 80)}"
        if detail:
            text += f": {server_text(detail)}"
        super().__init__(text)


class MethodError(CommandFailed):
    """A method call answered ["error", {"type": ..., "description": ...}]."""

    def __init__(self, method: str, type_: str, description: str = "", arguments: dict | None = None):
        self.method, self.type, self.description = method, type_, description
        self.arguments = arguments or {}
        super().__init__(server_text(method, 80), server_text(type_ or "error", 80), server_text(description))


class StateMismatch(MethodError):
    """ifInState did not match the server's current state (someone else changed the data)."""


class StateInvalid(MethodError):
    """The state a */changes call started from is unknown or too old: resync from scratch."""


class AccountNotFound(MethodError):
    """The account id is not (or not yet) known: on Cyrus, before the account's first IMAP login."""


def method_error(method: str, args: dict) -> MethodError:
    """The typed exception for a method's error response."""
    type_ = str(args.get("type") or "")
    description = str(args.get("description") or "")
    if type_ == "stateMismatch":
        return StateMismatch(method, type_, description, args)
    if type_ == "cannotCalculateChanges":
        return StateInvalid(method, type_, description, args)
    if type_ == "invalidArguments" and method.endswith(("/changes", "/queryChanges")):
        return StateInvalid(method, type_, description, args)
    if type_ == "accountNotFound":
        return AccountNotFound(method, type_, description, args)
    return MethodError(method, type_, description, args)
