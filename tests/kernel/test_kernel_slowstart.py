"""Slow start on a real kernel: a real coming back under ``wlc`` ramps its weight in the IPVS
table (read with ``ipvsadm -Ln``), and a client's new connections follow the ramp instead of all
flooding the real that has none.

The director is a network namespace this module creates (``inside_netns``); a client and two
reals each live in a namespace of their own, joined by veth pairs. Every address exists only
inside them, in a VM without any network device. A real is failed by a flag file that turns its
``/health`` page to 503 while it keeps serving ``/``.
"""

from __future__ import annotations

import asyncio
import math
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import pytest

from ldirector.config import loads
from ldirector.engine import Engine
from ldirector.ipvs.netlink import NetlinkBackend, netns_socket
from ldirector.state.owned import OwnedStore

from .vmtools import HEALTH_SERVER, http_get, inside_netns, ipvsadm, ready_processes, sh

pytestmark = pytest.mark.kernel

DIRECTOR = "ldss-director"
NS = {"client": "ldss-client", "rs1": "ldss-rs1", "rs2": "ldss-rs2"}
VIP = "10.79.1.100"
CLIENT = "10.79.1.2"
ADDR = {"rs1": "10.79.2.2", "rs2": "10.79.3.2"}
#: Each step of the ramp lasts one check interval, long enough for a batch under TCG emulation.
SLOWSTART = 30
INTERVAL = 6
#: Connections rs1 holds before rs2 comes back: what a wlc flood would have to catch up with.
PRELOAD = 40
#: New connections opened at each weight of the ramp.
BATCH = 10
WAIT = 90.0

CONFIG = f"""\
checkinterval={INTERVAL}
negotiatetimeout=2
checktimeout=2
slowstart={SLOWSTART}
virtual={VIP}:80
\treal={ADDR["rs1"]}:80 masq 10
\treal={ADDR["rs2"]}:80 masq 10
\tservice=http
\trequest="/health"
\treceive="ok"
\tscheduler=wlc
"""


def build_network() -> None:
    """The peers and their links; run inside the director's namespace."""
    sh("ip", "link", "set", "lo", "up")
    for subnet, (peer, name) in enumerate(NS.items(), start=1):
        sh("ip", "netns", "add", name)
        sh("ip", "-n", name, "link", "set", "lo", "up")
        sh("ip", "link", "add", f"s-{peer}", "type", "veth", "peer", "name", "eth0", "netns", name)
        sh("ip", "addr", "add", f"10.79.{subnet}.1/24", "dev", f"s-{peer}")
        sh("ip", "link", "set", f"s-{peer}", "up")
        sh("ip", "-n", name, "link", "set", "eth0", "up")
        address = CLIENT if peer == "client" else ADDR[peer]
        sh("ip", "-n", name, "addr", "add", f"{address}/24", "dev", "eth0")
        if peer != "client":
            sh("ip", "-n", name, "route", "add", "default", "via", f"10.79.{subnet}.1")
    sh("ip", "addr", "add", f"{VIP}/32", "dev", "s-client")
    sh("sysctl", "-qw", "net.ipv4.ip_forward=1")


def teardown_network() -> None:
    for name in [*NS.values(), DIRECTOR]:
        sh_quiet("ip", "netns", "del", name)


def sh_quiet(*argv: str) -> None:
    subprocess.run(argv, capture_output=True, check=False, timeout=60)


@pytest.fixture
def network(vm: None, tmp_path: Path) -> Iterator[Path]:
    """The namespaces and one health-flag HTTP server per real; yields the flag directory."""
    flags = tmp_path / "flags"
    flags.mkdir()
    teardown_network()
    sh("ip", "netns", "add", DIRECTOR)
    try:
        with inside_netns(DIRECTOR):
            build_network()
            argv = [sys.executable, "-c", HEALTH_SERVER]
            with ready_processes(
                [["ip", "netns", "exec", NS[n], *argv, n, str(flags)] for n in ADDR]
            ):
                ipvsadm("-C")
                yield flags
                ipvsadm("-C")
    finally:
        teardown_network()


@pytest.fixture
async def engine(network: Path, tmp_path: Path) -> AsyncIterator[Engine]:
    # Both reals already serve: the engine adopts them at full weight, with no ramp to wait for.
    web = f"{VIP}:80"
    ipvsadm("-A", "-t", web, "-s", "wlc")
    for address in ADDR.values():
        ipvsadm("-a", "-t", web, "-r", f"{address}:80", "-m", "-w", "10")
    backend = NetlinkBackend()
    engine = Engine(loads(CONFIG, "ldirectord.cf"), backend, owned=OwnedStore(tmp_path / "owned"))
    await engine.start()
    try:
        yield engine
    finally:
        await engine.shutdown()
        await backend.close()


def kernel_weights() -> dict[str, int]:
    """Each real's weight in the web service, as ``ipvsadm -Ln`` shows it."""
    out: dict[str, int] = {}
    for line in ipvsadm("-L", "-n").splitlines():
        words = line.split()
        if len(words) >= 4 and words[0] == "->" and ":" in words[1]:
            address = words[1].rsplit(":", 1)[0]
            name = {a: n for n, a in ADDR.items()}.get(address)
            if name and words[3].isdigit():
                out[name] = int(words[3])
    return out


async def until(what: str, probe: Callable[[], bool]) -> None:
    deadline = time.monotonic() + WAIT
    while not probe():
        assert time.monotonic() < deadline, f"{what}: kernel has {kernel_weights()}"
        await asyncio.sleep(0.1)


def open_batch(count: int, held: list[socket.socket]) -> list[str]:
    """Open ``count`` new connections to the VIP and keep them open; who answered each."""
    names = []
    for _ in range(count):
        sock = netns_socket(NS["client"], socket.AF_INET, socket.SOCK_STREAM)
        held.append(sock)
        sock.settimeout(10)
        sock.bind((CLIENT, 0))
        sock.connect((VIP, 80))
        names.append(http_get(sock))
    return names


async def test_slowstart_ramps_kernel_weight_and_spreads_new_connections_under_wlc(
    engine: Engine, network: Path
) -> None:
    await until("both reals at full weight", lambda: kernel_weights() == {"rs1": 10, "rs2": 10})
    (network / "rs2").touch()
    await until("rs2 taken out", lambda: "rs2" not in kernel_weights())
    held: list[socket.socket] = []
    try:
        loaded = await asyncio.to_thread(open_batch, PRELOAD, held)
        assert set(loaded) == {"rs1"}
        (network / "rs2").unlink()
        started = time.monotonic()
        await until("rs2 back", lambda: "rs2" in kernel_weights())
        rows: list[tuple[float, int, int, int, int]] = []  # t, weight, to rs2, batch, rs2 total
        totals = {"rs1": PRELOAD, "rs2": 0}
        while True:
            before = kernel_weights()["rs2"]
            names = await asyncio.to_thread(open_batch, BATCH, held)
            for name in names:
                totals[name] += 1
            if kernel_weights()["rs2"] != before:
                continue  # the weight moved mid-batch: this batch counts for no step
            rows.append(
                (time.monotonic() - started, before, names.count("rs2"), BATCH, totals["rs2"])
            )
            # wlc keeps active/weight level, so rs2 holds about weight/10 of rs1's connections;
            # a full-weight entry would have taken every new connection until it caught up.
            assert totals["rs2"] <= math.ceil(before * totals["rs1"] / 10) + 1, rows
            if before == 10:
                break
            assert time.monotonic() - started < WAIT, rows
            await asyncio.sleep(0.2)
        print("\nslow start under wlc: share of new connections rs2 gets at each weight")
        print(f"{'t (s)':>6} {'weight':>6} {'rs2/new':>8} {'share':>6} {'rs2 held':>8}")
        for t, weight, got, batch, total in rows:
            print(f"{t:6.1f} {weight:6d} {got:>4d}/{batch:<3d} {got / batch:6.0%} {total:8d}")
        weights = [row[1] for row in rows]
        assert weights == sorted(weights) and weights[0] <= 3 and weights[-1] == 10
        assert len(set(weights)) >= 3, rows  # seen at several steps of the ramp
        assert rows[0][2] < BATCH  # the first step did not take every new connection
    finally:
        for sock in held:
            sock.close()
