"""Command line: bare `tuimail` opens the app; subcommands sync|folders|list|read|flag|search|pending|
repair|send|outbox run headless.

Exit codes: 0 ok; 2 usage or config error; 3 network, TLS or authentication error (and `read` of an
uncached body while offline; and `sync` when the server refused every folder it tried: one refused
folder is named in the summary line, the others go on, and the exit code stays 0); 4 local store
error (a damaged file: `tuimail repair`; a full disk; a permission problem; a lock). Errors are one
line on stderr, never a traceback.
"""

from __future__ import annotations

import argparse
import json
import re
import sqlite3
import sys
import time
import unicodedata

from tuimail import __version__, paths
from tuimail.config.load import Config, config_mode_warning, load_config
from tuimail.errors import NetworkError, NotCached, StoreError, TuimailError, UsageError
from tuimail.mail.addresses import sender_name
from tuimail.mail.sanitize import sanitize_line

from tuimail.core.flags import CANONICAL

FLAG_NAMES = {n: n for n in CANONICAL}  # the names `flag` accepts (canonical: tuimail.core.flags)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="tuimail", description="A keyboard-driven terminal mail reader.",
                                epilog="Without a COMMAND: the full-screen reader. `tuimail COMMAND --help`"
                                       " describes each command. Exit codes: 0 ok, 2 usage or config error,"
                                       " 3 network, TLS or authentication error.")
    p.add_argument("--config", metavar="FILE", default=None,
                   help=f"config file (default: {paths.default_config_path()})")
    p.add_argument("--account", metavar="NAME", help="account to use (needed when several are configured)")
    p.add_argument("--offline", action="store_true", help="do not connect; browse the local store")
    p.add_argument("--demo", action="store_true",
                   help="run on an embedded demo server with generated mail (no account needed; also"
                        " with a COMMAND, e.g. `tuimail --demo list INBOX`)")
    p.add_argument("--version", action="version", version=f"tuimail {__version__}")
    p.add_argument("-f", dest="start_folder", metavar="FOLDER", help="open this folder first")
    sub = p.add_subparsers(dest="cmd", metavar="COMMAND")
    common = (f"Options before COMMAND: --config FILE (default: {paths.default_config_path()}),"
              " --account NAME (needed when several are configured), --offline (no network), --demo.")
    s = sub.add_parser("sync", epilog=common, help="sync one folder or all; prints a one-line summary",
                       description="Sync one folder (or every folder) with the server, send the queued"
                                   " changes (flags, moves) and print a one-line summary per account.")
    s.add_argument("folder", nargs="?", help="the folder to sync (default: every folder)")
    f = sub.add_parser("folders", epilog=common, help="folders with role, total and unread (from the store)",
                       description="Folders of the local store: name, role, total and unread messages."
                                   " Works offline; run `tuimail sync` to refresh.")
    f.add_argument("--json", action="store_true", help="print a JSON list instead of columns")
    ls = sub.add_parser("list", epilog=common,
                        help="messages of a folder, newest first (from the store; works offline)",
                        description="Messages of a folder from the local store, newest first: uid, N (unread)"
                                    " and ! (flagged), date, sender, subject. INBOX in any case. The uid is"
                                    " what `read` and `flag` take (the IMAP uid); --json adds `id`, the"
                                    " message's local id (`read --id`, `flag --id`).")
    ls.add_argument("folder", help="folder name, as `tuimail folders` prints it")
    ls.add_argument("--limit", type=int, default=50, metavar="N", help="at most N messages, 0 for all (default: 50)")
    ls.add_argument("--json", action="store_true", help="print a JSON list instead of columns")
    r = sub.add_parser("read", epilog=common, help="the readable text of a message (fetched lazily, cached)",
                       description="Headers, text, links and attachment list of one message. The body is"
                                   " fetched once and cached; with --offline only cached bodies are shown"
                                   " (exit 3 otherwise).")
    r.add_argument("folder", help="folder name, as `tuimail folders` prints it")
    r.add_argument("uid", type=int, nargs="?", help="the message's uid, as `tuimail list` prints it")
    r.add_argument("--id", type=int, metavar="ID", help="the message's local id (`tuimail list --json`) instead")
    names = ", ".join(FLAG_NAMES)
    fl = sub.add_parser("flag", epilog=common,
                        help="show or change flags: +FLAG / -FLAG (works offline; next sync sends it)",
                        description="Without changes: print the message's flags. With +FLAG / -FLAG: change"
                                    " them in the local store at once; the change is queued and sent to the"
                                    f" server at the next sync. FLAG is one of {names} (any case, with or"
                                    " without a leading backslash: +seen, -Flagged) or a keyword ($Work).")
    fl.add_argument("folder", help="folder name, as `tuimail folders` prints it")
    fl.add_argument("uid", nargs="?", help="the message's uid, as `tuimail list` prints it")
    fl.add_argument("--id", type=int, metavar="ID", help="the message's local id (`tuimail list --json`) instead")
    fl.add_argument("changes", nargs="*", metavar="+FLAG|-FLAG", help=f"e.g. +seen -flagged (flags: {names})")
    se = sub.add_parser("search", epilog=common,
                        help="messages matching a mutt-style pattern, like `list` (exit 1: none, as grep)",
                        description="Messages matching PATTERN (mutt style: ~f NAME, ~s WORD, ~b WORD, ~U, ~F,"
                                    " ~d <2w, ~z >1M, !, |, ( ); a plain word means ~f WORD | ~s WORD; see the"
                                    " README's \"Search patterns\"), newest first, in every folder or --folder F."
                                    " The local store answers first; what it cannot (bodies not downloaded,"
                                    " ~h, ~l, ~r) is asked of the server, unless --offline: then the terms it"
                                    " could not answer are named on stderr. Exit 0 with matches, 1 with none,"
                                    " 2 for a bad pattern.")
    se.add_argument("pattern", metavar="PATTERN", help="e.g. '~f tanaka ~U' or '~b \"quarterly report\"'")
    se.add_argument("--folder", metavar="F", help="only this folder (default: every folder)")
    se.add_argument("--account", metavar="NAME", default=argparse.SUPPRESS, help="the account to search")
    se.add_argument("--offline", action="store_true", default=argparse.SUPPRESS,
                    help="the local store only (no server)")
    se.add_argument("--limit", type=int, default=0, metavar="N", help="at most N messages (default: all)")
    se.add_argument("--json", action="store_true", help="print a JSON list (as `list --json`, with `folder`)")
    pe = sub.add_parser("pending", epilog=common,
                        help="actions waiting to be sent or failed (from the store); discard them")
    pe.add_argument("--json", action="store_true")
    pe.add_argument("--discard", type=int, nargs="+", metavar="ID", help="forget these actions (ids from the list)")
    pe.add_argument("--discard-failed", action="store_true", help="forget every failed action")
    rp = sub.add_parser("repair", epilog=common,
                        help="rebuild a damaged store, keeping pending actions (a sync refills the rest)")
    rp.add_argument("--account", metavar="NAME", default=argparse.SUPPRESS, help="only this account")
    rp.add_argument("--force", action="store_true", help="rebuild even if the store looks healthy")
    su = sub.add_parser("setup", epilog=common, help="add an account: find its servers from the address, check"
                                                      " the login, write the config",
                        description="Add an account to the config file (created 0600 if missing): discovery"
                                    " (autoconfig, SRV, .well-known/jmap, the usual names), a login check,"
                                    " then the commented [accounts.NAME] block. Asks what it needs; with --yes"
                                    " it asks nothing (give --email and --password-command).")
    su.add_argument("--email", metavar="ADDR", help="the e-mail address")
    su.add_argument("--name", metavar="NAME", help="your name for From: (default: none)")
    su.add_argument("--username", metavar="U", help="the login name (default: the address, then its local part)")
    su.add_argument("--kind", metavar="K", choices=("imap", "pop3", "jmap"), help="imap, pop3 or jmap")
    su.add_argument("--host", metavar="H", help="the incoming server (no discovery); for jmap a host or the"
                                                " session URL")
    su.add_argument("--port", metavar="P", help="its port (default: by kind and security)")
    su.add_argument("--security", metavar="S", choices=("tls", "starttls", "none"),
                    help="tls, starttls or none (none only on loopback)")
    su.add_argument("--smtp-host", metavar="H", help="the outgoing (SMTP) server")
    su.add_argument("--smtp-port", metavar="P", help="its port (default: 465 for tls, 587 for starttls)")
    su.add_argument("--smtp-security", metavar="S", choices=("tls", "starttls", "none"))
    su.add_argument("--password-command", metavar="CMD",
                    help="a command printing the password (e.g. 'pass show mail/me'), split like a shell would")
    su.add_argument("--yes", action="store_true", help="ask nothing: use what discovery (or the options) gives")
    sv = sub.add_parser("serve", epilog=common, help="the app in a browser (HTTP; loopback unless TLS and a login)",
                        description="Serve the app to a browser: each session runs tuimail with the same config."
                                    " Listens on 127.0.0.1 by default; any other address needs TLS (--cert,"
                                    " --key) and a login in the config ([serve] password_hash or token_command)."
                                    " Without a configured login, a loopback server prints a URL with a token"
                                    " for this run.")
    sv.add_argument("--host", metavar="ADDR", help="address to listen on (default: [serve] host, or 127.0.0.1)")
    sv.add_argument("--port", metavar="N", type=int, help="port (default: [serve] port, or 8000; 0: any free port)")
    sv.add_argument("--cert", metavar="FILE", help="TLS certificate chain (PEM), with --key: serve HTTPS")
    sv.add_argument("--key", metavar="FILE", help="the certificate's private key (PEM)")
    sv.add_argument("--demo", dest="serve_demo", action="store_true", help="serve the demo (no account needed)")
    sv.add_argument("--hash-password", action="store_true",
                    help="read a password (no echo) and print the [serve] password_hash line for it")
    se = sub.add_parser("send", epilog=common,
                        help="send an RFC 5322 message (recipients from To/Cc/Bcc) through the outbox",
                        description="Send a message written elsewhere (like `sendmail -t`): the recipients are"
                                    " its To, Cc and Bcc (Bcc is not in the bytes sent; the copy in Sent keeps"
                                    " it); From, Date and Message-ID are added when missing. The message is"
                                    " written to the outbox first: after the account's undo_send seconds"
                                    " (Ctrl-C takes it back) it goes over SMTP, then a copy is filed in Sent."
                                    " Offline or on a temporary failure it stays in the outbox (`tuimail"
                                    " outbox`). Exit 0 sent (or queued with --offline), 2 a message or"
                                    " setting that cannot work, 3 not sent now (it waits or failed; see"
                                    " `tuimail outbox`).")
    se.add_argument("--account", metavar="NAME", default=argparse.SUPPRESS, help="send from this account")
    se.add_argument("--now", action="store_true", help="skip the undo window")
    se.add_argument("file", nargs="?", default="-", metavar="FILE|-", help="the message (default: - for stdin)")
    ob = sub.add_parser("outbox", epilog=common, help="messages waiting to be sent, and why (from the store)",
                        description="The outbox: messages held for undo, waiting to retry (offline, a"
                                    " temporary refusal), failed (the server's reply; never resent by"
                                    " itself), or sent and waiting for their copy in Sent.")
    ob.add_argument("--account", metavar="NAME", default=argparse.SUPPRESS, help="only this account")
    ob.add_argument("--json", action="store_true", help="print a JSON list")
    ob.add_argument("--flush", action="store_true", help="send what waits now (retries too)")
    ob.add_argument("--retry", type=int, metavar="ID", help="queue a failed message again")
    ob.add_argument("--discard", type=int, metavar="ID", help="remove a waiting or failed message, unsent")
    return p


def main(argv: list[str] | None = None) -> int:
    from tuimail.trace import trace
    trace("cli main")
    parser = build_parser()
    argv = sys.argv[1:] if argv is None else argv
    # "-FLAG" arguments look like options to argparse: pass them after "--"
    if "flag" in argv:
        i = argv.index("flag")
        tail = argv[i + 1:]
        opts: list[str] = []  # (--id N stays an option)
        for k, t in enumerate(tail):
            if t == "--id" and k + 1 < len(tail):
                opts += tail[k:k + 2]
            elif t.startswith("--id="):
                opts.append(t)
        if opts:
            tail = [t for k, t in enumerate(tail) if not (t.startswith("--id=") or t == "--id"
                                                         or (k and tail[k - 1] == "--id"))]
        if any(t.startswith("-") and t not in ("-h", "--help") for t in tail):
            argv = argv[:i + 1] + opts + ["--"] + [t for t in tail if t != "--"]
        else:
            argv = argv[:i + 1] + opts + tail
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:
        return int(exc.code or 0)
    try:
        if args.cmd == "serve":
            return cmd_serve(args)
        if args.demo:
            from tuimail.demo import run_demo
            return run_demo(args)
        if args.cmd == "setup":
            return cmd_setup(args)
        if args.cmd is None and _first_run(args.config):
            from tuimail.ui.launch import run_first_run
            return run_first_run(_first_run(args.config), offline=args.offline, start_folder=args.start_folder)
        config = load_config(args.config)
        warning = config_mode_warning(config)
        if warning:
            print(f"tuimail: warning: {sanitize_line(warning)}", file=sys.stderr)
        if args.cmd is None:
            from tuimail.ui.launch import run_app
            names = [args.account] if args.account else None
            if names:
                config.account(args.account)
            return run_app(config, names, offline=args.offline, start_folder=args.start_folder)
        return COMMANDS[args.cmd](config, args)
    except TuimailError as exc:
        print(f"tuimail: {sanitize_line(str(exc))}", file=sys.stderr)
        return exc.exit_code
    except sqlite3.Error as exc:  # a store error outside a `with store` block: still one line
        print(f"tuimail: local store error: {sanitize_line(' '.join(str(exc).split()))}"
              " (see `tuimail repair`)", file=sys.stderr)
        return StoreError.exit_code
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


def _handle(account, row) -> int:
    """What `list` shows as a message's uid and `read`/`flag` take: the IMAP uid for an IMAP
    account, the local id otherwise."""
    if account.kind == "imap" and row.sid.isdigit():
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
    found = store.ids_of(fi.id, [str(args.uid)]) if account.kind == "imap" else {}
    id_ = found.get(str(args.uid)) if found else (args.uid if account.kind != "imap" else None)
    if id_ is None or store.row(fi.id, id_) is None:
        raise UsageError(f"no message {args.uid} in {sanitize_line(fi.name)!r} (see `tuimail list"
                         f" {sanitize_line(fi.name)}`; run `tuimail sync` if it is new)")
    return id_


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


def cell_width(text: str) -> int:
    """Terminal cells: East Asian wide and fullwidth characters take two, combining marks none."""
    return sum(0 if unicodedata.combining(c) else 2 if unicodedata.east_asian_width(c) in "WF" else 1
               for c in text)


def pad_cells(text: str, width: int) -> str:
    """`text` left-aligned in `width` terminal cells (str.ljust counts code points)."""
    return text + " " * max(0, width - cell_width(text))


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
        sent = ("changed in the local store (a POP3 account's flags are local)" if account.kind == "pop3"
                else "changed in the local store; queued for the server until the next sync (tuimail sync)")
        print(f"tuimail: {sent}" if queued else "tuimail: no change: the flags were already so", file=sys.stderr)
    return 0


def cmd_pending(config: Config, args) -> int:
    if args.discard and args.discard_failed:
        raise UsageError("give either --discard ID... or --discard-failed")
    account, store = _store(config, args.account)
    with store:
        if args.discard or args.discard_failed:
            known = {a.id: a for a in store.actions()}
            ids = [a.id for a in known.values() if a.state == "failed"] if args.discard_failed else args.discard
            unknown = [i for i in ids if i not in known]
            if unknown:
                raise UsageError(f"no action {unknown[0]} (see `tuimail pending`)")
            busy = [i for i in ids if known[i].state == "sending"]
            if busy:
                raise UsageError(f"action {busy[0]} is being sent right now; try again in a moment")
            store.discard(ids)
            print(f"discarded {len(ids)} action{'s' if len(ids) != 1 else ''}")
            return 0
        actions = store.actions()
    if args.json:
        print(_json([{"id": a.id, "folder": a.folder, "uid": _action_uid(account, a), "msg_id": a.msg_id,
                      "message_id": a.message_id, "subject": a.subject, "op": a.op, "add": list(a.add_flags),
                      "remove": list(a.remove_flags), "dest": a.dest, "state": a.state, "error": a.error,
                      "attempts": a.attempts} for a in actions]))
        return 0
    for a in actions:
        what = a.subject if a.subject is not None else (a.message_id or "(message unknown)")
        uid = str(_action_uid(account, a) or "-") if a.msg_id is not None else "-"
        line = (f"{a.id:>5} {a.state:<8} {sanitize_line(a.folder)[:20]:<20} {uid:>7} "
                f"{sanitize_line(a.describe())[:24]:<24} {sanitize_line(what)[:50]}")
        print(line.rstrip())
        if a.error:
            print(f"{'':>15}{sanitize_line(a.error)[:200]}")
    return 0


def _flag_words(row) -> list[str]:
    """A row's flags as `flag` takes them: the canonical names, then its keywords."""
    return [*(n for n in CANONICAL if n in row.flags), *row.keywords.split()]


def _action_uid(account, a):
    """The handle of an action's message (see _handle); None when it is lost."""
    if a.msg_id is None or a.sid is None:
        return None
    return int(a.sid) if account.kind == "imap" and a.sid.isdigit() else a.msg_id


def cmd_repair(config: Config, args) -> int:
    """Rebuild each damaged store (only the one of --account if given), keeping its journal."""
    from tuimail.store.repair import repair_store
    from tuimail.backends.lock import AccountLock
    accounts = [config.account(args.account)] if (args.account or len(config.accounts) == 1) \
        else list(config.accounts.values())
    for account in accounts:
        store_path = paths.account_store_path(account.name)
        # a cron `tuimail sync` must not open the store while it is being replaced
        lock = AccountLock(paths.lock_path(account.name))
        lock.acquire(timeout=5)
        try:
            report = repair_store(store_path, paths.account_cache_path(account.name), force=args.force)
        finally:
            lock.release()
        cache = (f"; damaged body cache moved to {report.cache_moved_to} (bodies are fetched again when opened)"
                 if report.cache_moved_to else "")
        if report.healthy:
            what = "" if cache else ", nothing to repair (--force rebuilds it anyway)"
            print(f"{account.name}: the store is healthy{what}{cache}")
            continue
        lost = f", {report.lost} lost (folder unknown)" if report.lost else ""
        mail = ""
        if report.pop3 is not None:  # a POP3 account: its mail exists only here
            p = report.pop3
            mail = (f"; {p.messages} downloaded message(s) and the UIDL ledger kept ({p.copies} stored copies"
                    + (f", {p.rebuilt} rows rebuilt from their copy" if p.rebuilt else "")
                    + (f", {p.refetch} bodies to fetch again" if p.refetch else "")
                    + (f", {p.lost_text} lost their text" if p.lost_text else "") + ")"
                    + ("; some downloaded mail could not be read: the damaged file keeps it" if p.unreadable else ""))
        unreadable = "; part of the old journal was unreadable" if report.unreadable else ""
        unsent = ""
        if report.outbox or report.postponed or report.unsent_lost:
            unsent = (f"; {report.outbox} message(s) of the outbox and {report.postponed} postponed kept"
                      + (f", {report.unsent_lost} unreadable (the damaged file keeps them)" if report.unsent_lost
                         else ""))
        print(f"{account.name}: store rebuilt: {report.kept} pending action(s) kept{lost}{mail}{unreadable}{unsent};"
              f" damaged file moved to {report.moved_to}{cache}; run `tuimail sync` to refill it")
    return 0


def _first_run(config: str | None):
    """The config path when no config file exists there (bare `tuimail` opens the setup screen)."""
    from pathlib import Path
    path = Path(config).expanduser() if config else paths.default_config_path()
    return None if path.exists() or path.is_symlink() else path


def cmd_setup(args) -> int:
    from pathlib import Path

    from tuimail.config.setup_flow import Options, run_setup
    opts = Options(email=args.email, name=args.name, username=args.username, kind=args.kind, host=args.host,
                   port=args.port, security=args.security, smtp_host=args.smtp_host, smtp_port=args.smtp_port,
                   smtp_security=args.smtp_security, password_command=args.password_command, yes=args.yes,
                   config=Path(args.config) if args.config else None)
    run_setup(opts)
    return 0


def cmd_serve(args) -> int:
    """`tuimail serve`, before the demo and config handling of the other commands: --hash-password needs no
    config, and the demo's server runs in this process for every browser session (its mail and flags
    outlive a session)."""
    from tuimail.serve.run import ServeOptions, hash_password_command, run_serve
    if args.hash_password:
        return hash_password_command()
    options = ServeOptions(host=args.host, port=args.port, cert=args.cert, key=args.key, account=args.account,
                           offline=args.offline)
    if args.demo or args.serve_demo:
        from tuimail.demo import DemoEnvironment
        with DemoEnvironment() as env:
            env.config_path.chmod(0o600)  # (each session's app would warn that it holds a password)
            return run_serve(load_config(env.config_path), options)
    config = load_config(args.config)
    warning = config_mode_warning(config)
    if warning:
        print(f"tuimail: warning: {sanitize_line(warning)}", file=sys.stderr)
    if args.account:
        config.account(args.account)  # an unknown name: one line now, not in every session
    return run_serve(config, options)

def _read_message(name: str) -> bytes:
    if name == "-":
        return sys.stdin.buffer.read()
    try:
        with open(name, "rb") as f:
            return f.read()
    except OSError as exc:
        raise UsageError(f"cannot read {sanitize_line(name)!r}: {exc.strerror or exc}") from None


def _send_result(name: str, entry_id: int, report) -> int:
    """One line on where the message is; the exit code."""
    sent = [e for e in report.sent if e.id == entry_id]
    failed = [t for i, t in report.failed if i == entry_id]
    postponed = [t for i, t, _at in report.postponed if i == entry_id]
    if report.busy:
        print(f"{name}: queued as #{entry_id}; another tuimail is sending from this account and will send it")
        return 0
    if failed:
        print(f"tuimail: not sent: {sanitize_line(failed[0])} (kept as #{entry_id}: `tuimail outbox`)", file=sys.stderr)
        return 3
    if postponed:
        print(f"tuimail: not sent yet: {sanitize_line(postponed[0])} (queued as #{entry_id}; `tuimail outbox"
              " --flush` tries again)", file=sys.stderr)
        return 3
    if not sent:
        print(f"{name}: queued as #{entry_id} (`tuimail outbox`)")
        return 0
    e = sent[0]
    unfiled = [t for i, t in report.unfiled if i == entry_id]
    where = "; not yet filed in Sent: " + sanitize_line(unfiled[0]) if unfiled else ""
    refused = [t for i, t in report.refused if i == entry_id]
    if refused:
        print(f"tuimail: {sanitize_line(refused[0])}{where} (kept as #{entry_id} for the refused ones:"
              " `tuimail outbox`)", file=sys.stderr)
        return 3
    print(f"{name}: sent to {len(e.rcpts)} recipient{'s' if len(e.rcpts) != 1 else ''}{where}")
    return 0


def cmd_send(config: Config, args) -> int:
    from tuimail.backends.registry import create_sender
    account = config.account(args.account)
    raw = _read_message(args.file)
    sender = create_sender(config, account)
    hold = 0.0 if args.now or args.offline else account.undo_send
    entry_id = sender.queue(raw, hold=hold)
    if args.offline:
        print(f"{account.name}: queued as #{entry_id} (offline; `tuimail outbox --flush` sends it)")
        return 0
    if hold > 0:
        try:
            print(f"tuimail: sending in {hold:g} s (Ctrl-C takes it back)", file=sys.stderr, flush=True)
            time.sleep(hold)
        except KeyboardInterrupt:
            if sender.cancel(entry_id) is not None:
                print("tuimail: taken back: not sent", file=sys.stderr)
                return 130
            print("tuimail: too late to take back: it is on its way", file=sys.stderr)
    report = sender.drain(only=entry_id)
    return _send_result(account.name, entry_id, report)


def _outbox_json(account: str, e, now: float) -> dict:
    return {"account": account, "id": e.id, "state": e.state, "why": e.why(now), "subject": e.subject,
            "from": e.mail_from, "to": list(e.rcpts), "accepted": list(e.accepted),
            "refused": {k: list(v) for k, v in e.refused.items()}, "message_id": e.message_id, "created": e.created,
            "hold_until": e.hold_until, "next_try": e.next_try, "attempts": e.attempts, "error": e.last_error,
            "maybe_sent": e.maybe_sent, "size": len(e.message)}


def cmd_outbox(config: Config, args) -> int:
    from tuimail.store.outbox import Outbox
    from tuimail.store.postponed import Postponed
    acts = [a for a in (args.retry, args.discard) if a is not None]
    if len(acts) + bool(args.flush) > 1:
        raise UsageError("give one of --flush, --retry ID, --discard ID")
    if acts:
        account, store = _store(config, args.account)
        with store:
            ob = Outbox(store.db)
            if args.discard is not None:
                if ob.cancel(args.discard) is None:
                    raise UsageError(f"no waiting or failed message #{args.discard} in {account.name}'s outbox"
                                     " (see `tuimail outbox`)")
                print(f"discarded #{args.discard}: not sent")
                return 0
            if not ob.retry(args.retry):
                raise UsageError(f"no failed message #{args.retry} in {account.name}'s outbox (see `tuimail outbox`)")
            print(f"#{args.retry} queued again (`tuimail outbox --flush` sends it now)")
            return 0
    accounts = [config.account(args.account)] if (args.account or len(config.accounts) == 1) \
        else list(config.accounts.values())
    code = 0
    if args.flush:
        from tuimail.backends.registry import create_sender
        if args.offline:
            raise UsageError("--flush needs the network; drop --offline")
        for account in accounts:
            report = create_sender(config, account).drain(ignore_backoff=True)
            print(sanitize_line(report.line(account.name)))
            if report.failed or report.postponed or report.refused or report.draft_waiting:
                code = 3
    now = time.time()
    listed: list[dict] = []
    for account in accounts:
        _account, store = _store(config, account.name)
        with store:
            entries = Outbox(store.db).entries()
            drafts = Postponed(store.db).entries()  # postponed, on their way to Drafts
        if args.json:
            listed += [_outbox_json(account.name, e, now) for e in entries]
            listed += [{"account": account.name, "id": d.id, "state": "postponed", "why": d.why(now),
                        "subject": d.subject, "folder": d.folder, "message_id": d.message_id, "created": d.created,
                        "next_try": d.next_try, "attempts": d.attempts, "error": d.last_error,
                        "size": len(d.message)} for d in drafts]
            continue
        if not entries and not drafts and not args.flush:
            print(f"{account.name}: the outbox is empty")
        for d in drafts:
            name = f"{account.name} " if len(accounts) > 1 else ""
            print(f"{name}P{d.id:<4} {'postponed':<12} {sanitize_line(d.subject)[:40]:<40}"
                  f" to the folder {sanitize_line(d.folder)[:40]}")
            print(f"{'':6}{sanitize_line(d.why(now))[:300]}")
        for e in entries:
            to = ", ".join(e.rcpts or e.accepted)
            name = f"{account.name} " if len(accounts) > 1 else ""
            print(f"{name}#{e.id:<4} {e.state:<12} {sanitize_line(e.subject)[:40]:<40} to {sanitize_line(to)[:60]}")
            print(f"{'':6}{sanitize_line(e.why(now))[:300]}")
    if args.json:
        print(_json(listed))
    return code


COMMANDS = {"sync": cmd_sync, "folders": cmd_folders, "list": cmd_list, "read": cmd_read, "flag": cmd_flag,
            "pending": cmd_pending, "repair": cmd_repair, "search": cmd_search, "send": cmd_send,
            "outbox": cmd_outbox}
