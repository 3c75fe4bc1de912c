"""The account contract (core/service.py) and the registry (backends/registry.py): the IMAP service
keeps it at run time as mypy checks it statically (registry.py), a kind without a backend is no
service, and what a backend cannot do is a typed `Unsupported`, not an AttributeError."""

from __future__ import annotations

import dataclasses
import socket

import pytest

from tuimail.backends import registry
from tuimail.backends.imap.service import ImapService
from tuimail.config.load import Account, Config
from tuimail.config.model import KINDS
from tuimail.core.service import AccountService, Capabilities
from tuimail.errors import NetworkError, NotCached, Unsupported, UsageError

from ..support.contract import assert_keeps_the_contract


@pytest.fixture
def imap_config(tuimail_env):
    acc = Account(name="test", kind="imap", host="127.0.0.1", port=_closed_port(), security="none", username="me",
                  password="x", timeout=5.0)
    return Config(accounts={"test": acc})


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_the_imap_service_keeps_the_contract():
    assert_keeps_the_contract(ImapService)
    assert isinstance(ImapService.capabilities, Capabilities)


def test_the_pop3_service_keeps_the_contract_and_says_what_is_local(imap_config):
    from tuimail.backends.pop3.service import Pop3Service
    assert_keeps_the_contract(Pop3Service)
    caps = Pop3Service.capabilities
    assert (caps.server_flags, caps.push, caps.server_folders) == (False, False, False)
    pop = dataclasses.replace(imap_config.account("test"), kind="pop3")
    svc = registry.create_service(imap_config, pop, offline=True)
    try:
        assert isinstance(svc, Pop3Service) and isinstance(svc, AccountService)
        for call in (lambda: svc.search("INBOX", "x"), lambda: svc.append("INBOX", b"x", ())):
            with pytest.raises(Unsupported):
                call()
    finally:
        svc.stop()


def test_capabilities_are_frozen_and_say_what_imap_does():
    caps = ImapService.capabilities
    with pytest.raises(dataclasses.FrozenInstanceError):
        caps.push = False  # type: ignore[misc]
    assert (caps.server_flags, caps.push, caps.server_folders, caps.server_search) == (True, True, True, True)
    # append stores a message (Drafts); sending goes through the outbox, send() answers Unsupported
    assert (caps.append, caps.send) == (True, False)
    assert Capabilities() == Capabilities(False, False, False, False, False, False)


def test_the_registry_makes_an_imap_service(imap_config):
    assert registry.implemented_kinds() == ("imap", "jmap", "pop3")
    assert set(registry.implemented_kinds()) <= set(KINDS)
    events = []
    svc = registry.create_service(imap_config, imap_config.account("test"), events.append, offline=True)
    try:
        assert isinstance(svc, ImapService) and isinstance(svc, AccountService)
        assert svc.offline and svc.login_blocked is None
    finally:
        svc.stop()


def test_a_kind_without_a_backend_is_no_service(imap_config):
    made_up = dataclasses.replace(imap_config.account("test"), kind="nntp")
    with pytest.raises(ValueError, match="nntp"):
        registry.create_service(imap_config, made_up)


def test_what_a_backend_cannot_do_is_unsupported(imap_config):
    svc = registry.create_service(imap_config, imap_config.account("test"), offline=True)
    try:
        with pytest.raises(Unsupported) as info:
            svc.send(b"Subject: x\r\n\r\nx\r\n", sender="me@example.org", recipients=["a@b"])
        assert isinstance(info.value, UsageError) and info.value.exit_code == 2  # one line, exit 2
        assert "\n" not in str(info.value)
        with pytest.raises(NetworkError) as net:  # offline: nothing goes to the server
            svc.append("Sent", b"Subject: x\r\n\r\nx\r\n", ("seen",))
        assert "offline" in str(net.value) and "\n" not in str(net.value)
    finally:
        svc.stop()


def test_search_offline_answers_from_the_store_and_a_bad_pattern_is_one_line(imap_config):
    svc = registry.create_service(imap_config, imap_config.account("test"), offline=True)
    try:
        assert svc.search("INBOX", "hello") == []  # (nothing synced: no rows)
        with pytest.raises(UsageError, match=r"^pattern: unknown operator ~q at column 1$"):
            svc.search("INBOX", "~q x")
    finally:
        svc.stop()


def test_an_uncached_message_says_why_there_is_no_connection(imap_config):
    """Offline: "not cached". Online with the server down: the cache is still read, and what it
    lacks is NotCached naming the unreachable server (the CLI's `read` says so)."""
    svc = registry.create_service(imap_config, imap_config.account("test"), offline=True)
    try:
        with pytest.raises(NotCached) as info:
            svc.open_message("INBOX", 1)
        assert "unreachable" not in str(info.value)
        svc.set_offline(False)
        with pytest.raises(NotCached) as info:
            svc.open_message("INBOX", 1)
        assert "not cached, and the server is unreachable" in str(info.value)
    finally:
        svc.stop()
