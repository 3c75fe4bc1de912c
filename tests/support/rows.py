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


def imap_flags(row) -> set[str]:
    """A store row's flags spelled as IMAP spells them (to compare with the server's)."""
    from tuimail.backends.imap.flags import to_imap

    return {to_imap(f) for f in row.flags} | set(row.keywords.split())


def uids(store, folder_id: int) -> list[int]:
    """The IMAP uids of the folder's cached rows, ascending."""
    return sorted(int(s) for s in store.local_sids(folder_id))


def id_of(store, folder_id: int, uid: int) -> int:
    """The local id of the row with IMAP uid `uid`."""
    return store.ids_of(folder_id, [str(uid)])[str(uid)]


def uid_of(store, id_: int) -> int:
    """The IMAP uid of the row with local id `id_`."""
    return int(store.sid_of([id_])[id_])


def canon(names) -> list[str]:
    """Flag names as the IMAP tests write them ("\\\\Seen") -> the store's (canonical) names."""
    from tuimail.backends.imap.flags import canonical_name

    return [canonical_name(n) for n in names]
