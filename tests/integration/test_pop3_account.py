"""kind = "pop3" end to end against Dovecot's POP3: `tuimail sync` downloads into the store, list,
read and flag work as for IMAP (flags, moves and deletes stay local: no journal), both modes, new
mail, a kill -9 between RETR and QUIT, the UIDL reset, headers first, the service's worker."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tuimail import paths
from tuimail.backends.registry import create_service
from tuimail.config.load import load_config
from tuimail.core.events import FoldersChanged, NewMail, RowsChanged, SyncState
from tuimail.protocol.pop3 import Pop3Session
from tuimail.store import Store
from tuimail.store.pop3ledger import Pop3Ledger

from .helpers import Cli, msg


def pop3_toml(user, name: str = "test", **keys) -> str:
    return user.config_toml(name=name, kind="pop3", port=user.pop3_port, **keys)


def on_server(user) -> int:
    with Pop3Session(user.host, user.pop3_port, security="none", username=user.name,
                     secret=lambda: user.password, timeout=10) as s:
        return s.stat()[0]


def fill(user, n: int, start: int = 1) -> None:
    user.deliver_many("INBOX", ((msg(i, body=f"body of {i}\r\n" + "x" * 3000 + "\r\n"), "") for i in
                                range(start, start + n)))


def subjects(cli, folder: str = "INBOX") -> list[str]:
    return sorted(r["subject"] for r in cli.json("list", folder, "--limit", "0"))


def test_keep_mode_sync_twice_then_new_mail_list_read_flag(tuimail_env, mailuser, capsys):
    fill(mailuser, 5)
    cli = Cli(tuimail_env.write_config(pop3_toml(mailuser)), capsys)
    out = cli("sync")
    assert "5 new" in out and "[pop3 keep]" in out
    assert subjects(cli) == [f"message {i}" for i in range(1, 6)]
    out = cli("sync")
    assert "0 new" in out
    assert on_server(mailuser) == 5  # keep mode
    fill(mailuser, 2, start=6)
    assert "2 new" in cli("sync")
    rows = cli.json("list", "INBOX", "--limit", "0")
    assert len(rows) == 7 and all(r["uid"] == r["id"] for r in rows)  # the handle is the local id
    folders = cli.json("folders")
    assert [(f["name"], f["role"], f["total"], f["unread"]) for f in folders] == [("INBOX", "inbox", 7, 7)]
    one = next(r for r in rows if r["subject"] == "message 3")
    text = cli("read", "INBOX", str(one["uid"]))
    assert "Subject: message 3" in text and "body of 3" in text
    assert "body of 3" in cli("--offline", "read", "INBOX", "--id", str(one["id"]))  # the store has it
    assert cli("flag", "INBOX", str(one["uid"]), "+flagged", "+seen").split() == ["seen", "flagged"]
    assert "local" in cli.last_err
    assert cli.json("pending") == []  # local: nothing waits for a server
    assert "0 new" in cli("sync")
    assert cli("flag", "INBOX", str(one["uid"])).split() == ["seen", "flagged"]
    # search: the store's index (headers after each sync, a body once it was read)
    hits = cli.json("search", "~f s3@example.org")
    assert [(h["folder"], h["id"]) for h in hits] == [("INBOX", one["id"])]
    assert [h["id"] for h in cli.json("search", "~b 'body of 3'")] == [one["id"]]


def test_delete_mode_empties_the_server_only_after_the_store_has_the_mail(tuimail_env, mailuser, capsys):
    fill(mailuser, 4)
    cli = Cli(tuimail_env.write_config(pop3_toml(mailuser, mode="delete")), capsys)
    out = cli("sync")
    assert "4 new" in out and "4 deleted on the server" in out
    assert on_server(mailuser) == 0
    assert subjects(cli) == [f"message {i}" for i in range(1, 5)]
    rows = cli.json("list", "INBOX")
    assert all("body of" in cli("--offline", "read", "INBOX", str(r["uid"])) for r in rows)
    fill(mailuser, 1, start=5)
    assert "1 new" in cli("sync") and on_server(mailuser) == 0
    assert len(cli.json("list", "INBOX")) == 5


@pytest.mark.parametrize("mode", ["delete", "keep"])
def test_kill_9_between_retr_and_quit_loses_nothing_and_duplicates_nothing(tuimail_env, mailuser, capsys, tmp_path,
                                                                            mode):
    """delete mode commits each window of messages before anything may DELE them; keep mode
    commits in batches (a kill loses downloads, never mail: they come again, once)."""
    fill(mailuser, 30)
    config = tuimail_env.write_config(pop3_toml(mailuser, mode=mode))
    # a `tuimail sync` child that stops itself (SIGSTOP) after its first commit (a window of
    # messages: those one read of the pipelined RETRs held), before any DELE or QUIT
    hook = tmp_path / "hook.py"
    count = tmp_path / "committed"
    hook.write_text(
        "import os, signal, sys\n"
        "from tuimail.backends.pop3 import ledger\n"
        "orig = ledger.StoreLedger.commit_many\n"
        "def commit_many(self, *a, **k):\n"
        "    refs = orig(self, *a, **k)\n"
        f"    open({str(count)!r}, 'w').write(str(len(self.added)))\n"
        "    os.kill(os.getpid(), signal.SIGSTOP)\n"
        "    return refs\n"
        "ledger.StoreLedger.commit_many = commit_many\n"
        "from tuimail.cli.main import main\n"
        "sys.exit(main(sys.argv[1:]))\n")
    env = dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parents[2]))
    child = subprocess.Popen([sys.executable, str(hook), "--config", str(config), "sync"], env=env,
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:  # wait until it stopped itself
            with open(f"/proc/{child.pid}/stat") as fh:
                if fh.read().split(") ", 1)[1].startswith("T"):
                    break
            time.sleep(0.05)
        else:
            raise AssertionError("the sync child never reached its first commit")
        os.kill(child.pid, signal.SIGKILL)
    finally:
        child.wait(10)
    assert child.returncode == -signal.SIGKILL
    assert on_server(mailuser) == 30  # no QUIT: nothing deleted
    cli = Cli(config, capsys)
    kept = len(cli.json("list", "INBOX", "--limit", "0"))
    committed = int(count.read_text())
    assert 0 < committed <= 30
    if mode == "delete":
        assert kept == committed  # durable when the commit returned
    else:
        assert kept <= committed
    out = cli("sync")
    assert f"{30 - kept} new" in out
    assert subjects(cli) == sorted(f"message {i}" for i in range(1, 31))  # each once
    if mode == "delete":
        assert "30 deleted on the server" in out and on_server(mailuser) == 0
    else:
        assert on_server(mailuser) == 30


def test_uidl_reset_is_remapped_not_downloaded_again(tuimail_env, mailuser, capsys):
    fill(mailuser, 6)
    cli = Cli(tuimail_env.write_config(pop3_toml(mailuser)), capsys)
    cli("sync")
    ids = {r["subject"]: r["id"] for r in cli.json("list", "INBOX")}
    # a restore: Dovecot renumbers every UIDL when its uidlist is lost
    maildir = mailuser.folder_path("INBOX")
    for p in maildir.rglob("dovecot-uidlist"):
        p.unlink()
    for p in maildir.rglob("dovecot.index*"):
        p.unlink()
    fill(mailuser, 1, start=7)
    out = cli("sync")
    assert "1 new" in out and "recognised" in out
    rows = cli.json("list", "INBOX")
    assert {r["subject"]: r["id"] for r in rows if r["subject"] != "message 7"} == ids  # same rows
    assert "0 new" in cli("sync")  # the new UIDLs are known now


def test_headers_first_then_the_body_when_opened(tuimail_env, mailuser, capsys):
    fill(mailuser, 3)
    config = load_config(tuimail_env.write_config(pop3_toml(mailuser, headers_first=True)))
    svc = create_service(config, config.account("test"))
    try:
        svc.sync_now(bodies=False)
        assert svc.last.headers == 3 and svc.last.downloaded == 0
        with Store(paths.account_store_path("test")) as st:
            entries = Pop3Ledger(st).entries()
            assert [e.has_body for e in entries] == [False] * 3
            raw, _ = Pop3Ledger(st).message(entries[0].msg_id)
            assert b"body of" not in raw  # the header block only
        # downloaded newest first (the list's first screen first): the first entry is message 3
        content = svc.open_message("INBOX", entries[0].msg_id)
        assert "body of 3" in content.text
        with Store(paths.account_store_path("test")) as st:
            assert [e.has_body for e in Pop3Ledger(st).entries()] == [True, False, False]
        svc.sync_now()  # the other bodies in the background's way
        assert svc.last.downloaded == 2
        assert svc.fetch_raw("INBOX", entries[2].msg_id).startswith(b"From: Sender 1")
    finally:
        svc.stop()


def test_local_moves_and_deletes_delete_on_server(tuimail_env, mailuser, capsys):
    fill(mailuser, 3)
    config = load_config(tuimail_env.write_config(pop3_toml(mailuser, folders=["Archive"], delete_on_server=True)))
    svc = create_service(config, config.account("test"))
    try:
        svc.sync_now()
        with Store(paths.account_store_path("test")) as st:
            inbox = st.folder("INBOX")
            arch = st.folder("Archive")
            assert arch is not None and arch.role == "archive"
            ids = st.id_list(inbox.id, sort="arrival", reverse=True)
            assert st.move(inbox.id, [ids[0]], "Archive") == [ids[0]]
            assert st.expunge(inbox.id, [ids[1]]) == [ids[1]]
            assert st.pending_count() == 0
            assert st.id_list(st.folder("Archive").id) == [ids[0]]  # moved at once, same id
            assert st.id_list(inbox.id) == [ids[2]]
        assert "body of 1" in svc.open_message("Archive", ids[0]).text
        svc.sync_now()
        assert svc.last.deleted == 1 and on_server(mailuser) == 2  # the one deleted here
        svc.sync_now()
        assert svc.last.downloaded == 0  # the moved one is known, the deleted one not fetched again
    finally:
        svc.stop()


def test_the_worker_syncs_on_start_and_on_request(tuimail_env, mailuser):
    fill(mailuser, 2)
    config = load_config(tuimail_env.write_config(pop3_toml(mailuser, check_interval=3600)))
    events: list = []
    svc = create_service(config, config.account("test"), events.append)
    assert not svc.capabilities.server_flags and not svc.capabilities.push
    assert not svc.capabilities.server_folders
    svc.start()
    try:
        wait_for(lambda: any(isinstance(e, SyncState) and e.state == "idle" for e in events))
        added = [i for e in events if isinstance(e, RowsChanged) for i in e.added]
        assert len(added) == 2 and any(isinstance(e, FoldersChanged) for e in events)
        assert not any(isinstance(e, NewMail) for e in events)  # a first fill is not new mail
        events.clear()
        fill(mailuser, 1, start=3)
        svc.request_sync()
        wait_for(lambda: any(isinstance(e, NewMail) for e in events))
        assert [e.count for e in events if isinstance(e, NewMail)] == [1]
    finally:
        svc.stop()


def wait_for(cond, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def test_the_app_shows_a_pop3_inbox_opens_a_message_and_flags_it_locally(tuimail_env, mailuser, capsys):
    """A pilot run of the app on a POP3 account (the real service from the registry): its INBOX lists
    the downloaded messages, Enter shows one's text from the store, F flags it with nothing pending."""
    import asyncio
    from datetime import UTC

    from tuimail.ui.app import TuimailApp

    for i in (1, 2):
        mailuser.deliver("INBOX", msg(i, body=f"the text of message {i}\r\n"))
    path = tuimail_env.write_config(pop3_toml(mailuser, check_interval=3600))
    Cli(path, capsys)("sync")
    cfg = load_config(path)
    store = Store(paths.account_store_path("test"))
    svc = create_service(cfg, cfg.account("test"))
    app = TuimailApp(cfg, {"test": store}, {"test": svc}, clock=lambda: 1_704_153_600, tz=UTC)

    def screen() -> str:
        strips = app.screen._compositor.render_strips()
        return "\n".join("".join(seg.text for seg in strip) for strip in strips)

    async def settle(pilot) -> None:
        await pilot.pause(0.3)
        await app.workers.wait_for_complete()
        await pilot.pause()

    async def go():
        async with app.run_test(size=(120, 30)) as pilot:
            await settle(pilot)
            text = screen()
            assert "message 1" in text and "message 2" in text
            await pilot.press("enter")  # the newest: message 2
            for _ in range(50):
                await settle(pilot)
                if "the text of message 2" in screen():
                    break
            assert "the text of message 2" in screen()
            await pilot.press("F")
            await settle(pilot)
            for w in app.intent_writers.values():
                assert w.flush(5)
            await settle(pilot)
            fi = store.folder("INBOX")
            flagged = [r.subject for r in store.rows(fi.id, store.id_list(fi.id)).values() if r.flagged]
            assert flagged == ["message 2"]
            assert store.pending_count() == 0 and "pending" not in screen()

    try:
        asyncio.run(go())
    finally:
        svc.stop()
        store.close()


def test_keep_then_delete_mode_empties_the_server_and_everything_stays_readable(tuimail_env, mailuser, capsys):
    """The issue's "done when": sync twice in keep mode, read offline; switch to delete mode and the
    server's mailbox empties while every message stays readable here."""
    fill(mailuser, 6)
    cli = Cli(tuimail_env.write_config(pop3_toml(mailuser)), capsys)
    cli("sync")
    assert "0 new" in cli("sync")
    rows = cli.json("list", "INBOX")
    assert all(f"body of {r['subject'].split()[-1]}" in cli("--offline", "read", "INBOX", str(r["uid"])) for r in rows)
    cli = Cli(tuimail_env.write_config(pop3_toml(mailuser, mode="delete")), capsys)
    out = cli("sync")
    assert "0 new" in out and "6 deleted on the server" in out and on_server(mailuser) == 0
    assert cli.json("list", "INBOX") == rows
    assert all("body of" in cli("--offline", "read", "INBOX", str(r["uid"])) for r in rows)
    assert "0 new" in cli("sync")


def test_a_local_delete_reaches_the_server_when_the_worker_is_woken(tuimail_env, mailuser):
    fill(mailuser, 3)
    config = load_config(tuimail_env.write_config(pop3_toml(mailuser, delete_on_server=True, check_interval=3600)))
    events: list = []
    svc = create_service(config, config.account("test"), events.append)
    svc.start()
    try:
        wait_for(lambda: any(isinstance(e, SyncState) and e.state == "idle" for e in events))
        with Store(paths.account_store_path("test")) as st:
            fid = st.folder_id("INBOX")
            victim = st.id_list(fid)[0]
            assert st.expunge(fid, [victim]) == [victim] and st.pending_count() == 0
        svc.wake()  # what the intent writer does after a write
        wait_for(lambda: on_server(mailuser) == 2)
    finally:
        svc.stop()
