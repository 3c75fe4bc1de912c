"""mail/compose.py: replies, forwards, the edit file, and the bytes a draft becomes."""

from __future__ import annotations

import email
import re
from email import policy

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tuimail.mail.compose import (
    ComposeError, Draft, Identity, attachment_name, build_message, edit_text, envelope, forward,
    forward_subject, make_attachment, needs_smtputf8, new_draft, parse_edit_text, quote_text, reply, resume,
    reply_subject, sent_copy,
)

ALICE = Identity("alice@example.org", "Alice Liddell")
WORK = Identity("alice@work.test", "Alice (work)")
IDS = (ALICE, WORK)


def original(headers: str = "", body: str = "Hello Alice,\nhow are you?\n", *, ctype: str = "text/plain; charset=utf-8",
             frm: str = "Bob Smith <bob@example.com>", to: str = "Alice Liddell <alice@example.org>") -> bytes:
    head = (f"From: {frm}\nTo: {to}\nSubject: lunch\nDate: Mon, 7 Dec 2026 10:00:00 +0100\n"
            f"Message-ID: <m2@example.com>\nContent-Type: {ctype}\n{headers}")
    return (head + "\n" + body).encode("utf-8")


def parse(data: bytes):
    """As a reader sees it (line ends "\n", so decoded text compares with what was written)."""
    return email.message_from_bytes(data.replace(b"\r\n", b"\n"), policy=policy.default)


def sent_bytes(draft: Draft) -> bytes:
    return envelope(build_message(draft))[0]


# ---------------------------------------------------------------------------- subjects


@pytest.mark.parametrize("given_, want", [
    ("lunch", "Re: lunch"), ("Re: lunch", "Re: lunch"), ("RE: Re: re:lunch", "Re: lunch"),
    ("Aw: Re[2]: lunch", "Re: lunch"), ("Fwd: lunch", "Re: Fwd: lunch"), ("", "Re:"),
])
def test_reply_subject_not_stacked(given_, want):
    assert reply_subject(given_) == want


@pytest.mark.parametrize("given_, want", [
    ("lunch", "Fwd: lunch"), ("Fwd: lunch", "Fwd: lunch"), ("FW: lunch", "Fwd: lunch"), ("Re: lunch", "Fwd: Re: lunch"),
])
def test_forward_subject_not_stacked(given_, want):
    assert forward_subject(given_) == want


# ---------------------------------------------------------------------------- recipients


def test_reply_to_sender():
    d = reply(original(), IDS)
    assert d.to == "Bob Smith <bob@example.com>" and d.cc == "" and d.subject == "Re: lunch"
    assert d.from_ == "Alice Liddell <alice@example.org>"


def test_reply_honours_reply_to():
    d = reply(original("Reply-To: Bob at home <bob@home.example>\n"), IDS)
    assert d.to == "Bob at home <bob@home.example>"


def test_reply_all_without_own_addresses_and_duplicates():
    raw = original("Cc: carol@example.net, BOB@example.com, alice@work.test, Carol <CAROL@example.net>\n",
                   to="Alice Liddell <alice@example.org>, dave@example.net, ALICE@EXAMPLE.ORG")
    d = reply(raw, IDS, "all")
    assert d.to == "Bob Smith <bob@example.com>"
    assert d.cc == "dave@example.net, carol@example.net"


def test_reply_all_honours_mail_followup_to():
    raw = original("Cc: carol@example.net\nMail-Followup-To: list@lists.example, alice@example.org\n")
    d = reply(raw, IDS, "all")
    assert d.to == "list@lists.example" and d.cc == ""
    assert reply(raw, IDS, "sender").to == "Bob Smith <bob@example.com>"  # r still answers the sender


def test_reply_to_list_from_list_post():
    raw = original("List-Post: <mailto:dev@lists.example?subject=help>\nList-Id: dev <dev.lists.example>\n")
    d = reply(raw, IDS, "list")
    assert d.to == "dev@lists.example" and d.cc == ""


@pytest.mark.parametrize("header", ["", "List-Post: NO\n"])
def test_reply_to_list_without_list_post(header):
    with pytest.raises(ComposeError) as e:
        reply(original(header), IDS, "list")
    assert "reply to all" in str(e.value) and "\n" not in str(e.value)


def test_identity_the_original_was_addressed_to():
    d = reply(original(to="team@work.test", headers="Cc: Alice <alice@WORK.test>\n"), IDS, "all")
    assert d.from_ == '"Alice (work)" <alice@work.test>'
    assert d.cc == "team@work.test"
    d = reply(original(to="someone@else.test"), IDS)
    assert d.from_ == "Alice Liddell <alice@example.org>"  # the account's from


def test_reply_to_own_message_goes_to_its_recipients():
    raw = original("Cc: carol@example.net\n", frm="Alice <alice@example.org>", to="Bob <bob@example.com>")
    assert reply(raw, IDS).to == "Bob <bob@example.com>"
    d = reply(raw, IDS, "all")
    assert d.to == "Bob <bob@example.com>" and d.cc == "carol@example.net"


def test_reply_without_identities():
    with pytest.raises(ComposeError):
        reply(original(), ())


# ---------------------------------------------------------------------------- quoting, threading


def test_attribution_and_quoting():
    body = "Hello Alice,\n> you wrote\n>> long ago\n\nbye\n-- \nBob\nhttps://bob.example\n"
    d = reply(original(body=body), IDS)
    assert d.body == ("On Mon, 07 Dec 2026 10:00 +0100, Bob Smith <bob@example.com> wrote:\n"
                      "> Hello Alice,\n>> you wrote\n>>> long ago\n>\n> bye\n")  # the signature is not quoted


def test_flowed_original_joined_and_rewrapped():
    para = "This paragraph was sent as format=flowed, so its soft line breaks " \
           "are joined before quoting and it is wrapped again. "
    body = para.replace("so its ", "so its \n") + "\n> quoted \n> line\n> \nback at depth 0\n"
    d = reply(original(body=body, ctype="text/plain; charset=utf-8; format=flowed"), IDS)
    quoted = d.body.split("\n")[1:]
    assert all(len(line) <= 72 for line in quoted)
    text = " ".join(line[2:] for line in quoted if line.startswith("> "))
    assert " ".join(para.split()) in text
    assert ">> quoted line" in quoted and "> back at depth 0" in quoted


def test_html_only_original_quoted_as_text():
    html = "<html><body><p>Hi <b>Alice</b></p><p>second</p></body></html>"
    d = reply(original(body=html, ctype="text/html; charset=utf-8"), IDS)
    assert "> Hi **Alice**" in d.body or "> Hi Alice" in d.body
    assert "<p>" not in d.body


def test_quote_keeps_the_text_as_written():
    # the sanitiser is for what tuimail shows; the quote is the original's text (NUL aside)
    d = reply(original(body="caf\u00e9 \u202eevil\x00\n"), IDS)
    assert "> caf\u00e9 \u202eevil\n" in d.body + "\n"


def test_quote_text_function():
    assert quote_text("a\n\n> b\n\n\n") == "> a\n>\n>> b"


def test_threading_headers():
    d = reply(original("References: <m0@x> <m1@x>\nIn-Reply-To: <m1@x>\n"), IDS)
    assert d.in_reply_to == "<m2@example.com>"
    assert d.references == ["<m0@x>", "<m1@x>", "<m2@example.com>"]
    msg = parse(sent_bytes(d))
    assert msg["In-Reply-To"] == "<m2@example.com>"
    assert msg["References"].split() == ["<m0@x>", "<m1@x>", "<m2@example.com>"]


def test_references_from_in_reply_to_and_trimmed():
    d = reply(original("In-Reply-To: <m1@x>\n"), IDS)
    assert d.references == ["<m1@x>", "<m2@example.com>"]
    many = " ".join(f"<r{i}@x>" for i in range(50))
    d = reply(original(f"References: {many}\n"), IDS)
    assert len(d.references) == 20 and d.references[0] == "<r0@x>"
    assert d.references[-2:] == ["<r49@x>", "<m2@example.com>"]


# ---------------------------------------------------------------------------- forwarding


def _with_attachment() -> bytes:
    return (b"From: Bob <bob@example.com>\r\nTo: alice@example.org\r\nSubject: report\r\n"
            b"Date: Mon, 7 Dec 2026 10:00:00 +0100\r\nMessage-ID: <r@example.com>\r\n"
            b'MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary="b"\r\n\r\n'
            b"--b\r\nContent-Type: text/plain\r\n\r\nsee attached\r\n"
            b'--b\r\nContent-Type: application/pdf\r\nContent-Disposition: attachment; filename="../../r.pdf"\r\n'
            b"Content-Transfer-Encoding: base64\r\n\r\nJVBERi0xLjQK\r\n--b--\r\n")


def test_forward_inline_carries_text_and_attachments():
    d = forward(_with_attachment(), IDS)
    assert d.subject == "Fwd: report" and d.to == "" and d.in_reply_to is None
    assert "---------- Forwarded message ----------\nFrom: Bob <bob@example.com>" in d.body
    assert "Subject: report" in d.body and d.body.rstrip().endswith("see attached")
    (att,) = d.attachments
    assert att.filename == "r.pdf" and att.mimetype == "application/pdf" and att.data == b"%PDF-1.4\n"


def test_forward_as_attachment():
    raw = _with_attachment()
    d = forward(raw, IDS, inline=False)
    d.to = "carol@example.net"
    msg = parse(sent_bytes(d))
    parts = list(msg.iter_attachments())
    assert [p.get_content_type() for p in parts] == ["message/rfc822"]
    inner = parts[0].get_content()
    assert inner["Subject"] == "report" and inner["Message-ID"] == "<r@example.com>"
    assert parts[0].get_filename() == "report.eml"


def test_forward_8bit_original_as_attachment_unchanged():
    raw = original(body="Grüße \xff\n").replace(b"\xc3\xbf", b"\xff")  # UTF-8 and a stray latin-1 byte
    d = forward(raw, IDS, inline=False)
    d.to = "carol@example.net"
    data = sent_bytes(d)
    assert raw.replace(b"\n", b"\r\n").rstrip(b"\r\n") in data  # byte for byte (8bit: the server's 8BITMIME)
    (part,) = list(parse(data).iter_attachments())
    assert part.get_content_type() == "message/rfc822" and part["Content-Transfer-Encoding"] == "8bit"
    assert max(len(line) for line in data.split(b"\r\n")) <= 998


def test_forward_original_with_a_huge_line_as_message_global():
    raw = original(body="x" * 3000 + "\n")
    d = forward(raw, IDS, inline=False)
    d.to = "carol@example.net"
    data = sent_bytes(d)
    assert max(len(line) for line in data.split(b"\r\n")) <= 998
    assert b"Content-Type: message/global" in data


def test_forwarded_message_containing_the_boundary():
    d = forward(original(), IDS, inline=False)
    d.to = "carol@example.net"
    msg = build_message(d)
    msg.get_boundary()
    first = sent_bytes(d)
    boundary = re.search(rb'boundary="([^"]+)"', first).group(1)
    evil = original(body="--" + boundary.decode() + "--\n")
    d2 = forward(evil, IDS, inline=False)
    d2.to = "carol@example.net"
    m2 = build_message(d2)
    m2.set_boundary(boundary.decode())
    data = envelope(m2)[0]
    assert boundary not in re.search(rb'boundary="([^"]+)"', data).group(1)
    (part,) = list(parse(data).iter_attachments())
    assert part.get_content_type() == "message/rfc822"


# ---------------------------------------------------------------------------- the edit file


def test_edit_file_round_trip():
    d = reply(original("Cc: carol@example.net\n"), IDS, "all")
    text = edit_text(d)
    assert text.startswith("From: Alice Liddell <alice@example.org>\nTo: Bob Smith <bob@example.com>\n"
                           "Cc: carol@example.net\nBcc: \nSubject: Re: lunch\n\nOn ")
    back, paths = parse_edit_text(text, d)
    assert back == d and paths == []


def test_edit_file_changes_folding_attach_and_repeats():
    d = new_draft(ALICE)
    text = ("From: Alice Liddell <alice@example.org>\nTo: bob@example.com,\n  carol@example.net\nTo: dave@example.net\n"
            "Cc:\nBcc: eve@example.net\nSubject: plans\nReply-To: alice@home.example\nX-Mood: fine\n"
            "Attach: ~/report.pdf\nattach: /tmp/b c.txt\n\nbody\n\nmore\n")
    back, paths = parse_edit_text(text, d)
    assert back.to == "bob@example.com, carol@example.net, dave@example.net"
    assert back.bcc == "eve@example.net" and back.subject == "plans" and back.body == "body\n\nmore\n"
    assert back.extra == {"Reply-To": "alice@home.example", "X-Mood": "fine"}
    assert paths == ["~/report.pdf", "/tmp/b c.txt"]
    msg = parse(sent_bytes(back))
    assert msg["Reply-To"] == "alice@home.example" and msg["X-Mood"] == "fine" and msg["Bcc"] is None


@pytest.mark.parametrize("text, words", [
    ("From: a@example.org\nDate: yesterday\n\nx", "line 2: the Date header cannot be set"),
    ("From: a@example.org\nSubject: a\nSubject: b\n\nx", "line 3: a second Subject"),
    ("From: a@example.org\nthis is text\n\nx", "line 2: not a header"),
    ("From: a@example.org\nContent-Type: text/html\n\nx", "line 2: the Content-Type header"),
])
def test_edit_file_errors_name_the_line(text, words):
    with pytest.raises(ComposeError) as e:
        parse_edit_text(text, new_draft(ALICE))
    assert words in str(e.value) and "\n" not in str(e.value)


# ---------------------------------------------------------------------------- the message


def test_headers_of_a_new_message():
    d = new_draft(ALICE, "Bob <bob@example.com>", subject="hi", body="short\n")
    msg = build_message(d, date=1_800_000_000)
    assert msg["Message-ID"].endswith("@example.org>")  # the sender's domain, not this machine's
    assert parse(sent_bytes(d))["Date"] is not None and "2027" in msg["Date"]
    data = sent_bytes(d)
    assert b"Content-Transfer-Encoding: 7bit" in data and data.isascii() and b"\r\n" in data
    assert not re.search(rb"[^\r]\n", data)  # CRLF everywhere


@pytest.mark.parametrize("field, value", [
    ("subject", "hi\r\nBcc: victim@example.net"), ("subject", "hi\nX: y"), ("to", "bob@example.com\r\nX: y"),
    ("from_", "alice@example.org\nBcc: x@y.z"),
])
def test_header_injection_refused(field, value):
    d = new_draft(ALICE, "bob@example.com", subject="s")
    setattr(d, field, value)
    with pytest.raises(ComposeError) as e:
        build_message(d)
    assert "line break" in str(e.value) and "\n" not in str(e.value)


def test_extra_header_injection_refused():
    d = new_draft(ALICE, "bob@example.com")
    d.extra["X-Note"] = "a\rb"
    with pytest.raises(ComposeError):
        build_message(d)


@pytest.mark.parametrize("value", ["bob", "bob@", "@example.com", "<>", "bob smith@example.com"])
def test_bad_address_is_one_line(value):
    with pytest.raises(ComposeError) as e:
        build_message(new_draft(ALICE, value))
    assert "To:" in str(e.value) and "\n" not in str(e.value)


def test_no_recipient():
    with pytest.raises(ComposeError, match="no recipient"):
        build_message(new_draft(ALICE))


def test_long_lines_quoted_printable_never_over_998():
    body = "word " * 1000 + "\n" + "x" * 5000 + "\nshort\n"
    data = sent_bytes(new_draft(ALICE, "bob@example.com", body=body))
    assert b"Content-Transfer-Encoding: quoted-printable" in data
    assert max(len(line) for line in data.split(b"\r\n")) <= 78
    assert parse(data).get_content() == body


def test_non_ascii_text_and_subject():
    d = new_draft(Identity("alice@example.org", "Zoë Ærø"), "Jörg <joerg@example.net>", subject="Grüße — 你好",
                  body="Grüße aus Köln\n")
    data = sent_bytes(d)
    assert data.isascii()  # RFC 2047 headers, quoted-printable body
    msg = parse(data)
    assert msg["Subject"] == "Grüße — 你好" and msg["From"].addresses[0].display_name == "Zoë Ærø"
    assert msg.get_content() == "Grüße aus Köln\n"
    assert b"quoted-printable" in data


def test_non_ascii_address_uses_utf8_headers():
    d = new_draft(Identity("zoë@example.org"), "jörg@bücher.example", subject="Grüße", body="hi\n")
    data, mail_from, rcpts = envelope(build_message(d))
    assert needs_smtputf8(mail_from, *rcpts)
    assert "jörg@bücher.example".encode() in data  # raw UTF-8 (RFC 6532), not an encoded word
    assert b"=?utf-8?" not in data.split(b"\r\n\r\n")[0]
    assert build_message(d)["Message-ID"].endswith("@example.org>")
    assert not needs_smtputf8("a@example.org", "b@example.net")


def test_envelope_bcc_and_sent_copy():
    d = new_draft(ALICE, "bob@example.com, Bob <BOB@example.com>", body="x\n")
    d.cc, d.bcc = "carol@example.net", "eve@example.net, bob@example.com"
    msg = build_message(d)
    data, mail_from, rcpts = envelope(msg)
    assert mail_from == "alice@example.org"
    assert rcpts == ["bob@example.com", "carol@example.net", "eve@example.net"]
    assert b"Bcc" not in data and b"eve@" not in data
    sent = sent_copy(msg)
    assert b"Bcc: eve@example.net, bob@example.com" in sent
    assert data == re.sub(rb"Bcc: [^\r]*\r\n", b"", sent)


def test_long_bcc_folded_is_removed_whole():
    d = new_draft(ALICE, "bob@example.com", body="x\n")
    d.bcc = ", ".join(f"person{i}@example.net" for i in range(30))
    data, _f, rcpts = envelope(build_message(d))
    assert b"person" not in data and len(rcpts) == 31


# ---------------------------------------------------------------------------- attachments


@pytest.mark.parametrize("name, data, want", [
    ("notes.txt", b"plain", "text/plain"), ("pic.png", b"x", "image/png"),
    ("noext", b"\x89PNG\r\n\x1a\nxx", "image/png"),
    ("noext", b"%PDF-1.7", "application/pdf"), ("noext", b"just text\n", "text/plain"),
    ("noext", b"\x00\x01\x02", "application/octet-stream"), ("data.tar.gz", b"\x1f\x8b", "application/gzip"),
])
def test_attachment_types(name, data, want):
    assert make_attachment(name, data).mimetype == want


@pytest.mark.parametrize("name, want", [
    ("../../.bashrc", "bashrc"), ("C:\\Users\\x\\evil.exe", "evil.exe"), ("a\u202etxt.exe", "atxt.exe"),
    ("", "attachment"), ("...", "attachment"), ("re: lunch?.pdf", "re_ lunch_.pdf"),
    ("line\nbreak.txt", "linebreak.txt"),
])
def test_attachment_names_safe(name, want):
    assert attachment_name(name) == want


def test_attachment_name_long_keeps_extension():
    name = attachment_name("é" * 300 + ".pdf")
    assert name.endswith(".pdf") and len(name.encode()) <= 200


def test_attachments_in_the_message():
    d = new_draft(ALICE, "bob@example.com", body="see attached\n")
    d.attachments = [make_attachment("/home/a/Überblick.pdf", b"%PDF-1.4\n" + bytes(range(256))),
                     make_attachment("notes.txt", "naïve\n".encode())]
    msg = parse(sent_bytes(d))
    parts = list(msg.iter_attachments())
    assert [p.get_filename() for p in parts] == ["Überblick.pdf", "notes.txt"]
    assert parts[0].get_content_type() == "application/pdf"
    assert parts[0].get_content() == b"%PDF-1.4\n" + bytes(range(256))
    assert msg.get_body(("plain",)).get_content() == "see attached\n"


# ---------------------------------------------------------------------------- properties

_text = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\r\x00"), max_size=300)
_line = st.text(st.characters(blacklist_categories=("Cs", "Cc", "Zl", "Zp")), max_size=120)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(subject=_line, body=_text)
def test_property_any_subject_and_body_survive(subject, body):
    d = new_draft(ALICE, "bob@example.com", subject=subject, body=body)
    data = sent_bytes(d)
    assert data.isascii()
    assert max(len(line) for line in data.split(b"\r\n")) <= 998
    msg = parse(data)
    assert (msg["Subject"] or "") == " ".join(subject.split()) or (msg["Subject"] or "").strip() == subject.strip()
    want = body if body.endswith("\n") else body + "\n"
    assert msg.get_content() == want


@settings(max_examples=60, deadline=None)
@given(subject=_line, body=_text, to=st.lists(st.from_regex(r"[a-z]{1,8}@[a-z]{1,8}\.test", fullmatch=True),
                                               max_size=4))
def test_property_edit_file_round_trip(subject, body, to):
    d = new_draft(ALICE, ", ".join(to), subject=subject.strip(), body=body)
    back, _ = parse_edit_text(edit_text(d), d)
    assert back.to == d.to and back.subject == " ".join(d.subject.split()) or back.subject == d.subject
    assert back.body == body.replace("\r", "")


@settings(max_examples=60, deadline=None)
@given(st.lists(st.sampled_from(["a@x.test", "A@X.test", "b@x.test", "alice@example.org", "c@y.test",
                                 "alice@work.test"]), min_size=1, max_size=8))
def test_property_reply_all_has_no_own_address_and_no_duplicate(addresses):
    raw = original(f"Cc: {', '.join(addresses)}\n", to=", ".join(reversed(addresses)))
    d = reply(raw, IDS, "all")
    got = [a.strip().lower() for a in (d.to + "," + d.cc).split(",") if a.strip()]
    got = [re.sub(r".*<(.*)>", r"\1", a) for a in got]
    assert len(got) == len(set(got))
    assert "alice@example.org" not in got and "alice@work.test" not in got


@settings(max_examples=80, deadline=None)
@given(st.binary(max_size=600) | st.builds(lambda h, b: h + b"\n\n" + b, st.sampled_from([
    b"From: =?utf-8?b?AAAA?= <\x1b@x>\nSubject: =?x-unknown?q?a?=\nMessage-ID: <<>>",
    b"Content-Type: multipart/mixed; boundary=\nReferences: < a b > <c@d>",
    b"From: a@b.c\nContent-Type: text/plain; charset=bogus; format=flowed; delsp=yes",
    b"Reply-To: ,,,\nMail-Followup-To: <>\nList-Post: <mailto:>"]), st.binary(max_size=200)))
def test_property_any_original_gives_a_draft_or_one_line(raw):
    for make in (lambda: reply(raw, IDS, "all"), lambda: reply(raw, IDS, "list"), lambda: forward(raw, IDS),
                 lambda: forward(raw, IDS, inline=False)):
        try:
            d = make()
        except ComposeError as e:
            assert "\n" not in str(e)
            continue
        assert d.from_ in (ALICE.formatted, WORK.formatted)
        for value in (d.to, d.cc, d.subject, d.in_reply_to or "", *d.references):
            assert "\n" not in value and "\r" not in value


def test_resume_a_saved_draft():
    d = reply(original("Cc: carol@example.net\n"), IDS, "all")
    d.bcc = "eve@example.net"
    d.extra["Reply-To"] = "alice@home.example"
    d.attachments = [make_attachment("notes.txt", b"some notes\n")]
    saved = sent_copy(build_message(d))
    back = resume(saved)
    assert (back.from_, back.to, back.cc, back.bcc, back.subject) == (d.from_, d.to, d.cc, d.bcc, d.subject)
    assert back.body == d.body and back.in_reply_to == d.in_reply_to and back.references == d.references
    assert back.extra == {"Reply-To": "alice@home.example"}
    got = [(a.filename, a.data, a.mimetype) for a in back.attachments]
    assert got == [("notes.txt", b"some notes\n", "text/plain")]


def test_edit_file_without_a_from_line_keeps_the_sender():
    back, _ = parse_edit_text("To: bob@example.com\n\nhi\n", new_draft(WORK))
    assert back.from_ == WORK.formatted
    with pytest.raises(ComposeError, match="From"):
        build_message(parse_edit_text("From:\nTo: bob@example.com\n\nhi\n", new_draft(WORK))[0])


def test_long_message_ids_stay_whole():
    # the policy would fold a header over 78 characters into encoded words: threading would break
    long_id = "<" + "CAH" + "x" * 90 + "@mail.gmail.com>"
    d = reply(original(f"References: <root@x> {long_id}\n").replace(b"<m2@example.com>", long_id.encode()), IDS)
    assert d.in_reply_to == long_id
    data = sent_bytes(d)
    head = data.split(b"\r\n\r\n")[0]
    assert b"=?" not in head and long_id.encode() in head
    msg = parse(data)
    assert msg["In-Reply-To"] == long_id and msg["References"].split() == ["<root@x>", long_id]
    assert max(len(line) for line in data.split(b"\r\n")) <= 998


def test_identity_from_the_config_form():
    assert Identity.parse('"Liddell, Alice" <alice@example.org>') == Identity("alice@example.org", "Liddell, Alice")
    assert Identity.parse("alice@example.org").formatted == "alice@example.org"
    assert Identity("alice@example.org", "Liddell, Alice").formatted == '"Liddell, Alice" <alice@example.org>'
    with pytest.raises(ComposeError):
        Identity.parse("just a name")


def test_importing_compose_or_the_sender_does_not_load_the_parser_or_html2text():
    """The UI imports compose when the user first writes, the CLI's `send` imports the outbox
    sender: neither pays for parsing an original (mail/parse.py, html2text) until a reply or a
    forward is made."""
    import os
    import subprocess
    import sys
    from pathlib import Path
    code = ("import sys\nimport tuimail.mail.compose, tuimail.backends.send\n"
            "print(sorted(m for m in sys.modules if m.startswith(('html2text', 'tuimail.mail.parse',"
            " 'tuimail.mail.render'))))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])})
    assert out.stdout.strip() == "[]"
