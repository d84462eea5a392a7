"""Benchmark: sustained HTTP and connect checks per second, ldirector beside ldirectord.

Not a test: run it by hand or from ``make bench`` (as root, with nginx and ldirectord installed):

    .venv/bin/python tests/bench/bench_checks.py [--seconds 20] [--skip-ldirectord]

1,000 real servers on loopback (127.0.1.1 to 127.0.4.232, all on ``lo`` without any setup) are
served by one nginx pinned to CPU 1. Each checker is pinned to CPU 0 and measured over the same
window length after a warm-up: checks completed per second, and CPU-seconds (user + system) per
1,000 checks. ldirectord runs in the foreground (``-d``) from a directory holding an ``ipvsadm``
stand-in, which it uses instead of the real one; its checks are counted from its debug lines.
Every bit of traffic goes to 127.0.0.0/8, and every loop is bounded in time.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import ipaddress
import json
import os
import re
import resource
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from tests.bench import benchtools

FIRST = ipaddress.IPv4Address("127.0.1.1")
COUNT = 1000
ADDRESSES = [str(FIRST + i) for i in range(COUNT)]  # 127.0.1.1 .. 127.0.4.232
BARS = {"http": 2000.0, "connect": 5000.0}
WARMUP = 3.0
#: Longest wait for ldirectord's first round of checks before its window starts anyway.
ROUND_LIMIT = 90.0
PAGE = benchtools.PAGE


@dataclass(frozen=True)
class Figure:
    """What one checker achieved in one window."""

    checks: int
    failed: int
    seconds: float
    cpu: float

    @property
    def rate(self) -> float:
        return self.checks / self.seconds if self.seconds else 0.0

    @property
    def cpu_per_1000(self) -> float:
        return 1000 * self.cpu / self.checks if self.checks else float("nan")


# --- ldirector worker (runs pinned, in its own process so that its CPU time is its own) ---------


async def _drive(kind: str, port: int, seconds: float, concurrency: int, paced: float) -> Figure:
    import checks
    from checks.types import CheckSpec, ConnectSpec, HttpSpec, Target
    from ldirector.core.plan import Job
    from ldirector.engine.clock import MonotonicClock
    from ldirector.engine.scheduler import Observation, Scheduler, run_check

    clock = MonotonicClock()

    spec: CheckSpec = (
        HttpSpec(request="/", receive=re.compile(PAGE)) if kind == "http" else ConnectSpec()
    )
    targets = [Target(address=ipaddress.ip_address(a), port=port) for a in ADDRESSES]
    counts = {"ok": 0, "failed": 0, "measuring": 0}
    reasons: dict[str, int] = {}

    async def worker(first: int, stop: float) -> None:
        i = first
        while time.monotonic() < stop:
            result = await run_check(checks.run, targets[i % COUNT], spec, 5, clock)
            i += concurrency
            if counts["measuring"]:
                counts["ok" if result.ok else "failed"] += 1
                if not result.ok:
                    reasons[result.reason] = reasons.get(result.reason, 0) + 1

    async def window() -> tuple[float, float]:
        await asyncio.sleep(WARMUP)
        counts["measuring"] = 1
        usage = resource.getrusage(resource.RUSAGE_SELF)
        started = time.monotonic()
        await asyncio.sleep(seconds)
        counts["measuring"] = 0
        after = resource.getrusage(resource.RUSAGE_SELF)
        cpu = (after.ru_utime - usage.ru_utime) + (after.ru_stime - usage.ru_stime)
        return time.monotonic() - started, cpu

    async def consume(queue: asyncio.Queue[Observation]) -> None:
        while True:
            result = (await queue.get()).result
            if counts["measuring"]:
                counts["ok" if result.ok else "failed"] += 1

    stop = time.monotonic() + WARMUP + seconds
    queue: asyncio.Queue[Observation] = asyncio.Queue()
    scheduler = Scheduler(queue)
    async with asyncio.TaskGroup() as group:
        consumer = None
        if paced:
            # Checks started by the daemon's own scheduler, each real on its cadence at random
            # offsets: what a check costs when each is woken up for, as in the daemon, not when
            # many share a turn of the loop.
            interval = COUNT / paced
            scheduler.set_jobs(
                Job(target=t, spec=spec, timeout=5, interval=interval) for t in targets
            )
            consumer = group.create_task(consume(queue))
        else:
            for n in range(concurrency):
                group.create_task(worker(n, stop))
        timing = group.create_task(window())
        await timing
        await scheduler.stop()
        if consumer is not None:
            consumer.cancel()
    elapsed, cpu = timing.result()
    if reasons:
        print(f"ldirector {kind} failures: {reasons}", file=sys.stderr)
    return Figure(counts["ok"] + counts["failed"], counts["failed"], elapsed, cpu)


def run_worker(
    kind: str, port: int, seconds: float, concurrency: int, loop: str, paced: float
) -> None:
    drive = _drive(kind, port, seconds, concurrency, paced)
    if loop == "uvloop":  # imported by name: the asyncio runs must not need it
        figure = importlib.import_module("uvloop").run(drive)
    else:
        figure = asyncio.run(drive)
    print(json.dumps(figure.__dict__))


# --- orchestration ---------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def measure_ldirector(
    kind: str, port: int, seconds: float, concurrency: int, loop: str, paced: float
) -> Figure:
    argv = [
        *benchtools.pin(0),
        sys.executable,
        __file__,
        "--worker",
        kind,
        "--port",
        str(port),
        "--seconds",
        str(seconds),
        "--concurrency",
        str(concurrency),
        "--loop",
        loop,
        "--paced",
        str(paced),
    ]
    done = subprocess.run(
        argv, capture_output=True, text=True, timeout=WARMUP + seconds + 60, check=False
    )
    if done.returncode != 0:
        sys.exit(f"ldirector worker failed:\n{done.stderr[-2000:]}")
    sys.stderr.write(done.stderr)
    return Figure(**json.loads(done.stdout.strip().splitlines()[-1]))


def measure_ldirectord(kind: str, port: int, seconds: float, tmp: Path) -> Figure:
    work = tmp / f"ldirectord-{kind}"
    work.mkdir()
    stand_in = work / "ipvsadm"
    stand_in.write_text("#!/bin/sh\nexit 0\n")  # an empty table; every change "succeeds"
    stand_in.chmod(0o755)
    check = (
        f'\tservice=http\n\trequest="/"\n\treceive="{PAGE}"\n'
        if kind == "http"
        else "\tchecktype=connect\n"
    )
    reals = "".join(f"\treal={a}:{port} masq\n" for a in ADDRESSES)
    cf = work / "bench.cf"
    cf.write_text(
        "checktimeout=5\nnegotiatetimeout=5\ncheckinterval=1\nquiescent=no\n"
        f"virtual=127.0.0.200:80\n{reals}{check}"
    )
    marker = "Checking negotiate:" if kind == "http" else "Checking connect:"
    argv = [*benchtools.pin(0), "ldirectord", "-d", str(cf), "start"]
    proc = subprocess.Popen(
        argv,
        cwd=work,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    seen = [0]
    failed = [0]
    assert proc.stderr is not None

    def read() -> None:
        assert proc.stderr is not None
        for line in proc.stderr:
            if marker in line:
                seen[0] += 1
            elif "Deleted real server" in line or "failed" in line.lower():
                failed[0] += 1

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        # Warm-up: ldirectord's first round adds every real through ipvsadm (and re-reads the
        # table each time); the steady state starts with the second round.
        deadline = time.monotonic() + ROUND_LIMIT
        while seen[0] < COUNT + 50 and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.1)
        if proc.poll() is not None or seen[0] < 50:
            sys.exit(f"ldirectord did not start checking (exit {proc.poll()})")
        if seen[0] < COUNT + 50:
            print(f"ldirectord {kind}: first round not over after {ROUND_LIMIT}s", file=sys.stderr)
        start_checks, start_failed = seen[0], failed[0]
        start_cpu, started = benchtools.process_cpu_seconds(proc.pid), time.monotonic()
        time.sleep(seconds)
        checks_done, cpu = (
            seen[0] - start_checks,
            benchtools.process_cpu_seconds(proc.pid) - start_cpu,
        )
        elapsed = time.monotonic() - started
        return Figure(checks_done, failed[0] - start_failed, elapsed, cpu)
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def report(kind: str, ours: Figure, theirs: Figure | None, paced: float) -> None:
    if paced:
        print(
            f"\n{kind} checks started at {paced:g}/s, one at a time: {ours.rate:.0f} checks/s, "
            f"{ours.cpu_per_1000:6.3f} CPU-s/1000 checks, failed {ours.failed} (no bar)"
        )
        return
    bar = BARS[kind]
    verdict = "meets" if ours.rate >= bar else "MISSES"
    print(f"\n{kind} checks, one core, {COUNT} loopback reals, {ours.seconds:.0f}s window")
    for name, fig in (("ldirector ", ours), ("ldirectord", theirs)):
        if fig is None:
            continue
        # With other work on the host the pinned core is shared: "busy" says how much of it the
        # checker had, and the CPU cost per check gives the rate of a core of its own.
        busy = fig.cpu / fig.seconds if fig.seconds else 0.0
        ceiling = 1000 / fig.cpu_per_1000 if fig.checks and fig.cpu else float("nan")
        mark = f"(bar >= {bar:.0f}: {verdict})" if fig is ours else " " * (len(verdict) + 16)
        print(
            f"  {name}: {fig.rate:7.0f} checks/s {mark}  {fig.cpu_per_1000:6.3f} CPU-s/1000 checks"
            f"  core busy {busy:4.0%}  ~{ceiling:6.0f}/s at a full core  failed {fig.failed}"
        )
    if theirs is not None and theirs.rate:
        print(f"  ratio     : {ours.rate / theirs.rate:7.1f}x the checks per second, ", end="")
        print(f"{theirs.cpu_per_1000 / ours.cpu_per_1000:.1f}x less CPU per check")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=20.0, help="measured window per run")
    parser.add_argument("--concurrency", type=int, default=64, help="ldirector checks in flight")
    parser.add_argument(
        "--loop", choices=("asyncio", "uvloop"), default="asyncio", help="ldirector's event loop"
    )
    parser.add_argument("--skip-ldirectord", action="store_true")
    parser.add_argument(
        "--paced",
        type=float,
        default=0.0,
        metavar="RATE",
        help="run ldirector's scheduler at RATE checks a second instead (ldirectord skipped)",
    )
    parser.add_argument("--only", choices=sorted(BARS), help="measure one kind of check")
    parser.add_argument("--worker", choices=sorted(BARS), help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        seconds = min(args.seconds, 60)
        run_worker(args.worker, args.port, seconds, args.concurrency, args.loop, args.paced)
        return
    seconds = min(args.seconds, 60.0)  # bounded, whatever is asked
    if args.loop == "uvloop" and importlib.util.find_spec("uvloop") is None:
        sys.exit("uvloop is not installed (pip install uvloop, or apt install python3-uvloop)")
    paced = min(max(args.paced, 0.0), 5000.0)  # bounded: at most 5,000 checks a second
    skip = args.skip_ldirectord or bool(paced)
    for tool in ("nginx", *(() if skip else ("ldirectord",))):
        if shutil.which(tool) is None and shutil.which(tool, path="/usr/sbin") is None:
            sys.exit(f"{tool} is not installed (tests/deps/checks1.apt; scripts/setup as root)")
    os.environ["PATH"] += ":/usr/sbin:/sbin"
    port = _free_port()
    with tempfile.TemporaryDirectory(prefix="bench-checks-") as name:
        tmp = Path(name)
        with benchtools.nginx(tmp, ADDRESSES, port):
            for kind in [args.only] if args.only else ["http", "connect"]:
                ours = measure_ldirector(kind, port, seconds, args.concurrency, args.loop, paced)
                theirs = None if skip else measure_ldirectord(kind, port, seconds, tmp)
                report(kind, ours, theirs, paced)


if __name__ == "__main__":
    main()
