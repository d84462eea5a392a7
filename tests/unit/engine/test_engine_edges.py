"""The engine's edges: the owned-services file, fallbackcommand processes, probe planning."""

from __future__ import annotations

import asyncio
import logging
import os
from ipaddress import ip_address
from pathlib import Path

import pytest
from engine_world import config

import checks
from checks.types import CheckSpec, ConnectSpec, HttpSpec, PingSpec, Result, Target
from ldirector.engine.fallbackcmd import FallbackCommands, argv, spawn
from ldirector.engine.probes import plan, probe_for
from ldirector.ipvs.types import Family, FwmarkServiceKey, InetServiceKey, Protocol, ServiceKey
from ldirector.owned import OwnedStore, default_path
from ldirector.scheduler import run_once

KEYS: set[ServiceKey] = {
    InetServiceKey(Protocol.TCP, ip_address("127.0.0.100"), 80),
    InetServiceKey(Protocol.UDP, ip_address("::1"), 53),
    FwmarkServiceKey(Family.INET6, 7),
}


def test_owned_store_round_trip_and_atomic_replace(tmp_path: Path) -> None:
    store = OwnedStore(tmp_path / "run" / "x.cf.owned")
    assert store.load() == frozenset()
    store.save(KEYS)
    assert store.load() == KEYS
    text = store.path.read_text() if store.path else ""
    assert "fwm6:7" in text and "udp:[::1]:53" in text
    store.save([])
    assert store.load() == frozenset()
    assert os.listdir(tmp_path / "run") == ["x.cf.owned"]  # no temporary left behind


def test_owned_store_skips_bad_lines(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    path = tmp_path / "owned"
    path.write_text("# header\ntcp:127.0.0.100:80\nnonsense\n\nfwm:0\n")
    with caplog.at_level(logging.WARNING):
        assert OwnedStore(path).load() == {
            InetServiceKey(Protocol.TCP, ip_address("127.0.0.100"), 80)
        }
    assert f"{path}:3:" in caplog.text and f"{path}:5:" in caplog.text


def test_owned_store_in_memory_and_default_path() -> None:
    store = OwnedStore(None)
    store.save(KEYS)
    assert store.load() == KEYS
    assert default_path("/etc/ha.d/ldirectord.cf") == Path("/run/ldirector/ldirectord.cf.owned")


FWM = """\
fallbackcommand=/bin/echo "two words"

virtual=100
	real=127.0.0.2 gate
	checktype=connect
	checkport=80

virtual=127.0.0.100:53
	protocol=udp
	real=127.0.0.3:53 masq
	checktype=ping
	checkcount=3
	checktimeout=2
"""


def test_fallbackcommand_argv() -> None:
    fwm, udp = config(FWM).virtuals
    assert argv(fwm, "start") == ["/bin/echo", "two words", "start", "100:0", "fwm"]
    assert argv(udp, "stop") == ["/bin/echo", "two words", "stop", "127.0.0.100:53", "udp"]


async def test_spawn_runs_without_a_shell_and_reports_failure(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    marker = tmp_path / "ran"
    assert await spawn(["/bin/sh", "-c", f'echo "$0" > {marker}', "x;rm -rf /"]) == 0
    assert marker.read_text() == "x;rm -rf /\n"  # arguments arrive verbatim
    with caplog.at_level(logging.ERROR):
        assert await spawn(["/bin/sh", "-c", "echo nope >&2; exit 3"]) == 3
    assert "exit status 3: nope" in caplog.text


async def test_fallback_commands_run_in_order_and_survive_missing_programs(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    log_file = tmp_path / "log"
    text = (
        f"fallbackcommand=/bin/sh -c 'echo $0 >> {log_file}'\n\n"
        "virtual=127.0.0.100:80\n\treal=127.0.0.2:80 masq\n"
    )
    (virtual,) = config(text).virtuals
    commands = FallbackCommands()
    for action in ("start", "stop", "start"):
        commands.run(virtual, action)
    await commands.wait()
    assert log_file.read_text().split() == ["start", "stop", "start"]
    missing = config(text.replace("/bin/sh", "/nonexistent/cmd")).virtuals[0]
    with caplog.at_level(logging.ERROR):
        commands.run(missing, "start")
        await commands.wait()
    assert "/nonexistent/cmd" in caplog.text


def test_probe_timeouts_follow_ldirectord() -> None:
    # A virtual's own checkinterval counts, fork=yes or not (ldirectord ignores it without).
    text = """\
checktimeout=4
negotiatetimeout=20

virtual=127.0.0.100:80
	real=127.0.0.2:80 masq
	service=http
	checkinterval=7

virtual=127.0.0.101:80
	real=127.0.0.2:80 masq
	checktype=connect

virtual=127.0.0.102:80
	real=127.0.0.2:80 masq
	service=http
	checktype=3
"""
    negotiate, connect, combined = (probe_for(v, v.reals[0]) for v in config(text).virtuals)
    assert negotiate and isinstance(negotiate.spec, HttpSpec)
    assert (negotiate.timeout, negotiate.interval) == (20, 7)
    assert connect and connect.spec == ConnectSpec() and connect.timeout == 4
    assert combined and combined.combined == 3
    assert (combined.timeout, combined.connect_timeout) == (20, 4)
    _, ping = config(FWM).virtuals
    probe = probe_for(ping, ping.reals[0])
    assert (
        probe and isinstance(probe.spec, PingSpec) and probe.timeout == 6.5
    )  # 3 attempts x 2 s, and slack


def test_identical_checks_share_a_probe_only_when_identical() -> None:
    text = """\
virtual=127.0.0.100:110
	real=127.0.0.2:110 masq
	service=pop
	login="alice"
	passwd="one"

virtual=127.0.0.101:110
	real=127.0.0.2:110 masq
	service=pop
	login="alice"
	passwd="two"

virtual=127.0.0.102:110
	real=127.0.0.2:110 masq
	service=pop
	login="alice"
	passwd="one"
"""
    probe_of, readers = plan(config(text))
    assert len(probe_of) == 3 and len(readers) == 2  # B9: different passwords, different probes
    shared = next(keys for keys in readers.values() if len(keys) == 2)
    assert {str(k.service) for k in shared} == {"tcp:127.0.0.100:110", "tcp:127.0.0.102:110"}


async def test_run_once_tells_its_deadline_from_a_check_that_let_a_timeout_escape(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The rules and wording of checks.probe, with the traceback logged by the scheduler."""
    target = Target(address=ip_address("127.0.0.1"), port=80)

    async def hang(_target: Target, _spec: CheckSpec) -> Result:
        await asyncio.sleep(60)
        raise AssertionError("not reached")

    async def leaky(_target: Target, _spec: CheckSpec) -> Result:
        raise TimeoutError("socket timed out")

    assert await run_once(hang, target, ConnectSpec(), 0.02) == Result(
        False, f"timed out after {checks.format_seconds(0.02)}"
    )
    with caplog.at_level(logging.ERROR):
        result = await run_once(leaky, target, ConnectSpec(), 5)
    assert result == Result(False, "internal error: TimeoutError('socket timed out')")
    assert "let a timeout escape" in caplog.text and "Traceback" in caplog.text
