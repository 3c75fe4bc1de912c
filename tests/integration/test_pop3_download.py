"""One POP3 sync (tuimail/backends/pop3/download.py) against Dovecot, with an in-memory ledger in
place of the store: both modes, the second sync, new mail, a cut at every step, the UIDL reset."""

from __future__ import annotations

import threading
import time

import pytest

from tests.support.pop3fake import FakePop3
from tests.support.pop3ledger import MemoryLedger
from tuimail.backends.pop3.download import download
from tuimail.backends.pop3.plan import DAY, Policy
from tuimail.errors import NetworkError, StoreError
from tuimail.protocol.pop3 import Pop3Session

KEEP, DELETE = Policy("keep"), Policy("delete")


def message(i: int) -> bytes:
    return (b"From: s%d@example.org\r\nMessage-ID: <%d@example.org>\r\nSubject: m%d\r\n\r\n" % (i, i, i)
            + b"line %d " % i * 300 + b"\r\n")  # one 3,000-byte line each


def session(user, port=None) -> Pop3Session:
    return Pop3Session(user.host, port or user.pop3_port, security="none", username=user.name,
                       secret=lambda: user.password, timeout=10)


def on_server(user) -> int:
    with session(user) as s:
        return s.stat()[0]


def fill(user, n: int, start: int = 1) -> list[bytes]:
    raws = [message(i) for i in range(start, start + n)]
    user.deliver_many("INBOX", ((r, "") for r in raws))
    return raws


def test_keep_mode_twice_downloads_nothing_the_second_time_then_new_mail(mailuser):
    raws = fill(mailuser, 5)
    ledger = MemoryLedger()
    r1 = download(session(mailuser), ledger, KEEP, now=ledger.now)
    assert r1.downloaded == 5 and ledger.bodies() == raws and r1.deleted == 0
    r2 = download(session(mailuser), ledger, KEEP, now=ledger.now)
    assert r2.downloaded == 0 and len(ledger.rows) == 5
    # nothing new: one UIDL exchange after the login, no LIST, no TOP, no RETR
    assert {k: v for k, v in r2.commands.items() if k not in ("CAPA", "AUTH")} == {"UIDL": 1, "QUIT": 1}
    raws += fill(mailuser, 2, start=6)
    r3 = download(session(mailuser), ledger, KEEP, now=ledger.now)
    assert r3.downloaded == 2 and ledger.bodies() == raws and on_server(mailuser) == 7


def test_delete_mode_empties_the_server_after_the_store_has_the_mail(mailuser):
    raws = fill(mailuser, 4)
    ledger = MemoryLedger()
    r = download(session(mailuser), ledger, DELETE, now=ledger.now)
    assert r.downloaded == 4 and r.deleted == 4 and ledger.bodies() == raws
    assert on_server(mailuser) == 0
    assert all(not row.on_server for row in ledger.rows.values())


def test_keep_days_deletes_only_old_downloads(mailuser):
    fill(mailuser, 3)
    ledger = MemoryLedger()
    download(session(mailuser), ledger, Policy("keep", keep_days=7), now=ledger.now)
    assert on_server(mailuser) == 3
    r = download(session(mailuser), ledger, Policy("keep", keep_days=7), now=ledger.now + 8 * DAY)
    assert r.deleted == 3 and r.downloaded == 0 and on_server(mailuser) == 0


@pytest.mark.parametrize("cut_after", [1, 2, 3])
def test_a_cut_after_any_commit_loses_nothing_and_duplicates_nothing(mailuser, proxy_factory, cut_after):
    raws = fill(mailuser, 3)
    proxy = proxy_factory(mailuser.pop3_port)

    def cut(count: int) -> None:
        if count == cut_after:
            proxy.cut_now()  # as a kill -9 or a dropped link right after this commit

    ledger = MemoryLedger(after_commit=cut)
    with pytest.raises(NetworkError):
        download(session(mailuser, proxy.port), ledger, DELETE, now=ledger.now)
    # (answers already in our buffer when the cut came may still be committed: pipelining)
    got = len(ledger.rows)
    assert got >= cut_after and on_server(mailuser) == 3  # no DELE took effect
    ledger.after_commit = None
    r = download(session(mailuser), ledger, DELETE, now=ledger.now)
    assert r.downloaded == 3 - got and ledger.bodies() == raws  # each message once
    assert on_server(mailuser) == 0


def test_a_store_failure_leaves_without_quit(mailuser):
    raws = fill(mailuser, 3)
    ledger = MemoryLedger(fail_at=2)
    with pytest.raises(StoreError):
        download(session(mailuser), ledger, DELETE, now=ledger.now)
    assert len(ledger.rows) == 1 and on_server(mailuser) == 3  # message 3's DELE was not applied (newest first)
    ledger.fail_at = None
    download(session(mailuser), ledger, DELETE, now=ledger.now)
    assert sorted(ledger.bodies()) == sorted(raws) and on_server(mailuser) == 0  # each once


def test_quit_withheld_deletes_nothing(mailuser, proxy_factory):
    fill(mailuser, 2)
    proxy = proxy_factory(mailuser.pop3_port)
    held = proxy.stall_on_client(b"QUIT\r\n", forward=False)
    ledger = MemoryLedger()
    box: list = []
    t = threading.Thread(target=lambda: box.append(_catch(download, session(mailuser, proxy.port), ledger,
                                                          DELETE, now=ledger.now)))
    t.start()
    assert held.wait(10)
    proxy.cut_now()
    t.join(10)
    assert isinstance(box[0], NetworkError)
    assert len(ledger.rows) == 2 and on_server(mailuser) == 2
    assert all(row.on_server for row in ledger.rows.values())
    proxy.resume()
    r = download(session(mailuser), ledger, DELETE, now=ledger.now)
    assert r.downloaded == 0 and r.deleted == 2 and on_server(mailuser) == 0


def test_quit_applied_but_its_answer_lost(mailuser, proxy_factory):
    fill(mailuser, 2)
    proxy = proxy_factory(mailuser.pop3_port)
    proxy.stall_on_client(b"QUIT\r\n", forward=True)  # the server gets QUIT; its answer is held
    ledger = MemoryLedger()
    box: list = []
    t = threading.Thread(target=lambda: box.append(_catch(download, session(mailuser, proxy.port), ledger,
                                                          DELETE, now=ledger.now)))
    t.start()
    deadline = time.monotonic() + 10
    while on_server(mailuser) != 0:  # Dovecot applied the DELEs
        assert time.monotonic() < deadline
        time.sleep(0.05)
    proxy.cut_now()
    t.join(10)
    assert isinstance(box[0], NetworkError) and len(ledger.rows) == 2
    r = download(session(mailuser), ledger, DELETE, now=ledger.now)
    assert r.downloaded == 0 and r.gone == 2 and all(not row.on_server for row in ledger.rows.values())


def test_uidl_reset_remaps_and_downloads_nothing(mailuser):
    raws = fill(mailuser, 6)
    ledger = MemoryLedger()
    download(session(mailuser), ledger, KEEP, now=ledger.now)
    before = {row.uidl for row in ledger.rows.values()}
    for path in mailuser.maildir.glob("dovecot*"):  # a restore without Dovecot's uid list and index
        path.unlink()
    time.sleep(1.1)  # a new UIDVALIDITY is the current time: make sure it differs
    fill(mailuser, 1, start=7)
    r = download(session(mailuser), ledger, KEEP, now=ledger.now)
    after = {row.uidl for row in ledger.rows.values()}
    assert r.uidl_reset and r.remapped == 6 and r.downloaded == 1
    assert ledger.bodies() == raws + [message(7)] and not (before & after)
    assert any("UIDL" in n and "6 messages" in n for n in r.notices)
    assert download(session(mailuser), ledger, KEEP, now=ledger.now).downloaded == 0


def test_headers_first_then_bodies(mailuser):
    raws = fill(mailuser, 3)
    ledger = MemoryLedger()
    r = download(session(mailuser), ledger, DELETE, headers_first=True, now=ledger.now)
    assert r.headers == 3 and r.downloaded == 3 and ledger.bodies() == raws and on_server(mailuser) == 0
    assert r.commands["TOP"] == 3 and r.commands["RETR"] == 3


def test_headers_only_rows_get_their_bodies_next_time_and_only_then_dele(mailuser):
    raws = fill(mailuser, 2)
    ledger = MemoryLedger(fail_at=3)  # the first body commit fails after both headers went in
    with pytest.raises(StoreError):
        download(session(mailuser), ledger, DELETE, headers_first=True, now=ledger.now)
    assert [row.has_body for row in ledger.rows.values()] == [False, False] and on_server(mailuser) == 2
    ledger.fail_at = None
    r = download(session(mailuser), ledger, DELETE, headers_first=True, now=ledger.now)
    assert r.headers == 0 and r.downloaded == 2 and ledger.bodies() == raws and on_server(mailuser) == 0


def test_server_without_uidl_or_top():
    msgs = [message(1), message(2)]
    with FakePop3(msgs, uidl=False, top=False) as srv:
        ledger = MemoryLedger()

        def sync(policy):
            return download(Pop3Session("127.0.0.1", srv.port, security="none", username=srv.user,
                                        secret=lambda: srv.password, timeout=5), ledger, policy, now=ledger.now)
        r = sync(KEEP)
        assert r.downloaded == 2 and any("no UIDL" in n for n in r.notices)
        assert sync(KEEP).downloaded == 0 and len(ledger.rows) == 2
        srv.messages.append(message(3))
        assert sync(KEEP).downloaded == 1
        r = sync(DELETE)
        assert r.downloaded == 0 and r.deleted == 3 and srv.messages == []
        assert ledger.bodies() == [message(1), message(2), message(3)]


def _catch(fn, *args, **kw):
    try:
        return fn(*args, **kw)
    except Exception as exc:  # noqa: BLE001 - handed to the test thread
        return exc


def test_headers_now_bodies_later(mailuser):
    raws = fill(mailuser, 2)
    ledger = MemoryLedger()
    r = download(session(mailuser), ledger, DELETE, headers_first=True, bodies=False, now=ledger.now)
    assert r.headers == 2 and r.downloaded == 0 and r.deleted == 0 and on_server(mailuser) == 2
    assert ledger.bodies() == [raw.split(b"\r\n\r\n")[0] + b"\r\n\r\n" for raw in raws]
    r = download(session(mailuser), ledger, DELETE, now=ledger.now)  # the background pass
    assert r.downloaded == 2 and r.deleted == 2 and ledger.bodies() == raws and on_server(mailuser) == 0
    assert "LIST" not in r.commands  # bodies need no sizes


def test_fetch_body_of_a_header_only_message(mailuser):
    from tuimail.backends.pop3.download import fetch_body
    raws = fill(mailuser, 3)
    ledger = MemoryLedger()
    download(session(mailuser), ledger, KEEP, headers_first=True, bodies=False, now=ledger.now)
    s = session(mailuser)
    with s:
        assert fetch_body(s, ledger.rows[2].uidl) == raws[1]
        assert fetch_body(s, "no-such-uidl") is None
