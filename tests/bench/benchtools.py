"""Pieces the benchmark scripts share (not a benchmark itself: scripts/bench runs bench_* only)."""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Collection, Iterator, Sequence
from pathlib import Path


def pin(cpu: int) -> list[str]:
    """A ``taskset`` prefix that keeps a process on one core, when there is more than one."""
    return ["taskset", "-c", str(cpu)] if shutil.which("taskset") and os.cpu_count() != 1 else []


#: The page every benchmark nginx serves; HTTP checks match it with ``receive``.
PAGE = "Test Page"


def nginx_conf(tmp: Path, addresses: list[str], port: int, access_log: Path | None = None) -> str:
    """One nginx worker answering ``PAGE`` on ``port`` of every address, files kept in ``tmp``.

    With ``access_log``, every request is logged there as ``MSEC SERVER_ADDR``.
    """
    listens = "\n".join(f"listen {a}:{port};" for a in addresses)
    temp = " ".join(
        f"{k}_temp_path {tmp / k};" for k in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
    )
    log = (
        f"log_format bench '$msec $server_addr'; access_log {access_log} bench buffer=64k flush=1s;"
        if access_log is not None
        else "access_log off;"
    )
    return f"""
        {"user root;" if os.geteuid() == 0 else ""}
        daemon off;
        worker_processes 1;
        worker_rlimit_nofile 20000;
        pid {tmp / "nginx.pid"};
        error_log {tmp / "error.log"} crit;
        events {{ worker_connections 16000; multi_accept on; }}
        http {{
            {log}
            default_type text/plain;
            {temp}
            server {{ {listens} location / {{ return 200 "<html>{PAGE}</html>\\n"; }} }}
        }}
    """


@contextlib.contextmanager
def nginx(
    tmp: Path,
    addresses: list[str],
    port: int,
    *,
    netns: str | None = None,
    probe: str | None = None,
    access_log: Path | None = None,
) -> Iterator[subprocess.Popen[bytes]]:
    """Run nginx (pinned to CPU 1) serving ``PAGE`` on ``addresses`` until the block ends.

    ``netns`` runs it inside that network namespace (the process yielded is nginx's master,
    in it); ``probe`` is the address whose answer says it is ready (default the last one).
    Exits the script with nginx's own error when it does not start within 15 s.
    """
    conf = tmp / "nginx.conf"
    conf.write_text(nginx_conf(tmp, addresses, port, access_log))
    inside = ["ip", "netns", "exec", netns] if netns else []
    argv = [*pin(1), *inside, "nginx", "-p", str(tmp), "-e", str(tmp / "error.log")]
    argv += ["-c", str(conf)]
    proc = subprocess.Popen(argv, start_new_session=True, stdout=subprocess.DEVNULL)
    ready = probe or addresses[-1]
    try:
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            with (
                contextlib.suppress(OSError),
                socket.create_connection((ready, port), timeout=0.5),
            ):
                break
            if proc.poll() is not None:
                sys.exit(f"nginx exited: {(tmp / 'error.log').read_text()[-500:]}")
            time.sleep(0.1)
        else:
            sys.exit("nginx did not start")
        yield proc
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=10)


# --- the VM benchmarks' reals: addresses inside one network namespace --------------------------

#: The namespace holding the VM benchmarks' real addresses (reached through the veth e-bench).
NS = "ldb-reals"


def real_address(i: int) -> str:
    """The ``i``-th real: 10.80.0.1, ... 10.80.0.250, 10.80.1.1, ... (250 to a /24)."""
    return f"10.80.{i // 250}.{i % 250 + 1}"


def sh(*argv: str, stdin: str | None = None) -> None:
    subprocess.run(argv, input=stdin, text=True, check=True, timeout=300, capture_output=True)


def build_network(reals: int, dead: Collection[int] = ()) -> None:
    """One namespace holding the real addresses, reached from the director through a veth.

    The reals numbered in ``dead`` get no address: a blackhole route there drops what is sent
    to them, so connects to them time out.
    """
    teardown_network()
    sh("ip", "netns", "add", NS)
    sh("ip", "-n", NS, "link", "set", "lo", "up")
    sh("ip", "link", "add", "e-bench", "type", "veth", "peer", "name", "eth0", "netns", NS)
    sh("ip", "addr", "add", "10.79.0.1/24", "dev", "e-bench")
    sh("ip", "link", "set", "e-bench", "up")
    sh("ip", "-n", NS, "addr", "add", "10.79.0.2/24", "dev", "eth0")
    sh("ip", "-n", NS, "link", "set", "eth0", "up")
    sh("ip", "-n", NS, "route", "add", "default", "via", "10.79.0.1")
    batch = "".join(
        f"route add blackhole {real_address(i)}/32\n"
        if i in dead
        else f"addr add {real_address(i)}/32 dev lo\n"
        for i in range(reals)
    )
    sh("ip", "-n", NS, "-batch", "-", stdin=batch)
    # One route for all of them: the director keeps a single neighbour entry.
    sh("ip", "route", "add", "10.80.0.0/16", "via", "10.79.0.2")


def blackhole_argvs(address: str) -> Sequence[list[str]]:
    """The commands that turn a live real of ``build_network`` into a dead one."""
    return (
        ["ip", "-n", NS, "addr", "del", f"{address}/32", "dev", "lo"],
        ["ip", "-n", NS, "route", "add", "blackhole", f"{address}/32"],
    )


def teardown_network() -> None:
    subprocess.run(["ip", "netns", "del", NS], capture_output=True, check=False)
    subprocess.run(["ip", "link", "del", "e-bench"], capture_output=True, check=False)


# --- processes and namespaces, read from /proc ------------------------------------------------


def _children() -> dict[int, list[int]]:
    kids: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        with contextlib.suppress(OSError):
            stat = Path(f"/proc/{entry}/stat").read_text()
            ppid = int(stat.rsplit(")", 1)[1].split()[1])
            kids.setdefault(ppid, []).append(int(entry))
    return kids


def tree(pid: int) -> list[int]:
    """``pid`` and every descendant of it (keepalived's checker child)."""
    kids = _children()
    out: list[int] = []
    todo = [pid]
    while todo and len(out) < 1000:
        p = todo.pop()
        out.append(p)
        todo += kids.get(p, [])
    return out


def process_cpu_seconds(pid: int, reaped: bool = True) -> float:
    """User + system CPU of one process, with what its reaped children used if ``reaped``."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    # After ")": state is field 0, so utime/stime/cutime/cstime are 11..14.
    ticks = sum(int(x) for x in fields[11 : 15 if reaped else 13])
    return ticks / os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """User + system CPU of ``pid``'s process tree, with what its reaped children used."""
    total = 0.0
    for n, p in enumerate(tree(pid)):
        with contextlib.suppress(OSError):
            total += process_cpu_seconds(p, reaped=n == 0)
    return total


def memory_mb(pid: int) -> tuple[float, float]:
    """(VmRSS, VmHWM) summed over ``pid``'s process tree, in MB."""
    rss = hwm = 0
    for p in tree(pid):
        with contextlib.suppress(OSError):
            status = Path(f"/proc/{p}/status").read_text()
            rss += int(re.search(r"^VmRSS:\s+(\d+)", status, re.M)[1])  # type: ignore[index]
            hwm += int(re.search(r"^VmHWM:\s+(\d+)", status, re.M)[1])  # type: ignore[index]
    return rss / 1024, hwm / 1024


def snmp(pid: int) -> dict[str, int]:
    """The IP and TCP counters of the network namespace ``pid`` lives in."""
    lines = Path(f"/proc/{pid}/net/snmp").read_text().splitlines()
    out: dict[str, int] = {}
    for head, values in zip(lines[::2], lines[1::2], strict=False):
        proto = head.split(":")[0]
        for k, v in zip(head.split()[1:], values.split()[1:], strict=False):
            out[f"{proto}.{k}"] = int(v)
    return out
