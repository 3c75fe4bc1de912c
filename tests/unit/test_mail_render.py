"""Rendering text parts: html2text with numbered links, format=flowed, quote depth, safety."""

import time

import pytest

from tuimail.mail.part import Part
from tuimail.mail.render import html_to_text, quote_depth, reflow_flowed, render_part_text

from .test_sanitize import assert_clean

PHISH = """<html><head><title>Title</title><style>p { color: red }</style>
<script>alert(1)</script></head><body>
<h1>Hello</h1>
<p>Click <a href="https://evil.example/login">https://paypal.com</a> now, or
<a href="mailto:help@example.org">mail us</a>. Again: <a href="https://evil.example/login">here</a>.
<a href="#top">top</a></p>
<img src="https://track.example/p.gif" width="1" height="1" alt="pixel">
<img src="https://track.example/q.gif">
<img src="http://cdn.example/logo.png" alt="Company logo">
<blockquote>quoted text<br>second line</blockquote>
<table><tr><td>cell one</td><td>cell two</td></tr></table>
</body></html>"""


def test_links_are_numbered_and_listed_with_their_real_target():
    text, links = html_to_text(PHISH)
    assert links == ["https://evil.example/login", "mailto:help@example.org"]
    assert "https://paypal.com [1]" in text  # the anchor text stays, its number follows
    assert "mail us [2]" in text
    assert "here [1]" in text  # the same target keeps its number
    # the list of real targets is drawn once by the presenter from `links`, not baked into the text
    assert "evil.example" not in text and "Links:" not in text
    assert "top" in text and "#top" not in text


def test_images_are_never_fetched_and_pixels_dropped():
    text, links = html_to_text(PHISH)
    assert "[image: Company logo]" in text
    assert "track.example" not in text and "cdn.example" not in text
    assert "pixel" not in text


def test_head_style_script_are_not_text_and_blocks_keep_shape():
    text, _ = html_to_text(PHISH)
    assert "alert" not in text and "color" not in text and "Title" not in text
    assert "> quoted text\n> second line" in text
    assert "cell one cell two" in text
    assert "  \n" not in text  # html2text's Markdown hard breaks are trimmed


def test_no_wrapping_unless_asked():
    long = "<p>" + " ".join(["word"] * 100) + "</p>"
    assert "\n" not in html_to_text(long)[0]
    wrapped, _ = html_to_text(long, width=40)
    assert max(len(line) for line in wrapped.split("\n")) <= 40


def test_html_entities_cannot_smuggle_controls():
    text, links = html_to_text('<p>a&#27;]0;title&#7;b &#x9b;2J &#x202e;c &#0; &#x7f;</p>'
                               '<a href="http://x/\x1b[2J&#x200b;y">l</a>')
    assert_clean(text)
    assert links == ["http://x/<U+001B>[2J<U+200B>y"]  # a link target shows its tricks


def test_markup_is_not_escaped_markdown_style():
    text, _ = html_to_text("<p>1. not a list &amp; 2*3 = 6 [@click=app.quit]x[/]</p>")
    assert text == "1. not a list & 2*3 = 6 [@click=app.quit]x[/]"


@pytest.mark.parametrize("markup", ["", "<", "<<<>>>&&&;;", "<p>unclosed <a href='x'>link",
                                    "<a href>empty</a>", "<img>", "&#99999999999;", "<![CDATA[x",
                                    "<table><td>" * 200, "\x00<p>\x00</p>"])
def test_malformed_html_never_raises(markup):
    text, links = html_to_text(markup)
    assert isinstance(text, str) and isinstance(links, list)
    assert_clean(text)


def test_fallback_when_html2text_fails(monkeypatch):
    import tuimail.mail.render as render

    def boom(self, data):
        raise AssertionError("html2text bug")

    monkeypatch.setattr(render._Renderer, "handle", boom)
    text, links = html_to_text("<style>x{}</style><p>Hello <a href='http://t/'>there</a></p><p>two</p>")
    assert "Hello there" in text and "two" in text and "x{}" not in text
    assert links == ["http://t/"]


def test_big_html_is_reasonably_fast():
    markup = "<div><p>Some <b>text</b> with a <a href='http://e/%d'>link</a>.</p></div>\n" * 5000
    start = time.process_time()
    text, links = html_to_text(markup)
    assert len(links) == 1 and text.count("[1]") == 5000
    assert time.process_time() - start < 10


# --------------------------------------------------------------------------- flowed


def test_reflow_joins_soft_breaks_and_keeps_quotes():
    text = "> This is a \n> flowed line.\n>> deeper \n>> still\nfixed\nsoft \nend\n"
    assert reflow_flowed(text, False) == "> This is a flowed line.\n>> deeper still\nfixed\nsoft end\n"


def test_reflow_space_stuffing_delsp_and_signature():
    assert reflow_flowed(" From here\n  indented", False) == "From here\n indented"
    assert reflow_flowed("abc \ndef", True) == "abcdef"
    assert reflow_flowed("text \n-- \nsig", False) == "text \n-- \nsig"
    assert reflow_flowed("body\n-- \nsig", False) == "body\n-- \nsig"


def test_reflow_quote_depth_change_ends_paragraph():
    assert reflow_flowed("> quoted soft \nreply", False) == "> quoted soft \nreply"


def test_quote_depth():
    assert quote_depth("> a") == 1
    assert quote_depth(">> a") == 2
    assert quote_depth("> > > a") == 3
    assert quote_depth(" > a") == 1
    assert quote_depth("a > b") == 0
    assert quote_depth("") == 0


# --------------------------------------------------------------------------- parts


def _part(subtype="plain", encoding="7bit", **params):
    return Part("1", "text", subtype, dict(params), encoding=encoding)


def test_render_part_text_plain_qp_flowed():
    data = b"caf=C3=A9 is =\r\nnice \r\nand soft\r\n"
    text, links = render_part_text(data, _part(encoding="quoted-printable", charset="utf-8", format="flowed"))
    assert text == "café is nice and soft\n" and links == []


def test_render_part_text_html_base64_with_meta_charset():
    import base64

    html = '<meta charset="windows-1251"><p>Привет <a href="http://x">y</a></p>'.encode("cp1251")
    text, links = render_part_text(base64.b64encode(html), _part("html", "base64"))
    assert text.startswith("Привет y [1]") and links == ["http://x"]


def test_render_part_text_sanitises_and_never_raises():
    text, _ = render_part_text(b"a\x1b[2Jb\r\nc\x00", _part(charset="x-unknown"))
    assert text == "ab\nc"
    text, _ = render_part_text(b"\xff\xfe\x00garbage", _part("html", "base64", charset="utf-32"))
    assert isinstance(text, str)
    assert_clean(text)
