"""The POP3 sync plan (tuimail/backends/pop3/plan.py): pure decisions, no server."""

from __future__ import annotations

import itertools

import pytest

from tuimail.backends.pop3.plan import DAY, KnownMessage, Policy, ServerMessage, fingerprint, header_block, plan

NOW = 1_800_000_000.0
KEEP = Policy("keep")
DELETE = Policy("delete")


def raw(i: int) -> bytes:
    return (f"From: a{i}@example.org\r\nMessage-ID: <{i}@example.org>\r\nSubject: message {i}\r\n\r\n"
            f"body {i}\r\n").encode()


def server_list(n: int, uidl=lambda i: f"old-{i}") -> list[ServerMessage]:
    return [ServerMessage(i, len(raw(i)), uidl(i) if uidl else None) for i in range(1, n + 1)]


def known_for(msgs: list[ServerMessage], at: float = NOW - DAY, **kw) -> list[KnownMessage]:
    return [KnownMessage(f"local-{m.number}", m.uidl, fingerprint(raw(m.number), m.size), at, **kw) for m in msgs]


def fps_of(msgs: list[ServerMessage]) -> dict[int, str]:
    # as the backend computes them from TOP n 0 (the header block and its blank line)
    return {m.number: fingerprint(raw(m.number).split(b"\r\n\r\n")[0] + b"\r\n\r\n", m.size) for m in msgs}


def test_fingerprint_is_the_same_for_top_and_the_whole_message_and_tells_size_apart():
    r = raw(1)
    top = header_block(r) + b"\r\n\r\n"
    assert fingerprint(top, 99) == fingerprint(r, 99)
    assert fingerprint(r.replace(b"\r\n", b"\n"), 99) == fingerprint(r, 99)  # line ends do not matter
    assert fingerprint(r, 99) != fingerprint(r, 100)
    assert fingerprint(r, 99) != fingerprint(raw(2), 99)
    assert header_block(b"\r\nbody only") == b""
    assert header_block(b"Subject: no body") == b"Subject: no body"


def test_first_sync_downloads_everything_and_keep_mode_deletes_nothing():
    srv = server_list(3)
    p = plan(srv, [], KEEP, NOW)
    assert [m.number for m in p.new] == [1, 2, 3]
    assert not p.delete and not p.remap and not p.need_fingerprints and not p.notices
    assert p.delete_after_download is False


def test_second_sync_in_keep_mode_downloads_nothing_and_new_mail_arrives():
    srv = server_list(3)
    assert plan(srv, known_for(srv), KEEP, NOW).new == []
    more = server_list(4)
    p = plan(more, known_for(srv), KEEP, NOW)
    assert [m.number for m in p.new] == [4]
    assert [k.ref for _, k in p.present] == ["local-1", "local-2", "local-3"]
    assert not p.uidl_reset and not p.need_fingerprints


def test_delete_mode_deletes_only_what_has_its_body_committed():
    srv = server_list(3)
    known = known_for(srv[:1]) + known_for(srv[1:2], has_body=False)
    p = plan(srv, known, DELETE, NOW)
    assert [(m.number, k.ref) for m, k in p.delete] == [(1, "local-1")]
    assert [(m.number, k.ref) for m, k in p.bodies] == [(2, "local-2")]
    assert [m.number for m in p.new] == [3]
    assert p.delete_after_download is True  # the backend DELEs 2 and 3 after their commit


def test_keep_days_counts_from_the_download():
    srv = server_list(3)
    known = [KnownMessage("a", "old-1", None, NOW - 10 * DAY), KnownMessage("b", "old-2", None, NOW - 2 * DAY),
             KnownMessage("c", "old-3", None, NOW - 7 * DAY)]
    p = plan(srv, known, Policy("keep", keep_days=7), NOW)
    assert [k.ref for _, k in p.delete] == ["a", "c"]
    assert plan(srv, known, Policy("keep", keep_days=0), NOW).delete_after_download is True
    assert plan(srv, known, Policy("keep", keep_days=7), NOW).delete_after_download is False


def test_policy_refuses_bad_values():
    with pytest.raises(ValueError, match="mode"):
        Policy("drain")
    with pytest.raises(ValueError, match="keep_days"):
        Policy("keep", keep_days=-1)


def test_a_uidl_reset_asks_for_fingerprints_then_remaps_and_downloads_nothing():
    before = server_list(5)
    known = known_for(before)
    after = server_list(5, uidl=lambda i: f"new-{i}")  # a restore: every UIDL changed
    p1 = plan(after, known, KEEP, NOW)
    assert [m.number for m in p1.need_fingerprints] == [1, 2, 3, 4, 5]
    assert not p1.new and not p1.delete  # nothing decided before the fingerprints are in
    p2 = plan(after, known, KEEP, NOW, fingerprints=fps_of(after))
    assert p2.uidl_reset and p2.new == [] and p2.gone == []
    assert [(k.ref, m.uidl) for k, m in p2.remap] == [(f"local-{i}", f"new-{i}") for i in range(1, 6)]
    assert any("UIDL" in n and "5 messages" in n and "0 new" in n for n in p2.notices)


def test_a_uidl_reset_with_new_mail_downloads_only_the_new_one():
    before = server_list(4)
    after = server_list(5, uidl=lambda i: f"new-{i}")
    p = plan(after, known_for(before), KEEP, NOW, fingerprints=fps_of(after))
    assert p.uidl_reset
    assert [m.number for m in p.new] == [5]
    assert len(p.remap) == 4
    assert any("1 new" in n for n in p.notices)


def test_a_uidl_reset_in_delete_mode_deletes_the_recognised_committed_messages():
    before = server_list(3)
    after = server_list(3, uidl=lambda i: f"new-{i}")
    p = plan(after, known_for(before), DELETE, NOW, fingerprints=fps_of(after))
    assert [m.number for m, _ in p.delete] == [1, 2, 3] and p.new == []


def test_duplicates_are_matched_one_to_one():
    # two messages with the same header block and size: two known records, two server messages
    srv = [ServerMessage(1, 50, "x1"), ServerMessage(2, 50, "x2"), ServerMessage(3, 50, "x3")]
    fp = fingerprint(raw(1), 50)
    known = [KnownMessage("a", "y1", fp, NOW), KnownMessage("b", "y2", fp, NOW)]
    p = plan(srv, known, KEEP, NOW, fingerprints={1: fp, 2: fp, 3: fp})
    assert sorted(k.ref for k, _ in p.remap) == ["a", "b"]
    assert [m.number for m in p.new] == [3]  # the third copy is new


def test_delete_mode_with_everything_new_on_the_server_is_not_a_reset():
    # delete mode: the old messages were DELE'd (on_server False), the server holds only new mail
    old = server_list(3)
    known = known_for(old, on_server=False)
    new = server_list(2, uidl=lambda i: f"fresh-{i}")
    p = plan(new, known, DELETE, NOW)
    assert not p.need_fingerprints and [m.number for m in p.new] == [1, 2] and not p.uidl_reset


def test_a_few_unknown_uidls_are_new_mail_not_a_reset():
    srv = server_list(10)
    known = known_for(srv[:9])
    p = plan(srv, known, KEEP, NOW)
    assert not p.need_fingerprints and [m.number for m in p.new] == [10]


def test_unknown_uidls_whose_fingerprints_match_nothing_are_new():
    before = server_list(3)
    after = [ServerMessage(i, 999, f"new-{i}") for i in (1, 2, 3)]  # other sizes: other messages
    p = plan(after, known_for(before), KEEP, NOW, fingerprints={1: "f1", 2: "f2", 3: "f3"})
    assert not p.uidl_reset and [m.number for m in p.new] == [1, 2, 3]
    assert sorted(k.ref for k in p.gone) == ["local-1", "local-2", "local-3"]


def test_no_uidl_falls_back_to_fingerprints_with_a_warning():
    srv = server_list(3, uidl=None)
    known = known_for(srv[:2])  # their uidl is None too
    p1 = plan(srv, known, KEEP, NOW)
    assert p1.no_uidl and [m.number for m in p1.need_fingerprints] == [1, 2, 3]
    assert any("no UIDL" in n for n in p1.notices)
    p2 = plan(srv, known, KEEP, NOW, fingerprints=fps_of(srv))
    assert [m.number for m in p2.new] == [3] and p2.remap == [] and len(p2.present) == 2
    assert not p2.uidl_reset and any("no UIDL" in n for n in p2.notices)


def test_no_uidl_in_delete_mode_deletes_what_is_committed():
    srv = server_list(2, uidl=None)
    p = plan(srv, known_for(srv[:1]), DELETE, NOW, fingerprints=fps_of(srv))
    assert [m.number for m, _ in p.delete] == [1] and [m.number for m in p.new] == [2]


def test_a_repeated_uidl_falls_back_to_fingerprints_for_those_messages():
    srv = [ServerMessage(1, len(raw(1)), "same"), ServerMessage(2, len(raw(2)), "same"),
           ServerMessage(3, len(raw(3)), "u3")]
    p1 = plan(srv, [], KEEP, NOW)
    assert [m.number for m in p1.need_fingerprints] == [1, 2]
    p2 = plan(srv, [], KEEP, NOW, fingerprints=fps_of(srv))
    assert [m.number for m in p2.new] == [1, 2, 3] and any("unique" in n for n in p2.notices)


def test_known_messages_the_server_no_longer_lists_are_gone():
    srv = server_list(3)
    known = known_for(srv)
    p = plan(srv[1:], known, KEEP, NOW)
    assert [k.ref for k in p.gone] == ["local-1"] and p.new == []


def test_empty_server():
    p = plan([], known_for(server_list(2)), KEEP, NOW)
    assert p.new == [] and len(p.gone) == 2 and not p.no_uidl and not p.need_fingerprints


def test_header_block_is_everything_before_the_first_empty_line():
    """Every string of a, CR, LF and ':' up to 7 bytes: the block ends at the first CRLF CRLF or
    LF LF, whichever comes first; none when the message starts with an empty line."""
    def reference(raw: bytes) -> bytes:
        if raw.startswith(b"\r\n") or raw.startswith(b"\n"):
            return b""
        ends = [i for i in (raw.find(b"\r\n\r\n"), raw.find(b"\n\n")) if i >= 0]
        return raw[:min(ends)] if ends else raw

    for n in range(8):
        for parts in itertools.product((b"a", b"\r", b"\n", b":"), repeat=n):
            raw = b"".join(parts)
            assert header_block(raw) == reference(raw), raw
