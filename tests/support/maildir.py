"""Maildir file names and flag letters, for writing messages straight into a Dovecot Maildir.

Kept tiny on purpose: `tests.support.dovecot.MailUser.deliver` is the only user.
"""

from __future__ import annotations

import itertools
import os
import socket
from collections.abc import Iterable

from imapclient import imap_utf7

# IMAP system flag -> Maildir info letter. Maildir wants the letters in ASCII order.
FLAG_LETTERS = {
    "\\draft": "D",
    "\\flagged": "F",
    "\\answered": "R",
    "\\seen": "S",
    "\\deleted": "T",
}
_LETTERS = set(FLAG_LETTERS.values())

_counter = itertools.count(1)
_HOST = socket.gethostname().replace("/", "\\057").replace(":", "\\072") or "localhost"
_PID = os.getpid()


def flag_letters(flags: str | Iterable[str] = "") -> str:
    """Return the sorted Maildir info letters for `flags`.

    `flags` is either a string of letters ("SF") or an iterable of IMAP system flags
    (("\\Seen", "\\Flagged")). Keywords are not supported: they need dovecot-keywords.
    """
    if isinstance(flags, (bytes, bytearray)):
        flags = flags.decode("ascii")
    if isinstance(flags, str):
        letters = set(flags)
        bad = letters - _LETTERS
        if bad:
            raise ValueError(f"unknown maildir flag letters {''.join(sorted(bad))!r} (use D F R S T)")
    else:
        letters = set()
        for flag in flags:
            if isinstance(flag, bytes):
                flag = flag.decode("ascii")
            try:
                letters.add(FLAG_LETTERS[flag.lower()])
            except KeyError:
                raise ValueError(f"only system flags can be delivered into a Maildir, not {flag!r}") from None
    return "".join(sorted(letters))


def unique_name(raw: bytes, letters: str, when: float) -> str:
    """`<time>.M<n>P<pid>.<host>,S=<size>,W=<vsize>:2,<flags>` — unique within this process.

    W= is the size with CRLF line ends (RFC822.SIZE): with it in the name Dovecot does not
    have to read every file to answer RFC822.SIZE.
    """
    size = len(raw)
    vsize = size + raw.count(b"\n") - raw.count(b"\r\n")
    return f"{int(when)}.M{next(_counter)}P{_PID}.{_HOST},S={size},W={vsize}:2,{letters}"


def folder_dirname(folder: str, separator: str = ".") -> str:
    """Maildir++ directory for an IMAP folder name ('' for INBOX).

    Names are stored modified-UTF-7 encoded; the hierarchy separator becomes '.' on disk.
    """
    if folder.upper() == "INBOX":
        return ""
    encoded = imap_utf7.encode(folder)
    name = encoded.decode("ascii") if isinstance(encoded, bytes) else encoded
    if separator != ".":
        if "." in name:
            raise ValueError(f"folder {folder!r}: '.' cannot be stored in a Maildir++ name")
        name = name.replace(separator, ".")
    if name.startswith(".") or name.endswith(".") or ".." in name or "/" in name:
        raise ValueError(f"folder name {folder!r} cannot be stored in a Maildir++ layout")
    return "." + name
