"""Sending: `tuimail send` (queue a message, then drain the outbox) and `tuimail outbox`."""

from __future__ import annotations

import sys
import time

from tuimail.config.load import Config
from tuimail.errors import UsageError
from tuimail.mail.sanitize import sanitize_line

from tuimail.cli.common import _json, _store


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
