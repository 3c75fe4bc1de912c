"""Header summary speed (DESIGN.md §3): mail/headers.summarize, which the header sync runs on every
message, against the stdlib's cheapest parser, `email` with the compat32 policy (which only splits
the fields: summarize also decodes encoded words, dates, addresses and message ids).

    PYTHONPATH=. .venv/bin/python -m tests.bench.header_speed [--n 2000]

The headers are the generated mail's (tuimail.demo.generate), cut to the fields the sync fetches
(HEADER_FIELDS, as a server answers BODY.PEEK[HEADER.FIELDS (...)]). CPU time per message, the
best of three passes over them, both parsers in the same run (a loaded machine slows both). Target:
summarize >= 2.5x faster (compat32 ~37 us a message on the reference machine, summarize < 15 us).
This was a unit test until it failed once in CI under load: timings belong here, not in `make test`.
"""

from __future__ import annotations

import argparse
import email
import email.policy
import json
import time
from collections.abc import Callable

from tuimail.demo.generate import generate
from tuimail.mail.headers import HEADER_FIELDS, summarize

TARGET = 2.5  # summarize at least this many times faster than compat32


def fetched_fields(raw: bytes) -> bytes:
    """A message's header cut to HEADER_FIELDS (continuation lines kept with their field)."""
    head = raw.partition(b"\r\n\r\n")[0]
    wanted = {f.encode() for f in HEADER_FIELDS}
    out, keep = [], False
    for line in head.split(b"\r\n"):
        if line[:1] in (b" ", b"\t"):
            if keep:
                out.append(line)
            continue
        keep = line.partition(b":")[0].strip().upper() in wanted
        if keep:
            out.append(line)
    return b"\r\n".join(out) + b"\r\n\r\n"


def compat32(raw: bytes) -> list:
    m = email.message_from_bytes(raw, policy=email.policy.compat32)
    return [m.get(k.lower()) for k in HEADER_FIELDS]


def cpu_per_message(fn: Callable[[bytes], object], blocks: list[bytes], passes: int = 3) -> float:
    best = float("inf")
    for _ in range(passes):
        t = time.process_time()
        for b in blocks:
            fn(b)
        best = min(best, (time.process_time() - t) / len(blocks))
    return best


def measure(n: int = 2000) -> dict:
    blocks = [fetched_fields(m.raw) for m in generate(n, seed=7)]
    ours = cpu_per_message(summarize, blocks)
    theirs = cpu_per_message(compat32, blocks)
    return {"n": n, "summarize_us": ours * 1e6, "compat32_us": theirs * 1e6, "ratio": theirs / ours,
            "target": TARGET}


def line(d: dict) -> str:
    return (f"header summary vs email compat32: {d['ratio']:.1f}x faster (target >= {d['target']}x; "
            f"summarize {d['summarize_us']:.1f} us, compat32 {d['compat32_us']:.1f} us a message, "
            f"{d['n']} headers)")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--n", type=int, default=2000)
    d = measure(p.parse_args(argv).n)
    print(line(d))
    print(json.dumps(d))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
