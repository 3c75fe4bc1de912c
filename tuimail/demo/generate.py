"""Deterministic, realistic mail for the demo, the benchmark and the tests.

Standard library only, and fast: every message is assembled from pre-encoded
byte fragments (no ``email.message`` objects), so 100,000 messages take a
couple of seconds.  The same ``seed`` always yields the same bytes.

The mix (``kinds="mixed"``): ~60% text/plain (some format=flowed, quoted
replies, ``-- `` signatures), ~15% multipart/alternative (plain + HTML with
links and a tracking pixel), ~8% HTML only (link text that differs from the
target), ~10% multipart/mixed with a small attachment (some RFC 2231 non-ASCII
file names), the rest with non-ASCII subjects as RFC 2047 encoded words in
UTF-8 (B and Q), ISO-8859-1, Shift_JIS and KOI8-R.  About 30% of messages
reply to an earlier one (In-Reply-To/References, depth up to 6).

``write_maildir`` drops messages straight into a Dovecot Maildir++ tree.
"""

from __future__ import annotations

import base64
import binascii
import itertools
import os
import random
import re
import socket
import textwrap
import time
import unicodedata
import zlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from urllib.parse import quote

__all__ = [
    "DEMO_USER_ADDR",
    "DEMO_USER_NAME",
    "KINDS",
    "GenMessage",
    "DEMO_START",
    "demo_folders",
    "encode_words",
    "generate",
    "hostile_messages",
    "maildir_folder_dir",
    "write_maildir",
]

DEMO_USER_NAME = "Demo User"
DEMO_USER_ADDR = "demo@example.org"

#: The message kinds and their share of a "mixed" run.
KINDS: dict[str, float] = {
    "plain": 0.60,
    "alternative": 0.15,
    "html": 0.08,
    "attachment": 0.10,
    "encoded": 0.07,
}

CRLF = b"\r\n"


@dataclass
class GenMessage:
    """One generated message, ready for APPEND or a maildir file."""

    folder: str
    flags: tuple[str, ...]
    date: int  # epoch seconds, also the INTERNALDATE
    raw: bytes  # full RFC 5322 message, CRLF line endings
    message_id: str  # with the angle brackets
    kind: str = "plain"  # which template built it (see KINDS; "spam", "big", "hostile")


# ---------------------------------------------------------------------------
# Word lists
# ---------------------------------------------------------------------------

_FIRST_ASCII = (
    "Alice Bob Carol David Emma Frank Grace Hiro Isabel Jack Karin Liam Maria Noah "
    "Olivia Pedro Quinn Rosa Sam Tara Uma Victor Wendy Xavier Yusuf Zoe Ahmed Priya "
    "Chen Fatima Lars Ingrid Mateo Sofia Kwame Aisha Dmitri Elena Giulia Hannah "
    "Oliver Nadia Tomás Ryan Mei"
).split()
_FIRST_INTL = "José Zoë Renée Søren Björn Łukasz Ştefan Çağla Noël Jürgen Anaïs Håkon".split()
_LAST = (
    "Smith Müller García Nguyen Kowalski Johansson O'Brien Dubois Rossi Tanaka "
    "Papadopoulos Novák Fernández Schröder Ødegaard Çelik Kim Patel Okafor Brown "
    "Wilson Jensen Moreau Silva Haddad Ivanova Lindqvist Costa Becker Ahn"
).split()
# Whole names that do not fit the first+last pattern, with their mailbox.
_SPECIAL_PEOPLE = (
    ("Ørjan", "orjan@fjord.example"),
    ("山田太郎", "yamada@example.jp.test"),
    ("José Müller", "jose.mueller@example.com"),
    ("Иван Петров", "ivan.petrov@example.ru.test"),
    ("Ελένη Παπαδοπούλου", "eleni@example.gr.test"),
    ("王芳", "wang.fang@example.cn.test"),
    ("김민준", "minjun.kim@example.kr.test"),
    ("François Lefèvre", "f.lefevre@example.fr.test"),
    ("Zoë Ångström", "zoe@example.se.test"),
    ("Dr. Jane Q. Public, PhD", "jane@uni.test"),
)
_DOMAINS = (
    "example.com", "example.net", "example.org", "mail.example.com", "corp.example.com",
    "uni.test", "acme.example", "startup.example", "research.example.net", "lab.test",
)
_COMPANIES = ("Acme Corp", "Initech", "Globex", "Umbrella Research", "Hooli", "Vandelay Industries")
_TITLES = ("Software Engineer", "Product Manager", "Release Manager", "SRE", "Designer",
           "Head of Infrastructure", "Research Scientist", "CTO")
_MAILERS = (
    "User-Agent: Mozilla Thunderbird",
    "User-Agent: Mutt/2.2.9 (2022-11-12)",
    "X-Mailer: Apple Mail (2.3731.700.6)",
    "X-Mailer: Microsoft Outlook 16.0",
    "User-Agent: Roundcube Webmail/1.6.5",
    "User-Agent: aerc 0.16.0",
)

_NOUNS = (
    "release plan budget roadmap migration schema benchmark dashboard invoice contract "
    "proposal deadline prototype patch build pipeline review design doc survey report "
    "workshop offsite backlog sprint outage postmortem cache index parser sync engine "
    "login page API client server config test suite changelog newsletter onboarding "
    "hiring plan demo slide deck spreadsheet quarterly numbers database backup certificate"
).split()
_VERBS = (
    "review update merge revert ship postpone rewrite benchmark document approve test "
    "refactor split discuss simplify profile deploy archive"
).split()
_ADJS = (
    "new old flaky slow broken final draft revised urgent quick updated internal "
    "experimental stable legacy"
).split()
_WHENS = (
    "Friday", "the end of the week", "next sprint", "the release", "Monday's meeting",
    "the demo", "tomorrow", "the board meeting", "end of Q3", "the holidays",
)
_PLATFORMS = ("Linux", "macOS", "Windows", "the ARM runners", "CI", "Python 3.11", "staging")
_PROJECTS = ("Apollo", "Borealis", "Cobalt", "Delta", "Ember", "Falcon", "Gemini", "Helix")
_WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday")

_SENTENCES = (
    "I had a look at the {n} and I think we should {v} it before {w}.",
    "Could you {v} the {n} when you get a chance?",
    "The {a} {n} is still failing on {p}, see the log below.",
    "Thanks for sending the {n} over, it reads well.",
    "We agreed to {v} the {n} at {w}.",
    "My only concern is the {a} {n}; it may need another pass.",
    "Let me know if the {n} works for you or if I should {v} it again.",
    "Attached you will find the {a} {n} we talked about.",
    "I'm out of office until {w}, so please ping {f} about the {n}.",
    "Numbers for the {n} look much better since we decided to {v} the {n2}.",
    "Is there any reason we can't {v} the {n} this week?",
    "Just a quick reminder that the {n} is due {w}.",
    "I pushed a fix for the {a} {n}; CI on {p} is green again.",
    "The {n2} depends on the {n}, so we need to {v} that first.",
    "Happy to {v} the {n} together if that helps.",
    "We measured the {n} twice and the results are consistent.",
    "Can we move the {n} discussion to {w}?",
    "I don't think the {a} {n} is worth keeping around.",
    "Good catch on the {n}, I missed that completely.",
    "Sorry for the late reply, it has been a busy week.",
    "See https://docs.example.com/{n}/{v} for the background.",
    "For what it's worth, {f} suggested we {v} the {n2} instead.",
)
_PY_TOPICS = (
    "free-threaded builds", "the GIL", "TypeVar defaults", "asyncio TaskGroup cancellation",
    "deprecating a stdlib module", "the new REPL", "PEP 703 rollout", "immortal objects",
    "the JIT", "subinterpreters", "removing dead batteries", "stable ABI", "wheel tags",
    "the release schedule", "sys.monitoring", "f-string grammar",
)
_TX_TOPICS = (
    "DataTable performance", "ScrollView Line API", "CSS variables", "the 1.0 release",
    "Input widget focus", "snapshot tests", "keyboard bindings", "themes", "TextArea syntax",
    "workers and threads", "call_from_thread deadlock", "mouse support over SSH",
)
_SUBJECT_TEMPLATES = (
    "{A} {n} for {P}",
    "Question about the {n}",
    "{P}: {n} {s}",
    "Meeting notes {d}",
    "Can you {v} the {n}?",
    "[{P}] {n} ({k})",
    "Re-thinking the {n}",
    "Invitation: {P} sync @ {d} {h}:00",
    "Your invoice #{k}",
    "FYI: {n} {s}",
    "{n} vs {n2}",
    "Draft {n} attached",
    "Lunch {d}?",
    "Heads up: {a} {n}",
    "Weekly {n} update",
    "Help needed with the {n}",
)
_STATUS = ("done", "blocked", "ready for review", "delayed", "shipped", "WIP", "on hold")

# Non-ASCII subjects with the charsets they can be written in.
_INTL_SUBJECTS = (
    ("Grüße aus München", ("UTF-8", "ISO-8859-1")),
    ("Réunion de l'équipe – ordre du jour", ("UTF-8",)),
    ("Café à 15h ?", ("UTF-8", "ISO-8859-1")),
    ("Año nuevo, presupuesto nuevo", ("UTF-8", "ISO-8859-1")),
    ("Ærlig talt: årsrapport", ("UTF-8", "ISO-8859-1")),
    ("会議の議事録（第3四半期）", ("UTF-8", "Shift_JIS")),
    ("お疲れ様です：来週の予定", ("UTF-8", "Shift_JIS")),
    ("Отчёт за квартал", ("UTF-8", "KOI8-R")),
    ("Привет! Встреча в пятницу", ("UTF-8", "KOI8-R")),
    ("周末聚餐 🍜", ("UTF-8",)),
    ("Ελληνικά: συνάντηση αύριο", ("UTF-8",)),
    ("Deploy finished ✅ 🚀", ("UTF-8",)),
    ("Zażółć gęślą jaźń — test", ("UTF-8",)),
    ("회의 일정 변경", ("UTF-8",)),
    ("Çalışma planı ve öneriler", ("UTF-8",)),
    ("Naïve question about the façade", ("UTF-8", "ISO-8859-1")),
)
_INTL_BODIES = {
    "ISO-8859-1": "Bonjour à tous,\n\nvoici le compte rendu de la réunion. Merci de le relire "
                  "avant vendredi.\n\nGrüße,\nJürgen",
    "Shift_JIS": "お疲れ様です。\n\n来週の会議の資料を添付しました。ご確認をお願いします。"
                 "\n\nよろしくお願いいたします。",
    "KOI8-R": "Добрый день!\n\nОтчёт за квартал готов, посмотрите, пожалуйста, до пятницы.\n\nСпасибо,\nИван",
    "UTF-8": "Hi,\n\nquick note in several scripts: Grüße, привет, こんにちは, 你好, γεια σου, 안녕하세요 👋\n\n"
             "Cheers",
}
_SPAM_SUBJECTS = (
    "You have WON a $1,000 gift card!!!", "URGENT: verify your account now",
    "Cheap watches – 90% off today only", "Your parcel is waiting for delivery",
    "Re: your invoice (overdue)", "Congratulations, you were selected",
    "Last chance: claim your reward", "Security alert: unusual sign-in",
    "Make $$$ from home", "Your mailbox is almost full",
)
_SPAM_SENDERS = (
    ("Prize Department", "winner@promo-rewards.invalid"),
    ("Account Security", "security@paypa1.invalid"),
    ("Delivery Service", "track@parcel-notice.invalid"),
    ("Best Deals", "deals@cheap-offers.invalid"),
    ("IT Helpdesk", "helpdesk@mailbox-quota.invalid"),
)
_ATTACH_NAMES = (
    ("report-q3.pdf", "pdf"), ("invoice_2023-11.pdf", "pdf"), ("screenshot.png", "png"),
    ("photo.png", "png"), ("logs.zip", "zip"), ("slides.pdf", "pdf"), ("budget.zip", "zip"),
    ("Präsentation Q3.pdf", "pdf"), ("résumé.pdf", "pdf"), ("写真.png", "png"),
    ("отчёт.zip", "zip"), ("Übersicht März.pdf", "pdf"), ("naïve-bayes.zip", "zip"),
    ("Jahresabschlussbericht für das Geschäftsjahr 2023 – endgültige Fassung.pdf", "pdf"),
)
_MIME_TYPES = {"pdf": b"application/pdf", "png": b"image/png", "zip": b"application/zip"}
_MAGIC = {"pdf": b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n", "png": b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR",
          "zip": b"PK\x03\x04\x14\x00\x00\x00\x08\x00"}

_DAY_NAMES = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_MON_NAMES = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
_ZONES = ((0, "+0000"), (60, "+0100"), (120, "+0200"), (-300, "-0500"), (-480, "-0800"),
          (540, "+0900"), (330, "+0530"), (-180, "-0300"))

_POOL_SEED = 0x7475696D  # fixed: pools are data, the per-call seed picks from them


# ---------------------------------------------------------------------------
# Encoding helpers
# ---------------------------------------------------------------------------

def _q_encode(data: bytes) -> str:
    out = []
    for b in data:
        c = chr(b)
        if c == " ":
            out.append("_")
        elif c.isascii() and (c.isalnum() or c in "!*+-/"):
            out.append(c)
        else:
            out.append(f"={b:02X}")
    return "".join(out)


def encode_words(text: str, charset: str = "UTF-8", enc: str = "B") -> str:
    """RFC 2047 encoded words for ``text``, each at most 75 characters,
    separated by CRLF + space (header folding).  Never splits a character."""
    codec = charset.lower()
    words: list[str] = []
    chunk = ""

    def enc_chunk(s: str) -> str:
        data = s.encode(codec)
        body = base64.b64encode(data).decode() if enc == "B" else _q_encode(data)
        return f"=?{charset}?{enc}?{body}?="

    for ch in text:
        trial = chunk + ch
        if chunk and len(enc_chunk(trial)) > 75:
            words.append(enc_chunk(chunk))
            chunk = ch
        else:
            chunk = trial
    if chunk:
        words.append(enc_chunk(chunk))
    return "\r\n ".join(words)


def _format_address(name: str, addr: str, style: int) -> str:
    """A From/To value.  ``style`` picks the encoding of a non-ASCII name."""
    if name.isascii():
        if any(c in name for c in ",.()<>@;:\"[]") or style % 2:
            q = name.replace("\\", "\\\\").replace('"', '\\"')
            return f'"{q}" <{addr}>'
        return f"{name} <{addr}>"
    try:
        name.encode("latin-1")
        latin = True
    except UnicodeEncodeError:
        latin = False
    choice = style % 3
    if latin and choice == 2:
        word = encode_words(name, "ISO-8859-1", "Q")
    elif choice == 1:
        word = encode_words(name, "UTF-8", "Q")
    else:
        word = encode_words(name, "UTF-8", "B")
    return f"{word} <{addr}>"


def _ascii_slug(text: str) -> str:
    s = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    s = "".join(c if c.isalnum() else "." for c in s.lower())
    return ".".join(p for p in s.split(".") if p)


_DAY_PREFIX: dict[int, str] = {}
_HHMM = [f"{m // 60:02d}:{m % 60:02d}:" for m in range(1440)]
_SS = [f"{x:02d} " for x in range(60)]


def _fmt_date(t: int, zone: int) -> str:
    """RFC 5322 date of epoch ``t`` shown in time zone ``_ZONES[zone]``."""
    off, off_s = _ZONES[zone]
    day, sec = divmod(t + off * 60, 86400)
    prefix = _DAY_PREFIX.get(day)
    if prefix is None:
        tm = time.gmtime(day * 86400)
        prefix = _DAY_PREFIX[day] = (
            f"{_DAY_NAMES[tm.tm_wday]}, {tm.tm_mday} {_MON_NAMES[tm.tm_mon - 1]} {tm.tm_year} ")
    return prefix + _HHMM[sec // 60] + _SS[sec % 60] + off_s


def _b64_lines(data: bytes) -> bytes:
    return base64.encodebytes(data).replace(b"\n", CRLF)


def _crlf(text: str) -> str:
    return text.replace("\r\n", "\n").replace("\n", "\r\n")


def _html_escape(s: str) -> str:
    return s.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace('"', "&quot;")


def _rfc2231(param: str, value: str) -> bytes:
    """``filename*=UTF-8''...`` (or ``filename*0*=...; filename*1*=...`` when long)."""
    enc = quote(value.encode("utf-8"), safe="")
    if len(enc) <= 60:
        return f"{param}*=UTF-8''{enc}".encode()
    tokens = re.findall(r"%[0-9A-F]{2}|.", enc)  # never cut a %XX triplet
    chunks: list[str] = []
    cur = ""
    for tok in tokens:
        if len(cur) + len(tok) > 60:
            chunks.append(cur)
            cur = ""
        cur += tok
    chunks.append(cur)
    parts = [f"{param}*{k}*={chunk}" if k else f"{param}*0*=UTF-8''{chunk}"
             for k, chunk in enumerate(chunks)]
    return ";\r\n\t".join(parts).encode()


# ---------------------------------------------------------------------------
# Pools (built once, from a fixed seed)
# ---------------------------------------------------------------------------

class _Person:
    __slots__ = ("name", "first", "addr", "header", "sig", "domain", "hello", "bye", "return_path")

    def __init__(self, name: str, addr: str, style: int, sig: bytes) -> None:
        self.name = name
        self.first = name.split()[0].rstrip(",") if " " in name else name
        self.hello = f"Hi {self.first},\r\n\r\n".encode()
        self.bye = f"\r\n\r\nCheers,\r\n{self.first}\r\n".encode()
        self.return_path = f"Return-Path: <{addr}>\r\n"
        self.addr = addr
        self.domain = addr.rsplit("@", 1)[1]
        self.header = _format_address(name, addr, style)
        self.sig = sig


class _Pools:
    def __init__(self) -> None:
        rng = random.Random(_POOL_SEED)
        people: list[_Person] = []
        firsts = _FIRST_ASCII + _FIRST_INTL
        seen: set[str] = set()
        while len(people) < 190:
            first = rng.choice(firsts)
            last = rng.choice(_LAST)
            name = f"{first} {last}"
            if name in seen:
                continue
            seen.add(name)
            addr = f"{_ascii_slug(first)}.{_ascii_slug(last)}@{rng.choice(_DOMAINS)}"
            people.append(_Person(name, addr, rng.randrange(6), self._sig(rng, name)))
        for name, addr in _SPECIAL_PEOPLE:
            people.append(_Person(name, addr, rng.randrange(6), self._sig(rng, name)))
        self.people = people
        self.demo = _Person(DEMO_USER_NAME, DEMO_USER_ADDR, 0,
                            b"-- \r\nDemo User\r\nhttps://example.org/~demo\r\n")
        self.spammers = [_Person(n, a, 1, b"") for n, a in _SPAM_SENDERS]

        def fill(t: str) -> str:
            return t.format(
                n=rng.choice(_NOUNS), n2=rng.choice(_NOUNS), v=rng.choice(_VERBS),
                a=rng.choice(_ADJS), A=rng.choice(_ADJS).capitalize(), w=rng.choice(_WHENS),
                p=rng.choice(_PLATFORMS), P=rng.choice(_PROJECTS), d=rng.choice(_WEEKDAYS),
                h=rng.randrange(8, 18), k=rng.randrange(100, 99999), s=rng.choice(_STATUS),
                f=rng.choice(_FIRST_ASCII),
            )

        # Paragraphs: plain (wrapped), flowed, HTML; and bullet lists / code now and then.
        self.paras: list[tuple[bytes, bytes, bytes]] = []
        for i in range(400):
            if i % 23 == 5:
                items = [fill("{v} the {n}") for _ in range(rng.randrange(2, 5))]
                plain = "\n".join(f"- {it}" for it in items)
                flowed = plain
                html = "<ul>" + "".join(f"<li>{_html_escape(it)}</li>" for it in items) + "</ul>"
            elif i % 31 == 7:
                code = ("    def sync(folder):\n        uids = fetch_uids(folder)\n"
                        "        return [u for u in uids if u > folder.last_uid]")
                plain = "Something like:\n\n" + code
                flowed = "Something like:\n\n" + "\n".join(" " + ln for ln in code.split("\n"))  # space-stuffed
                html = "<p>Something like:</p>\n<pre>" + _html_escape(code) + "</pre>"
            else:
                text = " ".join(fill(rng.choice(_SENTENCES)) for _ in range(rng.randrange(2, 6)))
                lines = textwrap.wrap(text, 72)
                plain = "\n".join(lines)
                flowed = "\n".join(ln + " " for ln in lines[:-1]) + ("\n" if len(lines) > 1 else "") + lines[-1]
                html = "<p>" + _html_escape(text) + "</p>"
            self.paras.append((_crlf(plain).encode(), _crlf(flowed).encode(),
                               binascii.b2a_qp(_crlf(html).encode() + CRLF, istext=True)))

        self.subjects = [fill(rng.choice(_SUBJECT_TEMPLATES)) for _ in range(1500)]
        self.py_subjects = [rng.choice(("PEP {}: ", "Discussion: ", "", "RFC: ", "Proposal: ")).format(
            rng.randrange(600, 800)) + rng.choice(_PY_TOPICS) for _ in range(300)]
        self.tx_subjects = [rng.choice(("", "Question: ", "Bug: ", "Idea: ", "How to ")) +
                            rng.choice(_TX_TOPICS) for _ in range(300)]
        # the "encoded" kind: (Subject header value, charset); bodies per charset
        self.intl: list[tuple[str, str]] = []
        for text, charsets in _INTL_SUBJECTS:
            for cs in charsets:
                for enc in (("B", "Q") if cs in ("UTF-8", "ISO-8859-1") else ("B",)):
                    self.intl.append((encode_words(text, cs, enc), cs))
        self.intl_bodies: dict[str, tuple[str, bytes]] = {}
        self.intl_text = {cs: _crlf(text).encode() + CRLF for cs, text in _INTL_BODIES.items()}
        for cs, text in _INTL_BODIES.items():
            data = _crlf(text).encode(cs.lower()) + CRLF
            if cs == "Shift_JIS":
                self.intl_bodies[cs] = ("base64", _b64_lines(data))
            elif cs == "KOI8-R":
                self.intl_bodies[cs] = ("8bit", data)
            else:
                self.intl_bodies[cs] = ("quoted-printable", binascii.b2a_qp(data, istext=True))
        # Attachments: a few sizes per type, base64 done once.
        self.attachments: list[tuple[bytes, bytes, bytes]] = []  # (ctype line params, disposition, b64)
        blobs = {}
        for kind in ("pdf", "png", "zip"):
            blobs[kind] = [_b64_lines(_MAGIC[kind] + rng.randbytes(size))
                           for size in (2100, 3900, 6500)]
        for fname, kind in _ATTACH_NAMES:
            for blob in blobs[kind]:
                if fname.isascii():
                    ct = _MIME_TYPES[kind] + f'; name="{fname}"'.encode()
                    disp = f'attachment; filename="{fname}"'.encode()
                else:
                    ct = _MIME_TYPES[kind] + b"; " + _rfc2231("name", fname)
                    disp = b"attachment;\r\n\t" + _rfc2231("filename", fname)
                self.attachments.append((ct, disp, blob))
        self._big: bytes | None = None

    @staticmethod
    def _sig(rng: random.Random, name: str) -> bytes:
        r = rng.random()
        if r < 0.35:
            return b""
        if r < 0.7:
            return f"-- \n{name}\n{rng.choice(_TITLES)} | {rng.choice(_COMPANIES)}\n".replace(
                "\n", "\r\n").encode()
        return (f"-- \n{name}\n{rng.choice(_TITLES)}, {rng.choice(_COMPANIES)}\n"
                f"+1 555 01{rng.randrange(10, 99)} | https://{rng.choice(_DOMAINS)}/\n").replace(
                    "\n", "\r\n").encode()

    def big_attachment(self) -> bytes:
        if self._big is None:
            self._big = _b64_lines(random.Random(_POOL_SEED + 1).randbytes(2 * 1024 * 1024))
        return self._big


@lru_cache(maxsize=1)
def _pools() -> _Pools:
    return _Pools()


# ---------------------------------------------------------------------------
# The generator
# ---------------------------------------------------------------------------

class _Thread:
    __slots__ = ("subject", "msgs", "partner")

    def __init__(self, subject: str, partner: _Person | None = None) -> None:
        self.subject = subject  # the root's Subject header value, without "Re: "
        self.partner = partner  # Sent folder: whom the demo user writes to
        # (message_id, references bytes (without self), depth, author, quotable text, date)
        self.msgs: list[tuple[str, str, int, _Person, bytes, int]] = []


def _kind_table(kinds: str) -> list[tuple[float, str]]:
    if kinds in ("mixed", "spam"):
        names = list(KINDS)
    else:
        names = [k.strip() for k in kinds.split(",") if k.strip()]
        unknown = [k for k in names if k not in KINDS]
        if unknown or not names:
            raise ValueError(f"unknown message kind(s) {unknown or kinds!r}; choose from {list(KINDS)}")
    total = sum(KINDS[k] for k in names)
    acc = 0.0
    table = []
    for k in names:
        acc += KINDS[k] / total
        table.append((acc, k))
    table[-1] = (1.01, table[-1][1])
    return table


def _profile_for(folder: str, kinds: str) -> str:
    low = folder.lower()
    if kinds == "spam" or low in ("junk", "spam"):
        return "spam"
    if low in ("sent", "drafts") or low.endswith("/sent") or low.startswith("sent"):
        return "sent"
    if low.startswith("lists/") or low.startswith("lists."):
        return "list"
    return "inbox"


def _quote(text: bytes, limit: int = 1600) -> bytes:
    """Quote a body for a reply: drop the signature, keep about ``limit``
    bytes of whole lines, prefix every line with "> " (so older quotes
    become "> > ...", the multi-level look)."""
    cut = text.find(b"\r\n-- \r\n")
    if cut >= 0:
        text = text[:cut]
    if len(text) > limit:
        end = text.rfind(CRLF, 0, limit)
        text = text[:end] if end > 0 else text[:limit]
    quoted = b"> " + text.rstrip(b"\r\n").replace(CRLF, b"\r\n> ")
    # an empty line quotes as ">" (no trailing space: in format=flowed that would join lines)
    return quoted.replace(b"> \r\n", b">\r\n")


def generate(n: int, seed: int = 1, *, folder: str = "INBOX", start: int = 1_700_000_000,
             kinds: str = "mixed", big_attachment_every: int = 0) -> Iterator[GenMessage]:
    """Yield ``n`` messages for ``folder`` in date order (oldest first).

    ``kinds`` is "mixed" (the realistic mix), "spam", or a comma-separated
    subset of :data:`KINDS` (their weights renormalised).  With
    ``big_attachment_every=k`` every k-th message carries a 2 MB attachment
    beside a short text part.  Folder names steer the roles: "Sent"/"Drafts"
    are written by the demo user, "Lists/<name>" are thread-heavy list
    traffic, "Junk" is spam.
    """
    P = _pools()
    rng = random.Random(f"{seed}/{folder}/{kinds}")
    r = rng.random
    table = _kind_table(kinds)
    profile = _profile_for(folder, kinds)
    people = P.people
    n_people = len(people)
    paras = P.paras
    n_paras = len(paras)
    demo = P.demo
    b2a_qp = binascii.b2a_qp
    salt = f"{zlib.crc32(f'{seed}/{folder}'.encode()) & 0xFFFFFF:06x}"
    is_drafts = folder.lower() == "drafts"

    list_name = folder.split("/", 1)[1] if profile == "list" and "/" in folder else (
        folder[6:] if profile == "list" else "")
    list_slug = _ascii_slug(list_name).replace(".", "-") or "list"
    list_addr = f"{list_slug}@lists.example.org"
    if profile == "list":
        subjects = P.py_subjects if "python" in list_slug else (
            P.tx_subjects if "textual" in list_slug else P.subjects)
        tag = "Python-Dev" if "python" in list_slug else list_name.capitalize() or "List"
        list_prefix = f"[{tag}] "
        reply_p = 0.7
        max_threads = 10  # few live threads: long discussions
        list_headers = (f"List-Id: {list_name} <{list_slug}.lists.example.org>\r\n"
                        f"List-Post: <mailto:{list_addr}>\r\n"
                        f"List-Unsubscribe: <mailto:{list_slug}-leave@lists.example.org>\r\n"
                        f"Precedence: list\r\n")
        to_header = f"{list_slug} <{list_addr}>"
    else:
        subjects = P.subjects
        list_prefix = ""
        reply_p = 0.32 if profile != "spam" else 0.0
        max_threads = 48
        list_headers = ""
        to_header = demo.header
    n_subjects = len(subjects)
    n_zones = len(_ZONES)
    default_greet = "all" if profile == "list" else "Demo"
    default_hello = f"Hi {default_greet},\r\n\r\n".encode()
    if list_prefix:
        subjects = [list_prefix + x for x in subjects]
    n_mailers = len(_MAILERS)

    threads: list[_Thread] = []
    t = start
    big_every = big_attachment_every
    for i in range(n):
        t += 60 + int(r() * r() * 14400)
        date = t
        x = r()
        kind = next(k for bound, k in table if x < bound)  # the last bound is above 1
        if big_every and (i + 1) % big_every == 0:
            kind = "big"
        if profile == "spam":
            kind = "spam"

        # --- who, what, which thread --------------------------------------
        if profile == "spam":
            author = P.spammers[int(r() * len(P.spammers))]
        elif profile == "sent":
            author = demo
        else:
            author = people[int(r() * n_people)]
        reply_to = None
        thread = None
        if kind != "encoded" and threads and r() < reply_p:
            thread = threads[len(threads) - 1 - int(r() * r() * len(threads))]
            msgs = thread.msgs
            parent = msgs[-1] if r() < 0.75 else msgs[int(r() * len(msgs))]
            if parent[2] >= 6:
                parent = msgs[0]
            reply_to = parent
            if profile != "sent" and parent[3] is author and n_people > 1:
                author = people[(people.index(author) + 1) % n_people] if profile != "spam" else author
        if profile == "sent":
            # The demo user writes to someone; a reply of theirs continues
            # the conversation with that thread's first correspondent.
            partner = (thread.partner if thread is not None and thread.partner is not None
                       else people[int(r() * n_people)])
            recipient = partner.header
            greet_to = partner.first
            hello = partner.hello
        else:
            partner = None
            recipient = to_header
            if reply_to is not None:
                greet_to = reply_to[3].first
                hello = reply_to[3].hello
            else:
                greet_to = default_greet
                hello = default_hello

        if reply_to is not None and thread is not None:  # (set together)
            y = r()
            subject = ("RE: " if y < 0.04 else "AW: " if y < 0.07 else "Re: ") + thread.subject
        elif kind == "encoded":
            subject, charset = P.intl[int(r() * len(P.intl))]
            subject = list_prefix + subject
        elif kind == "spam":
            subject = _SPAM_SUBJECTS[int(r() * len(_SPAM_SUBJECTS))]
        else:
            subject = subjects[int(r() * n_subjects)]

        msgid = f"<{date:x}.{i:05x}{salt}@{author.domain}>"

        # --- body text ------------------------------------------------------
        flowed = kind == "plain" and r() < 0.25
        pi = int(r() * n_paras)
        np_ = 1 + int(r() * 3)
        chosen = [paras[(pi + k * 37) % n_paras] for k in range(np_)]
        col = 1 if flowed else 0
        new_text = b"".join((hello, b"\r\n\r\n".join([c[col] for c in chosen]), author.bye))
        sig = CRLF + author.sig if author.sig and r() < 0.8 else b""
        if reply_to is not None:
            attribution = f"On {_fmt_date(reply_to[5], 0)[:-9]}, {reply_to[3].name} wrote:\r\n".encode()
            quoted = _quote(reply_to[4])
            if flowed:  # RFC 3676: nested quote markers are ">>", not "> >"
                while b"> >" in quoted:
                    quoted = quoted.replace(b"> >", b">>")
            if r() < 0.55:  # bottom-posting
                body_text = b"".join((attribution, quoted, b"\r\n\r\n", new_text, sig))
            else:
                body_text = b"".join((new_text, sig, CRLF, attribution, quoted, CRLF))
        else:
            body_text = new_text + sig

        # --- headers --------------------------------------------------------
        if reply_to is not None:
            parent_id = reply_to[0]
            refs = f"{reply_to[1]}\r\n {parent_id}" if reply_to[1] else parent_id
            thread_hdrs = f"In-Reply-To: {parent_id}\r\nReferences: {refs}\r\n"
        else:
            refs = ""
            thread_hdrs = ""
        cc = (f"Cc: {people[int(r() * n_people)].header}\r\n"
              if profile != "spam" and r() < 0.18 else "")
        date_s = _fmt_date(date, int(r() * n_zones))
        head = (
            f"{author.return_path}"
            f"Received: from mx.example.net (mx.example.net [192.0.2.{1 + i % 250}])\r\n"
            f"\tby mail.example.org with ESMTPS id {date:X}{i:04X}\r\n"
            f"\tfor <{DEMO_USER_ADDR}>; {date_s}\r\n"
            f"Date: {date_s}\r\n"
            f"From: {author.header}\r\nTo: {recipient}\r\n{cc}"
            f"Subject: {subject}\r\nMessage-ID: {msgid}\r\n{thread_hdrs}{list_headers}"
            f"{_MAILERS[i % n_mailers]}\r\nMIME-Version: 1.0\r\n"
        )

        # --- MIME structure -------------------------------------------------
        cte_text = "7bit" if body_text.isascii() else "8bit"
        if kind == "plain":
            head += ("Content-Type: text/plain; charset=utf-8" + ("; format=flowed" if flowed else "")
                     + f"\r\nContent-Transfer-Encoding: {cte_text}\r\n\r\n")
            body = body_text
        elif kind == "encoded":
            cte, body = P.intl_bodies[charset]
            head += f"Content-Type: text/plain; charset={charset}\r\nContent-Transfer-Encoding: {cte}\r\n\r\n"
            body_text = P.intl_text[charset]
        elif kind in ("alternative", "html", "spam"):
            link_id = f"{date:x}{i:x}"
            if kind == "spam":
                link = f'<a href="https://login-verify.invalid/r/{link_id}">https://www.paypal.example/account</a>'
            elif r() < 0.5:
                link = f'<a href="https://click.example.net/l/{link_id}?u=demo">View this message in your browser</a>'
            else:
                link = f'<a href="https://track.example.net/c/{link_id}">https://docs.example.com/guide</a>'
            title = "Message" if "=?" in subject else _html_escape(subject)
            top = (f'<!DOCTYPE html>\r\n<html><head><meta charset="utf-8"><title>{title}</title></head>\r\n'
                   f'<body style="font-family: sans-serif">\r\n<p>Hi {_html_escape(greet_to)},</p>\r\n')
            tail = (f"<p>{link}</p>\r\n"
                    f'<p>Unsubscribe: <a href="https://news.example.com/unsub?id={link_id}">'
                    "manage preferences</a></p>\r\n"
                    f'<img src="https://track.example.net/o/{link_id}.gif" width="1" height="1" alt="">\r\n'
                    "</body></html>\r\n")
            # paragraphs are quoted-printable already (each ends with CRLF)
            html_qp = b"".join((b2a_qp(top.encode(), istext=True), *[c[2] for c in chosen],
                                b2a_qp(tail.encode(), istext=True)))
            if kind == "alternative":
                boundary = f"=_tm_{i:x}_{int(r() * 0xFFFFFF):06x}"
                head += f'Content-Type: multipart/alternative;\r\n\tboundary="{boundary}"\r\n\r\n'
                bb = boundary.encode()
                body = b"".join((
                    b"This is a multi-part message in MIME format.\r\n\r\n--", bb,
                    b"\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: ",
                    cte_text.encode(), b"\r\n\r\n", body_text, b"\r\n--", bb,
                    b"\r\nContent-Type: text/html; charset=utf-8\r\n"
                    b"Content-Transfer-Encoding: quoted-printable\r\n\r\n",
                    html_qp, b"\r\n--", bb, b"--\r\n"))
            else:
                head += ("Content-Type: text/html; charset=utf-8\r\n"
                         "Content-Transfer-Encoding: quoted-printable\r\n\r\n")
                body = html_qp
        else:  # attachment / big
            if kind == "big":
                name = f"capture-{i}.tar.gz"
                a_ct = f'application/gzip; name="{name}"'.encode()
                a_disp = f'attachment; filename="{name}"'.encode()
                a_data = P.big_attachment()
            else:
                a_ct, a_disp, a_data = P.attachments[int(r() * len(P.attachments))]
            boundary = f"=_tm_{i:x}_{int(r() * 0xFFFFFF):06x}"
            head += f'Content-Type: multipart/mixed;\r\n\tboundary="{boundary}"\r\n\r\n'
            bb = boundary.encode()
            body = b"".join((
                b"--", bb, b"\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: ",
                cte_text.encode(), b"\r\n\r\n", body_text, b"\r\n--", bb,
                b"\r\nContent-Type: ", a_ct, b"\r\nContent-Disposition: ", a_disp,
                b"\r\nContent-Transfer-Encoding: base64\r\n\r\n", a_data, b"--", bb, b"--\r\n"))

        raw = head.encode() + body

        # --- flags ----------------------------------------------------------
        f = r()
        if is_drafts:
            flags: tuple[str, ...] = ("\\Draft", "\\Seen")
        elif profile == "sent":
            flags = ("\\Seen",)
        elif f < 0.70:
            g = r()
            if g < 0.043:
                flags = ("\\Flagged", "\\Seen")
            elif g < 0.115:
                flags = ("\\Answered", "\\Seen")
            else:
                flags = ("\\Seen",)
        else:
            flags = ("\\Flagged",) if r() < 0.03 else ()

        yield GenMessage(folder, flags, date, raw, msgid, kind)

        # --- thread bookkeeping ----------------------------------------------
        quotable = body_text[:2000]
        if reply_to is not None and thread is not None:
            thread.msgs.append((msgid, refs, reply_to[2] + 1, author, quotable, date))
        elif kind not in ("spam", "big"):
            th = _Thread(subject, partner)
            th.msgs.append((msgid, "", 1, author, quotable, date))
            threads.append(th)
            if len(threads) > max_threads:
                del threads[0]


# ---------------------------------------------------------------------------
# The demo set
# ---------------------------------------------------------------------------

DEMO_START = 1_700_000_000


def _simple_message(folder: str, date: int, msgid: str, from_: str, subject: str,
                    content_type: str, cte: str, body: bytes, *, extra: str = "",
                    flags: tuple[str, ...] = (), kind: str = "hostile") -> GenMessage:
    head = (f"Date: {_fmt_date(date, 1)}\r\nFrom: {from_}\r\n"
            f"To: {DEMO_USER_NAME} <{DEMO_USER_ADDR}>\r\nSubject: {subject}\r\n"
            f"Message-ID: {msgid}\r\n{extra}MIME-Version: 1.0\r\n"
            f"Content-Type: {content_type}\r\nContent-Transfer-Encoding: {cte}\r\n\r\n")
    return GenMessage(folder, flags, date, head.encode() + body, msgid, kind)


def hostile_messages(folder: str = "INBOX", start: int = DEMO_START) -> list[GenMessage]:
    """Harmless messages that try what hostile mail tries: terminal escapes in
    encoded words, Textual markup in a subject, a bidi-override file name,
    header injection through a decoded newline, a path in a file name,
    ``&#27;`` in HTML, look-alike links, zero-width characters in a name."""
    P = _pools()
    out: list[GenMessage] = []
    sender = P.people[3].header
    t = start

    def nid(k: int) -> str:
        return f"<hostile.{k}.{start:x}@demo.example.org>"

    explain = (b"This message is a harmless test of how tuimail shows hostile text.\r\n"
               b"Nothing here should change your terminal, run an action or hide a file type.\r\n")
    # 1. OSC "set window title" + BEL inside an RFC 2047 encoded subject
    out.append(_simple_message(
        folder, t + 1, nid(1), sender,
        encode_words("Terminal title test \x1b]0;pwned\x07 (should show as text)", "UTF-8", "B"),
        "text/plain; charset=utf-8", "7bit", explain))
    # 2. Textual markup in a plain subject
    out.append(_simple_message(
        folder, t + 2, nid(2), sender, "[@click=app.quit]click me[/] - markup in a subject",
        "text/plain; charset=utf-8", "7bit", explain))
    # 3. bidi override in an attachment name ("invoice\u202Efdp.exe" displays as "invoiceexe.pdf")
    bd = "=_tm_hostile_3"
    bidi_name = "invoice\u202efdp.exe"
    body3 = (f"--{bd}\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 7bit\r\n\r\n"
             ).encode() + explain + (
        f"\r\n--{bd}\r\nContent-Type: application/octet-stream; ").encode() + _rfc2231("name", bidi_name) + (
        b"\r\nContent-Disposition: attachment;\r\n\t") + _rfc2231("filename", bidi_name) + (
        b"\r\nContent-Transfer-Encoding: base64\r\n\r\n") + _b64_lines(b"MZ not really a program\r\n") + (
        f"--{bd}\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Disposition: attachment;\r\n\t"
        ).encode() + _rfc2231("filename", "../../.bashrc") + (
        f"\r\nContent-Transfer-Encoding: 7bit\r\n\r\necho this file name tries to escape the download dir\r\n"
        f"--{bd}--\r\n").encode()
    out.append(_simple_message(
        folder, t + 3, nid(3), sender, "Your invoice (see attachment)",
        f'multipart/mixed; boundary="{bd}"', "7bit", body3))
    # 4. ANSI colour, OSC 8 hyperlink, C1 CSI (U+009B), NUL-free; quoted-printable body
    body4 = explain + ("\r\nRed? \x1b[31mRED\x1b[0m  Clear screen? \x1b[2J  "
                       "Hyperlink: \x1b]8;;https://evil.example/\x1b\\innocent\x1b]8;;\x1b\\  "
                       "C1 CSI: \u009b31m  Bell: \x07  Backspace: abc\x08\x08\x08xyz\r\n").encode()
    out.append(_simple_message(
        folder, t + 4, nid(4), sender, "Escape sequences in a body",
        "text/plain; charset=utf-8", "quoted-printable", binascii.b2a_qp(body4, istext=True)))
    # 5. HTML: &#27; entity, javascript: link, link text that differs from its target
    html5 = (b"<html><body><p>This message is a harmless test.</p>"
             b"<p>Entity escape: &#27;]0;pwned&#7; and &#x1b;[31mred</p>"
             b'<p><a href="https://evil.example/login">https://bank.example.com/login</a></p>'
             b'<p><a href="javascript:alert(1)">click for details</a></p>'
             b'<img src="https://track.example.net/o/hostile.gif" width="1" height="1">'
             b"</body></html>\r\n")
    out.append(_simple_message(
        folder, t + 5, nid(5), sender, "HTML with entities and look-alike links",
        "text/html; charset=utf-8", "quoted-printable", binascii.b2a_qp(html5, istext=True)))
    # 6. zero-width and bidi characters in a display name
    out.append(_simple_message(
        folder, t + 6, nid(6),
        encode_words("Pay\u200bPal Sup\u202eport", "UTF-8", "B") + " <support@paypa1.invalid>",
        "Account notice (look-alike sender)", "text/plain; charset=utf-8", "7bit", explain))
    # 7. a decoded newline trying to forge a header line
    out.append(_simple_message(
        folder, t + 7, nid(7), sender,
        "=?UTF-8?Q?Hello=0D=0ABcc:_victim@example.com=0D=0AX-Evil:_1?=",
        "text/plain; charset=utf-8", "7bit", explain))
    # 8. an unknown charset and a wrong one
    out.append(_simple_message(
        folder, t + 8, nid(8), sender, "=?x-unknown-8?B?SGVsbG8=?= unknown charset",
        "text/plain; charset=x-unknown-8", "8bit", explain + b"Bytes: \xff\xfe\xc3\x28\r\n"))
    return out


def demo_folders() -> list[tuple[str, list[GenMessage]]]:
    """The embedded demo's mailboxes: a few thousand messages, always the same."""
    folders: list[tuple[str, list[GenMessage]]] = []

    inbox = list(generate(2000, seed=11, folder="INBOX", start=DEMO_START))
    # Old mail is mostly read; the newest few are unread.
    for k, m in enumerate(inbox[:-8]):
        if "\\Seen" not in m.flags and k % 40 != 7:
            m.flags = ("\\Seen",) + m.flags
    for m in inbox[-8:]:
        m.flags = tuple(f for f in m.flags if f not in ("\\Seen", "\\Answered"))
    hostile = hostile_messages("INBOX", inbox[-9].date)
    inbox[-8:-8] = hostile
    from tuimail.demo.samples import reader_samples  # a German newsletter, a forward, a bounce (issue 11)
    inbox[-8:-8] = reader_samples("INBOX", hostile[-1].date)
    folders.append(("INBOX", inbox))

    archive = list(generate(1000, seed=12, folder="Archive", start=DEMO_START - 120 * 86400))
    for m in archive:
        if "\\Seen" not in m.flags:
            m.flags = ("\\Seen",) + m.flags
    folders.append(("Archive", archive))
    folders.append(("Sent", list(generate(300, seed=13, folder="Sent", start=DEMO_START))))
    folders.append(("Drafts", list(generate(2, seed=14, folder="Drafts", start=DEMO_START + 80 * 86400,
                                            kinds="plain"))))
    folders.append(("Junk", list(generate(20, seed=15, folder="Junk", start=DEMO_START + 60 * 86400,
                                          kinds="spam"))))
    trash = list(generate(10, seed=16, folder="Trash", start=DEMO_START + 30 * 86400))
    for m in trash:
        m.flags = ("\\Seen",)
    folders.append(("Trash", trash))
    folders.append(("Lists/python-dev", list(generate(300, seed=17, folder="Lists/python-dev",
                                                      start=DEMO_START))))
    folders.append(("Lists/textual", list(generate(300, seed=18, folder="Lists/textual",
                                                   start=DEMO_START))))
    return folders


# ---------------------------------------------------------------------------
# Maildir++ writer (Dovecot layout)
# ---------------------------------------------------------------------------

_FLAG_LETTERS = {"\\Draft": "D", "\\Flagged": "F", "\\Answered": "R", "\\Seen": "S", "\\Deleted": "T"}
_maildir_seq = itertools.count(1)


def _mutf7(name: str) -> str:
    """IMAP modified UTF-7 (RFC 3501 §5.1.3), as Dovecot stores Maildir++ names."""
    out: list[str] = []
    buf: list[str] = []

    def flush() -> None:
        if buf:
            data = "".join(buf).encode("utf-16-be")
            out.append("&" + base64.b64encode(data).decode().rstrip("=").replace("/", ",") + "-")
            buf.clear()

    for ch in name:
        if 0x20 <= ord(ch) <= 0x7E:
            flush()
            out.append("&-" if ch == "&" else ch)
        else:
            buf.append(ch)
    flush()
    return "".join(out)


def maildir_folder_dir(root: Path, folder: str) -> Path:
    """Where Dovecot's Maildir++ layout keeps ``folder`` ("/" separated)."""
    if folder.upper() == "INBOX":
        return Path(root)
    parts = folder.split("/")
    if any(not p or "." in p for p in parts):
        raise ValueError(f"folder name {folder!r} cannot be stored in Maildir++ ('.' is its separator)")
    return Path(root) / ("." + ".".join(_mutf7(p) for p in parts))


def write_maildir(root: Path, messages: Iterable[GenMessage], *, uid: int | None = None,
                  gid: int | None = None) -> int:
    """Write ``messages`` into a Dovecot Maildir++ tree at ``root``; return the count.

    INBOX is ``root/{cur,new,tmp}``; folder "A/B" is ``root/.A.B/`` with an
    empty ``maildirfolder`` file.  Each message lands in ``cur/`` as
    ``<date>.M<n>P<pid>.<host>,S=<size>,W=<size>:2,<flags>`` (``W=`` is the
    CRLF size, equal to ``S=`` because our raw bytes are CRLF already, which
    spares Dovecot reading the file for RFC822.SIZE) with its mtime set to
    the message date, which Dovecot reports as INTERNALDATE.  With ``uid``/
    ``gid`` everything created is chowned to them.
    """
    root = Path(root)
    chown = uid is not None or gid is not None
    cu = -1 if uid is None else uid
    cg = -1 if gid is None else gid
    host = socket.gethostname().replace("/", "\\057").replace(":", "\\072") or "localhost"
    pid = os.getpid()
    seq = _maildir_seq
    cur_dirs: dict[str, str] = {}
    letter_cache: dict[tuple[str, ...], str] = {}
    o_flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0)
    utime_fd = os.utime in os.supports_fd
    os_open, os_write, os_close, os_utime = os.open, os.write, os.close, os.utime
    count = 0

    def mkdir(path: Path) -> None:
        if not path.is_dir():
            path.mkdir(mode=0o700, parents=True, exist_ok=True)
            if chown:
                os.chown(path, cu, cg)

    mkdir(root)
    for m in messages:
        cur = cur_dirs.get(m.folder)
        if cur is None:
            base = maildir_folder_dir(root, m.folder)
            mkdir(base)
            for sub in ("cur", "new", "tmp"):
                mkdir(base / sub)
            if base != root:
                marker = base / "maildirfolder"
                if not marker.exists():
                    marker.touch(0o600)
                    if chown:
                        os.chown(marker, cu, cg)
            cur = cur_dirs[m.folder] = str(base / "cur")
        letters = letter_cache.get(m.flags)
        if letters is None:
            letters = letter_cache[m.flags] = "".join(
                sorted({_FLAG_LETTERS[f] for f in m.flags if f in _FLAG_LETTERS}))
        raw = m.raw
        size = len(raw)
        date = m.date
        path = f"{cur}/{date}.M{next(seq)}P{pid}.{host},S={size},W={size}:2,{letters}"
        fd = os_open(path, o_flags, 0o600)
        try:
            done = os_write(fd, raw)
            if done != size:  # short write: finish it
                view = memoryview(raw)[done:]
                while view:
                    view = view[os_write(fd, view):]
            if chown:
                os.fchown(fd, cu, cg)
            if utime_fd:
                os_utime(fd, (date, date))
        finally:
            os_close(fd)
        if not utime_fd:
            os_utime(path, (date, date))
        count += 1
    return count
