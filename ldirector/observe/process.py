"""The daemon process's own figures for ``/metrics``, with the names every Prometheus exporter
uses (``process_cpu_seconds_total``, ``process_resident_memory_bytes``, ...).

Read at each rendering from ``/proc/self``: a few small procfs files, read in the rendering's
thread, never on the event loop. Fail-soft: where ``/proc`` is absent or a file cannot be read
the figures it gives are left out rather than guessed, and the rest are still rendered.
"""

from __future__ import annotations

import os
import resource
from collections.abc import Iterator
from pathlib import Path

from ldirector.observe.exposition import Family

PROC = Path("/proc")


def families(proc: Path = PROC) -> Iterator[Family]:
    stat = _stat(proc)
    if stat is not None:
        ticks = os.sysconf("SC_CLK_TCK")
        # After the command name (which may hold spaces and parentheses): state is field 3.
        fields = stat.rpartition(")")[2].split()
        cpu = (int(fields[11]) + int(fields[12])) / ticks  # utime, stime
        vsize, rss = int(fields[20]), int(fields[21]) * os.sysconf("SC_PAGE_SIZE")
        boot = _boot_time(proc)
        start = None if boot is None else boot + int(fields[19]) / ticks
    else:
        times = os.times()
        cpu, vsize, rss, start = times.user + times.system, None, None, None
    yield _one("process_cpu_seconds_total", "counter", "user and system CPU time spent", cpu)
    yield _one("process_virtual_memory_bytes", "gauge", "virtual memory size", vsize)
    yield _one("process_resident_memory_bytes", "gauge", "resident memory size", rss)
    yield _one("process_start_time_seconds", "gauge", "process start time (unix time)", start)
    try:
        fds: int | None = len(os.listdir(proc / "self" / "fd"))
    except OSError:
        fds = None
    yield _one("process_open_fds", "gauge", "open file descriptors", fds)
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    limit = None if soft == resource.RLIM_INFINITY else soft
    yield _one("process_max_fds", "gauge", "limit on open file descriptors", limit)


def _one(name: str, kind: str, text: str, value: float | None) -> Family:
    family = Family(name, kind, text)
    if value is not None:
        family.add("", value)
    return family


def _stat(proc: Path) -> str | None:
    try:
        text = (proc / "self" / "stat").read_text()
    except OSError:
        return None
    return text if len(text.rpartition(")")[2].split()) >= 22 else None


def _boot_time(proc: Path) -> float | None:
    try:
        with (proc / "stat").open() as lines:
            for line in lines:
                if line.startswith("btime "):
                    return float(line.split()[1])
    except (OSError, ValueError, IndexError):
        return None
    return None
