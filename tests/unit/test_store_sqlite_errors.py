"""Store errors are classified by cause (issue 9.6): the advice fits the cause and never loses
the journal."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import tempfile
from pathlib import Path

import pytest

from tuimail.errors import StoreError
from tuimail.store import Store
from tuimail.store.sqlite_errors import store_error


def test_garbage_file_is_corrupt_and_points_at_repair(tmp_path):
    path = tmp_path / "work.sqlite3"
    path.write_bytes(os.urandom(8192))
    with pytest.raises(StoreError) as ei:
        Store(path)
    err = ei.value
    assert err.kind == "corrupt" and err.exit_code == 4
    assert str(path) in str(err) and "tuimail repair --account work" in str(err) and "\n" not in str(err)
    assert path.stat().st_size == 8192  # left as it was


def test_a_write_lock_held_elsewhere_is_locked(tmp_path):
    path = tmp_path / "a.sqlite3"
    Store(path).close()
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    other = sqlite3.connect(path, isolation_level=None, timeout=0)
    try:
        with pytest.raises(sqlite3.OperationalError) as ei:
            other.execute("BEGIN IMMEDIATE")
        err = store_error(ei.value, path)
        assert err.kind == "locked" and "locked by another tuimail" in str(err) and "repair" not in str(err)
    finally:
        other.close()
        holder.execute("ROLLBACK")
        holder.close()


def test_read_only_file_system_is_a_permission_problem():
    mnt = Path(tempfile.mkdtemp(prefix="tuimail-ro-"))
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(mnt)], capture_output=True, text=True,
                       check=False)
    if r.returncode != 0:
        os.rmdir(mnt)
        pytest.fail(f"cannot mount a tmpfs (run the tests as root): {r.stderr.strip()}", pytrace=False)
    try:
        path = mnt / "a.sqlite3"
        Store(path).close()
        subprocess.run(["mount", "-o", "remount,ro", str(mnt)], check=True)
        with pytest.raises(StoreError) as ei:
            with Store(path) as st:
                st.upsert_folder("INBOX", "/", [], "inbox")
        assert ei.value.kind == "permission", str(ei.value)
        assert "permission denied" in str(ei.value) and "repair" not in str(ei.value)
    finally:
        subprocess.run(["umount", "-l", str(mnt)], check=False)
        os.rmdir(mnt)
