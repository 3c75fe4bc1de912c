"""Reader extras, mixed into the main screen: links, raw source, full headers, pipe, attachments.

Everything that needs the network runs in a thread worker; commands run without a shell;
attachments are saved 0600 under a safe name and never replace a file without asking.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tuimail.mail.sanitize import sanitize_line
from tuimail.ui.controllers.message_actions import Target, _error_text
from tuimail.ui.widgets.message_view import text_lines

RAW_LIMIT = 4 * 1024 * 1024


class ReaderActions:
    """Needs what MessageActions needs, plus its target() and open_message()."""

    def _ask_link(self, then) -> None:
        from tuimail.ui.screens.modals import PromptScreen
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
            if os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY") or sys.platform == "darwin":
                self.app.open_url(url)
                self.notify(f"opening link {n}", markup=False)
            else:
                self.app.copy_to_clipboard(url)
                self.notify(f"no graphical browser here: link {n} copied to the clipboard", markup=False)

        self._ask_link(open_)

    # ------------------------------------------------------------------ raw / headers / pipe

    def _with_raw(self, then, t: Target | None = None) -> None:
        t = t or self.target(prefer_open=True)
        if t is None:
            return
        svc = self.tapp.services.get(t.account)
        # the reader shows a message attached to this one: its source is that part (BODY[2] is
        # the whole attached message), so raw, full headers and pipe act on what is on screen
        content = self.reader.content
        section = content.section if content is not None and self._reader_shows(t) else None

        def fetch():
            try:
                data = svc.fetch_part(t.folder, t.uid, section) if section else svc.fetch_raw(t.folder, t.uid)
                return then, t, data, None
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
        self._prompt_pipe("Pipe the message to (no shell)", lambda run: self._with_raw(lambda t, data: run(data), t),
                          placeholder="e.g. git am")

    def _prompt_pipe(self, title: str, fetch, placeholder: str = "") -> None:
        """Ask for a command (split like a shell would, run without one) and pipe into it the
        bytes that fetch(run) hands to `run` once they are fetched."""
        from tuimail.ui.attachments import split_command
        from tuimail.ui.screens.modals import PromptScreen
        def got(command: str | None) -> None:
            if not command:
                return
            try:
                argv = split_command(command)
            except ValueError as e:
                self.notify(str(e), severity="error", markup=False)
                return
            fetch(lambda data: self.run_command(argv, data))

        self.app.push_screen(PromptScreen(title, placeholder=placeholder), got)

    def run_command(self, argv: list[str], data: bytes, *, terminal: bool = True, title: str | None = None) -> None:
        """Run argv with data on stdin: in the terminal (the app suspends) when it can, else with its
        output captured and shown."""
        from tuimail.ui.attachments import run_pipe
        if terminal:
            from textual.app import SuspendNotSupported
            try:
                with self.app.suspend():
                    try:
                        rc = subprocess.run(argv, input=data, shell=False).returncode
                    except OSError as e:
                        rc = f"cannot run: {e.strerror or e}"
                    try:
                        input(f"\n[{argv[0]}: {rc}] press Enter to return to tuimail ")
                    except (EOFError, OSError):  # no terminal to read the Enter from: go back at once
                        pass
                return
            except SuspendNotSupported:  # (headless, web) only this: the command has not run yet
                pass

        def work():
            return argv, title, run_pipe(argv, data)

        self.run_worker(work, thread=True, group="command", exit_on_error=False)

    def _done_command(self, result) -> None:
        from tuimail.ui.screens.modals import TextScreen
        argv, title, (rc, output) = result
        head = title or f"{argv[0]} (exit status {rc})"
        if output.strip():
            self.app.push_screen(TextScreen(head, text_lines(output)))
        else:
            self.notify(sanitize_line(head), markup=False)

    # ------------------------------------------------------------------ attachments

    def action_attachments(self) -> None:
        from tuimail.ui.screens.modals import AttachmentScreen
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
        from tuimail.ui.attachments import save_target, write_private
        from tuimail.ui.screens.modals import ConfirmScreen, PromptScreen
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
        self._prompt_pipe("Pipe the attachment to (no shell)", lambda run: self._with_part(t, att, run))

    def _attachment_open(self, t: Target, att) -> None:
        from tuimail.ui import mailcap
        from tuimail.ui.attachments import temp_copy
        if att.mimetype in ("message/rfc822", "message/global"):
            self._open_attached(t, att)  # a forwarded or returned message: in the reader, not mailcap
            return
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


    def _open_attached(self, t: Target, att) -> None:
        """Show the message attached at att.section in the reader, as a message of its own
        (its attachments are then listed by `v`; only the parts it shows are fetched)."""
        from tuimail.ui.widgets.message_view import build_lines
        svc = self.tapp.services.get(t.account)
        self._gen += 1
        gen = self._gen
        self.reader_mode = "message"
        self.reader.content = None
        self.reader.show_status("Loading…")

        def fetch():
            try:
                content = svc.open_attached(t.folder, t.uid, att.section)
                return gen, t, (content, build_lines(content)), None
            except Exception as exc:
                return gen, t, None, exc

        self.run_worker(fetch, thread=True, group="open", exit_on_error=False)
        self.reader.focus()


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
