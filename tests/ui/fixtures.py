"""Helpers for UI tests: real Stores filled with generated rows, and a fake ImapService."""

from __future__ import annotations

import asyncio
import threading
from tests.support.rows import v6
from datetime import datetime, UTC
from pathlib import Path

from tuimail.config.load import Account, Config, UIConfig
from tuimail.core.service import Capabilities
from tuimail.core.summary import SyncSummary
from tuimail.errors import NotCached, Unsupported
from tuimail.store.store import Store
from tuimail.core.content import Attachment, MessageContent

# The fixed clock of every UI test: 2024-03-15 12:00 UTC.
NOW = datetime(2024, 3, 15, 12, 0, tzinfo=UTC).timestamp()

FOLDERS = [  # (name, role)
    ("INBOX", "inbox"), ("Drafts", "drafts"), ("Sent", "sent"), ("Archive", "archive"),
    ("Junk", "junk"), ("Trash", "trash"), ("Lists", None), ("Lists/python", None), ("Lists/textual", None),
]
NAMES = ["Alice Example", "Bob Builder", "Carol Jones", "Dave Smith", "Eve Adams", "Frank Miller",
         "Grace Hopper", "Heidi Klum"]
SUBJECTS = ["Quarterly report", "Lunch on Friday?", "Re: build is broken", "Holiday photos",
            "Invoice #{n}", "Meeting notes", "Re: Re: the plan", "Your account", "Welcome aboard",
            "Patch v{n}: fix the parser"]


def header_row(uid: int, *, date: float | None = None, subject: str | None = None, from_: str | None = None,
               flags: str | None = None, size: int | None = None, attach: bool = False):
    """A v6 header row whose server id is `uid` (flags given as IMAP spells them): (sid, modseq,
    flags, keywords, date, from, to, cc, subject, message_id, in_reply_to, refs, size, has_att)."""
    name = NAMES[uid % len(NAMES)]
    if from_ is None:
        from_ = f"{name} <{name.split()[0].lower()}@example.org>"
    if subject is None:
        subject = SUBJECTS[uid % len(SUBJECTS)].format(n=uid)
    if flags is None:
        flags = "\\Seen" if uid % 3 else ""
        if uid % 7 == 0:
            flags = (flags + " \\Flagged").strip()
    if date is None:
        date = NOW - uid * 3607 * 5
    return v6((uid, uid, flags, int(date), from_, "me@example.org", "", subject, f"<m{uid}@example.org>",
               None, "", size if size is not None else 1000 + uid * 37 % 90000, attach))


def make_store(path: Path, n: int = 50, *, folder_rows: dict[str, int] | None = None) -> Store:
    """A Store with the FOLDERS and n rows in INBOX (uids 1..n; newest = highest uid? no: uid 1 is newest)."""
    store = Store(path)
    for name, role in FOLDERS:
        store.upsert_folder(name, "/", [], role, selectable=(name != "Lists"))
    fid = store.folder_id("INBOX")
    fill(store, fid, range(1, n + 1))
    for name, count in (folder_rows or {}).items():
        fill(store, store.folder_id(name), range(1, count + 1))
    return store


def fill(store: Store, folder_id: int, uids, **kw) -> None:
    rows = [header_row(u, **kw) for u in uids]
    for i in range(0, len(rows), 5000):
        store.insert_headers(folder_id, rows[i:i + 5000])


def make_config(**ui) -> Config:
    acc = Account(name="test", kind="imap", host="localhost", port=143, security="none", username="me",
                  password="x")
    return Config(accounts={"test": acc}, ui=UIConfig(**{"theme": "dark", **ui}))


def content_for(folder: str, uid: int, **kw) -> MessageContent:
    text = kw.pop("text", None)
    if text is None:
        text = (f"Hello,\n\nthis is message {uid} in {folder}.\n\n> quoted once\n>> quoted twice\n\n"
                "See [1] for details.\n\n-- \nAlice")
    return MessageContent(
        folder=folder, uid=uid,
        headers=[("From", "Alice Example <alice@example.org>"), ("To", "me@example.org"),
                 ("Date", "Fri, 15 Mar 2024 11:00:00 +0000"), ("Subject", f"Message {uid}")],
        text=text, links=kw.pop("links", ["https://example.org/details"]),
        attachments=kw.pop("attachments", [Attachment("2", "report.pdf", "application/pdf", 123456)]),
        **kw)


class FakeService:
    """An AccountService (core/service.py) for the UI tests: records the calls, answers from `contents`."""

    capabilities = Capabilities(server_flags=True, push=True, server_folders=True)
    login_blocked = None

    def __init__(self, contents: dict | None = None, *, raw: bytes | None = None, parts: dict | None = None,
                 offline: bool = False, block: threading.Event | None = None):
        self.calls: list[tuple] = []
        self.contents = contents or {}
        self.raw = raw
        self.parts = parts or {}
        self.offline = offline
        self.block = block
        self.on_event = None

    def start(self):
        self.calls.append(("start",))

    def stop(self, timeout: float = 5.0):
        self.calls.append(("stop",))

    def hold_for_first_paint(self):
        self.calls.append(("hold_for_first_paint",))

    def ui_painted(self):
        self.calls.append(("ui_painted",))

    def set_password(self, password):
        self.calls.append(("set_password", password))

    def sync_now(self, folder=None):
        self.calls.append(("sync_now", folder))
        return SyncSummary(mode="fake")

    def search(self, folder, query):
        raise Unsupported("the fake has no server search")

    def send(self, raw, *, sender, recipients):
        raise Unsupported("the fake does not send")

    def append(self, folder, raw, flags=()):
        raise Unsupported("the fake does not append")

    def wake(self):
        self.calls.append(("wake",))

    def request_sync(self, folder=None):
        self.calls.append(("request_sync", folder))

    def watch_folder(self, folder):
        self.calls.append(("watch_folder", folder))

    def set_offline(self, offline):
        self.offline = offline
        self.calls.append(("set_offline", offline))

    def open_message(self, folder, uid, *, more=False):
        self.calls.append(("open_message", folder, uid, more))
        if self.block is not None:
            self.block.wait(10)
        if (folder, uid) in self.contents:
            return self.contents[(folder, uid)]
        if self.offline:
            raise NotCached("not cached")
        return content_for(folder, uid)

    def open_attached(self, folder, uid, section):
        self.calls.append(("open_attached", folder, uid, section))
        return content_for(folder, uid, section=section, text=f"the message attached at {section}")

    def fetch_raw(self, folder, uid):
        self.calls.append(("fetch_raw", folder, uid))
        if self.raw is not None:
            return self.raw
        return (f"From: Alice <alice@example.org>\r\nTo: me@example.org\r\nSubject: Message {uid}\r\n"
                f"X-Mailer: test\r\nReceived: from a by b\r\n\r\nbody of {uid}\r\n").encode()

    def fetch_part(self, folder, uid, section):
        self.calls.append(("fetch_part", folder, uid, section))
        return self.parts.get(section, b"%PDF-1.4 fake\n")


def screen_text(app) -> str:
    """The whole screen as plain text (every control character kept, so tests can look for ESC)."""
    screen = app.screen
    strips = screen._compositor.render_strips()
    return "\n".join("".join(seg.text for seg in strip) for strip in strips)


def run(coro):
    return asyncio.run(coro)


async def settle(pilot, app, timeout: float = 5.0) -> None:
    """Wait until thread workers are done and the screen has caught up."""
    await pilot.pause()
    await app.workers.wait_for_complete()
    await pilot.pause()
    await pilot.pause()


async def wait_until(pilot, condition, timeout: float = 5.0) -> None:
    """Pause until condition() is true (counts and folder lists are read in threads, debounced)."""
    import time

    end = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > end:
            raise AssertionError("condition not met in time")
        await pilot.pause(0.05)


async def quiesce(pilot) -> None:
    """Past the debounce timers, every thread worker done, the screen up to date."""
    await pilot.pause(0.4)
    await pilot.app.workers.wait_for_complete()
    await pilot.pause()
