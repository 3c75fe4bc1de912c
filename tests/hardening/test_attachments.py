"""Attachments (issue 5, item 3): the safe-name function (tuimail/ui/attachments.safe_filename)
under property tests, private writes, and mailcap commands that never see a shell-interpreted
file name: `%s` is one argv element, even when the user's entry itself runs `sh -c`."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import unicodedata
from pathlib import Path

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from tuimail.ui import mailcap
from tuimail.ui.attachments import MAX_NAME, safe_filename, save_target, temp_copy, write_private

RESERVED = {"CON", "PRN", "AUX", "NUL", *(f"COM{i}" for i in range(1, 10)), *(f"LPT{i}" for i in range(1, 10))}

HOSTILE_NAMES = ["../../.bashrc", "..\\..\\Windows\\System32\\x.dll", "/etc/passwd", ".", "..", "...", "",
                 "invoice\u202efdp.exe", "a\x00b", "\x1b]0;pwned\x07.txt", "CON", "nul.txt", "Com1.log",
                 "lpt9", "aux.tar.gz", ".hidden", " .x", "x" * 5000 + ".pdf", "\u200b\u200b", "a/b\\c:d*e?f\"g<h>i|j",
                 "x; touch PWNED; $(touch PWNED2) `touch PWNED3` 'q' \"d\".pdf", "-rf", "~/x", "$HOME",
                 "\u2028line\u2029sep", "名前.txt", "\udc80bad"]

names = st.one_of(st.sampled_from(HOSTILE_NAMES), st.text(max_size=300),
                  st.text(alphabet=st.sampled_from("./\\\x00\x1b\u202e\u200b CONulx:;$`'\"-~"), max_size=30))


def _check_safe(out: str) -> None:
    assert out, "never empty"
    assert "/" not in out and "\\" not in out and "\x00" not in out
    assert not out.startswith("."), out
    assert out not in (".", "..")
    assert len(out.encode("utf-8", "surrogatepass")) <= MAX_NAME <= 255
    for ch in out:
        cat = unicodedata.category(ch)
        assert cat[0] != "C" and cat not in ("Zl", "Zp"), f"U+{ord(ch):04X} in {out!r}"
    assert out.split(".", 1)[0].strip().upper() not in RESERVED, out
    assert out == out.strip()


@settings(max_examples=500, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])
@given(names)
@example("CON")
@example("nul.txt")
def test_property_safe_filename(name):
    out = safe_filename(name)
    _check_safe(out)
    assert safe_filename(out) == out, "idempotent"


@settings(max_examples=200, deadline=None, derandomize=True)
@given(names)
def test_property_save_target_stays_in_the_directory(name):
    base = Path("/srv/downloads")
    target = save_target(base, name)
    assert target.parent == base
    assert os.path.normpath(target) == str(target)


def test_safe_filename_keeps_ordinary_names_and_extensions():
    assert safe_filename("report 2024.pdf") == "report 2024.pdf"
    assert safe_filename("名前.txt") == "名前.txt"
    long = safe_filename("x" * 5000 + ".pdf")
    assert long.endswith(".pdf")
    assert safe_filename("../../.bashrc") == "bashrc"


def test_write_private_is_0600_never_overwrites_or_follows_symlinks(tmp_path):
    old = os.umask(0o022)
    try:
        p = write_private(tmp_path / "a.bin", b"1")
        assert stat.S_IMODE(p.stat().st_mode) == 0o600
        with pytest.raises(FileExistsError):
            write_private(p, b"2")
        assert p.read_bytes() == b"1"
        victim = tmp_path / "victim"
        victim.write_bytes(b"keep")
        link = tmp_path / "link"
        link.symlink_to(victim)
        with pytest.raises(OSError):
            write_private(link, b"evil", overwrite=True)
        assert victim.read_bytes() == b"keep"
        tmp = temp_copy(b"data", "../../evil name.pdf")
        assert stat.S_IMODE(tmp.stat().st_mode) == 0o600
        assert stat.S_IMODE(tmp.parent.stat().st_mode) == 0o700
        assert tmp.parent.parent == Path(os.environ.get("TMPDIR", "/tmp")) or tmp.parent.name.startswith("tuimail-")
    finally:
        os.umask(old)


# --------------------------------------------------------------------------- mailcap


paths_ = st.text(min_size=1, max_size=80).filter(lambda s: "\x00" not in s)


@settings(max_examples=300, deadline=None, derandomize=True)
@given(paths_)
def test_property_mailcap_percent_s_is_one_argv_element(path):
    for command, expect in (("viewer %s", ["viewer", path]), ("viewer '%s'", ["viewer", path]),
                            ('viewer "%s"', ["viewer", path]),
                            ("viewer --file=%s -", ["viewer", "--file=" + path, "-"])):
        assert mailcap.argv_for(command, path, "application/pdf") == expect


def test_mailcap_codes_are_expanded_once():
    """What %s and %t put in is not read for % codes again (they were replaced one after another)."""
    assert mailcap.argv_for("v %s", "100%%.pdf", "application/pdf") == ["v", "100%%.pdf"]
    assert mailcap.argv_for("v -t %t %s", "a%t.pdf", "x/y%s") == ["v", "-t", "x/y%s", "a%t.pdf"]
    assert mailcap.argv_for("v 50%% %{charset}%s", "f", "text/plain") == ["v", "50%", "f"]


@pytest.mark.parametrize("command", ["v %s | tee x", "v %s; rm x", "v $(id) %s", "v `id` %s", "v %s > out",
                                     "v %s && x", "v < %s"])
def test_mailcap_commands_that_need_a_shell_are_refused(command):
    with pytest.raises(ValueError):
        mailcap.argv_for(command, "/tmp/x", "a/b")


RECORDER = """import json, sys
with open(sys.argv[1], "w") as f:
    json.dump(sys.argv[2:], f)
"""


@pytest.mark.parametrize("name", ["x; touch PWNED; $(touch PWNED2) `touch PWNED3` 'q' \"d\".pdf",
                                  "a b\nc.pdf", "--version", "../../.bashrc", "\x1b]0;t\x07.pdf"])
def test_mailcap_open_passes_a_hostile_name_as_one_argument(tmp_path, name):
    """The UI's open path: temp_copy + mailcap.find + argv_for + exec without a shell."""
    rec = tmp_path / "rec.py"
    rec.write_text(RECORDER)
    out = tmp_path / "argv.json"
    cap = tmp_path / "mailcap"
    cap.write_text(f"application/pdf; {sys.executable} {rec} {out} %s; test=true\n")
    entry = mailcap.find(mailcap.load([cap]), "application/pdf")
    assert entry is not None
    path = temp_copy(b"%PDF", name)
    argv = mailcap.argv_for(entry.command, str(path), "application/pdf")
    subprocess.run(argv, cwd=tmp_path, check=True, shell=False, timeout=30)
    got = json.loads(out.read_text())
    assert got == [str(path)]
    assert Path(got[0]).read_bytes() == b"%PDF"
    assert not any(p.name.startswith("PWNED") for p in tmp_path.iterdir())


def test_mailcap_entry_that_runs_sh_c_gets_a_shell_inert_file_name(tmp_path):
    """Users do write `sh -c '... %s'`. The temp copy's name then reaches a shell: it must hold no
    character a shell would interpret (mutt's mailcap CVEs)."""
    name = "x; touch PWNED; $(touch PWNED2) `touch PWNED3` & 'q' \"d\" |touch PWNED4.pdf"
    path = temp_copy(b"data", name)
    argv = mailcap.argv_for("sh -c 'cat %s'", str(path), "application/pdf")
    subprocess.run(argv, cwd=tmp_path, shell=False, timeout=30, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    assert not any(p.name.startswith("PWNED") for p in tmp_path.iterdir())
    assert path.suffix == ".pdf"
    for ch in ";$`&|'\"<>()\\ \t\n*?[]{}!#~":
        assert ch not in path.name, (ch, path.name)
