"""What one sync did, for the one-line summary of `tuimail sync` (and the TUI)."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class FolderSummary:
    name: str
    skipped: bool = False
    new: int = 0
    vanished: int = 0
    flags: int = 0
    replayed: int = 0
    reset: bool = False
    error: str | None = None  # the server refused this folder (SELECT or a later command: NO/BAD)
    first: bool = False  # the folder's first fill: its messages are not "new mail"
    unseen_new: int = 0  # of `new`, how many arrived unseen


@dataclass
class SyncSummary:
    folders: list[FolderSummary] = field(default_factory=list)
    seconds: float = 0.0
    mode: str = ""
    notes: list[str] = field(default_factory=list)  # e.g. a LIST answer that was ignored
    failed: list[tuple[str, int]] = field(default_factory=list)  # failed actions: (folder, count)

    @property
    def all_failed(self) -> bool:
        """Every folder tried was refused (`tuimail sync` exits 3 then)."""
        return bool(self.folders) and all(f.error for f in self.folders)

    def line(self, account: str) -> str:
        synced = [f for f in self.folders if not f.skipped and not f.error]
        text = (f"{account}: {len(self.folders)} folders ({len(synced)} changed), "
                f"{sum(f.new for f in self.folders)} new, {sum(f.flags for f in self.folders)} flag updates, "
                f"{sum(f.vanished for f in self.folders)} removed, {sum(f.replayed for f in self.folders)} "
                f"pending actions sent [{self.mode}] in {self.seconds:.1f}s")
        refused = [f for f in self.folders if f.error]
        if refused:
            text += (f"; {len(refused)} folder{'s' if len(refused) > 1 else ''} failed: "
                     + ", ".join(f"{f.name} ({f.error})" for f in refused[:3]) + (", ..." if len(refused) > 3 else ""))
        if self.failed:
            n = sum(c for _, c in self.failed)
            text += (f"; {n} failed action{'s' if n > 1 else ''} in " + ", ".join(name for name, _ in self.failed[:3])
                     + (", ..." if len(self.failed) > 3 else "") + " (see `tuimail pending`)")
        for note in self.notes:
            text += f"; {note}"
        return text
