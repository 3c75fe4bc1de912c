"""The read-side subcommands: sync, folders, list, read, search, flag."""

from __future__ import annotations

import sys
import time

from tuimail import paths
from tuimail.config.load import Config
from tuimail.errors import NetworkError, NotCached, UsageError
from tuimail.mail.addresses import sender_name
from tuimail.mail.sanitize import sanitize_line

from tuimail.cli.common import _caps, _flag_words, _folder, _handle, _json, _message_id, _store, pad_cells, parse_flag


def cmd_sync(config: Config, args) -> int:
    from tuimail.backends.registry import create_service
    if args.offline:
        raise UsageError("sync needs the network; drop --offline")
    accounts = [config.account(args.account)] if (args.account or len(config.accounts) == 1) \
        else list(config.accounts.values())
    code = 0
    for account in accounts:
        service = create_service(config, account)
        try:
            summary = service.sync_now(args.folder)
        finally:
            service.stop()
        print(sanitize_line(summary.line(account.name)))  # folder names and server text
        if summary.all_failed:
            code = 3
    return code


def cmd_folders(config: Config, args) -> int:
    account, store = _store(config, args.account)
    with store:
        folders = store.folders()
    if args.json:
        print(_json([{"name": f.name, "role": f.role, "total": f.total, "unread": f.unread} for f in folders]))
        return 0
    for f in sorted(folders, key=_folder_key):
        print(f"{pad_cells(sanitize_line(f.name), 32)} {f.role or '':<8} {f.total:>7} {f.unread:>7}")
    return 0


def _folder_key(f):
    from tuimail.store import ROLES
    return (ROLES.index(f.role) if f.role in ROLES else len(ROLES), f.name.lower())


def cmd_list(config: Config, args) -> int:
    account, store = _store(config, args.account)
    with store:
        fi = _folder(store, args.folder)
        ids = store.id_list(fi.id, limit=max(0, args.limit)) if args.limit else store.id_list(fi.id)
        rows = store.rows(fi.id, ids)
    ordered = [rows[i] for i in ids if i in rows]
    if args.json:
        out = [_row_json(account, r) for r in ordered]
        print(_json(out))
        return 0
    for r in ordered:
        date = time.strftime("%Y-%m-%d %H:%M", time.localtime(r.date)) if r.date else "-"
        mark = ("N" if not r.seen else " ") + ("!" if r.flagged else " ")
        print(f"{_handle(account, r):>7} {mark} {date} {sender_name(r.from_)[:24]:<24} {sanitize_line(r.subject)}")
    return 0


def cmd_read(config: Config, args) -> int:
    from tuimail.backends.registry import create_service
    account, store = _store(config, args.account)
    with store:
        fi = _folder(store, args.folder)
        id_ = _message_id(store, account, fi, args)
    name = args.uid if args.uid is not None else f"with id {id_}"
    # the cache first, without a connection; the server only for what it lacks
    service = create_service(config, account, offline=True)
    try:
        try:
            content = service.open_message(fi.name, id_)
        except NotCached:
            if args.offline:
                raise NotCached(f"message {name} is not cached and --offline was given") from None
            service.set_offline(False)
            try:
                content = service.open_message(fi.name, id_, more=True)
            except NotCached as exc:
                raise NotCached(f"message {name}: {exc}") from None
        if (content.more or content.uncached) and service.offline and not args.offline:
            service.set_offline(False)
            try:
                content = service.open_message(fi.name, id_, more=True)
            except (NotCached, NetworkError):
                pass  # what the cache has
    finally:
        service.stop()
    # the reader's own lines: the same attachment and link numbers, attached messages inline
    from tuimail.mail.present import message_lines
    for text, _kind in message_lines(content):
        print(text)
    return 0


def cmd_search(config: Config, args) -> int:
    """Exit 0 with matches, 1 with none, 2 for a bad pattern."""
    from tuimail.core.pattern import PatternError, format as format_pattern, parse
    from tuimail.store.search import evaluate
    try:
        pattern = parse(args.pattern)
    except PatternError as exc:
        raise UsageError(str(exc)) from None
    account, store = _store(config, args.account)
    notes: list[str] = []
    with store:
        folders = [_folder(store, args.folder)] if args.folder else [f for f in store.folders() if f.selectable]
        names = {f.id: f.name for f in folders}
        local = evaluate(store, pattern, list(names))
        if args.offline and local.unknown:
            what = ", ".join(format_pattern(q) for q in local.unanswered)
            count = local.unknown_count
            notes.append(f"offline: answered from the local store, which cannot answer {what} for {count} message"
                         f"{'s' if count != 1 else ''} (body not cached, or a header it does not keep)")
        hits = [(h.folder_id, h.id, h.date) for h in local.hits]
        if local.unknown and not args.offline:
            hits = _server_search(config, account, args.pattern, local, names, hits, notes)
        hits.sort(key=lambda h: (h[2] if h[2] is not None else -1, h[1]), reverse=True)
        if args.limit > 0:
            hits = hits[:args.limit]
        rows: dict = {}  # local id -> MessageRow
        for fid in {h[0] for h in hits}:
            rows.update(store.rows(fid, [h[1] for h in hits if h[0] == fid]))
    for n in notes:
        print(f"tuimail: {sanitize_line(n)}", file=sys.stderr)
    ordered = [(names[fid], rows[id_]) for fid, id_, _ in hits if id_ in rows]
    if args.json:
        out = [{"folder": name, **_row_json(account, r)} for name, r in ordered]
        print(_json(out))
    else:
        for name, r in ordered:
            date = time.strftime("%Y-%m-%d %H:%M", time.localtime(r.date)) if r.date else "-"
            mark = ("N" if not r.seen else " ") + ("!" if r.flagged else " ")
            print(f"{pad_cells(sanitize_line(name)[:16], 16)} {_handle(account, r):>7} {mark} {date}"
                  f" {sender_name(r.from_)[:24]:<24} {sanitize_line(r.subject)}")
    return 0 if ordered else 1


def _server_search(config, account, query, local, names, hits, notes) -> list[tuple]:
    """The folders with rows the store could not decide, asked through the account's service
    (the store's answer stays where the server cannot be asked)."""
    from tuimail.backends.registry import create_service
    from tuimail.core.service import Unsupported
    service = create_service(config, account)
    try:
        by_folder = {fid: [h for h in hits if h[0] == fid] for fid in names}
        for fid in local.unknown:
            try:
                ids = service.search(names[fid], query)
            except Unsupported:
                notes.append(f"{account.name} cannot search on its server: answered from the local store")
                break
            except NetworkError as exc:
                notes.append(f"answered from the local store ({exc})")
                break
            with_date = {h[1]: h for h in by_folder[fid]}
            by_folder[fid] = [with_date.get(i, (fid, i, None)) for i in ids]
    finally:
        service.stop()
    out = [h for v in by_folder.values() for h in v]
    missing = [h for h in out if h[2] is None]
    if missing:  # (dates for the order, from the rows)
        from tuimail.store import Store
        with Store(paths.account_store_path(account.name)) as st:
            for fid in {h[0] for h in missing}:
                got = st.rows(fid, [h[1] for h in missing if h[0] == fid])
                out = [(f, i, got[i].date if f == fid and i in got else d) for f, i, d in out]
    return out


def _row_json(account, r) -> dict:
    """A row as `list --json` prints it."""
    return {"uid": _handle(account, r), "id": r.id, "flags": _flag_words(r),
            "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(r.date)) if r.date is not None else None,
            "from": r.from_, "to": r.to, "subject": r.subject, "message_id": r.message_id, "size": r.size}


def cmd_flag(config: Config, args) -> int:
    account, store = _store(config, args.account)
    with store:
        fi = _folder(store, args.folder)
        if args.uid is not None and not args.uid.isdigit():
            if args.id is None or args.uid[:1] not in "+-":
                raise UsageError(f"uid {sanitize_line(args.uid)!r}: a number, as `tuimail list` prints it")
            args.changes, args.uid = [args.uid, *args.changes], None  # (`flag FOLDER --id N +seen`)
        elif args.uid is not None:
            args.uid = int(args.uid)
        id_ = _message_id(store, account, fi, args)
        row = store.row(fi.id, id_)
        if args.changes:
            add: list[str] = []
            remove: list[str] = []
            for tok in args.changes:
                sign, flag = parse_flag(tok)
                (add if sign == "+" else remove).append(flag)
            queued = store.set_flags(fi.id, [id_], add=add, remove=remove)
            row = store.row(fi.id, id_)
        words = _flag_words(row)
        print(sanitize_line(" ".join(words)) if words else "(no flags)")  # keywords come from the server
    if args.changes:
        sent = ("changed in the local store (this account's flags are local)" if not _caps(account).server_flags
                else "changed in the local store; queued for the server until the next sync (tuimail sync)")
        print(f"tuimail: {sent}" if queued else "tuimail: no change: the flags were already so", file=sys.stderr)
    return 0
