"""What the reader offers beyond reading: links, raw source, full headers, pipe, attachments.

Everything that needs the network runs in a thread worker, whose bytes come back as a
BytesFetched message to the screen; commands run without a shell (CommandRunner); attachments are
saved 0600 under a safe name and never replace a file without asking.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

from textual.message import Message

from tuimail.core.content import Attachment
from tuimail.mail.sanitize import sanitize_line
from tuimail.ui.controllers.command_runner import CommandRunner
from tuimail.ui.controllers.opener import MessageOpener
from tuimail.ui.controllers.target import Target, current_target, error_text
from tuimail.ui.controllers.view import MainView
from tuimail.ui.widgets.message_view import text_lines

RAW_LIMIT = 4 * 1024 * 1024

Then = Callable[[bytes], None]


class BytesFetched(Message, bubble=False):
    """A thread worker fetched a message's source or a part: `then(data)` uses it, or `error` says
    why not."""

    def __init__(self, then: Then, data: bytes | None, error: BaseException | None) -> None:
        super().__init__()
        self.then, self.data, self.error = then, data, error


class ReaderExtras:
    def __init__(self, view: MainView, opener: MessageOpener, commands: CommandRunner) -> None:
        self.view, self.opener, self.commands = view, opener, commands

    def bytes_fetched(self, msg: BytesFetched) -> None:
        if msg.error is not None or msg.data is None:
            self.view.notify(error_text(msg.error) if msg.error is not None else "nothing fetched",
                             severity="error", markup=False)
            return
        msg.then(msg.data)

    def _fetch(self, get: Callable[[], bytes], then: Then, group: str) -> None:
        post = self.view.post_message

        def work() -> None:
            try:
                post(BytesFetched(then, get(), None))
            except Exception as exc:
                post(BytesFetched(then, None, exc))

        self.view.run_worker(work, thread=True, group=group, exit_on_error=False)

    # ------------------------------------------------------------------ links

    def _ask_link(self, then: Callable[[int, str], None]) -> None:
        from tuimail.ui.screens.modals import PromptScreen
        view = self.view
        c = view.reader.content
        if c is None or not c.links:
            view.notify("this message has no links", markup=False)
            return
        links = c.links

        def got(value: str | None) -> None:
            if value is None:
                return
            try:
                n = int(value.strip())
                url = links[n - 1]
                if n < 1:
                    raise IndexError
            except (ValueError, IndexError):
                view.notify(f"no link {sanitize_line(value)[:10]} (1-{len(links)})", markup=False)
                return
            then(n, url)

        view.tapp.push_screen(PromptScreen(f"Link number (1-{len(links)})"), got)

    def copy_link(self) -> None:
        view = self.view

        def copy(n: int, url: str) -> None:
            view.tapp.copy_to_clipboard(url)
            view.notify(f"link {n} copied to the clipboard", markup=False)

        self._ask_link(copy)

    def open_link(self) -> None:
        view = self.view
        app = view.tapp

        def open_(n: int, url: str) -> None:
            scheme = url.split(":", 1)[0].lower()
            if scheme not in ("http", "https", "mailto", "ftp"):
                view.notify(f"not opening a {sanitize_line(scheme)[:20]}: link; copied instead", markup=False)
                app.copy_to_clipboard(url)
                return
            if os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY") or sys.platform == "darwin":
                app.open_url(url)
                view.notify(f"opening link {n}", markup=False)
            else:
                app.copy_to_clipboard(url)
                view.notify(f"no graphical browser here: link {n} copied to the clipboard", markup=False)

        self._ask_link(open_)

    # ------------------------------------------------------------------ raw / headers / pipe

    def _with_raw(self, t: Target, then: Callable[[Target, bytes], None]) -> None:
        svc = self.view.tapp.services.get(t.account)
        if svc is None:
            self.view.notify("no sync service for this account", severity="error", markup=False)
            return
        # the reader shows a message attached to this one: its source is that part (BODY[2] is
        # the whole attached message), so raw, full headers and pipe act on what is on screen
        content = self.view.reader.content
        section = content.section if content is not None and self.opener.reader_shows(t) else None

        def get() -> bytes:
            return svc.fetch_part(t.folder, t.uid, section) if section else svc.fetch_raw(t.folder, t.uid)

        self._fetch(get, lambda data: then(t, data), "raw")

    def raw(self) -> None:
        view, opener = self.view, self.opener
        t = current_target(view, prefer_open=True)
        if t is None:
            return
        if opener.mode == "raw" and opener.reader_shows(t) and view.reader.content is not None:
            opener.mode = "message"
            view.reader.show_message(view.reader.content)
            return

        def show(t: Target, data: bytes) -> None:
            text = data[:RAW_LIMIT].decode("utf-8", "replace")
            if len(data) > RAW_LIMIT:
                text += f"\n[... {len(data) - RAW_LIMIT} more bytes not shown]"
            view.reader.folder_key, view.reader.uid = (t.account, t.folder_id), t.uid
            opener.mode = "raw"
            view.reader.show_lines(text_lines(text))

        self._with_raw(t, show)

    def full_headers(self) -> None:
        view, opener = self.view, self.opener
        t = current_target(view, prefer_open=True)
        if t is None:
            return
        if not opener.reader_shows(t):
            opener.open(t.uid)
            return
        if opener.mode == "headers" and view.reader.content is not None:
            opener.mode = "message"
            view.reader.show_message(view.reader.content)
            return

        def show(t: Target, data: bytes) -> None:
            content = view.reader.content
            if not opener.reader_shows(t) or content is None:
                return
            opener.mode = "headers"
            view.reader.show_message(content, all_headers=parse_headers(data))

        self._with_raw(t, show)

    def pipe(self) -> None:
        t = current_target(self.view, prefer_open=True)
        if t is None:
            return
        self._prompt_pipe("Pipe the message to (no shell)",
                          lambda run: self._with_raw(t, lambda _t, data: run(data)), placeholder="e.g. git am")

    def _prompt_pipe(self, title: str, fetch: Callable[[Then], None], placeholder: str = "") -> None:
        """Ask for a command (split like a shell would, run without one) and pipe into it the
        bytes that fetch(run) hands to `run` once they are fetched."""
        from tuimail.ui.attachments import split_command
        from tuimail.ui.screens.modals import PromptScreen
        view = self.view

        def got(command: str | None) -> None:
            if not command:
                return
            try:
                argv = split_command(command)
            except ValueError as e:
                view.notify(str(e), severity="error", markup=False)
                return
            fetch(lambda data: self.commands.run(argv, data))

        view.tapp.push_screen(PromptScreen(title, placeholder=placeholder), got)

    # ------------------------------------------------------------------ attachments

    def attachments(self) -> None:
        from tuimail.ui.screens.modals import AttachmentScreen
        view, opener = self.view, self.opener
        t = current_target(view, prefer_open=True)
        if t is None:
            return
        content = view.reader.content
        if not opener.reader_shows(t) or content is None:
            opener.after_open = "attachments"
            opener.open(t.uid)
            return
        atts = content.attachments
        if not atts:
            view.notify("no attachments", markup=False)
            return
        actions: dict[str, Callable[[Target, Attachment], None]] = {
            "save": self._attachment_save, "pipe": self._attachment_pipe, "open": self._attachment_open}

        def chosen(value: tuple[str, int] | None) -> None:
            if value is not None:
                what, i = value
                actions[what](t, atts[i])

        view.tapp.push_screen(AttachmentScreen(list(atts)), chosen)

    def _with_part(self, t: Target, att: Attachment, then: Then) -> None:
        svc = self.view.tapp.services.get(t.account)
        if svc is None:
            self.view.notify("no sync service for this account", severity="error", markup=False)
            return
        self._fetch(lambda: svc.fetch_part(t.folder, t.uid, att.section), then, "part")

    def _attachment_save(self, t: Target, att: Attachment) -> None:
        from tuimail.ui.attachments import save_target, write_private
        from tuimail.ui.screens.modals import ConfirmScreen, PromptScreen
        view = self.view
        downloads = Path.home() / "Downloads"
        default = save_target(downloads if downloads.is_dir() else Path.cwd(), att.filename)

        def write(path: Path, overwrite: bool, data: bytes) -> None:
            try:
                write_private(path, data, overwrite=overwrite)
            except OSError as e:
                view.notify(f"cannot save: {e.strerror or e}", severity="error", markup=False)
                return
            view.notify(f"saved {sanitize_line(str(path))} (mode 0600)", markup=False)

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

                view.tapp.push_screen(ConfirmScreen(f"{path.name} exists. Replace it?"), answer)
                return
            self._with_part(t, att, lambda data: write(path, False, data))

        view.tapp.push_screen(PromptScreen("Save attachment to", str(default)), got)

    def _attachment_pipe(self, t: Target, att: Attachment) -> None:
        self._prompt_pipe("Pipe the attachment to (no shell)", lambda run: self._with_part(t, att, run))

    def _attachment_open(self, t: Target, att: Attachment) -> None:
        from tuimail.ui import mailcap
        from tuimail.ui.attachments import temp_copy
        view = self.view
        if att.mimetype in ("message/rfc822", "message/global"):
            self.opener.open_attached(t, att)  # a forwarded or returned message: in the reader, not mailcap
            return
        cfg = view.tapp.config
        files: list[str | Path] = ([cfg.mailcap_path] if cfg.mailcap_path else []) + list(mailcap.DEFAULT_FILES)
        entry = mailcap.find(mailcap.load(files), att.mimetype)
        if entry is None:
            view.notify(f"no mailcap entry for {sanitize_line(att.mimetype)}: save (s) or pipe (|) it instead",
                        markup=False)
            return
        command = entry.command

        def run(data: bytes) -> None:
            path = temp_copy(data, att.filename)
            try:
                argv = mailcap.argv_for(command, str(path), att.mimetype.lower())
            except ValueError as e:
                view.notify(str(e), severity="error", markup=False)
                return
            stdin = data if mailcap.wants_stdin(command) else b""
            if entry.copiousoutput:
                self.commands.run(argv, stdin, terminal=False, title=att.filename)
            elif entry.needsterminal:
                self.commands.run(argv, stdin)
            else:
                try:
                    subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL, start_new_session=True, shell=False)
                except OSError as e:
                    view.notify(f"cannot run {sanitize_line(argv[0])}: {e.strerror or e}", markup=False)

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
