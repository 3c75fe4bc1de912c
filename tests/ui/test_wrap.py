"""Wrapping in the reader: by display width, at word boundaries, for every script (issue 11.1).

The lines are real ones, from messages in tests/data/corpus: German (php-mime-mail-parser/m0014,
ISO-8859-1 quoted-printable), French (m0013), Russian (spamscope-mail-parser/mail_test_6, HTML),
Chinese (mail_test_12) and Japanese (mikel-mail/multi_charset/japanese_shift_jis.eml, whose three
short lines are joined into one paragraph, as a format=flowed paragraph would be)."""

from __future__ import annotations

import re
from pathlib import Path

from rich.cells import cell_len

from tuimail.mail.parse import parse_message
from tuimail.ui.wrap import wrap

from .fixtures import FakeService, content_for, run, screen_text, settle

CORPUS = Path(__file__).resolve().parents[1] / "data" / "corpus"
_CJK_RE = re.compile(r"[\u3000-\u30ff\u4e00-\u9fff\uff00-\uffef]")


def _lines(path: str, pattern: str, n: int = 1) -> list[str]:
    text = parse_message((CORPUS / path).read_bytes()).text
    found = [ln for ln in text.split("\n") if re.search(pattern, ln)]
    assert found, f"no line matching {pattern!r} in {path}"
    return found[:n]


def real_lines() -> dict[str, list[str]]:
    japanese = "".join(_lines("mikel-mail/multi_charset/japanese_shift_jis.eml", r"[\u3040-\u30ff]", 3)) * 3
    return {
        "de": _lines("php-mime-mail-parser/m0014", r"Hasen klagten|außerordentliche|Ersäufen noch", 3),
        "fr": _lines("php-mime-mail-parser/m0013", r"Pièce jointe"),
        "ru": _lines("spamscope-mail-parser/mail_test_6", r"ведущая деловая сеть"),
        "zh": _lines("spamscope-mail-parser/mail_test_12", r"增值税发票"),
        "ja": [japanese],
    }


def _check(original: str, pieces: list[str], width: int) -> None:
    assert all(cell_len(p) <= width for p in pieces), [(p, cell_len(p)) for p in pieces]
    if _CJK_RE.search(original):  # may break between any two CJK characters: nothing lost
        assert "".join("".join(p.split()) for p in pieces) == "".join(original.split())
    else:  # no word cut: the words of the pieces are the words of the line
        assert [w for p in pieces for w in p.split()] == original.split(), pieces


def test_wrap_keeps_words_and_width_for_every_script():
    for lang, lines in real_lines().items():
        for line in lines:
            assert cell_len(line) > 60, (lang, line)  # long enough to wrap at 60
            for width in (20, 37, 60, 77):
                _check(line, wrap(line, width), width)
    assert wrap("ab 😀😀😀 cd", 7) == ["ab", "😀😀😀", "cd"]  # emoji are 2 cells, a run of them a word
    assert wrap("    indented line here", 12) == ["    indented", "line here"]
    url = "https://example.org/" + "a" * 90
    assert wrap(f"see {url} now", 40) == ["see", url[:40], url[40:80], url[80:] + " now"]
    assert wrap("Preis: 200\u00a0Euro und 300\u00a0Euro", 14) == ["Preis:", "200\u00a0Euro und", "300\u00a0Euro"]
    assert wrap("「東京」。と言った", 6) == ["「東", "京」。", "と言っ", "た"]  # no line starts with 。 or っ


def test_reader_at_80x24_wraps_real_mail_by_words(make_app):
    lines = real_lines()
    text = "\n\n".join("\n".join(v) for v in lines.values()) + "\n\n> " + lines["de"][0]
    svc = FakeService({("INBOX", 1): content_for("INBOX", 1, text=text, links=[], attachments=[])})
    app, _store, _ = make_app(5, service=svc)

    async def go():
        async with app.run_test(size=(80, 24)) as pilot:
            await settle(pilot, app)
            await pilot.press("g", "enter")
            await settle(pilot, app)
            await pilot.press("z")  # the reader alone on screen
            await settle(pilot, app)
            reader = app.main.reader
            width = reader.scrollable_content_region.width
            assert 70 <= width < 80
            wrapped = [t for t, kind in reader._wrapped if kind == "text"]
            pos = 0
            for original in text.split("\n"):
                if not original.strip() or original.startswith(">"):
                    continue
                start = next(i for i in range(pos, len(wrapped))
                             if wrapped[i].strip() and original.startswith(wrapped[i][:8]))
                pieces = []
                while "".join("".join(p.split()) for p in pieces) != "".join(original.split()):
                    pieces.append(wrapped[start + len(pieces)])
                    assert len(pieces) < 20, (original, pieces)
                _check(original, pieces, width)
                pos = start + len(pieces)
            # the quoted copy is coloured as a quote and keeps its "> " on each of its screen lines
            quoted = [t for t, kind in reader._wrapped if kind == "quote1"]
            assert len(quoted) >= 2 and all(t.startswith("> ") for t in quoted)
            _check(lines["de"][0], [t[2:] for t in quoted], width - 2)
            # and what is on the screen: the first German line, whole words only
            screen = screen_text(app)
            assert "Die Hasen klagten einst über ihre mißliche Lage;" in screen
            for row in screen.splitlines():
                assert cell_len(row) <= 80

    run(go())
