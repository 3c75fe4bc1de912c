"""RESULTS.md's sections beside the IMAP tables (sections.py): POP3, search, JMAP. Each is a table
of what was measured, its target and ✅/❌; a section that was not measured says why."""

from __future__ import annotations

from .measure import median

OK, NO = "✅", "❌"
HEAD = ["| what | measured | reference | target | met |", "|---|---|---|---|---|"]


def _s(x) -> str:
    return "—" if x is None else f"{x:.2f} s"


def _ms(x) -> str:
    return "—" if x is None else f"{x:.1f} ms"


def _b(x) -> str:
    return "—" if x is None else f"{x:,.0f} B"


def _mark(ok) -> str:
    return "—" if ok is None else (OK if ok else NO)


def _le(a, b) -> bool | None:
    return None if a is None or b is None else a <= b


def _med(d: dict, key: str):
    v = d.get(key)
    return median(v) if isinstance(v, list) else v


def _not_measured(title: str, d: dict) -> list[str] | None:
    if "not_measured" in d:
        return [title, "", f"not measured: {d['not_measured']}", ""]
    return None


def pop3_rows(d: dict) -> list[tuple[str, str, str, str, str]]:
    nm, tm, tm_all = _med(d, "neomutt_cold"), _med(d, "tuimail_cold"), _med(d, "tuimail_cold_all")
    fl, imap = _med(d, "floor"), _med(d, "tuimail_imap_cold")

    def ratio(x) -> str:
        return f" ({x / nm:.2f}× neomutt)" if x is not None and nm else ""

    rows = [("POP3 cold open, first screen (tuimail headers_first vs neomutt `pop://`)", _s(tm) + ratio(tm),
             f"neomutt {_s(nm)}; empty Textual app {_s(fl)}; tuimail over IMAP, same mailbox {_s(imap)}",
             "≤ 0.5× neomutt", _mark(_le(tm, 0.5 * nm) if nm else None)),
            ("POP3 cold open, all headers (tuimail: the store holds every row)", _s(tm_all) + ratio(tm_all),
             f"neomutt {_s(nm)} (it has every header at its first screen)", "≤ 0.5× neomutt",
             _mark(_le(tm_all, 0.5 * nm) if nm else None))]
    noop, cmds = _med(d, "noop_out"), d.get("noop_commands") or {}
    if noop is not None:
        extra = {k: v for k, v in cmds.items() if k not in ("CAPA", "AUTH", "USER", "PASS", "APOP", "STLS")}
        ok = extra == {"UIDL": 1, "QUIT": 1} if cmds else None
        counted = (d.get("noop_tuimail_counted") or [None])[0]
        rows.append(("POP3 second sync with nothing new: bytes from the server after login (Dovecot `out=`)",
                     _b(noop), f"commands {', '.join(f'{k} ×{v}' for k, v in sorted(cmds.items()))}; tuimail "
                     f"counted {counted[0]:,} B in, {counted[1]:,} B out with the login" if counted else "",
                     "one UIDL exchange (bytes reported)", _mark(ok)))
    st = d.get("stall") or {}
    late, cpu = st.get("loop_late") or {}, st.get("loop_late_on_cpu") or {}
    if late.get("n"):
        rows.append(("longest UI-thread stall pressing F/N/j during the POP3 first download (5 ms ticker lateness)",
                     f"max {_ms(late.get('max_ms'))}, p99 {_ms(late.get('p99_ms'))}, "
                     f"median {_ms(late.get('median_ms'))} ({st.get('keys')} keys, "
                     f"rows {st.get('rows_at_start')} → {st.get('rows_at_end')})",
                     f"without the time the OS gave the UI thread no CPU: max {_ms(cpu.get('max_ms'))}, "
                     f"p99 {_ms(cpu.get('p99_ms'))}", "≤ 16 ms", _mark(_le(late.get("max_ms"), 16))))
    return rows


def search_rows(d: dict) -> list[tuple[str, str, str, str, str]]:
    rows = []
    ft = d.get("fulltext_ms")
    if ft is not None:
        rows.append((f"search a word (`~B {d.get('word', 'budget')}`) over {d.get('n', 0):,} cached headers and "
                     f"{d.get('bodies', 0):,} cached bodies, median", _ms(ft),
                     f"{d.get('fulltext_hits')} hits; header index built in {_s(d.get('index_headers_s'))}, "
                     f"bodies in {_s(d.get('index_bodies_s'))}", "≤ 50 ms", _mark(_le(ft, 50))))
    lim = d.get("limit_ms")
    if lim is not None:
        rows.append((f"`l ~f NAME` over the {d.get('n', 0):,}-row INBOX, median", _ms(lim),
                     f"{d.get('limit_hits')} hits; neomutt 290–360 ms at 100k (DESIGN §3b)", "≤ 145 ms",
                     _mark(_le(lim, 145))))
    fw, fwo = d.get("fill_with_s"), d.get("fill_without_s")
    if fw is not None and fwo:
        rows.append((f"insert of {d.get('n', 0):,} header rows with vs without the search schema", _s(fw),
                     f"without {_s(fwo)} ({(fw / fwo - 1) * 100:+.1f} %)", "≤ +10 %", _mark(fw <= 1.10 * fwo)))
    fill = d.get("fill") or {}
    if "not_measured" in fill:
        rows.append((f"cold fill of {d.get('fill_n', 0):,} messages from Dovecot with the background index",
                     "not measured", fill["not_measured"], "≤ +10 %", "—"))
    elif fill.get("with"):
        w, wo = fill["with"]["fill_s"], fill["without"]["fill_s"]
        rows.append((f"cold fill of {d.get('fill_n', 0):,} messages from Dovecot with the background index "
                     "(every header committed)", _s(w),
                     f"without the indexer {_s(wo)} ({(w / wo - 1) * 100:+.1f} %); sync_all incl. the index: "
                     f"{_s(fill['with']['sync_all_s'])}", "≤ +10 %", _mark(w <= 1.10 * wo)))
    hs = d.get("header_summary")
    if hs:  # header_speed.py
        rows.append((f"header summary vs email compat32 (CPU per message, {hs['n']:,} generated headers)",
                     f"{hs['ratio']:.1f}× faster", f"summarize {hs['summarize_us']:.1f} µs, compat32 "
                     f"{hs['compat32_us']:.1f} µs a message", f"≥ {hs['target']}× faster",
                     _mark(hs["ratio"] >= hs["target"])))
    return rows


def jmap_rows(d: dict) -> list[tuple[str, str, str, str, str]]:
    jf, imf = d.get("jmap_first"), d.get("imap_first")
    rows = [(f"JMAP cold first screen, {d.get('n', 0):,} messages on Cyrus", _s(jf),
             f"IMAP path on the same Cyrus {_s(imf)}; all headers: JMAP {_s(d.get('jmap_all'))}, "
             f"IMAP {_s(d.get('imap_all'))}", "≤ the IMAP path's", _mark(_le(jf, imf)))]
    noop = d.get("noop") or {}
    if noop:
        ok = noop["requests"] == 1 and noop["bytes"] < 2048
        rows.append(("JMAP resync with nothing changed", f"{noop['requests']} request(s), {_b(noop['bytes'])}",
                     "sent + received, HTTP headers included", "one request < 2 KB", _mark(ok)))
    push = d.get("push")
    if isinstance(push, dict) and isinstance(push.get("push"), dict):  # jmap_cyrus.push_latency
        p, poll = push["push"], push.get("poll") or {}
        rows.append(("JMAP push: a flag changed by an IMAP client, until it is in the store",
                     f"median {_s(p.get('median'))}, max {_s(p.get('max'))} (push {p.get('push_state')})",
                     f"polling every {poll.get('interval')} s instead: max {_s(poll.get('max'))}", "≤ 1 s",
                     _mark(push.get("push_within_1s"))))
    return rows


SECTIONS = (("pop3", "### POP3 (issue #14)", pop3_rows), ("search", "### Local search (issue #13)", search_rows),
            ("jmap", "### JMAP on Cyrus (issue #15)", jmap_rows))


def render(extra: dict) -> list[str]:
    out: list[str] = []
    for key, title, rows_of in SECTIONS:
        d = extra.get(key)
        if d is None:
            continue
        skipped = _not_measured(title, d)
        if skipped:
            out += skipped
            continue
        load = (f"Load average at start {d['load_start']}, at end {d.get('load_end', '?')}. "
                if "load_start" in d else "")
        out += [title, "", f"{load}Every sample is in RESULTS.json (\"sections\").", "", *HEAD]
        out += [f"| {a} | {b} | {c} | {t} | {m} |" for a, b, c, t, m in rows_of(d)]
        out += [f"\n> ⚠ {e}" for e in d.get("errors", [])] + [""]
    return out


def verdicts(extra: dict) -> list[tuple[str, str, str, str]]:
    """(what, value, target, mark) of every ✅/❌ row, for the summary at the top."""
    marks = []
    for key, _, rows_of in SECTIONS:
        d = extra.get(key)
        if d is None:
            continue
        if "not_measured" in d:
            marks.append((f"{key}: not measured", d["not_measured"], "—", "—"))
            continue
        marks += [(a, b, t, m) for a, b, _, t, m in rows_of(d) if m in (OK, NO)]
    return marks
