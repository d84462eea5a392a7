"""disable, drain and enable on the real kernel: the engine on a NAT director in namespaces, a
client holding a real TCP connection through IPVS, overrides sent through the control socket.

Every address below exists only inside network namespaces this test creates, in a VM without
any network device of its own. Kept small: one virtual, two reals, one connection.
"""

from __future__ import annotations

import asyncio
import random
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from ipaddress import IPv4Address
from pathlib import Path

import pytest

from checks.types import CheckSpec, Result, Target
from ldirector.config import loads
from ldirector.control.protocol import request, socket_path
from ldirector.control.server import observing
from ldirector.engine import Engine
from ldirector.ipvs.netlink import NetlinkBackend, netns_socket
from ldirector.ipvs.types import InetServiceKey, Protocol
from ldirector.state.holds import Holds, HoldsStore
from ldirector.state.owned import OwnedStore
from ldirector.testing import FakeClock

from .vmtools import ready_processes, sh

pytestmark = pytest.mark.kernel

NS = {"client": "ldm-client", "director": "ldm-director", "rs1": "ldm-rs1", "rs2": "ldm-rs2"}
VIP = IPv4Address("10.79.1.100")
CLIENT = "10.79.1.2"
REALS = {"rs1": "10.79.2.2", "rs2": "10.79.3.2"}
SVC = InetServiceKey(Protocol.TCP, VIP, 80)
CONFIG = f"""\
checkinterval=5
quiescent=no
cleanstop=no
virtual={VIP}:80
	real={REALS["rs1"]}:80 masq 3
	real={REALS["rs2"]}:80 masq 2
	scheduler=rr
	service=http
	request="/"
	receive="ok"
"""

#: Accepts connections and holds them open without answering: a client that stays connected.
HOLDER = """
import socket
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("0.0.0.0", 80))
s.listen(16)
print("ready", flush=True)
held = []
while True:
    held.append(s.accept()[0])
"""


def teardown_network() -> None:
    for ns in NS.values():
        subprocess.run(["ip", "netns", "del", ns], capture_output=True, check=False, timeout=60)


def build_network() -> None:
    for ns in NS.values():
        sh("ip", "netns", "add", ns)
        sh("ip", "-n", ns, "link", "set", "lo", "up")
    for peer, net in (("client", "10.79.1"), ("rs1", "10.79.2"), ("rs2", "10.79.3")):
        sh("ip", "link", "add", f"d-{peer}", "netns", NS["director"], "type", "veth",
           "peer", "name", "eth0", "netns", NS[peer])  # fmt: skip
        sh("ip", "-n", NS["director"], "addr", "add", f"{net}.1/24", "dev", f"d-{peer}")
        sh("ip", "-n", NS["director"], "link", "set", f"d-{peer}", "up")
        sh("ip", "-n", NS[peer], "link", "set", "eth0", "up")
        address = CLIENT if peer == "client" else REALS[peer]
        sh("ip", "-n", NS[peer], "addr", "add", f"{address}/24", "dev", "eth0")
        sh("ip", "-n", NS[peer], "route", "add", "default", "via", f"{net}.1")
    sh("ip", "-n", NS["director"], "addr", "add", f"{VIP}/32", "dev", "d-client")
    sh("ip", "netns", "exec", NS["director"], "sysctl", "-qw", "net.ipv4.ip_forward=1")


@pytest.fixture
def network(vm: None) -> Iterator[None]:
    teardown_network()
    build_network()
    try:
        argv = [sys.executable, "-c", HOLDER]
        with ready_processes([["ip", "netns", "exec", NS[name], *argv] for name in REALS]):
            yield
    finally:
        teardown_network()


@pytest.fixture
async def director(network: None) -> AsyncIterator[NetlinkBackend]:
    backend = NetlinkBackend(netns=NS["director"])
    await backend.dump()
    try:
        yield backend
    finally:
        await backend.close()


async def always_up(target: Target, spec: CheckSpec) -> Result:
    return Result(True, "HTTP 200 OK", 0.001)


def engine(backend: NetlinkBackend, state: Path, clock: FakeClock) -> Engine:
    return Engine(
        loads(CONFIG, "k.cf"),
        backend,
        clock=clock,
        run=always_up,
        owned=OwnedStore(state / "k.cf.owned"),
        holds=Holds(HoldsStore(state / "k.cf.manual.json")),
        resolver=lambda address: asyncio.sleep(0, None),
        rng=random.Random(1),
        reconcile_spacing=0.0,
    )


async def kernel(backend: NetlinkBackend) -> dict[str, tuple[int, int]]:
    """Each real in the kernel: (weight, active connections)."""
    vs = (await backend.dump()).services[SVC]
    return {
        str(d.address): (d.weight, d.counters.active_conns if d.counters else -1)
        for d in vs.dests.values()
    }


async def send(path: Path, verb: str, real: str, bound: float | None = None) -> str:
    message: dict[str, object] = {"cmd": verb, "virtual": f"{VIP}:80", "real": real}
    if bound is not None:
        message["timeout"] = bound
    reply = await asyncio.to_thread(request, path, message, timeout=30)
    return str(reply["message"])


async def test_disable_drain_enable_on_the_kernel(director: NetlinkBackend, tmp_path: Path) -> None:
    clock = FakeClock()
    daemon = engine(director, tmp_path, clock)
    await daemon.start()
    await clock.advance(0.1)
    assert await kernel(director) == {REALS["rs1"]: (3, 0), REALS["rs2"]: (2, 0)}

    client = netns_socket(NS["client"], socket.AF_INET, socket.SOCK_STREAM)
    client.settimeout(10)
    client.bind((CLIENT, 0))
    await asyncio.to_thread(client.connect, (str(VIP), 80))
    try:
        deadline = time.monotonic() + 10
        while sorted(a for _, a in (await kernel(director)).values()) != [0, 1]:
            assert time.monotonic() < deadline, await kernel(director)
            await asyncio.sleep(0.1)
        state = await kernel(director)
        busy = next(r for r, (_, active) in state.items() if active == 1)
        idle = next(r for r in state if r != busy)

        path = socket_path("k.cf", tmp_path / "run")
        async with observing(daemon, cfgname="k.cf", directory=tmp_path / "run"):
            # An idle real has nothing to drain: out at once, and it stays disabled.
            assert (await send(path, "drain", idle)).startswith("draining")
            assert set(await kernel(director)) == {busy}
            # The busy one keeps its connection at weight 0 until the bound passes.
            await send(path, "drain", busy, bound=2.0)
            assert (await kernel(director))[busy] == (0, 1)
            await daemon.refresh()
            assert (await kernel(director))[busy] == (0, 1)
            await asyncio.sleep(2.1)
            await daemon.refresh()
            assert await kernel(director) == {}

            assert (await send(path, "enable", busy)).startswith("enabled")
            assert (await send(path, "enable", idle)).startswith("enabled")
            assert await kernel(director) == {REALS["rs1"]: (3, 0), REALS["rs2"]: (2, 0)} | {
                busy: ((await kernel(director))[busy][0], 1)
            }
            assert (await send(path, "disable", REALS["rs2"])).startswith("disabled")
            assert set(await kernel(director)) == {REALS["rs1"]}
        await daemon.shutdown()
    finally:
        client.close()

    # A restarted daemon keeps rs2 out although its check passes.
    clock = FakeClock()
    again = engine(director, tmp_path, clock)
    await again.start()
    await clock.advance(12)
    assert set(await kernel(director)) == {REALS["rs1"]}
    await again.shutdown()
