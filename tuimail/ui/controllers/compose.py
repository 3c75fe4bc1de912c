"""Writing mail from the app: compose, reply, reply to all / to the list, forward; the editor; the
review screen; send with undo; postpone; and the outbox drains (controllers/outbox_drain.py).

    m / r / R / ctrl+l / f / A  -> the draft (mail/compose.py) from the message's raw bytes,
                                   fetched in a thread worker
    edit file                   -> headers at the top, a blank line, the text (0600, in a private
                                   temporary directory); $VISUAL / $EDITOR / vi run as an argument
                                   list (shlex.split, no shell) with the app suspended
    review (screens/review.py)  -> send (y), edit again (e), postpone (P), discard (q, asks)
    send                        -> Sender.queue(raw, hold=undo_send) in a thread; the status bar
                                   offers undo (u) until the window ends; undo puts the message
                                   back on the review screen

The edit file is kept until the message is queued past its undo window, postponed or discarded:
a parse error, a refused send or a crash never loses the text (its path is told).
"""

from __future__ import annotations

import contextlib
import os
import shlex
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from textual.app import SuspendNotSupported
from textual.message import Message

from tuimail.backends.registry import can_send, drained_accounts
from tuimail.config.load import Account
from tuimail.core.events import SyncState
from tuimail.errors import TuimailError
from tuimail.mail import compose as mc
from tuimail.mail.sanitize import sanitize_line
from tuimail.store.addresses import AddressBook
from tuimail.ui.controllers.outbox_drain import Drainer
from tuimail.ui.controllers.send_status import SendStatus
from tuimail.ui.controllers.target import current_target, error_text
from tuimail.ui.controllers.view import MainView

EDIT_NAME = "message.eml"  # editors recognise mail by the suffix (vim: ft=mail)
ATTACH_LIMIT = 50 * 1024 * 1024


class DraftMade(Message, bubble=False):
    """A thread worker made the draft of a reply / forward (or says why not)."""

    def __init__(self, account: str, draft: mc.Draft | None, error: str = "",
                 draft_ref: tuple[str, str] | None = None) -> None:
        super().__init__()
        self.account, self.draft, self.error, self.draft_ref = account, draft, error, draft_ref


class SendQueued(Message, bubble=False):
    def __init__(self, session: ComposeSession, entry_id: int | None, hold: float, error: str = "") -> None:
        super().__init__()
        self.session, self.entry_id, self.hold, self.error = session, entry_id, hold, error


class SendCancelled(Message, bubble=False):
    def __init__(self, session: ComposeSession, taken_back: bool, error: str = "") -> None:
        super().__init__()
        self.session, self.taken_back, self.error = session, taken_back, error


class Postponed(Message, bubble=False):
    def __init__(self, session: ComposeSession, folder: str, error: str = "") -> None:
        super().__init__()
        self.session, self.folder, self.error = session, folder, error


class DraftsFiled(Message, bubble=False):
    """A drain stored postponed messages in these folders: sync them (the draft shows in the list)."""

    def __init__(self, account: str, folders: list[str]) -> None:
        super().__init__()
        self.account, self.folders = account, folders


class DrainReported(Message, bubble=False):
    def __init__(self, account: str, line: str, severity: str) -> None:
        super().__init__()
        self.account, self.line, self.severity = account, line, severity


@dataclass(eq=False)
class ComposeSession:
    """One message being written: its draft (threading headers, attachments) and its edit file."""

    account: str
    draft: mc.Draft
    path: Path
    error: str = ""  # the one line shown on the review screen
    parsed: bool = True  # False: the edit file does not parse (fix it with e before sending)
    entry_id: int | None = None  # queued in the outbox (within the undo window)
    draft_ref: tuple[str, str] | None = None  # (folder, server id) of the draft it resumes: replaced when sent
    instead_of: tuple[str, int] | None = None  # ("outbox" | "postponed", id): the entry this edits (outbox_view.py)
    notes: list[str] = field(default_factory=list)

    @classmethod
    def create(cls, account: str, draft: mc.Draft, draft_ref: tuple[str, str] | None = None) -> ComposeSession:
        directory = Path(tempfile.mkdtemp(prefix="tuimail-compose-"))  # 0700
        path = directory / EDIT_NAME
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(mc.edit_text(draft))
        return cls(account, draft, path, draft_ref=draft_ref)

    def text(self) -> str:
        return self.path.read_text(encoding="utf-8", errors="replace")

    def write(self, text: str) -> None:
        self.path.write_text(text, encoding="utf-8")

    def attach(self, path: str) -> str:
        """Attach a file: "" or the one line saying why not."""
        p = Path(os.path.expanduser(path))
        try:
            if not p.is_file():
                return f"Attach: {sanitize_line(path)[:80]}: not a file"
            if p.stat().st_size > ATTACH_LIMIT:
                return f"Attach: {sanitize_line(path)[:80]}: larger than {ATTACH_LIMIT // 2**20} MB"
            data = p.read_bytes()
        except OSError as exc:
            return f"Attach: {sanitize_line(path)[:80]}: {sanitize_line(exc.strerror or str(exc))}"
        self.draft.attachments.append(mc.make_attachment(p.name, data))
        return ""

    def reparse(self) -> None:
        """Read the edit file back into the draft; a bad file keeps the draft and says why."""
        try:
            text = self.text()
        except OSError as exc:
            self.parsed, self.error = False, f"cannot read {self.path}: {exc.strerror or exc}"
            return
        try:
            draft, paths = mc.parse_edit_text(text, self.draft)
        except mc.ComposeError as exc:
            self.parsed, self.error = False, f"{exc} (e: edit again; the text is kept)"
            return
        self.draft, self.parsed = draft, True
        problems = [p for p in (self.attach(path) for path in paths) if p]
        if paths:  # consumed: the file keeps the text, the draft the attachments
            with contextlib.suppress(OSError):
                self.write(mc.edit_text(self.draft))
        if not problems:
            try:
                mc.build_message(self.draft)
            except mc.ComposeError as exc:
                problems.append(str(exc))
        self.error = "; ".join(problems)

    def set_header(self, name: str, value: str) -> None:
        """A header edited on the review screen (To, Cc, Bcc, Subject): into the draft and the
        edit file (so `e` shows it), checked as the edit file is; a bad value is one line."""
        value = " ".join(value.split())
        if name != "Subject":
            value = value.rstrip(",; ")  # (completion leaves "a@x, " for the next one)
        if not self.parsed:
            self.error = "the edit file does not parse: e to fix it first"
            return
        setattr(self.draft, {"To": "to", "Cc": "cc", "Bcc": "bcc", "Subject": "subject"}[name], value)
        try:
            self.write(mc.edit_text(self.draft))
        except OSError as exc:
            self.error = f"cannot write {self.path}: {exc.strerror or exc}"
            return
        self.reparse()

    def remove(self) -> None:
        shutil.rmtree(self.path.parent, ignore_errors=True)


def editor_argv(path: Path, env: dict[str, str] | os._Environ[str] = os.environ) -> list[str]:
    """$VISUAL, else $EDITOR, else vi, split like a shell would (no shell runs), + the file."""
    cmd = (env.get("VISUAL") or "").strip() or (env.get("EDITOR") or "").strip() or "vi"
    try:
        argv = shlex.split(cmd)
    except ValueError as exc:
        raise TuimailError(f"$EDITOR / $VISUAL: {exc}") from None
    return (argv or ["vi"]) + [str(path)]


def identities(account: Account) -> list[mc.Identity]:
    values = [account.from_address or account.smtp.get("from") or "", *account.identities]
    out = [mc.Identity.parse(v) for v in values if v]
    if not out:
        raise mc.ComposeError(f"no sender address: set from in [accounts.{account.name}]")
    return out


REPLY_MODES = {"reply": "sender", "reply_all": "all", "reply_list": "list"}


class ComposeController:
    def __init__(self, view: MainView) -> None:
        self.view = view
        self.pending: dict[int, ComposeSession] = {}  # outbox id -> session, within the undo window
        self.last_sent: int | None = None
        self.last_sent_at = 0.0  # when it was queued (u: the most recent thing, controllers/undo.py)
        self.drainers: dict[str, Drainer] = {}
        # how a Sender is made (tests inject one that talks to their server)
        self.make_sender: Callable[[Account], Any] = self._sender  # a backends.send.Sender
        self._online: dict[str, bool] = {}
        self.send_status = SendStatus(view, time.time)
        self.books: dict[str, AddressBook] = {}
        self.outbox_changed: Callable[[str], None] = lambda account: None  # a drain reported (the ! list follows)

    # ------------------------------------------------------------------ the draft

    def _account(self, name: str | None) -> Account | None:
        config = self.view.tapp.config
        try:
            return config.account(name)
        except TuimailError:
            return None

    def start(self, what: str) -> None:
        """what: compose | reply | reply_all | reply_list | forward | forward_attached | resume_draft."""
        view = self.view
        if what == "compose":
            name = view.account or next(iter(view.tapp.stores), None)
            account = self._account(name)
            if account is None:
                view.notify("no account to write from", severity="error", markup=False)
                return
            try:
                draft = mc.new_draft(identities(account)[0])
            except TuimailError as exc:
                view.notify(error_text(exc), severity="error", markup=False)
                return
            self._begin(account.name, draft)
            return
        t = current_target(view)
        if t is None:
            view.notify("no message selected", markup=False)
            return
        account = self._account(t.account)
        svc = view.tapp.services.get(t.account)
        if account is None or svc is None:
            view.notify("no sync service for this account", severity="error", markup=False)
            return
        post = view.post_message
        draft_ref = None
        if what == "resume_draft":
            store = view.tapp.stores.get(t.account)
            sid = store.sid_of([t.uid]).get(t.uid) if store is not None else None
            draft_ref = (t.folder, sid) if sid is not None else None

        def work() -> None:
            try:
                raw = svc.fetch_raw(t.folder, t.uid)
                if what == "resume_draft":
                    draft = mc.resume(raw)
                else:
                    ids = identities(account)
                    if what in REPLY_MODES:
                        draft = mc.reply(raw, ids, REPLY_MODES[what])
                    else:
                        draft = mc.forward(raw, ids, inline=what == "forward")
            except Exception as exc:
                post(DraftMade(t.account, None, error_text(exc)))
                return
            post(DraftMade(t.account, draft, draft_ref=draft_ref))

        view.run_worker(work, thread=True, group="compose", exit_on_error=False)

    def draft_made(self, msg: DraftMade) -> None:
        if msg.draft is None:
            self.view.notify(msg.error or "no draft", severity="error", markup=False)
            return
        self._begin(msg.account, msg.draft, msg.draft_ref)

    def _begin(self, account: str, draft: mc.Draft, draft_ref: tuple[str, str] | None = None) -> None:
        try:
            session = ComposeSession.create(account, draft, draft_ref)
        except OSError as exc:
            self.view.notify(f"cannot write the edit file: {exc.strerror or exc}", severity="error", markup=False)
            return
        self.edit(session)

    # ------------------------------------------------------------------ editor and review

    def edit(self, session: ComposeSession) -> None:
        app = self.view.tapp
        problem = ""
        try:
            argv = editor_argv(session.path)
            try:
                with app.suspend():
                    rc = subprocess.run(argv, check=False).returncode
            except SuspendNotSupported:  # no terminal to hand over (tests, the web): run it as it is
                rc = subprocess.run(argv, check=False, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                    stderr=subprocess.DEVNULL).returncode
            if rc != 0:
                problem = f"the editor ({sanitize_line(argv[0])}) exited with status {rc}"
        except TuimailError as exc:
            problem = error_text(exc)
        except OSError as exc:
            problem = f"cannot run the editor: {sanitize_line(exc.strerror or str(exc))} (set $EDITOR)"
        app.refresh()
        session.reparse()
        if problem:
            session.error = "; ".join(p for p in (problem, session.error) if p)
        if session.notes:
            session.error = "; ".join(p for p in (session.error, *session.notes) if p)
        self.review(session)

    def _drafts_folder(self, session: ComposeSession) -> tuple[str | None, str]:
        """(Drafts folder name or None, why postponing is not offered)."""
        app = self.view.tapp
        svc = app.services.get(session.account)
        if svc is None or not svc.capabilities.append:
            return None, "no postpone: this account cannot store drafts"
        account = self._account(session.account)
        name = account.roles.get("drafts") if account is not None else None
        store = app.stores.get(session.account)
        if not name and store is not None:
            info = store.folder_by_role("drafts")
            name = info.name if info is not None else None
        if not name:
            return None, "no postpone: no Drafts folder (set roles.drafts)"
        return name, ""

    def review(self, session: ComposeSession) -> None:
        from tuimail.ui.screens.review import ReviewScreen

        folder, why = self._drafts_folder(session)

        def chosen(what: str | None) -> None:
            if what == "send":
                self.send(session)
            elif what == "edit":
                self.edit(session)
            elif what == "postpone" and folder:
                self.postpone(session, folder)
            elif what == "discard":
                session.remove()
                self.view.notify("this edit is discarded; the message still waits in the Outbox (!)"
                                 if session.instead_of else "message discarded", markup=False)
            else:  # (dismissed otherwise: nothing is lost, the file stays)
                self.view.notify(f"the message is kept in {session.path}", markup=False)

        self.view.tapp.push_screen(ReviewScreen(session, can_postpone=folder is not None, postpone_note=why,
                                                book=self.address_book(session.account)), chosen)

    def address_book(self, account: str) -> AddressBook:
        """The addresses `account`'s store has seen, and the config's [aliases] (kept: later
        lookups read only the new rows)."""
        book = self.books.get(account)
        if book is None:
            store = self.view.tapp.stores.get(account)
            book = AddressBook(store.path if store is not None else None, self.view.tapp.config.aliases)
            self.books[account] = book
        return book

    # ------------------------------------------------------------------ send and undo

    def _sender(self, account: Account) -> Any:
        from tuimail.backends.registry import create_sender

        sender = create_sender(self.view.tapp.config, account)
        store = self.view.tapp.stores.get(account.name)
        if store is not None:
            sender.store_path = Path(store.path)  # the app's store (the same file outside tests)
        return sender

    def send(self, session: ComposeSession) -> None:
        view = self.view
        if not session.parsed:
            session.error = session.error or "the edit file does not parse: e to edit it"
            self.review(session)
            return
        account = self._account(session.account)
        if account is None:
            session.error = f"no account {session.account!r} in the config"
            self.review(session)
            return
        if not can_send(account) and self.make_sender == self._sender:
            session.error = (f"not sent: no [accounts.{account.name}.smtp] table in the config (its host, port,"
                             " security); P postpones, the text stays in the edit file")
            self.review(session)
            return
        try:
            raw = mc.sent_copy(mc.build_message(session.draft))
        except mc.ComposeError as exc:
            session.error = str(exc)
            self.review(session)
            return
        hold = float(account.undo_send)
        sender = self.make_sender(account)
        post = view.post_message
        draft_ref = session.draft_ref
        instead = {"instead_of": session.instead_of} if session.instead_of else {}

        def work() -> None:
            try:
                entry_id = sender.queue(raw, hold=hold, draft=draft_ref, **instead)
            except Exception as exc:
                post(SendQueued(session, None, hold, error_text(exc)))
                return
            post(SendQueued(session, entry_id, hold))

        view.run_worker(work, thread=True, group="send", exit_on_error=False)

    def queued(self, msg: SendQueued) -> None:
        view, session = self.view, msg.session
        if msg.entry_id is None:
            session.error = msg.error or "not queued"
            self.review(session)
            return
        session.entry_id = msg.entry_id
        session.instead_of = None  # (the entry it replaced is gone with the same commit)
        self.pending[msg.entry_id] = session
        self.last_sent = msg.entry_id
        self.last_sent_at = time.time()
        entry_id = msg.entry_id
        self._ensure_drainer(session.account)
        if msg.hold <= 0:
            self._window_over(entry_id)
            return
        self.send_status.start(entry_id, session.account, msg.hold)
        view.set_timer(msg.hold, lambda: self._window_over(entry_id))

    def _window_over(self, entry_id: int) -> None:
        session = self.pending.pop(entry_id, None)
        if self.last_sent == entry_id:
            self.last_sent = None
        if session is None:
            return
        self.send_status.over(entry_id, session.account)
        session.remove()  # the outbox holds the message now
        d = self.drainers.get(session.account)
        if d is not None:
            d.kick()

    def waiting_send_at(self) -> float | None:
        """When the message in its undo window was queued (None: none waits)."""
        if self.last_sent is None or self.last_sent not in self.pending:
            return None
        return self.last_sent_at

    def undo(self) -> None:
        view = self.view
        entry_id = self.last_sent
        session = self.pending.get(entry_id) if entry_id is not None else None
        if entry_id is None or session is None:
            view.notify("nothing to undo: no message is waiting to be sent", markup=False)
            return
        account = self._account(session.account)
        if account is None:
            return
        sender = self.make_sender(account)
        post = view.post_message

        def work() -> None:
            try:
                entry = sender.cancel(entry_id)
            except Exception as exc:
                post(SendCancelled(session, False, error_text(exc)))
                return
            post(SendCancelled(session, entry is not None))

        view.run_worker(work, thread=True, group="send", exit_on_error=False)

    def cancelled(self, msg: SendCancelled) -> None:
        session = msg.session
        if not msg.taken_back:
            self.view.notify(msg.error or "too late to undo: the message is on its way", markup=False)
            return
        if session.entry_id is not None:
            self.pending.pop(session.entry_id, None)
            if self.last_sent == session.entry_id:
                self.last_sent = None
        if session.entry_id is not None:
            self.send_status.undone(session.entry_id)
        session.entry_id = None
        session.error = "not sent (undone)"
        self.review(session)

    # ------------------------------------------------------------------ postpone

    def postpone(self, session: ComposeSession, folder: str) -> None:
        """Written to the store first (store/postponed.py: durable, offline too), then the
        account's drain stores it in Drafts (flagged draft, seen) and removes the draft it resumes."""
        account = self._account(session.account)
        if account is None:
            return
        try:
            raw = mc.sent_copy(mc.build_message(session.draft))
        except mc.ComposeError as exc:
            session.error = str(exc)
            self.review(session)
            return
        sender = self.make_sender(account)
        post = self.view.post_message
        replaces = session.draft_ref
        instead = {"instead_of": session.instead_of} if session.instead_of else {}

        def work() -> None:
            try:
                sender.postpone(raw, folder, replaces=replaces, **instead)
            except Exception as exc:
                post(Postponed(session, folder, error_text(exc)))
                return
            post(Postponed(session, folder))

        self.view.run_worker(work, thread=True, group="send", exit_on_error=False)

    def postponed(self, msg: Postponed) -> None:
        if msg.error:
            msg.session.error = f"not postponed: {msg.error}"
            self.review(msg.session)
            return
        msg.session.remove()  # the store holds the message now
        app = self.view.tapp
        d = self._ensure_drainer(msg.session.account)
        if d is not None:
            d.kick(ignore_backoff=True)
        where = sanitize_line(msg.folder)
        if app.offline:
            self.view.notify(f"postponed: kept here, stored in {where} when back online", markup=False)
        else:
            self.view.notify(f"postponed to {where}", markup=False)

    def drafts_filed(self, msg: DraftsFiled) -> None:
        svc = self.view.tapp.services.get(msg.account)
        if svc is None:
            return
        for folder in dict.fromkeys(msg.folders):
            svc.request_sync(folder)

    def flash(self, text: str, seconds: float) -> None:
        self.send_status.flash(text, seconds)

    # ------------------------------------------------------------------ the outbox drains

    def start_drainers(self) -> None:
        """A drain thread for each account that can send (an [smtp] table, or JMAP) or store
        drafts: what a previous run left (in the outbox, postponed) goes out too. (The thread looks
        at the store itself: nothing is read here, on the UI thread.)"""
        tapp = self.view.tapp
        for name in drained_accounts(tapp.config, tapp.stores, tapp.services):
            self._ensure_drainer(name)

    def _ensure_drainer(self, name: str) -> Drainer | None:
        d = self.drainers.get(name)
        if d is not None:
            return d
        account = self._account(name)
        if account is None:
            return None
        post = self.view.post_message
        app = self.view.tapp

        def report(account_name: str, line: str, severity: str) -> None:
            post(DrainReported(account_name, line, severity))

        def filed(result: Any) -> None:
            folders = [f for _id, f in getattr(result, "drafted", ())]
            if folders:
                post(DraftsFiled(name, folders))

        d = Drainer(name, self.make_sender(account), report, offline=lambda: bool(app.offline), after=filed)
        self.drainers[name] = d
        d.start()
        return d

    def drain_reported(self, msg: DrainReported) -> None:
        self.send_status.outcome(msg.account, msg.line)
        severity: Any = msg.severity
        self.view.notify(f"{msg.account}: {msg.line}", severity=severity, markup=False,
                         timeout=8 if msg.severity != "information" else 4)
        self.outbox_changed(msg.account)

    def sync_state(self, ev: SyncState) -> None:
        """The network is back for this account: what waits for a retry goes now."""
        online = ev.state in ("syncing", "idle")
        was = self._online.get(ev.account)
        self._online[ev.account] = online
        if online and was is False:
            d = self.drainers.get(ev.account)
            if d is not None:
                d.kick(ignore_backoff=True)

    def offline_changed(self) -> None:
        self.send_status.refresh()

    def went_online(self) -> None:
        for d in self.drainers.values():
            d.kick(ignore_backoff=True)

    def stop(self) -> None:
        """The app ends: what waits in its undo window is in the outbox already (sent on the next
        run, or by `tuimail send`); its edit files go."""
        for session in self.pending.values():
            session.remove()
        self.pending.clear()
        for d in self.drainers.values():
            d.stop(timeout=1.0)
        self.drainers.clear()

