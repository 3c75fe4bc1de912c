"""A big headless first fill (`tuimail sync` on an empty store) leaves the thread order for the next
sync, as it leaves the search index: derived data that cost ~27 % of a 100k fill (tests/bench,
`tuimail sync` against neomutt). The next sync (the app's, or `tuimail sync` again) threads it.
FIRST_FILL_THREAD_ROWS is lowered here so a few messages stand for a big folder."""

from __future__ import annotations

from tuimail import paths
from tuimail.store import Store
from tuimail.store.threads import THREADS_CLEAN

from .helpers import Cli, msg


def _deliver(user) -> None:
    user.deliver("INBOX", msg(1, subject="plans"))
    user.deliver("INBOX", msg(2, subject="other"))
    user.deliver("INBOX", msg(3, subject="Re: plans", extra="In-Reply-To: <m1@example.org>\r\n"
                                                          "References: <m1@example.org>\r\n"))


def _threads(st: Store) -> tuple[int, dict[str, str | None]]:
    """The folder's thread state, and each subject's thread root (by subject)."""
    fid = st.folder_id("INBOX")
    assert fid is not None
    subjects = {id_: subj for id_, subj in st.db.execute("SELECT id, subject FROM messages")}
    roots = {subjects[id_]: (subjects[r] if r else None) for id_, _, r in st.thread_info(fid)}
    return st.threads_state(fid), roots


def test_a_big_headless_first_fill_leaves_the_threads_to_the_next_sync(tuimail_env, mailuser, capsys,
                                                                         monkeypatch):
    from tuimail.backends.imap import engine as engine_mod

    monkeypatch.setattr(engine_mod, "FIRST_FILL_THREAD_ROWS", 2)
    _deliver(mailuser)
    cli = Cli(tuimail_env.write_config(mailuser.config_toml()), capsys)
    cli("sync")
    with Store(paths.account_store_path("test")) as st:
        state, _ = _threads(st)
        assert state != THREADS_CLEAN
        assert st.db.execute("SELECT COUNT(*) FROM messages").fetchone()[0] == 3  # every row is there
    cli("sync")  # nothing new on the server: the threads are computed now
    with Store(paths.account_store_path("test")) as st:
        state, roots = _threads(st)
        assert state == THREADS_CLEAN
        assert roots["Re: plans"] == "plans"


def test_a_small_headless_first_fill_threads_at_once(tuimail_env, mailuser, capsys):
    _deliver(mailuser)
    cli = Cli(tuimail_env.write_config(mailuser.config_toml()), capsys)
    cli("sync")
    with Store(paths.account_store_path("test")) as st:
        state, roots = _threads(st)
        assert state == THREADS_CLEAN and roots["Re: plans"] == "plans"
