"""Address completion's source (store/addresses.py) and the [aliases] config table."""

from __future__ import annotations

import pytest

from tuimail.config.load import parse_config
from tuimail.errors import ConfigError
from tuimail.store import Store
from tuimail.store.addresses import AddressBook, format_address

ACCOUNT = '[accounts.a]\nkind = "imap"\nhost = "h"\nusername = "u"\npassword = "p"\n'


def _row(i: int, from_: str, to: str = "me@example.org", cc: str = "", date: int = 0):
    return (str(i), 0, frozenset(), "", date or 1_700_000_000 + i, from_, to, cc, f"s{i}", f"<m{i}@x>", None, "",
            100, 0)


def test_most_frequent_then_most_recent_and_new_rows_are_read_later(tmp_path):
    path = tmp_path / "s.sqlite3"
    with Store(path) as st:
        fid = st.upsert_folder("INBOX", "/", [], "inbox")
        st.insert_headers(fid, [_row(1, "Ann Old <ann@x.org>"), _row(2, "Anna <anna@x.org>"),
                                _row(3, "Ann Lee <ann@x.org>", cc='"Lee, Andy" <andy@y.org>'),
                                _row(4, "zed@z.org", to="Ann Lee <ANN@x.org>, =?utf-8?q?Andr=C3=A9?= <andre@y.org>")])
    book = AddressBook(path)
    got = [c.text for c in book.complete("an")]
    # ann thrice (From twice, To once, any case), the name of the newest row; then by recency
    assert got[0] == "Ann Lee <ann@x.org>" and set(got[1:]) == {"Anna <anna@x.org>", '"Lee, Andy" <andy@y.org>',
                                                                "André <andre@y.org>"}
    assert [c.text for c in book.complete("lee")] == ["Ann Lee <ann@x.org>", '"Lee, Andy" <andy@y.org>']
    assert book.complete("") == [] and book.complete("nobody") == []
    with Store(path) as st:
        st.insert_headers(st.folder_id("INBOX"), [_row(5, "Nadia <nadia@n.org>")])
    assert [c.text for c in book.complete("nad")] == ["Nadia <nadia@n.org>"]


def test_aliases_come_first_and_a_missing_store_is_empty(tmp_path):
    book = AddressBook(tmp_path / "none.sqlite3", {"team": "a@x.org, b@x.org"})
    (c,) = book.complete("te")
    assert (c.text, c.detail) == ("a@x.org, b@x.org", "alias team")


def test_format_address_quotes_what_needs_it():
    assert format_address("", "a@x") == "a@x" and format_address("a@x", "a@x") == "a@x"
    assert format_address("Doe, John", "j@x") == '"Doe, John" <j@x>'


def test_aliases_config_table(tmp_path):
    cfg = parse_config(ACCOUNT + '[aliases]\nteam = ["Ann <ann@x.org>", "bob@x.org"]\nme = "Me <me@x.org>"\n',
                       tmp_path / "c.toml")
    assert cfg.aliases == {"team": "Ann <ann@x.org>, bob@x.org", "me": "Me <me@x.org>"}


@pytest.mark.parametrize("value, fragment", [
    ('team = "just a name"', "aliases.team: expected addresses like"),
    ("team = 3", "aliases.team: expected a string"),
    ('team = ["a@x.org", 4]', "aliases.team[1]: expected a string"),
    ('aliases = "x"', "aliases: expected a table"),
])
def test_a_bad_alias_is_one_line_naming_the_key(tmp_path, value, fragment):
    text = value + "\n" + ACCOUNT if value.startswith("aliases") else ACCOUNT + f"[aliases]\n{value}\n"
    with pytest.raises(ConfigError) as exc:
        parse_config(text, tmp_path / "c.toml")
    assert fragment in str(exc.value) and "\n" not in str(exc.value)
