"""Fuzz targets (issue 5, item 8), hypothesis only: the response reader and tokenizer, the header
decoder, BODYSTRUCTURE and whole-message parsing, HTML rendering. Nothing may raise except the
documented ProtocolError (and NetworkError when the input ends), and every string that goes to the
screen is free of forbidden characters after the sanitiser.

Plus the shared corpus and the generated hostile messages through the real reader path (Dovecot,
sync, `tuimail read`), as the widgets receive them.

TUIMAIL_FUZZ=1 (make fuzz) runs 10x the examples.
"""

from __future__ import annotations

import os
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tuimail.errors import NetworkError, ProtocolError
from tuimail.mail.addresses import format_address_list, short_from
from tuimail.mail.headers import parse_header_block, summarize
from tuimail.mail.part import attachments, choose_text_part
from tuimail.protocol.imap.bodystructure import parse_bodystructure
from tuimail.mail.parse import parse_message
from tuimail.mail.render import html_to_text, render_part_text
from tuimail.mail.sanitize import sanitize, sanitize_line, sanitize_strict
from tuimail.protocol.imap import uidset, wire
from tuimail.protocol.imap import responses
from tests.unit.test_sanitize import assert_clean

FUZZ = os.environ.get("TUIMAIL_FUZZ") == "1"
N = 10 if FUZZ else 1
fuzz_settings = settings(max_examples=300 * N, deadline=None, derandomize=not FUZZ,
                         suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])

# bytes that matter to the parsers, mixed with anything
IMAP_BYTES = st.lists(st.one_of(
    st.sampled_from([b"(", b")", b"{", b"}", b"{5}\r\n", b"{0}\r\n", b"{99999999999}\r\n", b"\r\n", b"\"", b"\\",
                     b"[", b"]", b"NIL", b" ", b"* ", b"T1 OK ", b"FETCH", b"UID 1", b"BODY[]", b"\x00", b"\x1b",
                     b"12345678901234567890", b"+ ",
                     b"* 1 FETCH (UID 7 FLAGS (\\Seen) RFC822.SIZE 3 BODY[HEADER.FIELDS (FROM)] {3}\r\nabc)\r\n"]),
    st.binary(max_size=20)), max_size=40).map(b"".join)


class _FakeSock:
    def __init__(self, data: bytes, step: int):
        self.data, self.step = data, max(1, step)

    def recv(self, n):
        chunk, self.data = self.data[:min(n, self.step)], self.data[min(n, self.step):]
        return chunk


@fuzz_settings
@given(IMAP_BYTES, st.integers(1, 64))
def test_fuzz_wire_reader_only_raises_documented_errors(data, step):
    r = wire.ResponseReader(_FakeSock(data, step), max_literal=1 << 16, max_line=1 << 12)
    for _ in range(200):
        try:
            resp = r.read_response()
        except (ProtocolError, NetworkError):
            return
        assert isinstance(resp, list) and len(resp) % 2 == 1
        try:
            toks = wire.tokenize(resp)
        except ProtocolError:
            continue
        assert isinstance(toks, list)
        wire.pairs(toks)
        wire.resp_code(resp[0])


@fuzz_settings
@given(st.lists(st.binary(max_size=60), min_size=1, max_size=7).filter(lambda c: len(c) % 2 == 1))
def test_fuzz_tokenize_arbitrary_chunks(chunks):
    try:
        toks = wire.tokenize(chunks)
    except ProtocolError:
        return
    stack = [toks]
    while stack:  # only bytes, ints, None and tuples come out
        for t in stack.pop():
            if isinstance(t, (tuple, list)):
                stack.append(t)
            else:
                assert t is None or isinstance(t, (bytes, int))


@fuzz_settings
@given(IMAP_BYTES, st.integers(1, 64))
def test_fuzz_header_fetch_fast_path(data, step):
    r = wire.ResponseReader(_FakeSock(data, step), max_literal=1 << 16, max_line=1 << 12)
    out: list = []
    try:
        responses.scan_header_fetches(r, out)
    except (ProtocolError, NetworkError):
        pass
    for item in out:
        assert 0 <= item.uid < 1 << 63 and isinstance(item.header, bytes)


@fuzz_settings
@given(st.one_of(st.binary(max_size=40), st.text(alphabet="0123456789:*,x -", max_size=40)))
def test_fuzz_uidset_parse_raises_only_valueerror(s):
    try:
        out = uidset.parse(s, limit=10_000)
    except ValueError:
        return
    assert all(isinstance(u, int) and 0 <= u < 1 << 63 for u in out)


HEADER_NAMES = st.sampled_from([b"From", b"To", b"Cc", b"Subject", b"Date", b"Message-ID", b"References",
                                b"In-Reply-To", b"Content-Type", b"X-Junk", b"subject", b"FROM"])
HEADER_VALUES = st.lists(st.one_of(
    st.sampled_from([b"=?utf-8?B?G10wO3B3bmVkBw==?=", b"=?utf-8?Q?a=1Bb=0D=0Ac?=", b"=?x-unknown?B?SGk=?=",
                     b"=?utf-8?B?!!?=", b"=?", b"?=", b"<a@b>", b"\"Name\" <x@y>", b"\r\n\t", b"\r\n ", b"\x1b[2J",
                     b"\xc2\x9b", b"\xe2\x80\xae", b"\x00", b"\xff", b",", b";", b"multipart/mixed; boundary=x",
                     b"Mon, 01 Jan 2024 10:00:00 +0000", b"99 Foo 99999 99:99:99 +9999"]),
    st.binary(max_size=15)), max_size=12).map(b"".join)
HEADER_BLOCKS = st.one_of(
    st.lists(st.tuples(HEADER_NAMES, HEADER_VALUES), max_size=10).map(
        lambda hs: b"".join(n + b": " + v + b"\r\n" for n, v in hs) + b"\r\n"),
    st.binary(max_size=300))


@fuzz_settings
@given(HEADER_BLOCKS)
def test_fuzz_header_summary_never_raises_and_sanitises_clean(block):
    h = parse_header_block(block)
    assert all(isinstance(k, str) and isinstance(v, str) for k, v in h.items())
    s = summarize(block)
    for key in ("from_", "to", "cc", "subject", "references"):
        assert_clean(sanitize_line(s[key]))
    assert_clean(sanitize_line(format_address_list(s["to"])))
    assert_clean(sanitize_line(short_from(s["from_"])))
    assert s["date"] is None or isinstance(s["date"], int)
    for v in h.values():
        assert_clean(sanitize(v))
        assert_clean(sanitize_strict(v))


ATOMS = st.one_of(st.none(), st.integers(-5, 1 << 40), st.binary(max_size=12),
                  st.sampled_from([b"text", b"plain", b"html", b"multipart", b"mixed", b"alternative", b"message",
                                   b"rfc822", b"base64", b"quoted-printable", b"attachment", b"filename", b"name",
                                   b"charset", b"utf-8", b"x-unknown", b"../../.bashrc", b"a\x1b]0;x\x07b",
                                   b"filename*", b"utf-8''%1B%5B2J", b"\xe2\x80\xae"]))
TREES = st.recursive(ATOMS, lambda kids: st.one_of(st.lists(kids, max_size=12).map(tuple),
                                                   st.lists(kids, max_size=12)), max_leaves=120)


@fuzz_settings
@given(TREES)
def test_fuzz_parse_bodystructure_on_random_trees(tree):
    root, notes = parse_bodystructure(tree)
    assert all(isinstance(n, str) for n in notes)
    parts = list(root.walk())
    assert len(parts) <= 5001
    for p in parts:
        assert_clean(sanitize_strict(p.filename or ""))
        assert_clean(p.mimetype)
    choose_text_part(root)
    attachments(root)


def _entity(draw, depth):
    kind = draw(st.sampled_from(["text", "html", "multi", "rfc822", "junk"] if depth < 4 else ["text", "html", "junk"]))
    cte = draw(st.sampled_from(["7bit", "base64", "quoted-printable", "x-bogus", "8bit"]))
    cs = draw(st.sampled_from(["utf-8", "x-unknown", "iso-8859-1", "utf-7", "gb2312", ""]))
    body = draw(st.one_of(st.binary(max_size=80), st.sampled_from(
        [b"=1B]0;x=07", b"\x1b[2J", b"&#27;[31m", b"\xc2\x9b", b"=ZZ=\r\n", b"QUJD\r\n!!", b"<a href='x'>y</a>"])))
    if kind == "multi":
        b = draw(st.sampled_from(["b1", "b2", "", "a" * 250, "x y"]))
        kids = [_entity(draw, depth + 1) for _ in range(draw(st.integers(0, 4)))]
        inner = b"".join(b"--" + b.encode() + b"\r\n" + k + b"\r\n" for k in kids)
        if draw(st.booleans()):
            inner += b"--" + b.encode() + b"--\r\n"
        return (f'Content-Type: multipart/{draw(st.sampled_from(["mixed", "alternative", "digest"]))};'
                f' boundary="{b}"\r\n\r\n').encode() + inner
    if kind == "rfc822":
        return b"Content-Type: message/rfc822\r\n\r\nSubject: inner\r\n" + _entity(draw, depth + 1)
    if kind == "junk":
        return body
    sub = "html" if kind == "html" else "plain"
    name = draw(st.sampled_from(["", "; name=\"../../x\"", "; name*=utf-8''%1B%5B2J"]))
    return (f"Content-Type: text/{sub}; charset={cs}{name}\r\nContent-Transfer-Encoding: {cte}\r\n\r\n").encode() + body


@st.composite
def mime_messages(draw):
    head = draw(HEADER_BLOCKS)[:-2] if draw(st.booleans()) else b"Subject: x\r\n"
    return head + b"MIME-Version: 1.0\r\n" + _entity(draw, 0)


@fuzz_settings
@given(st.one_of(mime_messages(), st.binary(max_size=400)))
def test_fuzz_parse_message_on_mime_ish_bytes(raw):
    msg = parse_message(raw)
    assert isinstance(msg.text, str)
    assert_clean(msg.text)
    for link in msg.links:
        assert_clean(link)
    for p in msg.attachments:
        assert_clean(sanitize_strict(p.filename or ""))
        msg.part_bytes(p.section)
    for p in msg.root.walk():
        text, links = render_part_text(msg.part_raw(p.section), p)
        assert_clean(text)


@fuzz_settings
@given(st.lists(st.one_of(st.sampled_from(
    ["<a href='", "'>", "</a>", "&#27;", "&#x9b;", "&#0;", "&#127;", "&#x202e;", "<img src=x alt='", "<p>", "<br>",
     "<table><tr><td>", "<script>", "</script>", "<!--", "-->", "<![CDATA[", "&", ";", "\x1b", "\u009b", "<", ">"]),
    st.text(max_size=10)), max_size=40).map("".join))
def test_fuzz_html_to_text_is_clean(markup):
    text, links = html_to_text(markup)
    assert_clean(text)
    for link in links:
        assert_clean(link)


# --------------------------------------------------------------------------- corpus through the reader

CORPUS = Path(__file__).resolve().parents[1] / "data" / "corpus"
NOT_MESSAGES = {"LICENSE", "MIT-LICENSE", "LICENSE.txt", "NOTICE.txt", "SOURCES.md"}
CORPUS_FILES = sorted(p for p in CORPUS.rglob("*") if p.is_file() and p.name not in NOT_MESSAGES
                      and not p.name.startswith("."))


def test_fuzz_corpus_and_hostile_messages_through_dovecot_and_the_reader(tuimail_env, mailuser, cli):
    """Every corpus file and every generated hostile message: delivered, synced, listed and read
    (the MessageContent the widgets get): exit 0 and clean output for each."""
    from tuimail.demo.generate import hostile_messages

    assert len(CORPUS_FILES) == 167
    raws = [p.read_bytes() for p in CORPUS_FILES] + [m.raw for m in hostile_messages()]
    mailuser.deliver_many("INBOX", [(raw, "") for raw in raws])
    cli("sync")
    rows = cli.json("list", "INBOX", "--limit", "0")
    assert len(rows) == len(raws)
    assert_clean(cli("list", "INBOX", "--limit", "0"))
    for row in rows:
        out = cli("read", "INBOX", str(row["uid"]))
        assert_clean(out)
        assert out.strip()
