"""Header rows for Store.insert_headers in the tests: written as the IMAP engine saw them.

    v6((uid, modseq, "\\\\Seen $Work", date, from_, to, cc, subject, message_id, in_reply_to, refs,
        size, has_attachment))
    -> ("uid", modseq, frozenset({"seen"}), "$Work", date, ...)   (the store's v6 row)
"""

from __future__ import annotations

from collections.abc import Iterable

from tuimail.backends.imap.flags import to_canonical


def v6(r: tuple) -> tuple:
    uid, modseq, flags, *rest = r
    canon, kw = to_canonical(tuple(flags.split()) if isinstance(flags, str) else tuple(flags))
    return (str(uid), modseq, canon, " ".join(kw), *rest)


def v6rows(rows: Iterable[tuple]) -> list[tuple]:
    return [v6(r) for r in rows]
