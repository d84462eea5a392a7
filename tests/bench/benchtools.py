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


@contextlib.contextmanager
def nginx(tmp: Path, conf_text: str, ready_address: str, port: int) -> Iterator[None]:
    """Run nginx (pinned to CPU 1) with ``conf_text`` until the block ends.

    Ready once ``ready_address:port`` accepts a connection; exits the script with nginx's own
    error when it does not start within 15 s.
    """
    conf = tmp / "nginx.conf"
    conf.write_text(conf_text)
    argv = [*pin(1), "nginx", "-p", str(tmp), "-e", str(tmp / "error.log"), "-c", str(conf)]
    proc = subprocess.Popen(argv, start_new_session=True, stdout=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            with (
                contextlib.suppress(OSError),
                socket.create_connection((ready_address, port), timeout=0.5),
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
