"""Turning a text part into readable, safe text: HTML through html2text with numbered links,
RFC 3676 format=flowed reflow, quote depth for colouring.

Safety rules (DESIGN.md §3, "Hostile text"): html2text turns ``&#27;`` into a real ESC, so every
result goes through ``sanitize`` AFTER rendering; no remote content is ever fetched (images become
``[image: alt]``, tracking pixels disappear); a link shows its number in the text and its REAL
target in the "Links:" list, so anchor text cannot lie about where a link goes.
"""

from __future__ import annotations

import html
import re

import html2text

from tuimail.mail.part import Part, decode_text, decode_transfer
from tuimail.mail.sanitize import sanitize, sanitize_strict

__all__ = ["html_to_text", "reflow_flowed", "quote_depth", "render_part_text"]


class _Renderer(html2text.HTML2Text):
    """html2text with our own <a> and <img> handling and no Markdown escaping."""

    def __init__(self, width: int, link_base: int = 0) -> None:
        super().__init__(bodywidth=width)
        self.link_base = link_base
        self.body_width = width
        self.unicode_snob = True  # real characters, not ASCII approximations
        self.ignore_emphasis = True  # no _ and ** noise in a terminal
        self.ignore_tables = True  # layout tables read better as lines than as pipes
        self.ignore_links = True
        self.ignore_images = True
        self.escape_snob = False
        self.targets: list[str] = []
        self._numbers: dict[str, int] = {}
        self._anchors: list[str | None] = []

    def handle_tag(self, tag, attrs, start):  # noqa: D401 - html2text hook
        if tag == "a":
            if start:
                href = (attrs.get("href") or "").strip()
                self._anchors.append(href if href and not href.startswith("#") else None)
            elif self._anchors:
                href = self._anchors.pop()
                if href:
                    number = self._numbers.get(href)
                    if number is None:
                        self.targets.append(href)
                        number = self._numbers[href] = self.link_base + len(self.targets)
                    self.space = True
                    self.o(f"[{number}]")
            return
        if tag in ("td", "th") and not start:
            self.space = True  # ignore_tables would glue the cells of a row together
        if tag == "img":
            if start:
                alt = " ".join((attrs.get("alt") or "").split())
                if alt and not _is_pixel(attrs):
                    self.o(f"[image: {alt}]")
            return
        super().handle_tag(tag, attrs, start)

    def handle_data(self, data, entity_char=False):
        super().handle_data(data, True)  # True: skip html2text's Markdown escaping


def _is_pixel(attrs) -> bool:
    for key in ("width", "height"):
        value = (attrs.get(key) or "").strip().lower().removesuffix("px").strip()
        if value in ("0", "1"):
            return True
    style = (attrs.get("style") or "").replace(" ", "").lower()
    return "display:none" in style or "width:1px" in style or "height:1px" in style


_TRAILING_WS_RE = re.compile(r"[ \t]+\n")
_BLANKS_RE = re.compile(r"\n{3,}")
_SCRIPT_RE = re.compile(r"<(script|style|head|title)\b.*?</\1\s*>", re.I | re.S)
_TAG_RE = re.compile(r"<[^>]*>")
_BLOCK_RE = re.compile(r"<\s*/?\s*(br|p|div|tr|li|h\d|table|blockquote)\b[^>]*>", re.I)
_HREF_RE = re.compile(r"""<a\b[^>]*?\bhref\s*=\s*["']?([^"'\s>]+)""", re.I)


def _strip_tags(markup: str) -> tuple[str, list[str]]:
    """Fallback when html2text fails: drop scripts/styles and tags, keep line structure."""
    targets = list(dict.fromkeys(h for h in _HREF_RE.findall(markup) if not h.startswith("#")))
    markup = _SCRIPT_RE.sub(" ", markup)
    markup = _BLOCK_RE.sub("\n", markup)
    text = html.unescape(_TAG_RE.sub("", markup))
    text = "\n".join(" ".join(line.split()) for line in text.split("\n"))
    return text, [html.unescape(t) for t in targets]


def html_to_text(markup: str, width: int = 0, link_base: int = 0) -> tuple[str, list[str]]:
    """HTML -> (sanitised text with numbered [N] link markers, the real link targets).

    ``width`` 0 means no wrapping (the UI wraps). Links are numbered from ``link_base`` + 1 (a
    second HTML part in the same view continues the first one's numbers).  Never raises: malformed HTML that html2text
    cannot take falls back to a tag-stripping regex.
    """
    markup = markup or ""
    try:
        renderer = _Renderer(max(int(width or 0), 0), link_base)
        text = renderer.handle(markup)
        targets = renderer.targets
    except Exception:  # html2text is not hardened against every input
        text, targets = _strip_tags(markup)
    text = text.replace("\u00a0", " ").replace("\r", "")
    text = _TRAILING_WS_RE.sub("\n", text)
    text = _BLANKS_RE.sub("\n\n", text).strip("\n")
    links = [sanitize_strict(t) for t in targets]
    # The numbered list of real targets is drawn by each presenter (reader, `tuimail read`)
    # from `links`, once; the text carries only the [N] markers.
    return sanitize(text), links


def quote_depth(line: str) -> int:
    """Number of leading '>' quote marks, spaces between (and before) them ignored."""
    depth = 0
    for ch in line:
        if ch == ">":
            depth += 1
        elif ch != " ":
            break
    return depth


def reflow_flowed(text: str, delsp: bool) -> str:
    """RFC 3676 format=flowed: join soft-broken lines into paragraphs (one line each), keeping
    quote depth (written as ``>> `` prefixes), removing space-stuffing, keeping "-- " lines."""
    out: list[str] = []
    chunks: list[str] = []
    para_depth = -1

    def flush() -> None:
        nonlocal para_depth
        if para_depth >= 0:
            prefix = ">" * para_depth + " " if para_depth else ""
            out.append(prefix + "".join(chunks))
        chunks.clear()
        para_depth = -1

    for line in text.replace("\r\n", "\n").split("\n"):
        depth = len(line) - len(line.lstrip(">"))
        content = line[depth:]
        if content.startswith(" "):
            content = content[1:]  # space-stuffing (or the space after the quote marks)
        if para_depth >= 0 and (depth != para_depth or content == "-- "):
            flush()  # quote depth changed, or a signature separator: never join across it
        para_depth = depth
        if content.endswith(" ") and content != "-- ":
            chunks.append(content[:-1] if delsp else content)
        else:
            chunks.append(content)
            flush()
    flush()
    return "\n".join(out)


_META_CHARSET_RE = re.compile(rb"""<meta[^>]{0,200}?charset\s*=\s*["']?\s*([A-Za-z0-9_:.+-]{1,40})""", re.I)


def render_part_text(data: bytes, part: Part, link_base: int = 0) -> tuple[str, list[str]]:
    """Transfer-encoded bytes of a text part -> (sanitised readable text, link targets)."""
    try:
        raw = decode_transfer(data, part.encoding)
        charset = part.charset
        is_html = part.subtype == "html"
        if is_html and not charset:
            m = _META_CHARSET_RE.search(raw, 0, 8192)
            if m is not None:
                charset = m.group(1).decode("ascii")
        text = decode_text(raw, charset)
        if "\r" in text:
            text = text.replace("\r\n", "\n")
        if is_html:
            return html_to_text(text, link_base=link_base)
        if part.params.get("format", "").strip().lower() == "flowed":
            text = reflow_flowed(text, part.params.get("delsp", "").strip().lower() == "yes")
        return sanitize(text), []
    except Exception:  # last resort: never let one bad part break the reader
        return sanitize(decode_text(bytes(data or b""), None)), []
