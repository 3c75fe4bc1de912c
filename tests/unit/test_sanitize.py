"""The sanitiser: every string from a message or a server passes through it (DESIGN.md §1, §3)."""

import re
import time
import unicodedata

from hypothesis import given, settings
from hypothesis import strategies as st

from tuimail.mail.sanitize import sanitize, sanitize_line, sanitize_strict

# The forbidden set, defined once for all tests (test_corpus.py imports it): C0 controls except
# tab and newline (so ESC and CR too), DEL, C1 controls, bidi embeddings/overrides/isolates and
# marks, the zero-width spaces, surrogates and noncharacters.
FORBIDDEN_CHARS = (
    "\x00-\x08\x0b-\x1f\x7f-\x9f"
    "\u202a-\u202e\u2066-\u2069\u200e\u200f\u061c"
    "\u200b\u2060\ufeff"
    "\ud800-\udfff\ufdd0-\ufdef\ufffe\uffff"
)
FORBIDDEN_RE = re.compile(f"[{FORBIDDEN_CHARS}]")


def assert_clean(text: str) -> None:
    m = FORBIDDEN_RE.search(text)
    assert m is None, f"forbidden U+{ord(m.group()):04X} at {m.start()} in {text!r}"


# --------------------------------------------------------------------------- escape sequences


def test_osc_title_with_bel_is_removed_whole():
    assert sanitize("a\x1b]0;pwned title\x07b") == "ab"


def test_osc_with_string_terminator_and_8bit_st():
    assert sanitize("a\x1b]8;;http://evil\x1b\\link\x1b]8;;\x1b\\b") == "alinkb"
    assert sanitize("a\x1b]2;x\x9cb") == "ab"


def test_unterminated_osc_stops_at_end_of_line():
    assert sanitize("a\x1b]0;title\nnext line") == "a\nnext line"


def test_csi_clear_screen_and_colours():
    assert sanitize("a\x1b[2Jb") == "ab"
    assert sanitize("\x1b[38;5;196mred\x1b[0m") == "red"
    assert sanitize("x\x1b[?1049hy") == "xy"


def test_8bit_csi():
    assert sanitize("a\u009b2Jb") == "ab"
    assert sanitize("a\u009b31mb") == "ab"


def test_dcs_apc_pm_sos_and_two_char_sequences():
    assert sanitize("a\x1bPq#0;2;0;0;0\x1b\\b") == "ab"
    assert sanitize("a\x1b_Gf=100;AAAA\x1b\\b") == "ab"
    assert sanitize("a\x1b^pm\x1b\\b\x1bXsos\x1b\\c") == "abc"
    assert sanitize("a\x1bcb") == "ab"  # RIS: full terminal reset
    assert sanitize("a\x1b(0b") == "ab"  # charset designation (line drawing)
    assert sanitize("trailing\x1b") == "trailing"
    assert sanitize("half\x1b[") == "half"


def test_other_c0_c1_and_del_are_removed():
    assert sanitize("a\x00b\x07c\x08d\x7fe\x85f\x9dg") == "abcdefg"


def test_tabs_and_newlines_kept_cr_normalised():
    assert sanitize("a\tb\nc\r\nd\re") == "a\tb\nc\nd\ne"


def test_bidi_controls_removed():
    # "invoice_<U+202E>fdp.exe" displays as invoice_exe.pdf
    assert sanitize("invoice_\u202efdp.exe") == "invoice_fdp.exe"
    assert sanitize("\u2066a\u2069\u200eb\u200fc\u061cd\u202ae\u202c") == "abcde"


def test_zero_width_spaces_removed():
    assert sanitize("pay\u200bpal\u2060\ufeff") == "paypal"


def test_zwj_kept_in_emoji_and_scripts_removed_elsewhere():
    family = "\U0001f468\u200d\U0001f469\u200d\U0001f467"
    assert sanitize(family) == family
    skin = "\U0001f469\U0001f3fd\u200d\U0001f4bb"  # woman technologist, skin tone
    assert sanitize(skin) == skin
    heart = "\u2764\ufe0f\u200d\U0001f525"  # heart on fire (VS16 before ZWJ)
    assert sanitize(heart) == heart
    persian = "\u0645\u06cc\u200c\u062e\u0648\u0627\u0647\u0645"  # ZWNJ between letters
    assert sanitize(persian) == persian
    devanagari = "\u0915\u094d\u200d\u0937"  # KA VIRAMA ZWJ SSA
    assert sanitize(devanagari) == devanagari
    assert sanitize("\u200dstart") == "start"
    assert sanitize("end\u200d") == "end"
    assert sanitize("a\u200d b") == "a b"
    assert sanitize("1\u200d2") == "12"
    assert sanitize("a\u200d\u200db") == "ab"


def test_noncharacters_and_surrogates_removed_but_astral_text_kept():
    assert sanitize("a\ud800b\udfffc\ufffed\ufdd0e\U0001fffef\U0010ffffg") == "abcdefg"
    assert sanitize("\U00020000\U0001f600") == "\U00020000\U0001f600"


def test_textual_markup_is_left_literal():
    # The sanitiser does not escape markup: the UI passes Text/Content objects (DESIGN.md §3).
    assert sanitize("[@click=app.quit]x[/]") == "[@click=app.quit]x[/]"
    assert sanitize_line("[@click=app.quit]x[/]") == "[@click=app.quit]x[/]"


def test_ascii_fast_path_returns_the_same_object():
    text = "Hello, world.\n\tIndented line.\n" * 100
    assert sanitize(text) is text
    assert sanitize("") == ""


def test_line_separators_become_newlines():
    assert sanitize("a\u2028b\u2029c") == "a\nb\nc"


# --------------------------------------------------------------------------- one-line fields


def test_sanitize_line_collapses_whitespace():
    assert sanitize_line("  Re:\tHello\r\n  world \n") == "Re: Hello world"
    assert sanitize_line("a\x1b[2J\nb") == "a b"
    assert sanitize_line("a\u00a0\u3000b") == "a b"
    assert sanitize_line("") == ""


# --------------------------------------------------------------------------- strict


def test_strict_makes_invisible_characters_visible():
    assert sanitize_strict("pay\u200bpal.com") == "pay<U+200B>pal.com"
    assert sanitize_strict("evil\u202egpj.exe") == "evil<U+202E>gpj.exe"
    assert sanitize_strict("a\x1b[2Jb") == "a<U+001B>[2Jb"
    assert sanitize_strict("a\u200db") == "a<U+200D>b"
    assert sanitize_strict("a\u00adb") == "a<U+00AD>b"  # soft hyphen
    assert sanitize_strict("x\x85y\x1cz") == "x<U+0085>y<U+001C>z"
    assert sanitize_strict("a\u3164b") == "a<U+3164>b"  # Hangul filler
    assert sanitize_strict(" a\tb\r\nc ") == "a b c"
    assert sanitize_strict("user@example.org") == "user@example.org"


def test_strict_covers_every_format_character():
    category = unicodedata.category
    format_chars = [chr(cp) for cp in range(0x110000) if category(chr(cp)) == "Cf"]
    assert len(format_chars) > 150
    missing = [f"U+{ord(ch):04X}" for ch in format_chars if sanitize_strict(f"a{ch}b") != f"a<U+{ord(ch):04X}>b"]
    assert not missing


# --------------------------------------------------------------------------- properties

_hostile = st.text(
    alphabet=st.one_of(
        st.characters(codec="utf-8"),
        st.sampled_from(list("\x1b\x9b\x07\x9c\\[]();P_^X\r\n\t\u200d\u200c\u202e\u2066\ufeff0m?")
                       + ["\ud800", "\udfff", "\U0001fffe", "\U0001f468", "\u094d", "\u2028"]),
        st.characters(min_codepoint=0, max_codepoint=0x20),
        st.characters(min_codepoint=0x7F, max_codepoint=0x9F),
    ),
    max_size=200,
)


@settings(max_examples=400, deadline=None)
@given(_hostile)
def test_property_sanitize_output_is_clean(text):
    out = sanitize(text)
    assert_clean(out)
    assert "\r" not in out
    assert sanitize(out) == out  # idempotent


@settings(max_examples=300, deadline=None)
@given(_hostile)
def test_property_sanitize_line_is_one_clean_line(text):
    out = sanitize_line(text)
    assert_clean(out)
    assert "\n" not in out and "\t" not in out
    assert out == out.strip()


@settings(max_examples=300, deadline=None)
@given(_hostile)
def test_property_sanitize_strict_hides_nothing(text):
    out = sanitize_strict(text)
    assert_clean(out)
    assert not any(unicodedata.category(c) == "Cf" for c in out)


# --------------------------------------------------------------------------- speed


def _best_cpu(fn, repeat=3):
    best = float("inf")
    for _ in range(repeat):
        t = time.process_time()
        fn()
        best = min(best, time.process_time() - t)
    return best


def test_speed_one_megabyte_body():
    latin = ("Grüße aus Köln — “quoted” text, naïve café.\n" * 25000)[:1_000_000]
    ascii_ = ("Plain ASCII line of a typical mail body.\r\n" * 25000)[:1_000_000]
    # Target 50 ms on an idle machine; the bound here leaves room for a loaded CI box.
    assert _best_cpu(lambda: sanitize(latin)) < 0.15
    assert _best_cpu(lambda: sanitize(ascii_)) < 0.15
