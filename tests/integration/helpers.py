"""Shared helpers for the sync integration tests: build messages, drive the CLI, compare states."""

from __future__ import annotations

import json

from tuimail import paths
from tuimail.cli.main import main
from tuimail.store import Store

from tests.support.rows import imap_flags


def msg(i: int, subject: str | None = None, body: str = "hello\r\n", extra: str = "") -> bytes:
    subject = subject if subject is not None else f"message {i}"
    return (f"From: Sender {i} <s{i}@example.org>\r\nTo: me@example.org\r\nSubject: {subject}\r\n"
            f"Date: Mon, 01 Jan 2024 {i // 3600 % 24:02d}:{i // 60 % 60:02d}:{i % 60:02d} +0000\r\n"
            f"Message-ID: <m{i}@example.org>\r\n{extra}MIME-Version: 1.0\r\n"
            f"Content-Type: text/plain; charset=utf-8\r\n\r\n{body}").encode()


class Cli:
    def __init__(self, config_path, capsys):
        self.config_path = config_path
        self.capsys = capsys

    def __call__(self, *args: str, expect: int = 0) -> str:
        self.capsys.readouterr()
        code = main(["--config", str(self.config_path), *args])
        out, err = self.capsys.readouterr()
        assert code == expect, f"exit {code}, stderr: {err}"
        self.last_err = err
        return out

    def json(self, *args: str):
        return json.loads(self(*args, "--json"))


def store_state(account: str = "test", folder: str = "INBOX") -> dict[str, set[str]]:
    """Message-ID -> flags, from the local store (hidden rows excluded)."""
    with Store(paths.account_store_path(account)) as st:
        fi = st.folder(folder)
        if fi is None:
            return {}
        uids = st.id_list(fi.id)
        assert len(uids) == len(set(uids))
        rows = st.rows(fi.id, uids)
        ids = [r.message_id for r in rows.values()]
        assert len(ids) == len(set(ids)), "duplicate message in the store"
        return {r.message_id: imap_flags(r) for r in rows.values()}  # (as the server spells them)


def store_uids(account: str = "test", folder: str = "INBOX") -> dict[int, str]:
    """IMAP uid -> Message-ID of the store's visible rows."""
    with Store(paths.account_store_path(account)) as st:
        fi = st.folder(folder)
        return {} if fi is None else {int(r.sid): r.message_id for r in st.rows(fi.id, st.id_list(fi.id)).values()}


def server_state(user, folder: str = "INBOX") -> dict[str, set[str]]:
    with user.client() as c:
        c.select_folder(folder, readonly=True)
        uids = c.search("ALL")
        if not uids:
            return {}
        data = c.fetch(uids, ["FLAGS", "BODY.PEEK[HEADER.FIELDS (MESSAGE-ID)]"])
    out = {}
    for _uid, d in data.items():
        hdr = d[b"BODY[HEADER.FIELDS (MESSAGE-ID)]"].decode().strip()
        mid = hdr.split(":", 1)[1].strip() if ":" in hdr else ""
        out[mid] = {f.decode() for f in d[b"FLAGS"] if f != b"\\Recent"}
    return out
