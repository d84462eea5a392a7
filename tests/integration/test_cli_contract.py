"""The command-line contract as a table: every verb x daemon state, run as real processes.

States: ``running`` (a daemon started by ``start``), ``stopped`` (nothing), ``stale`` (a pid
file naming a live process that is not ldirector: this very test process, which ``stop`` must
never kill), ``broken`` (a running daemon whose config file has since been broken).
"""

from __future__ import annotations

import io
import os
import platform
import subprocess
import sys
from pathlib import Path

import pytest

from ldirector.cli import grammar, lifecycle, main
from ldirector.daemon import process
from tests.support import lookalike
from tests.support.sandbox import Sandbox

RUNNING = "ldirectord for {cfg} is running with pid: {pid}\n"
STOPPED = "ldirectord is stopped for {cfg}\n"
STALE = "ldirectord stale pid file {pidfile} for {cfg}\n"
BROKEN = "{cfg}:2: error: unknown directive 'broken'\n" + (
    "Exiting with exit_status 2: config_error: Configuration Error\n"
)

# verb -> state -> (exit code, stdout, stderr, what the daemon looks like afterwards)
# afterwards: same = the original daemon still runs and owns the pid file; gone = it exited and
# its pid file is gone; new = a different daemon runs; none = no daemon; hup = same + reloaded.
TABLE: dict[str, dict[str, tuple[int, str, str, str]]] = {
    "status": {
        "running": (0, "", RUNNING, "same"),
        "stopped": (3, STOPPED, "", "none"),
        "stale": (1, STOPPED, STALE, "none"),
        "broken": (0, "", RUNNING, "same"),
    },
    "stop": {
        "running": (0, "", "", "gone"),
        "stopped": (0, "", "", "none"),
        "stale": (0, "", "", "none"),
        "broken": (0, "", "", "gone"),
    },
    "start": {
        "running": (0, "", "", "same"),
        "stopped": (0, "", "", "new"),
        "stale": (0, "", "", "new"),
        "broken": (2, "", BROKEN, "same"),
    },
    "restart": {
        "running": (0, "", "", "new"),
        "stopped": (0, "", "", "new"),
        "stale": (0, "", "", "new"),
        "broken": (2, "", BROKEN, "same"),
    },
    "try-restart": {
        "running": (0, "", "", "new"),
        "stopped": (0, "", "", "none"),
        "stale": (0, "", "", "none"),
        "broken": (2, "", BROKEN, "same"),
    },
    "reload": {
        "running": (0, "", "", "hup"),
        "stopped": (1, "", STOPPED, "none"),
        "stale": (1, "", STOPPED, "none"),
        "broken": (2, "", BROKEN, "same"),
    },
}
TABLE["force-reload"] = TABLE["reload"]

CASES = [(verb, state) for verb, row in TABLE.items() for state in row]


def arrange(box: Sandbox, state: str) -> int | None:
    if state in ("running", "broken"):
        pid = box.start()
        if state == "broken":
            box.write_config(f'logfile="{box.logfile}"', "broken")
        return pid
    if state == "stale":
        box.pid_file.write_text(f"{os.getpid()}\n")
    return None


@pytest.mark.parametrize(("verb", "state"), CASES, ids=[f"{v}-{s}" for v, s in CASES])
def test_command_contract(sandbox: Sandbox, verb: str, state: str) -> None:
    code, out, err, after = TABLE[verb][state]
    before = arrange(sandbox, state)
    done = sandbox.cli(verb)
    names = {"cfg": sandbox.config, "pid": before, "pidfile": sandbox.pid_file}
    assert (done.returncode, done.stdout, done.stderr) == (
        code,
        out.format(**names),
        err.format(**names),
    )
    now = sandbox.pid()
    running_now = now is not None and process.is_ldirector(now)
    match after:
        case "same":
            assert now == before and running_now
        case "hup":
            assert now == before and running_now
            assert sandbox.wait_for(lambda: "reload" in sandbox.events_lines())
        case "gone":
            assert before is not None and not process.is_ldirector(before)
            assert not sandbox.pid_file.exists()
        case "new":
            assert running_now and now != before
            assert before is None or not process.is_ldirector(before)
        case "none":
            assert not running_now
    if after in ("same", "broken"):
        assert "reload" not in sandbox.events_lines()


def test_stop_waits_for_the_cleanup_to_finish(sandbox: Sandbox) -> None:
    sandbox.env["DRIVER_SLOW_STOP"] = "0.5"
    pid = sandbox.start()
    done = sandbox.cli("stop")
    assert done.returncode == 0
    # Returned only after the daemon finished its (slow) cleanup and exited.
    assert sandbox.events_lines()[-1] == "stopped"
    assert not process.is_ldirector(pid)


def test_stop_is_bounded_when_the_daemon_ignores_term(tmp_path: Path) -> None:
    stubborn = lookalike.spawn(tmp_path, "x.cf", "start", ignore_term=True)
    try:
        pid_file = process.pid_path("x.cf", tmp_path)
        pid_file.write_text(f"{stubborn.pid}\n")
        err = io.StringIO()
        inv = grammar.parse(["x.cf", "stop"], main.SYNTAX)
        assert isinstance(inv, grammar.Invocation)
        ctx = lifecycle.Context(
            io.StringIO(),
            err,
            config=tmp_path / "x.cf",
            load=lambda _p: process.Settings(),
            run_dir=tmp_path,
            stop_timeout=0.3,
        )
        assert lifecycle.stop(inv, ctx) == 1
        assert (
            err.getvalue()
            == f"ldirectord for x.cf (pid {stubborn.pid}) did not stop within 0.3 s\n"
        )
        assert stubborn.poll() is None and pid_file.exists()
    finally:
        stubborn.kill()
        stubborn.wait()


@pytest.mark.parametrize(
    ("argv", "code", "stream", "text"),
    [
        ([], 255, "err", "Usage:"),
        (["frobnicate"], 255, "err", "Usage:"),
        (["a.cf", "b.cf", "start"], 255, "err", "Usage:"),
        (["--bogus", "status"], 255, "err", "Unknown option: bogus"),
        (["-v"], 0, "out", "Linux Director v"),
        (["--version"], 0, "out", "Linux Director v"),
        (["-h"], 0, "out", "start|stop|restart|try-restart|reload|force-reload|status"),
        (["/nonexistent/x.cf", "start"], 1, "err", "Config file /nonexistent/x.cf not found\n"),
        (["/nonexistent/x.cf", "reload"], 1, "err", "ldirectord is stopped for /nonexistent/x.cf"),
        (["/nonexistent/x.cf", "status"], 3, "out", "ldirectord is stopped for /nonexistent/x.cf"),
        (["/nonexistent/x.cf", "stop"], 0, "out", ""),
    ],
)
def test_usage_version_and_missing_config(
    sandbox: Sandbox, argv: list[str], code: int, stream: str, text: str
) -> None:
    done = sandbox.run(*argv)
    assert done.returncode == code
    assert text in (done.stdout if stream == "out" else done.stderr)
    assert "Traceback" not in done.stderr


def test_unwritable_pid_directory_is_a_clear_error(sandbox: Sandbox) -> None:
    sandbox.env[process.RUN_DIR_ENV] = str(sandbox.root / "missing")
    done = sandbox.cli("start")
    assert done.returncode == 1
    assert done.stderr == f"Can not write pid file {sandbox.root}/missing/ldirectord.test.cf.pid\n"


def test_debug_runs_in_the_foreground_on_stderr_without_pid_file(sandbox: Sandbox) -> None:
    proc = subprocess.Popen(
        [*sandbox.command, "-d", str(sandbox.config), "start"],
        env=sandbox.env,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert sandbox.wait_for(lambda: any(ln.startswith("run ") for ln in sandbox.events_lines()))
        assert not sandbox.pid_file.exists()
        assert f"run {proc.pid}" in sandbox.events_lines()
        proc.terminate()
        _, err = proc.communicate(timeout=10)
    finally:
        proc.kill()
    assert proc.returncode == 0
    assert "Starting Linux Director v" in err and f"with pid: {proc.pid}" in err
    assert err.rstrip().endswith("Linux Director Daemon terminated on signal: TERM")
    assert not sandbox.logfile.exists()


def test_secret_exposure_warning(tmp_path: Path) -> None:
    config = tmp_path / "x.cf"
    config.write_text("passwd=hunter2\n")
    config.chmod(0o644)
    warning = lifecycle.secret_exposure_warning(config, has_secrets=True)
    assert warning == (
        f"{config}: warning: holds passwords or secrets but is readable by other users"
        f" (chmod o-rwx {config})"
    )
    assert lifecycle.secret_exposure_warning(config, has_secrets=False) is None
    config.chmod(0o640)
    assert lifecycle.secret_exposure_warning(config, has_secrets=True) is None


def test_start_warns_about_a_world_readable_config_with_secrets(sandbox: Sandbox) -> None:
    sandbox.write_config(f'logfile="{sandbox.logfile}"', 'passwd="hunter2"')
    sandbox.config.chmod(0o644)
    done = sandbox.cli("start")
    assert done.returncode == 0
    assert "holds passwords or secrets but is readable by other users" in done.stderr
    assert "hunter2" not in done.stderr


def test_execute_instances_follow_this_one(sandbox: Sandbox, tmp_path: Path) -> None:
    child = tmp_path / "child.cf"
    child.write_text(f'logfile="{tmp_path}/child.log"\n')
    child_pid_file = process.pid_path("child.cf", sandbox.root)

    def child_running() -> bool:
        return process.pid_status(child_pid_file).state is process.PidState.RUNNING

    sandbox.write_config(f'logfile="{sandbox.logfile}"', f"execute={child}")
    parent = sandbox.start()
    assert sandbox.wait_for(child_running)  # started once this instance was ready
    child_pid = process.read_pid(child_pid_file)
    assert child_pid is not None
    sandbox.started.append(child_pid)
    status = sandbox.cli("status")
    assert status.returncode == 0
    assert status.stderr == (
        f"ldirectord for {sandbox.config} is running with pid: {parent}\n"
        f"ldirectord for {child} is running with pid: {child_pid}\n"
    )
    # A reload that drops the execute= line stops that instance; adding it back starts it.
    sandbox.write_config(f'logfile="{sandbox.logfile}"')
    assert sandbox.cli("reload").returncode == 0
    assert sandbox.wait_for(lambda: not child_running())
    sandbox.write_config(f'logfile="{sandbox.logfile}"', f"execute={child}")
    assert sandbox.cli("reload").returncode == 0
    assert sandbox.wait_for(child_running)
    restarted = process.read_pid(child_pid_file)
    assert restarted is not None and restarted != child_pid
    sandbox.started.append(restarted)
    # TERM to this instance alone (as systemd sends it) also stops the execute= instances.
    os.kill(parent, 15)
    assert process.wait_for_exit(parent, 10)
    assert not child_running() and not process.is_ldirector(restarted)


def test_stop_and_status_need_only_the_pid_file(sandbox: Sandbox) -> None:
    pid = sandbox.start()
    # Appended to the running daemon's config: bytes its loader cannot even decode.
    with sandbox.config.open("ab") as config:
        config.write(b"\xff\xfe broken\n")
    names = {"cfg": sandbox.config, "pid": pid}
    status = sandbox.cli("status")
    assert (status.returncode, status.stdout, status.stderr) == (0, "", RUNNING.format(**names))
    stop = sandbox.cli("stop")
    assert (stop.returncode, stop.stdout, stop.stderr) == (0, "", "")
    assert not process.is_ldirector(pid) and not sandbox.pid_file.exists()


@pytest.mark.parametrize(
    ("kind", "config"),
    [("exec-a", ""), ("python-c", ""), ("other-user", ""), ("same-user", "other.cf")],
)
def test_a_pid_file_naming_a_stranger_is_stale(sandbox: Sandbox, kind: str, config: str) -> None:
    if kind == "other-user" and not lookalike.can_run_as_another_user():
        pytest.skip("needs root and /usr/bin/python3 to run a process as nobody")
    # After a crash the pid was reused by a process that mentions ldirectord: another user's,
    # another program, or this program running another config.
    with lookalike.impostor(kind, config or str(sandbox.config), "start") as stranger:
        sandbox.pid_file.write_text(f"{stranger.pid}\n")
        names = {"cfg": sandbox.config, "pidfile": sandbox.pid_file}
        status = sandbox.cli("status")
        assert (status.returncode, status.stdout, status.stderr) == (
            1,
            STOPPED.format(**names),
            STALE.format(**names),
        )
        assert sandbox.cli("start").returncode == 0
        pid = sandbox.pid()
        assert pid is not None and pid != stranger.pid and process.is_ldirector(pid)
        assert stranger.poll() is None  # left alone


HOST_HAS_IPVS = (
    Path("/proc/sys/net/ipv4/vs").exists()
    or Path(f"/lib/modules/{platform.release()}/kernel/net/netfilter/ipvs").exists()
)


@pytest.mark.skipif(HOST_HAS_IPVS, reason="this host has IPVS: start would really run")
def test_an_expected_failure_is_one_line_even_with_debug(sandbox: Sandbox, tmp_path: Path) -> None:
    sandbox.write_config(f'logfile="{sandbox.logfile}"', "virtual=127.0.0.1:80")
    env = {**sandbox.env, "LDIRECTOR_CONTROL_DIR": str(tmp_path / "ctl")}
    script = Path(sys.executable).parent / "ldirector"  # the real engine on the real kernel
    done = subprocess.run(
        [str(script), "-d", str(sandbox.config), "start"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 1
    assert "Traceback" not in done.stderr and "traceback" not in done.stderr
    assert [line for line in done.stderr.splitlines() if "failed" in line] == [
        "the daemon failed: this kernel has no IPVS support: load it with 'modprobe ip_vs'"
        " or use a kernel built with CONFIG_IP_VS"
    ]
