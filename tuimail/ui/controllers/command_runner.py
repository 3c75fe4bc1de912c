"""Running a user's command (a pipe, a mailcap viewer) with bytes on its stdin, without a shell:
in the terminal (the app suspends) when it can, else in a thread worker with its output captured
and shown (CommandFinished, posted to the screen)."""

from __future__ import annotations

import subprocess

from textual.message import Message

from tuimail.mail.sanitize import sanitize_line
from tuimail.ui.controllers.view import MainView
from tuimail.ui.widgets.message_view import text_lines


class CommandFinished(Message, bubble=False):
    """A command run in a thread worker ended: its exit status and output."""

    def __init__(self, argv: list[str], title: str | None, rc: int, output: str) -> None:
        super().__init__()
        self.argv, self.title, self.rc, self.output = argv, title, rc, output


class CommandRunner:
    def __init__(self, view: MainView) -> None:
        self.view = view

    def run(self, argv: list[str], data: bytes, *, terminal: bool = True, title: str | None = None) -> None:
        """Run argv with data on stdin: in the terminal (the app suspends) when it can, else with its
        output captured and shown."""
        from tuimail.ui.attachments import run_pipe
        app = self.view.tapp
        if terminal:
            from textual.app import SuspendNotSupported
            try:
                with app.suspend():
                    rc: int | str
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
        post = self.view.post_message

        def work() -> None:
            rc, output = run_pipe(argv, data)
            post(CommandFinished(argv, title, rc, output))

        self.view.run_worker(work, thread=True, group="command", exit_on_error=False)

    def finished(self, msg: CommandFinished) -> None:
        from tuimail.ui.screens.modals import TextScreen
        head = msg.title or f"{msg.argv[0]} (exit status {msg.rc})"
        if msg.output.strip():
            self.view.tapp.push_screen(TextScreen(head, text_lines(msg.output)))
        else:
            self.view.notify(sanitize_line(head), markup=False)
