"""Pipelined TOP/RETR answers handed over in windows (protocol/pop3.py top_windows/retr_windows,
what a first download commits a window at a time): the same answers as one command at a time,
in order, the first windows ending at the first screenful, long lines and dot-stuffing intact,
answers split over many reads, a -ERR in the middle, an answer over the size limit. Against
Dovecot's POP3 and our fake (tests/support/pop3fake.py) for trickled and refused answers."""

from __future__ import annotations

import pytest

from tests.support.pop3fake import FakePop3
from tuimail.errors import ProtocolError
from tuimail.protocol.pop3 import Pop3Refused, Pop3Session

from .test_pop3_dovecot import message
from .test_pop3_dovecot import session as dovecot_session


def body(i: int) -> bytes:
    # a 5,000-byte line, lines starting with dots (stuffed on the wire), an empty line
    return (b"A" * (5000 + i) + b"\r\n.one dot\r\n..two dots\r\n.\r\n\r\nend %d\r\n" % i)


def flat(windows) -> list[tuple[int, bytes]]:
    return [item for w in windows for item in w]


def test_windows_give_every_answer_in_order_and_end_at_the_first_screenful(mailuser):
    raws = [message(i, body(i)) for i in range(1, 151)]
    mailuser.deliver_many("INBOX", ((r, "") for r in raws))
    with dovecot_session(mailuser) as s:
        assert s.pipelining
        one_by_one = {n: s.top(n) for n in range(1, 151)}
        numbers = list(range(150, 0, -1))
        windows = list(s.top_windows(numbers, first=60, most=40))
        assert [n for n, _ in flat(windows)] == numbers
        assert all(head == one_by_one[n] for n, head in flat(windows))
        sizes = [len(w) for w in windows]
        assert all(sizes) and 60 in [sum(sizes[:k]) for k in range(1, len(sizes) + 1)]  # no window crosses 60
        assert all(size <= 40 for size in sizes[next(k for k in range(len(sizes)) if sum(sizes[:k + 1]) == 60) + 1:])
        got = flat(s.retr_windows(numbers, first=10, most=1000, most_bytes=50_000))
        assert [raw for _, raw in got] == raws[::-1]
        assert s.retr(3) == raws[2] and not s.broken


def test_a_window_is_closed_by_its_bytes(mailuser):
    raws = [message(i, body(i)) for i in range(1, 41)]
    mailuser.deliver_many("INBOX", ((r, "") for r in raws))
    with dovecot_session(mailuser) as s:
        windows = list(s.retr_windows(range(1, 41), most_bytes=20_000))
        assert [raw for _, raw in flat(windows)] == raws
        assert all(sum(len(r) for _, r in w[:-1]) < 20_000 for w in windows)  # the last one closes it


def test_an_err_in_the_middle_hands_over_what_came_before_and_stays_in_step(mailuser):
    raws = [message(i) for i in range(1, 6)]
    mailuser.deliver_many("INBOX", ((r, "") for r in raws))
    with dovecot_session(mailuser) as s:
        got: list[tuple[int, bytes]] = []
        with pytest.raises(Pop3Refused, match=r"RETR 99: -ERR"):
            for w in s.retr_windows([1, 2, 99, 3, 4]):
                got += w
        assert got == [(1, raws[0]), (2, raws[1])]  # (3 and 4 were read and dropped)
        assert not s.broken and s.retr(5) == raws[4]


def test_trickled_answers_split_over_many_reads():
    msgs = [b"Subject: m%d\r\n\r\n.dot\r\n%s\r\n" % (i, b"x" * 300) for i in range(1, 6)]
    with FakePop3(msgs, pipelining=True, trickle=0.0001) as srv:
        s = Pop3Session("127.0.0.1", srv.port, security="none", username=srv.user,
                        secret=lambda: srv.password, timeout=10)
        with s:
            windows = list(s.retr_windows(range(1, 6), first=2, most=2))
            assert [raw for _, raw in flat(windows)] == msgs
            assert all(0 < len(w) <= 2 for w in windows)


def test_an_answer_over_the_limit_is_refused_in_a_window():
    msgs = [b"Subject: small\r\n\r\nhi\r\n", b"Subject: big\r\n\r\n" + b"y" * 5000 + b"\r\n"]
    with FakePop3(msgs, pipelining=True) as srv:
        s = Pop3Session("127.0.0.1", srv.port, security="none", username=srv.user,
                        secret=lambda: srv.password, timeout=5, max_message=1000)
        s.connect()
        got: list[tuple[int, bytes]] = []
        with pytest.raises(ProtocolError, match="over"):
            for w in s.retr_windows([1, 2]):
                got += w
        assert s.broken and got == [(1, msgs[0])]  # (what came before is handed over first)
        s.abort()


def test_garbage_is_refused_in_a_window():
    msgs = [b"Subject: m%d\r\n\r\nhi\r\n" % i for i in range(1, 4)]
    with FakePop3(msgs, pipelining=True, replies={"RETR": b"* garbage\r\n"}) as srv:
        s = Pop3Session("127.0.0.1", srv.port, security="none", username=srv.user,
                        secret=lambda: srv.password, timeout=5)
        s.connect()
        with pytest.raises(ProtocolError, match="unexpected answer to RETR 1"):
            list(s.retr_windows([1, 2]))
        assert s.broken
        s.abort()


def test_no_more_than_the_first_screenful_is_asked_for_before_it_is_handed_over(mailuser):
    """The caller may pause after the first window (the app's first paint): the server is then
    not busy answering hundreds of commands in flight."""
    mailuser.deliver_many("INBOX", ((message(i), "") for i in range(1, 101)))
    with dovecot_session(mailuser) as s:
        windows = s.top_windows(range(100, 0, -1), first=20, most=1000)
        got = next(windows)
        while len(got) < 20:
            got += next(windows)
        assert len(got) == 20 and s.commands["TOP"] == 20
        rest = [item for w in windows for item in w]
        assert len(rest) == 80 and s.commands["TOP"] == 100
