"""RESULTS.md from the measured data: one table per folder size (neomutt, aerc, tuimail, ratios,
the DESIGN.md §4 target beside each with ✅/❌), the cross-size bytes check, and how it was run."""

from __future__ import annotations

from . import report_sections
from .measure import median

OK, NO = "✅", "❌"


def _s(x) -> str:
    return "—" if x is None else f"{x:.2f} s"


def _mb(x) -> str:
    return "—" if x is None else f"{x:.0f} MB"


def _b(x) -> str:
    return "—" if x is None else f"{x:,.0f} B"


def _ms(x) -> str:
    return "—" if x is None else f"{x:.1f} ms"


def _r(a, b) -> str:
    return "—" if a is None or not b else f"{a / b:.2f}×"


def _mark(ok) -> str:
    return "—" if ok is None else (OK if ok else NO)


def _le(a, b) -> bool | None:
    return None if a is None or b is None else a <= b


def _calib(d: dict) -> str:
    c = d.get("calibration") or {}
    if not c:
        return ""
    (fs, fb), (hs, hb) = c["flags"], c["headers"]
    return (f" Server speed right then (raw socket, no parsing): `UID FETCH 1:* (UID FLAGS)` {fs:.2f} s "
            f"({fb / 1e6:.1f} MB), with tuimail's HEADER.FIELDS {hs:.2f} s ({hb / 1e6:.1f} MB) — DESIGN §3 "
            "measured 0.07 s and 0.5 s at 100k on a quiet machine.")


def size_table(n: int, d: dict) -> list[str]:
    m = {k: median(v) for k, v in d.items() if isinstance(v, list)}
    nm_c, nm_w, ae, fl = m.get("neomutt_cold"), m.get("neomutt_warm"), m.get("aerc"), m.get("floor")
    tm_c, tm_w = m.get("tuimail_cold"), m.get("tuimail_warm")
    rows = [f"### {n:,} messages", "",
            f"Rounds: {d.get('rounds')}; medians (every sample is in RESULTS.json). Folder written in "
            f"{d.get('write_seconds', 0):.1f} s, Dovecot warmed in {d.get('warm_seconds', 0):.1f} s; "
            f"load average at start {d.get('load_start', '?')}, at end {d.get('load_end', '?')}.{_calib(d)}", "",
            "| what | neomutt | aerc | tuimail | tuimail ratio | DESIGN §4 target | met |",
            "|---|---|---|---|---|---|---|"]

    def row(what, nm, a, tm, ratio, target, ok):
        rows.append(f"| {what} | {nm} | {a} | {tm} | {ratio} | {target} | {ok} |")

    ok = None
    if tm_c is not None and nm_c and ae:
        ok = tm_c <= 0.15 * nm_c and tm_c <= 0.8 * ae
    row("cold open, first screen", _s(nm_c), _s(ae), _s(tm_c),
        f"{_r(tm_c, nm_c)} neomutt, {_r(tm_c, ae)} aerc", "≤ 0.15× neomutt cold and ≤ 0.8× aerc", _mark(ok))
    tui_all, cli_all = m.get("tuimail_cold_all"), m.get("tuimail_sync_cold")
    row("cold open, all headers synced (TUI: store holds every row)", _s(nm_c), "—", _s(tui_all),
        f"{_r(tui_all, nm_c)} neomutt", "≤ 1.0× neomutt cold", _mark(_le(tui_all, nm_c)))
    row("cold, all headers synced (`tuimail sync`, empty store)", _s(nm_c), "—", _s(cli_all),
        f"{_r(cli_all, nm_c)} neomutt", "≤ 1.0× neomutt cold", _mark(_le(cli_all, nm_c)))
    ok = None
    if tm_w is not None and nm_w:
        ok = tm_w <= 0.5 * nm_w and ((ae is not None and tm_w <= 0.5 * ae) or (fl is not None and tm_w <= 1.5 * fl))
    row("warm open, first screen", _s(nm_w), _s(ae), _s(tm_w),
        f"{_r(tm_w, nm_w)} neomutt, {_r(tm_w, ae)} aerc, {_r(tm_w, fl)} floor",
        "≤ 0.5× neomutt warm, and ≤ 0.5× aerc or ≤ 1.5× floor", _mark(ok))
    row("empty Textual app, first paint (the floor)", "—", "—", _s(fl), "—", "reference", "—")
    nm_rss, ae_rss, tm_rss, fl_rss = m.get("neomutt_rss"), m.get("aerc_rss"), m.get("tuimail_rss"), m.get("floor_rss")
    row("RSS after warm open", _mb(nm_rss), _mb(ae_rss), _mb(tm_rss),
        f"{_r(tm_rss, nm_rss)} neomutt, {_r(tm_rss, ae_rss)} aerc (floor {_mb(fl_rss)})",
        f"≤ 0.66× neomutt (next step ≤ 1.5× aerc: {_mark(_le(tm_rss, 1.5 * ae_rss) if ae_rss else None)})",
        _mark(_le(tm_rss, 0.66 * nm_rss) if nm_rss else None))
    row("bytes from the server, warm open (whole session)", _b(m.get("neomutt_warm_out")), _b(m.get("aerc_out")),
        _b(m.get("tuimail_warm_out")), f"{_r(m.get('tuimail_warm_out'), m.get('neomutt_warm_out'))} neomutt",
        "(reported)", "—")
    noop = m.get("noop_out")
    row("bytes, resync with no change", "—", "—", _b(noop), "—", "≤ 2 KB (same ±10% at 5k and 100k: below)",
        _mark(_le(noop, 2048)))
    for k, out in sorted((d.get("flag_out") or {}).items(), key=lambda kv: int(kv[0])):
        k = int(k)
        limit = 2048 + 150 * k
        row(f"bytes, resync after {k:,} flag change{'s' if k > 1 else ''} elsewhere", "—", "—",
            _b(out), f"+{(out - noop) / k:,.0f} B per change over no change" if out and noop else "—",
            f"≤ 2 KB + 150 B × k = {limit:,} B",
            _mark(_le(out, limit)))
    big = d.get("open_big") or {}
    if big:
        limit = 1.2 * big["text_bytes"] + 4096
        row("bytes, open a message with a 2 MB attachment", "—", "—", _b(big.get("bytes")),
            f"text part {big['text_bytes']:,} B; {_r(big.get('bytes'), big['text_bytes'])} of it",
            f"≤ 1.2× text part + 4 KB = {limit:,.0f} B", _mark(_le(big.get("bytes"), limit)))
    keys = d.get("keys") or {}
    rest, busy = keys.get("at_rest") or {}, keys.get("during_sync") or {}
    if rest:
        during = (f"; during a sync: median {_ms(busy.get('median_ms'))}, p95 {_ms(busy.get('p95_ms'))} "
                  f"(n={busy.get('n', 0)})" if busy.get("n") else "; during a sync: no sample (sync ended first)")
        view, scr = keys.get("in_view") or {}, keys.get("scrolled") or {}
        split = (f" [cursor inside the view: median {_ms(view.get('median_ms'))} (n={view.get('n', 0)}); "
                 f"list scrolls one row: median {_ms(scr.get('median_ms'))} (n={scr.get('n', 0)})]")
        row("key → repaint, moving down the list (pilot)", "—", "—",
            f"median {_ms(rest.get('median_ms'))}, p95 {_ms(rest.get('p95_ms'))} (n={rest.get('n')}){split}{during}",
            "—", "median ≤ 16 ms (at rest)", _mark(_le(rest.get("median_ms"), 16)))
    wire = d.get("wire") or {}
    lat, per = wire.get("key_to_wire") or {}, wire.get("per_action") or {}
    if lat.get("n"):
        ok = None if per.get("max") is None else _le(lat["median_ms"], 50) and per["max"] == 1
        row("key (flag) → command on the wire, at rest, loopback (pilot, through a proxy)", "—", "—",
            f"median {_ms(lat['median_ms'])}, p95 {_ms(lat['p95_ms'])}, max {_ms(lat['max_ms'])} (n={lat['n']}); "
            f"commands per action: median {per.get('median')}, max {per.get('max')} "
            f"({', '.join(f'{k} ×{v}' for k, v in sorted((wire.get('commands') or {}).items()))})",
            "—", "median ≤ 50 ms, one command per action", _mark(ok))
    stall_row(d, row)
    limit_row(d, row)
    idle = d.get("idle") or {}
    if idle.get("n"):
        floor = median(d.get("idle_dovecot") or [])
        row("flag change on another connection shown (IDLE)", "—", "—",
            f"median {_ms(idle['median_ms'])}, max {_ms(idle['max_ms'])} (n={idle['n']})",
            f"Dovecot alone (raw IDLE client): median {_ms(floor)}", "≤ 1 s (median)",
            _mark(_le(idle["median_ms"], 1000)))
    for err in d.get("errors", []):
        rows.append(f"\n> ⚠ {err}")
    return rows + [""]


STALL_TARGET_MS = 16


def stall_row(d: dict, row) -> None:
    """The longest UI-thread stall while pressing F/N/j during a cold fill (probes.stall)."""
    st = d.get("stall") or {}
    late, hand = st.get("loop_late") or {}, st.get("handlers") or {}
    if not late.get("n"):
        return
    value = (f"max {_ms(late.get('max_ms'))}, p99 {_ms(late.get('p99_ms'))}, median {_ms(late.get('median_ms'))} "
             f"({st.get('keys')} keys, rows {st.get('rows_at_start')} → {st.get('rows_at_end')})")
    stored = st.get("stored") or {}
    on_cpu = st.get("loop_late_on_cpu") or {}
    waited = (f"without the time the OS gave no CPU to the UI thread (other processes' load): max "
              f"{_ms(on_cpu.get('max_ms'))}, p99 {_ms(on_cpu.get('p99_ms'))}, median {_ms(on_cpu.get('median_ms'))}; "
              if on_cpu.get("n") else "")
    handlers = (f"F/N handlers: max {_ms(hand.get('max_ms'))}, median {_ms(hand.get('median_ms'))} "
                f"(n={hand.get('n', 0)}); ")
    note = (waited + handlers +
            f"key → stored by the writer: median {_ms(stored.get('median_ms'))}, max {_ms(stored.get('max_ms'))}; "
            f"q with the queue: {_ms(st.get('quit_ms'))}")
    row("longest UI-thread stall pressing F/N/j during a cold fill (5 ms ticker lateness)", "—", "—", value, note,
        f"≤ {STALL_TARGET_MS} ms", _mark(_le(late.get("max_ms"), STALL_TARGET_MS)))


def limit_row(d: dict, row) -> None:
    """`l ~f NAME` until the limited list is drawn, against neomutt's same limit (limit_bench.py)."""
    lim = d.get("limit") or {}
    t, nm = lim.get("tuimail_median_s"), lim.get("neomutt_median_s")
    if t is None or not nm:
        return
    inside = median(lim.get("tuimail_inside_ms") or [])
    row(f"limit `l {lim.get('pattern')}` until the limited list is drawn (warm)", _s(nm), "—",
        _s(t), f"{t / nm:.2f}× neomutt; "
        f"{lim.get('tuimail_shown')} shown by tuimail, {lim.get('neomutt_shown')} by neomutt, "
        f"{lim.get('expected')} expected; inside the app (Enter → limit applied): median {_ms(inside)}",
        "≤ 0.5× neomutt", _mark(_le(t / nm, 0.5)))


def cross_size(results: dict) -> list[str]:
    vals = {int(n): median(d.get("noop_out") or []) for n, d in results.items()}
    sizes = sorted(n for n, v in vals.items() if v is not None)
    if len(sizes) < 2:
        return []
    lo, hi = sizes[0], sizes[-1]
    spread = abs(vals[hi] - vals[lo]) / max(vals[lo], vals[hi])
    out = ["### No-change resync across folder sizes", "",
           "| messages | " + " | ".join(f"{n:,}" for n in sizes) + " | spread (smallest vs largest) | target | met |",
           "|---|" + "---|" * len(sizes) + "---|---|---|",
           "| bytes | " + " | ".join(f"{vals[n]:,.0f} B" for n in sizes) + f" | {spread * 100:.1f}% | "
           f"same ±10% | {_mark(spread <= 0.10)} |", ""]
    return out


def verdicts(results: dict) -> list[str]:
    """One line per DESIGN §4 target at the largest size measured."""
    if not results:
        return []
    n = max(results, key=int)
    marks = []
    for line in size_table(int(n), results[n]):
        cells = [c.strip() for c in line.strip("|").split("|")]
        if len(cells) == 7 and cells[6] in (OK, NO):
            value = cells[3] if cells[4] == "—" else f"{cells[3]} ({cells[4]})"
            marks.append((cells[0], value, cells[5], cells[6]))
    met = sum(m[3] == OK for m in marks)
    out = [f"**At {int(n):,} messages: {met} of {len(marks)} targets met.**", ""]
    out += [f"- {mark} {what}: {value} (target {target})" for what, value, target, mark in marks]
    return out + [""]


def section_verdicts(extra: dict) -> list[str]:
    marks = report_sections.verdicts(extra)
    if not marks:
        return []
    met = sum(m[3] == OK for m in marks)
    scored = sum(m[3] in (OK, NO) for m in marks)
    out = [f"**Other sections: {met} of {scored} targets met.**", ""]
    out += [f"- {mark} {what}: {value} (target {target})" if mark != "—" else f"- {what}: {value}"
            for what, value, target, mark in marks]
    return out + [""]


def render(meta: dict, results: dict, extra: dict | None = None) -> str:
    lines = ["# tuimail benchmark: neomutt, aerc and tuimail on the same Dovecot", "",
             f"Measured {meta['date']} on {meta['machine']}; load average at start {meta['load_start']}, "
             f"at end {meta.get('load_end', '(running)')}. The machine is shared with other engineers' test runs, "
             "so single figures are noisy: clients are alternated per round and medians are reported.", "",
             f"Command: `{meta['command']}`", "",
             "Versions: " + "; ".join(f"{k} {v}" for k, v in meta["versions"].items()), "",
             "How: every client runs in its own tmux pane (160x45) polled every ~10 ms (tmux control mode); "
             "the clock starts when the pane is released (tmux start-up excluded). Dovecot 2.3 on loopback, "
             f"maildir and client caches on {meta['fs']}. \"Cold\" = empty client cache (neomutt header cache, "
             "tuimail store) with Dovecot's index warm (one full header FETCH per client's field set first) and "
             "tuimail's bytecode compiled (`compileall`, as an installed wheel has it); "
             "\"warm\" = the cache filled by the previous run. aerc has no header cache, so its one figure is "
             "used for both. Ready = neomutt's status line shows the full message count; aerc and tuimail show "
             "the three newest subjects on consecutive lines. Bytes = Dovecot's `out=` for the session "
             "(after login), QRESYNC path. RSS = VmRSS of the client process 1 s after its warm first screen. "
             "Key → repaint and IDLE latency are measured in-process (Textual pilot at 160x45 on the warm "
             "store; a ImapService watching INBOX).", ""]
    lines += verdicts(results)
    lines += section_verdicts(extra or {})
    if meta.get("notes"):
        lines += [f"> {note}" for note in meta["notes"]] + [""]
    for n in sorted(results, key=int):
        lines += size_table(int(n), results[n])
    lines += cross_size(results)
    lines += report_sections.render(extra or {})
    return "\n".join(lines).rstrip() + "\n"
