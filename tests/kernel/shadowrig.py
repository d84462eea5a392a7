"""The shadow suite's rig: Debian's ldirectord (the Perl program, for real) and ldirector side
by side on the fault suite's network (``faultrig``: a director namespace the test's thread
enters, a client and three reals each in a namespace of their own).

Each real runs ``vmtools.HEALTH_SERVER`` (``GET /health`` answers ``ok`` until a flag file
named after the server exists; any other path answers the server's name), so a real "fails" for
both managers' checks while the traffic a client sends it still gets answered. rs3 runs a
second server on port 8080 (``rs3-8080``) for a gate real on a port other than the virtual's.

ldirectord runs as its init script runs it: ``ldirectord CONFIG start`` daemonizes and writes
``/run/ldirectord.<name>.pid`` (``/run`` is a tmpfs in the VM); its log goes to the file the
config's ``logfile=`` names. Every program start costs seconds under emulation (ldirectord's
Perl about 9 s), so only the steps the procedure under test names go through a command line;
elsewhere the rig sends the signal that command would send (HUP for reload, TERM for stop).
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from ldirector.control.protocol import Verb, request, socket_path
from ldirector.observe.shadow import from_json, render_text

from .faultrig import (
    ADDR,
    DIRECTOR,
    LDIRECTOR,
    NS,
    START_WAIT,
    VIP,
    Daemon,
    Spawned,
    build_network,
    in_ns,
    teardown_network,
)
from .faultscripts import CLIENT
from .faultwatch import Notify
from .vmtools import HEALTH_SERVER, inside_netns, ipvsadm, proc_ip_vs, sh

__all__ = ["DIRECTOR", "teardown_network"]

LDIRECTORD = "/usr/sbin/ldirectord"
CFGNAME = "ldirectord.cf"
#: ldirectord's pid file: its directory is fixed, its name comes from the config's file name.
PID_FILE = Path(f"/run/ldirectord.{CFGNAME}.pid")
SHADOW_NAME = f"{CFGNAME}.shadow"
CHECKINTERVAL = 1
CHECKTIMEOUT = 3
#: Every helper process ends by itself after this many seconds, whatever happens to the test.
LIFETIME = 1800
#: The client's requests a second.
RATE = 10
#: The servers: (namespace, port, name); a flag file named after the name fails its checks.
SERVERS = (("rs1", 80, "rs1"), ("rs2", 80, "rs2"), ("rs3", 80, "rs3"), ("rs3", 8080, "rs3-8080"))
#: A table as the kernel lists it (``/proc/net/ip_vs``): service -> real -> weight.
Table = dict[str, dict[str, int]]


#: ``vmtools.HEALTH_SERVER``, ending by itself after :data:`LIFETIME` seconds.
BOUNDED = [
    sys.executable,
    "-c",
    f"import os, threading\nthreading.Timer({LIFETIME}, os._exit, (0,)).start()\n" + HEALTH_SERVER,
]


def rs(name: str, port: int = 80) -> str:
    return f"{ADDR[name]}:{port}"


def svc(port: int) -> str:
    """A virtual service as ``/proc/net/ip_vs`` names it."""
    return f"TCP {VIP}:{port}"


def virtual(port: int, reals: list[str], *extra: str, quiescent: str = "no") -> str:
    """One HTTP virtual on the VIP, checked with ``GET /health``; ``extra`` lines go inside."""
    lines = [
        f"virtual={VIP}:{port}",
        *(f"\treal={r}" for r in reals),
        "\tservice=http",
        '\trequest="/health"',
        '\treceive="ok"',
        "\tscheduler=rr",
        f"\tquiescent={quiescent}",
        *(f"\t{line}" for line in extra),
    ]
    return "\n".join(lines) + "\n"


def config_text(logfile: Path, virtuals: list[str], *, cleanstop: str = "no") -> str:
    """A config both programs read: only directives ldirectord knows."""
    return (
        f"checkinterval={CHECKINTERVAL}\n"
        f"checktimeout={CHECKTIMEOUT}\n"
        f"cleanstop={cleanstop}\n"
        f'logfile="{logfile}"\n' + "".join(virtuals)
    )


def kernel() -> Table:
    """The director's table as the kernel lists it (this thread is in the director)."""
    with open("/proc/thread-self/net/ip_vs", encoding="ascii", errors="replace") as stream:
        return proc_ip_vs(stream.read(1 << 20))


def saved() -> list[str]:
    """``ipvsadm -S -n``, its lines sorted (ldirectord adds reals in Perl's hash order)."""
    return sorted(ipvsadm("-S", "-n").splitlines())


def settle(want: Table, timeout: float, hold: float = 1.5) -> float:
    """Wait until the kernel holds ``want`` and has kept it for ``hold`` seconds; returns the
    wall-clock time it got there. Fails with the table it last saw."""
    deadline = time.monotonic() + timeout
    since: float | None = None
    wall = 0.0
    seen: Table = {}
    while time.monotonic() < deadline:
        seen = kernel()
        if seen == want:
            if since is None:
                since, wall = time.monotonic(), time.time()
            elif time.monotonic() - since >= hold:
                return wall
        else:
            since = None
        time.sleep(0.2)
    raise AssertionError(f"the kernel did not settle on {want} within {timeout:g} s: {seen}")


class Ldirectord:
    """Debian's ldirectord on one config file, started and stopped as its init script does."""

    def __init__(self, config: Path) -> None:
        self.config = config
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}
        self.outputs: list[str] = []

    def cli(self, *args: str) -> subprocess.CompletedProcess[str]:
        """``ldirectord CONFIG ARGS...`` as an operator runs it (about 9 s under emulation)."""
        done = subprocess.run(
            [LDIRECTORD, str(self.config), *args],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        self.outputs.append(f"$ ldirectord {' '.join(args)}: exit {done.returncode}\n"
                            f"{done.stdout}{done.stderr}")  # fmt: skip
        return done

    @property
    def pid(self) -> int | None:
        """The daemon's pid while it runs (a zombie left to init counts as gone)."""
        try:
            pid = int(PID_FILE.read_text().split()[0])
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except (OSError, ValueError, IndexError):
            return None
        return None if state in ("Z", "X") else pid

    def start(self) -> None:
        done = self.cli("start")
        assert done.returncode == 0, self.outputs[-1]
        deadline = time.monotonic() + 60
        while self.pid is None:
            assert time.monotonic() < deadline, f"ldirectord did not start: {self.outputs[-1]}"
            time.sleep(0.2)

    def signal(self, sig: signal.Signals) -> None:
        """What ``ldirectord CONFIG reload`` (HUP) and ``stop`` (TERM) send."""
        pid = self.pid
        assert pid is not None, "ldirectord is not running"
        os.kill(pid, sig)

    def wait_gone(self, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while self.pid is not None:
            assert time.monotonic() < deadline, f"ldirectord still runs after {timeout:g} s"
            time.sleep(0.2)

    def stop(self) -> None:
        """TERM (ldirectord's stop sends nothing else), then wait until it is gone."""
        pid = self.pid
        if pid is not None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)
            self.wait_gone()


class Instance(Daemon):
    """ldirector as systemd runs it (``faultrig.Daemon``), with leading options such as
    ``--shadow``."""

    def __init__(self, config: Path, workdir: Path, notify: Notify, *options: str) -> None:
        super().__init__(config, workdir, notify)
        self.options = options

    def launch(self) -> None:
        """Start it, without waiting for it to be ready (:meth:`ready`)."""
        self.notify.clear()
        out = self.workdir / f"{self.config.name}{''.join(self.options)}-{len(self.outputs)}.out"
        self.outputs.append(out)
        self.began = time.monotonic()
        with out.open("wb") as stream:
            self.process = subprocess.Popen(
                [LDIRECTOR, *self.options, str(self.config), "start"],
                env=self.env,
                stdin=subprocess.DEVNULL,
                stdout=stream,
                stderr=subprocess.STDOUT,
            )

    def ready(self) -> float:
        """Wait for READY=1 after :meth:`launch`; returns the seconds since the launch."""
        out = self.outputs[-1]
        while not self.notify.wait("READY=1", 1.0):
            assert self.alive, f"ldirector exited: {out.read_text(errors='replace')[-2000:]}"
            took = time.monotonic() - self.began
            assert took < START_WAIT, f"not ready after {START_WAIT:g} s"
        return time.monotonic() - self.began

    def start(self) -> float:
        self.launch()
        return self.ready()


def status(cfgname: str) -> dict[str, Any]:
    """What ``ldirector [--shadow] CONFIG status --json`` prints, asked on the control socket
    from this process (a second Python start costs 20 s under emulation)."""
    reply = request(socket_path(cfgname), {"cmd": Verb.STATUS}, timeout=30)
    doc = reply["status"]
    assert isinstance(doc, dict), reply
    return doc


class Timeline:
    """Seconds since a test began, per step: where the VM's time goes."""

    def __init__(self) -> None:
        self.began = time.monotonic()
        self.marks: list[str] = []

    def __call__(self, what: str) -> None:
        self.marks.append(f"+{time.monotonic() - self.began:.0f}s {what}")

    def line(self) -> str:
        return "timeline: " + "; ".join(self.marks)


def shadow_agrees(since: float, timeout: float = 30) -> dict[str, Any]:
    """Wait for the shadow to report agreement from a comparison made after ``since`` (wall
    clock), and for its fresh view of the table to match; returns its status document."""
    deadline = time.monotonic() + timeout
    doc: dict[str, Any] = {}
    while time.monotonic() < deadline:
        doc = status(SHADOW_NAME)
        report = doc["shadow"]
        if doc["matches"] and report["agrees"] and report["now"] >= since + 2.0:
            return doc
        time.sleep(0.5)
    raise AssertionError(f"the shadow does not report agreement: {shadow_text(doc)}")


def stamp(when: float) -> str:
    return time.strftime("%H:%M:%S", time.gmtime(when))


def shadow_text(doc: dict[str, Any]) -> str:
    """The shadow's section of ``status -v``, from a status document."""
    if "shadow" not in doc:
        return f"no shadow report in {doc}"
    return render_text(from_json(doc["shadow"]), stamp)


class Rig:
    """The network, the real servers' flags, the config file and both programs."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.flags = workdir / "flags"
        self.logfile = workdir / "log" / "ldirectord.log"
        self.config = workdir / CFGNAME
        self.ldirectord = Ldirectord(self.config)
        self.shadow = Instance(self.config, workdir, Notify(workdir / "shadow.sock"), "--shadow")
        self.live = Instance(self.config, workdir, Notify(workdir / "live.sock"))

    def write_config(self, virtuals: list[str], *, cleanstop: str = "no") -> None:
        scratch = self.config.with_suffix(".new")
        scratch.write_text(config_text(self.logfile, virtuals, cleanstop=cleanstop))
        os.replace(scratch, self.config)

    def fail(self, *names: str) -> None:
        for name in names:
            (self.flags / name).touch()

    def recover(self, *names: str) -> None:
        for name in names:
            (self.flags / name).unlink(missing_ok=True)

    def settle(self, want: Table, timeout: float, hold: float = 1.5) -> float:
        """:func:`settle`, failing with the end of the log (what the managers said)."""
        try:
            return settle(want, timeout, hold)
        except AssertionError as exc:
            raise AssertionError(f"{exc}\nthe log ends with:\n{self.log()[-3000:]}") from None

    def client(self, out: Path) -> Spawned:
        """A client sending :data:`RATE` requests a second through the VIP's port 80, each on a
        connection of its own (``faultscripts.CLIENT``), its lines in ``out``; ready."""
        argv = in_ns("client", CLIENT, VIP, "80", str(RATE), str(LIFETIME), "5", str(out))
        client = Spawned(argv, "client")
        try:
            client.expect("ready", START_WAIT)
        except BaseException:
            client.kill()
            raise
        return client

    def reset(self) -> None:
        """Every program stopped, every real healthy, the table empty."""
        self.ldirectord.stop()
        self.shadow.stop()
        self.live.stop()
        for flag in self.flags.iterdir():
            flag.unlink()
        ipvsadm("-C")

    def log(self, since: int = 0) -> str:
        with contextlib.suppress(OSError):
            return self.logfile.read_text(errors="replace")[since:]
        return ""


@contextlib.contextmanager
def running(workdir: Path) -> Iterator[Rig]:
    """Inside the director's namespace: build the network, start the real servers; stop every
    program at the end."""
    with contextlib.ExitStack() as stack:
        rig = Rig(workdir)
        rig.flags.mkdir()
        rig.logfile.parent.mkdir()
        for notify in (rig.shadow.notify, rig.live.notify):
            stack.callback(notify.close)
        build_network()
        flags = str(rig.flags)
        servers = [
            Spawned(["ip", "netns", "exec", NS[ns], *BOUNDED, name, flags, str(port)], name)
            for ns, port, name in SERVERS
        ]
        for server in servers:
            stack.callback(server.kill)
        for server in servers:
            server.expect("ready", START_WAIT)
        stack.callback(rig.reset)
        yield rig


@contextlib.contextmanager
def director(workdir: Path) -> Iterator[Rig]:
    """The rig, with this thread in the director's namespace; the network goes at the end."""
    teardown_network()
    sh("ip", "netns", "add", DIRECTOR)
    try:
        with inside_netns(DIRECTOR), running(workdir) as rig:
            yield rig
    finally:
        teardown_network()


def waited(what: Callable[[], bool], timeout: float, message: str) -> None:
    """Poll ``what`` every 0.2 s until it holds; fail with ``message`` after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while not what():
        assert time.monotonic() < deadline, message
        time.sleep(0.2)
