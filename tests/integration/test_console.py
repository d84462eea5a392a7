"""The installed console scripts (``ldirectord`` and ``ldirector``) and the real config parser.

The daemon under test is the real engine on an in-memory IPVS table (the driver's engine mode),
since this machine's kernel has no IPVS; every verb is then run through the console script.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from ldirector.daemon import process
from tests.support.sandbox import Sandbox

SCRIPTS = Path(sys.executable).parent


@pytest.fixture(params=["ldirectord", "ldirector"])
def script(request: pytest.FixtureRequest) -> list[str]:
    return [str(SCRIPTS / request.param)]


def engine_daemon(sandbox: Sandbox, tmp_path: Path) -> int:
    state = tmp_path / "state"
    state.mkdir(exist_ok=True)
    sandbox.env.update({"DRIVER_ENGINE": "1", "DRIVER_STATE": str(state)})
    sandbox.write_config(f'logfile="{sandbox.logfile}"', "virtual=127.0.0.1:80")
    return sandbox.start()


def run(script: list[str], sandbox: Sandbox, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*script, *args], env=sandbox.env, capture_output=True, text=True, timeout=60, check=False
    )


def test_verbs_through_the_console_script(
    script: list[str], sandbox: Sandbox, tmp_path: Path
) -> None:
    pid = engine_daemon(sandbox, tmp_path)
    config = str(sandbox.config)
    status = run(script, sandbox, config, "status")
    assert (status.returncode, status.stdout, status.stderr) == (
        0,
        "",
        f"ldirectord for {config} is running with pid: {pid}\n",
    )
    assert run(script, sandbox, config, "start").returncode == 0  # already running
    assert run(script, sandbox, config, "reload").returncode == 0
    assert sandbox.wait_for(
        lambda: any("Reloading Linux Director Daemon" in ln for ln in sandbox.log_lines())
    )
    # the config breaks under a running daemon.
    sandbox.write_config(f'logfile="{sandbox.logfile}"', "virtual=127.0.0.1:80", "recieve=x")
    reload = run(script, sandbox, config, "reload")
    assert reload.returncode == 2
    assert f"{config}:3: error:" in reload.stderr
    assert reload.stderr.endswith("Exiting with exit_status 2: config_error: Configuration Error\n")
    restart = run(script, sandbox, config, "restart")
    assert restart.returncode == 2 and sandbox.pid() == pid and process.is_ldirector(pid)
    assert run(script, sandbox, config, "status").returncode == 0
    stop = run(script, sandbox, config, "stop")
    assert (stop.returncode, stop.stdout, stop.stderr) == (0, "", "")
    assert not process.is_ldirector(pid) and not sandbox.pid_file.exists()
    stopped = run(script, sandbox, config, "status")
    assert (stopped.returncode, stopped.stdout) == (3, f"ldirectord is stopped for {config}\n")
    assert run(script, sandbox, config, "reload").returncode == 1


@pytest.mark.parametrize(
    ("argv", "code"),
    [([], 255), (["frobnicate"], 255), (["-v"], 0), (["/nonexistent.cf", "start"], 1)],
)
def test_console_script_usage_and_errors(
    script: list[str], sandbox: Sandbox, argv: list[str], code: int
) -> None:
    done = run(script, sandbox, *argv)
    assert done.returncode == code
    assert "Traceback" not in done.stderr


def test_python_dash_m(sandbox: Sandbox) -> None:
    done = run([sys.executable, "-m", "ldirector"], sandbox, str(sandbox.config), "status")
    assert (done.returncode, done.stdout) == (3, f"ldirectord is stopped for {sandbox.config}\n")
