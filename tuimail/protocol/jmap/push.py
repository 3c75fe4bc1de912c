"""JMAP push over EventSource (RFC 8620 §7.3), for servers that offer it; polling is the default.

    with EventSource(client, types=("Email", "Mailbox"), ping=30) as es:
        for change in es:          # StateChange: {accountId: {"Email": state, ...}}
            ...                    # then Email/changes from the stored state
    es.close()                     # from another thread: the iteration ends

The stream is read on a connection of its own (the API connection stays free). A server that
answers 204 or 404 has no push: ``PushUnavailable`` (Debian's Cyrus 3.6.1: its httpd is built
without WebSockets, and its EventSource is enabled only with them, so it always answers 204).
A ping that does not come within twice its interval (plus a margin) ends the stream with a
NetworkError: the caller reconnects with ``last_event_id`` or falls back to polling. Lines and
events are bounded.
"""

from __future__ import annotations

import json
import socket
import threading
import urllib.parse
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from tuimail.errors import NetworkError, ProtocolError
from tuimail.protocol.jmap.client import JmapClient
from tuimail.protocol.jmap.errors import server_text

__all__ = ["PushUnavailable", "StateChange", "EventSource"]

MAX_LINE = 64 << 10
MAX_EVENT = 1 << 20


class PushUnavailable(NetworkError):
    """The server offers no EventSource push (no URL, or it answered 204/404): poll instead."""


@dataclass
class StateChange:
    changed: dict[str, dict[str, str]]  # accountId -> {type: new state}
    event_id: str | None

    def types(self, account_id: str) -> dict[str, str]:
        return self.changed.get(account_id, {})


class EventSource:
    def __init__(self, client: JmapClient, types: Sequence[str] = ("Email", "Mailbox"), *, ping: int = 30,
                 close_after_state: bool = False, last_event_id: str | None = None):
        self.client = client
        self.types, self.ping, self.close_after_state = list(types), ping, close_after_state
        self.last_event_id = last_event_id
        self._conn: Any = None
        self._closed = threading.Event()

    def __enter__(self) -> EventSource:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """End the stream (safe from another thread: the reader sees the socket shut down)."""
        self._closed.set()
        conn = self._conn
        sock = getattr(conn, "sock", None)
        if sock is not None:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def _url(self) -> str:
        session = self.client.session or self.client.fetch_session()
        template = session.event_source_url
        if not template:
            raise PushUnavailable("the JMAP server offers no EventSource (no eventSourceUrl): polling instead")
        values = {"types": ",".join(self.types) or "*", "closeafter": "state" if self.close_after_state else "no",
                  "ping": str(self.ping)}
        for key, value in values.items():
            template = template.replace("{" + key + "}", urllib.parse.quote(value, safe=",*"))
        return template

    def __iter__(self) -> Iterator[StateChange]:
        url = self._url()
        parts = urllib.parse.urlsplit(url)
        # a ping every `ping` seconds: twice that without a byte means the stream is dead
        timeout = max(2 * self.ping + 5, 10) if self.ping > 0 else self.client.timeout * 10
        self._conn = conn = self.client.new_connection(parts, timeout=timeout)
        path = parts.path + ("?" + parts.query if parts.query else "")
        headers = self.client.headers(accept="text/event-stream")
        if self.last_event_id:
            headers["Last-Event-ID"] = self.last_event_id
        try:
            conn.request("GET", path, headers=headers)
            resp = conn.getresponse()
            if resp.status in (204, 404, 405, 501):
                raise PushUnavailable(f"the JMAP server answered HTTP {resp.status} to EventSource: polling instead")
            if resp.status != 200:
                raise NetworkError(f"JMAP EventSource at {parts.hostname} answered HTTP {resp.status}")
            ctype = resp.getheader("content-type") or ""
            if not ctype.startswith("text/event-stream"):
                raise ProtocolError(f"JMAP EventSource sent {server_text(ctype, 60)!r}, not text/event-stream")
            yield from self._events(resp)
        except (TimeoutError, OSError) as e:
            if self._closed.is_set():
                return
            raise NetworkError(f"JMAP EventSource at {parts.hostname} stopped: {server_text(e, 120)}") from None
        finally:
            conn.close()

    def _events(self, resp: Any) -> Iterator[StateChange]:
        event, size = "", 0
        data: list[str] = []
        while not self._closed.is_set():
            line = resp.readline(MAX_LINE + 1)
            if not line:
                return  # the server ended the stream (closeafter=state, or a restart)
            if len(line) > MAX_LINE:
                raise ProtocolError("JMAP EventSource sent a line over 64 KB")
            text = line.decode("utf-8", "replace").rstrip("\r\n")
            if text == "":
                if data and event in ("", "state"):
                    change = self._parse("\n".join(data))
                    if change is not None:
                        yield change
                event, data, size = "", [], 0
                continue
            if text.startswith(":"):
                continue  # a comment (keep-alive)
            name, _, value = text.partition(":")
            value = value[1:] if value.startswith(" ") else value
            if name == "event":
                event = value
            elif name == "data":
                size += len(value)
                if size > MAX_EVENT:
                    raise ProtocolError("JMAP EventSource sent an event over 1 MB")
                data.append(value)
            elif name == "id":
                self.last_event_id = value

    def _parse(self, payload: str) -> StateChange | None:
        try:
            obj = json.loads(payload)
        except ValueError:
            raise ProtocolError("JMAP EventSource sent an event that is not JSON") from None
        if not isinstance(obj, dict) or obj.get("@type") != "StateChange" or not isinstance(obj.get("changed"), dict):
            return None  # e.g. a ping's {"interval": n}
        changed = {str(acc): {str(t): str(s) for t, s in types.items()}
                   for acc, types in obj["changed"].items() if isinstance(types, dict)}
        return StateChange(changed, self.last_event_id)
