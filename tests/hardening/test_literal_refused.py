"""A hostile server answers a synchronising literal with NO, or never with "+" (issue 10.7): the
command fails with one line, the literal's bytes are never sent, nothing hangs."""

from __future__ import annotations

import time
from types import SimpleNamespace

import pytest

from tuimail.errors import CommandFailed, NetworkError
from tuimail.protocol.imap.connection import ImapConnection
from tests.support.proxy import GarbageServer

from .test_protocol import scripted


def _conn(port: int, timeout: float = 3.0) -> ImapConnection:
    acc = SimpleNamespace(name="test", host="127.0.0.1", port=port, security="none", username="alice",
                          password="pw", password_command=None, oauth2_token_command=None, tls_ca_file=None,
                          tls_fingerprint=None, timeout=timeout, roles={})
    c = ImapConnection(acc, lambda: "pw", timeout=timeout)
    c.connect()
    return c


@pytest.mark.parametrize("answer", [b"NO [TOOBIG] not today", b"BAD no literals here"])
def test_literal_answered_with_no_fails_in_one_line_and_sends_nothing(answer):
    def after(tag, line):
        if line.startswith(tag + b" APPEND"):
            return tag + b" " + answer + b"\r\n"
        return tag + b" OK done\r\n"

    with GarbageServer(reply=scripted(after_login=after)) as server:  # no LITERAL+: synchronising
        c = _conn(server.port)
        t0 = time.monotonic()
        with pytest.raises(CommandFailed) as err:
            c.append("INBOX", b"Subject: x\r\n\r\nT9 DELETE INBOX\r\n")
        assert time.monotonic() - t0 < 2
        msg = str(err.value)
        assert "\n" not in msg and msg.startswith("server refused APPEND: ") and answer.decode().split()[0] in msg
        c.noop()  # the connection still works: the literal was not sent
        assert not any(b"DELETE" in line or line.startswith(b"Subject") for line in server.received)
        c.close()


def test_literal_never_answered_ends_at_the_deadline():
    def after(tag, line):
        return b"" if line.startswith(tag + b" APPEND") else tag + b" OK done\r\n"

    with GarbageServer(reply=scripted(after_login=after)) as server:
        c = _conn(server.port, timeout=1.0)
        t0 = time.monotonic()
        with pytest.raises(NetworkError) as err:
            c.append("INBOX", b"Subject: x\r\n\r\nbody\r\n")
        assert time.monotonic() - t0 < 3
        assert "\n" not in str(err.value) and "APPEND" in str(err.value) and "timeout" in str(err.value)
        assert not any(line.startswith(b"Subject") for line in server.received)
        c.close()
