"""The fault suite's rig: a NAT director in namespaces, three HTTP reals, hostile reals, a client
sending a steady stream of requests through the VIP, and the real daemon (``ldirector CONFIG
start``, the netlink backend, run the way systemd runs it: in the foreground with
``NOTIFY_SOCKET``, its log in a file).

The director is a namespace the test's thread enters for the module (``inside_netns``), so the
daemon, ipvsadm, the status-page flood and the dead SMTP server are born there; the client and
the reals each live in a namespace of their own. Every address exists only inside those
namespaces, in a VM without any network device. The daemon's state directories
(``/run/ldirector``, ``/var/lib/ldirector``) are small tmpfs mounts the suite can fill.
"""

from __future__ import annotations

import contextlib
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

from . import faultscripts
from .faultwatch import ClientLog, KernelView, Notify, Row, Sampler, format_table, tracebacks
from .vmtools import sh

DIRECTOR = "ldf-director"
NS = {p: f"ldf-{p}" for p in ("client", "rs1", "rs2", "rs3", "hostile")}
SUBNET = {"client": 1, "rs1": 2, "rs2": 3, "rs3": 4, "hostile": 5}
VIP = "10.81.1.100"
CLIENT = "10.81.1.2"
ADDR = {"rs1": "10.81.2.2", "rs2": "10.81.3.2", "rs3": "10.81.4.2", "hostile": "10.81.5.2"}
#: rs1 and rs2 stay healthy throughout; rs3 is the real each fault makes fail and come back.
HEALTHY = ("rs1", "rs2")
VICTIM = "rs3"
SERVICE = f"TCP {VIP}:80"

CHECKINTERVAL = 1.0
CHECKTIMEOUT = 2.0
RESYNC = 2.0
#: The bar: a real's failure is in the kernel within one interval plus one timeout plus 1 s.
BAR = CHECKINTERVAL + CHECKTIMEOUT + 1.0
RATE = 25.0
#: A request's bound. TCP resends a lost SYN after 1 s and again 2 s later, so a connection
#: whose SYN the emulated network lost twice needs 3 s and more; a reply still missing after
#: 10 s is a request lost.
REQUEST_TIMEOUT = 10.0
#: Every helper process ends by itself after this many seconds, whatever happens to the test.
LIFETIME = 3600.0
STATUS_PORT = 9555
SMTP_REFUSED = 2525
SMTP_HOLE = 2526
STATE_DIRS = (Path("/run/ldirector"), Path("/var/lib/ldirector"))
STATE_SIZE = "64k"
#: Generous bounds under emulation: waits that end early when things work.
START_WAIT = 240.0
RELOAD_WAIT = 60.0
UP_WAIT = 20.0
LDIRECTOR = str(Path(sys.executable).parent / "ldirector")


def real(name: str) -> str:
    return f"{ADDR[name]}:80"


def config_text(logfile: Path, *, weight: int = 1, globals_: str = "", virtuals: str = "") -> str:
    """The director's config: one web service with the three reals, plus ``virtuals``."""
    return (
        f"checkinterval={CHECKINTERVAL:g}\n"
        f"checktimeout={CHECKTIMEOUT:g}\n"
        f"negotiatetimeout={CHECKTIMEOUT:g}\n"
        f"resyncinterval={RESYNC:g}\n"
        "quiescent=no\n"
        "cleanstop=no\n"
        f'logfile="{logfile}"\n'
        f"httpstatus=127.0.0.1:{STATUS_PORT}\n"
        f"{globals_}"
        f"virtual={VIP}:80\n"
        f"\treal={real('rs1')} masq {weight}\n"
        f"\treal={real('rs2')} masq 1\n"
        f"\treal={real('rs3')} masq 1\n"
        "\tservice=http\n"
        '\trequest="/health"\n'
        '\treceive="ok"\n'
        "\tscheduler=rr\n"
        f"{virtuals}"
    )


def ip_batch(commands: list[str], netns: str | None = None) -> None:
    argv = ["ip", *(["-n", netns] if netns else []), "-batch", "-"]
    done = subprocess.run(
        argv, input="\n".join(commands) + "\n", capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, f"{' '.join(argv)}: {done.stderr.strip()}"


def build_network() -> None:
    """The peers and their links; run inside the director's namespace. One ``ip -batch`` per
    namespace: under emulation every process start costs about a second."""
    director = ["link set lo up"]
    for peer, name in NS.items():
        subnet = SUBNET[peer]
        director += [
            f"netns add {name}",
            f"link add f-{peer} type veth peer name eth0 netns {name}",
            f"addr add 10.81.{subnet}.1/24 dev f-{peer}",
            f"link set f-{peer} up",
        ]
    director.append(f"addr add {VIP}/32 dev f-client")
    ip_batch(director)
    for peer, name in NS.items():
        address = CLIENT if peer == "client" else ADDR[peer]
        commands = [
            "link set lo up",
            "link set eth0 up",
            f"addr add {address}/24 dev eth0",
            f"route add default via 10.81.{SUBNET[peer]}.1",
        ]
        ip_batch(commands, name)
    sh("sysctl", "-qw", "net.ipv4.ip_forward=1")


def teardown_network() -> None:
    # The director's ends of the veth pairs go with its namespace.
    for name in [*NS.values(), DIRECTOR]:
        subprocess.run(["ip", "netns", "del", name], capture_output=True, check=False, timeout=60)


class Spawned:
    """A helper process whose stdout lines are read by a thread, so waits are bounded."""

    def __init__(self, argv: list[str], what: str) -> None:
        self.what = what
        self.process = subprocess.Popen(
            argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, text=True
        )
        self.lines: queue.Queue[str] = queue.Queue()
        self.reader = threading.Thread(target=self._read, name=f"read-{what}", daemon=True)
        self.reader.start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.put(line.rstrip("\n"))

    def expect(self, word: str, timeout: float) -> str:
        """The next line starting with ``word``."""
        deadline = time.monotonic() + timeout
        while (left := deadline - time.monotonic()) > 0:
            try:
                line = self.lines.get(timeout=left)
            except queue.Empty:
                break
            if line.split(" ", 1)[0] == word:
                return line
        raise AssertionError(f"{self.what} did not say {word!r} within {timeout:g} s")

    def kill(self) -> None:
        self.process.kill()
        self.process.wait(timeout=30)
        self.reader.join(10)  # it ends at the pipe's end of file; then the pipe can be closed
        if self.process.stdout is not None:
            self.process.stdout.close()


def in_ns(peer: str, script: str, *args: str) -> list[str]:
    return ["ip", "netns", "exec", NS[peer], sys.executable, "-c", script, *args]


class Victim:
    """The real each fault stops and starts: its server closes and reopens its listener."""

    def __init__(self, server: Spawned) -> None:
        self.server = server
        self.down = False

    def _change(self, sig: signal.Signals, word: str) -> float:
        self.server.process.send_signal(sig)
        when = float(self.server.expect(word, 30).split()[1])
        self.down = word == "down"
        return when

    def stop(self) -> float:
        return self._change(signal.SIGUSR1, "down")

    def start(self) -> float:
        return self._change(signal.SIGUSR2, "up")


class Daemon:
    """``ldirector CONFIG start`` as systemd runs it: foreground, ``NOTIFY_SOCKET``, log file."""

    def __init__(self, config: Path, workdir: Path, notify: Notify) -> None:
        self.config = config
        self.workdir = workdir
        self.notify = notify
        self.process: subprocess.Popen[bytes] | None = None
        self.outputs: list[Path] = []
        drop = ("PYTHONDONTWRITEBYTECODE", "NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID")
        self.cli_env = {k: v for k, v in os.environ.items() if k not in drop}
        # Restarts under emulation are seconds faster with bytecode kept (the tree is read-only).
        self.cli_env.update(
            PYTHONPYCACHEPREFIX=str(workdir / "pycache"),
            LDIRECTOR_RUN_DIR=str(workdir / "run"),
            TZ="UTC",
        )
        self.env = {**self.cli_env, "NOTIFY_SOCKET": str(notify.path)}
        (workdir / "run").mkdir(exist_ok=True)

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process is not None else None

    @property
    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def start(self) -> float:
        """Start it and wait for READY=1; returns the seconds that took."""
        self.notify.clear()
        out = self.workdir / f"daemon-{len(self.outputs)}.out"
        self.outputs.append(out)
        begin = time.monotonic()
        with out.open("wb") as stream:
            self.process = subprocess.Popen(
                [LDIRECTOR, str(self.config), "start"],
                env=self.env,
                stdin=subprocess.DEVNULL,
                stdout=stream,
                stderr=subprocess.STDOUT,
            )
        while not self.notify.wait("READY=1", 1.0):
            assert self.alive, f"the daemon exited: {out.read_text(errors='replace')[-2000:]}"
            assert time.monotonic() - begin < START_WAIT, f"not ready after {START_WAIT:g} s"
        return time.monotonic() - begin

    def kill9(self) -> None:
        assert self.process is not None
        self.process.kill()
        self.process.wait(timeout=30)

    def reload(self) -> float:
        """HUP, then wait for the daemon to say it is ready again; returns the seconds."""
        assert self.process is not None
        self.notify.clear()
        begin = time.monotonic()
        self.process.send_signal(signal.SIGHUP)
        assert self.notify.wait("RELOADING=1", RELOAD_WAIT), "no RELOADING=1 after HUP"
        assert self.notify.wait("READY=1", RELOAD_WAIT), "no READY=1 after a reload"
        return time.monotonic() - begin

    def stop(self) -> None:
        if self.process is None or not self.alive:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=30)

    def cli(self, *args: str) -> subprocess.CompletedProcess[str]:
        """``ldirector CONFIG ARGS...`` as an operator runs it."""
        return subprocess.run(
            [LDIRECTOR, str(self.config), *args],
            env=self.cli_env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )


def fill(directory: Path) -> int:
    """Fill the file system of ``directory`` until ENOSPC; returns the bytes written."""
    written = 0
    with (directory / "filler").open("wb", buffering=0) as stream:
        for _ in range(1 << 14):
            try:
                written += stream.write(b"\0" * 4096) or 0
            except OSError:
                break
    return written


class Rig:
    """Everything the faults need, set up once per module by :func:`running`."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.logdir = workdir / "log"
        self.logfile = self.logdir / "ldirector.log"
        self.config = workdir / "faults.cf"
        self.base = config_text(self.logfile)
        self.current = ""
        self.rows: list[Row] = []
        self.stopped: list[tuple[float, float]] = []
        self.archived_logs: list[str] = []
        self.cli_outputs: list[str] = []
        self.notify = Notify(workdir / "notify.sock")
        self.daemon = Daemon(self.config, workdir, self.notify)
        self.client_log = ClientLog(workdir / "client.out")
        self.view = KernelView(SERVICE, [real(n) for n in HEALTHY])
        self.sampler = Sampler(lambda: self.daemon.pid)
        self.victim: Victim | None = None

    def write_config(self, text: str) -> None:
        """Replace the config file atomically: the daemon reads either file, never half."""
        scratch = self.config.with_suffix(".new")
        scratch.write_bytes(text.encode("utf-8", "surrogateescape"))
        os.replace(scratch, self.config)
        self.current = text

    def switch(self, text: str) -> float:
        """Write a config and reload the daemon with it."""
        self.write_config(text)
        return self.daemon.reload()

    def wait_table(self, want: set[str], timeout: float = UP_WAIT) -> None:
        ok = self.view.wait(lambda d: set(d) == want, time.monotonic(), timeout)
        assert ok is not None, f"the kernel has {self.view.now()}, want {sorted(want)}"

    def cycle(self, row: Row) -> None:
        """Stop the victim's server, time the kernel dropping it; start it, time its return."""
        assert self.victim is not None
        self.wait_table({real(n) for n in (*HEALTHY, VICTIM)})
        stopped = self.victim.stop()
        removed = self.view.wait(lambda d: real(VICTIM) not in d, stopped, BAR + 12)
        row.down.append(None if removed is None else removed - stopped)
        started = self.victim.start()
        self.stopped.append((stopped - 0.05, (removed or started) + 0.5))
        added = self.view.wait(lambda d: real(VICTIM) in d, started, UP_WAIT)
        row.up.append(None if added is None else added - started)

    # --- logs -------------------------------------------------------------------------------

    def logs(self) -> dict[str, str]:
        """Every log the daemon and its command line wrote, by name."""
        texts = {f"archived-log-{n}": text for n, text in enumerate(self.archived_logs)}
        with contextlib.suppress(OSError):
            texts["log"] = self.logfile.read_text(errors="replace")
        for out in self.daemon.outputs:
            with contextlib.suppress(OSError):
                texts[out.name] = out.read_text(errors="replace")
        texts.update({f"cli-{n}": text for n, text in enumerate(self.cli_outputs)})
        return texts

    def traceback_counts(self) -> dict[str, list[str]]:
        return {name: tracebacks([text]) for name, text in self.logs().items()}

    def cli(self, *args: str) -> subprocess.CompletedProcess[str]:
        done = self.daemon.cli(*args)
        self.cli_outputs.append(f"$ ldirector {' '.join(args)}\n{done.stdout}{done.stderr}")
        return done

    # --- one fault --------------------------------------------------------------------------

    @contextlib.contextmanager
    def fault(self, name: str) -> Iterator[Row]:
        """Run one fault: its row gets the requests, transitions, peaks and tracebacks."""
        row = Row(name)
        if not self.daemon.alive:
            row.notes.append("the daemon was not running when the fault began: started again")
            self.daemon.start()
        if self.current != self.base:
            self.switch(self.base)
        if self.victim is not None and self.victim.down:
            self.victim.start()
        self.view.must_have = frozenset(real(n) for n in HEALTHY)
        before = self.traceback_counts()
        violations = len(self.view.violations)
        self.sampler.reset()
        start = time.monotonic()
        try:
            yield row
        except BaseException as exc:
            row.notes.append(f"aborted: {type(exc).__name__}: {exc}"[:400])
            raise
        finally:
            end = time.monotonic()
            if not self.client_log.wait(end, REQUEST_TIMEOUT + 10):
                row.notes.append("the client stopped reporting: its requests are not all counted")
            self._finish(row, start, end, before, violations)

    def _finish(
        self,
        row: Row,
        start: float,
        end: float,
        before: dict[str, list[str]],
        violations: int,
    ) -> None:
        row.seconds = end - start
        row.sent, failed, to_stopped = self.client_log.tally(start, end, self.stopped)
        row.failed, row.to_stopped = len(failed), len(to_stopped)
        if failed:
            kinds = Counter(r.outcome for r in failed)
            row.notes.append(f"failed requests: {dict(kinds.most_common(5))}")
            row.notes += [
                f"{r.outcome} begun at +{r.start - start:.2f}s, ended after {r.end - r.start:.2f}s"
                for r in failed[:5]
            ]
        self.sampler.sample()
        row.peak_rss_mb = self.sampler.peak_hwm_kb / 1024
        row.peak_fds = self.sampler.peak_fds
        for source, found in self.traceback_counts().items():
            row.tracebacks += [f"{source}: {x}" for x in found[len(before.get(source, [])) :]]
        for when, dests in self.view.violations[violations:]:
            # A healthy real whose check timed out (emulation is slow) is the daemon doing its
            # job; only a table left with no healthy real at all would fail requests.
            alone = not any(dests.get(r, 0) > 0 for r in self.view.must_have)
            what = "no healthy real was in" if alone else "a healthy real was out of"
            row.notes.append(f"{what} the kernel at +{when - start:.1f}s: {dests}")
        self.rows.append(row)
        # Shown with a failure's captured output, and live under -s.
        print(format_table([row], ""), file=sys.stderr, flush=True)

    def problems(self, row: Row) -> list[str]:
        """What in ``row`` misses the bar."""
        found = []
        if row.failed:
            found.append(f"{row.failed} of {row.sent} requests to healthy reals failed")
        if not row.down:
            found.append("no real failed during the fault")
        for took in row.down:
            if took is None or took > BAR:
                shown = "never" if took is None else f"after {took:.2f} s"
                found.append(f"a real's failure was applied {shown} (bar {BAR:g} s)")
        if any(took is None for took in row.up):
            found.append("a real that came back was never re-added")
        if row.peak_rss_mb >= 200:
            found.append(f"peak RSS {row.peak_rss_mb:.0f} MB")
        if row.tracebacks:
            found.append(f"tracebacks: {row.tracebacks[:3]}")
        found += [n for n in row.notes if n.startswith("no healthy real was in")]
        if not self.daemon.alive:
            found.append("the daemon is not running")
        return found


@contextlib.contextmanager
def running(workdir: Path) -> Iterator[Rig]:
    """Build the network, mount the state directories, start servers, client and daemon.

    Run inside the director's namespace; everything is stopped and unmounted at the end.
    """
    with contextlib.ExitStack() as stack:
        build_network()
        for directory in STATE_DIRS:
            directory.mkdir(parents=True, exist_ok=True)
            sh("mount", "-t", "tmpfs", "-o", f"size={STATE_SIZE},mode=0755", "ldf-state",
               str(directory))  # fmt: skip
            stack.callback(subprocess.run, ["umount", "-l", str(directory)], check=False)
        rig = Rig(workdir)
        for watcher in (rig.notify, rig.view, rig.sampler):
            stack.callback(watcher.close)
        rig.logdir.mkdir()
        servers = [
            Spawned(in_ns(n, faultscripts.REAL_SERVER, n, str(LIFETIME)), n)
            for n in (*HEALTHY, VICTIM)
        ]
        servers.append(Spawned(in_ns("hostile", faultscripts.HOSTILE, str(LIFETIME)), "hostile"))
        argv = [sys.executable, "-c", faultscripts.SMTP_HOLE, str(SMTP_HOLE), str(LIFETIME)]
        servers.append(Spawned(argv, "smtp"))
        for server in servers:
            stack.callback(server.kill)
        for server in servers:
            server.expect("ready", START_WAIT)
        rig.victim = Victim(servers[2])
        rig.write_config(rig.base)
        stack.callback(rig.daemon.stop)
        rig.daemon.start()
        rig.wait_table({real(n) for n in (*HEALTHY, VICTIM)}, START_WAIT)
        client = Spawned(
            in_ns(
                "client",
                faultscripts.CLIENT,
                VIP,
                "80",
                f"{RATE:g}",
                str(LIFETIME),
                f"{REQUEST_TIMEOUT:g}",
                str(rig.client_log.path),
            ),
            "client",
        )
        stack.callback(client.kill)
        client.expect("ready", START_WAIT)
        yield rig
