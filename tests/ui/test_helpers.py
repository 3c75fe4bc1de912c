"""mailcap parsing, safe file names, private writes, the event bridge, keymaps, themes."""

from __future__ import annotations

import os
import stat
import threading

import pytest

from tuimail.core.events import FoldersChanged, RowsChanged, SyncState
from tuimail.ui import keys, mailcap
from tuimail.ui.attachments import run_pipe, safe_filename, split_command, temp_copy, write_private
from tuimail.ui.bridge import EventBridge, SyncEvents
from tuimail.ui.rows import DateFormatter, columns, format_size
from tuimail.ui.themes import load_themes, parse_theme, resolve_name, shipped_dir

from .fixtures import NOW

MAILCAP = r"""
# comment
application/pdf; zathura '%s'; test=test -n "$DISPLAY"
application/pdf; pdftotext %s -; copiousoutput
text/html; w3m -dump -T text/html; copiousoutput
image/*; feh %s
text/plain; less %s; needsterminal
video/mp4; mpv %s | tee log; 
application/x-foo; foo \
   --long %s; nametemplate=%s.foo
"""


def test_mailcap_parse_and_find(monkeypatch):
    entries = mailcap.parse(MAILCAP)
    assert [e.mimetype for e in entries] == ["application/pdf", "application/pdf", "text/html", "image/*",
                                             "text/plain", "video/mp4", "application/x-foo"]
    assert entries[1].copiousoutput and entries[4].needsterminal
    assert entries[6].command == "foo    --long %s" and entries[6].params["nametemplate"] == "%s.foo"
    monkeypatch.delenv("DISPLAY", raising=False)
    e = mailcap.find(entries, "APPLICATION/PDF")
    assert e.command == "pdftotext %s -"  # the zathura entry's test fails without a display
    monkeypatch.setenv("DISPLAY", ":0")
    assert mailcap.find(entries, "application/pdf").command == "zathura '%s'"
    assert mailcap.find(entries, "image/png").command == "feh %s"
    assert mailcap.find(entries, "audio/ogg") is None
    assert mailcap.argv_for("zathura '%s'", "/tmp/a b.pdf", "application/pdf") == ["zathura", "/tmp/a b.pdf"]
    assert mailcap.argv_for("view -t %t %s", "/x", "text/x") == ["view", "-t", "text/x", "/x"]
    with pytest.raises(ValueError):
        mailcap.argv_for("mpv %s | tee log", "/x", "video/mp4")
    with pytest.raises(ValueError):
        mailcap.argv_for("sh -c $(rm -rf ~)", "/x", "a/b")
    assert mailcap.wants_stdin("w3m -dump -T text/html")


def test_mailcap_load_files(tmp_path):
    a = tmp_path / "a"
    a.write_text("text/plain; cat %s\n")
    assert [e.command for e in mailcap.load([a, tmp_path / "missing"])] == ["cat %s"]


@pytest.mark.parametrize("name, safe", [
    ("../../.bashrc", "bashrc"),
    ("..\\..\\evil.exe", "evil.exe"),
    ("/etc/passwd", "passwd"),
    (".hidden", "hidden"),
    ("...", "attachment"),
    ("", "attachment"),
    (None, "attachment"),
    ("a\x1b[2Jb\x07.txt", "a[2Jb.txt"),
    ("report\u202egpj.exe", "reportgpj.exe"),
    ("zero\u200bwidth.pdf", "zerowidth.pdf"),
    ("new\nline.txt", "newline.txt"),
    ("ok name (1).pdf", "ok name (1).pdf"),
])
def test_safe_filename(name, safe):
    assert safe_filename(name) == safe


def test_safe_filename_bounded():
    name = safe_filename("x" * 1000 + ".pdf")
    assert name.endswith(".pdf") and len(name.encode()) <= 200


def test_write_private_never_overwrites_unasked(tmp_path):
    p = tmp_path / "f.bin"
    write_private(p, b"one")
    assert stat.S_IMODE(os.stat(p).st_mode) == 0o600
    with pytest.raises(FileExistsError):
        write_private(p, b"two")
    assert p.read_bytes() == b"one"
    write_private(p, b"two", overwrite=True)
    assert p.read_bytes() == b"two"
    link = tmp_path / "link"
    link.symlink_to(tmp_path / "target")
    with pytest.raises(OSError):
        write_private(link, b"x", overwrite=True)  # O_NOFOLLOW
    assert not (tmp_path / "target").exists()
    t = temp_copy(b"data", "../x.pdf")
    assert t.name == "x.pdf" and stat.S_IMODE(os.stat(t.parent).st_mode) == 0o700


def test_pipe_runs_without_shell(tmp_path):
    argv = split_command("cat")
    assert run_pipe(argv, b"hello") == (0, "hello")
    rc, out = run_pipe(split_command("echo $HOME; touch " + str(tmp_path / "pwned")), b"")
    assert rc == 0 and "$HOME;" in out and not (tmp_path / "pwned").exists()
    assert run_pipe(["/nonexistent/cmd"], b"")[0] == 127
    with pytest.raises(ValueError):
        split_command("'unclosed")


def test_bridge_batches_and_never_blocks():
    posted = []
    b = EventBridge()
    b(SyncState("a", "syncing"))  # before the UI is attached: buffered
    b.attach(posted.append)
    assert len(posted) == 1 and isinstance(posted[0], SyncEvents)

    def worker():
        for uid in range(1000):
            b(RowsChanged("a", 1, added=(uid,)))
        b(RowsChanged("a", 1, ids=(5, 2000)))
        b(RowsChanged("a", 1, removed=(7,)))
        b(FoldersChanged("a"))

    t = threading.Thread(target=worker)
    t.start()
    t.join()
    assert len(posted) == 1  # one message until the UI drains
    evs = b.drain()
    assert [type(e).__name__ for e in evs] == ["SyncState", "FoldersChanged", "RowsChanged"]
    rc = evs[-1]
    assert len(rc.added) == 999 and 7 in rc.removed and rc.ids == (2000,)
    b(FoldersChanged("a"))
    assert len(posted) == 2


def test_keymaps():
    default = keys.effective_keys("default", {})
    assert default["cursor_down"] == ("j", "down") and default["delete"] == ("d",)
    mutt = keys.effective_keys("mutt", {"flag": ("f",)})
    assert mutt["next_message"] == ("j",) and mutt["first"] == ("=", "home") and mutt["flag"] == ("f",)
    km = keys.keymap("mutt", {"flag": ("f", ","), "quit": ()})
    assert km["flag"] == "f,comma" and km["next_unread"] == "tab" and km["quit"].startswith("\x00")
    assert keys.unknown_actions({"flag": ("x",), "nope": ("y",)}) == ["nope"]
    names = [a.name for a in keys.ACTIONS]
    assert len(names) == len(set(names))
    doc = keys.__doc__
    for a in keys.ACTIONS:  # every action is documented in the module's table
        assert f"\n{a.name} " in doc, a.name


def test_themes_load_and_validate(tmp_path):
    themes, problems = load_themes([shipped_dir()])
    assert {"tuimail-dark", "tuimail-light", "tuimail-classic"} <= set(themes) and problems == []
    assert themes["tuimail-classic"].ansi
    assert resolve_name("dark") == "tuimail-dark" and resolve_name(None) == "tuimail-dark"
    bad = tmp_path / "bad.toml"
    bad.write_text('name = "bad"\nprimary = "not-a-colour"\n')
    with pytest.raises(ValueError, match="not a colour"):
        parse_theme(bad)
    (tmp_path / "mine.toml").write_text('name = "mine"\nprimary = "#ff0000"\n')
    themes, problems = load_themes([shipped_dir(), tmp_path])
    assert "mine" in themes and len(problems) == 1 and "bad.toml" in problems[0]


def test_dates_and_sizes():
    d = DateFormatter(lambda: NOW, __import__("datetime").timezone.utc)
    assert d(int(NOW) - 3600) == "11:00"
    assert d(int(NOW) - 86400 * 3) == "Mar 12"
    assert d(int(NOW) - 86400 * 400) == "2023-02-09"
    assert d(None) == ""
    assert format_size(999) == "999" and format_size(1500) == "1.5K" and format_size(5 * 2**20) == "5.0M"
    for w in (40, 60, 80, 120, 200):
        f, dt, fr, su, sz = columns(w)
        assert f + 1 + dt + 1 + fr + 1 + su + (sz + 1 if sz else 0) == w
    assert d(int(NOW) - 86400 * 400, compact=True) == "23-02-09"  # the day stays (11.7)
    assert DateFormatter(lambda: NOW, fmt="%A %d").width == len("Wednesday 28")
