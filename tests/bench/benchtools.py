"""Pieces the benchmark scripts share (not a benchmark itself: scripts/bench runs bench_* only)."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path


def pin(cpu: int) -> list[str]:
    """A ``taskset`` prefix that keeps a process on one core, when there is more than one."""
    return ["taskset", "-c", str(cpu)] if shutil.which("taskset") and os.cpu_count() != 1 else []


#: The page every benchmark nginx serves; HTTP checks match it with ``receive``.
PAGE = "Test Page"


def nginx_conf(tmp: Path, addresses: list[str], port: int) -> str:
    """One nginx worker answering ``PAGE`` on ``port`` of every address, files kept in ``tmp``."""
    listens = "\n".join(f"listen {a}:{port};" for a in addresses)
    temp = " ".join(
        f"{k}_temp_path {tmp / k};" for k in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
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
            access_log off;
            default_type text/plain;
            {temp}
            server {{ {listens} location / {{ return 200 "<html>{PAGE}</html>\\n"; }} }}
        }}
    """


@contextlib.contextmanager
def nginx(tmp: Path, addresses: list[str], port: int) -> Iterator[None]:
    """Run nginx (pinned to CPU 1) serving ``PAGE`` on ``addresses`` until the block ends.

    Ready once the last address accepts a connection; exits the script with nginx's own
    error when it does not start within 15 s.
    """
    conf = tmp / "nginx.conf"
    conf.write_text(nginx_conf(tmp, addresses, port))
    argv = [*pin(1), "nginx", "-p", str(tmp), "-e", str(tmp / "error.log"), "-c", str(conf)]
    proc = subprocess.Popen(argv, start_new_session=True, stdout=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            with (
                contextlib.suppress(OSError),
                socket.create_connection((addresses[-1], port), timeout=0.5),
            ):
                break
            if proc.poll() is not None:
                sys.exit(f"nginx exited: {(tmp / 'error.log').read_text()[-500:]}")
            time.sleep(0.1)
        else:
            sys.exit("nginx did not start")
        yield
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=10)
