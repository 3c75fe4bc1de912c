"""Hostile servers and hostile arguments (issue 5, item 4).

- every IMAP argument built from data refuses CR, LF and NUL (wire.quote, imap._flag_arg, command());
- a server claiming a 4 GB literal, in the greeting (read by imaplib) or after login (our reader),
  gets a clean one-line exit 3 and no big allocation (the child runs under an address-space limit);
- garbage answers are a one-line exit 3, never a traceback;
- STARTTLS required but not offered: refused before LOGIN; bytes injected after the STARTTLS OK
  are never interpreted;
- certificates are verified: a self-signed Dovecot fails naming tls_ca_file/tls_fingerprint and
  works with either.
"""

from __future__ import annotations

import hashlib
import socket
import ssl
import threading
from tuimail.backends.imap.state import FolderState
from types import SimpleNamespace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tuimail import paths
from tuimail.errors import NetworkError, ProtocolError
from tuimail.protocol.imap import connection as imap, wire
from tuimail.protocol.imap.connection import ImapConnection
from tuimail.store import Store
from tests.integration.helpers import msg
from tests.support.proxy import GarbageServer

from .conftest import one_line_error, run_tuimail

# The child's address space: Python + tuimail need ~300 MB of it; a 4 GB literal cannot fit.
LIMIT_AS = 1 << 30
SMALL_RSS_KB = 150 * 1024


def account_toml(port: int, *, security: str = "none", password: str = "pw", **extra) -> str:
    lines = ["[accounts.test]", 'kind = "imap"', 'host = "127.0.0.1"', f"port = {port}",
             f'security = "{security}"', 'username = "alice"', f'password = "{password}"']
    for k, v in extra.items():
        lines.append(f'{k} = "{v}"' if isinstance(v, str) else f"{k} = {v}")
    return "\n".join(lines) + "\n"


def scripted(caps: bytes = b"IMAP4rev1", after_login=None, on_starttls=None, raw_caps: bool = False):
    """A GarbageServer reply function that speaks just enough IMAP to log in.

    after_login(tag, command_line) -> bytes answers every command after LOGIN (CAPABILITY too
    when raw_caps)."""
    state = {"logged_in": False}

    def reply(line: bytes):
        tag, _, rest = line.partition(b" ")
        cmd = rest.split(b" ", 1)[0].upper()
        if cmd == b"CAPABILITY" and not (state["logged_in"] and after_login is not None and raw_caps):
            return b"* CAPABILITY " + caps + b"\r\n" + tag + b" OK done\r\n"
        if state["logged_in"] and after_login is not None and cmd != b"LOGOUT":
            return after_login(tag, line)
        if cmd == b"LOGIN":
            state["logged_in"] = True
            return tag + b" OK logged in\r\n"
        if cmd == b"STARTTLS" and on_starttls is not None:
            return on_starttls(tag)
        if cmd == b"LOGOUT":
            return b"* BYE bye\r\n" + tag + b" OK done\r\n"
        return tag + b" BAD unknown\r\n"

    return reply


def saw_login(server: GarbageServer) -> bool:
    return any(b" LOGIN " in line.upper() or b" AUTHENTICATE " in line.upper() for line in server.received)


# --------------------------------------------------------------------------- argument checks

BAD = st.sampled_from([b"\r", b"\n", b"\0", b"\r\n"])


@settings(max_examples=200, deadline=None, derandomize=True)
@given(st.binary(max_size=40), BAD, st.binary(max_size=40))
def test_fuzz_quote_refuses_cr_lf_nul(a, bad, b):
    with pytest.raises(ValueError):
        wire.quote(a + bad + b)
    # folder names are sent modified-UTF-7 encoded: controls become base64, never raw bytes
    enc = imap.encode_mailbox((a + bad + b).decode("latin-1"))
    assert not any(c in enc for c in b"\r\n\0")


@settings(max_examples=200, deadline=None, derandomize=True)
@given(st.binary(max_size=60).filter(lambda b: b.isascii() and not any(c in b for c in b"\r\n\0")))
def test_fuzz_quote_round_trips_through_the_tokenizer(data):
    q = wire.quote(data)
    assert b"\r" not in q and b"\n" not in q and b"\0" not in q
    assert wire.tokenize([b"* X " + q]) == [b"*", b"X", data]


@settings(max_examples=200, deadline=None, derandomize=True)
@given(st.text(max_size=30))
def test_fuzz_flag_arg_accepts_only_atoms(flag):
    try:
        out = imap._flag_arg(flag)
    except ValueError:
        return
    assert out and not any(c in out[1:] for c in b"\r\n\0 (){}\"%*]\\")


@pytest.mark.parametrize("flag", ["$x\r\nT9 LOGOUT", "a\nb", "nul\0", "two words", "(paren", "{5}", "\\Seen\r\n"])
def test_flag_arg_refuses_injection(flag):
    with pytest.raises(ValueError):
        imap._flag_arg(flag)


class _RecordingSocket:
    def __init__(self):
        self.sent = b""

    def sendall(self, data):
        self.sent += data


def _offline_conn():
    acc = SimpleNamespace(name="t", host="h", port=1, security="none")
    conn = ImapConnection(acc, lambda: "pw")
    conn.session.sock = _RecordingSocket()
    conn.session.reader = object()  # "connected"; nothing is read in these tests
    return conn


@pytest.mark.parametrize("cmd", [b"NOOP\r\nT9 DELETE INBOX", b"SEARCH SUBJECT x\nT9 LOGOUT", b"NOOP\0"])
def test_command_refuses_cr_lf_nul_before_sending(cmd):
    conn = _offline_conn()
    with pytest.raises(ValueError):
        conn.send_command(cmd)
    assert conn.session.sock.sent == b""


def test_command_line_length_is_bounded():
    conn = _offline_conn()
    with pytest.raises(ValueError):
        conn.send_command(b"NOOP " + b"x" * 9000)
    assert conn.session.sock.sent == b""


def test_commands_built_from_hostile_names_and_flags_stay_one_line():
    conn = _offline_conn()
    conn.session.caps = {"MOVE", "UIDPLUS", "CONDSTORE"}
    conn.session.read_until = lambda *a, **k: ("OK", b"")
    conn.move([1], "Archive\r\nT9 DELETE INBOX")
    conn.status("INBOX\nT9 LOGOUT")
    conn.select("a\0b")
    lines = conn.session.sock.sent.split(b"\r\n")
    assert lines[-1] == b"" and len(lines) == 4, conn.session.sock.sent
    assert not any(b"\n" in x or b"\r" in x or b"\0" in x for x in lines)
    sent = conn.session.sock.sent
    with pytest.raises(ValueError):
        conn.store_flags([1], add=["$ok", "bad\r\nT9 LOGOUT"])
    with pytest.raises(ValueError):
        conn.fetch_section(1, "1\r\nT9 LOGOUT")
    assert conn.session.sock.sent == sent


def test_hostile_flag_in_the_journal_is_never_sent_and_does_not_wedge_sync(tuimail_env, mailuser, cli):
    """Keywords that are not IMAP atoms reached the journal (any future UI path): no command is
    injected, the sync is not wedged (the entry is refused like a NO and dropped after a few
    tries) and the good entry queued behind it still reaches the server."""
    mailuser.deliver_many("INBOX", [(msg(i), "") for i in range(3)])
    cli("sync")
    with Store(paths.account_store_path("test")) as st_:
        fid = st_.folder_id("INBOX")
        uids = sorted(st_.ids_of(fid, st_.local_sids(fid)).values())
        # CR/LF (or any whitespace) is refused by the store itself, before the journal
        with pytest.raises(ValueError):
            st_.set_flags(fid, [uids[0]], add=["bad(flag\r\nT99 DELETE INBOX"])
        st_.set_flags(fid, [uids[0]], add=["bad(flag"])
        st_.set_flags(fid, [uids[2]], add=["{5}"])
        st_.set_flags(fid, [uids[1]], add=["flagged"])
    from tuimail.cli.main import main
    for _ in range(4):
        cli.capsys.readouterr()
        code = main(["--config", str(cli.config_path), "sync"])
        out, err = cli.capsys.readouterr()
        assert code in (0, 3) and "Traceback" not in err and err.count("\n") <= 1, err
    with mailuser.client("INBOX") as c:
        flags = c.get_flags(c.search("ALL"))
        names = [f[2] for f in c.list_folders()]
    assert "INBOX" in names
    assert any(b"\\Flagged" in f for f in flags.values()), "the good entry behind the bad ones was lost"
    assert not any(b"(" in x or b"{" in x for f in flags.values() for x in f)
    with Store(paths.account_store_path("test")) as st_:
        assert st_.pending() == [], "refused entries are not retried forever"
        assert st_.failed_count() == 2, "after a few refusals they are kept as failed, for the user to see"


def test_hostile_folder_name_from_the_server_is_not_sent_back(tuimail_env):
    """A server lists a folder whose name (a literal) holds CRLF + a command: syncing never
    sends that command, and the run ends with one line."""
    evil = b"X\r\nT99 DELETE INBOX"

    def after(tag, line):
        up = line.upper()
        if b" LIST " in up:
            return (b'* LIST () "/" INBOX\r\n* LIST () "/" {%d}\r\n' % len(evil)) + evil + b"\r\n" + tag + b" OK\r\n"
        if b" SELECT " in up or b" EXAMINE " in up:
            return (b"* 0 EXISTS\r\n* OK [UIDVALIDITY 1] x\r\n* OK [UIDNEXT 1] x\r\n" + tag
                    + b" OK [READ-WRITE] done\r\n")
        if b" SEARCH" in up:
            return b"* SEARCH\r\n" + tag + b" OK\r\n"
        return tag + b" OK done\r\n"

    with GarbageServer(reply=scripted(after_login=after)) as server:
        run = run_tuimail(tuimail_env.write_config(account_toml(server.port)), "sync", timeout=30)
        assert "Traceback" not in run.err and run.err.count("\n") <= 1, run.err
        assert run.code in (0, 3), run.err
        assert not any(line.startswith(b"T99") for line in server.received), server.received


# --------------------------------------------------------------------------- huge literals


def test_4gb_literal_in_the_greeting_is_refused_without_allocating(tuimail_env):
    with GarbageServer(banner=b"* OK {4294967296}\r\n", reply=b"") as server:
        run = run_tuimail(tuimail_env.write_config(account_toml(server.port)), "sync",
                          timeout=30, limit_as=LIMIT_AS)
        err = one_line_error(run)
        assert "literal" in err
        assert run.seconds < 20
        assert run.maxrss_kb < SMALL_RSS_KB
        assert not saw_login(server)


def test_4gb_literal_in_the_capability_answer_is_refused(tuimail_env):
    def reply(line):
        tag = line.split(b" ", 1)[0]
        return b"* CAPABILITY {4294967296}\r\n" if b"CAPABILITY" in line.upper() else tag + b" NO\r\n"

    with GarbageServer(banner=b"* OK hi\r\n", reply=reply) as server:
        run = run_tuimail(tuimail_env.write_config(account_toml(server.port)), "sync",
                          timeout=30, limit_as=LIMIT_AS)
        one_line_error(run)
        assert run.maxrss_kb < SMALL_RSS_KB
        assert not saw_login(server)


@pytest.mark.parametrize("where", ["LIST", "SELECT", "FETCH"])
def test_4gb_literal_after_login_is_refused_by_our_reader(tuimail_env, where):
    def after(tag, line):
        up = line.upper()
        if where == "LIST" and b" LIST " in up:
            return b'* LIST () "/" {4294967296}\r\n'
        if b" LIST " in up:
            return b'* LIST () "/" INBOX\r\n' + tag + b" OK\r\n"
        if b" SELECT " in up:
            if where == "SELECT":
                return b"* OK [UIDVALIDITY 1] {4294967296}\r\n"
            return b"* 1 EXISTS\r\n* OK [UIDVALIDITY 1] x\r\n* OK [UIDNEXT 2] x\r\n" + tag + b" OK done\r\n"
        if b" SEARCH" in up:
            return b"* SEARCH 1\r\n" + tag + b" OK\r\n"
        if b" FETCH " in up:
            return (b"* 1 FETCH (UID 1 FLAGS () RFC822.SIZE 10 BODY[HEADER.FIELDS (FROM)] {4294967296}\r\n"
                    + b"From: x\r\n" * 100)
        return tag + b" OK done\r\n"

    with GarbageServer(reply=scripted(after_login=after)) as server:
        run = run_tuimail(tuimail_env.write_config(account_toml(server.port)), "sync",
                          timeout=30, limit_as=LIMIT_AS)
        err = one_line_error(run)
        assert "literal" in err
        assert run.maxrss_kb < SMALL_RSS_KB


def test_endless_line_is_bounded():
    """A server that never ends its line: the reader stops at max_line, not at memory's end."""
    a, b = socket.socketpair()
    try:
        r = wire.ResponseReader(a, max_line=1 << 20)
        stop = threading.Event()

        def pump():
            chunk = b"x" * 65536
            try:
                while not stop.is_set():
                    b.sendall(chunk)
            except OSError:
                pass

        t = threading.Thread(target=pump, daemon=True)
        t.start()
        with pytest.raises(ProtocolError):
            r.read_response()
        assert len(r.buf) < (1 << 20) + (1 << 18) + 65536
        stop.set()
    finally:
        a.close()
        b.close()


# --------------------------------------------------------------------------- garbage

GARBAGE = {
    "binary banner": dict(banner=b"\x00\xff\xfe garbage\r\n", reply=b""),
    "BYE greeting": dict(banner=b"* BYE go away\x1b]0;pwned\x07\r\n", reply=b""),
    "tagged garbage to CAPABILITY": dict(banner=b"* OK hi\r\n", reply=b"{tag} \x9b2J\x00 what\r\n"),
    "continuation instead of answer, then close": dict(banner=b"* OK hi\r\n", reply=b"+ go on\r\n",
                                                       close_after_reply=True),
    "close after the greeting": dict(banner=b"* OK hi\r\n", reply=lambda line: None),
    "overlong greeting line": dict(banner=b"* OK " + b"x" * 1_100_000 + b"\r\n", reply=b""),
}


@pytest.mark.parametrize("name", list(GARBAGE))
def test_garbage_before_login_is_one_line_exit_3(tuimail_env, name):
    with GarbageServer(**GARBAGE[name]) as server:
        run = run_tuimail(tuimail_env.write_config(account_toml(server.port)), "sync", timeout=30)
    err = one_line_error(run)
    assert "\x1b" not in err and "\x9b" not in err and "\x00" not in err


@pytest.mark.parametrize("data", [b"", b"* OK hi", b"* OK {5}\r\nab"], ids=["nothing", "no CRLF", "short literal"])
def test_server_that_closes_at_once_is_one_line_exit_3(tuimail_env, data):
    listener = socket.create_server(("127.0.0.1", 0))

    def serve():
        try:
            conn, _ = listener.accept()
            conn.sendall(data)
            conn.close()
        except OSError:
            pass

    t = threading.Thread(target=serve, daemon=True)
    t.start()
    try:
        port = listener.getsockname()[1]
        run = run_tuimail(tuimail_env.write_config(account_toml(port)), "sync", timeout=30)
        one_line_error(run)
        assert run.seconds < 10
    finally:
        listener.close()
        t.join(5)


AFTER_LOGIN = {
    "unbalanced parens in LIST": lambda tag, line: b'* LIST ((( "/" INBOX\r\n* LIST ))) x\r\n' + tag + b" OK\r\n",
    "wrong tag": lambda tag, line: b"ZZZ OK done\r\n",
    "continuation": lambda tag, line: b"+ more please\r\n",
    "binary": lambda tag, line: b"\x00\x01\x02\xff\xfe\r\n",
    "BYE": lambda tag, line: b"* BYE shutting down \x1b[2J now\r\n",
    "NO with escape": lambda tag, line: tag + b" NO \x1b]0;pwned\x07 denied\r\n",
    "close": lambda tag, line: None,
}

# A server's numbers and sets that do not fit: the run ends cleanly (0 when the bad part can be
# ignored, 3 otherwise) and nothing out of range reaches the store.
NUMBERS = {
    "huge UIDVALIDITY": lambda tag, line: _mailbox_answers(tag, line, select=(
        b"* 1 EXISTS\r\n* OK [UIDVALIDITY 99999999999999999999999999] x\r\n* OK [UIDNEXT 2] y\r\n")),
    "UIDVALIDITY not a number": lambda tag, line: _mailbox_answers(tag, line, select=(
        b"* 1 EXISTS\r\n* OK [UIDVALIDITY abc] x\r\n* OK [UIDNEXT -5] y\r\n")),
    "huge EXISTS": lambda tag, line: _mailbox_answers(tag, line, select=(
        b"* 99999999999999999999999 EXISTS\r\n* OK [UIDVALIDITY 3] x\r\n")),
    "huge UID in SEARCH":
        lambda tag, line: _mailbox_answers(tag, line, search=b"* SEARCH 1 99999999999999999999999\r\n"),
    "negative UIDs in SEARCH": lambda tag, line: _mailbox_answers(tag, line, search=b"* SEARCH -1 -2\r\n"),
    "huge UID in FETCH": lambda tag, line: _mailbox_answers(tag, line, fetch=(
        b"* 1 FETCH (UID 99999999999999999999999 FLAGS () RFC822.SIZE 99999999999999999999999"
        b" BODY[HEADER.FIELDS (FROM)] {9}\r\nFrom: x\r\n)\r\n")),
    "huge MODSEQ in FETCH": lambda tag, line: _mailbox_answers(tag, line, fetch=(
        b"* 1 FETCH (UID 1 FLAGS () MODSEQ (99999999999999999999999) RFC822.SIZE 9"
        b" BODY[HEADER.FIELDS (FROM)] {9}\r\nFrom: x\r\n)\r\n")),
    "VANISHED garbage": lambda tag, line: _mailbox_answers(tag, line, select=(
        b"* 1 EXISTS\r\n* OK [UIDVALIDITY 3] x\r\n* VANISHED (EARLIER) 1:x,,y\r\n")),
    "unsolicited FETCH with huge UID": lambda tag, line: _mailbox_answers(tag, line, select=(
        b"* 1 EXISTS\r\n* OK [UIDVALIDITY 3] x\r\n* 1 FETCH (UID 99999999999999999999999 FLAGS (\\Seen))\r\n")),
}


@pytest.mark.parametrize("name", list(NUMBERS))
def test_numbers_out_of_range_end_cleanly(tuimail_env, name):
    with GarbageServer(reply=scripted(after_login=NUMBERS[name])) as server:
        run = run_tuimail(tuimail_env.write_config(account_toml(server.port)), "sync", timeout=60)
    assert run.code in (0, 3), run.err[-3000:]
    assert "Traceback" not in run.err and run.err.count("\n") <= 1, run.err[-3000:]
    with Store(paths.account_store_path("test")) as st_:
        for fi in st_.folders():
            fs = FolderState.load(fi.state)
            for v in (fs.uidvalidity, fs.uidnext, fs.highestmodseq):
                assert v is None or 0 < v < 1 << 63
            for uid in map(int, st_.local_sids(fi.id)):
                assert 0 < uid < 1 << 32


def _mailbox_answers(tag, line, *, search=b"* SEARCH 1\r\n", fetch=b"",
                     select=b"* 1 EXISTS\r\n* OK [UIDVALIDITY 7] x\r\n* OK [UIDNEXT 2] x\r\n"):
    """A one-folder, one-message mailbox whose SEARCH and FETCH answers a test can replace."""
    up = line.upper()
    if b" LIST " in up:
        return b'* LIST () "/" INBOX\r\n' + tag + b" OK\r\n"
    if b" SELECT " in up or b" EXAMINE " in up:
        return select + tag + b" OK done\r\n"
    if b" SEARCH" in up:
        return search + tag + b" OK\r\n"
    if b" FETCH " in up:
        return fetch + tag + b" OK\r\n"
    return tag + b" OK done\r\n"


@pytest.mark.parametrize("name", list(AFTER_LOGIN))
def test_garbage_after_login_is_one_line_exit_3(tuimail_env, name):
    with GarbageServer(reply=scripted(after_login=AFTER_LOGIN[name])) as server:
        run = run_tuimail(tuimail_env.write_config(account_toml(server.port)), "sync", timeout=90)
    err = one_line_error(run)
    assert "\x1b" not in err and "\x00" not in err


@pytest.mark.parametrize("answer", [b"{tag} OK no capabilities\r\n", b"* CAPABILITY\r\n{tag} OK\r\n",
                                    b"* CAPABILITY (((\r\n{tag} OK\r\n"])
def test_malformed_capability_after_login_is_one_line_exit_3(tuimail_env, answer):
    def after(tag, line):
        if b"CAPABILITY" in line.upper():
            return answer.replace(b"{tag}", tag)
        return _mailbox_answers(tag, line)

    with GarbageServer(reply=scripted(after_login=after, raw_caps=True)) as server:
        run = run_tuimail(tuimail_env.write_config(account_toml(server.port)), "sync", timeout=30)
    assert run.code in (0, 3), run.err
    assert "Traceback" not in run.err and run.err.count("\n") <= 1, run.err


# --------------------------------------------------------------------------- STARTTLS


def test_starttls_required_but_not_offered_refuses_before_login(tuimail_env):
    with GarbageServer(banner=b"* OK [CAPABILITY IMAP4rev1 AUTH=PLAIN] hi\r\n",
                       reply=scripted(caps=b"IMAP4rev1 AUTH=PLAIN")) as server:
        run = run_tuimail(tuimail_env.write_config(account_toml(server.port, security="starttls")),
                          "sync", timeout=30)
        err = one_line_error(run)
        assert "STARTTLS" in err
        assert not saw_login(server), server.received
        assert not any(b"pw" in line for line in server.received)


def test_starttls_refused_by_server_never_falls_back_to_plaintext(tuimail_env):
    with GarbageServer(banner=b"* OK [CAPABILITY IMAP4rev1 STARTTLS] hi\r\n",
                       reply=scripted(caps=b"IMAP4rev1 STARTTLS",
                                      on_starttls=lambda tag: tag + b" NO not today\r\n")) as server:
        run = run_tuimail(tuimail_env.write_config(account_toml(server.port, security="starttls")),
                          "sync", timeout=30)
        one_line_error(run)
        assert not saw_login(server), server.received


class _InjectingTLSServer:
    """A plaintext IMAP server that answers STARTTLS with OK *plus* injected bytes in the same
    packet, then does a real TLS handshake with `cert`/`key` and serves CAPABILITY and LOGIN."""

    INJECT = b"* CAPABILITY IMAP4rev1 AUTH=PLAIN X-INJECTED\r\nT2 OK [CAPABILITY X-INJECTED] forged\r\n"

    def __init__(self, cert, key):
        self.ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.ctx.load_cert_chain(cert, key)
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.plain_lines: list[bytes] = []
        self.tls_lines: list[bytes] = []
        self.handshake_error: str | None = None
        self.thread = threading.Thread(target=self.serve, daemon=True)
        self.thread.start()

    def serve(self):
        try:
            conn, _ = self.listener.accept()
        except OSError:
            return
        conn.settimeout(10)
        f = conn.makefile("rb")
        conn.sendall(b"* OK [CAPABILITY IMAP4rev1 STARTTLS LOGINDISABLED] hi\r\n")
        try:
            while True:
                line = f.readline()
                if not line:
                    return
                self.plain_lines.append(line)
                tag = line.split(b" ", 1)[0]
                if b"STARTTLS" in line.upper():
                    conn.sendall(tag + b" OK begin TLS\r\n" + self.INJECT)
                    break
                if b"CAPABILITY" in line.upper():
                    conn.sendall(b"* CAPABILITY IMAP4rev1 STARTTLS LOGINDISABLED\r\n" + tag + b" OK done\r\n")
                else:
                    conn.sendall(tag + b" BAD what\r\n")
            try:
                tls = self.ctx.wrap_socket(conn, server_side=True)
            except (ssl.SSLError, OSError) as exc:
                self.handshake_error = str(exc)
                return
            tf = tls.makefile("rb")
            while True:
                line = tf.readline()
                if not line:
                    return
                self.tls_lines.append(line)
                tag = line.split(b" ", 1)[0]
                up = line.upper()
                if b"CAPABILITY" in up:
                    tls.sendall(b"* CAPABILITY IMAP4rev1 AUTH=PLAIN\r\n" + tag + b" OK done\r\n")
                elif b" LOGIN " in up:
                    tls.sendall(tag + b" OK [CAPABILITY IMAP4rev1] logged in\r\n")
                elif b"LOGOUT" in up:
                    tls.sendall(b"* BYE bye\r\n" + tag + b" OK done\r\n")
                    return
                elif b" LIST " in up:
                    tls.sendall(tag + b" OK done\r\n")
                else:
                    tls.sendall(tag + b" OK done\r\n")
        except OSError:
            return
        finally:
            conn.close()

    def close(self):
        self.listener.close()
        self.thread.join(5)


def test_bytes_injected_after_starttls_ok_are_never_interpreted(dovecot_factory):
    tls_server = dovecot_factory(tls=True)  # only for its self-signed cert and key
    cert = tls_server.cert_path
    fp = hashlib.sha256(ssl.PEM_cert_to_DER_cert(cert.read_text())).hexdigest()
    srv = _InjectingTLSServer(cert, tls_server.key_path)
    try:
        acc = SimpleNamespace(name="t", host="127.0.0.1", port=srv.port, security="starttls",
                              tls_ca_file=None, tls_fingerprint=fp, oauth2_token_command=None,
                              username="alice")
        conn = ImapConnection(acc, lambda: "pw", timeout=10)
        try:
            conn.connect()
        except NetworkError:
            # the injected bytes reached the TLS handshake and broke it: also safe
            assert srv.handshake_error, "failed for another reason"
        else:
            assert "X-INJECTED" not in conn.session.caps, conn.session.caps
            assert any(b"AUTHENTICATE" in x or b"LOGIN" in x for x in srv.tls_lines), srv.tls_lines
            conn.close()
        assert any(b"STARTTLS" in line.upper() for line in srv.plain_lines), srv.plain_lines
        # LOGIN went over TLS only (or not at all), never in the clear
        assert not any(b"LOGIN" in line.upper() for line in srv.plain_lines if b"STARTTLS" not in line.upper())
    finally:
        srv.close()


# --------------------------------------------------------------------------- certificates


@pytest.fixture
def tls_dovecot(dovecot_factory):
    server = dovecot_factory(tls=True)
    user = server.add_user()
    user.deliver_many("INBOX", [(msg(i), "") for i in range(3)])
    return server, user


def test_self_signed_certificate_is_refused_naming_the_way_out(tuimail_env, tls_dovecot):
    server, user = tls_dovecot
    for security, port in (("tls", server.imaps_port), ("starttls", server.imap_port)):
        cfg = tuimail_env.write_config(user.config_toml(port=port, security=security))
        err = one_line_error(run_tuimail(cfg, "sync", timeout=30))
        assert "tls_ca_file" in err and "tls_fingerprint" in err, err
        assert user.password not in err


def test_tls_ca_file_and_fingerprint_are_the_ways_around(tuimail_env, tls_dovecot):
    server, user = tls_dovecot
    der = ssl.PEM_cert_to_DER_cert(server.cert_path.read_text())
    fp = hashlib.sha256(der).hexdigest()
    cases = [dict(port=server.imaps_port, security="tls", tls_ca_file=str(server.cert_path)),
             dict(port=server.imaps_port, security="tls", tls_fingerprint=fp),
             dict(port=server.imap_port, security="starttls", tls_ca_file=str(server.cert_path)),
             dict(port=server.imap_port, security="starttls", tls_fingerprint=fp)]
    for case in cases:
        cfg = tuimail_env.write_config(user.config_toml(**case))
        run = run_tuimail(cfg, "sync", timeout=30)
        assert run.code == 0, (case, run.err)
        assert "3 new" in run.out or "0 new" in run.out
    wrong = "0" * 64
    cfg = tuimail_env.write_config(user.config_toml(port=server.imaps_port, security="tls", tls_fingerprint=wrong))
    err = one_line_error(run_tuimail(cfg, "sync", timeout=30))
    assert "fingerprint" in err
