"""Cut the connection at many points of a sync (cold fill, resync, journal replay): every run
either finishes or leaves a store the next run completes, with nothing lost or duplicated."""

from __future__ import annotations

import pytest

from tuimail import paths
from tuimail.store import Store
from tuimail.backends.imap import engine

from .helpers import Cli, msg, server_state, store_state
from tests.support.cyrus import IMAP_SERVERS, imap_user


@pytest.fixture(params=IMAP_SERVERS)
def mailuser(request):
    """Every scenario here runs against Dovecot and against Cyrus IMAP."""
    return imap_user(request)


@pytest.fixture
def small_windows(monkeypatch):
    # several committed windows even for a small folder, so cuts land between and inside them
    monkeypatch.setattr(engine, "FIRST_WINDOW", 40)
    monkeypatch.setattr(engine, "WINDOW", 150)


@pytest.mark.parametrize("mode", ["qresync", "plain"])
def test_cut_connection_at_many_points_converges(tuimail_env, mailuser, proxy_factory, capsys, small_windows,
                                                 mode):
    mailuser.deliver_many("INBOX", ((msg(i), "S" if i % 3 else "") for i in range(900)))
    proxy = proxy_factory(mailuser)
    cli = Cli(tuimail_env.write_config(mailuser.config_toml(port=proxy.port, sync_mode=mode)), capsys)
    intents: dict[str, set[str]] = {}
    # Lines the server sends: ~5 to log in, ~4 per header FETCH response (the literal's lines count).
    cut_points = [3, 6, 9, 14, 30, 120, 400, 900, 1600, 2600, 3400, 4000]
    outcomes = []
    for k, n in enumerate(cut_points):
        if k >= 1:  # changes on both sides between the interrupted runs
            with mailuser.client("INBOX") as other:
                uids = other.search("ALL")
                other.add_flags(uids[k::37], [b"\\Flagged"])
                gone = uids[k * 5: k * 5 + 2]
                other.delete_messages(gone)
                other.expunge()
            for j in range(3):
                mailuser.append("INBOX", msg(1000 + k * 10 + j))
            with Store(paths.account_store_path("test")) as st:
                fid = st.folder_id("INBOX")
                local = sorted(st.ids_of(fid, st.local_sids(fid)).values()) if fid is not None else []
                if len(local) > k:
                    mine = local[-(k + 1)]
                    if st.set_flags(fid, [mine], add=["$Important"]):
                        intents[st.row(fid, mine).message_id] = {"$Important"}
        proxy.cut_after_server_lines(n, per_connection=True, once=True)
        code_out = _sync(cli)
        outcomes.append(code_out)
        proxy.clear_rules()
        store_state()  # asserts: no duplicate uid, no duplicate Message-ID
    assert outcomes.count(3) >= 10, f"most runs were really interrupted: {outcomes}"
    cli("sync")
    cli("sync")  # a second clean pass: the journal is empty, nothing left to do
    server = server_state(mailuser)
    local = store_state()
    assert local == server
    for mid, flags in intents.items():
        if mid in server:  # an expunge elsewhere overrules a pending flag change
            assert flags <= server[mid], f"intent on {mid} lost"
    with Store(paths.account_store_path("test")) as st:
        assert st.pending() == []


def _sync(cli) -> int:
    from tuimail.cli.main import main
    cli.capsys.readouterr()
    code = main(["--config", str(cli.config_path), "sync"])
    out, err = cli.capsys.readouterr()
    assert code in (0, 3), err
    assert "Traceback" not in err and err.count("\n") <= 1
    return code


def test_unreachable_server_is_exit_3_one_line(tuimail_env, mailuser, proxy_factory, capsys):
    proxy = proxy_factory(mailuser)
    proxy.refuse_new(True)
    cli = Cli(tuimail_env.write_config(mailuser.config_toml(port=proxy.port)), capsys)
    cli("sync", expect=3)
    assert cli.last_err.startswith("tuimail: ") and cli.last_err.count("\n") == 1


def test_wrong_password_is_exit_3_one_line(tuimail_env, mailuser, capsys):
    cli = Cli(tuimail_env.write_config(mailuser.config_toml(password="wrong")), capsys)
    cli("sync", expect=3)
    assert "refused the login" in cli.last_err and cli.last_err.count("\n") == 1
    assert "wrong" not in cli.last_err
