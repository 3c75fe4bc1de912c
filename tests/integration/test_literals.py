"""Literals on the wire (issue 10.7): APPEND and non-ASCII SEARCH against a real Dovecot, both
literal kinds ({n+} where the server advertises LITERAL+, {n} waiting for its "+")."""

from __future__ import annotations

from datetime import datetime, UTC

import pytest

from tuimail.errors import CommandFailed
from tuimail.protocol.imap import wire
from tuimail.protocol.imap.responses import parse_internaldate

from .helpers import msg
from .test_protocol import connect
from tests.support.cyrus import IMAP_SERVERS, imap_user

BODY = ("Grüße aus Köln — ".encode() + b"\xe9\xff 8-bit bytes\r\n") + (b"x" * 76 + b"\r\n") * 1300  # ~100 KB
MESSAGE = (b"From: J\xc3\xbcrgen <j@example.org>\r\nTo: me@example.org\r\nSubject: =?utf-8?q?Gr=C3=BC=C3=9Fe?=\r\n"
           b"Message-ID: <append@example.org>\r\nContent-Type: text/plain; charset=utf-8\r\n"
           b"Content-Transfer-Encoding: 8bit\r\n\r\n" + BODY)


@pytest.fixture(params=IMAP_SERVERS)
def mailuser(request):
    """Every test here runs against Dovecot and against Cyrus IMAP."""
    return imap_user(request)


def _sent(c) -> list[bytes]:
    out = []
    orig = c.session.send
    c.session.send = lambda data: (out.append(bytes(data)), orig(data))[1]
    return out


@pytest.mark.parametrize("kind", ["LITERAL+", "synchronising"])
def test_append_8bit_100k_message_both_literal_kinds(mailuser, kind):
    assert len(MESSAGE) > 100_000
    c = connect(mailuser)
    assert c.has("LITERAL+") and c.has("UIDPLUS")
    if kind == "synchronising":
        c.session.caps -= {"LITERAL+", "LITERAL-"}
    sent = _sent(c)
    when = datetime(2024, 3, 5, 7, 8, 9, tzinfo=UTC)
    uid = c.append("INBOX", MESSAGE, flags=["\\Seen", "$Label1"], internaldate=when)
    line = next(s for s in sent if b" APPEND " in s)
    assert line.endswith(b"{%d+}\r\n" % len(MESSAGE) if kind == "LITERAL+" else b"{%d}\r\n" % len(MESSAGE))
    assert uid == 1
    c.select("INBOX")
    got = c.fetch_items(uid, b"BODY.PEEK[] FLAGS INTERNALDATE")
    assert got[b"BODY[]"] == MESSAGE  # every 8-bit byte as sent
    assert set(got[b"FLAGS"]) >= {b"\\Seen", b"$Label1"}
    # (Dovecot "05-Mar-2024 ...", Cyrus " 5-Mar-2024 ...": RFC 3501 allows a space-padded day)
    assert got[b"INTERNALDATE"].replace(b" 5-", b"05-", 1) == b"05-Mar-2024 07:08:09 +0000"
    assert parse_internaldate(got[b"INTERNALDATE"]) == int(when.timestamp())
    c.close()


def test_append_to_a_missing_folder_fails_cleanly_and_the_connection_stays(mailuser):
    c = connect(mailuser)
    c.session.caps -= {"LITERAL+", "LITERAL-"}  # Dovecot answers NO before the "+" when it can
    with pytest.raises(CommandFailed) as err:
        c.append("No Such Folder", b"Subject: x\r\n\r\nbody\r\n")
    assert "\n" not in str(err.value) and "APPEND" in str(err.value)
    c.noop()  # the literal's bytes were not taken for a command
    assert c.status("INBOX")["MESSAGES"] == 0
    c.close()


@pytest.mark.parametrize("kind", ["LITERAL+", "synchronising"])
def test_search_for_a_non_ascii_subject(mailuser, kind):
    mailuser.deliver("INBOX", msg(1, subject="plain"))
    mailuser.deliver("INBOX", msg(2, subject="=?utf-8?q?Gr=C3=BC=C3=9Fe_aus_K=C3=B6ln?="))
    mailuser.deliver("INBOX", msg(3, subject="Grusse"))
    c = connect(mailuser)
    if kind == "synchronising":
        c.session.caps -= {"LITERAL+", "LITERAL-"}
    sent = _sent(c)
    c.select("INBOX")
    assert c.search_uids([b"SUBJECT ", wire.string("Grüße")]) == [2]
    assert any(b"CHARSET UTF-8 SUBJECT {" in s for s in sent)
    assert c.search_uids([b"SUBJECT ", wire.string("Köln"), b" FROM ", wire.string("Sender 2")]) == [2]
    c.session.caps.discard("ESEARCH")
    assert c.search_uids([b"SUBJECT ", wire.string("Grüße")]) == [2]
    c.close()


def test_search_for_a_string_with_cr_lf_injects_nothing(mailuser):
    for i in range(3):
        mailuser.deliver("INBOX", msg(i))
    mailuser.create_folder("Keep")
    c = connect(mailuser)
    c.select("INBOX")
    answers = []
    c.session.log = answers.append
    hostile = "message\r\nT99 DELETE Keep\r\nT100 UID STORE 1:* +FLAGS (\\Deleted)\r\nT101 EXPUNGE"
    for kind in ("LITERAL+", "synchronising"):
        if kind == "synchronising":
            c.session.caps -= {"LITERAL+", "LITERAL-"}
        assert c.search_uids([b"SUBJECT ", wire.string(hostile)]) == []
    # (Dovecot trims the trailing CRLF of a search key: the message is found; Cyrus keeps it and
    # finds none; either way nothing else happens)
    found = c.search_uids([b"HEADER Message-ID ", wire.string("<m1@example.org>\r\n")])
    assert found == ([] if hasattr(mailuser, "lock_out") else [2])
    tagged = [a for a in answers if a.startswith("S: ")]
    assert len(tagged) == 3 and all(a.startswith("S: T") and " OK " in a for a in tagged), tagged
    c.noop()  # no stray tagged answer is waiting: it would be an "unexpected server response"
    assert c.search_uids() == [1, 2, 3]
    assert b"\\Deleted" not in c.fetch_items(1, b"FLAGS")[b"FLAGS"]
    names = {f.name for f in c.list_folders()}
    assert "Keep" in names
    c.close()
