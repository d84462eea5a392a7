"""Benchmark: three times more checks due than the process can run, and no healthy real down.

Not a test: run it by hand or from ``make bench`` (nginx installed; root not needed):

    .venv/bin/python tests/bench/bench_overload.py [--factor 3] [--seconds 40]

First it measures what one core can do: HTTP checks per CPU-second against the same nginx
(tests/bench/bench_checks.py's worker, pinned to CPU 0). Then the engine, pinned to CPU 0 with
the in-memory FakeBackend, gets ``--factor`` times that many HTTP checks due per second: reals
served by one nginx on CPU 1 (127.0.1.1..), 10% of them black holes that accept and never answer
(127.0.2.1..). At the end of the window it counts healthy reals that a check ever judged down
(bar 0), black-holed reals not down (bar 0), and shows what the engine said about running behind
(checks waiting, timeouts not judged). Traffic goes to 127.0.0.0/8 only; every loop is bounded.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import ipaddress
import os
import re
import resource
import shutil
import sys
import tempfile
import time
from pathlib import Path

import checks
from checks.types import HttpSpec, Target
from ldirector.config import loads
from ldirector.daemon import tuning
from ldirector.engine import Engine
from ldirector.engine.clock import MonotonicClock
from ldirector.engine.scheduler import Observation, run_check
from ldirector.testing import FakeBackend
from tests.bench import benchtools
from tests.bench.bench_engine import (
    HEALTHY_FIRST,
    HOLE_FIRST,
    PER_VIRTUAL,
    _free_port,
    black_holes,
    config_text,
)


async def capacity(port: int, addresses: list[str], seconds: float = 5.0) -> float:
    """HTTP checks per CPU-second, at 64 in flight, against the healthy reals (the core this
    process is pinned to)."""
    spec = HttpSpec(request="/v0", receive=re.compile("Test Page"))
    targets = [Target(address=ipaddress.ip_address(a), port=port) for a in addresses]
    clock = MonotonicClock()
    done = [0]
    stop = time.monotonic() + seconds

    async def worker(i: int) -> None:
        while time.monotonic() < stop:
            await run_check(checks.run, targets[i % len(targets)], spec, 5, clock)
            done[0] += 1
            i += 1

    cpu = time.process_time()
    await asyncio.gather(*(worker(n) for n in range(64)))
    return done[0] / (time.process_time() - cpu)


async def overload(args: argparse.Namespace, text: str, holes: set[str]) -> dict[str, float]:
    config = loads(text, "overload.cf")
    judged_down: set[tuple[str, str]] = set()
    counts = {"checks": 0}

    def observe(obs: Observation) -> None:
        counts["checks"] += 1
        address = str(obs.job.target.address)
        if not obs.result.ok and address not in holes:
            judged_down.add((address, repr(obs.job.spec)))

    engine = Engine(
        config,
        FakeBackend(),
        on_observation=observe,
        on_installed=tuning.Collector().settle,  # as the daemon runs it
        run=checks.run,
    )
    started = time.monotonic()
    await engine.start()
    await asyncio.sleep(args.seconds)
    elapsed = time.monotonic() - started
    states = [(str(key.dest.address) in holes, h.status.value) for key, h in engine.health.items()]
    healthy_not_up = sum(1 for hole, status in states if not hole and status != "up")
    holes_not_down = sum(1 for hole, status in states if hole and status != "down")
    snap_counters = engine.counters
    # The watch's own samples: how late the loop ran while checks were in flight.
    lateness = sorted(late for _, late in engine._scheduler._load._samples) or [0.0]
    await engine.shutdown()
    return {
        "healthy reals judged down": len(judged_down),
        "black-holed reals not down": holes_not_down,
        "healthy reals not up at the end": healthy_not_up,
        "checks judged per second": counts["checks"] / elapsed,
        "timeouts not judged (engine behind)": snap_counters.checks_unjudged,
        "loop lateness p50 (ms)": 1000 * lateness[len(lateness) // 2],
        "loop lateness max (ms)": 1000 * lateness[-1],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--factor", type=float, default=3.0, help="load over capacity")
    parser.add_argument("--reals", type=int, default=10000, help="multiple of 100")
    parser.add_argument("--timeout", type=float, default=2.0, help="at most; 3/4 of the interval")
    parser.add_argument("--seconds", type=float, default=40.0)
    parser.add_argument(
        "--unprotected",
        action="store_true",
        help="turn the overload protection off, to see the bars fail without it",
    )
    args = parser.parse_args()
    if args.unprotected:
        from ldirector.engine import loopload, scheduler

        loopload.LoopLoad.must_wait = property(lambda self: False)  # type: ignore[assignment]
        scheduler.UNJUDGED_SHARE = float("inf")
    if shutil.which("nginx") is None:
        sys.exit("nginx is not installed (apt-get install nginx-light)")
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    holes_per_virtual = PER_VIRTUAL // 10
    port, hole_port = _free_port(), _free_port()
    healthy = [str(HEALTHY_FIRST + i) for i in range(PER_VIRTUAL - holes_per_virtual)]
    hole_addresses = [str(HOLE_FIRST + i) for i in range(holes_per_virtual)]
    with (
        tempfile.TemporaryDirectory() as tmp,
        benchtools.nginx(Path(tmp), healthy, port),
        black_holes(hole_addresses, hole_port),
    ):
        with contextlib.suppress(OSError):
            os.sched_setaffinity(0, {0})  # one core, for the measure and for the engine
        per_cpu_second = asyncio.run(capacity(port, healthy))
        reals = args.reals
        # The interval that puts factor times the capacity due; the timeout stays inside it.
        interval = reals / (args.factor * per_cpu_second)
        args.interval, args.timeout = interval, min(args.timeout, 0.75 * interval)
        text = config_text(reals, holes_per_virtual, port, hole_port, args)
        figures = asyncio.run(overload(args, text, set(hole_addresses)))
    print(
        f"capacity {per_cpu_second:,.0f} HTTP checks per CPU-second; {reals:,} reals every "
        f"{args.interval:.2f}s = {reals / args.interval:,.0f} checks/s due "
        f"({args.factor:g}x), timeout {args.timeout:.2f}s, window {args.seconds:g}s"
    )
    bars = {
        "healthy reals judged down": 0,
        "black-holed reals not down": 0,
        "healthy reals not up at the end": 0,
    }
    missed = False
    for name, value in figures.items():
        bar = bars.get(name)
        verdict = "" if bar is None else f"   bar = {bar}: {'ok' if value <= bar else 'MISSED'}"
        missed |= bar is not None and value > bar
        print(f"  {name:40} {value:12,.1f}{verdict}")
    sys.exit(1 if missed else 0)


if __name__ == "__main__":
    main()
