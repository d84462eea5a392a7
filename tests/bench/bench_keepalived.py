"""Benchmark: ldirector beside keepalived's checker, on the same reals, in one VM boot.

N reals (default 1,000 and 5,000) are addresses on one network namespace this benchmark creates,
served by one nginx there; every tenth one is black-holed (no address, a blackhole route: its
connects time out). keepalived (Debian's, ``--check``: the checker alone, no VRRP) and ldirector
(the real daemon, ``ldirector CONF start`` with ``supervised=yes``, as under a supervisor) are
each given the same reals, checks every 5 s with a 3 s timeout, a failed real kept at weight 0
(``inhibit_on_failure`` / ``quiescent=yes``), and run alone on them in turn, pinned to CPU 0
(nginx to CPU 1). Both log at their normal level. Figures:

- CPU per check, HTTP and connect, at each size: the tool's user + system CPU over a steady
  window, over the checks done in it (the connections the reals' namespace accepted, from its
  TCP PassiveOpens, plus the black-holed reals' checks counted as due); with the schedule kept
  (healthy checks done / due) and every healthy real up in the kernel table.
- Detection excess over schedule (HTTP, first size): reals in the first virtual are black-holed
  at random moments; the failing check completes at its last logged success + interval +
  timeout, and the excess is the time from then until the kernel holds weight 0 (polled).
- Launch to first check (60 reals, HTTP): from the spawn to nginx's first logged request; and
  the background cost: CPU over a window with those 60 reals.
- ldirector's peak RSS at the first size with HTTP checks.
- The floor: at the first size of each kind, a bare Python checker (``pyfloor.py``: the standard
  library's selector and sockets, nothing else) runs the same checks, and its CPU per check, RSS
  and launch are printed beside keepalived's, without a bar: what any Python program costs
  there, which is the part of ldirector's ratios the language runtime sets.

Each figure is printed beside keepalived's, the ratio and the bar; the exit status is 1 when a
bar is missed. It changes the IPVS table, so outside the VM it boots one with
``scripts/vm-test --bench tests/bench/bench_keepalived.py`` (the options go to the guest in
artifacts/bench-keepalived.args). Traffic goes only to the namespace's addresses; every loop
is bounded in count and time.

    .venv/bin/python tests/bench/bench_keepalived.py [--reals 1000,5000] [--kinds http,connect]
        [--only ldirector|keepalived] [--window 30] [--failures 10] [--no-idle] [--no-floor]
        [--profile]
        [--loop asyncio|uvloop]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import os
import pstats
import random
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from tests.bench import benchtools, versus
from tests.bench.benchtools import NS, real_address
from tests.bench.versus import IDLE_REALS, AccessLog, Run, Schedule, Tool

ROOT = Path(__file__).resolve().parents[2]
ARGS_FILE = ROOT / "artifacts/bench-keepalived.args"
INTERVAL = 5.0
TIMEOUT = 3.0
CONVERGE_LIMIT = 300.0


def is_dead(i: int) -> bool:
    return i % 10 == 9


def wait_converged(tool: Tool, members: Sequence[int], dead: set[int], run: Run) -> bool:
    """Until every healthy real has weight > 0 and every dead one 0 (a dump every 2 s)."""
    deadline = time.monotonic() + CONVERGE_LIMIT
    up = down = healthy = 0
    while time.monotonic() < deadline:
        if not tool.alive():
            run.notes.append(f"exited: {tool.output()[-600:]}")
            return False
        up, down, healthy = versus.census(versus.table_weights(), members, dead)
        if up == healthy and down == len(members) - healthy:
            run.converged = time.time() - tool.spawned
            return True
        time.sleep(2)
    run.notes.append(f"not converged after {CONVERGE_LIMIT:g} s: {up}/{healthy} up, {down} down")
    return False


def first_request(log: AccessLog, since: float, limit: float) -> float:
    """The time of the first request nginx logs at or after ``since`` (NaN if none in time)."""
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        for when, _ in log.read():
            if when >= since - 0.001:
                return when
        time.sleep(0.1)
    return math.nan


def measure_window(tool: Tool, nginx_pid: int, seconds: float, run: Run) -> None:
    before, snmp0, t0 = (
        benchtools.cpu_seconds(tool.pid),
        benchtools.snmp(nginx_pid),
        time.monotonic(),
    )
    time.sleep(seconds)
    after, snmp1, t1 = (
        benchtools.cpu_seconds(tool.pid),
        benchtools.snmp(nginx_pid),
        time.monotonic(),
    )
    run.cpu, run.window = after - before, t1 - t0
    run.accepted = snmp1["Tcp.PassiveOpens"] - snmp0["Tcp.PassiveOpens"]
    run.dropped = snmp1["Ip.InAddrErrors"] - snmp0["Ip.InAddrErrors"]
    run.rss, run.hwm = benchtools.memory_mb(tool.pid)


async def detect(
    victims: list[int], rng: random.Random, run: Run
) -> dict[str, tuple[float, float]]:
    """Black-hole ``victims`` at random moments within two intervals; returns each one's
    (failure time, time the kernel first showed weight 0). The kernel is polled by reading
    /proc/net/ip_vs (the kernel formats it; decoding netlink in Python under emulation took
    seconds a poll), looking for just the victims' lines."""
    failed: dict[str, float] = {}
    zeroed: dict[str, float] = {}

    async def fail(address: str, delay: float) -> None:
        await asyncio.sleep(delay)
        for n, argv in enumerate(benchtools.blackhole_argvs(address)):
            proc = await asyncio.create_subprocess_exec(*argv)
            if await proc.wait() != 0:
                raise SystemExit(f"bench_keepalived: {' '.join(argv)} failed")
            if n == 0:
                failed[address] = time.time()

    addresses = [real_address(i) for i in victims]
    offsets = sorted(rng.uniform(0, 2 * INTERVAL) for _ in victims)
    tasks = [asyncio.create_task(fail(a, d)) for a, d in zip(addresses, offsets, strict=True)]
    deadline = time.monotonic() + 2 * INTERVAL + INTERVAL + TIMEOUT + 30
    slowest = 0.0
    while len(zeroed) < len(addresses) and time.monotonic() < deadline:
        asked = time.time()
        weights = versus.proc_weights([a for a in failed if a not in zeroed])
        slowest = max(slowest, time.time() - asked)
        for a, w in weights.items():
            if w == 0:
                zeroed[a] = asked
        await asyncio.sleep(0.05)
    await asyncio.gather(*tasks)
    if slowest > 0.25:  # the figures' resolution
        run.notes.append(f"detection: slowest poll of /proc/net/ip_vs {slowest:.3f} s")
    return {a: (failed[a], zeroed.get(a, math.nan)) for a in addresses if a in failed}


def scale_run(tool: Tool, s: Schedule, nginx_pid: int, log: AccessLog, args: Options) -> Run:
    """One tool alone on one schedule: converge, settle, the window, then detection."""
    dead = {i for i in s.members if is_dead(i)}
    run = Run(tool.name, s, healthy=s.reals - len(dead))
    log.skip()
    with versus.running(tool, s):
        if s.kind == "http":
            run.launch = first_request(log, tool.spawned, CONVERGE_LIMIT) - tool.spawned
        if tool.name == versus.FLOOR:  # no table to converge: its window, and that is all
            time.sleep(s.interval + s.timeout)
            measure_window(tool, nginx_pid, args.window, run)
            return run
        if not wait_converged(tool, s.members, dead, run):
            return run
        time.sleep(s.interval + s.timeout)  # past the cold start
        measure_window(tool, nginx_pid, args.window, run)
        run.up, run.down, _ = versus.census(versus.table_weights(), s.members, dead)
        if s.kind == "http" and s.reals == args.sizes[0] and args.failures:
            rng = random.Random(17)
            pool = [i for i in s.members[: versus.PER_VIRTUAL] if not is_dead(i)]
            victims = rng.sample(pool, min(args.failures, len(pool)))
            log.watch = {real_address(i) for i in victims}
            log.read()
            times = asyncio.run(detect(victims, rng, run))
            time.sleep(1.5)  # nginx's buffer
            log.read()
            for address, (failed, zeroed) in times.items():
                # The failing check is the one after the last that passed.
                completes = log.last.get(address, math.nan) + s.interval + s.timeout
                # Never seen at weight 0 within the wait: counted as infinitely late.
                run.excess.append(math.inf if math.isnan(zeroed) else zeroed - completes)
                before = [round(t - failed, 2) for t in log.history.get(address, [])[-4:]]
                run.detections.append(f"{address}: {before} then 0 at +{zeroed - failed:.2f}")
            for i in victims:  # back for the next tool
                a = real_address(i)
                benchtools.sh("ip", "-n", NS, "route", "del", "blackhole", f"{a}/32")
                benchtools.sh("ip", "-n", NS, "addr", "add", f"{a}/32", "dev", "lo")
    return run


def idle_run(tool: Tool, nginx_pid: int, log: AccessLog, args: Options) -> Run:
    """60 healthy reals, HTTP: launch to first check, then the background CPU."""
    healthy = tuple(i for i in range(2 * IDLE_REALS) if not is_dead(i))[:IDLE_REALS]
    s = Schedule(healthy, "http", INTERVAL, TIMEOUT)
    run = Run(tool.name, s, healthy=IDLE_REALS)
    log.skip()
    with versus.running(tool, s):
        run.launch = first_request(log, tool.spawned, CONVERGE_LIMIT) - tool.spawned
        if not wait_converged(tool, healthy, set(), run):
            return run
        time.sleep(s.interval + s.timeout)
        measure_window(tool, nginx_pid, args.idle_window, run)
    return run


# --- main ----------------------------------------------------------------------------------------


@dataclass
class Options:
    sizes: list[int]
    kinds: list[str]
    tools: list[str]
    window: float
    idle_window: float
    failures: int
    idle: bool
    floor: bool
    profile: bool
    loop: str


def parse(argv: list[str]) -> Options:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--reals", default="1000,5000", help="sizes, comma-separated")
    parser.add_argument("--kinds", default="http,connect", help="http, connect or both")
    parser.add_argument("--only", choices=versus.TOOLS, help="run one tool (no ratios)")
    parser.add_argument("--window", type=float, default=30.0, help="steady window, seconds")
    parser.add_argument("--idle-window", type=float, default=90.0)
    parser.add_argument("--failures", type=int, default=10, help="reals failed for detection")
    parser.add_argument("--no-idle", action="store_true", help="skip the 60-real launch run")
    parser.add_argument(
        "--no-floor",
        action="store_true",
        help="skip the bare Python checker (tests/bench/pyfloor.py)",
    )
    parser.add_argument(
        "--loop",
        choices=("asyncio", "uvloop"),
        default="",
        help="ldirector's event loop (LDIRECTOR_LOOP); default: the daemon's own default",
    )
    parser.add_argument(
        "--profile",
        action="store_true",
        help="run ldirector under cProfile and print where its CPU goes (its figures inflate)",
    )
    a = parser.parse_args(argv)
    return Options(
        sizes=[int(x) for x in a.reals.split(",")],
        kinds=[k for k in a.kinds.split(",") if k],
        tools=[a.only] if a.only else list(versus.TOOLS),
        window=a.window,
        idle_window=a.idle_window,
        failures=a.failures,
        idle=not a.no_idle,
        floor=not a.no_floor,
        profile=a.profile,
        loop=a.loop,
    )


def print_profile(work: Path) -> None:
    """Where ldirector's CPU went in each profiled run (cProfile writes at the daemon's exit)."""
    for path in sorted(work.glob("ldirector-*.prof")):
        print(f"ldirector under cProfile, {path.stem}: by own time, then cumulative")
        stats = pstats.Stats(str(path), stream=sys.stdout)
        stats.sort_stats("tottime").print_stats(22)
        stats.sort_stats("cumulative").print_stats(22)


def bench(args: Options) -> int:
    started = time.monotonic()
    subprocess.run(["modprobe", "ip_vs"], check=True)
    benchtools.sh("ipvsadm", "-C")
    if os.cpu_count() != 1:
        os.sched_setaffinity(0, {1})  # beside nginx: CPU 0 is the tool's alone
    biggest = max([*args.sizes, 2 * IDLE_REALS])
    dead = {i for i in range(biggest) if is_dead(i)}
    print(
        f"bench_keepalived: {','.join(map(str, args.sizes))} reals ({len(dead) * 100 // biggest}% "
        f"black-holed), {'/'.join(args.kinds)} checks every {INTERVAL:g} s, timeout "
        f"{TIMEOUT:g} s, weight 0 on failure; {' then '.join(args.tools)}, each alone in turn"
    )
    runs: dict[tuple[str, str, int], Run] = {}
    with tempfile.TemporaryDirectory() as tmp, contextlib.ExitStack() as stack:
        work = Path(tmp)
        benchtools.build_network(biggest, dead)
        stack.callback(benchtools.teardown_network)
        # Forwarding off in the namespace: what is sent to a dead real is dropped and counted.
        benchtools.sh("ip", "netns", "exec", NS, "sysctl", "-qw", "net.ipv4.ip_forward=0")
        (work / "nginx").mkdir()
        log = AccessLog(work / "access.log")
        server = stack.enter_context(
            benchtools.nginx(
                work / "nginx", ["*"], versus.PORT, netns=NS, probe=real_address(0),
                access_log=log.path,
            )
        )  # fmt: skip
        (work / versus.FLOOR).mkdir()
        floor = Tool(versus.FLOOR, work / versus.FLOOR)
        tools = {}
        for name in args.tools:
            (work / name).mkdir()
            tools[name] = Tool(name, work / name, loop=args.loop)
        for kind in args.kinds:
            for reals in args.sizes:
                for name, tool in tools.items():
                    s = Schedule(tuple(range(reals)), kind, INTERVAL, TIMEOUT)
                    print(f"  {name}: {kind} checks of {reals} reals ...", flush=True)
                    # cProfile (its figures inflate) on the first size of each kind.
                    profiled = args.profile and name == "ldirector" and reals == args.sizes[0]
                    tool.profile = work / f"ldirector-{kind}-{reals}.prof" if profiled else None
                    run = scale_run(tool, s, server.pid, log, args)
                    runs[(name, kind, reals)] = run
                    report(run)
                if args.floor and reals == args.sizes[0]:
                    s = Schedule(tuple(range(reals)), kind, INTERVAL, TIMEOUT)
                    print(f"  bare Python checker: {kind} checks of {reals} reals ...", flush=True)
                    run = scale_run(floor, s, server.pid, log, args)
                    runs[(versus.FLOOR, kind, reals)] = run
                    report(run)
        if args.idle:
            for name, tool in tools.items():
                profiled = args.profile and name == "ldirector"
                tool.profile = work / f"ldirector-idle-{IDLE_REALS}.prof" if profiled else None
                print(f"  {name}: {IDLE_REALS} reals, launch and background ...", flush=True)
                run = idle_run(tool, server.pid, log, args)
                runs[(name, "idle", IDLE_REALS)] = run
                report(run)
        table = versus.rows(runs, args.sizes, args.kinds, args.failures)
        print(f"bench_keepalived: {(time.monotonic() - started) / 60:.1f} min in the VM")
        versus.print_table(table)
        if args.profile:
            print_profile(work)
        keep = ROOT / "artifacts/bench"
        if keep.is_dir() and os.access(keep, os.W_OK):  # the VM's output directory
            for out in sorted(work.glob("*/*.out")):
                (keep / out.name).write_bytes(out.read_bytes()[-200_000:])
    notes = [
        f"{r.tool} {r.schedule.kind} {r.schedule.reals}: {n}"
        for r in runs.values()
        for n in r.notes
    ]
    for note in notes:
        print(f"  note: {note}")
    missed = [r.figure for r in table if r.ok is False]
    broken = bool(notes) or any(r.ok is None and r.bar for r in table if len(args.tools) == 2)
    if missed:
        print(f"bench_keepalived: {len(missed)} bar(s) missed: {'; '.join(missed)}")
    elif broken:
        print("bench_keepalived: FAIL: a figure could not be measured")
    else:
        print("bench_keepalived: every bar met")
    return 1 if missed or broken else 0


def report(run: Run) -> None:
    """One line as each run ends, so that a long benchmark shows progress."""
    r = run
    print(
        f"    converged {r.converged:.1f} s, launch {r.launch:.2f} s, CPU {r.cpu:.2f} s over "
        f"{r.window:.1f} s, accepted {r.accepted}, kept {r.kept:.1%}, "
        f"{r.cpu_per_check_ms:.3f} ms/check, up {r.up}/{r.healthy}, "
        f"RSS {r.rss:.1f} MB (peak {r.hwm:.1f})"
        + (f", excess {sorted(round(x, 2) for x in r.excess)}" if r.excess else ""),
        flush=True,
    )
    for line in r.detections:
        print(f"      {line}")
    for note in r.notes:
        print(f"    note: {note}", flush=True)


def main() -> int:
    if os.environ.get("LDIRECTOR_IN_VM") != "1":
        parse(sys.argv[1:])  # errors here, not in the VM
        ARGS_FILE.parent.mkdir(parents=True, exist_ok=True)
        ARGS_FILE.write_text(json.dumps(sys.argv[1:]))
        return subprocess.run(
            [str(ROOT / "scripts/vm-test"), "--bench", "tests/bench/bench_keepalived.py"],
            check=False,
        ).returncode
    argv = sys.argv[1:]
    if not argv and ARGS_FILE.exists():
        argv = json.loads(ARGS_FILE.read_text())
    return bench(parse(argv))


if __name__ == "__main__":
    sys.exit(main())
