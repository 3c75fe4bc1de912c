"""MIME structure: BODYSTRUCTURE -> Part tree, whole-message parsing, choosing, decoding, limits."""

import base64
import time

import pytest
from imapclient.response_parser import parse_fetch_response, parse_response

from tuimail.mail.part import Part, attachments, choose_text_part, decode_text, decode_transfer
from tuimail.protocol.imap.bodystructure import parse_bodystructure
from tuimail.mail.parse import parse_message

# --------------------------------------------------------------------------- helpers


def shapes(text: bytes):
    """The two shapes imapclient produces for a BODYSTRUCTURE: the response parser's plain
    tuples, and fetch()'s BodyData (children of a multipart gathered into a list)."""
    raw = parse_response([text])[0]
    fetched = parse_fetch_response([b"1 (UID 7 BODYSTRUCTURE " + text + b")"], True, None)
    (item,) = fetched.values()
    return [raw, item[b"BODYSTRUCTURE"]]


def sections(part: Part) -> list[str]:
    return [p.section for p in part.walk()]


def both(text: bytes):
    return pytest.mark.parametrize("data", shapes(text), ids=["tuples", "BodyData"])


RFC3501_SINGLE = b'("TEXT" "PLAIN" ("CHARSET" "US-ASCII") NIL NIL "7BIT" 3028 92)'
RFC3501_MIXED = (
    b'(("TEXT" "PLAIN" ("CHARSET" "US-ASCII") NIL NIL "7BIT" 1152 23)'
    b'("TEXT" "PLAIN" ("CHARSET" "US-ASCII" "NAME" "cc.diff") '
    b'"<960723163407.20117h@cac.washington.edu>" "Compiler diff" "BASE64" 4554 73) "MIXED")'
)
NESTED = (
    b'((("TEXT" "PLAIN" ("CHARSET" "utf-8" "FORMAT" "flowed") NIL NIL "QUOTED-PRINTABLE" 120 4 NIL NIL NIL NIL)'
    b'("TEXT" "HTML" ("CHARSET" "utf-8") NIL NIL "7BIT" 400 10 NIL NIL NIL NIL) "ALTERNATIVE" '
    b'("BOUNDARY" "b2") NIL NIL NIL)'
    b'("APPLICATION" "PDF" ("NAME" "x.pdf") NIL NIL "BASE64" 5000 NIL '
    b'("ATTACHMENT" ("FILENAME*" "utf-8\'\'%E2%82%AC%20report.pdf")) NIL NIL) '
    b'"MIXED" ("BOUNDARY" "b1") NIL NIL NIL)'
)
FORWARDED = (
    b'(("TEXT" "PLAIN" ("CHARSET" "us-ascii") NIL NIL "7BIT" 20 1 NIL NIL NIL NIL)'
    b'("MESSAGE" "RFC822" NIL NIL NIL "7BIT" 900 '
    b'("Mon, 1 Jan 2024 00:00:00 +0000" "inner" (("A" NIL "a" "x")) (("A" NIL "a" "x")) '
    b'(("A" NIL "a" "x")) (("B" NIL "b" "x")) NIL NIL NIL "<i@x>") '
    b'(("TEXT" "PLAIN" ("CHARSET" "utf-8") NIL NIL "7BIT" 10 1 NIL NIL NIL NIL)'
    b'("TEXT" "HTML" ("CHARSET" "utf-8") NIL NIL "7BIT" 30 1 NIL NIL NIL NIL) "ALTERNATIVE" NIL NIL NIL NIL) '
    b'30 NIL ("INLINE" NIL) NIL NIL) "MIXED" NIL NIL NIL NIL)'
)
FORWARDED_SINGLE = (
    b'(("TEXT" "PLAIN" NIL NIL NIL "7BIT" 20 1)'
    b'("MESSAGE" "RFC822" NIL NIL NIL "7BIT" 300 (NIL "s" NIL NIL NIL NIL NIL NIL NIL NIL) '
    b'("TEXT" "PLAIN" ("CHARSET" "utf-8") NIL NIL "BASE64" 10 1) 12) "MIXED")'
)
SIGNED = (
    b'(("TEXT" "PLAIN" ("CHARSET" "utf-8") NIL NIL "7BIT" 50 2)'
    b'("APPLICATION" "PGP-SIGNATURE" ("NAME" "signature.asc") NIL "OpenPGP digital signature" "7BIT" 488 NIL '
    b'("ATTACHMENT" ("FILENAME" "signature.asc")) NIL) "SIGNED" '
    b'("MICALG" "pgp-sha256" "PROTOCOL" "application/pgp-signature" "BOUNDARY" "s") NIL NIL)'
)
ENCRYPTED = (
    b'(("APPLICATION" "PGP-ENCRYPTED" NIL NIL NIL "7BIT" 11)'
    b'("APPLICATION" "OCTET-STREAM" ("NAME" "encrypted.asc") NIL NIL "7BIT" 2000) "ENCRYPTED" '
    b'("PROTOCOL" "application/pgp-encrypted" "BOUNDARY" "e") NIL NIL)'
)
SMIME = b'("APPLICATION" "PKCS7-MIME" ("SMIME-TYPE" "enveloped-data" "NAME" "smime.p7m") NIL NIL "BASE64" 9000 NIL)'
RELATED = (
    b'(("IMAGE" "PNG" NIL "<logo@x>" NIL "BASE64" 300 NIL ("INLINE" NIL) NIL)'
    b'("TEXT" "HTML" ("CHARSET" "utf-8") "<body@x>" NIL "7BIT" 100 3) "RELATED" ("START" "<body@x>") NIL NIL)'
)


# --------------------------------------------------------------------------- BODYSTRUCTURE


@both(RFC3501_SINGLE)
def test_single_part_is_section_1(data):
    root, notes = parse_bodystructure(data)
    assert notes == []
    got = (root.section, root.mimetype, root.charset, root.size, root.lines)
    assert got == ("1", "text/plain", "US-ASCII", 3028, 92)
    assert root.encoding == "7bit" and not root.is_multipart and not root.is_attachment
    assert choose_text_part(root) is root
    assert attachments(root) == []


@both(RFC3501_MIXED)
def test_rfc3501_mixed(data):
    root, notes = parse_bodystructure(data)
    assert notes == []
    assert root.mimetype == "multipart/mixed" and root.is_multipart
    assert sections(root) == ["TEXT", "1", "2"]
    diff = root.children[1]
    assert diff.filename == "cc.diff" and diff.encoding == "base64"
    assert diff.description == "Compiler diff" and diff.content_id.startswith("<960723")
    assert diff.is_attachment  # a text part with a file name and no inline disposition
    assert choose_text_part(root).section == "1"
    assert [p.section for p in attachments(root)] == ["2"]


@both(NESTED)
def test_nested_alternative_with_rfc2231_attachment(data):
    root, notes = parse_bodystructure(data)
    assert notes == []
    assert sections(root) == ["TEXT", "1", "1.1", "1.2", "2"]
    assert root.params["boundary"] == "b1"
    plain, html = root.children[0].children
    assert plain.params["format"] == "flowed" and plain.encoding == "quoted-printable"
    assert choose_text_part(root) is plain
    assert choose_text_part(root, prefer="html") is html
    pdf = root.children[1]
    assert (pdf.disposition, pdf.filename, pdf.mimetype) == ("attachment", "€ report.pdf", "application/pdf")
    assert attachments(root) == [pdf]


@both(FORWARDED)
def test_message_rfc822_children_are_numbered_inside_it(data):
    root, notes = parse_bodystructure(data)
    assert notes == []
    assert sections(root) == ["TEXT", "1", "2", "2.TEXT", "2.1", "2.2"]
    msg = root.children[1]
    assert msg.mimetype == "message/rfc822" and msg.lines == 30 and msg.disposition == "inline"
    assert msg.is_attachment
    assert choose_text_part(root).section == "1"
    assert [p.section for p in attachments(root)] == ["2"]


@both(FORWARDED_SINGLE)
def test_message_rfc822_with_single_part_body(data):
    root, _ = parse_bodystructure(data)
    assert sections(root) == ["TEXT", "1", "2", "2.1"]
    assert root.children[1].children[0].encoding == "base64"


@both(SIGNED)
def test_signed_label_and_text(data):
    root, _ = parse_bodystructure(data)
    assert root.label == "signed (PGP/MIME)"
    assert choose_text_part(root).section == "1"
    assert [p.filename for p in attachments(root)] == ["signature.asc"]


@both(ENCRYPTED)
def test_encrypted_has_no_text_part(data):
    root, _ = parse_bodystructure(data)
    assert root.label == "encrypted (PGP/MIME)"
    assert choose_text_part(root) is None


@both(SMIME)
def test_smime_label(data):
    root, _ = parse_bodystructure(data)
    assert root.label == "encrypted (S/MIME)" and root.section == "1"


@both(RELATED)
def test_related_uses_start_part(data):
    root, _ = parse_bodystructure(data)
    assert choose_text_part(root).section == "2"
    assert [p.section for p in attachments(root)] == ["1"]


@pytest.mark.parametrize("data", [None, b"garbage", (), ((),), (None, None), (b"TEXT",), 42,
                                  ((b"TEXT", b"PLAIN", b"notparams", 5, 6, 7, b"x", b"y"), b"MIXED"),
                                  (b"MESSAGE", b"RFC822", None, None, None, b"7BIT", 1, None, b"notabody", 3),
                                  ([], b"MIXED"), ((b"TEXT", b"PLAIN"), (b"X",), 3, None)])
def test_malformed_structures_never_raise(data):
    root, notes = parse_bodystructure(data)
    assert isinstance(root, Part)
    choose_text_part(root)
    attachments(root)


def test_malformed_node_becomes_octet_stream_with_note():
    root, notes = parse_bodystructure(None)
    assert root.mimetype == "application/octet-stream"
    assert notes and "malformed" in notes[0]


def test_limits_1000_levels_of_nesting():
    leaf = (b"TEXT", b"PLAIN", None, None, None, b"7BIT", 1, 1)
    node = leaf
    for _ in range(1000):
        node = (node, b"MIXED")
    start = time.perf_counter()
    root, notes = parse_bodystructure(node)
    assert time.perf_counter() - start < 3
    assert "message truncated: nesting deeper than 50 levels" in notes
    assert max(p.section.count(".") for p in root.walk()) <= 50


def test_limits_100k_parts():
    leaf = (b"TEXT", b"PLAIN", None, None, None, b"7BIT", 1, 1)
    for data in ((leaf,) * 100_000 + (b"MIXED",), ([leaf] * 100_000, b"MIXED")):
        start = time.perf_counter()
        root, notes = parse_bodystructure(data)
        assert time.perf_counter() - start < 3
        assert "message truncated: more than 5000 parts" in notes
        assert sum(1 for _ in root.walk()) <= 5000


# --------------------------------------------------------------------------- decoding


def test_decode_transfer():
    assert decode_transfer(b"SGVsbG8gd29ybGQ=", "base64") == b"Hello world"
    assert decode_transfer(b"SGVsbG8gd29ybGQ", "BASE64") == b"Hello world"  # missing padding
    assert decode_transfer(b"SGVs\r\nbG8g!!d29y*bGQ=\r\n", "base64;") == b"Hello world"
    assert decode_transfer(b"caf=C3=A9 soft=\r\nbreak", "quoted-printable") == "café softbreak".encode()
    assert decode_transfer(b"bad =ZZ qp", "Quoted-Printable") == b"bad =ZZ qp"
    assert decode_transfer(b"as is", "7bit") == b"as is"
    assert decode_transfer(b"as is", "7-bit") == b"as is"
    assert decode_transfer(b"as is", "x-unknown") == b"as is"
    assert decode_transfer(b"as is", None) == b"as is"
    uu = b"begin 644 a.txt\n+2&5L;&\\@=V]R;&0`\n`\nend\n"
    assert decode_transfer(uu, "x-uuencode") == b"Hello world"
    assert decode_transfer(b"", "base64") == b""


@pytest.mark.parametrize("charset,data,expected", [
    ("X-UNKNOWN", "café".encode(), "café"),
    ("utf8", "café".encode(), "café"),
    ("x-mac-cyrillic", "Привет".encode("mac_cyrillic"), "Привет"),
    ("ks_c_5601-1987", "안녕".encode("cp949"), "안녕"),
    ("iso-8859-8-i", "שלום".encode("iso8859_8"), "שלום"),
    ("windows-1250", "Žluťoučký".encode("cp1250"), "Žluťoučký"),
    ("gb2312", "你好".encode(), "你好"),  # mislabelled UTF-8 (spamscope mail_test_12)
    ("iso-8859-1", b"caf\xe9", "café"),
    (None, b"caf\xe9", "café"),
    ("utf-8", b"caf\xe9", "caf\ufffd"),
    ("rot13", b"abc", "abc"),  # a codec that is not a charset is never used
    ("idna", b"xn--abc", "xn--abc"),
    ('"utf-8"', "é".encode(), "é"),
])
def test_decode_text_lossy(charset, data, expected):
    assert decode_text(data, charset) == expected


# --------------------------------------------------------------------------- whole messages


def _msg(*lines: str) -> bytes:
    return "\r\n".join(lines).encode("utf-8")


ALT = _msg(
    "From: a@b", "Subject: =?utf-8?q?h=C3=A9llo?=", "MIME-Version: 1.0",
    'Content-Type: multipart/mixed; boundary="outer"', "",
    "preamble", "--outer",
    "Content-Type: multipart/alternative; boundary=inner", "",
    "--inner", "Content-Type: text/plain; charset=utf-8", "Content-Transfer-Encoding: quoted-printable", "",
    "caf=C3=A9 plain", "--inner", "Content-Type: text/html; charset=utf-8", "",
    "<p>caf\u00e9 <b>html</b></p>", "--inner--", "",
    "--outer", "Content-Type: message/rfc822", "",
    "Subject: inner", 'Content-Type: multipart/alternative; boundary="x"', "",
    "--x", "Content-Type: text/plain", "", "inner plain", "--x",
    "Content-Type: text/html", "", "<p>inner html</p>", "--x--", "",
    "--outer", "Content-Type: application/octet-stream",
    "Content-Disposition: attachment; filename*=utf-8''..%2F..%2F.bashrc",
    "Content-Transfer-Encoding: base64", "", base64.b64encode(b"rm -rf ~").decode(),
    "--outer--", "epilogue",
)


def test_parse_message_structure_sections_and_text():
    m = parse_message(ALT)
    assert m.headers["subject"] == "héllo"
    assert [p.section for p in m.root.walk()] == ["TEXT", "1", "1.1", "1.2", "2", "2.TEXT", "2.1", "2.2", "3"]
    assert m.text == "café plain"
    assert m.part_bytes("1.1") == "café plain".encode()
    assert m.part_bytes("2.1") == b"inner plain"
    assert m.part_bytes("3") == b"rm -rf ~"
    assert m.part_bytes("nope") == b""
    assert [p.section for p in m.attachments] == ["2", "3"]
    assert m.root.find("3").filename == "../../.bashrc"  # decoded, not yet made safe
    assert m.notes == []


def test_parse_single_part_and_headers_only():
    m = parse_message(b"Subject: x\r\nContent-Type: text/plain\r\n\r\nbody\r\n")
    assert m.root.section == "1" and m.text.strip() == "body"
    m = parse_message(b"Subject: only headers\r\n")
    assert m.text == "(empty message)"
    m = parse_message(b"")
    assert isinstance(m.text, str) and m.text


def test_parse_message_sanitises_text():
    m = parse_message(b"Content-Type: text/plain\r\n\r\nhi\x1b]0;pwn\x07 there\x1b[2J\r\n")
    assert m.text.strip() == "hi there"
    m = parse_message(b"Content-Type: text/html\r\n\r\n<p>a&#27;[2Jb &#x202e;c</p>")
    assert "\x1b" not in m.text and "\u202e" not in m.text


def test_no_text_part_says_so():
    m = parse_message(_msg("Content-Type: multipart/mixed; boundary=b", "", "--b",
                           "Content-Type: image/png", "Content-Transfer-Encoding: base64", "", "iVBORw0K",
                           "--b--"))
    assert m.text == "(no text part; 1 attachment)"


def test_encrypted_message_says_so():
    m = parse_message(_msg('Content-Type: multipart/encrypted; protocol="application/pgp-encrypted"; boundary=b',
                           "", "--b", "Content-Type: application/pgp-encrypted", "", "Version: 1",
                           "--b", "Content-Type: application/octet-stream", "", "-----BEGIN PGP MESSAGE-----",
                           "--b--"))
    assert "encrypted" in m.text


def test_unknown_charset_and_missing_boundary_degrade():
    m = parse_message(b"Content-Type: text/plain; charset=X-UNKNOWN\r\n\r\ncaf\xe9\r\n")
    assert m.text.strip() == "café"
    m = parse_message(b"Content-Type: multipart/mixed\r\n\r\njust text\r\n")
    assert "just text" in m.text and m.notes


def test_mbox_from_line_and_lf_only():
    m = parse_message(b"From someone Mon Jan  1 00:00:00 2024\nSubject: s\n\nbody\n")
    assert m.headers["subject"] == "s" and m.text.strip() == "body"


def test_digest_children_default_to_message_rfc822():
    m = parse_message(_msg("Content-Type: multipart/digest; boundary=d", "", "--d", "",
                           "Subject: one", "", "first", "--d--"))
    assert m.root.children[0].mimetype == "message/rfc822"
    assert m.root.children[0].children[0].section == "1.1"


def _nested(levels: int) -> bytes:
    head, tail = [], []
    for i in range(levels):
        head.append(f"Content-Type: multipart/mixed; boundary=b{i}\r\n\r\n--b{i}\r\n")
        tail.append(f"\r\n--b{i}--\r\n")
    return ("".join(head) + "Content-Type: text/plain\r\n\r\ndeep\r\n" + "".join(reversed(tail))).encode()


def test_parse_message_1000_levels_bounded():
    start = time.perf_counter()
    m = parse_message(_nested(1000))
    assert time.perf_counter() - start < 3
    assert "message truncated: nesting deeper than 50 levels" in m.notes
    assert m.text.startswith("[message truncated: nesting deeper than 50 levels]")


def test_parse_message_100k_parts_bounded():
    parts = [b"Content-Type: multipart/mixed; boundary=XX\r\n\r\n"]
    parts += [b"--XX\r\nContent-Type: text/plain\r\n\r\npart %d\r\n" % i for i in range(100_000)]
    parts.append(b"--XX--\r\n")
    start = time.perf_counter()
    m = parse_message(b"".join(parts))
    assert time.perf_counter() - start < 3
    assert "message truncated: more than 5000 parts" in m.notes
    assert sum(1 for _ in m.root.walk()) <= 5000
    assert "part 0" in m.text


@both(b'(("TEXT" "PLAIN" ("CHARSET" "utf-8") NIL NIL "7BIT" 2 1)'
      b'("TEXT" "HTML" ("CHARSET" "utf-8") NIL NIL "7BIT" 300 4) "ALTERNATIVE")')
def test_empty_plain_alternative_yields_html(data):
    root, _ = parse_bodystructure(data)
    assert choose_text_part(root).section == "2"


# --------------------------------------------------------------------------- properties

from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from .test_sanitize import assert_clean  # noqa: E402

_mime_bits = st.lists(st.sampled_from([
    b"Content-Type: multipart/mixed; boundary=b\r\n", b"Content-Type: text/html\r\n",
    b"Content-Type: message/rfc822\r\n", b"Content-Transfer-Encoding: base64\r\n",
    b"Content-Transfer-Encoding: quoted-printable\r\n", b"\r\n", b"--b\r\n", b"--b--\r\n",
    b"<p>x&#27;[2J</p>", b"=1B=5B", b"\x1b]0;t\x07", b"\xff\xfe", b"Subject: =?utf-8?q?=1B?=\r\n",
    b"Content-Disposition: attachment; filename*0*=utf-8''%E2; filename*1*=%82%AC\r\n",
]), max_size=40).map(b"".join)


@settings(max_examples=300, deadline=None)
@given(st.one_of(_mime_bits, st.binary(max_size=300)))
def test_property_parse_message_never_raises_and_is_clean(raw):
    m = parse_message(raw)
    assert isinstance(m.text, str) and m.text
    assert_clean(m.text)
    for part in m.root.walk():
        m.part_bytes(part.section)


_bs_atom = st.one_of(st.none(), st.integers(-5, 10**6), st.sampled_from(
    [b"TEXT", b"PLAIN", b"HTML", b"MESSAGE", b"RFC822", b"MIXED", b"BASE64", b"ATTACHMENT", b"NAME", b"x"]))
_bs = st.recursive(_bs_atom, lambda kids: st.lists(kids, max_size=12).map(tuple), max_leaves=60)


@settings(max_examples=400, deadline=None)
@given(_bs)
def test_property_parse_bodystructure_never_raises(data):
    root, notes = parse_bodystructure(data)
    choose_text_part(root, "html")
    attachments(root)
    assert all(isinstance(n, str) for n in notes)
