"""Save messages to a file (mutt's "save to file"; `w`, and `;w` for every tagged message).

The path is asked for (``~`` expanded). An mbox there (or an empty file) gets the messages
appended, each with its From_ line and mboxrd quoting (mail/mbox.py); a new file becomes an
mbox, or the bare message when its name ends in ``.eml`` and there is one. Any other existing
file is overwritten only once the user said yes. The messages are fetched (the cache first) and
written in a worker thread; a failure is one line naming the path.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

from tuimail.mail import mbox
from tuimail.mail.sanitize import sanitize_line
from tuimail.ui.controllers.target import Target, current_target, error_text
from tuimail.ui.controllers.view import MainView


def _n(count: int) -> str:
    return f"{count:,} message{'s' if count != 1 else ''}"


def plan(path: Path, count: int) -> tuple[str, str | None]:
    """How to write `count` messages to `path`: ("append" | "new" | "eml" | "ask", None) or
    ("error", the line to show)."""
    shown = sanitize_line(str(path))
    if path.is_dir():
        return "error", f"{shown}: is a directory"
    if path.exists():
        if not path.is_file():
            return "error", f"{shown}: not a regular file"
        try:
            with open(path, "rb") as fh:
                head = fh.read(5)
        except OSError as exc:
            return "error", f"{shown}: {exc.strerror or exc}"
        return ("append", None) if mbox.is_mbox(head) else ("ask", None)
    if not path.parent.is_dir():
        return "error", f"{sanitize_line(str(path.parent))}: no such directory"
    return ("eml", None) if path.suffix.lower() == ".eml" and count == 1 else ("new", None)


def write(path: Path, raws: list[bytes], how: str) -> None:
    """Write (in a worker). how: append | new | eml | overwrite."""
    if how == "eml":
        data = raws[0]
    else:
        data = b"".join(mbox.entry(r) for r in raws)
    if how == "append":
        flags = os.O_WRONLY | os.O_APPEND
    elif how == "overwrite":
        flags = os.O_WRONLY | os.O_TRUNC
    else:  # new: never over a file that appeared meanwhile
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL
    fd = os.open(path, flags | getattr(os, "O_CLOEXEC", 0), 0o600)
    with open(fd, "wb") as fh:
        fh.write(data)


class SaveFile:
    """`w` (and `;w` through bulk.py); remembers the last path typed (offered again, as mutt does)."""

    def __init__(self, view: MainView) -> None:
        self.view = view
        self.last_path = "~/"

    def save_one(self) -> None:
        t = current_target(self.view, prefer_open=True)
        if t is not None:
            self.save_many([t])

    def save_many(self, targets: list[Target]) -> None:
        """Ask for a path, then save `targets` there."""
        from tuimail.ui.screens.modals import PromptScreen

        view = self.view
        if not targets:
            return
        title = f"Save {_n(len(targets))} to a file (an mbox is appended to)"

        def got(text: str | None) -> None:
            if not text or not text.strip():
                return
            self.last_path = text.strip()
            path = Path(os.path.expanduser(text.strip()))
            how, err = plan(path, len(targets))
            if how == "error":
                view.notify(err or "cannot save there", severity="error", markup=False, timeout=8)
            elif how == "ask":
                from tuimail.ui.screens.modals import ConfirmScreen

                view.tapp.push_screen(
                    ConfirmScreen(f"{sanitize_line(str(path))} exists and is not an mbox: overwrite it?", ""),
                    lambda yes: _save(view, targets, path, "overwrite") if yes else None)
            else:
                _save(view, targets, path, how)

        view.tapp.push_screen(PromptScreen(title, value=self.last_path), got)


def _save(view: MainView, targets: list[Target], path: Path, how: str) -> None:
    app = view.tapp
    shown = sanitize_line(str(path))

    def report(text: str, error: bool) -> None:
        view.notify(text, severity="error" if error else "information", markup=False, timeout=8 if error else 3)

    def work(say: Callable[[str, bool], None] = report) -> None:
        try:
            raws = []
            for t in targets:
                svc = app.services.get(t.account)
                if svc is None:
                    raise RuntimeError("no sync service for this account")
                raws.append(svc.fetch_raw(t.folder, t.uid))
            write(path, raws, how)
        except OSError as exc:
            text, bad = f"cannot save to {shown}: {exc.strerror or exc}", True
        except Exception as exc:
            text, bad = f"cannot save to {shown}: {error_text(exc)}", True
        else:
            verb = "appended" if how == "append" else "saved"
            text, bad = f"{verb} {_n(len(targets))} to {shown}", False
        try:
            app.call_from_thread(say, text, bad)
        except RuntimeError:
            pass

    view.run_worker(work, thread=True, group="save", exit_on_error=False)
