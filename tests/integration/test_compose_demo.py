"""Writing mail in the app against the demo (issue #12): reply with a scripted $EDITOR, send from
the review screen; the demo's SMTP server delivers the reply into the demo INBOX, threaded with
the original, without its Bcc, and the outbox files the copy (Bcc kept, \\Seen) in Sent."""

from __future__ import annotations

import asyncio
import dataclasses
import sys
import textwrap
from datetime import UTC

import imapclient
import pytest

pytest.importorskip("aiosmtpd", reason="aiosmtpd is not installed: pip install -e '.[demo]'")

from tuimail import paths
from tuimail.backends.imap.service import ImapService
from tuimail.config.load import load_config
from tuimail.demo import DemoEnvironment
from tuimail.store import Store
from tuimail.ui.app import TuimailApp
from tuimail.ui.screens.review import ReviewScreen

EDITOR = """
    import sys
    p = sys.argv[1]
    text = open(p, encoding="utf-8").read()
    head, _, body = text.partition("\\n\\n")
    head = head.replace("Bcc: ", "Bcc: hidden@example.net")
    open(p, "w", encoding="utf-8").write(head + "\\n\\nThanks, replying from the demo.\\n\\n" + body)
"""


async def _until(pilot, cond, timeout: float = 20.0) -> None:
    for _ in range(int(timeout / 0.05)):
        if cond():
            return
        await pilot.pause(0.05)
    raise AssertionError("timed out")


def _find(c: imapclient.IMAPClient, folder: str, text: str) -> list[tuple[bytes, tuple]]:
    c.select_folder(folder, readonly=True)
    uids = c.search(["BODY", text])
    got = c.fetch(uids, ["BODY.PEEK[]", "FLAGS"]) if uids else {}
    return [(got[u][b"BODY[]"], got[u][b"FLAGS"]) for u in uids]


def test_reply_in_the_demo_arrives_threaded_and_is_filed_in_sent(tmp_path, monkeypatch):
    script = tmp_path / "editor.py"
    script.write_text(textwrap.dedent(EDITOR))
    monkeypatch.delenv("VISUAL", raising=False)
    monkeypatch.setenv("EDITOR", f"{sys.executable} {script}")
    with DemoEnvironment() as env:
        assert env.server is not None
        cfg = load_config(env.config_path)
        acc = dataclasses.replace(cfg.account("demo"), undo_send=0.5)
        cfg = dataclasses.replace(cfg, accounts={**cfg.accounts, "demo": acc})
        store = Store(paths.account_store_path("demo"))
        svc = ImapService(cfg, acc)
        app = TuimailApp(cfg, {"demo": store}, {"demo": svc}, tz=UTC)

        async def go():
            async with app.run_test(size=(140, 40)) as pilot:
                await _until(pilot, lambda: app.main.hlist.current_uid is not None)
                await pilot.press("r")
                await _until(pilot, lambda: isinstance(app.screen, ReviewScreen))
                session = app.screen.session
                assert session.error == "", session.error
                draft = session.draft
                await pilot.press("y")
                await _until(pilot, lambda: env.server.delivered == 1)
                await _until(pilot, lambda: not session.path.exists())
                await _until(pilot, lambda: store.db.execute("SELECT count(*) FROM outbox").fetchone()[0] == 0)
                return draft

        try:
            draft = asyncio.run(go())
        finally:
            store.close()
        assert draft.in_reply_to and draft.subject.startswith("Re:")
        c = imapclient.IMAPClient(env.server.host, env.server.port, ssl=False, timeout=10)
        try:
            c.login(env.server.username, env.server.password)
            ((arrived, flags),) = _find(c, "INBOX", "replying from the demo")
            assert f"In-Reply-To: {draft.in_reply_to}".encode() in arrived
            assert draft.in_reply_to.encode() in arrived.split(b"References:", 1)[1][:2000]
            assert b"hidden@example.net" not in arrived and b"\r\n> " in arrived
            ((copy, sent_flags),) = _find(c, "Sent", "replying from the demo")
            assert b"\\Seen" in sent_flags and b"Bcc: hidden@example.net" in copy
        finally:
            c.logout()


POSTPONE_EDITOR = """
    import sys
    p = sys.argv[1]
    text = open(p, encoding="utf-8").read()
    head, _, body = text.partition("\\n\\n")
    head = head.replace("To: ", "To: friend@example.net").replace("Subject: ", "Subject: finish me later")
    open(p, "w", encoding="utf-8").write(head + "\\n\\nPostponed in the demo.\\n")
"""


def test_postpone_in_the_demo_stores_the_message_in_drafts(tmp_path, monkeypatch):
    script = tmp_path / "editor.py"
    script.write_text(textwrap.dedent(POSTPONE_EDITOR))
    monkeypatch.delenv("VISUAL", raising=False)
    monkeypatch.setenv("EDITOR", f"{sys.executable} {script}")
    with DemoEnvironment() as env:
        assert env.server is not None
        cfg = load_config(env.config_path)
        acc = cfg.account("demo")
        store = Store(paths.account_store_path("demo"))
        svc = ImapService(cfg, acc)
        app = TuimailApp(cfg, {"demo": store}, {"demo": svc}, tz=UTC)

        async def go():
            async with app.run_test(size=(140, 40)) as pilot:
                await _until(pilot, lambda: app.main.hlist.current_uid is not None)
                await _until(pilot, lambda: store.folder("Drafts") is not None)
                await pilot.press("m")
                await _until(pilot, lambda: isinstance(app.screen, ReviewScreen))
                assert "p postpone" in app.screen.hint_text()
                await pilot.press("p")
                await _until(pilot, lambda: store.db.execute("SELECT count(*) FROM postponed").fetchone()[0] == 0
                             and any("stored in Drafts" in n.message for n in app._notifications))

        try:
            asyncio.run(go())
        finally:
            store.close()
        c = imapclient.IMAPClient(env.server.host, env.server.port, ssl=False, timeout=10)
        try:
            c.login(env.server.username, env.server.password)
            ((raw, flags),) = _find(c, "Drafts", "Postponed in the demo")
            assert b"\\Draft" in flags and b"\\Seen" in flags and b"Subject: finish me later" in raw
        finally:
            c.logout()
