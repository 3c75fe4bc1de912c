"""Display names as RFC 5322 reads them (issue 11.7): quoting, escapes and comments out."""

from __future__ import annotations

from email import message_from_string, policy

import pytest

from tuimail.mail.addresses import format_address_list, parse_addresses, short_from
from tuimail.ui.rows import sender_name

CASES = [  # RFC 5322 appendix A and what mutt users meet
    ('Pete(A wonderful \\) chap) <pete(his account)@silly.test(his host)>', [("Pete", "pete@silly.test")]),
    ('"Joe Q. Public" <john.q.public@example.com>', [("Joe Q. Public", "john.q.public@example.com")]),
    ('"Giant; \\"Big\\" Box" <sysservices@example.net>', [('Giant; "Big" Box', "sysservices@example.net")]),
    ("\"Hannah O'Brien\" <hannah@example.org>", [("Hannah O'Brien", "hannah@example.org")]),
    ('Mary Smith <@node.test:mary@example.net>', [("Mary Smith", "mary@example.net")]),
    ('"Mary" (the boss) <m@x.test>', [("Mary", "m@x.test")]),
    ("jdoe@one.test (John Doe)", [("John Doe", "jdoe@one.test")]),
    ("A Group:Ed Jones <c@a.test>,joe@where.test,John <jdoe@one.test>;",
     [("Ed Jones", "c@a.test"), ("", "joe@where.test"), ("John", "jdoe@one.test")]),
    ("undisclosed-recipients:;", [("undisclosed-recipients", "")]),
    ('"Smith, John" <j@x.test>, Who? <one@y.test>', [("Smith, John", "j@x.test"), ("Who?", "one@y.test")]),
    ('"=?utf-8?q?J=C3=B6rg?=" <jo@x.test>', [("Jörg", "jo@x.test")]),
]


@pytest.mark.parametrize("value, expected", CASES)
def test_parse_addresses(value, expected):
    assert parse_addresses(value) == expected


def test_agrees_with_headerregistry_on_the_display_name():
    for value, expected in CASES[:6]:
        parsed = message_from_string(f"From: {value}\n\n", policy=policy.default)["from"].addresses[0]
        assert (parsed.display_name, parsed.addr_spec) == expected[0]


def test_list_column_and_reader_form():
    assert sender_name(CASES[0][0]) == "Pete"
    assert sender_name('"Giant; \\"Big\\" Box" <s@x>') == 'Giant; "Big" Box'
    assert sender_name("Pay\u200bPal <x@evil.test>") == "Pay<U+200B>Pal"  # still visible
    assert sender_name("<bare@x.test>") == "bare@x.test"
    assert short_from("jdoe@one.test (John Doe)") == "John Doe"
    assert format_address_list(CASES[0][0] + ", " + CASES[2][0]) == \
        'Pete <pete@silly.test>, Giant; "Big" Box <sysservices@example.net>'


def test_garbage_is_bounded_and_never_raises():
    for value in ['"unterminated <a@b>', "<<<@>>>", "(((((", "\\", ",,,", ":" * 5000, "(" * 20000 + "x",
                  '"' * 10001, "<" * 30000]:
        assert isinstance(parse_addresses(value), list)
        assert isinstance(short_from(value), str)
