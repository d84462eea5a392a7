"""``start`` with the real config loader and the real engine (on an in-memory IPVS table).

Proves the wiring of the operator surface and the engine: readiness after the first
reconcile, state changes in ldirectord's wording in the log file, HUP reload, TERM cleanup.
"""

from __future__ import annotations

import os
import signal
import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from ldirector.daemon import process
from tests.support.sandbox import Sandbox


@pytest.fixture
def listener() -> Iterator[int]:
    """A TCP server on 127.0.0.2 that accepts (a healthy real for connect checks)."""
    server = socket.socket()
    server.bind(("127.0.0.2", 0))
    server.listen(16)
    port = int(server.getsockname()[1])
    stop = threading.Event()

    def serve() -> None:
        server.settimeout(0.1)
        while not stop.is_set():
            try:
                conn, _ = server.accept()
            except TimeoutError:
                continue
            conn.close()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield port
    stop.set()
    thread.join()
    server.close()


def test_start_reload_stop_with_the_engine(sandbox: Sandbox, listener: int, tmp_path: Path) -> None:
    state = tmp_path / "state"
    state.mkdir()
    monitor = tmp_path / "web.monitor"
    sandbox.env.update({"DRIVER_ENGINE": "1", "DRIVER_STATE": str(state)})
    sandbox.write_config(
        f'logfile="{sandbox.logfile}"',
        "checkinterval=1",
        "virtual=127.0.0.1:80",
        f"\treal=127.0.0.2:{listener} gate",
        "\tchecktype=connect",
        "\tchecktimeout=1",
        f'\tmonitorfile="{monitor}"',
    )
    pid = sandbox.start()
    assert sandbox.wait_for(
        lambda: any(
            f"Added real server: 127.0.0.2:{listener} (127.0.0.1:80)" in line
            for line in sandbox.log_lines()
        ),
        timeout=10,
    )
    os.kill(pid, signal.SIGHUP)
    assert sandbox.wait_for(
        lambda: any("Reloading Linux Director Daemon" in ln for ln in sandbox.log_lines())
    )
    assert sandbox.cli("stop").returncode == 0
    assert not process.is_ldirector(pid)
    log = "\n".join(sandbox.log_lines())
    assert "Linux Director Daemon terminated on signal: TERM" in log
    assert "Traceback" not in log
    assert f"Purged real server (stop): 127.0.0.2:{listener} (127.0.0.1:80)" in log
    assert log.index("Purged real server (stop)") < log.index("Purged virtual server (stop)")
    # The daemon wrote a line per check result to the virtual's monitorfile.
    written = monitor.read_text().splitlines()
    assert written and all(
        f"] [{pid}] connect tcp 127.0.0.2 {listener} 1 gate / " in line and "[up]" in line
        for line in written
    )


def test_start_reports_a_failing_engine(sandbox: Sandbox, tmp_path: Path) -> None:
    sandbox.env.update({"DRIVER_ENGINE": "1", "DRIVER_STATE": str(tmp_path), "DRIVER_NO_IPVS": "1"})
    sandbox.write_config(f'logfile="{sandbox.logfile}"', "virtual=127.0.0.1:80")
    done = sandbox.cli("start")
    assert done.returncode == 1
    assert done.stderr == (
        f"ldirectord for {sandbox.config}: failed to start:"
        " the IPVS netlink family is not available (is ip_vs loaded?)\n"
    )
    assert not sandbox.pid_file.exists()
    log = "\n".join(sandbox.log_lines())
    assert "the daemon failed: the IPVS netlink family is not available" in log
    assert "Traceback" not in log
