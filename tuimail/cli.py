"""Command line: bare `tuimail` opens the app; subcommands sync|folders|list|read|flag run headless.

Exit codes: 0 ok; 2 usage or config error; 3 network, TLS or authentication error (and `read` of an
uncached body while offline). Errors are one line on stderr, never a traceback.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import time

from . import __version__, paths
from .config import Config, load_config
from .errors import NetworkError, NotCached, TuimailError, UsageError
from .mail.addresses import short_from
from .mail.sanitize import sanitize, sanitize_line, sanitize_strict

FLAG_NAMES = {"seen": "\\Seen", "flagged": "\\Flagged", "answered": "\\Answered", "deleted": "\\Deleted",
              "draft": "\\Draft"}


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="tuimail", description="A keyboard-driven terminal mail reader.")
    p.add_argument("--config", metavar="FILE", help="config file (default: %(default)s)",
                   default=None)
    p.add_argument("--account", metavar="NAME", help="account to use (needed when several are configured)")
    p.add_argument("--offline", action="store_true", help="do not connect; browse the local store")
    p.add_argument("--demo", action="store_true", help="run on an embedded demo server (no account needed)")
    p.add_argument("--version", action="version", version=f"tuimail {__version__}")
    p.add_argument("-f", dest="start_folder", metavar="FOLDER", help="open this folder first")
    sub = p.add_subparsers(dest="cmd", metavar="COMMAND")
    s = sub.add_parser("sync", help="sync one folder or all; prints a one-line summary")
    s.add_argument("folder", nargs="?")
    f = sub.add_parser("folders", help="folders with role, total and unread (from the store)")
    f.add_argument("--json", action="store_true")
    ls = sub.add_parser("list", help="messages of a folder, newest first (from the store; works offline)")
    ls.add_argument("folder")
    ls.add_argument("--limit", type=int, default=50)
    ls.add_argument("--json", action="store_true")
    r = sub.add_parser("read", help="the readable text of a message (fetched lazily, cached)")
    r.add_argument("folder")
    r.add_argument("uid", type=int)
    fl = sub.add_parser("flag", help="show or change flags: +FLAG / -FLAG (works offline; next sync sends it)")
    fl.add_argument("folder")
    fl.add_argument("uid", type=int)
    fl.add_argument("changes", nargs="*", metavar="+FLAG|-FLAG")
    return p


def main(argv: list[str] | None = None) -> int:
    from .trace import trace
    trace("cli main")
    parser = build_parser()
    argv = sys.argv[1:] if argv is None else argv
    # "-FLAG" arguments look like options to argparse: pass them after "--"
    if "flag" in argv:
        i = argv.index("flag")
        tail = argv[i + 1:]
        if any(t.startswith("-") and t not in ("-h", "--help") for t in tail):
            argv = argv[:i + 1] + ["--"] + [t for t in tail if t != "--"]
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:
        return int(exc.code or 0)
    try:
        if args.demo:
            from .demo import run_demo
            return run_demo(args)
        config = load_config(args.config)
        if args.cmd is None:
            from .ui.launch import run_app
            names = [args.account] if args.account else None
            if names:
                config.account(args.account)
            return run_app(config, names, offline=args.offline, start_folder=args.start_folder)
        return COMMANDS[args.cmd](config, args)
    except TuimailError as exc:
        print(f"tuimail: {sanitize_line(str(exc))}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("tuimail: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 0


# json.dumps escapes C0 only: C1 (U+009B is CSI), DEL, bidi and zero-width controls, line
# separators and lone surrogates would reach the terminal raw. \u-escaping them keeps the data exact.
_JSON_UNSAFE = re.compile("[\x7f-\x9f\u061c\u200b-\u200f\u2028-\u202e\u2060-\u2069\ufeff"
                          "\ud800-\udfff\ufdd0-\ufdef\ufffe\uffff]")


def _json(obj) -> str:
    return _JSON_UNSAFE.sub(lambda m: f"\\u{ord(m.group()):04x}", json.dumps(obj, ensure_ascii=False, indent=1))


def _store(config: Config, name: str | None):
    from .store import Store
    account = config.account(name)
    path = paths.account_store_path(account.name)
    paths.ensure_private_dir(path.parent)
    return account, Store(path)


def _folder(store, name: str):
    fi = store.folder(name)
    if fi is None:
        raise UsageError(f"no folder {sanitize_line(name)!r} in the local store (see `tuimail folders`;"
                         " run `tuimail sync` first)")
    return fi


def cmd_sync(config: Config, args) -> int:
    from .store import BodyCache, Store
    from .sync.engine import Engine
    from .sync.lock import AccountLock
    from .sync.service import open_connection
    if args.offline:
        raise UsageError("sync needs the network; drop --offline")
    accounts = [config.account(args.account)] if (args.account or len(config.accounts) == 1) \
        else list(config.accounts.values())
    for account in accounts:
        store_path = paths.account_store_path(account.name)
        paths.ensure_private_dir(store_path.parent)
        paths.ensure_private_dir(paths.account_cache_path(account.name).parent)
        with Store(store_path) as store, AccountLock(paths.lock_path(account.name)):
            bodies = BodyCache(paths.account_cache_path(account.name))
            conn = open_connection(account)
            try:
                engine = Engine(account, store, conn, bodies)
                engine.negotiate()
                if args.folder:
                    t0 = time.monotonic()
                    engine.sync_folders_list()
                    if store.folder(args.folder) is None:
                        raise UsageError(f"no folder {sanitize_line(args.folder)!r} on {account.name}")
                    from .sync.engine import SyncSummary
                    summary = SyncSummary([engine.sync_folder(args.folder)], mode=engine.mode)
                    summary.seconds = time.monotonic() - t0
                else:
                    summary = engine.sync_all()
            finally:
                conn.close()
                bodies.close()
        print(summary.line(account.name))
    return 0


def cmd_folders(config: Config, args) -> int:
    account, store = _store(config, args.account)
    with store:
        folders = store.folders()
    if args.json:
        print(_json([{"name": f.name, "role": f.role, "total": f.total, "unread": f.unread} for f in folders]))
        return 0
    for f in sorted(folders, key=_folder_key):
        print(f"{sanitize_line(f.name):<32} {f.role or '':<8} {f.total:>7} {f.unread:>7}")
    return 0


def _folder_key(f):
    from .store import ROLES
    return (ROLES.index(f.role) if f.role in ROLES else len(ROLES), f.name.lower())


def cmd_list(config: Config, args) -> int:
    account, store = _store(config, args.account)
    with store:
        fi = _folder(store, args.folder)
        uids = store.uid_list(fi.id)[:max(0, args.limit)] if args.limit else store.uid_list(fi.id)
        rows = store.rows(fi.id, uids)
    ordered = [rows[u] for u in uids if u in rows]
    if args.json:
        out = [{"uid": r.uid, "flags": r.flags.split(),
                "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(r.date)) if r.date is not None else None,
                "from": r.from_, "to": r.to, "subject": r.subject, "message_id": r.message_id, "size": r.size}
               for r in ordered]
        print(_json(out))
        return 0
    for r in ordered:
        date = time.strftime("%Y-%m-%d %H:%M", time.localtime(r.date)) if r.date else "-"
        mark = ("N" if not r.seen else " ") + ("!" if r.flagged else " ")
        print(f"{r.uid:>7} {mark} {date} {sanitize_strict(short_from(r.from_))[:24]:<24} {sanitize_line(r.subject)}")
    return 0


def cmd_read(config: Config, args) -> int:
    from .store import BodyCache
    from .sync.reader import Reader
    from .sync.service import open_connection
    account, store = _store(config, args.account)
    with store:
        _folder(store, args.folder)
        bodies = BodyCache(paths.account_cache_path(account.name))
        conn = None
        try:
            try:
                reader = Reader(store, bodies, None, config.ui.prefer_html)
                content = reader.open(args.folder, args.uid)
            except NotCached:
                if args.offline:
                    raise NotCached(f"message {args.uid} is not cached and --offline was given") from None
                try:
                    conn = open_connection(account)
                except NetworkError as exc:
                    raise NotCached(f"message {args.uid} is not cached and the server is unreachable: {exc}") from None
                reader = Reader(store, bodies, conn, config.ui.prefer_html)
                content = reader.open(args.folder, args.uid, more=True)
            if (content.more or content.uncached) and conn is None and not args.offline:
                try:
                    conn = open_connection(account)
                    content = Reader(store, bodies, conn, config.ui.prefer_html).open(args.folder, args.uid, more=True)
                except NetworkError:
                    pass
        finally:
            if conn is not None:
                conn.close()
            bodies.close()
    # the reader's own lines: the same attachment and link numbers, attached messages inline
    from .sync.present import message_lines
    for text, _kind in message_lines(content):
        print(text)
    return 0


def parse_flag(token: str) -> tuple[str, str]:
    if len(token) < 2 or token[0] not in "+-":
        raise UsageError(f"flag change {sanitize_line(token)!r}: write +FLAG or -FLAG (e.g. +seen, -\\Flagged)")
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


def cmd_flag(config: Config, args) -> int:
    account, store = _store(config, args.account)
    with store:
        fi = _folder(store, args.folder)
        row = store.row(fi.id, args.uid)
        if row is None:
            raise UsageError(f"no message {args.uid} in {sanitize_line(args.folder)!r} (see `tuimail list`)")
        if args.changes:
            add, remove = [], []
            for tok in args.changes:
                sign, flag = parse_flag(tok)
                (add if sign == "+" else remove).append(flag)
            store.set_flags(fi.id, [args.uid], add=add, remove=remove)
            row = store.row(fi.id, args.uid)
        print(sanitize_line(row.flags) if row.flags else "(no flags)")  # keywords come from the server
    return 0


COMMANDS = {"sync": cmd_sync, "folders": cmd_folders, "list": cmd_list, "read": cmd_read, "flag": cmd_flag}
