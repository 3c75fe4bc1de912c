"""Issue 9.7: the trace file is private, a readable config holding a password is warned about,
`tuimail folders` aligns columns by display width."""

from __future__ import annotations

import os
import subprocess
import sys
import unicodedata
from pathlib import Path

from tuimail import paths
from tuimail.cli.main import main
from tuimail.store import Store

ROOT = Path(__file__).resolve().parents[2]

CONFIG = """
[accounts.test]
kind = "imap"
host = "127.0.0.1"
port = 1
security = "none"
username = "u"
{secret}
"""


def _config(env, secret='password = "hunter2"', mode=0o600) -> Path:
    path = env.write_config(CONFIG.format(secret=secret))
    path.chmod(mode)
    return path


def test_trace_file_is_created_0600(tuimail_env, tmp_path):
    cfg = _config(tuimail_env)
    trace = tmp_path / "trace.txt"
    env = dict(os.environ, TUIMAIL_TRACE=str(trace))
    r = subprocess.run([sys.executable, "-c", "import os, sys; os.umask(0o022); from tuimail.cli.main import main;"
                        " sys.exit(main(sys.argv[1:]))", "--config", str(cfg), "folders"],
                       env=env, cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert "cli main" in trace.read_text()
    assert trace.stat().st_mode & 0o777 == 0o600


def test_config_with_password_readable_by_others_warns_once(tuimail_env, capsys):
    cfg = _config(tuimail_env, mode=0o644)
    assert main(["--config", str(cfg), "folders"]) == 0
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("tuimail: warning: ")
    assert str(cfg) in err and f"chmod 600 {cfg}" in err and "hunter2" not in err
    cfg.chmod(0o640)
    assert main(["--config", str(cfg), "folders"]) == 0
    assert "its group" in capsys.readouterr().err
    cfg.chmod(0o600)
    assert main(["--config", str(cfg), "folders"]) == 0
    assert capsys.readouterr().err == ""
    # no password in the file: nothing to warn about
    cfg = _config(tuimail_env, secret='password_command = ["pass", "mail"]', mode=0o644)
    assert main(["--config", str(cfg), "folders"]) == 0
    assert capsys.readouterr().err == ""


def _cells(s: str) -> int:
    return sum(2 if unicodedata.east_asian_width(c) in "WF" else 1 for c in s)


def test_folders_align_by_display_width(tuimail_env, capsys):
    cfg = _config(tuimail_env)
    path = paths.account_store_path("test")
    paths.ensure_private_dir(path.parent)
    names = ["INBOX", "日本語のフォルダ", "Ｆｕｌｌｗｉｄｔｈ", "Lists/dev", "Café"]
    with Store(path) as st:
        for n in names:
            st.upsert_folder(n, "/", [], "inbox" if n == "INBOX" else None)
    assert main(["--config", str(cfg), "folders"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == len(names)
    # every total ends in the same terminal column
    ends = {_cells(line.rstrip()) for line in lines}
    assert len(ends) == 1, lines
    for line in lines:
        name = next(n for n in names if line.startswith(n))
        assert _cells(line[:len(name)] + line[len(name):].split("0")[0]) >= 32
