"""What the reader shows inline: attached messages (with the envelope's headers) and delivery
reports, from BODYSTRUCTURE and from whole corpus messages (issue 11.6)."""

from __future__ import annotations

from pathlib import Path

from tuimail.mail.inline import inline_plan, message_headers
from tuimail.mail.part import choose_text_part
from tuimail.protocol.imap.bodystructure import parse_bodystructure
from tuimail.mail.parse import parse_message

from .test_mail_mime import FORWARDED, shapes

CORPUS = Path(__file__).resolve().parents[1] / "data" / "corpus"


def _plan(root):
    return [(s.kind, s.part.section, s.text.section if s.text else None, s.depth) for s in inline_plan(root)]


def test_envelope_gives_the_attached_messages_headers():
    for data in shapes(FORWARDED):
        root, _ = parse_bodystructure(data)
        msg = root.children[1]
        assert message_headers(msg) == [("From", '"A" <a@x>'), ("To", '"B" <b@x>'),
                                        ("Date", "Mon, 1 Jan 2024 00:00:00 +0000"), ("Subject", "inner")]
        assert _plan(root) == [("message", "2", "2.1", 1)]


def test_encoded_envelope_names_and_groups():
    data = (b'("MESSAGE" "RFC822" NIL NIL NIL "7BIT" 300 (NIL "=?utf-8?q?Gr=C3=BC=C3=9Fe?=" '
            b'(("=?utf-8?q?J=C3=B6rg_\\"JJ\\"?=" NIL "jo" "x.test")) NIL NIL '
            b'((NIL NIL "team" NIL) ("Ann" NIL "ann" "y.test") (NIL NIL NIL NIL)) NIL NIL NIL NIL) '
            b'("TEXT" "PLAIN" ("CHARSET" "utf-8") NIL NIL "7BIT" 10 1) 12)')
    root, _ = parse_bodystructure(shapes(data)[0])
    assert root.headers == {"subject": "Grüße", "from": '"Jörg \\"JJ\\"" <jo@x.test>', "to": '"Ann" <ann@y.test>'}


def test_corpus_forward_and_bounces():
    fwd = parse_message((CORPUS / "mikel-mail/attachment_emails/attachment_message_rfc822.eml").read_bytes())
    assert _plan(fwd.root) == [("message", "2", "2.1", 1)]
    assert fwd.root.children[1].headers["subject"] == "Another PDF"

    bounce = parse_message((CORPUS / "mikel-mail/multipart_report_emails/multipart_report_multiple_status.eml")
                           .read_bytes())
    assert choose_text_part(bounce.root) is None  # "(no text part)" before
    assert _plan(bounce.root) == [("status", "1", None, 1), ("status", "2", None, 1), ("message", "3", "3.1", 1)]

    report = parse_message((CORPUS / "mikel-mail/multipart_report_emails/report_422.eml").read_bytes())
    assert [(s.kind, s.title) for s in inline_plan(report.root)] == [
        ("status", "Delivery status"), ("status", "Headers of the returned message")]


def test_nesting_is_bounded():
    inner = b"Subject: leaf\r\n\r\nleaf text\r\n"
    for level in range(6):
        inner = (b"Subject: level %d\r\nContent-Type: multipart/mixed; boundary=b%d\r\n\r\n--b%d\r\n"
                 b"Content-Type: text/plain\r\n\r\ntext %d\r\n--b%d\r\nContent-Type: message/rfc822\r\n\r\n"
                 % (level, level, level, level, level) + inner + b"\r\n--b%d--\r\n" % level)
    m = parse_message(inner)
    steps = inline_plan(m.root)
    assert [s.depth for s in steps] == [1, 2, 3]  # deeper ones stay in the attachment list


def test_a_report_without_a_human_part_shows_its_returned_headers_titled():
    raw = (b"Subject: bounce\r\nContent-Type: multipart/report; report-type=delivery-status; boundary=R\r\n\r\n"
           b"--R\r\nContent-Type: message/delivery-status\r\n\r\nStatus: 5.1.1\r\n"
           b"--R\r\nContent-Type: text/rfc822-headers\r\n\r\nSubject: lunch\r\n--R--\r\n")
    m = parse_message(raw)
    assert choose_text_part(m.root) is None
    assert [(s.kind, s.title) for s in inline_plan(m.root)] == [
        ("status", "Delivery status"), ("status", "Headers of the returned message")]
