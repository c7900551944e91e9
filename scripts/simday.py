#!/usr/bin/env python3
"""A simulated call-centre day through a real LineBox (issue 4): 3 queues, 8 sipp agents,
N callers; the box's statistics and CDRs checked against the script's own log.

    .venv/bin/python scripts/simday.py [--calls 500] [--seed 1] [--rate 2.0] [--handle 1,6]
    scripts/bench simday [same options]

Prints the report (per queue and per agent, box vs script, the box's peak RSS, the checks)
and exits 1 if any check failed. The method: tests/peers/simday.py and docs/simday.md.
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.peers.simday import DayConfig, load_day, run_day  # noqa: E402


def _pair(text: str) -> tuple[float, float]:
    lo, _, hi = text.partition(",")
    return float(lo), float(hi or lo)


def main(argv: list[str] | None = None) -> int:
    d = DayConfig()
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--calls", type=int, default=d.calls)
    p.add_argument("--seed", type=int, default=d.seed)
    p.add_argument("--rate", type=float, default=d.rate, help="arrivals per second (Poisson)")
    p.add_argument("--speed", type=float, default=1.0,
                   help="time compression on top of the defaults: 2 halves handle, ring, patience and max wait")
    p.add_argument("--callback", type=float, default=d.callback, help="share of callers who ask for a callback")
    p.add_argument("--handle", type=_pair, default=d.handle, help="handle time range, seconds (lo,hi)")
    p.add_argument("--work", type=Path, help="where the box and the logs go (default: a new temp dir)")
    p.add_argument("--trace-msg", action="store_true", help="keep sipp's message logs")
    p.add_argument("--json", type=Path, help="also write the figures and checks as JSON here")
    p.add_argument("--reanalyse", type=Path, metavar="WORK",
                   help="no new day: check and report a finished day's work directory again")
    a = p.parse_args(argv)
    if a.reanalyse:
        day = load_day(a.reanalyse)
        print(day.report())
        return 0 if day.ok else 1
    s = a.speed
    cfg = DayConfig(calls=a.calls, seed=a.seed, rate=a.rate * s,
                    handle=(a.handle[0] / s, a.handle[1] / s), ring=(d.ring[0] / s, d.ring[1] / s),
                    patience=(d.patience[0] / s, d.patience[1] / s), max_wait=d.max_wait / s,
                    ring_timeout=max(1.5, d.ring_timeout / s), trace_msg=a.trace_msg,
                    callback=a.callback)
    work = a.work or Path(tempfile.mkdtemp(prefix="simday-"))
    day = run_day(cfg, work, say=lambda m: print(m, flush=True))
    print()
    print(day.report())
    if a.json:
        a.json.write_text(json.dumps({"config": vars(cfg), "stats": day.stats, "peak_rss_kb": day.peak_rss_kb,
                                      "checks": [vars(c) for c in day.checks]}, indent=1, default=str))
    return 0 if day.ok else 1


if __name__ == "__main__":
    sys.exit(main())
