"""A full disk (issue 9.6): reading works, a write is one line "disk full" (exit 4), nothing lost.

The store and the body cache live on a real file system that is full: a 4 MB tmpfs mounted for
the test (the tests run as root, as CI does) and filled with a file until ENOSPC.
"""

from __future__ import annotations

import os
import subprocess
import tempfile
from pathlib import Path

import pytest

from tests.integration.helpers import Cli, msg, server_state
from tuimail import paths
from tuimail.store import Store

from .conftest import one_line_error, run_tuimail


@pytest.fixture
def small_disk(tuimail_env, monkeypatch):
    mnt = Path(tempfile.mkdtemp(prefix="tuimail-full-"))
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m,mode=0700", "tmpfs", str(mnt)],
                       capture_output=True, text=True)
    if r.returncode != 0:
        os.rmdir(mnt)
        pytest.fail(f"cannot mount a tmpfs for the full-disk test (run the tests as root): {r.stderr.strip()}",
                    pytrace=False)
    for var, name in (("XDG_DATA_HOME", "data"), ("XDG_CACHE_HOME", "cache")):
        (mnt / name).mkdir()
        monkeypatch.setenv(var, str(mnt / name))
    try:
        yield mnt
    finally:
        subprocess.run(["umount", "-l", str(mnt)], check=False)
        os.rmdir(mnt)


def fill(mnt: Path) -> Path:
    filler = mnt / "filler"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        while True:
            os.write(fd, b"\0" * 65536)
    except OSError:
        pass
    try:
        while True:
            os.write(fd, b"\0" * 512)
    except OSError:
        pass
    os.close(fd)
    st = os.statvfs(mnt)
    assert st.f_bavail * st.f_frsize < 4096
    return filler


def test_full_disk_reads_work_writes_say_disk_full_journal_survives(mailuser, tuimail_env, small_disk, capsys):
    mailuser.deliver_many("INBOX", [(msg(i), "") for i in range(1, 41)])
    cfg = tuimail_env.write_config(mailuser.config_toml())
    cli = Cli(cfg, capsys)
    cli("sync")
    cli("read", "INBOX", "3")
    cli("flag", "INBOX", "1", "+flagged")  # pending: the server does not have it yet
    filler = fill(small_disk)

    run = run_tuimail(cfg, "list", "INBOX")
    assert run.code == 0, run.err
    assert run.out.count("\n") == 40 and "message 40" in run.out
    run = run_tuimail(cfg, "folders")
    assert run.code == 0 and "INBOX" in run.out, run.err
    run = run_tuimail(cfg, "read", "INBOX", "3")  # cached: no server, no write
    assert run.code == 0 and "message 3" in run.out, run.err

    for args in (("flag", "INBOX", "2", "+seen"), ("sync",)):
        err = one_line_error(run_tuimail(cfg, *args), code=4)
        assert "disk full" in err and str(paths.account_store_path("test")) in err, (args, err)
        assert "repair" not in err and "move the file" not in err

    filler.unlink()
    with Store(paths.account_store_path("test")) as st:
        assert [(e.msg_id, e.add_flags) for e in st.pending()] == [(1, ("flagged",))]
    cli("sync")
    assert server_state(mailuser)["<m1@example.org>"] == {"\\Flagged"}
    assert server_state(mailuser)["<m2@example.org>"] == set()
