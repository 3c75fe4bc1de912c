"""`tuimail repair` carries the outbox into the rebuilt store (issue #12 item 5): messages held
for undo, failed ones, and postponed ones on their way to Drafts are what the user wrote and exist
nowhere else. The store is damaged as test_damaged_store.py damages it; after the repair a drain
sends what was queued (to an aiosmtpd sink) and stores the postponed message in Dovecot's Drafts."""

from __future__ import annotations

import pytest

from tests.integration.helpers import Cli, msg
from tuimail import paths
from tuimail.backends.send import Sender
from tuimail.config.load import load_config
from tuimail.mail.compose import Identity, build_message, new_draft, sent_copy
from tuimail.store import Store
from tuimail.store.outbox import Outbox
from tuimail.store.postponed import Postponed

from .conftest import run_tuimail
from .test_damaged_store import damage

pytest.importorskip("aiosmtpd", reason="aiosmtpd is not installed: pip install -e '.[test]' (the test extra)")

from tests.integration.test_postpone_dovecot import aiosink  # noqa: F401  (the fixture)


def _message(user, subject: str) -> bytes:
    draft = new_draft(Identity(f"{user.name}@example.org", "Tester"), "bob@example.net", subject=subject,
                      body="text that exists nowhere else\n")
    return sent_copy(build_message(draft))


def test_repair_keeps_queued_failed_and_postponed_messages(mailuser, tuimail_env, capsys, aiosink):  # noqa: F811
    mailuser.deliver_many("INBOX", [(msg(i), "") for i in range(1, 601)])
    smtp = f'[accounts.test.smtp]\nhost = "127.0.0.1"\nport = {aiosink.port}\nsecurity = "none"\nusername = ""\n'
    cfg_path = tuimail_env.write_config(mailuser.config_toml(**{"from": f"T <{mailuser.name}@example.org>"}) + smtp)
    Cli(cfg_path, capsys)("sync")
    cfg = load_config(cfg_path)
    sender = Sender(cfg, cfg.account("test"))
    held = sender.queue(_message(mailuser, "held for undo"), hold=3600)
    failed = sender.queue(_message(mailuser, "refused once"), hold=0)
    postponed = sender.postpone(_message(mailuser, "half done"), "Drafts")
    path = paths.account_store_path("test")
    with Store(path) as st:
        Outbox(st.db).fail(failed, "554 5.7.1 refused (test)")
        before_out = {e.id: (e.message, e.state, e.subject, e.rcpts) for e in Outbox(st.db).entries()}
        before_pp = [(e.id, e.message, e.folder) for e in Postponed(st.db).entries()]
    assert set(before_out) == {held, failed} and len(before_pp) == 1

    damage(path)
    run = run_tuimail(cfg_path, "repair", "--account", "test")
    assert run.code == 0, run.err
    assert "2 message(s) of the outbox and 1 postponed kept" in run.out, run.out

    with Store(path) as st:
        after_out = {e.id: (e.message, e.state, e.subject, e.rcpts) for e in Outbox(st.db).entries()}
        after_pp = [(e.id, e.message, e.folder) for e in Postponed(st.db).entries()]
    assert after_out == before_out and after_pp == before_pp

    # nothing was lost: the failed one is retried, the held one released, and one drain sends
    # both and stores the postponed message in Drafts
    Cli(cfg_path, capsys)("sync")  # (the store knows its folders again)
    assert sender.retry(failed)
    with Store(path) as st:
        st.db.execute("UPDATE outbox SET hold_until = 0 WHERE id = ?", (held,))
    report = sender.drain()
    assert len(report.sent) == 2 and report.drafted == [(postponed, "Drafts")], report
    assert sorted(m[2].split(b"Subject: ")[1].split(b"\r\n")[0] for m in aiosink.messages) == [b"held for undo",
                                                                                               b"refused once"]
    with mailuser.client("Drafts") as c:
        uids = c.search("ALL")
        got = c.fetch(uids, ["BODY.PEEK[]", "FLAGS"])
    ((_uid, item),) = got.items()
    assert b"Subject: half done" in item[b"BODY[]"] and b"\\Draft" in item[b"FLAGS"]
    assert sender.entries() == [] and sender.postponed() == []
