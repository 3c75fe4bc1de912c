import socket

import pytest
from hypothesis import given, settings, strategies as st

from tuimail.errors import NetworkError, ProtocolError
from tuimail.protocol.imap import wire


def reader_for(data: bytes, **kw):
    a, b = socket.socketpair()
    a.sendall(data)
    a.shutdown(socket.SHUT_WR)
    r = wire.ResponseReader(b, **kw)
    return r, (a, b)


def test_response_with_literal_and_split_packets():
    r, socks = reader_for(b"* 1 FETCH (UID 5 BODY[HEADER] {5}\r\nab\r\nc)\r\nT1 OK done\r\n")
    resp = r.read_response()
    assert resp == [b"* 1 FETCH (UID 5 BODY[HEADER] ", b"ab\r\nc", b")"]
    assert r.read_response() == [b"T1 OK done"]
    with pytest.raises(NetworkError):
        r.read_response()


def test_huge_literal_claim_is_refused_before_allocation():
    r, socks = reader_for(b"* 1 FETCH (BODY[] {4294967296}\r\n", max_literal=1 << 20)
    with pytest.raises(ProtocolError, match="4294967296"):
        r.read_response()


def test_overlong_line_is_refused():
    r, socks = reader_for(b"* " + b"x" * 5000, max_line=1000)
    with pytest.raises(ProtocolError):
        r.readline()


def test_tokenize_bodystructure_shape():
    chunks = [b'* 1 FETCH (UID 3 BODYSTRUCTURE (("text" "plain" ("charset" "utf-8") NIL NIL "7bit" 12 1 NIL NIL NIL)'
              b' ("application" "pdf" ("name" "a \\"b\\".pdf") NIL NIL "base64" 4000 NIL ("attachment"'
              b' ("filename" ', b'x\r\ny.pdf', b')) NIL) "mixed" ("boundary" "xx") NIL NIL))']
    toks = wire.tokenize(chunks)
    d = wire.pairs(toks[3])
    bs = d[b"BODYSTRUCTURE"]
    assert bs[0][0] == b"text" and bs[0][6] == 12 and bs[0][3] is None
    assert bs[1][2] == (b"name", b'a "b".pdf')
    assert bs[1][8][1] == (b"filename", b"x\r\ny.pdf")
    assert bs[2] == b"mixed"


def test_tokenize_section_atoms():
    toks = wire.tokenize([b"* 2 FETCH (UID 9 BODY[1.2]<0> ", b"abc", b")"])
    assert wire.pairs(toks[3]) == {b"UID": 9, b"BODY[1.2]<0>": b"abc"}


def test_quote_refuses_injection():
    assert wire.quote('a"b\\c') == b'"a\\"b\\\\c"'
    for bad in ("x\r\nT2 DELETE INBOX", "a\nb", "nul\0"):
        with pytest.raises(ValueError):
            wire.quote(bad)


@given(st.binary(max_size=300))
@settings(max_examples=300)
def test_tokenizer_never_crashes_unexpectedly(data):
    try:
        wire.tokenize([data])
    except ProtocolError:
        pass


def test_resp_code():
    assert wire.resp_code(b"[COPYUID 5 1:3 7:9] Moved") == (b"COPYUID", b"5 1:3 7:9")
    assert wire.resp_code(b"[MODIFIED 7,9] Conditional STORE failed") == (b"MODIFIED", b"7,9")
    assert wire.resp_code(b"no code") == (None, b"")


def test_quote_refuses_8bit_and_string_sends_it_as_a_literal():
    """A quoted string is 7-bit without CR/LF/NUL; anything else taken from data is a literal."""
    with pytest.raises(ValueError):
        wire.quote("héllo")
    assert wire.string("plain") == b'"plain"'
    for s in ("héllo", "a\r\nT2 DELETE INBOX", "x\ny"):
        lit = wire.string(s)
        assert isinstance(lit, wire.Literal) and lit.data == s.encode()
    with pytest.raises(ValueError):
        wire.string("nul\0")


def test_render_splits_the_command_at_each_literal():
    parts = [b"UID SEARCH CHARSET UTF-8 SUBJECT ", wire.Literal("ü".encode()), b" FROM ", wire.Literal(b"a" * 5000)]
    segs = wire.render(b"T1", parts, lambda n: n <= wire.LITERAL_MINUS_MAX)  # LITERAL-
    assert [(line, sync) for line, _, sync in segs] == [
        (b"T1 UID SEARCH CHARSET UTF-8 SUBJECT {2+}\r\n", False), (b" FROM {5000}\r\n", True), (b"\r\n", False)]
    with pytest.raises(ValueError):
        wire.render(b"T1", [b"NOOP\r\nT2 LOGOUT"], lambda n: True)
