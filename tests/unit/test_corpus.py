"""Every message of the test corpus (tests/data/corpus, provenance in its SOURCES.md) parses,
renders to non-empty text, and yields no control or bidi character after sanitising."""

from pathlib import Path

import pytest

from tuimail.mail.addresses import format_address_list, short_from
from tuimail.mail.headers import summarize
from tuimail.mail.parse import parse_message
from tuimail.mail.sanitize import sanitize_line, sanitize_strict

from .test_sanitize import assert_clean

CORPUS = Path(__file__).resolve().parent.parent / "data" / "corpus"
NOT_MESSAGES = {"LICENSE", "MIT-LICENSE", "LICENSE.txt", "NOTICE.txt", "SOURCES.md"}
MESSAGES = sorted(
    p for p in CORPUS.rglob("*") if p.is_file() and p.name not in NOT_MESSAGES and not p.name.startswith(".")
)
IDS = [str(p.relative_to(CORPUS)) for p in MESSAGES]


def test_corpus_is_complete():
    assert len(MESSAGES) == 167  # SOURCES.md: 103 + 46 + 18
    for folder, licence in [("mikel-mail", "MIT-LICENSE"), ("php-mime-mail-parser", "LICENSE"),
                            ("spamscope-mail-parser", "LICENSE.txt"), ("spamscope-mail-parser", "NOTICE.txt")]:
        assert (CORPUS / folder / licence).is_file()
    assert (CORPUS / "SOURCES.md").is_file()


def _header_block(raw: bytes) -> bytes:
    ends = [i for i in (raw.find(b"\r\n\r\n"), raw.find(b"\n\n")) if i >= 0]
    return raw[: min(ends)] + b"\r\n\r\n" if ends else raw


@pytest.mark.parametrize("path", MESSAGES, ids=IDS)
def test_message_parses_renders_and_is_clean(path):
    raw = path.read_bytes()
    msg = parse_message(raw)
    assert isinstance(msg.text, str) and msg.text.strip()
    assert_clean(msg.text)
    for link in msg.links:
        assert_clean(link)
    for part in msg.attachments:
        if part.filename:
            assert_clean(sanitize_strict(part.filename))
        msg.part_bytes(part.section)
    for value in msg.headers.values():
        assert_clean(sanitize_line(value))


@pytest.mark.parametrize("path", MESSAGES, ids=IDS)
def test_header_block_summary_is_clean(path):
    summary = summarize(_header_block(path.read_bytes()))
    for key in ("from_", "to", "cc", "subject", "references"):
        line = sanitize_line(summary[key])
        assert_clean(line)
        assert "\n" not in line and "\t" not in line
    for value in (format_address_list(summary["to"]), short_from(summary["from_"])):
        assert_clean(sanitize_line(value))
    assert summary["date"] is None or isinstance(summary["date"], int)
    for key in ("message_id", "in_reply_to"):
        assert summary[key] is None or summary[key].startswith("<")


# --------------------------------------------------------------------------- notable files


def _msg(name: str):
    return parse_message((CORPUS / name).read_bytes())


def test_path_traversal_filename_is_kept_for_the_ui_to_refuse():
    for name in ("php-mime-mail-parser/m0027", "php-mime-mail-parser/m0124"):
        names = [p.filename for p in _msg(name).attachments]
        assert "1234/../../1234.txt" in names


def test_many_attachments():
    assert len(_msg("php-mime-mail-parser/issue408.eml").attachments) > 300


def test_unknown_and_mislabelled_charsets_decode():
    assert "Test test. Hi. Waving. m" in _msg("mikel-mail/plain_emails/raw_email10.eml").text  # X-UNKNOWN
    assert "ACADEMIC NEWSLETTER" in _msg("php-mime-mail-parser/issue230").text  # x-mac-cyrillic
    assert "你好" in _msg("spamscope-mail-parser/mail_test_12").text  # UTF-8 labelled GB2312
    assert "스티해" in _msg("mikel-mail/multi_charset/ks_c_5601-1987.eml").text
    assert "すみません" in _msg("mikel-mail/multi_charset/japanese_iso_2022.eml").text


def test_broken_structure_is_noted_not_fatal():
    msg = _msg("mikel-mail/error_emails/missing_body.eml")
    assert msg.notes and msg.text.startswith("[")
