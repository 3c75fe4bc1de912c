"""Maintenance: `pending` (the journal of actions not yet on the server) and `repair` (rebuild a
damaged store, keeping that journal)."""

from __future__ import annotations

from tuimail import paths
from tuimail.config.load import Config
from tuimail.errors import UsageError
from tuimail.mail.sanitize import sanitize_line

from tuimail.cli.common import _caps, _json, _store


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


def _action_uid(account, a):
    """The handle of an action's message (see _handle); None when it is lost."""
    if a.msg_id is None or a.sid is None:
        return None
    return int(a.sid) if _caps(account).server_uids and a.sid.isdigit() else a.msg_id


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
