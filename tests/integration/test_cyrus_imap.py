"""tuimail's IMAP reader against Cyrus IMAP 3.6: a second implementation of the protocol (the
scenario suites run against Dovecot; this is the smoke test that the same CLI paths hold on Cyrus)."""

from __future__ import annotations

from .helpers import Cli, msg


def test_sync_list_read_and_flag_against_cyrus_imap(tuimail_env, cyrususer, capsys):
    for n in range(1, 4):
        cyrususer.append("INBOX", msg(n, body=f"body {n}\r\n"))
    cli = Cli(tuimail_env.write_config(cyrususer.config_toml()), capsys)
    cli("sync")
    listed = cli("list", "INBOX")
    assert all(f"message {n}" in listed for n in range(1, 4))
    assert "body 2" in cli("read", "INBOX", "2")
    cli("flag", "INBOX", "1", "+flagged")
    cli("sync")
    with cyrususer.client(select="INBOX") as imap:
        assert b"\\Flagged" in imap.get_flags([1])[1]
    # a change made by another client reaches the store
    with cyrususer.client(select="INBOX") as imap:
        imap.add_flags([3], [b"\\Seen"])
        imap.delete_messages([2])
        imap.expunge()
    cli("sync")
    listed = cli("list", "INBOX")
    assert "message 2" not in listed and "message 3" in listed
    folders = cli("folders")
    for name in ("Drafts", "Sent", "Trash", "Archive", "Junk"):
        assert name in folders
