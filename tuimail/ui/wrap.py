"""Word wrapping by display width, for every script.

A line is cut into lines of at most `width` terminal cells: at spaces, between any two CJK
characters (Chinese, Japanese and Korean text has no spaces to break at), never inside a word
of any other script. A word longer than the whole width (a long URL, a base64 run) is broken
by cells. Wide characters (CJK, emoji) count two cells, combining marks none (rich.cells).
The spaces a line is broken at are dropped; the indentation a line starts with is kept.
"""

from __future__ import annotations

import re
from functools import cache

from rich.cells import cell_len, chop_cells

__all__ = ["wrap"]

# Where a break is allowed between two characters with no space: Han, kana, Hangul, CJK
# punctuation and symbols, full-width forms. Closing punctuation stays with the character before
# it (no line starts with "。" or "」"), opening punctuation with the one after it.
_CJK = (r"\u1100-\u11ff\u2e80-\u2fdf\u3000-\u303f\u3040-\u30ff\u3100-\u31ff\u3200-\u4dbf"
        r"\u4e00-\u9fff\ua960-\ua97f\uac00-\ud7ff\uf900-\ufaff\ufe30-\ufe4f\uff00-\uffef"
        r"\U00020000-\U0003ffff")
_CLOSE = r"、。，．：；！？）〕】」』〉》ー…・ゝゞヽヾっゃゅょァィゥェォッャュョ％\)\]\}\.,:;!\?"
_OPEN = r"（〔【「『〈《"
_GLUE = "\u00a0\u2007\u202f\u2060"  # no-break spaces and the word joiner: never a break
_TOKEN = (rf"(?P<space>(?:(?![{_GLUE}])\s)+)|[{_OPEN}]*[{_CJK}][{_CLOSE}]*"
          rf"|(?:[^\s{_CJK}]|[{_GLUE}])+")


@cache
def _token_re() -> re.Pattern[str]:
    """Compiled when a first line needs wrapping (not at start-up: it takes a few milliseconds)."""
    return re.compile(_TOKEN)

_BLOB = 2000  # a longer line without a single space (base64 and the like): cut by cells at once


def wrap(text: str, width: int) -> list[str]:
    """`text` (one logical line, no newline) as lines of at most `width` cells."""
    if width <= 0:
        return [text]
    if text.isascii():
        if len(text) <= width:
            return [text]
        if len(text) > _BLOB and " " not in text:
            return [text[i:i + width] for i in range(0, len(text), width)]
    elif cell_len(text) <= width:
        return [text]
    out: list[str] = []
    line: list[str] = []
    used = 0  # cells in `line`
    space = ""  # whitespace seen after the last word, written only if another word follows
    ascii_ = text.isascii()
    for m in _token_re().finditer(text):
        tok = m.group()
        if m.lastgroup == "space":
            if not line and not out:
                line.append(tok)  # the indentation of the first line
                used = len(tok) if ascii_ else cell_len(tok)
            else:
                space = tok
            continue
        w = len(tok) if ascii_ else cell_len(tok)
        sw = (len(space) if ascii_ else cell_len(space)) if line else 0
        if used + sw + w <= width:
            if sw:
                line.append(space)
            line.append(tok)
            used += sw + w
            space = ""
            continue
        if line and "".join(line).strip():
            out.append("".join(line))
            line, used = [], 0
        elif line:
            line, used = [], 0  # only indentation so far: it goes with the word it could not hold
        space = ""
        if w <= width:
            line, used = [tok], w
            continue
        pieces = chop_cells(tok, width)  # longer than a whole line: a URL, a hash
        out.extend(pieces[:-1])
        line = [pieces[-1]]
        used = cell_len(pieces[-1])
    if line or not out:
        out.append("".join(line))
    return out
