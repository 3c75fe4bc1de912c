"""Hostile text (issue 5, item 1): messages delivered to a real Dovecot, read through the CLI
(`list`, `list --json`, `read`, `folders`) and once through the TUI: no forbidden control character
reaches the terminal, Textual markup stays text, html2text output is sanitised after rendering,
links show their real targets, and nothing remote is fetched."""

from __future__ import annotations

import base64
import json
import socket
import threading

import pytest

from tuimail import paths
from tuimail.demo.generate import encode_words, hostile_messages
from tuimail.mail.render import html_to_text
from tests.integration.helpers import Cli
from tests.unit.test_sanitize import FORBIDDEN_RE, assert_clean
from datetime import UTC

# Zero-width characters must not pass silently in addresses either (sanitize_strict shows them)
ZW = "\u200b\u200c\u200d\u2060\ufeff"


def _msg(n: int, subject: str, body: bytes = b"hello\r\n", *, from_: str = "Mallory <m@example.org>",
         ctype: str = "text/plain; charset=utf-8", cte: str = "7bit", extra: str = "") -> bytes:
    head = (f"From: {from_}\r\nTo: me@example.org\r\nSubject: {subject}\r\n"
            f"Date: Mon, 01 Jan 2024 10:00:{n:02d} +0000\r\nMessage-ID: <evil{n}@example.org>\r\n{extra}"
            f"MIME-Version: 1.0\r\nContent-Type: {ctype}\r\nContent-Transfer-Encoding: {cte}\r\n\r\n")
    return head.encode("utf-8") + body


def own_hostile(pixel_url: str) -> list[bytes]:
    esc_body = ("OSC title \x1b]0;pwned\x07 OSC 52 clipboard \x1b]52;c;ZWNobyBwd25lZA==\x07 "
                "CSI \x1b[2J\x1b[31mred\x1b[0m C1 \u009b31m DCS \x1bPq#0\x1b\\ NUL \x00 DEL \x7f "
                "bidi \u202egnp.exe\u202c isolate \u2066x\u2069 zero\u200bwidth BOM \ufeff end\r\n")
    html = (f"<html><head><link rel=stylesheet href='{pixel_url}/style.css'>"
            f"<script src='{pixel_url}/x.js'></script></head><body>"
            "<p>Entity: &#27;]0;pwned&#7; CSI &#x1b;[2J C1 &#x9b;31m &#155; NUL &#0; DEL &#127; "
            "bidi &#x202e;fdp.exe</p>"
            "<p><a href='https://evil.example/steal'>https://bank.example.com/</a></p>"
            "<p><a href='javascript:alert(document.cookie)'>safe link</a></p>"
            "<p><a href='https://evil.example/\u202eexe.pdf'>report</a></p>"
            f"<img src='{pixel_url}/pixel.gif' width=1 height=1><img src='{pixel_url}/logo.png' alt='logo'>"
            f"<iframe src='{pixel_url}/frame'></iframe>"
            "<p>[@click=app.quit]markup in html[/]</p></body></html>\r\n")
    att_name = "=?UTF-8?B?" + base64.b64encode("..\u202e/\x1b]0;x\x07[@click=app.quit]gpj.exe".encode()).decode() + "?="
    boundary = "b-hostile"
    multipart = (f"--{boundary}\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nsee attachment\r\n"
                 f"--{boundary}\r\nContent-Type: application/octet-stream; name=\"{att_name}\"\r\n"
                 f"Content-Disposition: attachment; filename*=utf-8''%1B%5B2J..%2F..%2F.bashrc%E2%80%AE\r\n"
                 f"Content-Transfer-Encoding: base64\r\n\r\n{base64.b64encode(b'x' * 10).decode()}\r\n"
                 f"--{boundary}\r\nContent-Type: application/x-\x1b[2J\u009bevil\u202e; name=\"a\x1b]0;t\x07b\"\r\n"
                 f"Content-Disposition: attachment\r\n\r\nzzz\r\n"
                 f"--{boundary}--\r\n").encode()
    return [
        _msg(1, encode_words("Title \x1b]2;owned\x1b\\ clip \x1b]52;c;ZWNobyBwd25lZA==\x07 end", "UTF-8", "B"),
             from_=encode_words("[@click=app.quit]Boss[/]", "UTF-8", "Q") + " <boss@example.org>"),
        _msg(2, "=?UTF-8?Q?C1_CSI_=C2=9B2J_NUL_=00_DEL_=7F_bell_=07_BS_=08?=",
             from_="=?UTF-8?Q?Pay=E2=80=8BPal?= <pay\u200bpal\u200d@example.org>",
             extra="Cc: =?UTF-8?Q?Zero=E2=81=A0Width?= <z\ufeffw@example.org>\r\n"),
        _msg(3, "raw bidi \u202egnp.exe\u202c and isolate \u2066x\u2069", base64.encodebytes(esc_body.encode()),
             cte="base64"),
        _msg(4, "HTML with entity escapes", html.encode(), ctype="text/html; charset=utf-8"),
        _msg(5, "attachment names", multipart, ctype=f'multipart/mixed; boundary="{boundary}"'),
        # raw control bytes straight in the header and body (no encoding at all)
        _msg(6, "raw \x1b[2J esc \x9b in header", b"raw body \x1b]0;t\x07 \x00 \x7f\r\n",
             from_="Raw \x1b[31m <raw@example.org>", ctype="text/plain; charset=latin-1", cte="8bit"),
        _msg(7, "[@click=app.quit]click[/] [b]bold[/b] [link=https://evil.example]x[/link]",
             b"[@click=app.quit]body markup[/]\r\n"),
    ]


class _NoFetchListener:
    """A loopback listener that records whether anything connected (nothing remote is fetched)."""

    def __init__(self):
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.sock.settimeout(0.2)
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        self.hits = 0
        self._stop = False
        self.t = threading.Thread(target=self._run, daemon=True)
        self.t.start()

    def _run(self):
        while not self._stop:
            try:
                c, _ = self.sock.accept()
                self.hits += 1
                c.close()
            except OSError:
                continue

    def close(self):
        self._stop = True
        self.t.join(2)
        self.sock.close()


@pytest.fixture
def no_fetch():
    listener = _NoFetchListener()
    yield listener
    listener.close()


@pytest.fixture
def hostile_box(tuimail_env, mailuser, capsys, no_fetch):
    """A user whose INBOX holds the demo's hostile messages and ours, synced, every body read."""
    gen = hostile_messages()
    mailuser.deliver_many("INBOX", [(m.raw, "") for m in gen])
    mailuser.deliver_many("INBOX", [(raw, "") for raw in own_hostile(no_fetch.url)])
    for name in ("Evil\x1b]0;title\x07", "Bidi \u202eredloF", "Zero\u200bWidth", "[@click=app.quit]x[/]"):
        try:
            mailuser.create_folder(name)
        except Exception:  # Dovecot may refuse some names; the others still test the path
            pass
    cli = Cli(tuimail_env.write_config(mailuser.config_toml()), capsys)
    cli("sync")
    return cli, len(gen) + 7


def assert_terminal_clean(text: str) -> None:
    assert_clean(text)
    for bad in ("\u2028", "\u2029"):
        assert bad not in text


def test_cli_list_read_folders_of_hostile_mail_are_clean(hostile_box, no_fetch):
    cli, n = hostile_box
    listing = cli("list", "INBOX")
    assert len(listing.splitlines()) == n
    assert_terminal_clean(listing)
    assert "[@click=app.quit]click[/]" in listing  # markup shown as text, untouched
    rows = cli.json("list", "INBOX")
    assert len(rows) == n
    outputs = [listing, cli("folders"), cli("list", "INBOX", "--json"), cli("folders", "--json")]
    for row in rows:
        out = cli("read", "INBOX", str(row["uid"]))
        outputs.append(out)
    for out in outputs:
        assert_terminal_clean(out)
    everything = "\n".join(outputs)
    # the demo's header injection through a decoded newline stays on one line
    assert "\nBcc:" not in everything and "\nX-Evil:" not in everything
    # html2text's output is sanitised after rendering and links show their real targets
    assert "https://evil.example/steal" in everything
    assert "javascript:alert(document.cookie)" in everything
    assert "https://evil.example/login" in everything  # hostile #5 of the demo set
    assert "<U+202E>" in everything  # a bidi override in a link target is made visible
    assert no_fetch.hits == 0, "something fetched remote content"


def test_json_output_escapes_controls_but_keeps_the_data(hostile_box):
    """--json goes to a terminal too: no raw control character, but the decoded JSON still holds
    the message's (already sanitised) text."""
    cli, n = hostile_box
    raw_out = cli("list", "INBOX", "--json")
    assert FORBIDDEN_RE.search(raw_out) is None
    rows = json.loads(raw_out)
    subjects = " ".join(r["subject"] for r in rows)
    assert "Title" in subjects and "[@click=app.quit]click[/]" in subjects


def test_html2text_entities_become_no_control_characters():
    text, links = html_to_text("<p>a &#27;]0;x&#7; b &#x1b;[2J c &#155;31m d &#0; e &#127; f &#x202e;g"
                               "<a href='https://real.example/\u202ex'>https://fake.example</a>"
                               "<a href='java\tscript:alert(1)'>y</a></p>")
    assert_clean(text)
    for link in links:
        assert_clean(link)
    assert links[0] == "https://real.example/<U+202E>x"  # the real target, the override visible
    assert "https://fake.example [1]" in text and "[2]" in text


def test_tui_shows_hostile_messages_without_escape_sequences(hostile_box, tuimail_env, no_fetch):
    """One pilot run over the synced hostile INBOX: the header list and the message view of every
    message carry no ESC/C1/bidi, and clicking a subject's markup runs no action."""
    import asyncio

    from tuimail.config.load import load_config
    from tuimail.store.store import Store
    from tuimail.backends.imap.service import ImapService
    from tuimail.ui.app import TuimailApp
    from tests.ui.fixtures import screen_text, settle

    cli, n = hostile_box
    for row in cli.json("list", "INBOX"):  # every body cached, so the offline service serves them
        cli("read", "INBOX", str(row["uid"]))
    config = load_config(cli.config_path)
    store = Store(paths.account_store_path("test"))
    svc = ImapService(config, config.account(), offline=True)
    app = TuimailApp(config, {"test": store}, {"test": svc}, offline=True, tz=UTC)

    async def go():
        async with app.run_test(size=(160, 45)) as pilot:
            await settle(pilot, app)
            assert len(app.main.hlist.uids) == n
            seen = []
            for _ in range(n):
                await pilot.press("enter")
                await settle(pilot, app)
                screen = screen_text(app)
                assert_terminal_clean(screen)
                assert_terminal_clean(app.main.reader.plain_text)
                seen.append(app.main.reader.plain_text)
                await pilot.press("q")  # back to the list
                await pilot.press("j")
            assert app.is_running, "markup in a subject ran an action"
            assert any("[@click=app.quit]" in s for s in seen)

    try:
        asyncio.run(go())
    finally:
        svc.stop()
        store.close()
    assert no_fetch.hits == 0


def test_hostile_server_strings_are_clean_in_the_cli(tuimail_env, capsys):
    """What Dovecot normalises, a hostile server sends raw: control bytes in folder names, header
    fields, BODYSTRUCTURE types, descriptions and file names, and the body."""
    from tests.support.proxy import GarbageServer

    from .test_protocol import account_toml, scripted

    header = (b"From: Ev\x1b[31mil \xc2\x9b2J <e\x1b]0;t\x07@x.org>\r\nSubject: S\x1b]0;pwned\x07ub \xe2\x80\xae"
              b"\x00\x7f\r\nMessage-ID: <h1@x>\r\nDate: Mon, 01 Jan 2024 10:00:00 +0000\r\n\r\n")
    body = b"body \x1b]52;c;AAAA\x07 \xc2\x9b31m \x00 end\r\n"
    structure = (b'(("text" "plain" ("charset" "utf-8") NIL "d\x1b]0;x\x07" "7bit" %d 1 NIL NIL NIL NIL)'
                 b'("application" "x-\x1b[2J\xc2\x9bevil" ("name" "a\x1b[31mb\xe2\x80\xae") NIL NIL "base64" 8 NIL'
                 b' ("attachment" ("filename" "..\x1b]0;t\x07/x\xe2\x80\x8b")) NIL NIL)'
                 b' "mixed" ("boundary" "b") NIL NIL NIL)') % len(body)

    def after(tag, line):
        up = line.upper()
        if b" LIST " in up:
            return (b'* LIST () "/" INBOX\r\n* LIST () "/" "Evil\x1b]0;t\x07 \xc2\x9b2J \xe2\x80\xaeredlof"\r\n'
                    + tag + b" OK done\r\n")
        if b" SELECT " in up or b" EXAMINE " in up:
            return b"* 1 EXISTS\r\n* OK [UIDVALIDITY 5] x\r\n* OK [UIDNEXT 2] x\r\n" + tag + b" OK done\r\n"
        if b" SEARCH" in up:
            return b"* SEARCH 1\r\n" + tag + b" OK done\r\n"
        if b"BODYSTRUCTURE" in up:
            return b"* 1 FETCH (UID 1 BODYSTRUCTURE " + structure + b")\r\n" + tag + b" OK done\r\n"
        if b"BODY.PEEK[1]" in up:
            return b"* 1 FETCH (UID 1 BODY[1] {%d}\r\n" % len(body) + body + b")\r\n" + tag + b" OK done\r\n"
        if b" FETCH " in up and b"HEADER.FIELDS" in up:
            return (b"* 1 FETCH (UID 1 FLAGS (\\Seen $x\x1b[2J) RFC822.SIZE 300 BODY[HEADER.FIELDS (FROM)] {%d}\r\n"
                    % len(header) + header + b")\r\n" + tag + b" OK done\r\n")
        if b" FETCH " in up:
            return b"* 1 FETCH (UID 1 FLAGS (\\Seen))\r\n" + tag + b" OK done\r\n"
        return tag + b" OK done\r\n"

    with GarbageServer(reply=scripted(after_login=after)) as server:
        cli = Cli(tuimail_env.write_config(account_toml(server.port)), capsys)
        outputs = [cli("sync"), cli("folders"), cli("folders", "--json"), cli("list", "INBOX"),
                   cli("list", "INBOX", "--json"), cli("read", "INBOX", "1"), cli("flag", "INBOX", "1")]
    for out in outputs:
        assert_terminal_clean(out)
    assert "body" in outputs[5] and "end" in outputs[5]
    assert "redlof" in outputs[1]


def test_zero_width_characters_in_addresses_are_visible(hostile_box):
    """DESIGN §1: zero-width characters are made visible in addresses (a look-alike sender
    'pay\\u200bpal@' must not read as 'paypal@')."""
    cli, n = hostile_box
    rows = {r["message_id"]: r for r in cli.json("list", "INBOX")}
    out = cli("read", "INBOX", str(rows["<evil2@example.org>"]["uid"]))
    from_line = next(line for line in out.splitlines() if line.startswith("From: "))
    assert "pay<U+200B>pal<U+200D>@example.org" in from_line, from_line
    cc_line = next(line for line in out.splitlines() if line.startswith("Cc: "))
    assert "<U+2060>" in cc_line and "<U+FEFF>" in cc_line, cc_line
    listing = cli("list", "INBOX")
    assert "Pay<U+200B>Pal" in listing
    demo = cli("read", "INBOX", str(rows[next(m for m in rows if m.startswith("<hostile.6."))]["uid"]))
    assert "<U+202E>" in demo and "<U+200B>" in demo  # the demo's 'Pay\u200bPal Sup\u202eport'
