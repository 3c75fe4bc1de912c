"""A damaged store or a bug inside the app: one line for the user, never a traceback with locals."""

from __future__ import annotations

import asyncio
import random
import sqlite3
from types import SimpleNamespace

import pytest

from tuimail.store.store import Store

from .fixtures import make_store, run, settle, wait_until


def _damage_rows(path) -> None:
    """Random bytes over every page of the message rows and their indexes (header intact)."""
    db = sqlite3.connect(path)
    db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    size = db.execute("PRAGMA page_size").fetchone()[0]
    pages = [p for (p,) in db.execute("SELECT pageno FROM dbstat WHERE name IN ('messages', 'msg_date', 'msg_unseen',"
                                      " 'threads') AND pageno > 1")]
    db.close()
    rnd = random.Random(5)
    with open(path, "r+b") as fh:
        for p in pages:
            fh.seek((p - 1) * size)
            fh.write(rnd.randbytes(size))


def _exit_text(app) -> list[str]:
    assert not app._exit_renderables  # Textual's crash screen (a traceback with locals) is not shown
    return [app.exit_line] if app.exit_line else []


def test_damaged_store_shows_one_line_naming_the_file_and_repair(make_app, tmp_path):
    path = tmp_path / "damaged.sqlite3"
    make_store(path, 300).close()
    _damage_rows(path)
    app, store, svc = make_app(store=Store(path))

    async def go():
        async with app.run_test(size=(100, 30)):
            for _ in range(100):
                if app.exit_line:
                    break
                await asyncio.sleep(0.05)

    run(go())
    assert app.return_code == 4
    assert app._exception is None  # no crash screen
    lines = _exit_text(app)
    assert len(lines) == 1 and lines[0].count("\n") == 0, lines
    assert lines[0].startswith("tuimail: ") and str(path) in lines[0] and "tuimail repair" in lines[0], lines
    assert "Traceback" not in lines[0]


def test_a_crash_shows_one_line_and_logs_the_traceback_without_locals(make_app, tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    app, store, svc = make_app(50)
    secret = "hunter2-password"

    def boom(*a, **kw):
        password = secret  # noqa: F841  (a local the crash screen would have shown)
        raise ValueError("something broke")

    async def go():
        async with app.run_test(size=(100, 30)) as pilot:
            await settle(pilot, app)
            monkeypatch.setattr(app.main, "action_help", boom)
            await pilot.press("question_mark")
            await settle(pilot, app)

    with pytest.raises(ValueError):  # the pilot re-raises the app's exception for the test
        run(go())
    lines = _exit_text(app)
    assert len(lines) == 1 and lines[0].count("\n") == 0, lines
    assert "internal error: ValueError: something broke" in lines[0]
    assert secret not in lines[0] and "Traceback" not in lines[0]
    log = tmp_path / "state" / "tuimail" / "tuimail.log"
    assert str(log) in lines[0]
    text = log.read_text()
    assert "Traceback" in text and "something broke" in text and secret not in text
    assert log.stat().st_mode & 0o777 == 0o600


@pytest.fixture
def full_disk_dir():
    """A 2 MB tmpfs (the tests run as root, as CI does); fill() fills it up."""
    import os
    import subprocess
    import tempfile
    from pathlib import Path

    mnt = Path(tempfile.mkdtemp(prefix="tuimail-ui-full-"))
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m,mode=0700", "tmpfs", str(mnt)],
                       capture_output=True, text=True)
    if r.returncode != 0:
        os.rmdir(mnt)
        pytest.fail(f"cannot mount a tmpfs (run the tests as root): {r.stderr.strip()}", pytrace=False)

    def fill() -> None:
        fd = os.open(mnt / "filler", os.O_WRONLY | os.O_CREAT, 0o600)
        for chunk in (65536, 512):
            try:
                while True:
                    os.write(fd, b"\0" * chunk)
            except OSError:
                pass
        os.close(fd)

    try:
        yield SimpleNamespace(path=mnt, fill=fill)
    finally:
        subprocess.run(["umount", "-l", str(mnt)], check=False)
        os.rmdir(mnt)


def test_full_disk_a_flag_change_says_disk_full_and_the_app_goes_on(make_app, full_disk_dir):
    from .fixtures import screen_text

    path = full_disk_dir.path / "store.sqlite3"
    make_store(path, 50).close()
    full_disk_dir.fill()  # before the app starts: it opens the store on a full disk
    app, store, svc = make_app(store=Store(path))
    fid = store.folder_id("INBOX")

    async def go():
        async with app.run_test(size=(160, 40), notifications=True) as pilot:
            await settle(pilot, app)
            assert "Lunch on Friday?" in screen_text(app)
            before = store.row(fid, 1).flags
            await pilot.press("F")
            await settle(pilot, app)
            await wait_until(pilot, lambda: "disk full" in screen_text(app) and "store.sqlite3" in screen_text(app))
            assert store.row(fid, 1).flags == before and store.pending_count() == 0
            await pilot.press("j")  # still running, still reading
            await settle(pilot, app)
            assert app.main.hlist.current_uid == 2

    run(go())
    assert app.exit_line is None and app.return_code in (0, None)
