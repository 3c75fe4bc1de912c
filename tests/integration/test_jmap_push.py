"""JMAP push, end to end: a flag set by an IMAP client on Cyrus reaches the store within a second
over an EventSource stream (tests/support/jmap_push.py relays Cyrus's IMAP IDLE as RFC 8620
StateChange events: Debian's Cyrus 3.6.1 has no EventSource of its own), with the poll interval an
hour; and the bench functions of tests/bench/jmap_cyrus.py at a small size."""

from __future__ import annotations

import dataclasses
import time

from tests.bench import jmap_cyrus
from tests.support.jmap_push import PushRelay
from tuimail import paths
from tuimail.backends.jmap.service import JmapService
from tuimail.config.load import load_config
from tuimail.store import Store

from .test_jmap_backend import fill, jmap_toml, rows


def test_a_pushed_state_change_brings_an_imap_flag_within_a_second(tuimail_env, cyrususer):
    fill(cyrususer, 3)
    relay = PushRelay(cyrususer).start()
    try:
        cfg = load_config(tuimail_env.write_config(jmap_toml(cyrususer)))
        acc = dataclasses.replace(cfg.account("test"), url=relay.session_url, check_interval=3600.0)
        svc = JmapService(cfg, acc)
        svc.start()
        try:
            deadline = time.monotonic() + 15
            while (len(rows()) < 3 or relay.streams < 1) and time.monotonic() < deadline:
                time.sleep(0.05)
            time.sleep(0.5)  # the relay's IDLE at Cyrus is set up
            with cyrususer.client(select="INBOX") as c:
                c.add_flags(c.search(["SUBJECT", "message 2"]), [b"\\Flagged"])
            t0 = time.monotonic()
            while rows()["message 2"].flags != {"flagged"} and time.monotonic() - t0 < 5:
                time.sleep(0.01)
            latency = time.monotonic() - t0
            assert rows()["message 2"].flags == {"flagged"}
            assert latency < 1.0, latency
            assert svc.push_state == "on" and relay.events_sent >= 1
        finally:
            svc.stop()
    finally:
        relay.stop()
    with Store(paths.account_store_path("test")) as st:
        assert st.pending() == []


def test_bench_push_and_resync_functions_at_a_small_size(cyrus):
    """(They start their own Cyrus; `cyrus` only makes sure it is installed.)"""
    got = jmap_cyrus.push_latency(n=40, rounds=2, poll_interval=1.5)
    assert got["push"]["push_state"] == "on" and got["push_within_1s"], got
    assert got["poll"]["push_state"] == "unavailable" and got["poll_within_interval"], got
    resync = jmap_cyrus.no_change_resync(n=60)
    assert resync["requests"] == 1 and resync["under_2kb"], resync
