"""backends/send.py prepare(): any bytes give a message for the outbox or one UsageError line."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from tuimail.backends.send import prepare
from tuimail.errors import UsageError

HEADER_LINE = st.sampled_from([b"From: ", b"To: ", b"Cc: ", b"Bcc: ", b"Subject: ", b"Message-ID: ", b" ", b"X: "])
VALUE = st.binary(max_size=60) | st.sampled_from([
    b"a@example.org", b"\"Doe, J\" <j@x.example>", b"=?utf-8?q?D=C3=B6e?= <d@x.example>", b"<>", b"g: a@b.c;",
    "Jürgen <jürgen@bücher.example>".encode(), b"<<a@b>>", b"a@", b"@b"])


@settings(max_examples=400, deadline=None)
@given(st.lists(st.tuples(HEADER_LINE, VALUE), max_size=8), st.binary(max_size=200))
def test_any_message_is_prepared_or_refused_in_one_line(headers, body):
    raw = b"".join(h + v + b"\n" for h, v in headers) + b"\n" + body
    try:
        p = prepare(raw, "Me <me@example.org>", now=0)
    except UsageError as exc:
        assert "\n" not in str(exc)
        return
    assert p.rcpts and all("@" in r for r in p.rcpts) and "@" in p.mail_from
    assert b"\r\n\r\n" in p.message and (p.message_id is None or p.message_id.startswith("<"))


def test_display_names_with_commas_stay_one_address():
    p = prepare(b"From: me@example.org\nTo: =?utf-8?q?Doe=2C_J=C3=BCrgen?= <j@x.example>, \"Roe, R\" <r@y.example>\n"
                b"Cc: undisclosed-recipients:;\n\nhi\n")
    assert p.rcpts == ("j@x.example", "r@y.example")
