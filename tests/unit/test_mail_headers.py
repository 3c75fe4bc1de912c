"""Header decoding on the header-sync hot path: tolerant, fast, never raising."""

import base64
import email
import email.policy
import email.utils
from email.header import decode_header, make_header

from hypothesis import given, settings
from hypothesis import strategies as st

from tuimail.demo.generate import generate
from tuimail.mail.addresses import format_address_list, parse_addresses, short_from
from tuimail.mail.headers import (
    HEADER_FIELDS,
    decode_words,
    first_msgid,
    guess_has_attachment,
    parse_date,
    parse_header_block,
    parse_msgids,
    summarize,
)
from tuimail.mail.sanitize import sanitize_line

TYPICAL = (
    b"From: Alice Example <alice@example.org>\r\n"
    b"To: Bob <bob@example.com>, carol@example.net\r\n"
    b"Cc: \r\n"
    b"Subject: Re: the quarterly numbers for the\r\n next meeting\r\n"
    b"Date: Tue, 1 Jul 2003 10:52:37 +0200\r\n"
    b"Message-ID: <20030701105237.GA1234@mail.example.org>\r\n"
    b"In-Reply-To: <20030630080000.GB999@mail.example.com>\r\n"
    b"References: <20030629080000.GA555@mail.example.com>\r\n"
    b" <20030630080000.GB999@mail.example.com>\r\n"
    b"Content-Type: text/plain; charset=utf-8\r\n\r\n"
)
ENCODED = TYPICAL.replace(b"Alice Example", b"=?utf-8?q?Al=C3=AFce_Ex=C3=A4mple?=").replace(
    b"Re: the quarterly numbers for the",
    b"Re: =?utf-8?b?dGhlIHF1YXJ0ZXJseSBudW1iZXJz?= for =?iso-8859-1?q?th=E9?=",
)


def test_header_fields_constant():
    assert HEADER_FIELDS == ("FROM", "TO", "CC", "SUBJECT", "DATE", "MESSAGE-ID", "IN-REPLY-TO",
                             "REFERENCES", "CONTENT-TYPE")


# --------------------------------------------------------------------------- block


def test_block_unfolds_lowercases_and_keeps_first_occurrence():
    h = parse_header_block(TYPICAL + b"")
    assert h["subject"] == "Re: the quarterly numbers for the next meeting"
    assert h["references"].count("<") == 2
    assert h["cc"] == ""
    assert set(h) == {"from", "to", "cc", "subject", "date", "message-id", "in-reply-to",
                      "references", "content-type"}
    assert parse_header_block(b"Subject: one\r\nSUBJECT: two\r\n")["subject"] == "one"


def test_block_stops_at_blank_line_and_skips_garbage():
    h = parse_header_block(b"From nobody Mon Jan  1 00:00:00 2020\nSubject: x\nno colon here\n"
                           b"\tcontinued garbage\n\nFrom: body@spoof\n")
    assert h == {"subject": "x"}
    assert parse_header_block(b"\r\n") == {}
    assert parse_header_block(b"") == {}


def test_block_8bit_bytes_utf8_and_latin1_per_line():
    h = parse_header_block(b"Subject: \xc3\xa9t\xc3\xa9\r\nFrom: Ren\xe9 <r@x>\r\n")
    assert h["subject"] == "été"
    assert h["from"] == "René <r@x>"


def test_block_lf_only_and_tab_folding():
    h = parse_header_block(b"Subject: a\n\tb\nTo: x@y\n")
    assert h == {"subject": "a b", "to": "x@y"}


# --------------------------------------------------------------------------- RFC 2047


def test_decode_words_joins_adjacent_words_and_keeps_other_text():
    assert decode_words("=?utf-8?q?a?= =?utf-8?q?b?=") == "ab"
    assert decode_words("=?utf-8?q?a?=\r\n =?utf-8?q?b?=") == "ab"
    assert decode_words("x =?utf-8?q?a?= y") == "x a y"
    assert decode_words("=?ISO-8859-1?Q?caf=E9_cr=E8me?=") == "café crème"
    assert decode_words("=?utf-8?B?SGVsbG8=?= world") == "Hello world"
    assert decode_words("plain") == "plain"
    assert decode_words("") == ""


def test_decode_words_multibyte_character_split_across_words():
    data = "日本語".encode()
    a = base64.b64encode(data[:4]).decode()
    b = base64.b64encode(data[4:]).decode()
    assert decode_words(f"=?utf-8?B?{a}?= =?utf-8?B?{b}?=") == "日本語"


def test_decode_words_is_lossy_never_raises():
    assert decode_words("=?x-unknown?q?caf=C3=A9?=") == "café"
    assert decode_words("=?bogus-charset?q?caf=E9?=") == "café"
    assert decode_words("=?utf-8?B?SGVsbG8?=") == "Hello"  # missing padding
    assert decode_words("=?utf-8?B?!!!SGVs*bG8=?=") == "Hello"  # garbage in base64
    assert isinstance(decode_words("=?utf-8?B?@?="), str)
    assert decode_words("=?utf-8*en?q?lang?=") == "lang"  # RFC 2231 language tag
    assert decode_words("=?ks_c_5601-1987?B?vsiz58fPvLy/5A==?=") == "안녕하세요"
    assert decode_words("=?iso-2022-jp?B?GyRCJEYkOSRIGyhC?=") == "てすと"


def test_decode_words_result_is_not_sanitised_but_sanitize_line_cleans_it():
    value = decode_words("=?utf-8?q?a=1B]0;x=07b=0Ac?=")
    assert "\x1b" in value  # the decoder keeps data; display code sanitises
    assert sanitize_line(value) == "ab c"


def test_address_header_quotes_decoded_specials():
    h = parse_header_block(b"From: =?utf-8?q?Smith=2C_John?= <j@x>\r\n")
    assert parse_addresses(h["from"]) == [("Smith, John", "j@x")]
    h = parse_header_block(b'From: "=?utf-8?q?Smith=2C_John?=" <j@x>\r\n')
    assert parse_addresses(h["from"]) == [("Smith, John", "j@x")]


# --------------------------------------------------------------------------- dates


def test_parse_date_common_and_odd_forms():
    assert parse_date("Tue, 1 Jul 2003 10:52:37 +0200") == 1057049557
    assert parse_date("1 Jul 2003 10:52:37 -0000") == 1057056757
    assert parse_date("Fri, 21 Nov 1997 09:55:06 -0600") == 880127706
    assert parse_date("Tue, 1 Jul 2003 10:52 +0200") == 1057049520  # no seconds
    assert parse_date("Tue, 01 Jul 03 10:52:37 EST") == 1057074757  # 2-digit year, zone name
    assert parse_date("Tue, 1 July 2003 10:52:37 +0200 (CEST)") == 1057049557
    assert parse_date("Sat, 1 Jan 103 10:00:00 +0000") == 1041415200  # Y2K-bug year


def test_parse_date_garbage_and_clamping():
    assert parse_date(None) is None
    assert parse_date("") is None
    assert parse_date("garbage") is None
    assert parse_date("Tue, 1 Jul 2003 1a:52:37 +0200") is None
    assert parse_date("Wed, 1 Jan 99999 00:00:00 +0000") == 253402300799
    assert parse_date("Thu, 13 Feb 1969 23:32:00 -0330") == 0


# --------------------------------------------------------------------------- addresses


def test_addresses_display_and_short_from():
    value = '"Doe, Jane" <jane@x>, =?utf-8?b?SsO2cmc=?= <jo@x>, bare@y'
    assert parse_addresses(value) == [("Doe, Jane", "jane@x"), ("Jörg", "jo@x"), ("", "bare@y")]
    assert format_address_list(value) == "Doe, Jane <jane@x>, Jörg <jo@x>, bare@y"
    assert short_from(value) == "Doe, Jane"
    assert short_from("bare@y") == "bare@y"
    assert short_from("'Single Quoted' <s@q>") == "Single Quoted"
    assert short_from(None) == ""
    assert parse_addresses(None) == []
    assert parse_addresses("undisclosed-recipients:;") == [("undisclosed-recipients:;", "")] or \
        isinstance(parse_addresses("undisclosed-recipients:;"), list)


def test_addresses_tolerate_garbage():
    for value in ['<<<@>>>', '"unterminated <a@b>', "a@b@c", ",,,", "\x00", "=?utf-8?q?\x1b?= <a@b>"]:
        assert isinstance(parse_addresses(value), list)
        assert isinstance(format_address_list(value), str)
        assert isinstance(short_from(value), str)


# --------------------------------------------------------------------------- message-ids


def test_msgids_in_order_and_tolerant():
    assert parse_msgids("<a@b> <c@d>") == ["<a@b>", "<c@d>"]
    assert parse_msgids("<a@b>,<c@d>\t(comment) <e@f>") == ["<a@b>", "<c@d>", "<e@f>"]
    assert parse_msgids("< a@b >") == ["<a@b>"]
    assert parse_msgids("a@b c@d") == ["<a@b>", "<c@d>"]  # no brackets at all
    assert parse_msgids("") == []
    assert parse_msgids(None) == []
    assert parse_msgids("garbage") == []
    assert first_msgid("<x@y>") == "<x@y>"
    assert first_msgid("  <x@y> trailing") == "<x@y>"
    assert first_msgid("x@y") == "<x@y>"
    assert first_msgid("") is None
    assert first_msgid("nothing") is None


def test_msgids_long_list_keeps_root_and_tail():
    ids = parse_msgids(" ".join(f"<{i}@x>" for i in range(1000)))
    assert len(ids) == 200
    assert ids[0] == "<0@x>" and ids[-1] == "<999@x>" and ids[1] == "<801@x>"


# --------------------------------------------------------------------------- attachments


def test_guess_has_attachment():
    yes = ["multipart/mixed; boundary=x", "Multipart/Mixed", "application/pdf", "image/png",
           "audio/ogg", "video/mp4", "message/rfc822"]
    no = ["text/plain; charset=utf-8", "text/html", "multipart/alternative; boundary=y",
          "multipart/related; boundary=z", None, "", "garbage"]
    assert all(guess_has_attachment(v) for v in yes)
    assert not any(guess_has_attachment(v) for v in no)


# --------------------------------------------------------------------------- summarize


def test_summarize_typical():
    s = summarize(TYPICAL)
    assert s == {
        "from_": "Alice Example <alice@example.org>",
        "to": "Bob <bob@example.com>, carol@example.net",
        "cc": "",
        "subject": "Re: the quarterly numbers for the next meeting",
        "date": 1057049557,
        "message_id": "<20030701105237.GA1234@mail.example.org>",
        "in_reply_to": "<20030630080000.GB999@mail.example.com>",
        "references": "<20030629080000.GA555@mail.example.com> <20030630080000.GB999@mail.example.com>",
        "has_attachment": False,
    }
    e = summarize(ENCODED)
    assert e["from_"] == "Alïce Exämple <alice@example.org>"
    assert e["subject"] == "Re: the quarterly numbers for thé next meeting"


def test_summarize_empty_and_missing():
    s = summarize(b"")
    assert s["subject"] == "" and s["date"] is None and s["message_id"] is None
    assert s["references"] == "" and s["in_reply_to"] is None and s["has_attachment"] is False


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=600))
def test_property_summarize_never_raises_on_bytes(raw):
    s = summarize(raw)
    assert isinstance(s["subject"], str) and isinstance(s["references"], str)
    assert s["date"] is None or isinstance(s["date"], int)


_header_text = st.lists(
    st.sampled_from(list("=?QqBb_:;<>@,\"' \t\r\nabcXYZ019+/-") +
                    ["utf-8", "=?", "?=", "\x1b", "é", "=?utf-8?q?", "=?utf-8?B?", "?= "]),
    max_size=60,
).map("".join)


@settings(max_examples=300, deadline=None)
@given(_header_text, _header_text)
def test_property_header_functions_never_raise(subject, addr):
    raw = f"Subject: {subject}\r\nFrom: {addr}\r\nDate: {subject}\r\nReferences: {addr}\r\n".encode(
        "utf-8", "surrogatepass")
    s = summarize(raw)
    sanitize_line(s["subject"])
    parse_addresses(addr)
    format_address_list(addr)
    short_from(addr)
    decode_words(subject)
    parse_date(subject)


def test_summarize_agrees_with_email_compat32():
    """The same fields as the stdlib's parser, decoded (its speed against compat32 is a bench
    figure: tests/bench/header_speed.py, in `make bench`'s search section)."""

    def decoded(v) -> str:
        return "" if v is None else str(make_header(decode_header(" ".join(str(v).split()))))

    blocks = [TYPICAL, ENCODED] + [m.raw.partition(b"\r\n\r\n")[0] + b"\r\n\r\n" for m in generate(200, seed=3)]
    for raw in blocks:
        m = email.message_from_bytes(raw, policy=email.policy.compat32)
        date = m.get("date")
        theirs = {"from_": decoded(m.get("from")), "to": decoded(m.get("to")), "cc": decoded(m.get("cc")),
                  "subject": decoded(m.get("subject")), "message_id": m.get("message-id"),
                  "in_reply_to": m.get("in-reply-to"), "references": " ".join((m.get("references") or "").split()),
                  "date": int(email.utils.parsedate_to_datetime(date).timestamp()) if date else None}
        ours = summarize(raw)
        assert {k: ours[k] for k in theirs} == theirs, raw
