"""Sync under faults, isync style (issue 5, item 6).

For each scenario the uninterrupted result is computed first (fresh user, same steps, one clean
sync through the proxy, which also counts the steps: the server lines it forwards). Then for every
step k (sampled in CI, all of them with TUIMAIL_FUZZ=1) the same steps run on a fresh user, the
connection is cut after server line k, one clean sync resumes, and store and server must equal the
uninterrupted result by (folder, Message-ID, flags), with an empty journal, every intent the server
did not overrule present, and no duplicate anywhere. A SIGKILL variant kills a `tuimail sync`
process at points of its progress and resumes the same way.
"""

from __future__ import annotations

import os

import pytest

from tuimail.backends.imap import engine

from .scenario import Ctx, Runner, Scenario, check_intents, compare, mid, msg, sample_steps

FUZZ = os.environ.get("TUIMAIL_FUZZ") == "1"
BUDGET = None if FUZZ else 22  # interruption points per scenario in CI
COUNTS: dict[str, int] = {}  # scenario -> interruption points run (reported at the end)


def server_change(ctx: Ctx, folder: str, message_id: str, add=(), remove=(), expunge=False, move_to=None):
    with ctx.other(folder) as c:
        uids = c.search(["HEADER", "Message-ID", message_id])
        assert uids, message_id
        if add:
            c.add_flags(uids, list(add))
        if remove:
            c.remove_flags(uids, list(remove))
        if move_to:
            c.copy(uids, move_to)
            c.delete_messages(uids)
            c.uid_expunge(uids)
        if expunge:
            c.delete_messages(uids)
            c.uid_expunge(uids)


# --------------------------------------------------------------------------- scenarios


def new_mail() -> Scenario:
    def setup(u):
        u.deliver_many("INBOX", [(msg(i), "S") for i in range(4)])

    def prepare(ctx):
        for i in range(4, 16):
            ctx.user.append("INBOX", msg(i), flags=[b"\\Flagged"] if i % 3 == 0 else [])
        ctx.user.append("Archive", msg(100, folder_tag="a"), flags=[b"\\Seen"])

    return Scenario("new mail", setup, prepare)


def cold_start() -> Scenario:
    def setup(u):
        u.deliver_many("INBOX", [(msg(i), "S" if i % 2 else "F") for i in range(14)])
        u.deliver_many("Archive", [(msg(i, folder_tag="a"), "S") for i in range(5)])

    return Scenario("cold start", setup, initial_sync=False)


def flags_both_sides() -> Scenario:
    def setup(u):
        u.deliver_many("INBOX", [(msg(i), "SF" if i < 3 else "S") for i in range(10)])

    def prepare(ctx):
        # the other client first (its changes are not synced yet when the user acts)
        server_change(ctx, "INBOX", mid(1), remove=["\\Flagged"])
        server_change(ctx, "INBOX", mid(1), add=["\\Flagged"])  # same flags, newer modseq: MODIFIED
        server_change(ctx, "INBOX", mid(2), remove=["\\Flagged"])
        server_change(ctx, "INBOX", mid(4), add=["\\Flagged"])
        server_change(ctx, "INBOX", mid(5), remove=["\\Seen"])
        server_change(ctx, "INBOX", mid(9), add=["$Work"], remove=["\\Seen"])
        ctx.flag("INBOX", mid(1), remove=["\\Flagged"])  # conflict on the same flag: the user wins
        ctx.flag("INBOX", mid(2), remove=["\\Seen"])  # Flagged follows the server, Seen the user
        ctx.flag("INBOX", mid(4), remove=["\\Seen"])
        ctx.flag("INBOX", mid(5), add=["\\Flagged"])
        ctx.flag("INBOX", mid(6), add=["$Important", "\\Answered"])
        ctx.flag("INBOX", mid(9), add=["\\Flagged"])
        ctx.flag("INBOX", mid(7), add=["$Todo"])
        ctx.flag("INBOX", mid(7), remove=["$Todo"])  # coalesced to nothing

    return Scenario("flags both sides", setup, prepare)


def moves() -> Scenario:
    def setup(u):
        u.deliver_many("INBOX", [(msg(i), "S" if i % 2 else "F") for i in range(12)])
        u.deliver_many("Archive", [(msg(i, folder_tag="a"), "S") for i in range(2)])

    def prepare(ctx):
        server_change(ctx, "INBOX", mid(1), add=["$Work"])  # moved by the user: keeps the server's flags
        server_change(ctx, "INBOX", mid(2), expunge=True)  # expunged elsewhere: the user's move is overruled
        server_change(ctx, "INBOX", mid(5), move_to="Trash")  # moved elsewhere: the user's flag is overruled
        for i in (0, 1, 2, 7, 8):
            ctx.move("INBOX", mid(i), "Archive")
        ctx.move("INBOX", mid(3), "Trash")
        ctx.flag("INBOX", mid(5), add=["\\Answered"], overruled=True)
        ctx.flag("INBOX", mid(6), add=["\\Answered"])
        ctx.move("INBOX", mid(6), "Archive")  # flag, then move: both arrive
        ctx.move("Archive", mid(0, "a"), "INBOX")

    return Scenario("moves", setup, prepare)


def server_expunges() -> Scenario:
    def setup(u):
        u.deliver_many("INBOX", [(msg(i), "S") for i in range(12)])

    def prepare(ctx):
        for i in (1, 3, 5, 11):
            server_change(ctx, "INBOX", mid(i), expunge=True)
        server_change(ctx, "INBOX", mid(7), add=["\\Flagged"])
        ctx.flag("INBOX", mid(3), add=["\\Flagged"], overruled=True)  # expunged elsewhere
        ctx.flag("INBOX", mid(4), add=["$Important"])
        ctx.expunge("INBOX", mid(5))  # already gone: nothing to do, nothing left pending

    return Scenario("expunges on the server", setup, prepare)


def uidvalidity_change() -> Scenario:
    folders = ("INBOX", "Lists", "Archive", "Trash")

    def setup(u):
        u.deliver_many("INBOX", [(msg(i), "S") for i in range(3)])
        u.deliver_many("Lists", [(msg(i, folder_tag="l"), "S" if i % 2 else "") for i in range(9)])

    def prepare(ctx):
        ctx.flag("Lists", mid(1, "l"), add=["\\Flagged"])
        ctx.flag("Lists", mid(4, "l"), add=["\\Seen", "$Read"])
        ctx.move("Lists", mid(2, "l"), "Archive")
        ctx.expunge("Lists", mid(3, "l"))
        with ctx.other("INBOX") as c:  # the server rebuilds the folder: new UIDVALIDITY, new UIDs
            old = c.folder_status("Lists", ["UIDVALIDITY"])[b"UIDVALIDITY"]
            c.rename_folder("Lists", "ListsOld")
            c.create_folder("Lists")
            c.select_folder("ListsOld")
            c.copy(c.search("ALL"), "Lists")
            c.close_folder()
            c.delete_folder("ListsOld")
            new = c.folder_status("Lists", ["UIDVALIDITY"])[b"UIDVALIDITY"]
            assert new != old
        ctx.user.append("Lists", msg(50, folder_tag="l"))

    return Scenario("UIDVALIDITY change", setup, prepare, folders=folders)


def offline_journal() -> Scenario:
    def setup(u):
        u.deliver_many("INBOX", [(msg(i), "S" if i % 3 else "") for i in range(15)])
        u.deliver_many("Archive", [(msg(i, folder_tag="a"), "S") for i in range(3)])

    def prepare(ctx):
        ctx.flag("INBOX", mid(0), add=["\\Flagged"])
        ctx.flag("INBOX", mid(1), remove=["\\Seen"])
        ctx.flag("INBOX", mid(2), add=["\\Seen", "$Todo"])
        ctx.move("INBOX", mid(3), "Archive")
        ctx.move("INBOX", mid(4), "Archive")
        ctx.move("INBOX", mid(5), "Trash")
        ctx.expunge("INBOX", mid(6))
        ctx.expunge("INBOX", mid(7))
        ctx.flag("INBOX", mid(8), add=["\\Flagged"])
        ctx.move("INBOX", mid(8), "Archive")
        ctx.flag("Archive", mid(1, "a"), add=["\\Flagged"])
        # meanwhile on the server
        ctx.user.append("INBOX", msg(40))
        ctx.user.append("INBOX", msg(41), flags=[b"\\Seen"])
        server_change(ctx, "INBOX", mid(9), add=["\\Answered"])
        server_change(ctx, "INBOX", mid(10), expunge=True)

    return Scenario("offline journal", setup, prepare)


SCENARIOS = [new_mail, cold_start, flags_both_sides, moves, server_expunges, uidvalidity_change, offline_journal]


@pytest.fixture
def small_windows(monkeypatch):
    # several committed header windows even for a small folder, so cuts land between them
    monkeypatch.setattr(engine, "FIRST_WINDOW", 3)
    monkeypatch.setattr(engine, "WINDOW", 4)


@pytest.fixture
def runner(dovecot, monkeypatch, tmp_path, small_windows):
    r = Runner(dovecot, monkeypatch, tmp_path)
    yield r
    r.close()


@pytest.mark.parametrize("make", SCENARIOS, ids=[f.__name__ for f in SCENARIOS])
def test_scenario_cut_at_every_step(runner, make):
    s = make()
    ref = runner.reference(s)
    check_intents(ref)
    assert ref.pending == [] and ref.server == ref.store, f"the uninterrupted run itself diverged: {ref.summary()}"
    assert ref.lines > 5
    steps = sample_steps(ref.lines, BUDGET)
    interrupted = 0
    for k in steps:
        got = runner.cut(s, k)
        interrupted += got.first_code == 3
        compare(ref, got, f"{s.name}, cut after server line {k}/{ref.lines}")
        check_intents(got)
    assert interrupted >= 0.8 * len(steps), "the cuts did interrupt the sync (cuts in LOGOUT do not)"
    COUNTS[s.name] = len(steps)


def moves_without_move() -> Scenario:
    s = moves()
    s.name = "moves (COPY + EXPUNGE fallback)"
    return s


def test_scenario_moves_without_move_capability(dovecot_factory, monkeypatch, tmp_path, small_windows):
    """Without MOVE the journal replays COPY + STORE \\Deleted + UID EXPUNGE: a cut between COPY and
    EXPUNGE must not leave the message twice."""
    caps = ("IMAP4rev1 SASL-IR LOGIN-REFERRALS ID ENABLE IDLE SORT UNSELECT CHILDREN NAMESPACE UIDPLUS"
            " LIST-EXTENDED CONDSTORE QRESYNC ESEARCH LIST-STATUS LITERAL+ SPECIAL-USE")
    server = dovecot_factory(capabilities=caps)
    r = Runner(server, monkeypatch, tmp_path)
    try:
        s = moves_without_move()
        ref = r.reference(s)
        check_intents(ref)
        steps = sample_steps(ref.lines, BUDGET)
        for k in steps:
            got = r.cut(s, k)
            compare(ref, got, f"{s.name}, cut after server line {k}/{ref.lines}")
            check_intents(got)
        COUNTS[s.name] = len(steps)
    finally:
        r.close()


def plain_mode(make):
    def build():
        s = make()
        s.name += " [plain]"
        s.sync_mode = "plain"
        return s
    build.__name__ = make.__name__ + "_plain"
    return build


PLAIN = [plain_mode(f) for f in (flags_both_sides, offline_journal)]


@pytest.mark.parametrize("make", PLAIN, ids=[f.__name__ for f in PLAIN])
def test_scenario_cut_plain_path(runner, make):
    """The same on the plain path (no CONDSTORE/QRESYNC): every flag fetched, expunges by SEARCH."""
    s = make()
    ref = runner.reference(s)
    check_intents(ref)
    steps = sample_steps(ref.lines, None if FUZZ else 10)
    for k in steps:
        got = runner.cut(s, k)
        compare(ref, got, f"{s.name}, cut after server line {k}/{ref.lines}")
    COUNTS[s.name] = len(steps)


def big_offline_journal() -> Scenario:
    """Enough work that a SIGKILL lands in the middle of header windows and journal replay."""
    def setup(u):
        u.deliver_many("INBOX", [(msg(i), "S" if i % 4 else "") for i in range(60)])

    def prepare(ctx):
        for i in range(0, 20, 2):
            ctx.flag("INBOX", mid(i), add=["\\Flagged"])
        for i in range(1, 20, 4):
            ctx.move("INBOX", mid(i), "Archive")
        for i in (21, 23):
            ctx.expunge("INBOX", mid(i))
        ctx.user.deliver_many("INBOX", [(msg(i), "") for i in range(200, 320)])

    return Scenario("big offline journal", setup, prepare)


def test_scenario_sigkill_at_points_of_progress(runner):
    s = big_offline_journal()
    ref = runner.reference(s)
    check_intents(ref)
    points: list[int | float] = sorted({max(1, ref.lines * f // 10) for f in range(1, 10)}) + [0.05, 0.2]
    if FUZZ:
        points = list(range(1, ref.lines, max(1, ref.lines // 60))) + [0.02, 0.05, 0.1, 0.2, 0.3]
    killed = 0
    for when in points:
        got = runner.kill(s, when)
        killed += got.first_code == -9
        compare(ref, got, f"{s.name}, SIGKILL at {when!r} (of {ref.lines} lines)")
        check_intents(got)
    assert killed >= len(points) // 2, f"only {killed} of {len(points)} runs were killed mid-way"
    COUNTS[s.name + " (SIGKILL)"] = len(points)


def test_scenario_counts_report(capsys):
    """Prints how many interruption points ran (make fuzz / -s shows it)."""
    if COUNTS:
        with capsys.disabled():
            print("\nscenario interruption points:", COUNTS, "total", sum(COUNTS.values()))
