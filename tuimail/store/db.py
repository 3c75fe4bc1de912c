"""SQLite file handling: private files, WAL, schema migrations.

The store is the single source of truth for the UI. One file per account in the user *data*
dir (it holds the journal, which must survive a cache clean). Bodies live in a second file in
the cache dir (see bodycache.py) because they can always be downloaded again.
"""

from __future__ import annotations

import operator
import os
import sqlite3
import threading
import time
from pathlib import Path
from typing import Any, cast

from tuimail.errors import StoreError
from tuimail.paths import ensure_private_dir
from tuimail.store.sqlite_errors import disk_full, store_error

# Each entry upgrades the schema from version i to i+1. Never edit a released entry: append.
MIGRATIONS: list[str] = [
    # v1
    """
    CREATE TABLE folders(
      id INTEGER PRIMARY KEY,
      name TEXT NOT NULL UNIQUE,
      delimiter TEXT,
      role TEXT,
      attrs TEXT NOT NULL DEFAULT '',
      selectable INTEGER NOT NULL DEFAULT 1,
      uidvalidity INTEGER,
      uidnext INTEGER,
      highestmodseq INTEGER,
      server_total INTEGER,
      server_unseen INTEGER,
      synced_at REAL,
      threads_dirty INTEGER NOT NULL DEFAULT 1
    );
    CREATE TABLE messages(
      folder_id INTEGER NOT NULL REFERENCES folders(id) ON DELETE CASCADE,
      uid INTEGER NOT NULL,
      modseq INTEGER NOT NULL DEFAULT 0,
      flags TEXT NOT NULL DEFAULT '',
      seen INTEGER NOT NULL DEFAULT 0,
      flagged INTEGER NOT NULL DEFAULT 0,
      hidden INTEGER NOT NULL DEFAULT 0,
      date INTEGER,
      from_ TEXT NOT NULL DEFAULT '',
      to_ TEXT NOT NULL DEFAULT '',
      cc TEXT NOT NULL DEFAULT '',
      subject TEXT NOT NULL DEFAULT '',
      message_id TEXT,
      in_reply_to TEXT,
      refs TEXT NOT NULL DEFAULT '',
      size INTEGER NOT NULL DEFAULT 0,
      has_attachment INTEGER NOT NULL DEFAULT 0,
      thread_pos INTEGER,
      thread_depth INTEGER NOT NULL DEFAULT 0,
      thread_root INTEGER,
      thread_prefix TEXT NOT NULL DEFAULT '',
      PRIMARY KEY(folder_id, uid)
    ) WITHOUT ROWID;
    CREATE INDEX msg_date ON messages(folder_id, date, uid, hidden);
    -- Only the date index: each further index doubled the cost of a 100k cold insert (measured:
    -- 0.97 s -> 1.8 s with seen/thread/message-id indexes). Counts, thread order and Message-ID
    -- lookups scan one folder's rows instead (~10-100 ms at 100k, and they are rare).
    CREATE TABLE journal(
      id INTEGER PRIMARY KEY AUTOINCREMENT,
      created REAL NOT NULL,
      folder_id INTEGER NOT NULL REFERENCES folders(id) ON DELETE CASCADE,
      uid INTEGER NOT NULL,
      message_id TEXT,
      op TEXT NOT NULL CHECK (op IN ('flags', 'move', 'expunge')),
      add_flags TEXT NOT NULL DEFAULT '',
      remove_flags TEXT NOT NULL DEFAULT '',
      dest TEXT,
      attempts INTEGER NOT NULL DEFAULT 0,
      last_error TEXT
    );
    CREATE INDEX journal_msg ON journal(folder_id, uid);
    """,
    # v2: unread counts from a small partial index (only unread rows are in it) instead of a
    # scan of every row: Store.folders() on a 100k store went from 150 ms to ~20 ms.
    """
    CREATE INDEX msg_unseen ON messages(folder_id) WHERE seen = 0 AND hidden = 0;
    """,
    # v3: thread order is (thread_pos DESC, thread_sub): thread_pos is the thread's key (latest
    # date << 32 | root uid), thread_sub the row's place inside its thread. A reply reviving an
    # old thread rewrites that thread's rows only. Recompute every folder's order.
    """
    ALTER TABLE messages ADD COLUMN thread_sub INTEGER NOT NULL DEFAULT 0;
    UPDATE folders SET threads_dirty = 1;
    """,
    # v4: thread order is derived data in a narrow table of its own. Writing it into the wide
    # message rows rewrote every row after a first fill (100k: UPDATE 0.4-0.6 s, against 0.2 s
    # to insert the narrow rows). The store deletes a row's thread entry with the row (a
    # foreign key to messages would cost 0.17 s more per 100k inserted entries).
    """
    CREATE TABLE threads(
      folder_id INTEGER NOT NULL REFERENCES folders(id) ON DELETE CASCADE,
      uid INTEGER NOT NULL,
      pos INTEGER NOT NULL,
      sub INTEGER NOT NULL,
      depth INTEGER NOT NULL,
      root INTEGER,
      prefix TEXT NOT NULL,
      PRIMARY KEY(folder_id, uid)
    ) WITHOUT ROWID;
    INSERT INTO threads(folder_id, uid, pos, sub, depth, root, prefix)
      SELECT folder_id, uid, thread_pos, thread_sub, thread_depth, thread_root, thread_prefix
      FROM messages WHERE thread_pos IS NOT NULL;
    ALTER TABLE messages DROP COLUMN thread_pos;
    ALTER TABLE messages DROP COLUMN thread_sub;
    ALTER TABLE messages DROP COLUMN thread_depth;
    ALTER TABLE messages DROP COLUMN thread_root;
    ALTER TABLE messages DROP COLUMN thread_prefix;
    """,
    # v5: nothing the user did is lost. A journal entry being sent is immutable (state 'sending':
    # a newer intent becomes a new entry, never merged into it); an entry the server refused for
    # good, or whose message or folder is gone, is kept as 'failed' for the user to see and
    # discard. The size and date of the message an entry is for let a UIDVALIDITY reset re-match
    # it by Message-ID + size + date. A folder keeps the server's last refusal (SELECT NO) to show
    # in the tree, and one that left the server's LIST while actions on it wait is kept as gone.
    """
    ALTER TABLE journal ADD COLUMN state TEXT NOT NULL DEFAULT 'pending'
      CHECK (state IN ('pending', 'sending', 'failed'));
    ALTER TABLE journal ADD COLUMN msg_size INTEGER;
    ALTER TABLE journal ADD COLUMN msg_date INTEGER;
    ALTER TABLE folders ADD COLUMN error TEXT;
    ALTER TABLE folders ADD COLUMN gone INTEGER NOT NULL DEFAULT 0;
    """,
    # v6: backend-neutral identity (issue #10 item 2). A message row is keyed by a LOCAL id,
    # never reused (undo, search results and failed actions keep it); the server's id is text
    # (`sid`: an IMAP uid in decimal, a POP3 UIDL, a JMAP Email id). Flags are canonical columns
    # plus the other keywords as the backend spells them; the per-folder sync state is the
    # backend's, stored opaquely (IMAP: JSON of UIDVALIDITY, UIDNEXT, HIGHESTMODSEQ). The rows are
    # copied in (folder, uid) order, so local ids follow the old uid order. char(92) is the
    # backslash of the IMAP system flags the old `flags` text held (case-insensitive).
    # Measured (100k rows, 2000-row transactions): a rowid table with UNIQUE(folder_id, sid)
    # costs a few % more to fill than the WITHOUT ROWID (folder_id, uid) table it replaces.
    """
    CREATE TABLE messages_v6(
      id INTEGER PRIMARY KEY AUTOINCREMENT,
      folder_id INTEGER NOT NULL REFERENCES folders(id) ON DELETE CASCADE,
      sid TEXT NOT NULL,
      modseq INTEGER NOT NULL DEFAULT 0,
      seen INTEGER NOT NULL DEFAULT 0,
      flagged INTEGER NOT NULL DEFAULT 0,
      answered INTEGER NOT NULL DEFAULT 0,
      draft INTEGER NOT NULL DEFAULT 0,
      deleted INTEGER NOT NULL DEFAULT 0,
      keywords TEXT NOT NULL DEFAULT '',
      hidden INTEGER NOT NULL DEFAULT 0,
      date INTEGER,
      from_ TEXT NOT NULL DEFAULT '',
      to_ TEXT NOT NULL DEFAULT '',
      cc TEXT NOT NULL DEFAULT '',
      subject TEXT NOT NULL DEFAULT '',
      message_id TEXT,
      in_reply_to TEXT,
      refs TEXT NOT NULL DEFAULT '',
      size INTEGER NOT NULL DEFAULT 0,
      has_attachment INTEGER NOT NULL DEFAULT 0
    );
    INSERT INTO messages_v6(folder_id, sid, modseq, seen, flagged, answered, draft, deleted, keywords, hidden,
                            date, from_, to_, cc, subject, message_id, in_reply_to, refs, size, has_attachment)
      SELECT folder_id, CAST(uid AS TEXT), modseq,
        instr(' ' || lower(flags) || ' ', ' ' || char(92) || 'seen ') > 0,
        instr(' ' || lower(flags) || ' ', ' ' || char(92) || 'flagged ') > 0,
        instr(' ' || lower(flags) || ' ', ' ' || char(92) || 'answered ') > 0,
        instr(' ' || lower(flags) || ' ', ' ' || char(92) || 'draft ') > 0,
        instr(' ' || lower(flags) || ' ', ' ' || char(92) || 'deleted ') > 0,
        trim(replace(replace(replace(replace(replace(replace(' ' || flags || ' ',
          ' ' || char(92) || 'Seen ', ' '), ' ' || char(92) || 'Flagged ', ' '),
          ' ' || char(92) || 'Answered ', ' '), ' ' || char(92) || 'Draft ', ' '),
          ' ' || char(92) || 'Deleted ', ' '), ' ' || char(92) || 'Recent ', ' ')),
        hidden, date, from_, to_, cc, subject, message_id, in_reply_to, refs, size, has_attachment
      FROM messages ORDER BY folder_id, uid;
    CREATE TABLE threads_v6(
      folder_id INTEGER NOT NULL REFERENCES folders(id) ON DELETE CASCADE,
      id INTEGER NOT NULL,
      pos INTEGER NOT NULL,
      sub INTEGER NOT NULL,
      depth INTEGER NOT NULL,
      root INTEGER,
      prefix TEXT NOT NULL,
      PRIMARY KEY(folder_id, id)
    ) WITHOUT ROWID;
    INSERT INTO threads_v6(folder_id, id, pos, sub, depth, root, prefix)
      SELECT t.folder_id, m.id, t.pos, t.sub, t.depth,
        (SELECT r.id FROM messages_v6 r WHERE r.folder_id = t.folder_id AND r.sid = CAST(t.root AS TEXT)),
        t.prefix
      FROM threads t JOIN messages_v6 m ON m.folder_id = t.folder_id AND m.sid = CAST(t.uid AS TEXT);
    DROP TABLE threads;
    ALTER TABLE threads_v6 RENAME TO threads;
    ALTER TABLE journal ADD COLUMN msg_id INTEGER;
    ALTER TABLE journal ADD COLUMN sid TEXT;
    -- (an entry waiting to be re-matched after a UIDVALIDITY reset, uid -n: no sid, and msg_id
    -- -n, never a row's, keeps the entries of that message together)
    UPDATE journal SET sid = CASE WHEN uid > 0 THEN CAST(uid AS TEXT) END,
      msg_id = CASE WHEN uid > 0 THEN (SELECT m.id FROM messages_v6 m WHERE m.folder_id = journal.folder_id
                                        AND m.sid = CAST(journal.uid AS TEXT)) ELSE uid END,
      add_flags = trim(replace(replace(replace(replace(replace(' ' || add_flags || ' ',
        ' ' || char(92) || 'Seen ', ' seen '), ' ' || char(92) || 'Flagged ', ' flagged '),
        ' ' || char(92) || 'Answered ', ' answered '), ' ' || char(92) || 'Draft ', ' draft '),
        ' ' || char(92) || 'Deleted ', ' deleted ')),
      remove_flags = trim(replace(replace(replace(replace(replace(' ' || remove_flags || ' ',
        ' ' || char(92) || 'Seen ', ' seen '), ' ' || char(92) || 'Flagged ', ' flagged '),
        ' ' || char(92) || 'Answered ', ' answered '), ' ' || char(92) || 'Draft ', ' draft '),
        ' ' || char(92) || 'Deleted ', ' deleted '));
    DROP INDEX journal_msg;
    ALTER TABLE journal DROP COLUMN uid;
    CREATE INDEX journal_msg ON journal(msg_id);
    DROP TABLE messages;
    ALTER TABLE messages_v6 RENAME TO messages;
    CREATE UNIQUE INDEX msg_sid ON messages(folder_id, sid);
    CREATE INDEX msg_date ON messages(folder_id, date, id, hidden);
    CREATE INDEX msg_unseen ON messages(folder_id) WHERE seen = 0 AND hidden = 0;
    ALTER TABLE folders ADD COLUMN state TEXT;
    UPDATE folders SET state = json_object('uidvalidity', uidvalidity, 'uidnext', uidnext,
                                           'highestmodseq', highestmodseq)
      WHERE uidvalidity IS NOT NULL;
    ALTER TABLE folders DROP COLUMN uidvalidity;
    ALTER TABLE folders DROP COLUMN uidnext;
    ALTER TABLE folders DROP COLUMN highestmodseq;
    """,
    # v7: search (issue #13): FTS5 indexes, derived data (store/search.py). fts_head is an
    # external-content index of the header fields of `messages`, filled by the sync side in
    # background batches up to search_state.head_upto (local ids are appended and never reused, so
    # one watermark says what is indexed in every folder). No trigger on the insert path (it would
    # double a cold fill's cost): only a removed row (or an indexed row whose header text a refetch
    # changed) touches the index. Cached body text (what the reader showed) is kept in `bodytext`
    # with its own index, written when the opener caches a text part. Trigram: substring matching.
    """
    CREATE TABLE search_state(k INTEGER PRIMARY KEY CHECK (k = 0), head_upto INTEGER NOT NULL);
    INSERT INTO search_state(k, head_upto) VALUES (0, 0);
    CREATE VIRTUAL TABLE fts_head USING fts5(subject, from_, to_, cc, content='messages', content_rowid='id',
                                             tokenize='trigram');
    CREATE TABLE bodytext(id INTEGER PRIMARY KEY, text TEXT NOT NULL);
    CREATE VIRTUAL TABLE fts_body USING fts5(text, content='bodytext', content_rowid='id', tokenize='trigram');
    CREATE TRIGGER bodytext_ai AFTER INSERT ON bodytext BEGIN
      INSERT INTO fts_body(rowid, text) VALUES (new.id, new.text);
    END;
    CREATE TRIGGER bodytext_ad AFTER DELETE ON bodytext BEGIN
      INSERT INTO fts_body(fts_body, rowid, text) VALUES ('delete', old.id, old.text);
    END;
    CREATE TRIGGER bodytext_au AFTER UPDATE OF text ON bodytext BEGIN
      INSERT INTO fts_body(fts_body, rowid, text) VALUES ('delete', old.id, old.text);
      INSERT INTO fts_body(rowid, text) VALUES (new.id, new.text);
    END;
    CREATE TRIGGER messages_search_ad AFTER DELETE ON messages BEGIN
      INSERT INTO fts_head(fts_head, rowid, subject, from_, to_, cc)
        SELECT 'delete', old.id, old.subject, old.from_, old.to_, old.cc
        WHERE old.id <= (SELECT head_upto FROM search_state);
      DELETE FROM bodytext WHERE id = old.id;
    END;
    CREATE TRIGGER messages_search_au AFTER UPDATE OF subject, from_, to_, cc ON messages
      WHEN old.id <= (SELECT head_upto FROM search_state) AND (old.subject IS NOT new.subject
        OR old.from_ IS NOT new.from_ OR old.to_ IS NOT new.to_ OR old.cc IS NOT new.cc) BEGIN
      INSERT INTO fts_head(fts_head, rowid, subject, from_, to_, cc)
        VALUES ('delete', old.id, old.subject, old.from_, old.to_, old.cc);
      INSERT INTO fts_head(rowid, subject, from_, to_, cc) VALUES (new.id, new.subject, new.from_, new.to_, new.cc);
    END;
    """,
    # v8: the outbox (issue #12 item 5; store/outbox.py): a message written here (committed) before
    # the first byte goes to the server, removed only after the server's 250 and the Sent copy.
    # `message` is the Sent copy (Bcc kept; removed from the bytes sent), account-independent;
    # `rcpts` the recipients still to send to (JSON), `accepted` those the server took (never sent
    # to again), `refused` {rcpt: [code, reply]}. state: queued (not before hold_until, the undo
    # window, nor next_try) | sending | sent_unfiled | filing (the Sent APPEND may be on the wire)
    # | failed. draft_folder/draft_sid: the draft it came from (replaced once sent).
    """
    CREATE TABLE outbox(
      id INTEGER PRIMARY KEY AUTOINCREMENT,
      created REAL NOT NULL,
      message BLOB NOT NULL,
      mail_from TEXT NOT NULL,
      rcpts TEXT NOT NULL,
      accepted TEXT NOT NULL DEFAULT '[]',
      refused TEXT NOT NULL DEFAULT '{}',
      message_id TEXT,
      subject TEXT NOT NULL DEFAULT '',
      state TEXT NOT NULL DEFAULT 'queued'
        CHECK(state IN ('queued', 'sending', 'sent_unfiled', 'filing', 'failed')),
      hold_until REAL NOT NULL DEFAULT 0,
      next_try REAL NOT NULL DEFAULT 0,
      attempts INTEGER NOT NULL DEFAULT 0,
      last_error TEXT,
      maybe_sent INTEGER NOT NULL DEFAULT 0,
      filed INTEGER NOT NULL DEFAULT 0,
      sent_at REAL,
      reply TEXT,
      draft_folder TEXT,
      draft_sid TEXT
    );
    """,
    # POP3 accounts (issue 14). Their folders are local (`folders.local`: a change to a row of one
    # is made in the store only, no journal entry, store/journal.py). pop3_ledger: what a POP3 sync
    # needs per downloaded message (backends/pop3/plan.py): its UIDL and fingerprint, when it was
    # committed, whether its body is, whether it is still on the server. It outlives the message's
    # row (msg_id NULL once the user deleted it: keep mode never downloads it again). pop3_raw: the
    # message as downloaded (none yet for a headers_first row; stores before 2026-12 kept its
    # header block), kept with the mail in the data dir: in delete mode the store holds the only copy.
    """
    ALTER TABLE folders ADD COLUMN local INTEGER NOT NULL DEFAULT 0;
    CREATE TABLE pop3_ledger(
      id INTEGER PRIMARY KEY,
      msg_id INTEGER REFERENCES messages(id) ON DELETE SET NULL,
      uidl TEXT,
      fingerprint TEXT NOT NULL,
      downloaded_at REAL NOT NULL,
      has_body INTEGER NOT NULL,
      on_server INTEGER NOT NULL DEFAULT 1
    );
    CREATE INDEX pop3_ledger_msg ON pop3_ledger(msg_id);
    CREATE TABLE pop3_raw(
      msg_id INTEGER PRIMARY KEY REFERENCES messages(id) ON DELETE CASCADE,
      raw BLOB NOT NULL
    );
    """,
    # Undo (issue #13 item 6; store/undo.py): each user intent's inverse, computed from the rows'
    # state before it ran and written in the intent's own transaction. `steps` is JSON (what to do
    # to put each message back: its flags as they were, or a move back from wherever it is by
    # then); `what` says the action ("moved 3 messages to Trash"). state: done | undone. The
    # last 100 are kept.
    """
    CREATE TABLE undo(
      id INTEGER PRIMARY KEY AUTOINCREMENT,
      created REAL NOT NULL,
      op TEXT NOT NULL,
      what TEXT NOT NULL,
      subject TEXT,
      steps TEXT NOT NULL,
      state TEXT NOT NULL DEFAULT 'done' CHECK (state IN ('done', 'undone')),
      undone_at REAL
    );
    """,
    # Postponed messages on their way to the Drafts folder (issue #12 item 6; store/postponed.py):
    # written here (committed) when the user postpones, removed once the server stored the copy,
    # so a postpone offline (or a crash before the APPEND) loses nothing. `folder`: the Drafts
    # folder; replaces_folder/replaces_sid: the draft it was resumed from (removed once this one
    # is stored). state: waiting (not before next_try) | appending (the APPEND may be on the wire:
    # look for its Message-ID before appending again).
    """
    CREATE TABLE postponed(
      id INTEGER PRIMARY KEY AUTOINCREMENT,
      created REAL NOT NULL,
      message BLOB NOT NULL,
      folder TEXT NOT NULL,
      message_id TEXT,
      subject TEXT NOT NULL DEFAULT '',
      replaces_folder TEXT,
      replaces_sid TEXT,
      state TEXT NOT NULL DEFAULT 'waiting' CHECK(state IN ('waiting', 'appending')),
      next_try REAL NOT NULL DEFAULT 0,
      attempts INTEGER NOT NULL DEFAULT 0,
      last_error TEXT
    );
    """,
    # Copy to a folder (issue 13 item 5, `C`): a journal entry of op 'copy' (UID COPY, a JMAP
    # mailboxIds patch). The v1 CHECK on `op` cannot be altered in place: the table is rebuilt
    # with the same columns and ids (AUTOINCREMENT goes on from the highest).
    """
    CREATE TABLE journal_copy(
      id INTEGER PRIMARY KEY AUTOINCREMENT,
      created REAL NOT NULL,
      folder_id INTEGER NOT NULL REFERENCES folders(id) ON DELETE CASCADE,
      message_id TEXT,
      op TEXT NOT NULL CHECK (op IN ('flags', 'move', 'expunge', 'copy')),
      add_flags TEXT NOT NULL DEFAULT '',
      remove_flags TEXT NOT NULL DEFAULT '',
      dest TEXT,
      attempts INTEGER NOT NULL DEFAULT 0,
      last_error TEXT,
      state TEXT NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'sending', 'failed')),
      msg_size INTEGER,
      msg_date INTEGER,
      msg_id INTEGER,
      sid TEXT
    );
    INSERT INTO journal_copy(id, created, folder_id, message_id, op, add_flags, remove_flags, dest, attempts,
                            last_error, state, msg_size, msg_date, msg_id, sid)
      SELECT id, created, folder_id, message_id, op, add_flags, remove_flags, dest, attempts, last_error, state,
             msg_size, msg_date, msg_id, sid FROM journal;
    DROP INDEX journal_msg;
    DROP TABLE journal;
    ALTER TABLE journal_copy RENAME TO journal;
    CREATE INDEX journal_msg ON journal(msg_id);
    """,
]

SCHEMA_VERSION = len(MIGRATIONS)

# A (folder_id, id, ...) row's place in the threads key: batches are written in this order.
key_order = operator.itemgetter(1)


def _create_private(path: Path) -> None:
    ensure_private_dir(path.parent)
    if not path.exists():
        fd = os.open(path, os.O_CREAT | os.O_WRONLY, 0o600)
        os.close(fd)
    elif path.stat().st_mode & 0o777 != 0o600:  # (no write at all when nothing needs it)
        os.chmod(path, 0o600)


def connect(path: Path | str, migrations: list[str] = MIGRATIONS) -> sqlite3.Connection:
    """Open (creating 0600 if needed) a WAL database and bring its schema up to date.

    Opening an existing, up-to-date store writes nothing (the WAL switch and the migration are
    no-ops), so it works on a full disk too. Any failure is a StoreError naming the cause
    (sqlite_errors.py); the advice never throws the journal away."""
    path = Path(path)
    # No umask: it is the whole process's, and stores are opened from several threads at once (a
    # save-set-restore pair interleaved with another left it at 077 for good). SQLite creates the
    # -wal and -shm files with the database file's own mode (0600), whatever the umask.
    try:
        _create_private(path)
    except OSError as exc:
        raise store_error(exc, path) from None
    shared = _Shared.join(path)
    if shared is not None:
        return shared.as_connection()
    # On a full disk, a store another process holds in exclusive mode (below) would make this
    # one wait for the lock: wait briefly, then report the full disk.
    full = disk_full(path)
    timeout = 1.0 if full else 30.0
    try:
        return _open(path, migrations, False, timeout)
    except sqlite3.Error as exc:
        if not (full or _no_room_for_shm(exc, path)):
            raise store_error(exc, path) from None
    # SQLite sizes the shared-memory wal-index (the -shm file) before the first read, which
    # fails on a full disk (SQLITE_IOERR_SHMSIZE), so even `tuimail list` could not read the
    # store. In exclusive locking mode the index lives in heap memory instead: reading works,
    # a write fails with a clear "disk full". (This connection holds the file alone while it
    # is open; with another process using the store the -shm file exists already.)
    try:
        conn = _open(path, migrations, True, timeout)
    except sqlite3.Error as exc:
        raise store_error(exc, path) from None
    # The file is this connection's alone: the process's other Stores of it (the UI's worker
    # threads, the sync thread) share it instead of waiting for its lock.
    return _Shared.start(path, conn).as_connection()


class _Shared:
    """A full-disk (exclusive-mode) connection shared by this process's Stores of one file; it
    is closed when the last of them closes. Reads from several threads are serialised by
    SQLite; writes fail with "disk full" anyway."""

    _lock = threading.Lock()
    _open: dict[str, list] = {}  # realpath -> [connection, users]

    def __init__(self, key: str, conn: sqlite3.Connection):
        self._key, self._conn, self._closed = key, conn, False

    @classmethod
    def start(cls, path: Path, conn: sqlite3.Connection) -> _Shared:
        key = os.path.realpath(path)
        with cls._lock:
            cls._open[key] = [conn, 1]
        return cls(key, conn)

    @classmethod
    def join(cls, path: Path) -> _Shared | None:
        if not cls._open:
            return None
        key = os.path.realpath(path)
        with cls._lock:
            entry = cls._open.get(key)
            if entry is None:
                return None
            entry[1] += 1
            return cls(key, entry[0])

    def __getattr__(self, name: str) -> Any:
        return getattr(self._conn, name)

    def as_connection(self) -> sqlite3.Connection:
        """What the Stores hold: every attribute but close() is the shared connection's."""
        return cast(sqlite3.Connection, self)

    def close(self) -> None:
        with self._lock:
            if self._closed:
                return
            self._closed = True
            entry = self._open.get(self._key)
            if entry is None or entry[0] is not self._conn:
                return
            entry[1] -= 1
            if entry[1] == 0:
                del self._open[self._key]
                self._conn.close()


_opened = 0  # SQLite connections this process has opened (backends/child.py forks only before the first)


def connections_opened() -> int:
    """How many store connections this process has ever opened (closed ones count too: SQLite
    keeps per-file state, its locks among it, that a forked child must not inherit)."""
    return _opened


def _open(path: Path, migrations: list[str], exclusive: bool, timeout: float) -> sqlite3.Connection:
    global _opened
    _opened += 1
    conn = sqlite3.connect(path, timeout=timeout, isolation_level=None, check_same_thread=False)
    try:
        if exclusive:
            conn.execute("PRAGMA locking_mode=EXCLUSIVE")
        _enable_wal(conn, timeout)
        conn.execute("PRAGMA synchronous=NORMAL")
        conn.execute("PRAGMA foreign_keys=ON")
        conn.execute(f"PRAGMA busy_timeout={int(timeout * 1000)}")
        _migrate(conn, migrations, path)
    except BaseException:
        conn.close()  # before a retry: this process's locks on the file go with it
        raise
    return conn


def _no_room_for_shm(exc: sqlite3.Error, path: Path) -> bool:
    name = getattr(exc, "sqlite_errorname", "") or ""
    if name in ("SQLITE_IOERR_SHMSIZE", "SQLITE_IOERR_SHMMAP", "SQLITE_IOERR_SHMOPEN", "SQLITE_FULL"):
        return True
    return name.startswith("SQLITE_IOERR") and disk_full(path)


def _enable_wal(conn: sqlite3.Connection, timeout: float) -> None:
    """Switch to WAL (a no-op once the file is WAL). On a new file, two connections switching at
    once can get "database is locked" at once, without the busy handler (SQLite's deadlock
    avoidance): try again until `timeout`."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            conn.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(0.02)


def _migrate(conn: sqlite3.Connection, migrations: list[str], path: Path) -> None:
    version = _version(conn, migrations, path)
    if version == len(migrations):
        return
    conn.execute("BEGIN IMMEDIATE")
    try:
        # Again under the write lock: another connection (the app and a cron `tuimail sync`
        # starting together after an upgrade) may have migrated since; running a step twice
        # failed with "table folders already exists".
        version = _version(conn, migrations, path)
        if version == 0 and migrations is MIGRATIONS:
            version = _fresh(conn)
        while version < len(migrations):
            # executescript would COMMIT first; run statements one by one inside our transaction.
            for stmt in _split_sql(migrations[version]):
                conn.execute(stmt)
            version += 1
            conn.execute(f"PRAGMA user_version={version}")
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise


def _fresh(conn: sqlite3.Connection) -> int:
    """An empty store made at the latest schema in one step (fresh.py); the version it is at
    now (0: no snapshot for this many migrations, they run one by one)."""
    from tuimail.store.fresh_schema import FRESH, VERSION
    if VERSION != len(MIGRATIONS):
        return 0
    for stmt in FRESH:
        conn.execute(stmt)
    conn.execute(f"PRAGMA user_version={VERSION}")
    return VERSION


def _version(conn: sqlite3.Connection, migrations: list[str], path: Path) -> int:
    version = conn.execute("PRAGMA user_version").fetchone()[0]
    if version > len(migrations):
        raise StoreError(f"{path}: store schema v{version} is newer than this tuimail (v{len(migrations)});"
                         " upgrade tuimail", "newer", path)
    return version


def _split_sql(script: str) -> list[str]:
    out, buf = [], []
    for line in script.splitlines():
        buf.append(line)
        chunk = "\n".join(buf)
        if sqlite3.complete_statement(chunk):
            if chunk.strip():
                out.append(chunk)
            buf = []
    if "\n".join(buf).strip():
        out.append("\n".join(buf))
    return out
