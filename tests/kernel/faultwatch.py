"""What the fault suite watches while it hurts the daemon: the kernel's table, the daemon's
memory and descriptors, its sd_notify messages, the client's requests and every log.

Each watcher is a daemon thread with a bounded poll, started and stopped by the rig; all times
are CLOCK_MONOTONIC, which every process in the VM shares, so the client's request times, the
real server's stop times and the table's changes line up.
"""

from __future__ import annotations

import contextlib
import os
import queue
import re
import socket
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

from .vmtools import proc_ip_vs

#: A snapshot of one virtual service in the kernel: real address -> weight.
Dests = dict[str, int]


class KernelView:
    """Polls the kernel's own listing of the table (``/proc/net/ip_vs``, not ldirector's netlink
    decoder, so a table the daemon cannot read is still measured) every ``period`` seconds.

    Built inside the director's namespace: the thread it starts is born there, and its
    ``/proc/thread-self/net`` is the director's. Keeps every change of one service with the
    time of the poll that saw it, and every snapshot in which a real of ``must_have`` was
    missing or at weight 0.
    """

    def __init__(
        self, service: str, must_have: Iterable[str], period: float = 0.1, idle: float = 0.5
    ) -> None:
        self.service = service
        self.must_have = frozenset(must_have)
        #: Poll every ``period`` s while someone waits on a change, else every ``idle`` s:
        #: under emulation each poll costs this process milliseconds.
        self.period = period
        self.idle = idle
        self._waiting = 0
        self._wake = threading.Event()
        self.history: list[tuple[float, Dests]] = []
        self.violations: list[tuple[float, Dests]] = []
        self.errors: list[str] = []
        self._cond = threading.Condition()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="kernel-view", daemon=True)
        self._thread.start()

    def _read(self) -> Dests:
        with open("/proc/thread-self/net/ip_vs", encoding="ascii", errors="replace") as stream:
            return proc_ip_vs(stream.read(1 << 22)).get(self.service, {})

    def _run(self) -> None:
        bad = False
        while not self._stop.is_set():
            self._wake.wait(self.period if self._waiting else self.idle)
            self._wake.clear()
            try:
                dests = self._read()
            except OSError as exc:
                self.errors.append(str(exc))
                continue
            now = time.monotonic()
            with self._cond:
                if not self.history or self.history[-1][1] != dests:
                    self.history.append((now, dests))
                    self._cond.notify_all()
                missing = any(dests.get(real, 0) <= 0 for real in self.must_have)
                if missing and not bad:
                    self.violations.append((now, dests))
                bad = missing

    def now(self) -> Dests:
        with self._cond:
            return dict(self.history[-1][1]) if self.history else {}

    def wait(self, want: Callable[[Dests], bool], since: float, timeout: float) -> float | None:
        """The time the table first satisfied ``want`` at or after ``since``; None if it did
        not within ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        with self._cond:
            self._waiting += 1
            self._wake.set()
            try:
                return self._wait(want, since, deadline)
            finally:
                self._waiting -= 1

    def _wait(self, want: Callable[[Dests], bool], since: float, deadline: float) -> float | None:
        while True:
            before = [(t, d) for t, d in self.history if t <= since][-1:]
            after = [(t, d) for t, d in self.history if t > since]
            for t, dests in before + after:
                if want(dests):
                    return max(t, since)
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            self._cond.wait(min(left, 0.5))

    def close(self) -> None:
        self._stop.set()
        self._wake.set()
        self._thread.join(5)


class Sampler:
    """Samples a process's peak RSS (VmHWM), RSS and open descriptors every ``period`` s."""

    def __init__(self, pid: Callable[[], int | None], period: float = 0.5) -> None:
        self.pid = pid
        self.period = period
        self.peak_hwm_kb = 0
        self.peak_fds = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="sampler", daemon=True)
        self._thread.start()

    def reset(self) -> None:
        self.peak_hwm_kb = self.peak_fds = 0
        self.sample()

    def sample(self) -> None:
        pid = self.pid()
        if pid is None:
            return
        with contextlib.suppress(OSError):
            status = Path(f"/proc/{pid}/status").read_text()
            match = re.search(r"^VmHWM:\s+(\d+) kB", status, re.MULTILINE)
            fds = len(os.listdir(f"/proc/{pid}/fd"))
            if match:
                self.peak_hwm_kb = max(self.peak_hwm_kb, int(match.group(1)))
            self.peak_fds = max(self.peak_fds, fds)

    def _run(self) -> None:
        while not self._stop.wait(self.period):
            self.sample()

    def close(self) -> None:
        self._stop.set()
        self._thread.join(5)


class Notify:
    """The systemd end of ``NOTIFY_SOCKET``: the daemon's READY=1/RELOADING=1 datagrams."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(str(path))
        self.sock.settimeout(0.5)
        self.messages: queue.Queue[str] = queue.Queue(maxsize=10_000)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="notify", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                data = self.sock.recv(4096)
            except TimeoutError:
                continue
            except OSError:
                return
            with contextlib.suppress(queue.Full):
                self.messages.put_nowait(data.decode(errors="replace"))

    def clear(self) -> None:
        with contextlib.suppress(queue.Empty):
            while True:
                self.messages.get_nowait()

    def wait(self, state: str, timeout: float) -> bool:
        """Whether a message with the line ``state`` (``READY=1``) came within ``timeout`` s."""
        deadline = time.monotonic() + timeout
        while (left := deadline - time.monotonic()) > 0:
            try:
                message = self.messages.get(timeout=left)
            except queue.Empty:
                return False
            if state in message.splitlines():
                return True
        return False

    def close(self) -> None:
        self._stop.set()
        self.sock.close()
        self._thread.join(5)


@dataclass(frozen=True, slots=True)
class Request:
    start: float
    end: float
    outcome: str

    @property
    def ok(self) -> bool:
        return self.outcome.startswith("ok ")


#: Outcomes a stopped server explains: nothing listens (refused), or the listening socket
#: closed under a connection it had not accepted yet (reset, eof).
STOPPED_SERVER = ("refused", "reset", "eof")


class ClientLog:
    """The client's output file, read incrementally."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.requests: list[Request] = []
        #: Every request begun before this time is in ``requests``.
        self.settled = 0.0
        self._offset = 0
        self._partial = ""

    def read(self) -> None:
        try:
            with self.path.open(encoding="utf-8", errors="replace") as stream:
                stream.seek(self._offset)
                text = stream.read()
                self._offset = stream.tell()
        except FileNotFoundError:
            return
        lines = (self._partial + text).split("\n")
        self._partial = lines.pop()
        for line in lines:
            first, second, rest = line.split(" ", 2)
            if first == "flush":
                self.settled = float(rest)
            else:
                self.requests.append(Request(float(first), float(second), rest))

    def wait(self, until: float, timeout: float) -> bool:
        """Wait until every request begun before ``until`` is in; False if not within timeout."""
        deadline = time.monotonic() + timeout
        while True:
            self.read()
            if self.settled >= until:
                return True
            if time.monotonic() > deadline:
                return False
            time.sleep(0.1)

    def tally(
        self, start: float, end: float, stopped: list[tuple[float, float]]
    ) -> tuple[int, list[Request], list[Request]]:
        """Requests begun in [start, end): how many, the failed ones, and the failures that
        met a stopped real (a ``STOPPED_SERVER`` outcome while a window of ``stopped`` was
        open: from the moment a real stopped until just after the kernel dropped it)."""
        self.read()
        mine = [r for r in self.requests if start <= r.start < end]
        failed: list[Request] = []
        to_stopped: list[Request] = []
        for request in mine:
            if request.ok:
                continue
            explained = request.outcome in STOPPED_SERVER and any(
                request.start <= hi and request.end >= lo for lo, hi in stopped
            )
            (to_stopped if explained else failed).append(request)
        return len(mine), failed, to_stopped


TRACEBACK = "Traceback (most recent call last)"


def tracebacks(texts: Iterable[str]) -> list[str]:
    """One line per traceback in ``texts``: the exception it ended with."""
    found = []
    for text in texts:
        lines = text.splitlines()
        for n, line in enumerate(lines):
            if TRACEBACK in line:
                tail = next((x for x in lines[n + 1 :] if x and not x[0].isspace()), "?")
                found.append(tail.strip()[:160])
    return found


@dataclass
class Row:
    """One fault's line of the table."""

    fault: str
    seconds: float = 0.0
    sent: int = 0
    failed: int = 0
    to_stopped: int = 0
    #: Per failure of a real: seconds until the kernel dropped it, None if it never did.
    down: list[float | None] = field(default_factory=list)
    #: Per return of a real: seconds until the kernel had it again, None if it never did.
    up: list[float | None] = field(default_factory=list)
    peak_rss_mb: float = 0.0
    peak_fds: int = 0
    tracebacks: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def _worst(values: list[float | None]) -> str:
    if not values:
        return "-"
    if any(v is None for v in values):
        return "never"
    return f"{max(v for v in values if v is not None):.2f}"


HEADER = (
    f"{'fault':<28} {'secs':>5} {'sent':>6} {'failed':>6} {'to-down':>7} {'applied':>7} "
    f"{'down max':>8} {'up max':>6} {'RSS MB':>6} {'fds':>5} {'tb':>3}"
)


def format_row(row: Row) -> str:
    applied = sum(v is not None for v in row.down) + sum(v is not None for v in row.up)
    return (
        f"{row.fault:<28} {row.seconds:5.0f} {row.sent:6d} {row.failed:6d} {row.to_stopped:7d} "
        f"{applied:>3d}/{len(row.down) + len(row.up):<3d} {_worst(row.down):>8} "
        f"{_worst(row.up):>6} {row.peak_rss_mb:6.1f} {row.peak_fds:5d} {len(row.tracebacks):3d}"
    )


def format_table(rows: list[Row], legend: str) -> str:
    lines = [HEADER, "-" * len(HEADER), *(format_row(row) for row in rows), "", legend]
    for row in rows:
        for note in row.notes:
            lines.append(f"  {row.fault}: {note}")
        for line in row.tracebacks[:5]:
            lines.append(f"  {row.fault}: traceback: {line}")
    return "\n".join(lines) + "\n"
