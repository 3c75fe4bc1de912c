"""An EventSource push relay in front of Cyrus, for measuring tuimail's push path.

Debian's Cyrus 3.6.1 has no JMAP push: its eventsource endpoint is live only when httpd is built
with WebSockets (wslay), and this build is not, so it answers 204 (protocol/jmap/push.py says
"polling instead"). To measure what tuimail does with a push, this relay plays the part of a
server that has one, driven by Cyrus itself:

    relay = PushRelay(user).start()      # user: a CyrusUser
    relay.session_url                    # give this to tuimail as the account's `url`
    relay.stop()

- GET <relay>/jmap/ returns Cyrus's session resource (fetched with the client's own credentials)
  with apiUrl, downloadUrl and uploadUrl made absolute to Cyrus, so every API request goes to Cyrus
  directly, and eventSourceUrl pointing at the relay.
- GET <relay>/eventsource/?types=...&ping=N opens an IMAP IDLE on the user's INBOX at Cyrus (its
  idled makes IDLE answer at once); on each untagged answer (a flag, a new message, an expunge) it
  asks Cyrus for the account's Email and Mailbox states (one JMAP request) and, when they moved,
  sends a RFC 8620 StateChange event; a ping every N seconds otherwise.

What it adds to a measurement is Cyrus's IDLE notification and one Email/get: the time a server
with built-in push would spend noticing the change itself.
"""

from __future__ import annotations

import base64
import json
import threading
import time
import urllib.parse
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

__all__ = ["PushRelay"]


class PushRelay:
    def __init__(self, user: Any):
        self.user = user
        self.server: ThreadingHTTPServer | None = None
        self.stopping = threading.Event()
        self.events_sent = 0
        self.streams = 0

    @property
    def port(self) -> int:
        assert self.server is not None
        return self.server.server_address[1]

    @property
    def session_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/jmap/"

    def start(self) -> PushRelay:
        relay = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                path = urllib.parse.urlsplit(self.path)
                auth = self.headers.get("Authorization") or ""
                if path.path.rstrip("/") == "/jmap":
                    relay._session(self, auth)
                elif path.path.startswith("/eventsource"):
                    relay._stream(self, auth, urllib.parse.parse_qs(path.query))
                else:
                    self.send_error(404)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, name="push-relay", daemon=True).start()
        return self

    def stop(self) -> None:
        self.stopping.set()
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()
            self.server = None

    # -- the session resource -------------------------------------------------------------

    def _session(self, h: BaseHTTPRequestHandler, auth: str) -> None:
        req = urllib.request.Request(self.user.session_url, headers={"Authorization": auth,
                                                                     "Accept": "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=10) as resp:
                session = json.loads(resp.read())
        except urllib.error.HTTPError as e:
            h.send_error(e.code)
            return
        base = self.user.session_url
        for key in ("apiUrl", "downloadUrl", "uploadUrl"):
            # (urljoin would percent-encode nothing; the templates' {...} survive)
            session[key] = urllib.parse.urljoin(base, session[key])
        session["eventSourceUrl"] = (f"http://127.0.0.1:{self.port}/eventsource/"
                                     "?types={types}&closeafter={closeafter}&ping={ping}")
        body = json.dumps(session).encode()
        h.send_response(200)
        h.send_header("Content-Type", "application/json")
        h.send_header("Content-Length", str(len(body)))
        h.end_headers()
        h.wfile.write(body)

    # -- the event stream -----------------------------------------------------------------

    def _states(self, auth: str) -> dict[str, str]:
        body = json.dumps({"using": ["urn:ietf:params:jmap:core", "urn:ietf:params:jmap:mail"], "methodCalls": [
            ["Email/get", {"accountId": self.user.name, "ids": []}, "e"],
            ["Mailbox/get", {"accountId": self.user.name, "ids": []}, "m"]]}).encode()
        req = urllib.request.Request(self.user.session_url, data=body, method="POST", headers={
            "Authorization": auth, "Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=10) as resp:
            answers = json.loads(resp.read())["methodResponses"]
        return {"Email" if cid == "e" else "Mailbox": args["state"] for _name, args, cid in answers}

    def _stream(self, h: BaseHTTPRequestHandler, auth: str, query: dict[str, list[str]]) -> None:
        try:
            user, _, password = base64.b64decode(auth.split(" ", 1)[1]).decode().partition(":")
        except (IndexError, ValueError):
            h.send_error(401)
            return
        if user != self.user.name or password != self.user.password:
            h.send_error(401)
            return
        ping = int((query.get("ping") or ["0"])[0] or 0)
        types = set((query.get("types") or ["*"])[0].split(","))
        h.send_response(200)
        h.send_header("Content-Type", "text/event-stream")
        h.send_header("Cache-Control", "no-cache")
        h.end_headers()
        self.streams += 1
        imap = self.user.client(select="INBOX")
        try:
            last = self._states(auth)
            imap.idle()
            next_ping = time.monotonic() + ping if ping else float("inf")
            while not self.stopping.is_set():
                answers = imap.idle_check(timeout=0.2)
                if answers:
                    states = self._states(auth)
                    changed = {t: s for t, s in states.items() if s != last.get(t) and ("*" in types or t in types)}
                    last = states
                    if changed:
                        data = {"@type": "StateChange", "changed": {self.user.name: changed}}
                        h.wfile.write(f"event: state\nid: {states['Email']}\ndata: {json.dumps(data)}\n\n".encode())
                        h.wfile.flush()
                        self.events_sent += 1
                if time.monotonic() >= next_ping:
                    h.wfile.write(f"event: ping\ndata: {json.dumps({'interval': ping})}\n\n".encode())
                    h.wfile.flush()
                    next_ping = time.monotonic() + ping
        except OSError:
            pass  # the client went away
        finally:
            try:
                imap.idle_done()
            except Exception:
                pass
            try:
                imap.logout()
            except Exception:
                pass
