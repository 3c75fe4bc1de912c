"""One definition each (issue 10.7): the header field list, folder roles, sort orders, the size
formatter and the sender name live in one place; the rest import them."""

from __future__ import annotations

import ast
from pathlib import Path

from tuimail.config import model as config_model
from tuimail.mail import addresses, headers
from tuimail.protocol.imap import responses
from tuimail.store import store
from tuimail.mail.present import format_bytes
from tuimail.ui import rows

PKG = Path(__file__).resolve().parents[2] / "tuimail"


def _definitions() -> dict[str, list[str]]:
    """name -> modules that bind it to a literal (a tuple, bytes or string written out) or a def."""
    out: dict[str, list[str]] = {}
    for path in PKG.rglob("*.py"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in tree.body:
            names = []
            if isinstance(node, ast.Assign) and isinstance(node.value, (ast.Tuple, ast.Constant)):
                names = [t.id for t in node.targets if isinstance(t, ast.Name)]
            elif isinstance(node, (ast.FunctionDef, ast.ClassDef)):
                names = [node.name]
            for n in names:
                out.setdefault(n, []).append(str(path.relative_to(PKG)))
    return out


def test_each_list_and_helper_is_written_once():
    defs = _definitions()
    assert defs["HEADER_FIELDS"] == ["mail/headers.py"]
    assert defs["ROLES"] == ["store/store.py"] and defs["SORTS"] == ["store/store.py"]
    assert "SORT_ORDER" not in defs
    assert defs["format_bytes"] == ["mail/present.py"] and "format_size" not in defs
    assert defs["short_from"] == ["mail/addresses.py"] and defs["sender_name"] == ["mail/addresses.py"]
    assert config_model.ROLES is store.ROLES and config_model.SORTS is store.SORTS
    assert responses.HEADER_FIELDS.decode().split() == list(headers.HEADER_FIELDS)
    assert rows.sender_name is addresses.sender_name


def test_the_size_formatter_in_both_forms():
    cases = [(0, "0", "0 B"), (999, "999", "999 B"), (1000, "1.0K", "1.0 KB"), (1500, "1.5K", "1.5 KB"),
             (1023 * 1024, "1.0M", "1.0 MB"), (5 * 2**20, "5.0M", "5.0 MB"), (999 * 2**20, "999M", "999 MB"),
             (3 * 2**40, "3.0T", "3.0 TB")]  # (the list's column said "3072T" for 3 TB)
    for n, compact, full in cases:
        assert rows.format_size(n) == compact and len(compact) <= 4
        assert format_bytes(n) == full


def test_folder_roles_by_name_are_one_table_for_every_kind():
    from tuimail.backends.pop3.service import _role_of
    from tuimail.core.roles import WELL_KNOWN, role_by_name
    from tuimail.protocol.imap import roles as imap_roles

    assert imap_roles.ROLE_NAMES is WELL_KNOWN
    assert role_by_name("Sent Items") == "sent" and role_by_name("Spam") == "junk" and role_by_name("Notes") is None
    assert _role_of("Bin", {}) == "trash"  # a POP3 local folder: the same names as on an IMAP server
    assert _role_of("Bin", {"archive": "Bin"}) == "archive"  # the account's roles win
