"""Benchmark: what one status request and one /metrics scrape cost at 10,000 reals.

Not a test: run it by hand or from ``make bench``:

    .venv/bin/python tests/bench/bench_observe.py [--reals 10000] [--rounds 5]

Builds a config of ``--reals`` reals (100 per virtual, all up, each with check counts), then
times the parts of a request: the snapshot (``observe.snapshot.build``, on the event loop, at
most once a second however many readers), the JSON of ``status --json``, the ``status -v``
text, the status page, and the Prometheus exposition in both formats (the last ones rendered
in a thread). Two bars: the snapshot runs on the event loop, so it must stay well under the
stall detector's 250 ms threshold; ``/metrics`` must render in well under a scrape's timeout
and is counted in samples too. No I/O but the few /proc reads of the process figures.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from collections.abc import Callable

from ldirector.observe.exposition import Format
from ldirector.observe.metrics import exposition
from ldirector.observe.render import render_text, to_json
from ldirector.observe.web import render_page
from tests.support.observe_world import BigWorld

#: The snapshot runs on the event loop: keep it far below the stall threshold (0.25 s).
SNAPSHOT_BAR = 0.2
#: /metrics at 10,000 reals, median of the rounds (the machine is shared: one slow round is
#: the neighbours', not the renderer's).
METRICS_BAR = 0.3


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reals", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    world = BigWorld(args.reals)
    snap = world.build()
    parts: dict[str, Callable[[], object]] = {
        "snapshot (event loop)": world.build,
        "status --json": lambda: json.dumps(to_json(snap)),
        "status -v text": lambda: render_text(snap),
        "status page": lambda: render_page(snap),
        "/metrics": lambda: exposition(snap),
        "/metrics OpenMetrics": lambda: exposition(snap, Format.OPENMETRICS),
    }
    print(f"{len(world.keys)} reals in {len(world.config.virtuals)} virtuals, {args.rounds} rounds")
    worst = 0.0
    medians: dict[str, float] = {}
    for name, part in parts.items():
        times = []
        for _ in range(args.rounds):
            start = time.perf_counter()
            part()
            times.append(time.perf_counter() - start)
        if name.startswith("snapshot"):
            worst = max(times)
        medians[name] = statistics.median(times)
        print(
            f"  {name:24} median {statistics.median(times) * 1000:7.1f} ms"
            f"  max {max(times) * 1000:7.1f} ms"
        )
    ok = worst < SNAPSHOT_BAR
    print(
        f"snapshot max {worst * 1000:.1f} ms, bar {SNAPSHOT_BAR * 1000:.0f} ms:"
        f" {'OK' if ok else 'FAIL'}"
    )
    body = exposition(snap).decode()
    count = sum(1 for line in body.splitlines() if not line.startswith("#"))
    print(f"/metrics: {count:,} samples, {len(body) / 1e6:.1f} MB")
    for name in ("/metrics", "/metrics OpenMetrics"):
        fast = medians[name] < METRICS_BAR
        ok = ok and fast
        print(
            f"render {name} {len(world.keys):,} reals: median {medians[name]:.3f} s"
            f" (bar {METRICS_BAR} s): {'OK' if fast else 'FAIL'}"
        )
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
