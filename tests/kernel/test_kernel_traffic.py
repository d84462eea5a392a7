"""End to end with real TCP traffic: a client, a NAT director and two HTTP reals in namespaces.

Every address below exists only inside network namespaces this test creates, in a VM that has
no network device at all (virtme-ng's default ``-net none``).
"""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import replace
from ipaddress import IPv4Address

import pytest

from ldirector.core.reconcile import diff
from ldirector.ipvs.netlink import NetlinkBackend, netns_socket
from ldirector.ipvs.types import (
    Dest,
    Forward,
    InetServiceKey,
    IpvsTable,
    Protocol,
    Service,
    ServiceKey,
    VirtualService,
)

from .vmtools import ipvsadm

pytestmark = pytest.mark.kernel

NS = {"client": "ldt-client", "director": "ldt-director", "rs1": "ldt-rs1", "rs2": "ldt-rs2"}
VIP = IPv4Address("10.77.1.100")
CLIENTS = [f"10.77.1.{i}" for i in range(2, 12)]
REALS = {"rs1": IPv4Address("10.77.2.2"), "rs2": IPv4Address("10.77.3.2")}
PERSISTENT = InetServiceKey(Protocol.TCP, VIP, 80)
PLAIN = InetServiceKey(Protocol.TCP, VIP, 8080)

SERVER = """
import http.server, sys
name = sys.argv[1].encode()
class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def do_GET(self):
        self.send_response(200)
        self.send_header("Content-Length", str(len(name)))
        self.end_headers()
        self.wfile.write(name)
    def log_message(self, *args):
        pass
http.server.ThreadingHTTPServer(("0.0.0.0", 80), Handler).serve_forever()
"""


def sh(*argv: str) -> None:
    done = subprocess.run(argv, capture_output=True, text=True, check=False, timeout=60)
    assert done.returncode == 0, f"{' '.join(argv)}: {done.stderr.strip()}"


def in_ns(name: str, *argv: str) -> None:
    sh("ip", "netns", "exec", NS[name], *argv)


def build_network() -> None:
    for ns in NS.values():
        sh("ip", "netns", "add", ns)
        sh("ip", "-n", ns, "link", "set", "lo", "up")
    links = [("client", "10.77.1.1/24"), ("rs1", "10.77.2.1/24"), ("rs2", "10.77.3.1/24")]
    for peer, director_addr in links:
        sh("ip", "link", "add", f"d-{peer}", "netns", NS["director"], "type", "veth",
           "peer", "name", "eth0", "netns", NS[peer])  # fmt: skip
        sh("ip", "-n", NS["director"], "addr", "add", director_addr, "dev", f"d-{peer}")
        sh("ip", "-n", NS["director"], "link", "set", f"d-{peer}", "up")
        sh("ip", "-n", NS[peer], "link", "set", "eth0", "up")
    sh("ip", "-n", NS["director"], "addr", "add", f"{VIP}/32", "dev", "d-client")
    in_ns("director", "sysctl", "-qw", "net.ipv4.ip_forward=1")
    for client in CLIENTS:
        sh("ip", "-n", NS["client"], "addr", "add", f"{client}/24", "dev", "eth0")
    for name, address in REALS.items():
        gateway = str(address).rsplit(".", 1)[0] + ".1"
        sh("ip", "-n", NS[name], "addr", "add", f"{address}/24", "dev", "eth0")
        sh("ip", "-n", NS[name], "route", "add", "default", "via", gateway)


def teardown_network() -> None:
    for ns in NS.values():
        subprocess.run(["ip", "netns", "del", ns], capture_output=True, check=False)


def connect(source: str, port: int, timeout: float = 5.0) -> socket.socket:
    """A TCP connection from one client address to the VIP."""
    sock = netns_socket(NS["client"], socket.AF_INET, socket.SOCK_STREAM)
    sock.settimeout(timeout)
    sock.bind((source, 0))
    sock.connect((str(VIP), port))
    return sock


def get(sock: socket.socket) -> str:
    """One HTTP/1.1 keep-alive request; the body names the real that answered."""
    sock.sendall(b"GET / HTTP/1.1\r\nHost: vip\r\n\r\n")
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(4096)
        if not chunk:
            raise ConnectionResetError("connection closed")
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    length = int(head.lower().split(b"content-length:")[1].split(b"\r\n")[0])
    while len(body) < length:
        body += sock.recv(4096)
    return body.decode()


def fetch(source: str, port: int = 80) -> str:
    with connect(source, port) as sock:
        return get(sock)


def toggle(setting: str) -> None:
    """Set an IPVS toggle in the director namespace the way an operator would, via the CLI."""
    in_ns("director", sys.executable, "-m", "ldirector.ipvs.toggles", setting)


@pytest.fixture
def network(vm: None) -> Iterator[None]:
    teardown_network()
    build_network()
    servers = [
        subprocess.Popen(["ip", "netns", "exec", NS[name], sys.executable, "-c", SERVER, name])
        for name in REALS
    ]
    try:
        deadline = time.monotonic() + 60
        for name, address in REALS.items():
            while True:
                sock = netns_socket(NS["director"], socket.AF_INET, socket.SOCK_STREAM)
                try:
                    sock.settimeout(2)
                    sock.connect((str(address), 80))
                    break
                except OSError:
                    assert time.monotonic() < deadline, f"{name}'s HTTP server did not start"
                    time.sleep(0.2)
                finally:
                    sock.close()
        yield
    finally:
        for server in servers:
            server.kill()
            server.wait(timeout=30)
        teardown_network()


@pytest.fixture
async def director(network: None) -> AsyncIterator[NetlinkBackend]:
    backend = NetlinkBackend(netns=NS["director"])
    await backend.dump()  # loads ip_vs, so the namespace gets its /proc/sys/net/ipv4/vs
    try:
        yield backend
    finally:
        await backend.close()


def table(key: ServiceKey, persistent: int | None, weights: dict[str, int]) -> VirtualService:
    dests = [
        Dest(address=REALS[name], port=80, forward=Forward.MASQ, weight=weight)
        for name, weight in weights.items()
    ]
    return VirtualService.of(Service(key=key, scheduler="rr", persistent=persistent), dests)


async def converge(backend: NetlinkBackend, *services: VirtualService) -> None:
    desired = IpvsTable.of(*services)
    await backend.apply(diff(desired, await backend.dump(), {PERSISTENT, PLAIN}))
    assert await backend.dump() == desired


async def test_quiescence_and_persistence_with_expire_quiescent_template(
    director: NetlinkBackend,
) -> None:
    toggle("expire_quiescent_template=0")
    await converge(director, table(PERSISTENT, 300, {"rs1": 1, "rs2": 1}))
    first, *others = CLIENTS
    sticky = fetch(first)
    other = "rs2" if sticky == "rs1" else "rs1"
    assert {fetch(first) for _ in range(3)} == {sticky}  # persistence holds

    await converge(director, table(PERSISTENT, 300, {sticky: 0, other: 1}))
    assert {fetch(client) for client in others} == {other}  # weight 0: no new clients
    assert fetch(first) == sticky  # the template still leads to the quiesced real

    toggle("expire_quiescent_template=1")
    assert fetch(first) == other  # the template was expired; the client was rescheduled


async def test_expire_nodest_conn_ends_established_connections(director: NetlinkBackend) -> None:
    toggle("expire_nodest_conn=1")
    await converge(director, table(PLAIN, None, {"rs1": 1, "rs2": 1}))
    sock = connect(CLIENTS[0], 8080)
    try:
        served = get(sock)
        assert get(sock) == served  # the same established connection keeps working
        survivor = "rs2" if served == "rs1" else "rs1"
        await converge(director, table(PLAIN, None, {survivor: 1}))
        sock.settimeout(15)
        with pytest.raises((ConnectionResetError, ConnectionAbortedError)):
            get(sock)
    finally:
        sock.close()
    assert fetch(CLIENTS[1], 8080) == survivor
    assert "TCP" not in ipvsadm("-L", "-n")  # the VM's own table was never touched
    stats = (await director.dump())[PLAIN].dests
    assert list(stats) == [replace(Dest(address=REALS[survivor], port=80), weight=1).key]
