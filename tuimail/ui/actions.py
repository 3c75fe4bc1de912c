"""Actions on messages, mixed into the main screen.

Intents (flags, delete, move) write the store first — the row changes on screen at once and the
journal carries the change to the server — then wake the sync worker. Everything that needs the
network (open, raw source, parts) runs in a thread worker: the UI never waits.
"""

from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass
from functools import partial
from pathlib import Path

from textual.worker import Worker, WorkerState

from ..errors import NotCached, TuimailError
from ..mail.sanitize import sanitize_line
from .attachments import run_pipe, save_target, split_command, temp_copy, write_private
from .message_view import text_lines
from .screens import AttachmentScreen, ConfirmScreen, PickerScreen, PromptScreen, TextScreen
from . import mailcap

SEEN, FLAGGED = "\\Seen", "\\Flagged"
RAW_LIMIT = 4 * 1024 * 1024


@dataclass(frozen=True)
class Target:
    account: str
    folder_id: int
    folder: str
    uid: int


def _error_text(exc: BaseException) -> str:
    if isinstance(exc, NotCached):
        return "not available offline (not in the local cache)"
    if isinstance(exc, TuimailError):
        return sanitize_line(str(exc))
    return sanitize_line(f"{type(exc).__name__}: {exc}")


class MessageActions:
    """Needs: self.tapp, hlist, reader, account, folder, store(), counts_changed(), notify()."""

    def init_actions(self) -> None:
        self._gen = 0
        self._mark_timer = None
        self._after_open: str | None = None
        self.reader_mode = "message"  # message | headers | raw

    # ------------------------------------------------------------------ targets

    def target(self, *, prefer_open: bool | None = None) -> Target | None:
        """The message an action applies to: the open one when the reader has the focus (or in
        full screen), else the one under the list cursor."""
        reader = self.reader
        if prefer_open is None:
            prefer_open = reader.has_focus or self.has_class("fullscreen")
        if prefer_open and reader.uid is not None and reader.folder_key is not None:
            account, fid = reader.folder_key
            info = self.tapp.stores[account].folder(fid)
            if info is not None:
                return Target(account, fid, info.name, reader.uid)
        uid = self.hlist.current_uid
        if uid is None or self.folder is None:
            return None
        return Target(self.account, self.folder.id, self.folder.name, uid)

    # ------------------------------------------------------------------ opening

    def on_header_list_selected(self, event) -> None:
        self.open_message(event.uid, focus=True)

    def open_message(self, uid: int, *, focus: bool = False, more: bool = False) -> None:
        if self.folder is None:
            return
        self._gen += 1
        gen = self._gen
        reader = self.reader
        t = Target(self.account, self.folder.id, self.folder.name, uid)
        reader.folder_key, reader.uid = (t.account, t.folder_id), uid
        self.reader_mode = "message"
        if not more:
            reader.content = None
            reader.show_status("Loading…")
        svc = self.tapp.services.get(t.account)
        self.run_worker(partial(self._fetch_message, gen, svc, t, more), thread=True, group="open",
                        exit_on_error=False)
        if focus:
            reader.focus()

    @staticmethod
    def _fetch_message(gen, svc, t: Target, more: bool):
        try:
            if svc is None:
                raise NotCached("no sync service for this account")
            return gen, t, svc.open_message(t.folder, t.uid, more=more), None
        except Exception as exc:  # shown in the reader, one line
            return gen, t, None, exc

    def _schedule_mark_read(self, gen: int, t: Target) -> None:
        if self._mark_timer is not None:
            self._mark_timer.stop()
            self._mark_timer = None
        delay = self.tapp.config.ui.mark_read_delay
        if delay is None or delay < 0:
            return
        if delay == 0:
            self.set_flags(t, add=(SEEN,))
            return

        def fire() -> None:
            self._mark_timer = None
            if self.reader.uid == t.uid and self.reader.folder_key == (t.account, t.folder_id):
                self.set_flags(t, add=(SEEN,))  # still on screen after the delay

        self._mark_timer = self.set_timer(delay, fire)

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        worker = event.worker
        if event.state != WorkerState.SUCCESS:
            if event.state == WorkerState.ERROR:
                self.notify(_error_text(worker.error), severity="error", markup=False)
            return
        handler = getattr(self, f"_done_{worker.group}", None)
        if handler is not None:
            handler(worker.result)

    def _done_open(self, result) -> None:
        gen, t, content, exc = result
        if gen != self._gen:
            return  # the user moved on
        reader = self.reader
        if exc is not None:
            reader.show_status(_error_text(exc), "error")
            return
        keep = reader.content is not None and reader.content.uid == content.uid
        reader.show_message(content, keep_scroll=keep)
        if not keep:
            self._schedule_mark_read(gen, t)  # read once shown, not when the fetch failed
        after, self._after_open = self._after_open, None
        if after == "attachments":
            self.action_attachments()

    # ------------------------------------------------------------------ pager actions

    def action_close(self) -> None:
        if self.has_class("fullscreen"):
            self.remove_class("fullscreen")
        self.hlist.focus()

    def _step(self, delta: int) -> None:
        hl = self.hlist
        old = hl.cursor
        hl.move_cursor(hl.cursor + delta)
        if hl.cursor != old and hl.current_uid is not None:
            self.open_message(hl.current_uid)
        else:
            self.app.bell()

    def action_next_message(self) -> None:
        self._step(1)

    def action_prev_message(self) -> None:
        self._step(-1)

    def action_load_more(self) -> None:
        c = self.reader.content
        if c is None or not c.more:
            self.notify("the whole message is shown", markup=False)
            return
        self.open_message(self.reader.uid, more=True)

    def on_message_view_at_end(self, event) -> None:
        c = self.reader.content
        if c is not None and c.more:
            self.action_load_more()

    def _ask_link(self, then) -> None:
        c = self.reader.content
        if c is None or not c.links:
            self.notify("this message has no links", markup=False)
            return

        def got(value: str | None) -> None:
            if value is None:
                return
            try:
                n = int(value.strip())
                url = c.links[n - 1]
                if n < 1:
                    raise IndexError
            except (ValueError, IndexError):
                self.notify(f"no link {sanitize_line(value)[:10]} (1-{len(c.links)})", markup=False)
                return
            then(n, url)

        self.app.push_screen(PromptScreen(f"Link number (1-{len(c.links)})"), got)

    def action_copy_link(self) -> None:
        def copy(n: int, url: str) -> None:
            self.app.copy_to_clipboard(url)
            self.notify(f"link {n} copied to the clipboard", markup=False)

        self._ask_link(copy)

    def action_open_link(self) -> None:
        def open_(n: int, url: str) -> None:
            scheme = url.split(":", 1)[0].lower()
            if scheme not in ("http", "https", "mailto", "ftp"):
                self.notify(f"not opening a {sanitize_line(scheme)[:20]}: link; copied instead", markup=False)
                self.app.copy_to_clipboard(url)
                return
            if os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY") or os.uname().sysname == "Darwin":
                self.app.open_url(url)
                self.notify(f"opening link {n}", markup=False)
            else:
                self.app.copy_to_clipboard(url)
                self.notify(f"no graphical browser here: link {n} copied to the clipboard", markup=False)

        self._ask_link(open_)

    # ------------------------------------------------------------------ intents

    def set_flags(self, t: Target, add=(), remove=()) -> list[int]:
        store = self.tapp.stores[t.account]
        changed = store.set_flags(t.folder_id, [t.uid], add=add, remove=remove)
        if changed:
            if self.folder is not None and t.folder_id == self.folder.id and t.account == self.account:
                self.hlist.invalidate(changed)
            self._wake(t.account)
            self.counts_changed(t.account, t.folder_id)
        return changed

    def _wake(self, account: str) -> None:
        svc = self.tapp.services.get(account)
        if svc is not None:
            svc.wake()

    def _row(self, t: Target):
        return self.tapp.stores[t.account].row(t.folder_id, t.uid)

    def action_toggle_read(self) -> None:
        t = self.target()
        row = t and self._row(t)
        if row is None:
            return
        if row.seen:
            self.set_flags(t, remove=(SEEN,))
        else:
            self.set_flags(t, add=(SEEN,))

    def action_flag(self) -> None:
        t = self.target()
        row = t and self._row(t)
        if row is None:
            return
        if row.flagged:
            self.set_flags(t, remove=(FLAGGED,))
        else:
            self.set_flags(t, add=(FLAGGED,))

    def _hidden(self, t: Target, uids: list[int]) -> None:
        if not uids:
            return
        if self.folder is not None and t.folder_id == self.folder.id and t.account == self.account:
            self.hlist.remove_uids(uids)
        if self.reader.uid in uids and self.reader.folder_key == (t.account, t.folder_id):
            self.reader.clear("Message moved.")
            self.hlist.focus()
        self._wake(t.account)
        self.counts_changed(t.account, t.folder_id)

    def move_to(self, t: Target, dest: str, dest_id: int | None = None) -> None:
        uids = self.tapp.stores[t.account].move(t.folder_id, [t.uid], dest)
        self._hidden(t, uids)
        if dest_id is not None:
            self.counts_changed(t.account, dest_id)
        if uids:
            self.notify(f"moved to {sanitize_line(dest)}", markup=False, timeout=2)

    def action_delete(self) -> None:
        t = self.target()
        if t is None:
            return
        store = self.tapp.stores[t.account]
        trash = store.folder_by_role("trash")
        if trash is not None and trash.id != t.folder_id:
            self.move_to(t, trash.name, trash.id)
            return

        def answer(yes: bool | None) -> None:
            if yes:
                self._hidden(t, store.expunge(t.folder_id, [t.uid]))

        self.app.push_screen(ConfirmScreen("Delete this message for good?"), answer)

    def action_archive(self) -> None:
        t = self.target()
        if t is None:
            return
        arch = self.tapp.stores[t.account].folder_by_role("archive")
        if arch is None:
            self.notify("no Archive folder for this account", markup=False)
        elif arch.id != t.folder_id:
            self.move_to(t, arch.name, arch.id)

    def action_move(self) -> None:
        t = self.target()
        if t is None:
            return

        def chosen(value) -> None:
            if value is not None:
                _account, info = value
                self.move_to(t, info.name, info.id)

        self.app.push_screen(PickerScreen("Move to folder", self.folder_choices(t.account, exclude=t.folder_id)),
                             chosen)

    def action_sync(self) -> None:
        if self.tapp.offline:
            self.notify("offline: changes are queued; press ctrl+o to go online", markup=False)
            return
        for svc in self.tapp.services.values():
            svc.request_sync(None)
        self.notify("sync requested", markup=False, timeout=2)

    def action_toggle_offline(self) -> None:
        app = self.tapp
        app.offline = not app.offline
        for name, svc in app.services.items():
            svc.set_offline(app.offline)
            st = self.status.info.accounts.get(name)
            if st is not None:
                st.state = "offline" if app.offline else "connecting"
        self.update_status()

    # ------------------------------------------------------------------ raw / headers / pipe

    def _with_raw(self, then, t: Target | None = None) -> None:
        t = t or self.target(prefer_open=True)
        if t is None:
            return
        svc = self.tapp.services.get(t.account)

        def fetch():
            try:
                return then, t, svc.fetch_raw(t.folder, t.uid), None
            except Exception as exc:
                return then, t, None, exc

        self.run_worker(fetch, thread=True, group="raw", exit_on_error=False)

    def _done_raw(self, result) -> None:
        then, t, data, exc = result
        if exc is not None:
            self.notify(_error_text(exc), severity="error", markup=False)
            return
        then(t, data)

    def _reader_shows(self, t: Target) -> bool:
        r = self.reader
        return r.uid == t.uid and r.folder_key == (t.account, t.folder_id) and r.content is not None

    def action_raw(self) -> None:
        t = self.target(prefer_open=True)
        if t is None:
            return
        if self.reader_mode == "raw" and self._reader_shows(t):
            self.reader_mode = "message"
            self.reader.show_message(self.reader.content)
            return

        def show(t: Target, data: bytes) -> None:
            text = data[:RAW_LIMIT].decode("utf-8", "replace")
            if len(data) > RAW_LIMIT:
                text += f"\n[... {len(data) - RAW_LIMIT} more bytes not shown]"
            self.reader.folder_key, self.reader.uid = (t.account, t.folder_id), t.uid
            self.reader_mode = "raw"
            self.reader.show_lines(text_lines(text))

        self._with_raw(show, t)

    def action_full_headers(self) -> None:
        t = self.target(prefer_open=True)
        if t is None:
            return
        if not self._reader_shows(t):
            self.open_message(t.uid)
            return
        if self.reader_mode == "headers":
            self.reader_mode = "message"
            self.reader.show_message(self.reader.content)
            return

        def show(t: Target, data: bytes) -> None:
            if not self._reader_shows(t):
                return
            self.reader_mode = "headers"
            self.reader.show_message(self.reader.content, all_headers=parse_headers(data))

        self._with_raw(show, t)

    def action_pipe(self) -> None:
        t = self.target(prefer_open=True)
        if t is None:
            return

        def got(command: str | None) -> None:
            if not command:
                return
            try:
                argv = split_command(command)
            except ValueError as e:
                self.notify(str(e), severity="error", markup=False)
                return
            self._with_raw(lambda t, data: self.run_command(argv, data), t)

        self.app.push_screen(PromptScreen("Pipe the message to (no shell)", placeholder="e.g. git am"), got)

    def run_command(self, argv: list[str], data: bytes, *, terminal: bool = True, title: str | None = None) -> None:
        """Run argv with data on stdin: in the terminal (the app suspends) when it can, else with its
        output captured and shown."""
        if terminal:
            try:
                with self.app.suspend():
                    try:
                        rc = subprocess.run(argv, input=data, shell=False).returncode
                    except OSError as e:
                        rc = f"cannot run: {e.strerror or e}"
                    try:
                        input(f"\n[{argv[0]}: {rc}] press Enter to return to tuimail ")
                    except EOFError:
                        pass
                return
            except Exception:  # SuspendNotSupported (headless, web): capture instead
                pass

        def work():
            return argv, title, run_pipe(argv, data)

        self.run_worker(work, thread=True, group="command", exit_on_error=False)

    def _done_command(self, result) -> None:
        argv, title, (rc, output) = result
        head = title or f"{argv[0]} (exit status {rc})"
        if output.strip():
            self.app.push_screen(TextScreen(head, text_lines(output)))
        else:
            self.notify(sanitize_line(head), markup=False)

    # ------------------------------------------------------------------ attachments

    def action_attachments(self) -> None:
        t = self.target(prefer_open=True)
        if t is None:
            return
        if not self._reader_shows(t):
            self._after_open = "attachments"
            self.open_message(t.uid)
            return
        atts = self.reader.content.attachments
        if not atts:
            self.notify("no attachments", markup=False)
            return

        def chosen(value) -> None:
            if value is not None:
                what, i = value
                getattr(self, f"_attachment_{what}")(t, atts[i])

        self.app.push_screen(AttachmentScreen(list(atts)), chosen)

    def _with_part(self, t: Target, att, then) -> None:
        svc = self.tapp.services.get(t.account)

        def fetch():
            try:
                return then, svc.fetch_part(t.folder, t.uid, att.section), None
            except Exception as exc:
                return then, None, exc

        self.run_worker(fetch, thread=True, group="part", exit_on_error=False)

    def _done_part(self, result) -> None:
        then, data, exc = result
        if exc is not None:
            self.notify(_error_text(exc), severity="error", markup=False)
            return
        then(data)

    def _attachment_save(self, t: Target, att) -> None:
        downloads = Path.home() / "Downloads"
        default = save_target(downloads if downloads.is_dir() else Path.cwd(), att.filename)

        def write(path: Path, overwrite: bool, data: bytes) -> None:
            try:
                write_private(path, data, overwrite=overwrite)
            except OSError as e:
                self.notify(f"cannot save: {e.strerror or e}", severity="error", markup=False)
                return
            self.notify(f"saved {sanitize_line(str(path))} (mode 0600)", markup=False)

        def got(value: str | None) -> None:
            if not value:
                return
            path = Path(os.path.expanduser(value.strip()))
            if path.is_dir():
                path = save_target(path, att.filename)
            if path.exists():
                def answer(yes: bool | None) -> None:
                    if yes:
                        self._with_part(t, att, lambda data: write(path, True, data))

                self.app.push_screen(ConfirmScreen(f"{path.name} exists. Replace it?"), answer)
                return
            self._with_part(t, att, lambda data: write(path, False, data))

        self.app.push_screen(PromptScreen("Save attachment to", str(default)), got)

    def _attachment_pipe(self, t: Target, att) -> None:
        def got(command: str | None) -> None:
            if not command:
                return
            try:
                argv = split_command(command)
            except ValueError as e:
                self.notify(str(e), severity="error", markup=False)
                return
            self._with_part(t, att, lambda data: self.run_command(argv, data))

        self.app.push_screen(PromptScreen("Pipe the attachment to (no shell)"), got)

    def _attachment_open(self, t: Target, att) -> None:
        cfg = self.tapp.config
        files = ([cfg.mailcap_path] if cfg.mailcap_path else []) + list(mailcap.DEFAULT_FILES)
        entry = mailcap.find(mailcap.load(files), att.mimetype)
        if entry is None:
            self.notify(f"no mailcap entry for {sanitize_line(att.mimetype)}: save (s) or pipe (|) it instead",
                        markup=False)
            return

        def run(data: bytes) -> None:
            path = temp_copy(data, att.filename)
            try:
                argv = mailcap.argv_for(entry.command, str(path), att.mimetype.lower())
            except ValueError as e:
                self.notify(str(e), severity="error", markup=False)
                return
            stdin = data if mailcap.wants_stdin(entry.command) else b""
            if entry.copiousoutput:
                self.run_command(argv, stdin, terminal=False, title=att.filename)
            elif entry.needsterminal:
                self.run_command(argv, stdin)
            else:
                try:
                    subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL, start_new_session=True, shell=False)
                except OSError as e:
                    self.notify(f"cannot run {sanitize_line(argv[0])}: {e.strerror or e}", markup=False)

        self._with_part(t, att, run)


def parse_headers(raw: bytes, limit: int = 500) -> list[tuple[str, str]]:
    """Every header of a raw message, decoded (RFC 2047) where possible; sanitised by the view."""
    from email.header import decode_header, make_header
    from email.parser import BytesHeaderParser
    from email.policy import compat32

    msg = BytesHeaderParser(policy=compat32).parsebytes(raw[:1024 * 1024], headersonly=True)
    out = []
    for name, value in msg.items()[:limit]:
        try:
            text = str(make_header(decode_header(str(value))))
        except Exception:
            text = str(value)
        out.append((name, text))
    return out
