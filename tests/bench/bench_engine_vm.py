"""Benchmark: 1,000 reals on a real kernel; how long from a real failing to its weight 0.

The engine (``Engine`` + ``NetlinkBackend`` + real checks) runs in the test VM's root
namespace, the director; 1,000 real addresses live on one network namespace this benchmark
creates, answered by one small server. After the table has converged, reals are failed one
at a time (the address stops answering; with ``--check http`` its ``/health`` page turns to
503 instead) and the kernel table is polled until each one has weight 0 (``quiescent=yes``).
The bar: at most checkinterval + checktimeout + 1 s for every one of them. The moment a weight
reaches the kernel is taken when the netlink batch carrying it returns (polling a 1,000-real
table would load the emulated CPU the engine needs), and a final dump confirms every one.
It changes the IPVS table, so outside the VM it boots one with
``scripts/vm-test --bench tests/bench/bench_engine_vm.py``. Every address exists only inside
the VM's namespaces; every loop is bounded in time.

    .venv/bin/python tests/bench/bench_engine_vm.py [--reals 1000] [--interval 10] [--check http]
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import importlib.util
import os
import random
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Collection, Sequence
from pathlib import Path

from ldirector.config import loads
from ldirector.daemon import tuning
from ldirector.engine import Engine
from ldirector.ipvs.netlink import NetlinkBackend
from ldirector.ipvs.ops import EditDest, Op
from ldirector.ipvs.sync import DaemonState, SyncDaemon
from ldirector.ipvs.types import IpvsTable, ServiceKey
from tests.bench.benchtools import NS, build_network, real_address, sh, teardown_network

ROOT = Path(__file__).resolve().parents[2]


def health_server() -> str:
    """The kernel tests' real-server program (tests/kernel/vmtools.py), loaded by path."""
    spec = importlib.util.spec_from_file_location("vmtools", ROOT / "tests/kernel/vmtools.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return str(module.HEALTH_SERVER)


PER_VIRTUAL = 100


def config_text(reals: int, interval: float, timeout: float, check: str) -> str:
    lines = [
        f"checkinterval={interval:g}",
        f"checktimeout={timeout:g}",
        f"negotiatetimeout={timeout:g}",
        "quiescent=yes",
        "resyncinterval=10",
    ]
    for v in range((reals + PER_VIRTUAL - 1) // PER_VIRTUAL):
        # Table entries only: nothing is sent to a virtual address.
        lines += [f"virtual=10.79.100.{v + 1}:80", "\tscheduler=wrr"]
        if check == "http":
            lines += ["\tservice=http", '\trequest="/health"', '\treceive="ok"']
        else:
            lines += ["\tchecktype=connect"]
        lines += [
            f"\treal={real_address(i)}:80 masq"
            for i in range(v * PER_VIRTUAL, min(reals, (v + 1) * PER_VIRTUAL))
        ]
    return "\n".join(lines) + "\n"


async def fail(address: str, flags: Path, check: str) -> None:
    """Make one real fail its check: its health page says 503, or its address refuses."""
    if check == "http":
        (flags / address).touch()
        return
    # The address leaves the namespace and a prohibit route answers for it: connects to it
    # fail at once (ICMP administratively prohibited), as to a server whose host went away.
    for argv in (
        ["ip", "-n", NS, "addr", "del", f"{address}/32", "dev", "lo"],
        ["ip", "-n", NS, "route", "add", "prohibit", f"{address}/32"],
    ):
        proc = await asyncio.create_subprocess_exec(*argv)
        if await proc.wait() != 0:
            raise SystemExit(f"bench_engine_vm: {' '.join(argv)} failed")


class TimedBackend:
    """The engine's NetlinkBackend, noting when each real's weight 0 was applied."""

    def __init__(self) -> None:
        self.inner = NetlinkBackend()
        self.zeroed: dict[str, float] = {}
        self._watch: dict[str, asyncio.Future[float]] = {}

    def watch(self, address: str) -> asyncio.Future[float]:
        """Resolves with the moment a batch giving ``address`` weight 0 was applied."""
        return self._watch.setdefault(address, asyncio.get_running_loop().create_future())

    async def dump(self, only: Collection[ServiceKey] | None = None) -> IpvsTable:
        return await self.inner.dump(only)

    async def apply(self, ops: Sequence[Op]) -> None:
        try:
            await self.inner.apply(ops)
        finally:
            now = time.monotonic()
            for op in ops:
                if isinstance(op, EditDest) and op.dest.weight == 0:
                    address = str(op.dest.address)
                    self.zeroed.setdefault(address, now)
                    waiter = self._watch.get(address)
                    if waiter is not None and not waiter.done():
                        waiter.set_result(self.zeroed[address])

    async def daemons(self) -> tuple[SyncDaemon, ...]:
        return await self.inner.daemons()

    async def start_daemon(self, daemon: SyncDaemon) -> None:
        await self.inner.start_daemon(daemon)

    async def stop_daemon(self, state: DaemonState) -> None:
        await self.inner.stop_daemon(state)

    async def close(self) -> None:
        await self.inner.close()


def weights(table: IpvsTable) -> dict[str, int]:
    return {str(d.address): d.weight for vs in table for d in vs.dests.values()}


async def measure(args: argparse.Namespace, flags: Path) -> int:
    text = config_text(args.reals, args.interval, args.timeout, args.check)
    kernel = NetlinkBackend()
    reasons: collections.Counter[str] = collections.Counter()
    backend = TimedBackend()
    engine = Engine(
        loads(text, "bench.cf"),
        backend,
        on_observation=lambda obs: reasons.update([obs.result.reason]),
        on_installed=tuning.Collector().settle,  # as the daemon runs it
    )
    cpu0 = time.process_time()
    started = time.monotonic()
    await engine.start()
    deadline = started + 120
    while True:
        w = weights(await kernel.dump())
        if len(w) == args.reals and all(x == 1 for x in w.values()):
            break
        if time.monotonic() > deadline:
            print(f"bench_engine_vm: table not converged after 120 s ({len(w)} dests)")
            print(f"  check results: {reasons.most_common(5)}")
            await engine.shutdown()
            return 1
        await asyncio.sleep(0.2)
    converged = time.monotonic() - started
    print(f"  cold start: {args.reals} reals at weight 1 after {converged:.1f} s")
    await asyncio.sleep(args.interval)  # let the cadence settle past the cold-start burst
    rng = random.Random(7)
    victims = rng.sample(range(args.reals), args.failures)
    latencies: list[float] = []
    cpu1, wall1 = time.process_time(), time.monotonic()
    for i in victims:
        address = real_address(i)
        # A random moment within the real's cadence, so the figure is not flattered.
        await asyncio.sleep(rng.uniform(0, args.interval))
        zeroed = backend.watch(address)
        await fail(address, flags, args.check)
        failed = time.monotonic()
        try:
            at = await asyncio.wait_for(zeroed, args.interval + args.timeout + 30)
            latencies.append(at - failed)
        except TimeoutError:
            latencies.append(time.monotonic() - failed)
    cpu_share = (time.process_time() - cpu1) / (time.monotonic() - wall1)
    final = weights(await kernel.dump())
    missing = [real_address(i) for i in victims if final.get(real_address(i)) != 0]
    if missing:
        print(f"bench_engine_vm: FAIL: the kernel does not hold weight 0 for {missing}")
        await engine.shutdown()
        return 1
    total_cpu = time.process_time() - cpu0
    await engine.shutdown()
    await kernel.close()
    bar = args.interval + args.timeout + 1
    worst = max(latencies)
    ordered = sorted(latencies)
    print(
        f"  failure to weight 0 over {len(latencies)} reals: "
        f"median {ordered[len(ordered) // 2]:.2f} s, max {worst:.2f} s "
        f"(bar <= checkinterval {args.interval:g} + checktimeout {args.timeout:g} + 1 = {bar:g} s)"
    )
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(
        f"  director process: {cpu_share:.0%} of one CPU while checking, "
        f"{total_cpu:.1f} s CPU in all, peak RSS {rss:.0f} MB (no bar; TCG emulation)"
    )
    verdict = "PASS" if worst <= bar else "FAIL"
    print(f"bench_engine_vm: max {worst:.2f} s against a bar of {bar:g} s: {verdict}")
    return 0 if worst <= bar else 1


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--reals", type=int, default=1000)
    # ldirectord's default cadence: at 5 s the emulated CPU of the VM is the limit, not ldirector.
    parser.add_argument("--interval", type=float, default=10.0)
    parser.add_argument("--timeout", type=float, default=2.0)
    parser.add_argument("--failures", type=int, default=10)
    parser.add_argument(
        "--check",
        choices=("connect", "http"),
        default="connect",
        help="checktype=connect (default) or an HTTP check of /health",
    )
    args = parser.parse_args()
    if os.environ.get("LDIRECTOR_IN_VM") != "1":
        return subprocess.run(
            [str(ROOT / "scripts/vm-test"), "--bench", "tests/bench/bench_engine_vm.py"],
            check=False,
        ).returncode
    subprocess.run(["modprobe", "ip_vs"], check=True)
    sh("ipvsadm", "-C")
    sh("sysctl", "-qw", "net.ipv4.ip_forward=1")
    print(
        f"bench_engine_vm: {args.reals} reals in {args.reals // PER_VIRTUAL} virtuals, "
        f"{args.check} checks every {args.interval:g} s, kernel table over netlink"
    )
    with tempfile.TemporaryDirectory() as tmp:
        flags = Path(tmp)
        build_network(args.reals)
        server = subprocess.Popen(
            ["ip", "netns", "exec", NS, sys.executable, "-c", health_server(), "bench", tmp],
            stdout=subprocess.PIPE,
            text=True,
        )
        try:
            assert server.stdout is not None
            if server.stdout.readline() != "ready\n":
                print("bench_engine_vm: the real servers did not start")
                return 1
            return asyncio.run(measure(args, flags))
        finally:
            server.kill()
            server.wait(timeout=30)
            teardown_network()
            sh("ipvsadm", "-C")


if __name__ == "__main__":
    sys.exit(main())
