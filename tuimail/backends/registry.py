"""Account kind -> the backend that implements it (core/service.py: AccountService).

    create_service(config, account, on_event, *, offline=False) -> AccountService
    create_sender(config, account) -> backends.send.Sender (the outbox: queue, cancel, drain)
    capabilities(kind) -> Capabilities (what accounts of that kind can do; no service made)
    can_send(account) -> bool (an smtp table, or a JMAP account)
    implemented_kinds() -> ("imap", "jmap", "pop3")

The UI and the CLI reach a backend only through here. A backend is named by an import string and
imported when the first service of its kind is made: the config validator asks implemented_kinds()
without loading imapclient, ssl or the engine.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Protocol

from tuimail.core.events import EventSink
from tuimail.core.service import AccountService, Capabilities

if TYPE_CHECKING:
    from tuimail.backends.send import Sender
    from tuimail.config.load import Account, Config

# kind -> "module:class". A kind the config accepts (config/model.py KINDS) but that is not here is
# refused by the validator: "accounts.NAME.kind = ... is not available yet".
BACKENDS: dict[str, str] = {
    # the background sync in a child process (process.py: in a thread, parsing a 100k cold fill
    # held the UI's GIL); the blocking methods (sync_now for `tuimail sync`, opening messages)
    # run in the caller's process
    "imap": "tuimail.backends.imap.process:SyncProcess",
    "jmap": "tuimail.backends.jmap.service:JmapService",
    "pop3": "tuimail.backends.pop3.process:Pop3Process",  # (the same: its download parsed in the UI's GIL)
}


class ServiceFactory(Protocol):
    """What makes a service: create_service below, or a test's fake."""

    def __call__(self, config: Config, account: Account, on_event: EventSink | None = None, *,
                 offline: bool = False) -> AccountService: ...


def implemented_kinds() -> tuple[str, ...]:
    return tuple(BACKENDS)


def backend(kind: str) -> ServiceFactory:
    """The class implementing `kind` (its module is imported now). An unknown kind is a ConfigError
    the validator raised already; here it is a programming error."""
    try:
        target = BACKENDS[kind]
    except KeyError:
        raise ValueError(f"no backend for account kind {kind!r} (have: {', '.join(BACKENDS)})") from None
    module, _, name = target.partition(":")
    factory: ServiceFactory = getattr(importlib.import_module(module), name)
    return factory


def capabilities(kind: str) -> Capabilities:
    """What accounts of `kind` can do (core/service.py), without making a service: the CLI asks
    this instead of comparing kind names, so that a new kind needs no edit above backends/."""
    caps = getattr(backend(kind), "capabilities", None)
    if not isinstance(caps, Capabilities):
        raise TypeError(f"the backend of {kind!r} declares no Capabilities")
    return caps


def create_service(config: Config, account: Account, on_event: EventSink | None = None, *,
                   offline: bool = False) -> AccountService:
    """The service for `account`, not started (start() it, or call its blocking methods)."""
    return backend(account.kind)(config, account, on_event, offline=offline)


def create_sender(config: Config, account: Account) -> Sender:
    """The account's outbox and its drain (backends/send.py): SMTP, then the copy in Sent; for a
    JMAP account Email/import + EmailSubmission/set, the server filing the copy."""
    from tuimail.backends.send import Sender
    return Sender(config, account)


def can_send(account: Account) -> bool:
    """Whether the account has a way out: an [accounts.NAME.smtp] table, or JMAP submission."""
    return account.kind == "jmap" or bool(account.smtp)


def drained_accounts(config: Config, names: Iterable[str], services: Mapping[str, AccountService]) -> list[str]:
    """The accounts among `names` the app runs an outbox drain for: those that can send, or
    whose server keeps drafts (what a previous run left, in the outbox or postponed, goes out)."""
    out = []
    for name in names:
        account, svc = config.accounts.get(name), services.get(name)
        if account is not None and (can_send(account) or (svc is not None and svc.capabilities.append)):
            out.append(name)
    return out


if TYPE_CHECKING:
    # mypy checks here that each backend keeps the contract: its class makes an AccountService
    # from (config, account, on_event, *, offline). Nothing is imported at run time.
    from tuimail.backends.imap.process import SyncProcess
    from tuimail.backends.imap.service import ImapService

    def _imap(svc: ImapService) -> AccountService:
        return svc  # (a missing or mistyped method is named here)

    _imap_factory: ServiceFactory = ImapService
    _imap_process: ServiceFactory = SyncProcess
    from tuimail.backends.pop3.service import Pop3Service

    def _pop3(svc: Pop3Service) -> AccountService:
        return svc

    _pop3_factory: ServiceFactory = Pop3Service
    _create: ServiceFactory = create_service

    from tuimail.backends.jmap.service import JmapService

    def _jmap(svc: JmapService) -> AccountService:
        return svc

    _jmap_factory: ServiceFactory = JmapService
