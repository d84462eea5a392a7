"""Shared fixtures of the operator-surface tests: a sandbox where real ldirector daemons run.

Each sandbox has its own pid-file directory (``LDIRECTOR_RUN_DIR``), config file and log file
under tmp_path, and kills whatever daemon it started at teardown.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from ldirector.daemon import process

HERE = Path(__file__).parent
DRIVER = HERE / "bin" / "ldirectord"
REPO = HERE.parents[1]


@dataclass
class Sandbox:
    root: Path
    config: Path
    logfile: Path
    events: Path
    env: dict[str, str]
    command: list[str]
    started: list[int] = field(default_factory=list)

    @property
    def cfgname(self) -> str:
        return self.config.name

    @property
    def pid_file(self) -> Path:
        return process.pid_path(self.cfgname, self.root)

    def write_config(self, *lines: str) -> None:
        self.config.write_text("".join(line + "\n" for line in lines))

    def run(
        self, *args: str, timeout: float = 30, **kwargs: object
    ) -> subprocess.CompletedProcess[str]:
        done = subprocess.run(
            [*self.command, *args],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        self._remember()
        return done

    def cli(self, verb: str, *extra: str) -> subprocess.CompletedProcess[str]:
        return self.run(*extra, str(self.config), verb)

    def start(self) -> int:
        done = self.cli("start")
        assert done.returncode == 0, done.stderr
        pid = self.pid()
        assert pid is not None and process.is_ldirector(pid)
        return pid

    def pid(self) -> int | None:
        return process.read_pid(self.pid_file)

    def _remember(self) -> None:
        pid = self.pid()
        if pid is not None and pid not in self.started and process.is_ldirector(pid):
            self.started.append(pid)

    def events_lines(self) -> list[str]:
        return self.events.read_text().splitlines() if self.events.exists() else []

    def log_lines(self) -> list[str]:
        return self.logfile.read_text().splitlines() if self.logfile.exists() else []

    def wait_for(self, predicate: Callable[[], bool], timeout: float = 5.0) -> bool:
        return wait_until(predicate, timeout)

    def cleanup(self) -> None:
        for pid in self.started:
            if process.is_ldirector(pid):
                os.kill(pid, signal.SIGKILL)
                process.wait_for_exit(pid, 5)


@pytest.fixture(name="sandbox")
def sandbox_fixture(tmp_path: Path) -> Iterator[Sandbox]:
    root = tmp_path / "run"
    root.mkdir()
    logfile = tmp_path / "ldirectord.log"
    env = {
        **os.environ,
        process.RUN_DIR_ENV: str(root),
        "DRIVER_EVENTS": str(tmp_path / "events"),
        "TZ": "UTC",
    }
    for name in ("NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID"):
        env.pop(name, None)
    box = Sandbox(
        root=root,
        config=tmp_path / "test.cf",
        logfile=logfile,
        events=tmp_path / "events",
        env=env,
        command=[sys.executable, str(DRIVER)],
    )
    box.write_config(f'logfile="{logfile}"')
    yield box
    box.cleanup()


@pytest.fixture(name="wrapper")
def wrapper_fixture(tmp_path: Path, sandbox: Sandbox) -> Path:
    """An executable ``ldirectord`` for shell scripts (init script, OCF agent) to call."""
    path = tmp_path / "bin" / "ldirectord"
    path.parent.mkdir()
    path.write_text(f'#!/bin/sh\nexec {sys.executable} {DRIVER} "$@"\n')
    path.chmod(0o755)
    return path


def wait_until(predicate: Callable[[], bool], timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.01)
    return predicate()
