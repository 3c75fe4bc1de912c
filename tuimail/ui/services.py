"""What the UI asks of an account's sync service (backends/imap/service.py's SyncService is one).

Every request returns at once (the service's threads do the work) except the fetches, which the
UI calls from thread workers only. `start`, `hold_for_first_paint`, `ui_painted` and
`set_password` are optional: the UI looks them up with getattr (a service without a login has no
password to set).
"""

from __future__ import annotations

from typing import Protocol

from tuimail.core.content import MessageContent


class UiService(Protocol):
    def stop(self, timeout: float = ...) -> None: ...

    def wake(self) -> None: ...

    def request_sync(self, folder: str | None = ...) -> None: ...

    def watch_folder(self, folder: str) -> None: ...

    def set_offline(self, offline: bool) -> None: ...

    def open_message(self, folder: str, uid: int, *, more: bool = ...) -> MessageContent: ...

    def open_attached(self, folder: str, uid: int, section: str) -> MessageContent: ...

    def fetch_raw(self, folder: str, uid: int) -> bytes: ...

    def fetch_part(self, folder: str, uid: int, section: str) -> bytes: ...
