"""summarize() finds its fields in a CRLF block without splitting every line (mail/headers.py
_summary_fields); its results must be exactly those of the general path, parse_header_block, that
it replaced: on every message of the test corpus (as stored, with CRLF line ends as POP3 and IMAP
deliver them, as a header block, as a TOP answer), on the generated mail of the demo and bench,
and on generated blocks full of the edge cases (folding, case, odd names, encoded words, stray
CR or LF, blank lines, bytes that are not UTF-8). has_attachment() likewise."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tuimail.backends.pop3.plan import header_block
from tuimail.demo.generate import generate
from tuimail.mail.headers import (
    has_attachment,
    parse_header_block,
    summarize,
    summary_of,
)

CORPUS = Path(__file__).resolve().parent.parent / "data" / "corpus"
NOT_MESSAGES = {"LICENSE", "MIT-LICENSE", "LICENSE.txt", "NOTICE.txt", "SOURCES.md"}
MESSAGES = sorted(p for p in CORPUS.rglob("*")
                  if p.is_file() and p.name not in NOT_MESSAGES and not p.name.startswith("."))


def reference(raw: bytes) -> dict:
    """summarize() as it was before the fast path: every field through parse_header_block."""
    try:
        h = parse_header_block(raw)
    except Exception:
        h = {}
    return summary_of(h)


def crlf(raw: bytes) -> bytes:
    return raw.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")


def forms(raw: bytes) -> list[bytes]:
    """A message as stored, with CRLF line ends, its header block, and a TOP n 0 answer."""
    out = [raw, crlf(raw)]
    for r in (raw, crlf(raw)):
        out += [header_block(r), header_block(r) + b"\r\n\r\n"]
    return out


def check(raw: bytes) -> None:
    want = reference(raw)
    assert summarize(raw) == want, raw[:300]
    assert has_attachment(raw) == want["has_attachment"], raw[:300]


def test_the_corpus_is_there():
    assert len(MESSAGES) > 150


@pytest.mark.parametrize("path", MESSAGES, ids=[str(p.relative_to(CORPUS)) for p in MESSAGES])
def test_every_corpus_message_summarizes_as_before(path):
    for raw in forms(path.read_bytes()):
        check(raw)


@pytest.mark.parametrize("path", MESSAGES[::3], ids=[str(p.relative_to(CORPUS)) for p in MESSAGES[::3]])
def test_a_top_answer_summarizes_as_its_header_block(path):
    # (the POP3 ledger's row_fields summarizes a TOP n 0 answer without cutting its block first)
    for r in (path.read_bytes(), crlf(path.read_bytes())):
        top = header_block(r) + b"\r\n\r\n"
        assert summarize(top) == summarize(header_block(top)), top[:300]


def test_generated_mail_summarizes_as_before():
    # the demo's and the benchmark's mail: encoded words in many charsets, KOI8-R bodies,
    # folded Content-Type lines, Received chains, list headers, attachments
    for m in generate(2000, seed=14, big_attachment_every=500):
        for raw in (m.raw, header_block(m.raw), header_block(m.raw) + b"\r\n\r\n"):
            check(raw)


def test_the_fast_path_is_taken_for_crlf_blocks():
    raw = (b"Received: from a\r\n\tby b\r\nSUBJECT :  =?utf-8?q?caf=C3=A9?= \r\n"
           b"content-type: Multipart/Mixed;\r\n boundary=x\r\nFrom: \"A, B\" <a@b>\r\n"
           b"Subject: second\r\n\r\nbody\r\nSubject: body\r\n")
    s = summarize(raw)
    assert s["subject"] == "café" and s["has_attachment"] and s["from_"] == '"A, B" <a@b>'
    assert s == reference(raw)


NAMES = ["From", "from", "FROM", "To", "tO", "Cc", "CC", "Subject", "subject", "Date", "Message-ID",
         "Message-Id", "message-id", "In-Reply-To", "References", "Content-Type", "content-type",
         "Received", "X-Mailer", "To-Do", "Ccx", "Fromm", "Subject\t", "Subject ", " Subject",
         "\tFrom", "\u212aeywords", "\u017fubject", "Me\u017fsage-ID", "Message-\u0131d", "Message-\u0130D",
         "Reference\u017f", "Subj\u00e9ct", "Da te", "", ":", "Content-Type \t"]
VALUES = ["", " ", "\t", "plain", "  leading and trailing  ", "=?utf-8?q?caf=C3=A9?=",
          "=?iso-8859-1?b?Y2Fm6Q==?= =?iso-8859-1?b?Y2Fm6Q==?=", "\"Smith, J\" <j@x>, =?utf-8?q?A=2C_B?= <ab@x>",
          "<a@b> <c@d>", "  <a@b>  ", "Tue, 1 Jul 2003 10:52:37 +0200", "1 Jul 03 10:52 GMT",
          "multipart/mixed; boundary=x", "text/plain", "image/png", "Приве́т", "a:b:c",
          "x\u00a0", "x\x0b", "=?", "?=", "\u2028", "tab\tinside"]
BREAKS = ["\r\n", "\r\n", "\r\n", "\n", "\r", "\r\n\r\n", "\n\n", "\r\r", "\r\n \r\n"]


@st.composite
def blocks(draw) -> bytes:
    parts: list[str] = []
    if draw(st.integers(0, 9)) == 0:
        parts.append(draw(st.sampled_from(["\r\n", "\n", "\r\n\r\n", " ", "\t"])))
    for _ in range(draw(st.integers(0, 8))):
        parts.append(draw(st.sampled_from(NAMES)) + draw(st.sampled_from([":", " :", ": ", ":\t", ""])))
        parts.append(draw(st.sampled_from(VALUES)))
        for _ in range(draw(st.integers(0, 2))):  # folded continuation lines
            parts.append("\r\n" + draw(st.sampled_from([" ", "\t", "  "])) + draw(st.sampled_from(VALUES)))
        parts.append(draw(st.sampled_from(BREAKS)))
    raw = "".join(parts).encode("utf-8")
    if draw(st.integers(0, 6)) == 0:  # bytes that are not UTF-8 somewhere
        at = draw(st.integers(0, len(raw)))
        raw = raw[:at] + draw(st.sampled_from([b"\xe9", b"\xff\xfe", b"\xc3", b"\x80abc"])) + raw[at:]
    return raw


@settings(max_examples=800, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(blocks())
def test_generated_blocks_summarize_as_before(raw):
    check(raw)
    check(raw + b"\r\n\r\nbody\r\nSubject: not a header\r\n")


def test_every_name_with_every_value():
    for name in NAMES:
        for sep in (":", " :", ":\t"):
            for value in VALUES:
                line = (name + sep + value).encode("utf-8")
                check(b"X-A: 1\r\n" + line + b"\r\nSubject: s\r\n\r\n")
                check(line + b"\r\n " + line + b"\r\n")
