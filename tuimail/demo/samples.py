"""Demo messages for the reader (issue 11): a German newsletter (long format=flowed paragraphs full
of umlauts, to show word wrapping), a forwarded message (message/rfc822 with an attachment of its
own) and a bounce (multipart/report with a delivery status). Written for the demo, not copied.
"""

from __future__ import annotations

import binascii

from tuimail.demo.generate import DEMO_USER_ADDR, DEMO_USER_NAME, GenMessage, _b64_lines, _fmt_date, encode_words

__all__ = ["reader_samples"]

_NEWSLETTER = """\
Liebe Leserinnen und Leser,

im März gibt es einige Änderungen, über die wir Sie gerne frühzeitig informieren möchten. \
Ab dem 1. April gelten neue Öffnungszeiten für unser Kundenzentrum in der Königstraße: \
montags bis freitags von 8:00 bis 18:00 Uhr, donnerstags sogar bis 20:00 Uhr.

Die Abholung der Gelben Säcke verschiebt sich in der Osterwoche um jeweils einen Tag. \
Bitte stellen Sie die Säcke erst am Vorabend an die Straße, damit Möwen und Füchse keine \
Gelegenheit bekommen, sie aufzureißen. Die vollständigen Termine für Ihren Straßenzug finden \
Sie in unserer App und auf unserer Webseite.

Außerdem möchten wir Sie auf unser Förderprogramm für Balkonkraftwerke hinweisen: \
Haushalte in Musterstadt erhalten einen Zuschuss von bis zu 200 Euro, solange die \
Fördermittel reichen. Anträge können ab sofort gestellt werden; die Bearbeitung dauert \
erfahrungsgemäß zwei bis drei Wochen.

Mit freundlichen Grüßen
Ihr Team der Stadtwerke Musterstadt

-- 
Stadtwerke Musterstadt GmbH · Königstraße 12 · 12345 Musterstadt
Abmelden: https://stadtwerke.example/newsletter/abmelden?id=4711
"""

_ORIGINAL = """\
Sehr geehrte Frau Schäfer,

vielen Dank für Ihre Anfrage. Anbei erhalten Sie unser Angebot für die Renovierung des \
Badezimmers, einschließlich der Fliesenarbeiten und der Erneuerung der Wasserleitungen.

Die Arbeiten würden etwa zehn Werktage in Anspruch nehmen; ein früherer Beginn ist möglich, \
falls ein anderer Auftrag verschoben wird. Bei Rückfragen erreichen Sie mich unter der \
untenstehenden Nummer.

Mit freundlichen Grüßen
Jörg Müller
Müller Bau GmbH · Tel. 0123 456789
"""


def _flowed(text: str, width: int = 72) -> bytes:
    """RFC 3676 format=flowed: soft line breaks end in a space."""
    out = []
    for para in text.split("\n"):
        if para == "-- ":
            out.append(para)
            continue
        line = ""
        for word in para.split(" "):
            if line and len(line) + len(word) + 1 > width:
                out.append(line + " ")
                line = word
            else:
                line = f"{line} {word}" if line else word
        out.append(line)
    return "\r\n".join(out).encode("utf-8")


def _qp(data: bytes) -> bytes:
    return binascii.b2a_qp(data, istext=True).replace(b"\n", b"\r\n").replace(b"\r\r\n", b"\r\n")


def reader_samples(folder: str, start: int) -> list[GenMessage]:
    """Three messages dated start+1..start+3."""
    me = f"{DEMO_USER_NAME} <{DEMO_USER_ADDR}>"
    out = []

    def head(date: int, msgid: str, from_: str, subject: str, ctype: str, extra: str = "") -> bytes:
        return (f"Date: {_fmt_date(date, 1)}\r\nFrom: {from_}\r\nTo: {me}\r\nSubject: {subject}\r\n"
                f"Message-ID: {msgid}\r\n{extra}MIME-Version: 1.0\r\nContent-Type: {ctype}\r\n").encode()

    # 1. a German newsletter, plain (format=flowed) + HTML
    t = start + 1
    b = "=_tm_news"
    plain = _qp(_flowed(_NEWSLETTER))
    html = _qp(("<html><body>" + "".join(f"<p>{p}</p>" for p in _NEWSLETTER.split("\n\n")) +
                "</body></html>").encode("utf-8"))
    body = (f"--{b}\r\nContent-Type: text/plain; charset=utf-8; format=flowed\r\n"
            f"Content-Transfer-Encoding: quoted-printable\r\n\r\n").encode() + plain + (
        f"\r\n--{b}\r\nContent-Type: text/html; charset=utf-8\r\n"
        f"Content-Transfer-Encoding: quoted-printable\r\n\r\n").encode() + html + f"\r\n--{b}--\r\n".encode()
    out.append(GenMessage(folder, (), t, head(
        t, f"<news.{start:x}@stadtwerke.example>",
        encode_words("Stadtwerke Musterstadt", "UTF-8", "Q") + " <newsletter@stadtwerke.example>",
        encode_words("Newsletter März: Änderungen bei Öffnungszeiten und Abholung", "UTF-8", "Q"),
        f'multipart/alternative; boundary="{b}"', "List-Unsubscribe: <https://stadtwerke.example/abmelden>\r\n")
        + b"\r\n" + body, f"<news.{start:x}@stadtwerke.example>", "sample"))

    # 2. a forwarded message: a note, then the original with its own attachment
    t = start + 2
    inner_b = "=_tm_inner"
    original = head(t - 86400, f"<angebot.{start:x}@mueller-bau.example>",
                    encode_words("Jörg Müller", "UTF-8", "Q") + " <angebot@mueller-bau.example>",
                    encode_words("Angebot für die Renovierung", "UTF-8", "Q"),
                    f'multipart/mixed; boundary="{inner_b}"') + b"\r\n" + (
        f"--{inner_b}\r\nContent-Type: text/plain; charset=utf-8\r\n"
        f"Content-Transfer-Encoding: quoted-printable\r\n\r\n").encode() + _qp(_ORIGINAL.encode("utf-8")) + (
        f"\r\n--{inner_b}\r\nContent-Type: application/pdf; name=Angebot-2024-031.pdf\r\n"
        f"Content-Disposition: attachment; filename=Angebot-2024-031.pdf\r\n"
        f"Content-Transfer-Encoding: base64\r\n\r\n").encode() + _b64_lines(
        b"%PDF-1.4\n% a demo file, not a real offer\n" * 40) + f"--{inner_b}--\r\n".encode()
    b = "=_tm_fwd"
    note = "Hallo,\r\n\r\nhier das Angebot von Müller Bau, siehe unten. Passt dir Dienstag?\r\n\r\nGrüße\r\nAnna\r\n"
    body = (f"--{b}\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n"
            ).encode() + note.encode("utf-8") + (
        f"\r\n--{b}\r\nContent-Type: message/rfc822\r\nContent-Disposition: inline\r\n\r\n").encode() + \
        original + f"\r\n--{b}--\r\n".encode()
    out.append(GenMessage(folder, (), t, head(
        t, f"<fwd.{start:x}@demo.example.org>", encode_words("Anna Schäfer", "UTF-8", "Q") + " <anna@example.net>",
        encode_words("Fwd: Angebot für die Renovierung", "UTF-8", "Q"), f'multipart/mixed; boundary="{b}"')
        + b"\r\n" + body, f"<fwd.{start:x}@demo.example.org>", "sample"))

    # 3. a bounce: explanation, delivery status, the returned message's headers
    t = start + 3
    b = "=_tm_bounce"
    returned = (f"From: {me}\r\nTo: <jo.nobody@nowhere.example>\r\nSubject: Lunch on Friday?\r\n"
                f"Date: {_fmt_date(t - 60, 1)}\r\nMessage-ID: <lunch.{start:x}@demo.example.org>\r\n")
    body = (f"--{b}\r\nContent-Type: text/plain; charset=us-ascii\r\n\r\n"
            "This is the mail system at host mail.example.org.\r\n\r\n"
            "I'm sorry to have to inform you that your message could not be delivered to one or more\r\n"
            "recipients.\r\n\r\n"
            "<jo.nobody@nowhere.example>: host mx.nowhere.example[192.0.2.25] said: 550 5.1.1\r\n"
            "    <jo.nobody@nowhere.example>: Recipient address rejected: User unknown\r\n"
            f"\r\n--{b}\r\nContent-Type: message/delivery-status\r\n\r\n"
            "Reporting-MTA: dns; mail.example.org\r\nArrival-Date: " + _fmt_date(t - 60, 1) + "\r\n\r\n"
            "Final-Recipient: rfc822; jo.nobody@nowhere.example\r\nAction: failed\r\nStatus: 5.1.1\r\n"
            "Remote-MTA: dns; mx.nowhere.example\r\n"
            "Diagnostic-Code: smtp; 550 5.1.1 <jo.nobody@nowhere.example>: Recipient address rejected:\r\n"
            "    User unknown\r\n"
            f"\r\n--{b}\r\nContent-Type: text/rfc822-headers\r\n\r\n" + returned + f"\r\n--{b}--\r\n").encode()
    out.append(GenMessage(folder, (), t, head(
        t, f"<bounce.{start:x}@mail.example.org>", "Mail Delivery System <MAILER-DAEMON@mail.example.org>",
        "Undelivered Mail Returned to Sender",
        f'multipart/report; report-type=delivery-status; boundary="{b}"') + b"\r\n" + body,
        f"<bounce.{start:x}@mail.example.org>", "sample"))
    return out
