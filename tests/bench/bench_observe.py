"""Benchmark: what one status request and one /metrics scrape cost at 10,000 reals.

Not a test: run it by hand or from ``make bench``:

    .venv/bin/python tests/bench/bench_observe.py [--reals 10000] [--rounds 5]

Builds a config of ``--reals`` reals (100 per virtual, all up, each with check counts), then
times the parts of a request: the snapshot (``status.build``, on the event loop), the JSON of
``status --json``, the ``status -v`` text, the status page, and the Prometheus exposition
(rendered in a thread by the daemon). The bar that matters is the snapshot: it runs on the
event loop, so it must stay well under the stall detector's 250 ms threshold. No I/O at all.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from collections.abc import Callable

from ldirector.config import loads
from ldirector.desired import desired_table, real_key
from ldirector.health import RealHealth, Status
from ldirector.ipvs.types import IpvsTable
from ldirector.metrics import exposition
from ldirector.status import CheckStats, build
from ldirector.statusrender import render_text, to_json
from ldirector.web import render_page

#: The snapshot runs on the event loop: keep it far below the stall threshold (0.25 s).
SNAPSHOT_BAR = 0.2


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reals", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    per = 100
    lines: list[str] = []
    for v in range((args.reals + per - 1) // per):
        lines.append(f"virtual=127.1.{v // 250}.{v % 250 + 1}:80")
        for r in range(min(per, args.reals - v * per)):
            lines.append(f"\treal=127.2.{v // 250}.{v % 250 + 1}:{8000 + r} masq")
        lines.append("\tchecktype=on")
    config = loads("\n".join(lines) + "\n", "bench.cf")
    keys = [real_key(v, r) for v in config.virtuals for r in v.reals]
    health = {k: RealHealth(status=Status.UP, reason="HTTP 200 OK") for k in keys}
    checks = CheckStats()
    for k in keys:
        checks.record(k, True, 0.004)
    table = desired_table(config, health, IpvsTable())

    def snapshot() -> object:
        return build(
            config, health, actual=table, desired=table, started=0.0,
            probe_of={k: k for k in keys}, checks=checks,
        )  # fmt: skip

    snap = build(
        config, health, actual=table, desired=table, started=0.0,
        probe_of={k: k for k in keys}, checks=checks,
    )  # fmt: skip
    parts: dict[str, Callable[[], object]] = {
        "snapshot (event loop)": snapshot,
        "status --json": lambda: json.dumps(to_json(snap)),
        "status -v text": lambda: render_text(snap),
        "status page": lambda: render_page(snap),
        "/metrics (thread)": lambda: exposition(snap),
    }
    print(f"{len(keys)} reals in {len(config.virtuals)} virtuals, {args.rounds} rounds")
    worst = 0.0
    for name, part in parts.items():
        times = []
        for _ in range(args.rounds):
            start = time.perf_counter()
            part()
            times.append(time.perf_counter() - start)
        if name.startswith("snapshot"):
            worst = max(times)
        print(
            f"  {name:24} median {statistics.median(times) * 1000:7.1f} ms"
            f"  max {max(times) * 1000:7.1f} ms"
        )
    ok = worst < SNAPSHOT_BAR
    print(
        f"snapshot max {worst * 1000:.1f} ms, bar {SNAPSHOT_BAR * 1000:.0f} ms:"
        f" {'OK' if ok else 'FAIL'}"
    )
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
