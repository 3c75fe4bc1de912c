"""Shared helpers for the hardening tests (issue 5).

- `run_tuimail(config, *args)`: `python -m tuimail` as a subprocess with the test's XDG dirs
  (inherited from os.environ, which `tuimail_env` sets); returns exit code, stdout, stderr and the
  child's own peak RSS (reaped with wait4). `limit_as` caps its address space so that a huge
  allocation fails loudly instead of quietly reserving virtual memory.
- `cli`: the in-process CLI (tests/integration/helpers.Cli) bound to a config for `mailuser`.
"""

from __future__ import annotations

import os
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.integration.helpers import Cli

ROOT = Path(__file__).resolve().parents[2]


@dataclass
class Run:
    code: int
    out: str
    err: str
    maxrss_kb: int
    seconds: float


# The child's own peak RSS (VmHWM of its post-exec memory), written at exit. wait4's ru_maxrss is
# not it: Linux starts a forked child's maxrss at the parent's RSS, so a pytest process grown past
# the bound by earlier tests made a small child look big.
_PEAK_RSS = """
import atexit, os, runpy, sys
def _hwm():
    for line in open('/proc/self/status'):
        if line.startswith('VmHWM:'):
            open(os.environ['TUIMAIL_TEST_HWM'], 'w').write(line.split()[1])
atexit.register(_hwm)
sys.argv[0] = 'tuimail'
runpy.run_module('tuimail', run_name='__main__', alter_sys=True)
"""


def run_tuimail(config_path, *args: str, timeout: float = 60.0, limit_as: int | None = None) -> Run:
    def limits():
        if limit_as:
            resource.setrlimit(resource.RLIMIT_AS, (limit_as, limit_as))

    with tempfile.TemporaryFile() as fo, tempfile.TemporaryFile() as fe:
        t0 = time.monotonic()
        hwm = Path(tempfile.mkdtemp()) / "hwm"
        p = subprocess.Popen([sys.executable, "-c", _PEAK_RSS, "--config", str(config_path), *args],
                             stdin=subprocess.DEVNULL, stdout=fo, stderr=fe, cwd=ROOT, preexec_fn=limits,
                             env={**os.environ, "TUIMAIL_TEST_HWM": str(hwm)})
        deadline = t0 + timeout
        while True:
            pid, status, usage = os.wait4(p.pid, os.WNOHANG)
            if pid:
                break
            if time.monotonic() > deadline:
                os.kill(p.pid, signal.SIGKILL)
                os.wait4(p.pid, 0)
                p.returncode = -9
                fe.seek(0)
                raise AssertionError(f"tuimail {' '.join(args)} did not finish within {timeout} s; "
                                     f"stderr: {fe.read()[-2000:]!r}")
            time.sleep(0.01)
        p.returncode = code = os.waitstatus_to_exitcode(status)
        seconds = time.monotonic() - t0
        fo.seek(0)
        fe.seek(0)
        try:
            peak = int(hwm.read_text())
        except (OSError, ValueError):
            peak = usage.ru_maxrss
        shutil.rmtree(hwm.parent, ignore_errors=True)
        return Run(code, fo.read().decode("utf-8", "surrogateescape"),
                   fe.read().decode("utf-8", "surrogateescape"), peak, seconds)


def one_line_error(run: Run, code: int = 3) -> str:
    """Assert the run failed with `code` and exactly one 'tuimail: ...' line on stderr."""
    assert run.code == code, f"exit {run.code}, stderr: {run.err[-3000:]}"
    assert run.err.startswith("tuimail: ") and run.err.count("\n") == 1, run.err[-3000:]
    assert "Traceback" not in run.err
    return run.err


@pytest.fixture
def cli(tuimail_env, mailuser, capsys):
    return Cli(tuimail_env.write_config(mailuser.config_toml()), capsys)
