"""The real engine on a real kernel: ``Engine`` + ``NetlinkBackend`` + real HTTP checks.

The director is a network namespace this module creates: the test's thread enters it for the
module (``inside_netns``), so the engines, their checks, their netlink sockets and sysctl
writes, and ipvsadm all work there; it holds the VIP and the IPVS table. The client, two reals
and a fallback server each live in a namespace of their own, joined to the director by veth
pairs. Every address below exists only inside those namespaces, in a VM without any network
device. A real is made to fail by a flag file that turns its ``/health`` page to 503 while it
keeps serving ``/``, so the tests also see where client traffic goes.
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Collection, Iterator, Sequence
from ipaddress import IPv4Address
from pathlib import Path

import pytest

from ldirector.config import loads
from ldirector.engine import Engine
from ldirector.ipvs import toggles
from ldirector.ipvs.netlink import NetlinkBackend, netns_socket
from ldirector.ipvs.ops import AddDest, DelDest, EditDest, Op
from ldirector.ipvs.sync import DaemonState, SyncDaemon
from ldirector.ipvs.types import InetServiceKey, IpvsTable, Protocol, ServiceKey
from ldirector.state.owned import OwnedStore

from .vmtools import HEALTH_SERVER, http_get, inside_netns, ipvsadm, ready_processes, sh

pytestmark = pytest.mark.kernel

DIRECTOR = "lde-director"
NS = {"client": "lde-client", "rs1": "lde-rs1", "rs2": "lde-rs2", "fb": "lde-fb"}
VIP = "10.78.1.100"
CLIENTS = [f"10.78.1.{i}" for i in range(2, 10)]
ADDR = {"rs1": "10.78.2.2", "rs2": "10.78.3.2", "fb": "10.78.4.2"}
NAME_OF = {address: name for name, address in ADDR.items()}
WEB = InetServiceKey(Protocol.TCP, IPv4Address(VIP), 80)
ALT = InetServiceKey(Protocol.TCP, IPv4Address(VIP), 8080)
#: Generous under TCG emulation; the bounds that matter are asserted separately.
WAIT = 30.0

CONFIG = """\
# checks every 0.5 s, so each step below settles in about a second
checkinterval=0.5
negotiatetimeout=2
checktimeout=2
resyncinterval={resync}
{globals}
virtual={vip}:80
\treal={rs1}:80 masq
\treal={rs2}:80 masq
\tfallback={fb}:80 masq
\tservice=http
\trequest="/health"
\treceive="ok"
\tscheduler=rr
\tquiescent={quiescent}
{extra}"""


def config_text(
    *, quiescent: str = "no", resync: float = 2, globals_: str = "", extra: str = ""
) -> str:
    return CONFIG.format(
        vip=VIP, quiescent=quiescent, resync=resync, globals=globals_, extra=extra, **ADDR
    )


def build_network() -> None:
    """The peers and their links; run inside the director's namespace."""
    sh("ip", "link", "set", "lo", "up")
    for peer, name in NS.items():
        sh("ip", "netns", "add", name)
        sh("ip", "-n", name, "link", "set", "lo", "up")
        subnet = {"client": 1, "rs1": 2, "rs2": 3, "fb": 4}[peer]
        sh("ip", "link", "add", f"e-{peer}", "type", "veth", "peer", "name", "eth0", "netns", name)
        sh("ip", "addr", "add", f"10.78.{subnet}.1/24", "dev", f"e-{peer}")
        sh("ip", "link", "set", f"e-{peer}", "up")
        sh("ip", "-n", name, "link", "set", "eth0", "up")
        if peer == "client":
            for client in CLIENTS:
                sh("ip", "-n", name, "addr", "add", f"{client}/24", "dev", "eth0")
        else:
            sh("ip", "-n", name, "addr", "add", f"{ADDR[peer]}/24", "dev", "eth0")
            sh("ip", "-n", name, "route", "add", "default", "via", f"10.78.{subnet}.1")
    sh("ip", "addr", "add", f"{VIP}/32", "dev", "e-client")
    sh("sysctl", "-qw", "net.ipv4.ip_forward=1")


def teardown_network() -> None:
    # The director's ends of the veth pairs go with its namespace.
    for name in [*NS.values(), DIRECTOR]:
        subprocess.run(["ip", "netns", "del", name], capture_output=True, check=False)


@pytest.fixture(scope="module")
def network(vm: None, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """The namespaces and one HTTP server per real and fallback; yields the flag directory."""
    flags = tmp_path_factory.mktemp("flags")
    teardown_network()
    sh("ip", "netns", "add", DIRECTOR)
    try:
        with inside_netns(DIRECTOR):
            build_network()
            argv = [sys.executable, "-c", HEALTH_SERVER]
            with ready_processes(
                [["ip", "netns", "exec", NS[n], *argv, n, str(flags)] for n in ADDR]
            ):
                yield flags
    finally:
        teardown_network()


class Recorder:
    """A NetlinkBackend that remembers every op it was asked to apply."""

    def __init__(self) -> None:
        self.inner = NetlinkBackend()
        self.ops: list[Op] = []

    async def dump(self, only: Collection[ServiceKey] | None = None) -> IpvsTable:
        return await self.inner.dump(only)

    async def apply(self, ops: Sequence[Op]) -> None:
        self.ops.extend(ops)
        await self.inner.apply(ops)

    async def daemons(self) -> tuple[SyncDaemon, ...]:
        return await self.inner.daemons()

    async def start_daemon(self, daemon: SyncDaemon) -> None:
        await self.inner.start_daemon(daemon)

    async def stop_daemon(self, state: DaemonState) -> None:
        await self.inner.stop_daemon(state)

    async def close(self) -> None:
        await self.inner.close()


class Director:
    """Starts engines on the director's table and watches it; every engine is shut down at the
    end."""

    def __init__(self, flags: Path, state: Path) -> None:
        self.flags = flags
        self.owned = state / "ldirectord.cf.owned"
        self.kernel = NetlinkBackend()
        self.engines: list[tuple[Engine, Recorder]] = []

    async def start(self, text: str) -> tuple[Engine, Recorder]:
        backend = Recorder()
        engine = Engine(
            loads(text, "ldirectord.cf"),
            backend,
            owned=OwnedStore(self.owned),
            sysctls=toggles.apply,
        )
        self.engines.append((engine, backend))
        await engine.start()
        return engine, backend

    def fail(self, name: str) -> None:
        (self.flags / name).touch()

    def heal(self, name: str) -> None:
        (self.flags / name).unlink(missing_ok=True)

    async def weights(self, key: InetServiceKey = WEB) -> dict[str, int]:
        """The service's destinations in the kernel, by name: {"rs1": 1, "fb": 1, ...}."""
        vs = (await self.kernel.dump()).services.get(key)
        if vs is None:
            return {}
        return {NAME_OF.get(str(d.address), str(d.address)): d.weight for d in vs.dests.values()}

    async def until(self, want: dict[str, int], key: InetServiceKey = WEB) -> float:
        """Wait until the service holds exactly ``want``; return the seconds it took."""
        start = time.monotonic()
        while (got := await self.weights(key)) != want:
            assert time.monotonic() - start < WAIT, f"kernel has {got}, want {want}"
            await asyncio.sleep(0.05)
        return time.monotonic() - start


@pytest.fixture
async def director(network: Path, tmp_path: Path) -> AsyncIterator[Director]:
    # Everything here happens in the director's namespace, never in the VM's own.
    here = os.stat("/proc/thread-self/ns/net").st_ino
    assert here == os.stat(f"/run/netns/{DIRECTOR}").st_ino
    for name in ADDR:
        (network / name).unlink(missing_ok=True)
    ipvsadm("-C")
    d = Director(network, tmp_path)
    try:
        yield d
    finally:
        for engine, backend in d.engines:
            await engine.shutdown()
            await backend.close()
        await d.kernel.close()
        ipvsadm("-C")
        toggles.apply({"expire_quiescent_template": 0})


def connect(source: str, port: int = 80) -> socket.socket:
    sock = netns_socket(NS["client"], socket.AF_INET, socket.SOCK_STREAM)
    sock.settimeout(10)
    sock.bind((source, 0))
    sock.connect((VIP, port))
    return sock


async def fetch(source: str, port: int = 80) -> str:
    """Which server answers a new connection from ``source`` (in a thread: the engine runs)."""

    def once() -> str:
        with connect(source, port) as sock:
            return http_get(sock)

    return await asyncio.to_thread(once)


async def eventually(probe: Callable[[], Awaitable[bool]], what: str) -> None:
    deadline = time.monotonic() + WAIT
    while not await probe():
        assert time.monotonic() < deadline, what
        await asyncio.sleep(0.1)


def touching(ops: Sequence[Op], name: str) -> list[Op]:
    """The ops that name real ``name``'s destination in the web service."""
    return [
        op
        for op in ops
        if isinstance(op, AddDest | EditDest | DelDest)
        and op.service == WEB
        and str(op.dest.address) == ADDR[name]
    ]


async def test_quiescent_failure_gives_weight_zero_and_recovery_restores(
    director: Director,
) -> None:
    await director.start(config_text(quiescent="yes"))
    await director.until({"rs1": 1, "rs2": 1})  # the fallback came and went at the cold start
    director.fail("rs1")
    await director.until({"rs1": 0, "rs2": 1})
    assert {await fetch(c) for c in CLIENTS[:4]} == {"rs2"}  # weight 0 takes no new clients
    director.heal("rs1")
    await director.until({"rs1": 1, "rs2": 1})
    assert {await fetch(c) for c in CLIENTS[:4]} == {"rs1", "rs2"}


async def test_removal_fallback_and_recovery_without_quiescent(director: Director) -> None:
    await director.start(config_text(quiescent="no"))
    await director.until({"rs1": 1, "rs2": 1})
    director.fail("rs1")
    await director.until({"rs2": 1})
    director.fail("rs2")
    await director.until({"fb": 1})  # nothing up: the fallback serves
    assert await fetch(CLIENTS[0]) == "fb"
    director.heal("rs1")
    await director.until({"rs1": 1})  # and goes as soon as one real is back
    assert await fetch(CLIENTS[1]) == "rs1"


async def test_reload_keeps_an_open_connection_and_its_real(director: Director) -> None:
    engine, backend = await director.start(config_text())
    await director.until({"rs1": 1, "rs2": 1})
    sock = await asyncio.to_thread(connect, CLIENTS[0])
    try:
        serving = await asyncio.to_thread(http_get, sock)
        other = "rs2" if serving == "rs1" else "rs1"
        before = len(backend.ops)
        # The other real gets weight 3, and a second virtual appears on port 8080.
        text = config_text().replace(f"real={ADDR[other]}:80 masq", f"real={ADDR[other]}:80 masq 3")
        text += f"virtual={VIP}:8080\n\treal={ADDR['rs1']}:80 masq\n"
        await engine.reload(loads(text, "ldirectord.cf"))
        await director.until({serving: 1, other: 3})
        await director.until({"rs1": 1}, ALT)
        await asyncio.sleep(2.5)  # past a resync and several rounds of checks
        assert await asyncio.to_thread(http_get, sock) == serving  # the connection lives on
        reload_ops = backend.ops[before:]
        assert not touching(reload_ops, serving), reload_ops  # its real was never touched
        assert [type(op) for op in touching(reload_ops, other)] == [EditDest]
    finally:
        sock.close()


KILLED_ENGINE = """
import asyncio, sys
from pathlib import Path
from ldirector.config import load
from ldirector.engine import Engine
from ldirector.ipvs import toggles
from ldirector.ipvs.netlink import NetlinkBackend
from ldirector.state.owned import OwnedStore

engine = Engine(load(sys.argv[1]), NetlinkBackend(), owned=OwnedStore(Path(sys.argv[2])),
                sysctls=toggles.apply, on_ready=lambda: print("ready", flush=True))
asyncio.run(engine.run())
"""


async def test_restart_after_kill_9_changes_nothing_for_healthy_reals(
    director: Director, tmp_path: Path
) -> None:
    path = tmp_path / "ldirectord.cf"
    path.write_text(config_text())
    first = await asyncio.create_subprocess_exec(
        sys.executable, "-c", KILLED_ENGINE, str(path), str(director.owned),
        stdout=asyncio.subprocess.PIPE,
    )  # fmt: skip
    try:
        assert first.stdout is not None
        assert await asyncio.wait_for(first.stdout.readline(), WAIT) == b"ready\n"
        await director.until({"rs1": 1, "rs2": 1})
    finally:
        os.kill(first.pid, signal.SIGKILL)  # no cleanup at all
        await asyncio.wait_for(first.wait(), WAIT)
    before = await director.kernel.dump()
    assert director.owned.read_text().strip()  # the dead daemon's claim is on disk
    _, backend = await director.start(config_text())
    await asyncio.sleep(3)  # past a resync and several rounds of checks
    assert backend.ops == []  # adopted as it was: no op at all
    after = await director.kernel.dump()
    assert after.services.keys() == before.services.keys()
    assert {k: vs.dests.keys() for k, vs in after.services.items()} == {
        k: vs.dests.keys() for k, vs in before.services.items()
    }
    assert await director.weights() == {"rs1": 1, "rs2": 1}


async def test_manual_ipvsadm_edit_is_repaired_within_one_resync(director: Director) -> None:
    resync = 2.0
    await director.start(config_text(resync=resync))
    await director.until({"rs1": 1, "rs2": 1})
    web = f"{VIP}:80"
    ipvsadm("-e", "-t", web, "-r", f"{ADDR['rs1']}:80", "-m", "-w", "7")
    ipvsadm("-d", "-t", web, "-r", f"{ADDR['rs2']}:80")
    ipvsadm("-A", "-t", f"{VIP}:9999", "-s", "rr")  # a foreign service: never ldirector's
    took = await director.until({"rs1": 1, "rs2": 1})
    assert took <= resync + 1.5, f"repaired after {took:.2f}s, resyncinterval is {resync}s"
    assert f"{VIP}:9999" in ipvsadm("-L", "-n")


async def test_persistence_follows_the_config_with_expire_quiescent_template(
    director: Director,
) -> None:
    await director.start(
        config_text(
            quiescent="yes", globals_="expire_quiescent_template=yes", extra="\tpersistent=300\n"
        )
    )
    assert toggles.read(["expire_quiescent_template"]) == {"expire_quiescent_template": 1}
    await director.until({"rs1": 1, "rs2": 1})
    first, *others = CLIENTS
    sticky = await fetch(first)
    other = "rs2" if sticky == "rs1" else "rs1"
    assert {await fetch(first) for _ in range(3)} == {sticky}  # persistence holds
    director.fail(sticky)
    await director.until({sticky: 0, other: 1})
    assert {await fetch(c) for c in others[:4]} == {other}
    # The template that tied the client to the quiesced real was expired: it moves on.
    assert {await fetch(first) for _ in range(3)} == {other}
