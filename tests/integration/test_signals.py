"""Signals on a real daemon: HUP reloads, TERM/INT/QUIT stop promptly, systemd notifications."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import time
from pathlib import Path

import pytest

from ldirector.daemon import process
from tests.support.sandbox import Sandbox


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT, signal.SIGQUIT])
def test_terminating_signals_stop_promptly_while_a_check_hangs(
    sandbox: Sandbox, sig: signal.Signals
) -> None:
    sandbox.env["DRIVER_SLOW"] = "1"  # a "check" that would take an hour is awaiting
    pid = sandbox.start()
    sent = time.monotonic()
    os.kill(pid, sig)
    assert process.wait_for_exit(pid, 5)
    assert time.monotonic() - sent < 2
    assert not sandbox.pid_file.exists()
    name = sig.name.removeprefix("SIG")
    assert sandbox.log_lines()[-1].endswith(f"] Linux Director Daemon terminated on signal: {name}")
    assert sandbox.events_lines()[-1] == "stopped"


def test_hup_reloads_and_a_repeated_term_does_not_cut_cleanup_short(sandbox: Sandbox) -> None:
    sandbox.env["DRIVER_SLOW_STOP"] = "0.5"
    pid = sandbox.start()
    os.kill(pid, signal.SIGHUP)
    assert sandbox.wait_for(lambda: "reload" in sandbox.events_lines())
    assert any(
        line.endswith("] Reloading Linux Director Daemon config on signal")
        for line in sandbox.log_lines()
    )
    os.kill(pid, signal.SIGTERM)
    time.sleep(0.1)
    os.kill(pid, signal.SIGTERM)  # systemd or an impatient operator
    assert process.wait_for_exit(pid, 5)
    assert sandbox.events_lines()[-1] == "stopped"  # the slow cleanup ran to its end


def test_hup_with_a_broken_config_keeps_the_running_one(sandbox: Sandbox) -> None:
    pid = sandbox.start()
    sandbox.write_config(f'logfile="{sandbox.logfile}"', "broken")
    os.kill(pid, signal.SIGHUP)
    assert sandbox.wait_for(
        lambda: any("keeping the running configuration" in ln for ln in sandbox.log_lines())
    )
    assert any(
        f"{sandbox.config}:2: error: unknown directive 'broken'" in ln for ln in sandbox.log_lines()
    )
    assert "reload" not in sandbox.events_lines()
    # The body hears of it, so /metrics can show a failed reload.
    assert sandbox.wait_for(lambda: "reload rejected" in sandbox.events_lines())
    assert process.is_ldirector(pid)


def test_under_systemd_it_stays_in_the_foreground_and_notifies(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    address = str(tmp_path / "notify")
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as server:
        server.bind(address)
        server.settimeout(10)
        sandbox.env["NOTIFY_SOCKET"] = address
        daemon = subprocess.Popen([*sandbox.command, str(sandbox.config), "start"], env=sandbox.env)
        try:
            assert server.recv(256) == b"READY=1"
            # Type=notify: the main process is the daemon itself, and it still owns the pid file
            # so `ldirectord status` and init scripts keep working.
            assert sandbox.pid() == daemon.pid
            status = sandbox.cli("status")
            assert (status.returncode, status.stderr) == (
                0,
                f"ldirectord for {sandbox.config} is running with pid: {daemon.pid}\n",
            )
            daemon.send_signal(signal.SIGHUP)
            assert server.recv(256).startswith(b"RELOADING=1\nMONOTONIC_USEC=")
            assert server.recv(256) == b"READY=1"
            daemon.send_signal(signal.SIGTERM)
            assert server.recv(256) == b"STOPPING=1"
            assert daemon.wait(10) == 0
        finally:
            daemon.kill()
            daemon.wait()
    assert not sandbox.pid_file.exists()


def test_supervised_runs_in_the_foreground_logging_to_stdout(sandbox: Sandbox) -> None:
    sandbox.write_config(f'logfile="{sandbox.logfile}"', "supervised=yes")
    daemon = subprocess.Popen(
        [*sandbox.command, str(sandbox.config), "start"],
        env=sandbox.env,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert sandbox.wait_for(lambda: f"run {daemon.pid}" in sandbox.events_lines())
        assert not sandbox.pid_file.exists()
        daemon.terminate()
        out, _ = daemon.communicate(timeout=10)
    finally:
        daemon.kill()
        daemon.wait()
    lines = out.splitlines()
    assert re.fullmatch(
        rf"\[[^]|]+\] Starting Linux Director v\S+ with pid: {daemon.pid}", lines[1]
    )
    assert lines[-1].endswith("] Linux Director Daemon terminated on signal: TERM")
    assert all(line.startswith("[") and "|" not in line.split("]")[0] for line in lines)
    assert not sandbox.logfile.exists()


@pytest.mark.parametrize("autoreload", ["yes", "no"])
def test_config_change_on_disk_runs_callback_and_autoreload(
    sandbox: Sandbox, tmp_path: Path, autoreload: str
) -> None:
    called = tmp_path / "called"
    callback = tmp_path / "callback.sh"
    callback.write_text(f'#!/bin/sh\necho "$1" >> {called}\n')
    callback.chmod(0o755)
    lines = [
        f'logfile="{sandbox.logfile}"',
        "checkinterval=0.1",
        f"autoreload={autoreload}",
        f'callback="{callback}"',
    ]
    sandbox.write_config(*lines)
    sandbox.start()
    time.sleep(0.3)  # the first poll only records the checksum
    assert not called.exists()
    sandbox.write_config(*lines, "# edited")
    assert sandbox.wait_for(lambda: called.exists() and called.read_text() != "")
    assert called.read_text() == f"{sandbox.config}\n"
    action = " - reread new configuration" if autoreload == "yes" else " - ignore new configuration"

    def logged() -> bool:
        log = sandbox.log_lines()
        return any(
            f"Configuration file '{sandbox.config}' has changed on disk" in ln for ln in log
        ) and any(ln.endswith(f"] {action}") for ln in log)

    assert sandbox.wait_for(logged)
    if autoreload == "yes":
        assert sandbox.wait_for(lambda: "reload" in sandbox.events_lines())
    else:
        time.sleep(0.3)
        assert "reload" not in sandbox.events_lines()
    assert not any(
        "Reloading Linux Director Daemon config on signal" in ln for ln in sandbox.log_lines()
    )


def test_a_relative_config_path_still_reloads_after_daemonizing(sandbox: Sandbox) -> None:
    done = subprocess.run(
        [*sandbox.command, sandbox.config.name, "start"],
        env=sandbox.env,
        cwd=sandbox.config.parent,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    sandbox._remember()
    pid = sandbox.pid()
    assert pid is not None
    os.kill(pid, signal.SIGHUP)  # the daemon now runs in /: the path must be absolute
    assert sandbox.wait_for(lambda: "reload" in sandbox.events_lines())


def test_under_systemd_execute_instances_still_daemonize(sandbox: Sandbox, tmp_path: Path) -> None:
    child = tmp_path / "child.cf"
    child.write_text(f'logfile="{tmp_path}/child.log"\n')
    child_pid_file = process.pid_path("child.cf", sandbox.root)
    sandbox.write_config(f'logfile="{sandbox.logfile}"', f"execute={child}")
    address = str(tmp_path / "notify")
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as server:
        server.bind(address)
        server.settimeout(10)
        sandbox.env["NOTIFY_SOCKET"] = address
        daemon = subprocess.Popen([*sandbox.command, str(sandbox.config), "start"], env=sandbox.env)
        try:
            assert server.recv(256) == b"READY=1"
            assert sandbox.wait_for(
                lambda: process.pid_status(child_pid_file).state is process.PidState.RUNNING
            )
            child_pid = process.read_pid(child_pid_file)
            assert child_pid is not None
            sandbox.started.append(child_pid)
            stat = Path(f"/proc/{child_pid}/stat").read_text()
            parent_of_child = int(stat.rpartition(")")[2].split()[1])
            assert parent_of_child != daemon.pid  # detached, not a foreground "unit"
            server.settimeout(0.5)
            with pytest.raises(TimeoutError):
                server.recv(256)  # and it never notified systemd as if it were the unit
            daemon.send_signal(signal.SIGTERM)
            assert daemon.wait(20) == 0
            assert process.wait_for_exit(child_pid, 5)
        finally:
            daemon.kill()
            daemon.wait()
