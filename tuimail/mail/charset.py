"""Lossy, never-raising decoding of bytes in a declared (often wrong or misspelled) charset.

Used by headers.py (RFC 2047 words, 8-bit header bytes) and mime.py (``decode_text``).
Order: the declared charset through Python's codec aliases (plus a table of the mail world's
spellings and supersets), then UTF-8, then Windows-1252/latin-1; always ``errors="replace"``.
"""

from __future__ import annotations

import codecs

__all__ = ["decode_bytes", "resolve_charset"]

# Declared name (lower-case) -> codec we decode with.  Supersets are used where the declared
# charset is routinely used for its superset's bytes (as browsers do, per the WHATWG list).
_ALIASES = {
    "us-ascii": "ascii",
    "ascii": "ascii",
    "iso-8859-1": "cp1252",
    "iso8859-1": "cp1252",
    "latin1": "cp1252",
    "latin-1": "cp1252",
    "l1": "cp1252",
    "iso-8859-8-i": "iso8859_8",
    "iso-8859-6-i": "iso8859_6",
    "iso-8859-8-e": "iso8859_8",
    "iso-8859-6-e": "iso8859_6",
    "iso-8859-9": "cp1254",
    "iso-8859-11": "cp874",
    "tis-620": "cp874",
    "gb2312": "gb18030",
    "gbk": "gb18030",
    "x-gbk": "gb18030",
    "cn-gb": "gb18030",
    "euc-cn": "gb18030",
    "big5": "big5hkscs",
    "x-x-big5": "big5hkscs",
    "ks_c_5601-1987": "cp949",
    "ks_c_5601": "cp949",
    "ksc5601": "cp949",
    "euc-kr": "cp949",
    "korean": "cp949",
    "shift_jis": "cp932",
    "shift-jis": "cp932",
    "x-sjis": "cp932",
    "sjis": "cp932",
    "ms_kanji": "cp932",
    "windows-31j": "cp932",
    "iso-2022-jp": "iso2022_jp_ext",
    "csiso2022jp": "iso2022_jp_ext",
    "x-mac-cyrillic": "mac_cyrillic",
    "x-mac-ce": "mac_latin2",
    "x-mac-roman": "mac_roman",
    "macintosh": "mac_roman",
    "x-mac-greek": "mac_greek",
    "x-mac-turkish": "mac_turkish",
    "x-mac-icelandic": "mac_iceland",
    "unicode-1-1-utf-7": "utf_7",
    "x-unicode20utf8": "utf_8",
    "unicode-1-1-utf-8": "utf_8",
    "utf8": "utf_8",
    "x-user-defined": "cp1252",
    "x-unknown": "",
    "unknown-8bit": "",
    "unknown": "",
    "default": "",
    "": "",
}

# Codecs that are not charsets: never decode mail with them.
_REFUSED = {"idna", "punycode", "undefined", "unicode_escape", "raw_unicode_escape", "mbcs", "oem"}

# Charsets whose bytes say nothing when read as UTF-8.
_NOT_ASCII_COMPATIBLE = ("utf_16", "utf_32", "utf_7", "iso2022", "hz", "cp037", "cp500", "cp1140")

_cache: dict[str, str] = {}


def resolve_charset(charset: str | None) -> str:
    """Map a declared charset to a Python text codec name; "" when unknown/unusable."""
    if not charset:
        return ""
    hit = _cache.get(charset)
    if hit is not None:
        return hit
    key = charset.strip().strip("\"'").strip().lower()
    name = _ALIASES.get(key)
    if name is None:
        name = ""
        candidates = [key]
        if "*" in key:  # RFC 2231 language suffix: utf-8*en
            candidates.append(key.split("*", 1)[0])
        if key.startswith("x-"):
            candidates.append(key[2:])
        if key.startswith("x-mac-"):
            candidates.append("mac_" + key[6:])
        if key.startswith("cp-"):
            candidates.append("cp" + key[3:])
        for cand in candidates:
            if cand in _ALIASES:
                name = _ALIASES[cand]
                break
            try:
                info = codecs.lookup(cand)
            except (LookupError, ValueError, TypeError):
                continue
            if getattr(info, "_is_text_encoding", True) and info.name not in _REFUSED:
                name = info.name
                break
    if len(_cache) < 1000:  # bounded: names come from untrusted mail
        _cache[charset] = name
    return name


def _utf8_or_none(data: bytes) -> str | None:
    """Strict UTF-8 decode without the cost of an exception on short failing inputs."""
    if len(data) > 4096:
        try:
            return data.decode("utf-8")
        except UnicodeDecodeError:
            return None
    text = data.decode("utf-8", "replace")
    if "\ufffd" in text and text.count("\ufffd") != data.count(b"\xef\xbf\xbd"):
        return None  # replacements were made: not valid UTF-8
    return text


def decode_bytes(data: bytes, charset: str | None = None) -> str:
    """Decode ``data``: declared charset, else UTF-8, else cp1252; lossy, never raises."""
    if not data:
        return ""
    codec = resolve_charset(charset)
    if codec and codec not in ("ascii", "utf_8"):
        if not codec.startswith(_NOT_ASCII_COMPATIBLE) and not data.isascii():
            # Mislabelled mail is common (UTF-8 sent as "GB2312" or "iso-8859-1"), and non-ASCII
            # text in another charset is practically never valid UTF-8 by accident.
            text = _utf8_or_none(data)
            if text is not None:
                return text
        try:
            return data.decode(codec, "replace")
        except Exception:  # a codec can fail in ways other than UnicodeError
            pass
    text = _utf8_or_none(data)
    if text is not None:
        return text
    if codec == "utf_8":
        return data.decode("utf-8", "replace")
    # Windows-1252 is what "8-bit, unknown" mail almost always is; its five holes are mapped to
    # the latin-1 code points (C1), which the sanitiser removes.
    try:
        return data.decode("cp1252")
    except UnicodeDecodeError:
        return data.decode("latin-1")
