"""Saving, piping and opening attachments and messages, safely.

- A file name from a message (RFC 2231 can say ``../../.bashrc``) becomes a safe base name: no
  path separators, no leading dots, no control or invisible characters, bounded length.
- Files are written with mode 0600 and never replace an existing file unless the caller says so
  (the UI asks first).
- Commands (pipe, mailcap) run as argument lists, never through a shell.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import tempfile
import unicodedata
from pathlib import Path

MAX_NAME = 200
_RESERVED = {"CON", "PRN", "AUX", "NUL", *(f"COM{i}" for i in range(1, 10)), *(f"LPT{i}" for i in range(1, 10))}
PIPE_TIMEOUT = 120


def safe_filename(name: str | None, fallback: str = "attachment") -> str:
    name = name or ""
    name = name.replace("\\", "/").rsplit("/", 1)[-1]
    out = []
    for ch in name:
        cat = unicodedata.category(ch)
        if cat[0] == "C" or cat in ("Zl", "Zp"):  # controls, format (bidi, zero-width), surrogates...
            continue
        out.append("_" if ch in ":*?\"<>|" or (cat == "Zs" and ch != " ") else ch)
    name = "".join(out).strip().lstrip(".").strip()
    if not name or name in (".", ".."):
        name = fallback
    if name.split(".", 1)[0].strip().upper() in _RESERVED:  # DOS device names (a Samba share, a USB stick)
        name = "_" + name
    if len(name.encode("utf-8")) > MAX_NAME:
        stem, dot, ext = name.rpartition(".")
        ext = ext if dot and len(ext) <= 10 else ""
        keep = name if not ext else stem
        while len((keep + ("." + ext if ext else "")).encode("utf-8")) > MAX_NAME:
            keep = keep[:-1]
        name = keep + ("." + ext if ext else "")
    return name


def write_private(path: Path, data: bytes, *, overwrite: bool = False) -> Path:
    """Write `data` to `path` with mode 0600. FileExistsError unless overwrite."""
    flags = os.O_WRONLY | os.O_CREAT | (os.O_TRUNC if overwrite else os.O_EXCL)
    flags |= getattr(os, "O_NOFOLLOW", 0)
    fd = os.open(path, flags, 0o600)
    try:
        os.fchmod(fd, 0o600)
        with os.fdopen(fd, "wb") as f:
            fd = -1
            f.write(data)
    finally:
        if fd >= 0:
            os.close(fd)
    return path


def save_target(directory: str | Path, filename: str) -> Path:
    d = Path(os.path.expanduser(str(directory)))
    return d / safe_filename(filename)


def temp_copy(data: bytes, filename: str) -> Path:
    """A private temp copy (0700 directory, 0600 file) for a viewer to read.

    Its name holds only letters, digits and . _ + - : a user's mailcap entry may itself run
    `sh -c '... %s'`, and then the name reaches a shell (mutt's mailcap CVEs)."""
    d = Path(tempfile.mkdtemp(prefix="tuimail-"))
    name = re.sub(r"[^\w.+-]", "_", safe_filename(filename))
    return write_private(d / name, data)


def split_command(command: str) -> list[str]:
    try:
        argv = shlex.split(command)
    except ValueError as e:
        raise ValueError(f"cannot split the command: {e}") from None
    if not argv:
        raise ValueError("no command given")
    return argv


def run_pipe(argv: list[str], data: bytes, timeout: float = PIPE_TIMEOUT) -> tuple[int, str]:
    """Run argv with data on stdin (no shell); (exit status, combined output as text)."""
    try:
        p = subprocess.run(argv, input=data, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                           timeout=timeout, shell=False)
    except FileNotFoundError:
        return 127, f"command not found: {argv[0]}"
    except PermissionError:
        return 126, f"permission denied: {argv[0]}"
    except subprocess.TimeoutExpired:
        return 124, f"{argv[0]} did not finish within {timeout:.0f} seconds"
    except OSError as e:
        return 126, f"cannot run {argv[0]}: {e.strerror or e}"
    return p.returncode, p.stdout.decode("utf-8", "replace")
