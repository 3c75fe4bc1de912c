"""The embedded demo IMAP server: pymap, in-process, on loopback.

``DemoServer().start()`` runs pymap's in-memory ("dict") backend in a
background thread with its own asyncio loop, listening on 127.0.0.1 on a free
port, with one user ("demo"/"demo") whose mailboxes hold
:func:`tuimail.demo.generate.demo_folders`.  ``stop()`` closes the listener
and every session and joins the thread.  pymap's logging goes to a file in a
private temp dir, never to the terminal (the TUI owns it).

pymap 0.36 advertises IMAP4rev1 LITERAL+ ID AUTH=PLAIN AUTH=LOGIN before
login and adds BINARY UIDPLUS MOVE CHILDREN APPENDLIMIT IDLE OBJECTID
MULTIAPPEND after it; it has no ENABLE, CONDSTORE, QRESYNC, SPECIAL-USE,
NAMESPACE or COMPRESS, so clients take their plain sync path against it.
pymap does not know special-use attributes: we add ``\\Sent``, ``\\Drafts``,
``\\Junk``, ``\\Trash`` and ``\\Archive`` to those folders' LIST lines
ourselves, without claiming the SPECIAL-USE capability (pymap would not
understand ``LIST ... RETURN (SPECIAL-USE)``).

With aiosmtpd (also in the ``demo`` extra) the same loop runs an SMTP server on
another free loopback port (``smtp_port``; 0 without aiosmtpd): every message it
accepts is delivered into the demo user's INBOX, whoever it is addressed to, so
a reply sent from the demo arrives there (and its copy goes to Sent by IMAP
APPEND, as on a real account).

Importing this module raises ImportError when pymap (the ``demo`` extra) is
missing.
"""

from __future__ import annotations

import asyncio
import logging
import re
import shutil
import socket
import tempfile
import threading
import time
from argparse import Namespace
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, UTC
from pathlib import Path
from types import TracebackType
from typing import Any

try:
    from proxyprotocol.reader import ProxyProtocolReader
    from pymap.backend.dict import Config, Login
    from pymap.backend.dict.filter import FilterSet
    from pymap.backend.dict.mailbox import LoadedMessage, MailboxSet, Message
    from pymap.concurrent import Subsystem
    from pymap.imap import IMAPServer
    from pymap.listtree import ListEntry, ListTree
    from pymap.mime import MessageContent
    from pymap.parsing.message import AppendMessage
    from pymap.parsing.specials import FetchRequirement, ObjectId
    from pymap.parsing.specials.flag import Flag
    from pymap.user import Passwords, UserMetadata
    from pysasl.hashing import Cleartext
except ImportError as _exc:  # pragma: no cover - depends on the install
    raise ImportError(f"the demo server needs pymap: pip install 'tuimail[demo]' ({_exc})") from _exc

from tuimail.demo.generate import GenMessage, demo_folders

_SMTP: Any
try:  # the demo's SMTP server (optional: without it the demo reads only)
    from aiosmtpd.smtp import SMTP as _SMTP
except ImportError:  # pragma: no cover - depends on the install
    _SMTP = None

__all__ = ["DemoServer", "DemoServerError", "SPECIAL_USE"]

#: Special-use attribute (RFC 6154) shown on the demo's folders.
SPECIAL_USE: dict[str, bytes] = {
    "Sent": b"Sent",
    "Drafts": b"Drafts",
    "Junk": b"Junk",
    "Trash": b"Trash",
    "Archive": b"Archive",
}

_PYMAP_LOGGER = "pymap"
_log = logging.getLogger("pymap.tuimail_demo")  # under "pymap": same file, never the terminal

Folders = Sequence[tuple[str, Sequence[GenMessage]]]


class DemoServerError(RuntimeError):
    """The demo server could not start."""


# ---------------------------------------------------------------------------
# pymap adaptations
# ---------------------------------------------------------------------------

class _DemoConfig(Config):
    @property
    def greeting(self) -> bytes:
        # The stock greeting calls socket.getfqdn() (a DNS lookup) per connection.
        return b"tuimail demo server ready"


@dataclass(frozen=True)
class _SpecialListEntry(ListEntry):
    special: bytes = b""

    @property
    def attributes(self) -> Sequence[bytes]:
        attrs = list(super().attributes)
        if self.special:
            attrs.append(self.special)
        return attrs


class _SpecialListTree(ListTree):
    def list_matching(self, ref_name: str, filter_: str) -> Iterable[ListEntry]:
        for entry in super().list_matching(ref_name, filter_):
            special = SPECIAL_USE.get(entry.name)
            if special:
                yield _SpecialListEntry(entry.name, entry.exists, entry.marked,
                                        entry.has_children, special)
            else:
                yield entry


class _DemoMailboxSet(MailboxSet):
    """The dict backend's mailbox set, with special-use LIST attributes."""

    async def list_mailboxes(self) -> ListTree:
        return self._special(await super().list_mailboxes())

    async def list_subscribed(self) -> ListTree:
        return self._special(await super().list_subscribed())

    def _special(self, tree: ListTree) -> ListTree:
        names = [e.name for e in tree.list() if e.exists]
        return _SpecialListTree(self.delimiter).update(*names)


class _Rfc3501Sections(LoadedMessage):
    """pymap numbers the parts of an attached message (message/rfc822) one level off: its
    BODY[2.1] is the whole attached message, where RFC 3501 (and Dovecot) give the first part
    of that message's body. Here a section step into a message/rfc822 part enters the message
    first, as RFC 3501 §6.4.5 says."""

    def _get_subpart(self, section):
        if not section:
            return self.content
        subpart = self.content
        for depth, i in enumerate(section):
            if depth and subpart.is_rfc822 and subpart.body.has_nested:
                subpart = subpart.body.nested[0]  # the encapsulated message itself
            if subpart.body.has_nested:
                subpart = subpart.body.nested[i - 1]
            elif i != 1:
                raise IndexError(i)
        return subpart


def _lazy_message_class() -> type | None:
    """A dict-backend Message that parses its MIME structure on first use.

    pymap parses every message as it is appended (~0.6 ms each, most of it
    in ``email``'s header registry): the 4,000 demo messages would take
    seconds to load.  The parsed content lives in Message's ``_content``
    slot; this subclass puts a property in front of that slot, so everything
    that reads it (FETCH, SEARCH, COPY/MOVE through ``Message.copy``) gets
    the parsed object, built at that moment.  None when pymap's layout is
    not the one this was written against (the loader then uses APPEND).
    """
    slot: Any = Message.__dict__.get("_content")  # a slot descriptor
    if slot is None or not hasattr(slot, "__set__"):
        return None
    parse = MessageContent.parse
    content_needed = FetchRequirement.HEADER | FetchRequirement.BODY

    class LazyMessage(Message):
        __slots__ = ("_raw",)

        def __init__(self, *args: Any, raw: bytes, **kwargs: Any) -> None:
            self._raw = raw
            super().__init__(*args, **kwargs)

        def _get_content(self) -> Any:
            content = slot.__get__(self, Message)
            if content is None:
                content = parse(self._raw)
                slot.__set__(self, content)
            return content

        def _set_content(self, value: Any) -> None:
            slot.__set__(self, value)

        _content = property(_get_content, _set_content)

        async def load_content(self, requirement: FetchRequirement) -> LoadedMessage:
            # FLAGS/UID/INTERNALDATE and flag searches need no parse
            if requirement & content_needed:
                return _Rfc3501Sections(self, requirement, self._content)
            return _Rfc3501Sections(self, requirement, slot.__get__(self, Message))

    return LazyMessage


_LazyMessage = _lazy_message_class()

# A thread's key: the first id in References, else In-Reply-To, else the message's own id.
_REFERENCES = re.compile(rb"\r\nReferences:[ \t]*(?:\r\n[ \t]+)?(<[^>\r\n]*>)", re.IGNORECASE)
_IN_REPLY_TO = re.compile(rb"\r\nIn-Reply-To:[ \t]*(?:\r\n[ \t]+)?(<[^>\r\n]*>)", re.IGNORECASE)


class _DeliverToInbox:
    """aiosmtpd handler: each accepted message is appended to the demo INBOX (unseen, recent)."""

    def __init__(self, mailbox_set: MailboxSet, limit: int = 20 << 20) -> None:
        self.mailbox_set = mailbox_set
        self.limit = limit
        self.delivered = 0

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        raw = envelope.original_content or b""
        if len(raw) > self.limit:
            return "552 5.3.4 message too big for the demo"
        raw = re.sub(rb"\r?\n", b"\r\n", raw)
        received = (f"Received: from demo-client by tuimail-demo; {datetime.now(UTC):%a, %d %b %Y %H:%M:%S +0000}"
                    "\r\n").encode()
        mbx = await self.mailbox_set.get_mailbox("INBOX")
        await mbx.append(AppendMessage(received + raw, datetime.now(UTC), frozenset()), recent=True)
        self.delivered += 1
        _log.info("demo SMTP: delivered %d bytes to INBOX", len(raw))
        return "250 2.0.0 delivered to the demo INBOX"


def _has_dict_internals(mbx: Any) -> bool:
    return all(hasattr(mbx, a) for a in ("_messages", "_max_uid", "_mod_sequences", "_updated",
                                         "messages_lock"))


def _flag_set(flags: tuple[str, ...], cache: dict[tuple[str, ...], frozenset[Flag]]) -> frozenset[Flag]:
    fs = cache.get(flags)
    if fs is None:
        fs = cache[flags] = frozenset(Flag(f) for f in flags)
    return fs


# ---------------------------------------------------------------------------
# The server
# ---------------------------------------------------------------------------

class _DemoLogHandler(logging.FileHandler):
    _tuimail_demo = True  # (how the handler of a demo server, of this import or another, is known)


class DemoServer:
    """pymap on 127.0.0.1:<free port> in a background thread, filled with demo mail.

    ``with DemoServer() as srv: IMAPClient(srv.host, srv.port, ssl=False).login(srv.username,
    srv.password)``
    """

    def __init__(self, *, host: str = "127.0.0.1", port: int = 0, username: str = "demo",
                 password: str = "demo", folders: Folders | None = None,
                 log_dir: Path | None = None, smtp: bool = True) -> None:
        """``folders`` defaults to :func:`demo_folders`; ``log_dir`` (kept after
        stop) to a private temp dir removed at stop; ``smtp``: also run the SMTP
        server that delivers to INBOX (when aiosmtpd is installed)."""
        self.host = host
        self.port = port
        self.smtp = smtp and _SMTP is not None
        #: the SMTP server's port (0: none runs)
        self.smtp_port = 0
        self._smtp_sock: socket.socket | None = None
        self._smtp_handler: _DeliverToInbox | None = None
        self.username = username
        self.password = password
        self._folders = folders
        self._log_dir_arg = log_dir
        self._log_dir: Path | None = None
        self._own_log_dir = False
        self._handler: logging.Handler | None = None
        self._saved_propagate = True
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop_event: asyncio.Event | None = None
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self._sock: socket.socket | None = None
        #: seconds the last start() took, generating and loading the mail included
        self.startup_seconds: float | None = None
        #: messages loaded per folder
        self.counts: dict[str, int] = {}

    # -- public API ----------------------------------------------------------

    @property
    def log_path(self) -> Path | None:
        """pymap's log file while running (None when stopped)."""
        return self._log_dir / "pymap.log" if self._log_dir else None

    @property
    def delivered(self) -> int:
        """Messages the SMTP server has delivered to INBOX."""
        return self._smtp_handler.delivered if self._smtp_handler else 0

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def start(self, timeout: float = 30.0) -> None:
        """Listen, load the mail, return once logins work.  Raises DemoServerError."""
        if self._thread is not None:
            raise DemoServerError("demo server already started")
        t0 = time.perf_counter()
        self._setup_logging()
        try:
            family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
            sock = socket.socket(family, socket.SOCK_STREAM)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind((self.host, self.port))
            sock.listen(64)
            sock.setblocking(False)
        except OSError as exc:
            self._teardown_logging()
            raise DemoServerError(f"cannot listen on {self.host}:{self.port}: {exc}") from exc
        self._sock = sock
        self.port = sock.getsockname()[1]
        if self.smtp:
            try:
                ssock = socket.socket(family, socket.SOCK_STREAM)
                ssock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                ssock.bind((self.host, 0))
                ssock.listen(16)
                ssock.setblocking(False)
            except OSError as exc:
                self._sock.close()
                self._sock = None
                self._teardown_logging()
                raise DemoServerError(f"cannot listen for SMTP on {self.host}: {exc}") from exc
            self._smtp_sock = ssock
            self.smtp_port = ssock.getsockname()[1]
        folders = self._folders if self._folders is not None else demo_folders()
        self._ready.clear()
        self._error = None
        self._thread = threading.Thread(target=self._run, args=(folders,),
                                        name=f"tuimail-demo-imap:{self.port}", daemon=True)
        self._thread.start()
        if not self._ready.wait(timeout) or self._error is not None:
            err = self._error
            self.stop()
            raise DemoServerError(f"demo server failed to start: {err or 'timeout'}") from err
        self.startup_seconds = time.perf_counter() - t0

    def stop(self, timeout: float = 10.0) -> None:
        """Close the listener and every session, end the loop, join the thread.
        Safe to call twice, or before start."""
        thread, loop, ev = self._thread, self._loop, self._stop_event
        if thread is not None:
            if loop is not None and ev is not None:
                try:
                    loop.call_soon_threadsafe(ev.set)
                except RuntimeError:  # the loop has already closed
                    pass
            thread.join(timeout)
            if thread.is_alive():  # pragma: no cover - should not happen
                _log.warning("demo server thread did not stop within %.1fs", timeout)
        if self._sock is not None:
            self._sock.close()
            self._sock = None
        if self._smtp_sock is not None:
            self._smtp_sock.close()
            self._smtp_sock = None
        self._thread = None
        self._loop = None
        self._stop_event = None
        self._teardown_logging()

    def __enter__(self) -> DemoServer:
        self.start()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()

    # -- logging -------------------------------------------------------------

    def _setup_logging(self) -> None:
        if self._log_dir_arg is not None:
            self._log_dir = Path(self._log_dir_arg)
            self._log_dir.mkdir(parents=True, exist_ok=True)
        else:
            self._log_dir = Path(tempfile.mkdtemp(prefix="tuimail-demo-log-"))
            self._own_log_dir = True
        handler = _DemoLogHandler(self._log_dir / "pymap.log", encoding="utf-8", delay=True)
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        logger = logging.getLogger(_PYMAP_LOGGER)
        if not any(getattr(h, "_tuimail_demo", False) for h in logger.handlers):
            self._saved_propagate = logger.propagate
        logger.propagate = False  # never reach the terminal through the root logger
        logger.addHandler(handler)
        self._handler = handler

    def _teardown_logging(self) -> None:
        logger = logging.getLogger(_PYMAP_LOGGER)
        if self._handler is not None:
            logger.removeHandler(self._handler)
            self._handler.close()
            self._handler = None
            if not any(getattr(h, "_tuimail_demo", False) for h in logger.handlers):
                logger.propagate = self._saved_propagate
        if self._own_log_dir and self._log_dir is not None:
            shutil.rmtree(self._log_dir, ignore_errors=True)
        self._own_log_dir = False
        self._log_dir = None

    # -- the server thread ---------------------------------------------------

    def _run(self, folders: Folders) -> None:
        try:
            with asyncio.Runner() as runner:  # on exit: cancels the sessions, closes the loop
                loop = runner.get_loop()
                loop.set_exception_handler(self._loop_error)
                self._loop = loop
                runner.run(self._main(folders))
        except BaseException as exc:  # noqa: BLE001 - handed to start() or logged
            if not self._ready.is_set():
                self._error = exc
            else:
                _log.exception("demo server crashed")
        finally:
            self._ready.set()

    @staticmethod
    def _loop_error(loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
        _log.error("asyncio: %s", context.get("message"), exc_info=context.get("exception"))

    async def _main(self, folders: Folders) -> None:
        self._stop_event = asyncio.Event()
        args = Namespace(
            debug=False, passlib_cfg=None, proxy_protocol=None, inherited_sockets=None,
            host=self.host, port=self.port, cert=None, key=None, tls=False,
            demo_data=False, demo_user=self.username, demo_password=self.password,
        )
        config = _DemoConfig.from_args(
            args,
            reject_dnsbl=False,
            hash_context=Cleartext(),                # a demo password: no slow hashing
            cpu_subsystem=Subsystem.for_asyncio(),   # no executor threads to leave behind
            invalid_user_sleep=0.05,
            bad_command_limit=None,
        )
        config.apply_context()
        login = Login(config)
        hashed = await Passwords(config).hash_password(self.password)
        await login.demo_user_identity.set(UserMetadata(config, self.username, password=hashed))

        mailbox_set = _DemoMailboxSet()
        await self._load(mailbox_set, folders)
        config.set_cache[self.username] = (mailbox_set, FilterSet())

        callback = ProxyProtocolReader(config.proxy_protocol).get_callback(IMAPServer(login, config))
        assert self._sock is not None
        server = await asyncio.start_server(callback, sock=self._sock)
        smtp_server = None
        if self._smtp_sock is not None and _SMTP is not None:
            handler = self._smtp_handler = _DeliverToInbox(mailbox_set)
            smtp_cls = _SMTP
            smtp_server = await asyncio.get_running_loop().create_server(
                lambda: smtp_cls(handler, hostname="demo.example", ident="tuimail demo SMTP",
                                 enable_SMTPUTF8=True, timeout=60),
                sock=self._smtp_sock)
        async with server:
            self._ready.set()
            await self._stop_event.wait()
            server.close()
            if smtp_server is not None:
                smtp_server.close()

    async def _load(self, mailbox_set: MailboxSet, folders: Folders) -> None:
        flag_cache: dict[tuple[str, ...], frozenset[Flag]] = {}
        thread_ids: dict[bytes, ObjectId] = {}
        for name, messages in folders:
            if name.upper() != "INBOX":
                await mailbox_set.add_mailbox(name)
            await mailbox_set.set_subscribed(name, True)
            mbx = await mailbox_set.get_mailbox(name)
            if _LazyMessage is not None and _has_dict_internals(mbx):
                await self._bulk_load(mbx, messages, flag_cache, thread_ids)
            else:  # pragma: no cover - other pymap versions: the slow, public path
                for m in messages:
                    when = datetime.fromtimestamp(m.date, UTC)
                    await mbx.append(AppendMessage(m.raw, when, _flag_set(m.flags, flag_cache)),
                                     recent=False)
            self.counts[name] = len(messages)

    @staticmethod
    async def _bulk_load(mbx: Any, messages: Sequence[GenMessage],
                         flag_cache: dict[tuple[str, ...], frozenset[Flag]],
                         thread_ids: dict[bytes, ObjectId]) -> None:
        """Insert messages as ``MailboxData.append`` does, minus the MIME parse."""
        assert _LazyMessage is not None  # _load checked
        utc = UTC
        new_email_id = ObjectId.random_email_id
        new_thread_id = ObjectId.random_thread_id
        refs, irt = _REFERENCES.search, _IN_REPLY_TO.search
        async with mbx.messages_lock.write_lock():
            uid = mbx._max_uid
            uids = []
            for m in messages:
                uid += 1
                raw = m.raw
                end = raw.find(b"\r\n\r\n")
                end = end if end > 0 else len(raw)
                found = refs(raw, 0, end) or irt(raw, 0, end)
                root = found.group(1) if found else m.message_id.encode()
                thread_id = thread_ids.get(root)
                if thread_id is None:
                    thread_id = thread_ids[root] = new_thread_id()
                mbx._messages[uid] = _LazyMessage(
                    uid, datetime.fromtimestamp(m.date, utc), _flag_set(m.flags, flag_cache),
                    raw=raw, email_id=new_email_id(), thread_id=thread_id, recent=False)
                uids.append(uid)
            mbx._max_uid = uid
            mbx._mod_sequences.update(uids)
            mbx._updated.set()
