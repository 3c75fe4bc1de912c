"""What the user sees when something fails inside the app: one line, never a traceback.

Textual's crash screen prints a traceback with a panel of local variables (`show_locals=True`
is hard-wired in App._fatal_error): message text, server answers, even a password could be on
screen. Instead:
- a local store error (a damaged file, a full disk, a permission problem; sqlite3 errors from
  any handler or worker) ends the app with exit code 4 and the one line the CLI would print,
  naming the file and `tuimail repair` when that is the cure;
- any other crash ends it with one line, and the traceback goes to the private log file.
The line is kept in `app.exit_line`; run_app prints it on stderr once the terminal is restored
(Rich would wrap or crop an exit renderable at the terminal's width).
"""

from __future__ import annotations

import os
import sqlite3
import time
import traceback
from pathlib import Path

from textual.app import App
from textual.worker import WorkerFailed

from tuimail import paths
from tuimail.errors import StoreError


def log_crash(error: BaseException) -> Path | None:
    """Append the traceback to STATE/tuimail.log (0600, never through a symlink)."""
    try:
        d = paths.ensure_private_dir(paths.state_dir())
        log = d / "tuimail.log"
        fd = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_NOFOLLOW, 0o600)
        os.fchmod(fd, 0o600)
        with open(fd, "a", encoding="utf-8") as fh:
            fh.write(time.strftime("%Y-%m-%d %H:%M:%S ") + "".join(traceback.format_exception(error)) + "\n")
        return log
    except OSError:
        return None


class OneLineCrashApp(App[None]):
    """TuimailApp's base: a crash ends the app with one line (the account stores, when set, name
    the damaged file)."""

    _crash_error: BaseException | None = None
    _store_failed = False
    exit_line: str | None = None  # what run_app prints on stderr after the app ended

    def store_error_line(self, error: BaseException) -> str:
        from tuimail.mail.sanitize import sanitize_line
        from tuimail.store.sqlite_errors import store_error
        if not isinstance(error, StoreError):
            stores = list(getattr(self, "stores", {}).values())
            if len(stores) == 1:
                error = store_error(error, stores[0].path)
            else:  # which account's file is not known here: repair checks them all
                cause = " ".join(str(error).split())[:200]
                error = StoreError(f"local store error ({cause}); if a store is damaged, run `tuimail repair`"
                                   " (pending actions are kept)")
        return "tuimail: " + sanitize_line(str(error))

    def _handle_exception(self, error: Exception) -> None:
        inner = error.error if isinstance(error, WorkerFailed) else error
        if isinstance(inner, (sqlite3.Error, StoreError)):
            if not self._store_failed:
                self._store_failed = True
                self.exit_line = self.store_error_line(inner)
                self.exit(return_code=StoreError.exit_code)
                # the handler's widget has stopped: nothing waiting on the app may wait for it
                self._exception_event.set()
            return
        self._crash_error = inner
        super()._handle_exception(error)

    def _fatal_error(self) -> None:
        error = self._crash_error
        log = log_crash(error) if error is not None else None
        what = f"{type(error).__name__}: {' '.join(str(error).split())}"[:300] if error is not None else "unknown"
        from tuimail.mail.sanitize import sanitize_line
        where = f" (details in {log})" if log else ""
        self.bell()
        self.exit_line = f"tuimail: internal error: {sanitize_line(what)}{where}"
        self._close_messages_no_wait()
