"""[searches] (issue #13): name = pattern, each parsed when the config loads; a bad one is one line
naming its key and the token at fault."""

from __future__ import annotations

import pytest

from tuimail.config.load import load_config
from tuimail.config.keys import conflicts, effective_keys

from tests.unit.test_config import MINIMAL, load_error, write


def test_saved_searches_load_in_file_order(tmp_path):
    cfg = load_config(write(tmp_path, MINIMAL + '[searches]\n"unread haddad" = "~f haddad ~U"\n'
                                                'flagged = " ~F "\n'))
    assert cfg.searches == {"unread haddad": "~f haddad ~U", "flagged": "~F"}
    assert load_config(write(tmp_path, MINIMAL)).searches == {}


@pytest.mark.parametrize("table, words", [
    ('bad = "~f haddad ~Y"\n', ["searches.bad: ", "unknown operator ~Y at column 11"]),
    ('empty = ""\n', ["searches.empty: ", "must not be empty"]),
    ("num = 3\n", ["searches.num: ", "expected a string"]),
])
def test_a_bad_saved_search_is_one_line_naming_its_key(tmp_path, table, words):
    msg = load_error(tmp_path, MINIMAL + "[searches]\n" + table)
    assert "\n" not in msg and all(w in msg for w in words), msg


def test_finding_keys_collide_with_nothing_in_either_keymap():
    for preset in ("default", "mutt"):
        eff = effective_keys(preset)
        assert eff["limit"] == ("l",) and eff["search"] == ("/",) and eff["search_backward"] == ("\\",)
        assert conflicts(preset) == []
    assert effective_keys("mutt")["search_next"] == ("n",) and effective_keys()["search_next"] == (".",)
