"""Saving a typed password into the config ("save in config" in the password prompt)."""

from __future__ import annotations

import stat

import pytest

from tuimail.config.load import load_config
from tuimail.config.write import save_password
from tuimail.errors import ConfigError

BASE = '''# my mail
[accounts.work]   # the office
kind = "imap"
host = "mail.example.org"
username = "alice"

[ui]
theme = "light"
'''


@pytest.mark.parametrize("password", ["s3cret", 'qu"ote\\back', "tab\there", "del\x7fnul\x00nl\n", "ünï 🔑", ""])
def test_saved_password_loads_back_and_the_rest_is_kept(tmp_path, password):
    p = tmp_path / "config.toml"
    p.write_text(BASE)
    p.chmod(0o644)
    save_password(p, "work", password)
    assert stat.S_IMODE(p.stat().st_mode) == 0o600
    cfg = load_config(p)
    assert cfg.account("work").password == password
    assert cfg.ui.theme == "light"
    text = p.read_text()
    assert text.startswith("# my mail\n[accounts.work]   # the office\npassword = ")
    assert text.endswith(BASE.split("\n", 2)[2])


def test_a_symlinked_config_is_written_where_it_points(tmp_path):
    real = tmp_path / "dotfiles" / "tuimail.toml"
    real.parent.mkdir()
    real.write_text(BASE.replace("[accounts.work]", '[accounts."work"]'))
    link = tmp_path / "config.toml"
    link.symlink_to(real)
    save_password(link, "work", "pw")
    assert link.is_symlink()
    assert load_config(link).account("work").password == "pw"


def test_refused_without_a_table_or_with_another_credential(tmp_path):
    p = tmp_path / "config.toml"
    p.write_text('accounts = { work = { kind = "imap", host = "h", username = "u" } }\n')
    before = p.read_text()
    with pytest.raises(ConfigError) as info:
        save_password(p, "work", "pw")
    assert "no [accounts.work] table" in str(info.value)
    p.write_text(BASE.replace('username = "alice"', 'username = "alice"\npassword_command = ["pass", "x"]'))
    before = p.read_text()
    with pytest.raises(ConfigError) as info:
        save_password(p, "work", "pw")
    assert "not saved" in str(info.value) and "\n" not in str(info.value) and "pw" not in str(info.value)
    assert p.read_text() == before
    assert list(tmp_path.iterdir()) == [p]  # no temporary file left behind
