"""Command line: bare `tuimail` opens the app; subcommands sync|folders|list|read|flag|search|pending|
repair|send|outbox run headless.

Exit codes: 0 ok; 2 usage or config error; 3 network, TLS or authentication error (and `read` of an
uncached body while offline; and `sync` when the server refused every folder it tried: one refused
folder is named in the summary line, the others go on, and the exit code stays 0); 4 local store
error (a damaged file: `tuimail repair`; a full disk; a permission problem; a lock). Errors are one
line on stderr, never a traceback.

Here: the parser, main() and `serve`; the commands by group: read.py (sync folders list read search
flag), maintenance.py (pending repair), account.py (setup, the first run), outbox.py (send outbox),
common.py (what they share: the store, a message's handle, JSON for a terminal, flag words).
"""

from __future__ import annotations

import argparse
import sqlite3
import sys
from typing import NoReturn

from tuimail import __version__, paths
from tuimail.config.load import config_mode_warning, load_config
from tuimail.config.model import KINDS
from tuimail.errors import StoreError, TuimailError
from tuimail.mail.sanitize import sanitize_line

from tuimail.cli.account import _first_run, cmd_setup
from tuimail.cli.common import FLAG_NAMES
from tuimail.cli.maintenance import cmd_pending, cmd_repair
from tuimail.cli.outbox import cmd_outbox, cmd_send
from tuimail.cli.read import cmd_flag, cmd_folders, cmd_list, cmd_read, cmd_search, cmd_sync


class _NotBare(Exception):
    pass


class _BareParser(argparse.ArgumentParser):
    """The top-level options alone: anything it would report goes to the whole parser instead."""

    def error(self, message: str) -> NoReturn:
        raise _NotBare(message)


_VALUED = ("--config", "--account", "-f")  # the top-level options that take a value


def _bare(argv: list[str]) -> bool:
    """Whether `argv` can only be the bare reader's (options, no COMMAND, no help or version)."""
    after_valued = False
    for arg in argv:
        if after_valued:
            after_valued = False
        elif arg in ("-h", "--help", "--version") or not arg.startswith("-") or arg == "--":
            return False
        else:
            after_valued = arg in _VALUED
    return True


def parse_args(argv: list[str]) -> argparse.Namespace:
    """The command line; the bare reader's (`tuimail [--config FILE] ...`, the most common by far)
    without building every command's parser, ~4 ms of the reader's start."""
    if _bare(argv):
        try:
            args = build_parser(commands=False, parser_class=_BareParser).parse_args(argv)
        except _NotBare:
            pass  # (the whole parser says what is wrong, with its usage)
        else:
            args.cmd = None
            return args
    return build_parser().parse_args(argv)


def build_parser(commands: bool = True,
                 parser_class: type[argparse.ArgumentParser] = argparse.ArgumentParser) -> argparse.ArgumentParser:
    p = parser_class(prog="tuimail", description="A keyboard-driven terminal mail reader.",
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
    if not commands:
        return p
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
    su.add_argument("--kind", metavar="K", choices=KINDS, help=", ".join(KINDS[:-1]) + " or " + KINDS[-1])
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
        args = parse_args(argv)
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


COMMANDS = {"sync": cmd_sync, "folders": cmd_folders, "list": cmd_list, "read": cmd_read, "flag": cmd_flag,
            "pending": cmd_pending, "repair": cmd_repair, "search": cmd_search, "send": cmd_send,
            "outbox": cmd_outbox}
