"""MIME limits (issue 5, item 2), through the whole reader path: messages delivered to Dovecot,
synced, and opened with `tuimail read` in a subprocess (bounded time and memory, exit 0, a visible
"message truncated" note), plus the same bytes through parse_message (POP3 / raw source path)."""

from __future__ import annotations

import base64
import time

import pytest

from tuimail.mail.part import MAX_DEPTH, MAX_PARTS
from tuimail.protocol.imap.bodystructure import parse_bodystructure
from tuimail.mail.parse import parse_message
from tuimail.mail.part import NOTE_DEPTH, NOTE_PARTS
from tests.support.proxy import GarbageServer
from tests.unit.test_sanitize import assert_clean

from .conftest import run_tuimail

READ_SECONDS = 20  # a generous bound on a 2-core machine; typical runs take 1-3 s
RSS_KB = 300 * 1024


def _head(n: int, subject: str) -> bytes:
    return (f"From: Limits <limits@example.org>\r\nTo: me@example.org\r\nSubject: {subject}\r\n"
            f"Date: Mon, 01 Jan 2024 10:00:{n:02d} +0000\r\nMessage-ID: <limits{n}@example.org>\r\n"
            f"MIME-Version: 1.0\r\n").encode()


def nested_multipart(depth: int) -> bytes:
    inner = b"Content-Type: text/plain; charset=utf-8\r\n\r\ndeepest text\r\n"
    for d in reversed(range(depth)):
        inner = (b'Content-Type: multipart/mixed; boundary="b%d"\r\n\r\n--b%d\r\n' % (d, d) + inner
                 + b"\r\n--b%d--\r\n" % d)
    return inner


def nested_rfc822(depth: int) -> bytes:
    inner = b"Subject: innermost\r\nContent-Type: text/plain\r\n\r\ninnermost text\r\n"
    for _ in range(depth):
        inner = b"Subject: wrapper\r\nContent-Type: message/rfc822\r\n\r\n" + inner
    return b"Content-Type: text/plain\r\n\r\nouter text\r\n" if depth == 0 else \
        b'Content-Type: multipart/mixed; boundary="o"\r\n\r\n--o\r\nContent-Type: text/plain\r\n\r\nouter text\r\n' \
        b"--o\r\nContent-Type: message/rfc822\r\n\r\n" + inner + b"\r\n--o--\r\n"


def many_parts(n: int) -> bytes:
    body = [b'Content-Type: multipart/mixed; boundary="p"\r\n\r\n',
            b"--p\r\nContent-Type: text/plain\r\n\r\nthe first part is the text\r\n"]
    body += [b"--p\r\nContent-Type: application/octet-stream\r\n\r\nx\r\n"] * (n - 1)
    body.append(b"--p--\r\n")
    return b"".join(body)


MESSAGES = {
    "nested 1000 multipart": (nested_multipart(1000), NOTE_DEPTH),
    "nested 1000 message/rfc822": (nested_rfc822(1000), NOTE_DEPTH),
    "100000 parts": (many_parts(100_000), NOTE_PARTS),
}


@pytest.fixture
def limits_box(tuimail_env, mailuser, cli):
    for n, (name, (body, _)) in enumerate(MESSAGES.items(), 1):
        mailuser.deliver("INBOX", _head(n, name) + body)
    cli("sync")
    uids = {r["subject"]: r["uid"] for r in cli.json("list", "INBOX")}
    return cli, uids


@pytest.mark.parametrize("name", list(MESSAGES))
def test_read_of_a_limit_message_is_bounded_and_noted(limits_box, name):
    cli, uids = limits_box
    run = run_tuimail(cli.config_path, "read", "INBOX", str(uids[name]), timeout=120)
    assert run.code == 0, run.err[-3000:]
    assert run.err == ""
    assert run.seconds < READ_SECONDS, run.seconds
    assert run.maxrss_kb < RSS_KB, run.maxrss_kb
    assert_clean(run.out)
    assert "message truncated" in run.out, run.out[:2000]
    # the second read comes from the cache and is the same
    again = run_tuimail(cli.config_path, "--offline", "read", "INBOX", str(uids[name]), timeout=60)
    assert again.code == 0 and again.out == run.out


@pytest.mark.parametrize("name", list(MESSAGES))
def test_parse_message_of_a_limit_message_is_bounded_and_noted(name):
    raw = _head(1, name) + MESSAGES[name][0]
    t0 = time.monotonic()
    msg = parse_message(raw)
    assert time.monotonic() - t0 < 10
    assert MESSAGES[name][1] in msg.notes
    assert msg.text.startswith("[message truncated")
    assert_clean(msg.text)


def test_bodystructure_limits_on_synthetic_trees():
    deep = ("text", "plain", None, None, None, "7bit", 1, 1)
    for _ in range(3000):
        deep = (deep, "mixed", None, None, None)
    root, notes = parse_bodystructure(deep)
    assert NOTE_DEPTH in notes
    wide = tuple(("text", "plain", None, None, None, "7bit", 1, 1) for _ in range(20_000)) + ("mixed",)
    root, notes = parse_bodystructure(wide)
    assert NOTE_PARTS in notes and len(root.children) <= MAX_PARTS
    assert MAX_DEPTH == 50 and MAX_PARTS == 5000


def test_hostile_server_bodystructure_10000_levels_deep(tuimail_env, capsys):
    """Dovecot stops nesting at 100 levels; a hostile server need not. Caching and reading a
    BODYSTRUCTURE nested 10,000 levels must not hit Python's recursion limit."""
    from tests.integration.helpers import Cli

    from .test_protocol import account_toml, scripted

    leaf = b'("text" "plain" ("charset" "utf-8") NIL NIL "7bit" 5 1 NIL NIL NIL NIL)'
    deep = b"(" * 10_000 + leaf + b' "mixed")' * 10_000
    header = b"Subject: deep\r\nMessage-ID: <deep@x>\r\n\r\n"

    def after(tag, line):
        up = line.upper()
        if b" LIST " in up:
            return b'* LIST () "/" INBOX\r\n' + tag + b" OK done\r\n"
        if b" SELECT " in up or b" EXAMINE " in up:
            return b"* 1 EXISTS\r\n* OK [UIDVALIDITY 5] x\r\n* OK [UIDNEXT 2] x\r\n" + tag + b" OK done\r\n"
        if b" SEARCH" in up:
            return b"* SEARCH 1\r\n" + tag + b" OK done\r\n"
        if b"BODYSTRUCTURE" in up:
            return b"* 1 FETCH (UID 1 BODYSTRUCTURE " + deep + b")\r\n" + tag + b" OK done\r\n"
        if b"BODY.PEEK[" in up and b"HEADER.FIELDS" not in up:
            sec = line.split(b"BODY.PEEK[", 1)[1].split(b"]", 1)[0]
            return b"* 1 FETCH (UID 1 BODY[%s] {5}\r\nhello)\r\n" % sec + tag + b" OK done\r\n"
        if b"HEADER.FIELDS" in up:
            return (b"* 1 FETCH (UID 1 FLAGS () RFC822.SIZE 9 BODY[HEADER.FIELDS (FROM)] {%d}\r\n" % len(header)
                    + header + b")\r\n" + tag + b" OK done\r\n")
        return tag + b" OK done\r\n"

    with GarbageServer(reply=scripted(after_login=after)) as server:
        cfg = tuimail_env.write_config(account_toml(server.port))
        Cli(cfg, capsys)("sync")
        run = run_tuimail(cfg, "read", "INBOX", "1", timeout=60)
    assert run.code == 0, run.err[-3000:]
    assert "message truncated" in run.out  # the text part lies past the depth limit
    assert_clean(run.out)


# --------------------------------------------------------------------------- charsets, encodings


def _text_msg(n, ctype, cte, body: bytes, subject="s") -> bytes:
    return _head(n, subject) + f"Content-Type: {ctype}\r\nContent-Transfer-Encoding: {cte}\r\n\r\n".encode() + body


ENCODINGS = {
    "unknown charset": _text_msg(1, "text/plain; charset=x-no-such-charset", "8bit", b"caf\xe9 \xff\xfe ok\r\n",
                                 subject="=?x-unknown?B?SGVsbG8=?= and =?utf-8?B?!!!?="),
    "unknown charset, html": _text_msg(2, "text/html; charset=x-klingon", "8bit", b"<p>caf\xe9 ok</p>\r\n"),
    "mislabelled utf-8": _text_msg(3, "text/plain; charset=us-ascii", "8bit", "caf\u00e9 ok\r\n".encode()),
    "utf-7 with escapes": _text_msg(4, "text/plain; charset=utf-7", "7bit", b"+ABsAXQ-0;x+AAc- ok\r\n"),
    "broken base64": _text_msg(5, "text/plain; charset=utf-8", "base64",
                               base64.b64encode(b"decoded ok") + b"\r\n!!!*** not base64 ===\r\nQUJD\r\nQQ\r\n"),
    "base64 with ESC inside": _text_msg(6, "text/plain; charset=utf-8", "base64",
                                        base64.encodebytes(b"esc \x1b]0;x\x07 \x1b[2J ok")),
    "broken quoted-printable": _text_msg(7, "text/plain; charset=utf-8", "quoted-printable",
                                         b"a=ZZb =1B]0;x=07 =C2=9B2J soft=\r\nbreak ok=\r\n=\r\n=4"),
    "unknown transfer encoding": _text_msg(8, "text/plain", "x-magic", b"plain text ok\r\n"),
    "uuencode claims": _text_msg(9, "text/plain", "x-uuencode", b"begin 644 f\r\n#;VL*\r\n`\r\nend\r\n"),
}


@pytest.fixture
def encodings_box(tuimail_env, mailuser, cli):
    for raw in ENCODINGS.values():
        mailuser.deliver("INBOX", raw)
    cli("sync")
    return cli, [r["uid"] for r in cli.json("list", "INBOX")]


def test_unknown_charsets_and_broken_encodings_read_lossily(encodings_box):
    cli, uids = encodings_box
    assert len(uids) == len(ENCODINGS)
    for uid in uids:
        out = cli("read", "INBOX", str(uid))  # exit 0 asserted by Cli
        assert_clean(out)
        assert "ok" in out or "decoded" in out, out
    assert_clean(cli("list", "INBOX"))


@pytest.mark.parametrize("name", list(ENCODINGS))
def test_parse_message_of_broken_encodings(name):
    msg = parse_message(ENCODINGS[name])
    assert_clean(msg.text)
    assert msg.text.strip()


# --------------------------------------------------------------------------- huge header lines


def test_5mb_header_line_is_handled_in_bounded_memory(tuimail_env, mailuser, cli):
    huge_subject = "S" + "x" * (5 << 20)
    raw = _head(1, huge_subject) + b"Content-Type: text/plain\r\nX-Long: " + b"y" * (5 << 20) + b"\r\n\r\nbody ok\r\n"
    mailuser.deliver("INBOX", raw)
    mailuser.deliver("INBOX", _head(2, "small neighbour") + b"Content-Type: text/plain\r\n\r\nfine\r\n")
    sync = run_tuimail(cli.config_path, "sync", timeout=60)
    assert sync.code == 0, sync.err[-2000:]
    assert sync.maxrss_kb < RSS_KB, sync.maxrss_kb
    listing = run_tuimail(cli.config_path, "list", "INBOX", timeout=60)
    assert listing.code == 0 and "small neighbour" in listing.out
    rows = cli.json("list", "INBOX")
    big = next(r for r in rows if r["subject"].startswith("Sxxx"))
    read = run_tuimail(cli.config_path, "read", "INBOX", str(big["uid"]), timeout=60)
    assert read.code == 0, read.err[-2000:]
    assert "body ok" in read.out
    assert read.maxrss_kb < RSS_KB, read.maxrss_kb
    t0 = time.monotonic()
    msg = parse_message(raw)
    assert time.monotonic() - t0 < 5
    assert_clean(msg.text)
