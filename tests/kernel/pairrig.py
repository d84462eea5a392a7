"""The pair suite's rig: two NAT directors, a client and two reals in namespaces of one VM.

IPVS is per network namespace, so one VM holds a whole director pair::

    client 192.0.2.50 --- [brext] --- eth1 director1 .11 / director2 .12   (VIP 192.0.2.20)
    reals 198.51.100.21/.22 --- [brint] --- eth0 director1 .11 / director2 .12  (GW .1)

Both bridges live in a namespace of their own (``ldp-hub``), so "bringing a director's link
down" is setting its two bridge ports down, as a pulled cable would. Each director runs
``ldirector`` with ``examples/pair.cf`` (only its log file moved) and Debian's keepalived, VRRP
only, with ``contrib/keepalived-pair.conf`` (the second director with the changes its comments
name). The reals' default gateway 198.51.100.1 moves with the VIP. The sync daemons use eth0.

The reals are one asyncio process serving both reals' namespaces: a line echo, except that a
connection starting ``GET `` (the directors' health checks) is answered ``ok``. The client is a
process in its own namespace holding long-lived connections that exchange a line every 100 ms
and opening short ones at a steady rate; it reports on SIGUSR1. Every address exists only
inside these namespaces, in a VM with no network device.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from ldirector.ipvs.netlink import netns_socket
from tests.support.servers import need

from .faultrig import Spawned, ip_batch
from .faultwatch import Notify
from .pairscripts import CLIENT_SCRIPT, REALS_SERVER
from .vmtools import inside_netns, proc_ip_vs

ROOT = Path(__file__).resolve().parents[2]
PAIR_CF = ROOT / "examples" / "pair.cf"
KEEPALIVED_CONF = ROOT / "contrib" / "keepalived-pair.conf"
ARTIFACTS = ROOT / "artifacts" / "kernel"

HUB = "ldp-hub"
CLIENT_NS = "ldp-client"
DIRECTORS = {"director1": "ldp-d1", "director2": "ldp-d2"}
REALS = {"rs1": "ldp-rs1", "rs2": "ldp-rs2"}
VIP = "192.0.2.20"
GW = "198.51.100.1"
PORT = 80
EXT = {"director1": "192.0.2.11", "director2": "192.0.2.12"}
INT = {"director1": "198.51.100.11", "director2": "198.51.100.12"}
CLIENT = "192.0.2.50"
REAL_ADDR = {"rs1": "198.51.100.21", "rs2": "198.51.100.22"}

#: Every helper process ends by itself after this many seconds, whatever happens to the test.
LIFETIME = 900.0
#: Generous bounds under emulation: waits end early when things work.
START_WAIT = 240.0
WAIT = 60.0
LDIRECTOR = str(Path(sys.executable).parent / "ldirector")
STATE = re.compile(r"\((\w+)\) Entering (\w+) STATE")

# --- the network ------------------------------------------------------------------------------


def build_network() -> None:
    """The namespaces, the two bridges in the hub and every link; one ``ip -batch`` each."""
    names = [HUB, CLIENT_NS, *DIRECTORS.values(), *REALS.values()]
    ip_batch([f"netns add {name}" for name in names])
    hub = [
        "link set lo up",
        "link add brext type bridge",
        "link add brint type bridge",
        "link set brext up",
        "link set brint up",
    ]

    def port(name: str, bridge: str, peer: str, ns: str) -> None:
        hub.extend(
            [
                f"link add {name} type veth peer name {peer} netns {ns}",
                f"link set {name} master {bridge}",
                f"link set {name} up",
            ]
        )

    port("x-client", "brext", "eth0", CLIENT_NS)
    for director, ns in DIRECTORS.items():
        port(f"x-{director}", "brext", "eth1", ns)
        port(f"i-{director}", "brint", "eth0", ns)
    for real, ns in REALS.items():
        port(f"i-{real}", "brint", "eth0", ns)
    ip_batch(hub, HUB)
    ip_batch(["link set lo up", "link set eth0 up", f"addr add {CLIENT}/24 dev eth0"], CLIENT_NS)
    for director, ns in DIRECTORS.items():
        ip_batch(
            [
                "link set lo up",
                f"addr add {INT[director]}/24 dev eth0",
                f"addr add {EXT[director]}/24 dev eth1",
                "link set eth0 up",
                "link set eth1 up",
            ],
            ns,
        )
        with inside_netns(ns):
            Path("/proc/sys/net/ipv4/ip_forward").write_text("1\n")
    for real, ns in REALS.items():
        ip_batch(
            [
                "link set lo up",
                "link set eth0 up",
                f"addr add {REAL_ADDR[real]}/24 dev eth0",
                f"route add default via {GW}",
            ],
            ns,
        )


def teardown_network() -> None:
    for name in [CLIENT_NS, *DIRECTORS.values(), *REALS.values(), HUB]:
        subprocess.run(["ip", "netns", "del", name], capture_output=True, check=False, timeout=60)


def set_links(director: str, up: bool) -> None:
    """A director's two bridge ports down (its cables pulled) or up again."""
    word = "up" if up else "down"
    ip_batch([f"link set x-{director} {word}", f"link set i-{director} {word}"], HUB)


def holds_vip(director: str) -> bool:
    """Whether the VIP is an address of ``director`` now: a bind to it succeeds only then."""
    with contextlib.closing(
        netns_socket(DIRECTORS[director], socket.AF_INET, socket.SOCK_DGRAM)
    ) as sock:
        try:
            sock.bind((VIP, 0))
        except OSError:
            return False
        return True


def wait_vip(director: str, timeout: float = WAIT, *, held: bool = True) -> float:
    """The monotonic time ``director`` was first seen holding (or not holding) the VIP."""
    deadline = time.monotonic() + timeout
    while True:
        now = time.monotonic()
        if holds_vip(director) == held:
            return now
        assert now < deadline, f"{director} {'never got' if held else 'kept'} the VIP"
        time.sleep(0.02)


# --- configuration ----------------------------------------------------------------------------


def ldirector_config(logfile: Path, *, sync: bool) -> str:
    """examples/pair.cf with its log file moved; without sync, no sync directives at all."""
    lines = []
    for line in PAIR_CF.read_text().splitlines():
        if line.startswith("logfile"):
            line = f'logfile = "{logfile}"'
        if not sync and line.startswith(("syncdaemon", "syncid")):
            continue
        lines.append(line)
    return "\n".join(lines) + "\n"


def keepalived_config(director: str) -> str:
    """contrib/keepalived-pair.conf; for director2, each value marked ``# second director: X``
    becomes X (the word before the comment is the one replaced)."""
    text = KEEPALIVED_CONF.read_text()
    if director == "director1":
        return text
    out = []
    for line in text.splitlines():
        head, mark, new = line.partition("# second director: ")
        if mark:
            kept = head.rstrip()
            cut = max(kept.rfind(" "), kept.rfind("\t"))
            line = kept[: cut + 1] + new.strip()
        out.append(line)
    return "\n".join(out) + "\n"


# --- the processes ----------------------------------------------------------------------------


class Director:
    """``ldirector CONFIG start`` in a director's namespace, as systemd runs it."""

    def __init__(self, name: str, workdir: Path, pycache: Path) -> None:
        self.name = name
        self.ns = DIRECTORS[name]
        self.workdir = workdir
        workdir.mkdir(parents=True, exist_ok=True)
        (workdir / "run").mkdir(exist_ok=True)
        # One file name per director: the state files under /run/ldirector are named after it.
        self.config = workdir / f"{name}.cf"
        self.logfile = workdir / "ldirector.log"
        self.notify = Notify(workdir / "notify.sock")
        self.output = workdir / "daemon.out"
        self.process: subprocess.Popen[bytes] | None = None
        self.sync: bool | None = None
        drop = ("PYTHONDONTWRITEBYTECODE", "NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID")
        self.env = {k: v for k, v in os.environ.items() if k not in drop}
        self.env.update(
            PYTHONPYCACHEPREFIX=str(pycache),
            LDIRECTOR_RUN_DIR=str(workdir / "run"),
            TZ="UTC",
            NOTIFY_SOCKET=str(self.notify.path),
        )

    def write(self, sync: bool) -> None:
        scratch = self.config.with_suffix(".new")
        scratch.write_text(ldirector_config(self.logfile, sync=sync))
        os.replace(scratch, self.config)
        self.sync = sync

    def launch(self) -> None:
        self.notify.clear()
        with self.output.open("ab") as stream:
            self.process = subprocess.Popen(
                ["ip", "netns", "exec", self.ns, LDIRECTOR, str(self.config), "start"],
                env=self.env,
                stdin=subprocess.DEVNULL,
                stdout=stream,
                stderr=subprocess.STDOUT,
            )

    def ready(self, timeout: float = START_WAIT) -> None:
        deadline = time.monotonic() + timeout
        while not self.notify.wait("READY=1", 1.0):
            assert self.process is not None and self.process.poll() is None, (
                f"{self.name}'s ldirector exited: {self.tail()}"
            )
            assert time.monotonic() < deadline, f"{self.name}'s ldirector not ready"

    def reload(self, sync: bool) -> None:
        assert self.process is not None
        self.write(sync)
        self.notify.clear()
        self.process.send_signal(signal.SIGHUP)
        assert self.notify.wait("RELOADING=1", WAIT), f"{self.name}: no RELOADING=1"
        assert self.notify.wait("READY=1", WAIT), f"{self.name}: no READY=1 after reload"

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=30)
        self.notify.close()

    def tail(self) -> str:
        texts = []
        for path in (self.output, self.logfile):
            with contextlib.suppress(OSError):
                texts.append(path.read_text(errors="replace")[-2000:])
        return "\n".join(texts)

    def _proc(self, name: str) -> str:
        assert self.process is not None
        return Path(f"/proc/{self.process.pid}/net/{name}").read_text(errors="replace")

    def table(self) -> dict[str, int]:
        """The kernel's own listing of this director's web service: real -> weight."""
        return proc_ip_vs(self._proc("ip_vs")).get(f"TCP {VIP}:{PORT}", {})

    def connections(self) -> int:
        """Established TCP connections from the client to the VIP in this director's IPVS."""
        client, vip = _hex(CLIENT), _hex(VIP)
        return sum(
            1
            for line in self._proc("ip_vs_conn").splitlines()[1:]
            if (w := line.split())[:2] == ["TCP", client] and w[3] == vip and w[7] == "ESTABLISHED"
        )

    def daemons(self) -> list[str]:
        """The sync daemons the kernel runs here, as ipvsadm lists them."""
        done = subprocess.run(
            ["ip", "netns", "exec", self.ns, "ipvsadm", "-L", "--daemon"],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        return sorted(line.split(" sync daemon")[0] for line in done.stdout.splitlines() if line)


def _hex(address: str) -> str:
    return "".join(f"{int(part):02X}" for part in address.split("."))


class Keepalived:
    """Debian's keepalived, VRRP only, in a director's namespace; its log in a file."""

    def __init__(self, director: str, workdir: Path) -> None:
        self.director = director
        self.ns = DIRECTORS[director]
        self.workdir = workdir
        self.conf = workdir / "keepalived.conf"
        self.conf.write_text(keepalived_config(director))
        self.log = workdir / "keepalived.log"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        argv = [
            "ip", "netns", "exec", self.ns, need("keepalived"), "--vrrp", "--dont-fork",
            "--log-console", "--log-detail", "-f", str(self.conf),
            "-p", str(self.workdir / "keepalived.pid"), "-r", str(self.workdir / "vrrp.pid"),
        ]  # fmt: skip
        with self.log.open("ab") as stream:
            self.process = subprocess.Popen(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=stream,
                stderr=subprocess.STDOUT,
            )

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def stop(self) -> None:
        """SIGTERM: keepalived drops the VIP and sends a priority-0 advertisement."""
        if self.running:
            assert self.process is not None
            self.process.terminate()
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)

    def states(self) -> list[str]:
        with contextlib.suppress(OSError):
            return [m.group(2) for m in STATE.finditer(self.log.read_text(errors="replace"))]
        return []

    def wait_state(self, word: str, timeout: float = WAIT) -> None:
        """Wait for the instance's latest state to be ``word`` (MASTER, BACKUP, FAULT)."""
        deadline = time.monotonic() + timeout
        while (self.states() or [""])[-1] != word:
            assert self.running, f"{self.director}'s keepalived exited: {self.tail()}"
            assert time.monotonic() < deadline, (
                f"{self.director}'s keepalived is not {word}: {self.tail()}"
            )
            time.sleep(0.1)

    def tail(self) -> str:
        with contextlib.suppress(OSError):
            return self.log.read_text(errors="replace")[-1500:]
        return ""


@dataclass
class Report:
    """One client report: what happened since the previous one."""

    at: float
    conns: list[dict[str, object]]
    requests: list[list[object]]

    def errors(self) -> list[str]:
        return [str(c["error"]) for c in self.conns if c["error"] is not None]

    def longest_gap(self) -> float:
        return max(float(str(c["gap"])) for c in self.conns)

    def stalled(self, bar: float) -> int:
        return sum(1 for c in self.conns if c["error"] is None and float(str(c["gap"])) > bar)

    def echoed(self) -> int:
        """Connections that exchanged data in this window."""
        return sum(1 for c in self.conns if int(str(c["echoes"])) > 0)

    def requests_after(self, when: float) -> tuple[int, list[str]]:
        """Short requests started at or after ``when``: how many, and the failures."""
        after = [r for r in self.requests if float(str(r[0])) >= when]
        return len(after), [str(r[2]) for r in after if r[2] is not None]

    def misses(self, name: str, bar: float, since: float, conns: int) -> list[str]:
        """What misses a pair's bar in this window: a connection that ended, one silent for
        longer than ``bar`` seconds, fewer than ``conns`` exchanging data, or a short request
        started at or after ``since`` that failed (or none started)."""
        sent, failed = self.requests_after(since)
        errors = self.errors()
        problems = []
        if errors:
            problems.append(f"{name}: {len(errors)} connections ended: {sorted(set(errors))[:3]}")
        if self.stalled(bar):
            problems.append(f"{name}: {self.stalled(bar)} connections stalled > {bar:.2f} s")
        if self.echoed() != conns:
            problems.append(f"{name}: only {self.echoed()} connections exchanged data")
        if failed or not sent:
            problems.append(f"{name}: {len(failed)} of {sent} new requests failed: {failed[:3]}")
        return problems


@dataclass
class Client:
    process: Spawned
    reports: list[Report] = field(default_factory=list)

    def report(self) -> Report:
        self.process.process.send_signal(signal.SIGUSR1)
        line = self.process.expect("report", WAIT)
        data = json.loads(line.split(" ", 1)[1])
        got = Report(data["at"], data["conns"], data["requests"])
        self.reports.append(got)
        return got

    def stop(self) -> None:
        if self.process.process.poll() is None:
            self.process.process.send_signal(signal.SIGTERM)
            with contextlib.suppress(AssertionError):
                self.process.expect("done", WAIT)
        self.process.kill()


def start_client(conns: int, period: float, rate: float) -> Client:
    argv = [
        "ip", "netns", "exec", CLIENT_NS, sys.executable, "-c", CLIENT_SCRIPT,
        VIP, str(PORT), str(conns), f"{period:g}", f"{rate:g}", str(LIFETIME),
    ]  # fmt: skip
    spawned = Spawned(argv, "client")
    up = int(spawned.expect("ready", START_WAIT).split()[1])
    client = Client(spawned)
    if up != conns:
        client.stop()
        raise AssertionError(f"only {up} of {conns} long-lived connections came up")
    return client


def start_reals() -> Spawned:
    argv = [sys.executable, "-c", REALS_SERVER, str(LIFETIME), *REALS.values()]
    spawned = Spawned(argv, "reals")
    spawned.expect("ready", START_WAIT)
    return spawned


class Pair:
    """Both directors (ldirector and keepalived each), the reals; built by :func:`running`."""

    def __init__(self, workdir: Path, pycache: Path) -> None:
        self.ldirector = {n: Director(n, workdir / n, pycache) for n in DIRECTORS}
        self.keepalived = {n: Keepalived(n, workdir / n) for n in DIRECTORS}

    def wait_tables(self, timeout: float = START_WAIT) -> None:
        """Both directors route the VIP to both reals: the standby's table is warm too."""
        want = {f"{a}:{PORT}" for a in REAL_ADDR.values()}
        deadline = time.monotonic() + timeout
        for director in self.ldirector.values():
            while {r for r, w in director.table().items() if w > 0} != want:
                assert time.monotonic() < deadline, (
                    f"{director.name}'s table is {director.table()}: {director.tail()}"
                )
                time.sleep(0.2)

    def wait_daemons(self, want: list[str], timeout: float = WAIT) -> None:
        deadline = time.monotonic() + timeout
        for director in self.ldirector.values():
            while (got := director.daemons()) != want:
                assert time.monotonic() < deadline, f"{director.name} runs {got}, want {want}"
                time.sleep(0.5)

    def prepare(self, *, sync: bool) -> None:
        """Both ldirectors on the config (with or without sync), both keepalived running and
        director1 holding the VIP, both links up."""
        for director in self.ldirector.values():
            if director.sync != sync:
                director.reload(sync)
        self.wait_daemons(["backup", "master"] if sync else [])
        for name in DIRECTORS:
            set_links(name, True)
            if not self.keepalived[name].running:
                self.keepalived[name].start()
        if not holds_vip("director1"):
            # nopreempt: director2 hands the VIP back only when its keepalived stops.
            self.keepalived["director2"].stop()
            wait_vip("director1")
            self.keepalived["director2"].start()
        self.keepalived["director2"].wait_state("BACKUP")
        wait_vip("director2", held=False)
        self.wait_tables()


def lab(stack: contextlib.ExitStack) -> None:
    """The pair's network, built afresh, and the reals serving on it; ``stack`` undoes both."""
    teardown_network()
    stack.callback(teardown_network)
    build_network()
    reals = start_reals()
    stack.callback(reals.kill)


@contextlib.contextmanager
def running(workdir: Path, pycache: Path) -> Iterator[Pair]:
    """Build the network, start the reals, both ldirectors (with sync) and both keepalived."""
    with contextlib.ExitStack() as stack:
        lab(stack)
        pair = Pair(workdir, pycache)
        for director in pair.ldirector.values():
            director.write(sync=True)
            director.launch()
            stack.callback(director.stop)
        for director in pair.ldirector.values():
            director.ready()
        pair.keepalived["director1"].start()
        stack.callback(pair.keepalived["director1"].stop)
        pair.keepalived["director1"].wait_state("MASTER")
        pair.keepalived["director2"].start()
        for name in DIRECTORS:
            stack.callback(pair.keepalived[name].stop)
        pair.prepare(sync=True)
        yield pair


def record(text: str, into: str = "pair.txt") -> None:
    """Print a figure and append it to artifacts/kernel/``into``."""
    print(text, flush=True)
    with contextlib.suppress(OSError):
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        with (ARTIFACTS / into).open("a") as stream:
            stream.write(text + "\n")
