"""tests/support/cyrus.py itself: a killed test run leaves no Cyrus behind."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

_CHILD = """
import sys, time
from tests.support.cyrus import CyrusServer
server = CyrusServer()
print(server.dir, server.imap_port, flush=True)
time.sleep(120)
"""


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # a zombie is not alive
        return Path(f"/proc/{pid}/stat").read_text().split(") ", 1)[1][0] != "Z"
    except (OSError, IndexError):
        return False


def test_a_killed_test_run_stops_its_cyrus(cyrus):
    """SIGKILL of the Python that started Cyrus (no atexit, no stop()): the reaper between them
    sees its parent change and stops the master; its port closes."""
    proc = subprocess.Popen([sys.executable, "-c", _CHILD], cwd=ROOT, stdout=subprocess.PIPE, text=True,
                            env={**os.environ, "PYTHONPATH": str(ROOT), "TUIMAIL_KEEP_CYRUS": "1"})
    try:
        line = proc.stdout.readline().split()
        assert line, "the child did not start Cyrus"
        directory, port = Path(line[0]), int(line[1])
        pid_file = directory / "run" / "master.pid"
        deadline = time.monotonic() + 10
        while not pid_file.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        master = int(pid_file.read_text().split()[0])
        assert _alive(master)
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
        deadline = time.monotonic() + 10
        while _alive(master) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not _alive(master), "the Cyrus master outlived the killed test run"
        with socket.socket() as s:
            assert s.connect_ex(("127.0.0.1", port)) != 0, "Cyrus IMAP still answers"
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        import shutil
        if "directory" in locals():
            shutil.rmtree(directory, ignore_errors=True)
