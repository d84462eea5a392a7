"""Benchmark: the engine keeping 10,000 reals on schedule, 10% of them black-holed.

Not a test: run it by hand or from ``make bench`` (nginx installed; root not needed):

    .venv/bin/python tests/bench/bench_engine.py [--reals 10000] [--seconds 30]

The engine runs with the in-memory FakeBackend and real HTTP checks every ``--interval``
seconds. Healthy reals are served by one nginx pinned to CPU 1 on 127.0.1.1..127.0.1.90;
black-holed reals are loopback sockets that listen and never accept, so every check against
them runs into its timeout. The engine process is pinned to CPU 0, so it has one core. After a
warm-up of two intervals it measures, for every check: how late it started against its
schedule (p50/p99/max), the CPU used by the engine process, and its peak RSS; each figure is
printed beside its bar. Traffic goes to 127.0.0.0/8 only; every loop is bounded in time.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import ipaddress
import os
import resource
import shutil
import socket
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import checks
from checks.types import CheckSpec, Result, Target
from ldirector.config import loads
from ldirector.daemon import tuning
from ldirector.engine import Engine
from ldirector.engine.scheduler import DEFAULT_CONCURRENCY, Observation
from ldirector.testing import FakeBackend
from tests.bench import benchtools

PER_VIRTUAL = 100
HEALTHY_FIRST = ipaddress.IPv4Address("127.0.1.1")
HOLE_FIRST = ipaddress.IPv4Address("127.0.2.1")
BARS = {"p99 start lateness (ms)": 250.0, "CPU (cores)": 1.0, "peak RSS (MB)": 200.0}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@contextlib.contextmanager
def black_holes(addresses: list[str], port: int) -> Iterator[None]:
    """Listening sockets nobody accepts on: the handshake completes, no byte ever comes back."""
    sockets = []
    try:
        for address in addresses:
            s = socket.socket()
            s.bind((address, port))
            s.listen(4096)
            sockets.append(s)
        yield
    finally:
        for s in sockets:
            s.close()


def config_text(
    reals: int, holes_per_virtual: int, port: int, hole_port: int, args: argparse.Namespace
) -> str:
    healthy_per_virtual = PER_VIRTUAL - holes_per_virtual
    lines = [
        f"checkinterval={args.interval:g}",
        f"checktimeout={args.timeout:g}",
        f"negotiatetimeout={args.timeout:g}",
        "quiescent=yes",
        "",
    ]
    for v in range(reals // PER_VIRTUAL):
        lines.append(f"virtual=127.0.0.100:{10000 + v}")
        for h in range(healthy_per_virtual):
            lines.append(f"\treal={HEALTHY_FIRST + h}:{port} masq")
        for b in range(holes_per_virtual):
            lines.append(f"\treal={HOLE_FIRST + b}:{hole_port} masq")
        # One request path per virtual: every real of every virtual is its own probe.
        lines += ["\tservice=http", f'\trequest="v{v}"', '\treceive="Test Page"', ""]
    return "\n".join(lines)


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")


async def measure(args: argparse.Namespace, text: str) -> dict[str, float]:
    config = loads(text, "bench.cf")
    late: list[float] = []
    cold: list[float] = []  # the warm-up: the cold start's checks, informational
    counts = {"checks": 0, "failed": 0}
    window: dict[str, float] = {}

    def observe(obs: Observation) -> None:
        if "start" in window and obs.scheduled >= window["start"]:
            late.append(obs.started - obs.scheduled)
            counts["checks"] += 1
            counts["failed"] += not obs.result.ok
        elif "start" not in window:
            cold.append(obs.started - obs.scheduled)

    holes = {str(HOLE_FIRST + i) for i in range(PER_VIRTUAL)}

    async def simulated(target: Target, spec: CheckSpec) -> Result:
        # --simulated-checks: no network, so the figures are the engine's own cost.
        if str(target.address) in holes:
            await asyncio.sleep(3600)  # black-holed: runs into its timeout
        await asyncio.sleep(0.001)
        return Result(True, "HTTP 200 OK")

    engine = Engine(
        config,
        FakeBackend(),
        concurrency=args.concurrency,
        on_observation=observe,
        on_installed=tuning.Collector().settle,  # as the daemon runs it
        run=simulated if args.simulated_checks else checks.run,
    )
    await engine.start()
    # Every real checked twice: the cold start (all reals at once, spread over one interval,
    # each added to the table as its first check passes) is over.
    await asyncio.sleep(2 * args.interval)
    window["start"] = time.monotonic()
    cpu0 = cpu_seconds()
    await asyncio.sleep(args.seconds)
    cpu = cpu_seconds() - cpu0
    elapsed = time.monotonic() - window["start"]
    window.pop("start")
    up = sum(1 for h in engine.health.values() if h.status.value == "up")
    await engine.shutdown()
    return {
        "checks": counts["checks"],
        "failed": counts["failed"],
        "checks/s": counts["checks"] / elapsed,
        "up": up,
        "p50 start lateness (ms)": 1000 * percentile(late, 0.50),
        "p99 start lateness (ms)": 1000 * percentile(late, 0.99),
        "max start lateness (ms)": 1000 * max(late, default=float("nan")),
        "CPU (cores)": cpu / elapsed,
        "cold start: p99 lateness (ms)": 1000 * percentile(cold, 0.99),
        "cold start: max lateness (ms)": 1000 * max(cold, default=float("nan")),
        "peak RSS (MB)": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reals", type=int, default=10000, help="multiple of 100")
    parser.add_argument("--black-holed", type=float, default=0.10, help="fraction")
    parser.add_argument("--interval", type=float, default=5.0)
    parser.add_argument("--timeout", type=float, default=3.0)
    parser.add_argument("--seconds", type=float, default=30.0, help="measured window")
    parser.add_argument("--concurrency", type=int, default=DEFAULT_CONCURRENCY)
    parser.add_argument(
        "--simulated-checks",
        action="store_true",
        help="no network: checks answer after 1 ms (black holes never); the engine alone",
    )
    args = parser.parse_args()
    if shutil.which("nginx") is None and not args.simulated_checks:
        sys.exit("nginx is not installed (apt-get install nginx-light)")
    with contextlib.suppress(OSError):
        os.sched_setaffinity(0, {0})  # the engine gets exactly one core
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    holes = round(PER_VIRTUAL * args.black_holed)
    port, hole_port = _free_port(), _free_port()
    healthy = [str(HEALTHY_FIRST + i) for i in range(PER_VIRTUAL - holes)]
    hole_addresses = [str(HOLE_FIRST + i) for i in range(holes)]
    text = config_text(args.reals, holes, port, hole_port, args)
    with (
        tempfile.TemporaryDirectory() as tmp,
        benchtools.nginx(Path(tmp), healthy, port),
        black_holes(hole_addresses, hole_port),
    ):
        figures = asyncio.run(measure(args, text))
    kind = "simulated checks" if args.simulated_checks else "HTTP"
    print(
        f"{args.reals} reals ({holes}% black-holed), {kind} every {args.interval:g}s, "
        f"timeout {args.timeout:g}s, window {args.seconds:g}s, cap {args.concurrency}"
    )
    missed = False
    for name, value in figures.items():
        bar = BARS.get(name)
        verdict = "" if bar is None else f"   bar <= {bar:g}: {'ok' if value <= bar else 'MISSED'}"
        missed |= bar is not None and not value <= bar
        print(f"  {name:30} {value:12.1f}{verdict}")
    sys.exit(1 if missed else 0)


if __name__ == "__main__":
    main()
