"""What the subcommands share: the account's store, a folder by name, a message by the handle `list`
prints, the kind's capabilities, JSON safe for a terminal, terminal cell widths, flag words."""

from __future__ import annotations

import json
import re
import unicodedata

from tuimail import paths
from tuimail.config.load import Config
from tuimail.errors import UsageError
from tuimail.mail.sanitize import sanitize_line

from tuimail.core.flags import CANONICAL
from tuimail.core.service import Capabilities


FLAG_NAMES = {n: n for n in CANONICAL}  # the names `flag` accepts (canonical: tuimail.core.flags)


# json.dumps escapes C0 only: C1 (U+009B is CSI), DEL, bidi and zero-width controls, line
# separators and lone surrogates would reach the terminal raw. \u-escaping them keeps the data exact.
_JSON_UNSAFE = re.compile("[\x7f-\x9f\u061c\u200b-\u200f\u2028-\u202e\u2060-\u2069\ufeff"
                          "\ud800-\udfff\ufdd0-\ufdef\ufffe\uffff]")


def _json(obj) -> str:
    return _JSON_UNSAFE.sub(lambda m: f"\\u{ord(m.group()):04x}", json.dumps(obj, ensure_ascii=False, indent=1))


def _store(config: Config, name: str | None):
    from tuimail.store import Store
    from tuimail.store.sqlite_errors import store_error
    account = config.account(name)
    path = paths.account_store_path(account.name)
    try:
        paths.ensure_private_dir(path.parent)
    except OSError as exc:  # an unwritable data dir, a full disk: one line, exit 4
        raise store_error(exc, path) from None
    return account, Store(path)


def _folder(store, name: str):
    fi = store.folder(name)
    if fi is None and name.upper() == "INBOX":  # RFC 3501: INBOX is case-insensitive
        fi = store.folder("INBOX")
    if fi is None:
        raise UsageError(f"no folder {sanitize_line(name)!r} in the local store (see `tuimail folders`;"
                         " run `tuimail sync` first)")
    return fi


def _caps(account) -> Capabilities:
    """What the account's kind can do (registry.capabilities): asked instead of its kind's name."""
    from tuimail.backends.registry import capabilities
    return capabilities(account.kind)


def _handle(account, row) -> int:
    """What `list` shows as a message's uid and `read`/`flag` take: the server's uid where the
    kind has public ones (IMAP), the local id otherwise."""
    if _caps(account).server_uids and row.sid.isdigit():
        return int(row.sid)
    return row.id


def _message_id(store, account, fi, args) -> int:
    """The local id of the message `read`/`flag` name: --id, or the uid `list` printed."""
    if (args.uid is None) == (args.id is None):
        raise UsageError("name the message by its uid (as `tuimail list` prints it) or by --id ID")
    if args.id is not None:
        if store.row(fi.id, args.id) is None:
            raise UsageError(f"no message with id {args.id} in {sanitize_line(fi.name)!r} (see `tuimail list"
                             f" {sanitize_line(fi.name)} --json`)")
        return args.id
    server_uids = _caps(account).server_uids
    found = store.ids_of(fi.id, [str(args.uid)]) if server_uids else {}
    id_ = found.get(str(args.uid)) if found else (args.uid if not server_uids else None)
    if id_ is None or store.row(fi.id, id_) is None:
        raise UsageError(f"no message {args.uid} in {sanitize_line(fi.name)!r} (see `tuimail list"
                         f" {sanitize_line(fi.name)}`; run `tuimail sync` if it is new)")
    return id_


def cell_width(text: str) -> int:
    """Terminal cells: East Asian wide and fullwidth characters take two, combining marks none."""
    return sum(0 if unicodedata.combining(c) else 2 if unicodedata.east_asian_width(c) in "WF" else 1
               for c in text)


def pad_cells(text: str, width: int) -> str:
    """`text` left-aligned in `width` terminal cells (str.ljust counts code points)."""
    return text + " " * max(0, width - cell_width(text))


def parse_flag(token: str) -> tuple[str, str]:
    if len(token) < 2 or token[0] not in "+-":
        raise UsageError(f"flag change {sanitize_line(token)!r}: write +FLAG or -FLAG (e.g. +seen, -flagged)")
    sign, name = token[0], token[1:]
    bare = name.lstrip("\\").lower()
    if bare in FLAG_NAMES:
        return sign, FLAG_NAMES[bare]
    if name.startswith("\\"):
        raise UsageError(f"unknown system flag {sanitize_line(name)!r} (known: {', '.join(FLAG_NAMES.values())})")
    import re
    if not re.fullmatch(r"[!#$&'+,\-./0-9:;<=>?@A-Z^_`a-z|~]+", name):
        raise UsageError(f"invalid keyword {sanitize_line(name)!r}")
    return sign, name


def _flag_words(row) -> list[str]:
    """A row's flags as `flag` takes them: the canonical names, then its keywords."""
    return [*(n for n in CANONICAL if n in row.flags), *row.keywords.split()]
