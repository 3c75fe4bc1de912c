"""The one sanitiser every user-visible string from a message or a server goes through.

Rich/Textual strip only BEL, BS, VT, FF and CR (DESIGN.md §3, "Hostile text"): escape
sequences, C1 controls, bidi overrides, zero-width characters, NUL and DEL reach the terminal
unchanged.  Three entry points, by the kind of text:

- ``sanitize``: multi-line body text.  Terminal escape sequences are removed whole, every other
  control except tab/newline is removed (CR and CRLF become newline), bidi controls and the
  zero-width spaces are removed, ZWJ/ZWNJ survive only between letters/marks/emoji (where scripts
  and emoji sequences need them).
- ``sanitize_line``: one-line fields (subject, names, folder names, server messages): the same,
  then all whitespace runs (newlines and tabs included) collapse to one space.
- ``sanitize_strict``: addresses, file names, link targets: nothing is removed silently; every
  control and invisible format character (Unicode category Cf, bidi, ZWJ, soft hyphen, tags...)
  is shown as ``<U+XXXX>`` so a spoof is visible.

The sanitiser does not escape Textual markup: the UI must pass untrusted text as ``Text``/``Content``
objects (or ``markup=False``), never through markup strings.
"""

from __future__ import annotations

import re
import unicodedata

__all__ = ["sanitize", "sanitize_line", "sanitize_strict"]

# --- character classes (as regex class bodies) -------------------------------------------

# C0 except \t \n \r (CR is turned into \n separately), DEL, all C1.
_CONTROLS = "\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f"
# Bidi embeddings/overrides/isolates and the directional marks.
_BIDI = "\u200e\u200f\u061c\u202a-\u202e\u2066-\u2069"
# Zero-width spaces / word joiner / BOM.
_ZW = "\u200b\u2060\ufeff"
# Surrogates (from surrogateescape decoding) and noncharacters.
_BMP_NONCHARS = "\ud800-\udfff\ufdd0-\ufdef\ufffe\uffff"
_NONCHARS = (
    _BMP_NONCHARS
    + "".join(f"{chr(p * 0x10000 + 0xFFFE)}{chr(p * 0x10000 + 0xFFFF)}" for p in range(1, 17))
)
# Every invisible format character (category Cf) as of Unicode 15, for sanitize_strict;
# tests/unit/test_sanitize.py checks that this covers unicodedata's Cf set.
_CF = (
    "\u00ad\u0600-\u0605\u061c\u06dd\u070f\u0890\u0891\u08e2\u180e\u200b-\u200f"
    "\u202a-\u202e\u2060-\u2064\u2066-\u206f\ufeff\ufff9-\ufffb\U000110bd\U000110cd"
    "\U00013430-\U0001343f\U0001bca0-\U0001bca3\U0001d173-\U0001d17a\U000e0001\U000e0020-\U000e007f"
)
# Invisible characters that are not Cf but are classic spoofing fillers (shown in strict mode).
_FILLERS = "\u034f\u115f\u1160\u3164\uffa0"

# --- escape sequences --------------------------------------------------------------------
# A string-type sequence (OSC, DCS, SOS, PM, APC) runs to BEL or ST (ESC \ or U+009C); when it is
# unterminated we stop at the end of the line so one bad byte cannot swallow a whole body.
_STRING_BODY = r"[^\x07\x1b\x9c\n]*(?:\x07|\x1b\\|\x9c)?"
_ESC_SEQ = (
    r"\x1b\[[\x30-\x3f]*[\x20-\x2f]*[\x40-\x7e]?"  # CSI ESC [ params intermediates final
    r"|\x1b[\]PX^_]" + _STRING_BODY +  # OSC / DCS / SOS / PM / APC
    r"|\x1b[\x20-\x2f]*[\x30-\x7e]?"  # two-char (and nF: ESC ( B) sequences, or a bare ESC
    r"|\x9b[\x30-\x3f]*[\x20-\x2f]*[\x40-\x7e]?"  # 8-bit CSI
)
# Other 8-bit C1 string introducers are only removed as single characters: text mis-decoded as
# latin-1 is full of them (UTF-8 continuation bytes) and must not eat the rest of a line.

# sanitize() works in passes because one big alternation is 3x slower than these on 1 MB of
# non-ASCII text, and str.translate with a dict costs ~200 ns per character:
# 1. escape sequences (only when ESC or U+009B occurs at all);
# 2. runs of forbidden single characters.  The supplementary-plane noncharacters (U+1FFFE...)
#    as single class members make the scan 5x slower, so the class takes the whole range
#    U+1FFFE..U+10FFFF (rare: CJK ext. B+, tags, private use) and the callback keeps what is legal.
_ESC_RE = re.compile(_ESC_SEQ)
_DROP_RE = re.compile("[" + _CONTROLS + _BIDI + _ZW + _BMP_NONCHARS + "\U0001fffe-\U0010ffff]+")
_JOINER_RE = re.compile("[\u200c\u200d]")
_ASCII_BAD_RE = re.compile("[\x00-\x08\x0b-\x1f\x7f]")
_LINE_SEP_RE = re.compile("[\u2028\u2029]")
# sanitize_strict(): escape sequence introducers are shown, not parsed.
_STRICT_RE = re.compile("[" + _CONTROLS + _BIDI + _ZW + _NONCHARS + _CF + _FILLERS + "\u200c\u200d]")


def _drop_sub(m: re.Match) -> str:
    run = m.group()
    if max(run) <= "\uffff":
        return ""
    return "".join(c for c in run if c > "\uffff" and (ord(c) & 0xFFFE) != 0xFFFE)


def _joinable(ch: str) -> bool:
    """True for a letter, a combining mark, or a (non-ASCII) symbol such as an emoji."""
    cat = unicodedata.category(ch)
    return cat[0] in "LM" or (cat in ("So", "Sk") and ch > "\x7f")


def _joiner_sub(m: re.Match) -> str:
    s, i = m.string, m.start()
    if 0 < i < len(s) - 1 and _joinable(s[i - 1]) and _joinable(s[i + 1]):
        return m.group()
    return ""


def sanitize(text: str) -> str:
    """Make multi-line body text safe for a terminal; keeps tabs and newlines."""
    if not text:
        return ""
    if text.isascii() and _ASCII_BAD_RE.search(text) is None:
        return text  # fast path: printable ASCII (plus \t \n) is already safe
    if "\r" in text:
        text = text.replace("\r\n", "\n").replace("\r", "\n")
    if "\x1b" in text or "\x9b" in text:
        text = _ESC_RE.sub("", text)
    text = _DROP_RE.sub(_drop_sub, text)
    if "\u2028" in text or "\u2029" in text:
        text = _LINE_SEP_RE.sub("\n", text)
    if "\u200c" in text or "\u200d" in text:
        text = _JOINER_RE.sub(_joiner_sub, text)
    return text


def sanitize_line(text: str) -> str:
    """Make a one-line field safe: sanitize(), then whitespace runs become one space, stripped."""
    if not text:
        return ""
    return " ".join(sanitize(text).split())


def _visible(m: re.Match) -> str:
    return f"<U+{ord(m.group()):04X}>"


def sanitize_strict(text: str) -> str:
    """For addresses, file names, link targets: controls and invisible characters made visible.

    Newlines, tabs and CR become spaces and whitespace collapses as in sanitize_line; every other
    control, bidi control, zero-width or format character is shown as ``<U+XXXX>``.
    """
    if not text:
        return ""
    if text.isascii() and _ASCII_BAD_RE.search(text) is None:
        return " ".join(text.split())
    # Made visible first: str.split() would treat U+001C..U+001F and U+0085 as whitespace.
    return " ".join(_STRICT_RE.sub(_visible, text).split())
