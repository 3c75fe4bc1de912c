"""The mail generator (tuimail/demo/generate.py) and its Maildir++ writer."""

from __future__ import annotations

import collections
import email
import email.header
import itertools
import os
import re
import time
from email import policy

import pytest

from tuimail.demo.generate import (
    DEMO_USER_ADDR,
    KINDS,
    GenMessage,
    demo_folders,
    encode_words,
    generate,
    hostile_messages,
    maildir_folder_dir,
    write_maildir,
)


def decoded(value: str | None) -> str:
    try:
        return str(email.header.make_header(email.header.decode_header(value or "")))
    except LookupError:  # the hostile "unknown charset" example
        return value or ""


@pytest.fixture(scope="module")
def sample() -> list[GenMessage]:
    return list(generate(5000, seed=7))


@pytest.fixture(scope="module")
def parsed(sample) -> list[tuple[GenMessage, email.message.Message]]:
    return [(m, email.message_from_bytes(m.raw)) for m in sample]  # compat32: fast


def test_same_seed_same_bytes_other_seed_other_bytes():
    a = list(generate(400, seed=3))
    b = list(generate(400, seed=3))
    c = list(generate(400, seed=4))
    assert [(m.raw, m.flags, m.date, m.message_id, m.folder) for m in a] == \
           [(m.raw, m.flags, m.date, m.message_id, m.folder) for m in b]
    assert [m.raw for m in a] != [m.raw for m in c]


def test_every_message_parses_with_the_essential_headers(parsed):
    for m, msg in parsed:
        assert b"\n" not in m.raw.replace(b"\r\n", b""), "bare LF"
        for name in ("Message-ID", "Date", "From", "Subject"):
            assert msg[name], (name, m.raw[:400])
        assert msg["Message-ID"] == m.message_id
        assert email.utils.parsedate_to_datetime(msg["Date"]).timestamp() == m.date
        assert not msg.defects, (msg.defects, m.raw[:400])


def test_dates_ascend_minutes_to_hours_apart_and_ids_are_unique(sample):
    gaps = [b.date - a.date for a, b in itertools.pairwise(sample)]
    assert min(gaps) >= 60 and max(gaps) <= 4 * 3600 + 60
    assert len({m.message_id for m in sample}) == len(sample)
    assert sample[0].date > 1_700_000_000


def test_mix_proportions(sample, parsed):
    n = len(sample)
    kinds = collections.Counter(m.kind for m in sample)
    for kind, share in KINDS.items():
        assert abs(kinds[kind] / n - share) < 0.025, (kind, kinds[kind] / n)
    ctype = {
        "plain": "text/plain", "encoded": "text/plain", "alternative": "multipart/alternative",
        "html": "text/html", "attachment": "multipart/mixed",
    }
    for m, msg in parsed:
        assert msg.get_content_type() == ctype[m.kind]
    flowed = sum(1 for m in sample if b"format=flowed" in m.raw)
    assert 0.05 < flowed / n < 0.3
    replies = sum(1 for m in sample if b"\r\nIn-Reply-To: " in m.raw)
    assert 0.25 < replies / n < 0.35
    seen = sum(1 for m in sample if "\\Seen" in m.flags) / n
    flagged = sum(1 for m in sample if "\\Flagged" in m.flags) / n
    answered = sum(1 for m in sample if "\\Answered" in m.flags) / n
    assert 0.65 < seen < 0.75 and 0.02 < flagged < 0.045 and 0.035 < answered < 0.065
    assert all("\\Seen" in m.flags for m in sample if "\\Answered" in m.flags)


def test_threads_reference_earlier_messages_up_to_depth_six(parsed):
    seen_ids: set[str] = set()
    max_depth = 0
    for m, msg in parsed:
        irt = msg["In-Reply-To"]
        if irt:
            refs = msg["References"].split()
            assert refs[-1] == irt
            assert all(r in seen_ids for r in refs), "reference to a later/unknown message"
            assert re.match(r"(Re|RE|AW): ", msg["Subject"])
            max_depth = max(max_depth, len(refs) + 1)
        seen_ids.add(m.message_id)
    assert 4 <= max_depth <= 6


def test_quoted_replies_and_signatures(sample):
    bodies = [m.raw for m in sample if m.kind == "plain"]
    assert any(b"\r\n> > " in b or b"\r\n>> " in b for b in bodies), "multi-level quotes"
    assert any(b"\r\n-- \r\n" in b for b in bodies), "signature separator"


def test_encoded_words_in_every_charset(parsed):
    charsets = collections.Counter()
    for m, msg in parsed:
        if m.kind != "encoded":
            continue
        subject = msg["Subject"]
        for cs, enc in re.findall(r"=\?([^?]+)\?([BQ])\?", subject):
            charsets[(cs.upper(), enc)] += 1
        text = decoded(subject)
        assert not text.isascii(), text
        body = msg.get_payload(decode=True).decode(msg.get_content_charset())
        assert not body.isascii()
    assert {("UTF-8", "B"), ("UTF-8", "Q"), ("ISO-8859-1", "Q"), ("SHIFT_JIS", "B"),
            ("KOI8-R", "B")} <= set(charsets)
    names = [decoded(msg["From"]) for _, msg in parsed[:1000]]
    assert any(not n.isascii() for n in names)
    assert len({n for n in names}) > 150


def test_html_parts_have_links_and_a_tracking_pixel(sample, parsed):
    alt = next(m for m in sample if m.kind == "alternative")
    msg = email.message_from_bytes(alt.raw, policy=policy.default)
    types = [p.get_content_type() for p in msg.walk()]
    assert types == ["multipart/alternative", "text/plain", "text/html"]
    html = msg.get_body(("html",)).get_content()
    assert "<img src=\"https://track.example.net/o/" in html and "<a href=" in html
    only = [msg for m, msg in parsed if m.kind == "html"]
    mismatched = 0
    for msg in only:
        html = msg.get_payload(decode=True).decode("utf-8")
        for target, text in re.findall(r'<a href="([^"]+)">([^<]+)</a>', html):
            if target != text:
                mismatched += 1
    assert mismatched >= len(only)


def test_attachments_some_with_rfc2231_names(sample, parsed):
    names = []
    for m, msg in parsed:
        if m.kind != "attachment":
            continue
        text, att = msg.get_payload()
        assert text.get_content_type() == "text/plain"
        assert att.get_content_disposition() == "attachment"
        assert 2000 < len(att.get_payload(decode=True)) < 8000
        names.append(att.get_filename())
    assert any(not n.isascii() for n in names)
    assert "Jahresabschlussbericht für das Geschäftsjahr 2023 – endgültige Fassung.pdf" in names
    assert any(b"filename*=UTF-8''" in m.raw for m in sample)
    assert any(b"filename*0*=UTF-8''" in m.raw for m in sample)


def test_big_attachment_every_k():
    msgs = list(generate(30, seed=2, big_attachment_every=10))
    big = [i for i, m in enumerate(msgs) if m.kind == "big"]
    assert big == [9, 19, 29]
    msg = email.message_from_bytes(msgs[9].raw, policy=policy.default)
    text = msg.get_body(("plain",)).get_content()
    (att,) = list(msg.iter_attachments())
    assert len(att.get_content()) == 2 * 1024 * 1024
    assert len(text) < 5000


def test_kinds_subset_and_unknown_kind():
    assert {m.kind for m in generate(200, kinds="plain")} == {"plain"}
    assert {m.kind for m in generate(300, kinds="html,attachment")} == {"html", "attachment"}
    with pytest.raises(ValueError):
        list(generate(1, kinds="pdf"))


def test_folder_roles():
    sent = list(generate(50, folder="Sent"))
    assert all(DEMO_USER_ADDR in email.message_from_bytes(m.raw)["From"] for m in sent)
    assert all(DEMO_USER_ADDR not in email.message_from_bytes(m.raw)["To"] for m in sent)
    lst = list(generate(50, folder="Lists/python-dev"))
    assert all(b"\r\nList-Id: python-dev <python-dev.lists.example.org>" in m.raw for m in lst)
    assert all("[Python-Dev]" in email.message_from_bytes(m.raw)["Subject"] for m in lst)
    junk = list(generate(10, folder="Junk"))
    assert {m.kind for m in junk} == {"spam"}
    assert all(m.folder == "Junk" for m in junk)


def test_encode_words_splits_long_text_within_75_chars():
    text = "Jahresabschlussbericht für das Geschäftsjahr 2023 – endgültige Fassung 会議の議事録"
    for enc in ("B", "Q"):
        value = encode_words(text, "UTF-8", enc)
        assert all(len(w) <= 75 for w in value.split("\r\n "))
        assert decoded(value.replace("\r\n", "")) == text


def test_demo_folders():
    folders = dict(demo_folders())
    assert list(folders) == ["INBOX", "Archive", "Sent", "Drafts", "Junk", "Trash",
                             "Lists/python-dev", "Lists/textual"]
    assert 1900 <= len(folders["INBOX"]) <= 2100 and len(folders["Drafts"]) == 2
    assert len(folders["Junk"]) == 20 and len(folders["Trash"]) == 10
    assert 3000 <= sum(len(v) for v in folders.values()) <= 6000
    inbox = folders["INBOX"]
    assert [m.date for m in inbox] == sorted(m.date for m in inbox)
    assert all("\\Seen" not in m.flags for m in inbox[-8:])
    assert sum("\\Seen" in m.flags for m in inbox) > 0.95 * len(inbox) - 20
    assert all(m.flags == ("\\Draft", "\\Seen") for m in folders["Drafts"])
    assert all(m.folder == name for name, ms in folders.items() for m in ms)
    ids = [m.message_id for ms in folders.values() for m in ms]
    assert len(ids) == len(set(ids))
    # deterministic
    again = dict(demo_folders())
    assert [m.raw for m in again["Lists/textual"]] == [m.raw for m in folders["Lists/textual"]]


def test_demo_inbox_holds_the_hostile_examples():
    inbox = dict(demo_folders())["INBOX"]
    hostile = [m for m in inbox if m.kind == "hostile"]
    assert len(hostile) == len(hostile_messages())
    subjects = [decoded(email.message_from_bytes(m.raw)["Subject"]) for m in hostile]
    raw_subjects = [email.message_from_bytes(m.raw)["Subject"] for m in hostile]
    assert any("\x1b]0;pwned\x07" in s for s in subjects)
    assert not any("\x1b" in s for s in raw_subjects), "the escape must be encoded, not raw"
    assert any("[@click=app.quit]click me[/]" in s for s in subjects)
    names = [p.get_filename() for m in hostile
             for p in email.message_from_bytes(m.raw, policy=policy.default).walk()
             if p.get_filename()]
    assert "invoice\u202efdp.exe" in names
    assert "../../.bashrc" in names
    for m in hostile:
        assert b"\x1b" not in m.raw and b"\x07" not in m.raw, "hostile bytes stay encoded on the wire"


# ---------------------------------------------------------------------------
# write_maildir
# ---------------------------------------------------------------------------

NAME_RE = re.compile(r"^(\d+)\.M(\d+)P(\d+)\.([^,:/]+),S=(\d+),W=(\d+):2,([DFRST]*)$")


def test_write_maildir_layout_names_flags_and_mtime(tmp_path):
    msgs = (list(generate(40, folder="INBOX")) + list(generate(10, folder="Lists/python-dev"))
            + list(generate(3, folder="Drafts")) + list(generate(5, folder="Archive")))
    msgs[0].flags = ("\\Seen", "\\Flagged", "\\Answered", "\\Deleted", "\\Draft", "$Custom")
    root = tmp_path / "Maildir"
    assert write_maildir(root, msgs) == len(msgs)
    for sub in ("cur", "new", "tmp"):
        assert (root / sub).is_dir()
        assert (root / ".Lists.python-dev" / sub).is_dir()
    assert not (root / "maildirfolder").exists()
    assert (root / ".Lists.python-dev" / "maildirfolder").is_file()
    assert (root / ".Archive" / "maildirfolder").is_file()
    by_dir = {"INBOX": root / "cur", "Lists/python-dev": root / ".Lists.python-dev" / "cur",
              "Drafts": root / ".Drafts" / "cur", "Archive": root / ".Archive" / "cur"}
    seen_names = {}
    for folder, cur in by_dir.items():
        for name in os.listdir(cur):
            match = NAME_RE.match(name)
            assert match, name
            seen_names[(folder, int(match[1]), int(match[5]))] = (cur / name, match[7])
    assert len(seen_names) == len(msgs)
    for m in msgs:
        path, letters = seen_names[(m.folder, m.date, len(m.raw))]
        assert path.read_bytes() == m.raw
        assert int(path.stat().st_mtime) == m.date
        want = "".join(sorted({"\\Draft": "D", "\\Flagged": "F", "\\Answered": "R", "\\Seen": "S",
                               "\\Deleted": "T"}[f] for f in m.flags if not f.startswith("$")))
        assert letters == want
    assert seen_names[("INBOX", msgs[0].date, len(msgs[0].raw))][1] == "DFRST"
    assert all(letters == "DS" for (folder, _, _), (_, letters) in seen_names.items()
               if folder == "Drafts")


def test_write_maildir_twice_adds_files_and_accepts_own_ids(tmp_path):
    msgs = list(generate(5))
    root = tmp_path / "m"
    uid, gid = os.getuid(), os.getgid()
    assert write_maildir(root, msgs, uid=uid, gid=gid) == 5
    assert write_maildir(root, msgs, uid=uid, gid=gid) == 5
    assert len(os.listdir(root / "cur")) == 10
    assert (root / "cur").stat().st_uid == uid


def test_maildir_folder_names():
    from pathlib import Path
    assert maildir_folder_dir(Path("/r"), "INBOX") == Path("/r")
    assert maildir_folder_dir(Path("/r"), "A/B") == Path("/r/.A.B")
    assert maildir_folder_dir(Path("/r"), "Entwürfe") == Path("/r/.Entw&APw-rfe")
    assert maildir_folder_dir(Path("/r"), "R&D") == Path("/r/.R&-D")
    with pytest.raises(ValueError):
        maildir_folder_dir(Path("/r"), "v1.2")


def test_ten_thousand_generate_and_write_quickly(tmp_path):
    t0 = time.perf_counter()
    msgs = list(generate(10_000, seed=5))
    t_gen = time.perf_counter() - t0
    t0 = time.perf_counter()
    assert write_maildir(tmp_path / "Maildir", msgs) == 10_000
    t_write = time.perf_counter() - t0
    print(f"\n10k messages: generate {t_gen:.2f}s, write_maildir {t_write:.2f}s")
    assert t_gen < 1.5  # 100k in < 3 s is the target; 10k measures ~0.25 s
    # file creation speed is the disk's: generous, only catches pathologies
    assert t_write < 20
