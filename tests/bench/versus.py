"""Pieces of bench_keepalived.py: the two tools' configs and processes, and what is read of them.

Not a benchmark itself (scripts/bench runs bench_* only). Everything here runs inside the test
VM, on the namespace of ``benchtools.build_network``.
"""

from __future__ import annotations

import contextlib
import functools
import math
import os
import signal
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Collection, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from tests.bench import benchtools
from tests.bench.benchtools import real_address

PER_VIRTUAL = 100
PORT = 80
#: The launch and background run's reals.
IDLE_REALS = 60
#: Healthy checks done over those due in the window.
SCHEDULE_BAR = 0.95
LDIRECTOR = str(Path(sys.executable).parent / "ldirector")
TOOLS = ("keepalived", "ldirector")
#: The bare Python checker (tests/bench/pyfloor.py): the language runtime's floor, not a tool.
FLOOR = "pyfloor"


def virtual_address(v: int) -> str:
    """The ``v``-th virtual: a table entry only, nothing is ever sent to it."""
    return f"10.79.{100 + v // 250}.{v % 250 + 1}"


def virtuals(members: Sequence[int]) -> Iterator[tuple[str, Sequence[int]]]:
    """Each virtual address with the numbers of its reals (``PER_VIRTUAL`` to a virtual)."""
    for v in range((len(members) + PER_VIRTUAL - 1) // PER_VIRTUAL):
        yield virtual_address(v), members[v * PER_VIRTUAL : (v + 1) * PER_VIRTUAL]


@dataclass(frozen=True)
class Schedule:
    """What both tools are told: the same checks of the same reals on the same cadence."""

    members: tuple[int, ...]  # the reals, by number (``real_address``)
    kind: str  # "http" or "connect"
    interval: float
    timeout: float

    @property
    def reals(self) -> int:
        return len(self.members)


def ldirector_config(s: Schedule) -> str:
    """ldirectord.cf syntax: ``quiescent=yes``, so a failed real keeps weight 0;
    ``supervised=yes``, so it runs as under a process supervisor: in the foreground, logging
    at its normal level, as keepalived does here (``-d`` would log every check's result)."""
    lines = [
        "supervised=yes",
        f"checkinterval={s.interval:g}",
        f"checktimeout={s.timeout:g}",
        f"negotiatetimeout={s.timeout:g}",
        "quiescent=yes",
    ]
    for vip, numbers in virtuals(s.members):
        lines += [f"virtual={vip}:{PORT}", "\tscheduler=wrr"]
        if s.kind == "http":
            lines += ["\tservice=http", '\trequest="/"', f'\treceive="{benchtools.PAGE}"']
        else:
            lines += ["\tchecktype=connect"]
        lines += [f"\treal={real_address(i)}:{PORT} masq 1" for i in numbers]
    return "\n".join(lines) + "\n"


def floor_config(s: Schedule) -> str:
    """pyfloor.py's: the kind, interval and timeout, then the reals' addresses."""
    head = f"{s.kind} {s.interval:g} {s.timeout:g}"
    return "\n".join([head, *(real_address(i) for i in s.members)]) + "\n"


def keepalived_config(s: Schedule) -> str:
    """keepalived.conf for its checker alone: ``inhibit_on_failure`` (weight 0, as quiescent),
    ``retry 0`` (one failed check takes a real out, as ldirectord's failurecount=1), the same
    page matched (``regex``) for HTTP."""
    timing = [f"connect_timeout {s.timeout:g}", "retry 0"]
    if s.kind == "http":
        url = ["url {", "path /", "status_code 200", f'regex "{benchtools.PAGE}"', "}"]
        check = ["HTTP_GET {", *url, *timing, "}"]
    else:
        check = ["TCP_CHECK {", *timing, "}"]
    out = ["global_defs {", "router_id ldbench", "}"]
    for vip, numbers in virtuals(s.members):
        out += [f"virtual_server {vip} {PORT} {{", f"delay_loop {s.interval:g}"]
        out += ["lb_algo wrr", "lb_kind NAT", "protocol TCP"]
        for i in numbers:
            out += [f"real_server {real_address(i)} {PORT} {{", "weight 1", "inhibit_on_failure"]
            out += [*check, "}"]
        out.append("}")
    return "\n".join(out) + "\n"


# --- the processes ---------------------------------------------------------------------------


class Tool:
    """One tool's daemon in the foreground, pinned to CPU 0, its output in ``workdir``."""

    def __init__(
        self, name: str, workdir: Path, *, profile: Path | None = None, loop: str = ""
    ) -> None:
        self.name = name
        self.loop = loop  # ldirector's LDIRECTOR_LOOP; empty: its default
        self.workdir = workdir
        self.profile = profile
        self.process: subprocess.Popen[bytes] | None = None
        self.spawned = 0.0  # time.time() of the spawn
        self.runs = 0

    def argv(self, conf: Path) -> list[str]:
        if self.name == "keepalived":
            pids = ["-p", str(self.workdir / "keepalived.pid")]
            pids += ["-c", str(self.workdir / "checkers.pid")]
            return ["keepalived", "--check", "--dont-fork", "--log-console", "-f", str(conf), *pids]
        if self.name == FLOOR:
            return [sys.executable, str(Path(__file__).with_name("pyfloor.py")), str(conf)]
        if self.profile is not None:
            head = [sys.executable, "-m", "cProfile", "-o", str(self.profile), "-m", "ldirector"]
            return [*head, str(conf), "start"]
        return [LDIRECTOR, str(conf), "start"]

    def env(self) -> dict[str, str]:
        # The tree's bytecode is compiled before the VM boots (scripts/vm-test), as a package's
        # is at install: a start reads it rather than compiling.
        # PYTHONPATH is the benchmark's own (tests.bench): an installed daemon has no such entry
        # to stat for each of its imports.
        env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
        env["LDIRECTOR_RUN_DIR"] = str(self.workdir / "run")
        if self.loop:
            env["LDIRECTOR_LOOP"] = self.loop
        return env

    def start(self, s: Schedule) -> None:
        self.runs += 1
        conf = self.workdir / f"{self.name}-{s.kind}-{s.reals}.conf"
        configs = {"keepalived": keepalived_config, FLOOR: floor_config}
        conf.write_text(configs.get(self.name, ldirector_config)(s))
        (self.workdir / "run").mkdir(parents=True, exist_ok=True)
        out = (self.workdir / f"{self.name}-{self.runs}.out").open("wb")
        with out:
            self.spawned = time.time()
            self.process = subprocess.Popen(
                [*benchtools.pin(0), *self.argv(conf)],
                env=self.env(),
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
            )

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def output(self) -> str:
        return (self.workdir / f"{self.name}-{self.runs}.out").read_text(errors="replace")

    def stop(self) -> None:
        if self.process is None:
            return
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=90)
            except subprocess.TimeoutExpired:
                os.kill(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=30)
        self.process = None
        subprocess.run(["ipvsadm", "-C"], check=False, capture_output=True, timeout=120)


@contextlib.contextmanager
def running(tool: Tool, s: Schedule) -> Iterator[Tool]:
    tool.start(s)
    try:
        yield tool
    finally:
        tool.stop()


# --- the kernel table and the access log -----------------------------------------------------


def table_weights() -> dict[str, int]:
    """Every destination's weight, ``ADDRESS -> weight``, from one ``ipvsadm -Ln``."""
    done = subprocess.run(
        ["ipvsadm", "-Ln"], capture_output=True, text=True, check=True, timeout=300
    )
    out: dict[str, int] = {}
    for line in done.stdout.splitlines():
        parts = line.split()
        if len(parts) >= 4 and parts[0] == "->" and parts[1][0].isdigit():
            out[parts[1].rsplit(":", 1)[0]] = int(parts[3])
    return out


def proc_weights(addresses: Collection[str]) -> dict[str, int]:
    """The weight of each of ``addresses`` (port ``PORT``) in /proc/net/ip_vs, 0 when absent."""
    text = Path("/proc/net/ip_vs").read_text()
    out = {}
    for address in addresses:
        packed = "".join(f"{int(x):02X}" for x in address.split("."))
        at = text.find(f"-> {packed}:{PORT:04X}")
        # "  -> 0A500005:0050      Masq    1      0          0"
        out[address] = int(text[at:].split(None, 5)[3]) if at >= 0 else 0
    return out


def census(
    weights: dict[str, int], members: Sequence[int], dead: Collection[int]
) -> tuple[int, int, int]:
    """(healthy reals with weight > 0, dead reals with weight 0 or absent, healthy reals)."""
    up = sum(1 for i in members if i not in dead and weights.get(real_address(i), 0) > 0)
    down = sum(1 for i in members if i in dead and weights.get(real_address(i), 0) == 0)
    return up, down, sum(1 for i in members if i not in dead)


class AccessLog:
    """nginx's access log (``MSEC SERVER_ADDR`` a line), read from where the last read ended."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.offset = 0
        #: Each address's latest request among the lines read.
        self.last: dict[str, float] = {}
        #: Every request read, for the addresses in ``watch``.
        self.watch: set[str] = set()
        self.history: dict[str, list[float]] = {}

    def skip(self) -> None:
        """Forget everything logged so far (nginx flushes its buffer every second)."""
        time.sleep(1.2)
        self.offset = self.path.stat().st_size if self.path.exists() else 0

    def read(self) -> list[tuple[float, str]]:
        if not self.path.exists():
            return []
        with self.path.open("rb") as stream:
            stream.seek(self.offset)
            data = stream.read()
        end = data.rfind(b"\n") + 1
        self.offset += end
        out = []
        for line in data[:end].decode().splitlines():
            msec, _, address = line.partition(" ")
            with contextlib.suppress(ValueError):
                out.append((float(msec), address))
                self.last[address] = float(msec)
                if address in self.watch:
                    self.history.setdefault(address, []).append(float(msec))
        return out


# --- the figures -------------------------------------------------------------------------------


@dataclass
class Run:
    """What one tool did on one schedule."""

    tool: str
    schedule: Schedule
    converged: float = math.nan  # seconds from spawn to every real right in the table
    launch: float = math.nan  # seconds from spawn to the first logged request
    cpu: float = math.nan  # CPU seconds in the window
    window: float = math.nan
    accepted: int = 0  # connections the reals accepted in the window
    dropped: int = 0  # packets to black-holed reals dropped in the window
    up: int = 0
    down: int = 0
    healthy: int = 0
    rss: float = math.nan
    hwm: float = math.nan
    excess: list[float] = field(default_factory=list)
    #: Per failed real: its requests before the failure (relative to it), to weight 0 after it.
    detections: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def dead(self) -> int:
        return self.schedule.reals - self.healthy

    @property
    def due(self) -> float:
        return self.schedule.reals * self.window / self.schedule.interval

    @property
    def done(self) -> float:
        """Checks done: those the reals accepted, and the black-holed ones counted as due."""
        return self.accepted + self.dead * self.window / self.schedule.interval

    @property
    def kept(self) -> float:
        healthy_due = self.healthy * self.window / self.schedule.interval
        return self.accepted / healthy_due if healthy_due else math.nan

    @property
    def cpu_per_check_ms(self) -> float:
        return 1000 * self.cpu / self.done if self.done else math.nan


@dataclass
class Row:
    figure: str
    ours: float
    theirs: float
    unit: str
    bar: str
    ok: bool | None  # None: no bar, or not measurable in this run


def fmt(x: float, unit: str) -> str:
    if math.isnan(x):
        return "-"
    if unit == "%":
        return f"{x:.1%}"
    if unit in ("n", "count"):
        return f"{x:.0f}"
    return f"{x:.3f}" if abs(x) < 10 else f"{x:.1f}"


def ratio_row(figure: str, ours: float, theirs: float, unit: str, limit: float) -> Row:
    ok = None if math.isnan(ours) or math.isnan(theirs) else ours <= limit * theirs
    return Row(figure, ours, theirs, unit, f"<= {limit:g}x", ok)


def pair(ld: Run | None, ka: Run | None, figure: Callable[[Run], float]) -> tuple[float, float]:
    """``figure`` of ldirector's run and of keepalived's (NaN for a run not made)."""
    return (figure(ld) if ld else math.nan, figure(ka) if ka else math.nan)


def excess(run: Run, pick: Callable[[list[float]], float]) -> float:
    return pick(run.excess) if run.excess else math.nan


def rows(
    runs: dict[tuple[str, str, int], Run], sizes: list[int], kinds: list[str], failures: int
) -> list[Row]:
    """The table: ldirector's figure beside keepalived's, for every figure with a bar."""

    def get(tool: str, kind: str, reals: int) -> Run | None:
        return runs.get((tool, kind, reals))

    out: list[Row] = []
    for kind in kinds:
        for reals in sizes:
            ld, ka = get("ldirector", kind, reals), get("keepalived", kind, reals)
            tag = f"{kind} {reals}"
            cost = pair(ld, ka, lambda r: r.cpu_per_check_ms)
            out.append(ratio_row(f"{tag}: CPU per check (ms)", *cost, "ms", 1.0))
            cores = pair(ld, ka, lambda r: r.cpu / r.window)
            out.append(Row(f"{tag}: CPU share of a core", *cores, "%", "", None))
            kept = pair(ld, ka, lambda r: r.kept)
            ok = None if math.isnan(kept[0]) else kept[0] >= SCHEDULE_BAR
            out.append(Row(f"{tag}: schedule kept (done/due)", *kept, "%", ">= 95%", ok))
            ups = pair(ld, ka, lambda r: r.up)
            ok = None if ld is None else ld.up == ld.healthy and ld.down == ld.dead
            healthy = ld.healthy if ld else (ka.healthy if ka else 0)
            out.append(Row(f"{tag}: healthy reals up", *ups, "n", f"all {healthy}", ok))
            dropped = pair(ld, ka, lambda r: r.dropped)
            out.append(Row(f"{tag}: packets to dead reals", *dropped, "count", "", None))
            floor = get(FLOOR, kind, reals)
            if floor is not None:  # in the ldirector column: any Python checker's least
                least = pair(floor, ka, lambda r: r.cpu_per_check_ms)
                out.append(
                    Row(f"{tag}: bare Python checker, CPU per check", *least, "ms", "", None)
                )
    first = sizes[0]
    ld, ka = get("ldirector", "http", first), get("keepalived", "http", first)
    if failures and "http" in kinds:
        pick: Callable[[list[float]], float]
        for name, pick, slack in (("median", statistics.median, 0.1), ("max", max, 0.3)):
            mine, theirs = pair(ld, ka, functools.partial(excess, pick=pick))
            ok = None if math.isnan(mine + theirs) else mine <= theirs + slack
            figure = f"detection excess {name} (s, http {first})"
            out.append(Row(figure, mine, theirs, "s", f"<= theirs + {slack:g} s", ok))
    if "http" in kinds and ld is not None:
        peak = pair(ld, ka, lambda r: r.hwm)
        ok = None if math.isnan(peak[0]) else peak[0] <= 30
        out.append(Row(f"peak RSS (MB, http {first})", *peak, "MB", "<= 30 MB", ok))
        out.append(
            Row("RSS at the window's end (MB)", *pair(ld, ka, lambda r: r.rss), "MB", "", None)
        )
        launches = pair(ld, ka, lambda r: r.launch)
        out.append(Row(f"launch to first check (s, http {first})", *launches, "s", "", None))
        floor = get(FLOOR, "http", first)
        if floor is not None:
            least = pair(floor, ka, lambda r: r.hwm)
            out.append(
                Row(f"bare Python checker, peak RSS (MB, http {first})", *least, "MB", "", None)
            )
            least = pair(floor, ka, lambda r: r.launch)
            out.append(Row(f"bare Python checker, launch (s, http {first})", *least, "s", "", None))
    li, ki = get("ldirector", "idle", IDLE_REALS), get("keepalived", "idle", IDLE_REALS)
    if li or ki:
        launches = pair(li, ki, lambda r: r.launch)
        out.append(ratio_row(f"launch to first check (s, {IDLE_REALS} reals)", *launches, "s", 1.5))
        shares = pair(li, ki, lambda r: r.cpu / r.window)
        out.append(ratio_row(f"background CPU ({IDLE_REALS} reals, 5 s)", *shares, "%", 1.5))
    return out


def print_table(table: list[Row]) -> None:
    head = ("figure", "ldirector", "keepalived", "ratio", "bar", "verdict")
    lines = [head]
    for r in table:
        ratio = r.ours / r.theirs if r.theirs and not math.isnan(r.theirs) else math.nan
        if r.unit == "s" and "excess" in r.figure:
            shown = "-" if math.isnan(r.ours - r.theirs) else f"{r.ours - r.theirs:+.3f} s"
        else:
            shown = "-" if math.isnan(ratio) else f"{ratio:.2f}x"
        verdict = {True: "ok", False: "MISSED", None: ""}[r.ok]
        lines.append((r.figure, fmt(r.ours, r.unit), fmt(r.theirs, r.unit), shown, r.bar, verdict))
    widths = [max(len(line[c]) for line in lines) for c in range(len(head))]
    for line in lines:
        print("  " + "  ".join(cell.ljust(w) for cell, w in zip(line, widths, strict=True)))
