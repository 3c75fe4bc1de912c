"""The app's side of the outbox: one small thread per account that drains it (backends/send.py)
when the next message is due (its undo window or its backoff ends), when it is woken (a message
was queued, the network came back), never on the UI thread. What a drain did comes back as one
line: sent / queued: why / failed: the server's line.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

from tuimail.errors import TuimailError
from tuimail.mail.sanitize import sanitize_line

IDLE_WAIT = 300.0  # nothing queued: look again this often (another process may have queued)
MIN_WAIT = 1.0  # never drain in a tight loop (a busy lock, a clock that disagrees)

WAITS_LINE = "in the Outbox: ! then e edit, r retry, d discard"

Report = Callable[[str, str, str], None]  # (account, line, severity)


def report_line(report: Any) -> tuple[str, str] | None:
    """(line, severity) for what a drain did (a backends.send.DrainReport); None when it did nothing worth a line."""
    if report.busy:
        return None
    parts: list[str] = []
    severity = "information"
    for entry in report.sent:
        subject = sanitize_line(entry.subject)[:50] if entry.subject else "(no subject)"
        parts.append(f"sent: {subject}")
    if report.postponed:
        parts.append(f"queued: {sanitize_line(report.postponed[-1][1])}")
        severity = "warning"
    for _id, why in report.refused:
        parts.append(f"some recipients refused: {sanitize_line(why)}")
        severity = "error"
    for _id, why in report.failed:
        parts.append(f"failed: {sanitize_line(why)}")
        severity = "error"
    if report.failed or report.refused:
        parts[-1] += f" — {WAITS_LINE}"
    for _id, why in report.unfiled:
        parts.append(f"sent, {sanitize_line(why)}")
        severity = "warning" if severity == "information" else severity
    for _id, folder in getattr(report, "drafted", ()):
        parts.append(f"postponed message stored in {sanitize_line(folder)}")
    for _id, why in getattr(report, "draft_waiting", ())[-1:]:
        parts.append(f"postponed, kept here: {sanitize_line(why)}")
        severity = "warning" if severity == "information" else severity
    if not parts:
        return None
    return "; ".join(parts), severity


class Drainer:
    """Drains one account's outbox in its own thread. kick() wakes it; stop() ends it."""

    def __init__(self, name: str, sender: Any, report: Report, *, offline: Callable[[], bool] = lambda: False,
                 clock: Callable[[], float] = time.time, after: Callable[[Any], None] | None = None) -> None:
        self.name, self.sender, self.report, self.offline, self.clock = name, sender, report, offline, clock
        self.after = after  # called with each drain's report (in the drain thread)
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._ignore_backoff = False
        self._thread = threading.Thread(target=self._run, name=f"outbox-{name}", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def kick(self, *, ignore_backoff: bool = False) -> None:
        """Drain now (what is due; ignore_backoff: what waits for a retry too)."""
        self._ignore_backoff = self._ignore_backoff or ignore_backoff
        self._wake.set()

    def stop(self, timeout: float = 2.0) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread.is_alive() and threading.current_thread() is not self._thread:
            self._thread.join(timeout)

    def _wait(self) -> float:
        try:
            due = self.sender.next_due()
        except Exception:  # a store that cannot be read now: look again later
            return IDLE_WAIT
        if due is None:
            return IDLE_WAIT
        return max(0.0, due - self.clock())

    def _run(self) -> None:
        pause = 0.0
        while not self._stop.is_set():
            wait = max(self._wait(), pause)
            if wait > 0:
                self._wake.wait(wait)
            if self._stop.is_set():
                return
            self._wake.clear()
            ignore, self._ignore_backoff = self._ignore_backoff, False
            pause = MIN_WAIT
            if self.offline():
                pause = IDLE_WAIT  # until kicked (the app goes online)
                continue
            try:
                result = self.sender.drain(ignore_backoff=ignore)
            except TuimailError as exc:  # a bad password command, no [smtp] table: said once, then wait
                self.report(self.name, f"not sent: {sanitize_line(str(exc))}", "error")
                pause = IDLE_WAIT
                continue
            except Exception as exc:  # never let the thread die silently
                self.report(self.name, f"not sent: {type(exc).__name__}: {sanitize_line(str(exc))}", "error")
                pause = IDLE_WAIT
                continue
            if self.after is not None:
                self.after(result)
            line = report_line(result)
            if line is not None:
                self.report(self.name, *line)
