"""Engine scenarios on the fake backend and clock: the observed ldirectord sequences of reference
section 8, with the fixed behaviour (no add-then-delete flap, no fallback flap)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Collection
from ipaddress import ip_address
from pathlib import Path

import pytest

from ldirector.config import ConfigError
from ldirector.engine import Notice
from ldirector.ipvs.backend import IpvsError
from ldirector.ipvs.ops import AddDest, AddService, DelDest, EditDest
from ldirector.ipvs.types import (
    Dest,
    DestKey,
    Forward,
    InetServiceKey,
    IpvsTable,
    Protocol,
    Service,
    ServiceKey,
    VirtualService,
)
from ldirector.testing import FakeBackend
from tests.support.engine_world import World, config

VIP = "127.0.0.100:80"
SVC = InetServiceKey(Protocol.TCP, ip_address("127.0.0.100"), 80)

COLD = """\
checktimeout=3
checkinterval=5
quiescent=no
fallback=127.0.0.1:80 gate

virtual=127.0.0.100:80
	real=127.0.0.2:8080 masq 5
	real=127.0.0.3:8080 masq
	real=127.0.0.4:8080 masq
	service=http
	request="index.html"
	receive="Test Page"
	scheduler=wrr
"""


async def test_cold_start_adds_only_healthy_reals_and_no_flap(tmp_path: Path) -> None:
    """Reference 8.1: ldirectord adds every real, then deletes the unhealthy ones."""
    w = World(COLD, tmp_path, up={"127.0.0.2:8080": True})
    await w.engine.start()
    # The service and its fallback at once; reals only once checked.
    assert w.ops()[:2] == [
        "-A -t 127.0.0.100:80 -s wrr",
        "-a -t 127.0.0.100:80 -r 127.0.0.1:80 -g -w 1 -x 0 -y 0",
    ]
    await w.clock.advance(0.1)
    assert w.ops() == [
        "-a -t 127.0.0.100:80 -r 127.0.0.2:8080 -m -w 5 -x 0 -y 0",
        "-d -t 127.0.0.100:80 -r 127.0.0.1:80",
    ]
    assert w.events() == [
        "fallback-on tcp:127.0.0.100:80",
        "added 127.0.0.2:8080",
        "fallback-off tcp:127.0.0.100:80",
    ]
    # Rounds later: the failing reals were never added, nothing moves.
    await w.clock.advance(30)
    assert w.ops() == []
    assert w.table() == ["tcp:127.0.0.100:80", "  127.0.0.2:8080 w5"]
    assert w.converged()
    # Every real was checked about once per checkinterval.
    per_real = {
        t: sum(1 for _, tt, _ in w.calls if tt == t) for t in ("127.0.0.2:8080", "127.0.0.3:8080")
    }
    assert all(6 <= n <= 8 for n in per_real.values())
    await w.engine.shutdown()  # cleanstop=yes
    assert w.ops() == ["-D -t 127.0.0.100:80"]
    assert w.table() == []
    assert w.store.load() == frozenset()


QUIESCENT = """\
checkinterval=10
quiescent=yes
failurecount=2
fallback=127.0.0.1:80 gate
fallbackcommand=/usr/local/bin/sorry --verbose

virtual=127.0.0.100:80
	real=127.0.0.2:8080 masq 3
	real=127.0.0.3:8080 masq 2
	checktype=external
	checkcommand="/usr/local/bin/probe"
"""


async def test_quiescent_failurecount_fallback_and_fallbackcommand(tmp_path: Path) -> None:
    """Reference 8.2: soft failure, then quiesce; all down gives the fallback and its command."""
    both = {"127.0.0.2:8080": True, "127.0.0.3:8080": True}
    w = World(QUIESCENT, tmp_path, up=both)
    await w.engine.start()
    await w.clock.advance(0.1)
    # A cold start has nothing up until the first checks pass: the fallback (and its
    # command) are switched on at once and off as soon as a real is added.
    assert w.commands == [
        ["/usr/local/bin/sorry", "--verbose", "start", VIP, "tcp"],
        ["/usr/local/bin/sorry", "--verbose", "stop", VIP, "tcp"],
    ]
    w.ops(), w.events()
    w.commands.clear()
    await w.clock.advance(15)  # past the spread second check: rounds are one interval apart

    w.up["127.0.0.2:8080"] = False
    await w.clock.advance(10)
    assert w.events() == ["soft-failure 127.0.0.2:8080"]
    assert w.ops() == []
    await w.clock.advance(10)
    assert w.events() == ["quiesced 127.0.0.2:8080"]
    assert w.ops() == ["-e -t 127.0.0.100:80 -r 127.0.0.2:8080 -m -w 0 -x 0 -y 0"]

    w.up["127.0.0.3:8080"] = False
    await w.clock.advance(20)
    assert w.events() == [
        "soft-failure 127.0.0.3:8080",
        "quiesced 127.0.0.3:8080",
        "fallback-on tcp:127.0.0.100:80",
    ]
    assert w.ops() == [
        "-a -t 127.0.0.100:80 -r 127.0.0.1:80 -g -w 1 -x 0 -y 0",
        "-e -t 127.0.0.100:80 -r 127.0.0.3:8080 -m -w 0 -x 0 -y 0",
    ]
    assert w.commands == [["/usr/local/bin/sorry", "--verbose", "start", VIP, "tcp"]]
    assert w.table() == [
        "tcp:127.0.0.100:80",
        "  127.0.0.1:80 w1",
        "  127.0.0.2:8080 w0",
        "  127.0.0.3:8080 w0",
    ]

    assert w.converged()
    w.up["127.0.0.2:8080"] = True
    await w.clock.advance(10)
    assert w.converged()
    assert w.events() == ["restored 127.0.0.2:8080", "fallback-off tcp:127.0.0.100:80"]
    assert w.ops() == [
        "-e -t 127.0.0.100:80 -r 127.0.0.2:8080 -m -w 3 -x 0 -y 0",
        "-d -t 127.0.0.100:80 -r 127.0.0.1:80",
    ]
    assert w.commands[-1] == ["/usr/local/bin/sorry", "--verbose", "stop", VIP, "tcp"]
    await w.engine.shutdown()


async def test_fallbackcommand_stop_at_shutdown(tmp_path: Path) -> None:
    """ldirectord leaves the fallbackcommand started when it stops."""
    w = World(QUIESCENT, tmp_path)
    await w.engine.start()
    await w.clock.advance(0.1)
    await w.engine.shutdown()
    assert [c[2:] for c in w.commands] == [["start", VIP, "tcp"], ["stop", VIP, "tcp"]]


def _svc(addr: str, sched: str = "wrr") -> Service:
    return Service(key=InetServiceKey(Protocol.TCP, ip_address(addr), 80), scheduler=sched)


def _dest(addr: str, weight: int, port: int = 8080) -> Dest:
    return Dest(address=ip_address(addr), port=port, forward=Forward.MASQ, weight=weight)


PREEXISTING = """\
checkinterval=10
quiescent=no

virtual=127.0.0.100:80
	real=127.0.0.11:8080 masq 5
	real=127.0.0.12:8080 masq
	real=127.0.0.13:8080 masq
	checktype=connect
"""


async def test_preexisting_table_adopted_without_flap(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Reference 8.3: keep serving reals, purge unknown ones, leave foreign services alone."""
    caplog.set_level(logging.INFO)
    foreign = VirtualService.of(_svc("127.0.9.9", "rr"), [_dest("127.0.9.1", 1, 80)])
    managed = VirtualService.of(
        _svc("127.0.0.100"),
        [_dest("127.0.0.11", 3), _dest("127.0.0.17", 1), _dest("127.0.0.12", 0)],
    )
    w = World(PREEXISTING, tmp_path, table=IpvsTable.of(foreign, managed))
    await w.engine.start()
    assert w.ops() == [
        "-e -t 127.0.0.100:80 -r 127.0.0.11:8080 -m -w 5 -x 0 -y 0",
        "-d -t 127.0.0.100:80 -r 127.0.0.12:8080",
        "-d -t 127.0.0.100:80 -r 127.0.0.17:8080",
    ]
    assert "Purged real server (start): 127.0.0.17:8080 (127.0.0.100:80)" in caplog.text
    # A real that is configured is not "purged": it is simply not added yet.
    assert "Purged real server (start): 127.0.0.12:8080" not in caplog.text
    # .11 was serving: it stays up without a check; .12 and .13 wait for theirs.
    w.up.update({"127.0.0.12:8080": True, "127.0.0.13:8080": True})
    await w.clock.advance(0.1)
    assert sorted(w.ops()) == [
        "-a -t 127.0.0.100:80 -r 127.0.0.12:8080 -m -w 1 -x 0 -y 0",
        "-a -t 127.0.0.100:80 -r 127.0.0.13:8080 -m -w 1 -x 0 -y 0",
    ]
    assert "127.0.0.11:8080" not in {t for _, t, _ in w.calls}  # not checked at once
    await w.clock.advance(10)
    # its first check fails (nobody listens): only now is it removed
    assert w.ops() == ["-d -t 127.0.0.100:80 -r 127.0.0.11:8080"]
    assert w.backend.table[foreign.key] == foreign
    await w.engine.shutdown()
    assert foreign.key in w.backend.table and SVC not in w.backend.table


async def test_restart_after_kill_changes_nothing_for_healthy_reals(tmp_path: Path) -> None:
    up = {"127.0.0.11:8080": True, "127.0.0.12:8080": True, "127.0.0.13:8080": True}
    first = World(PREEXISTING, tmp_path, up=up)
    await first.engine.start()
    await first.clock.advance(25)
    before = first.backend.table
    await first.engine.shutdown()  # cleanstop... but pretend kill -9: reuse the table below
    second = World(PREEXISTING, tmp_path, table=before, up=up)
    await second.engine.start()
    await second.clock.advance(60)
    assert second.ops() == []
    assert second.backend.table == before
    assert second.events() == []


BEFORE_HUP = """\
checkinterval=10
cleanstop=no

virtual=127.0.0.100:80
	real=127.0.0.2:8080 masq 5
	real=127.0.0.3:8080 masq
	checktype=connect
	scheduler=wrr

virtual=127.0.0.101:80
	real=127.0.0.4:8080 masq
	checktype=connect
"""

AFTER_HUP = """\
checkinterval=10
cleanstop=no

virtual=127.0.0.100:80
	real=127.0.0.2:8080 masq 7
	checktype=connect
	scheduler=wlc

virtual=127.0.0.102:80
	real=127.0.0.5:8080 masq
	checktype=connect
"""


async def test_reload_applies_the_difference_and_keeps_health(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Reference 8.4, fixed: no re-check of unchanged reals, no add-then-delete."""
    up = {f"127.0.0.{n}:8080": True for n in range(2, 6)}
    w = World(BEFORE_HUP, tmp_path, up=up)
    await w.engine.start()
    await w.clock.advance(15)
    w.ops(), w.events()
    checked_before = len(w.calls)
    with caplog.at_level(logging.INFO):
        await w.engine.reload(config(AFTER_HUP))
    for line in (
        "Added virtual server: 127.0.0.102:80",
        "Changed virtual server: 127.0.0.100:80",
        "Purged real server (start): 127.0.0.3:8080 (127.0.0.100:80)",
        "Purged virtual server (start): 127.0.0.101:80",
    ):
        assert line in caplog.text
    assert w.ops() == [
        "-A -t 127.0.0.102:80 -s wrr",
        "-E -t 127.0.0.100:80 -s wlc",
        "-e -t 127.0.0.100:80 -r 127.0.0.2:8080 -m -w 7 -x 0 -y 0",
        "-d -t 127.0.0.100:80 -r 127.0.0.3:8080",
        "-D -t 127.0.0.101:80",
    ]
    await w.clock.advance(0.1)
    # Only the new virtual's real is checked at once; it is added when it passes.
    assert [t for _, t, _ in w.calls[checked_before:]] == ["127.0.0.5:8080"]
    assert w.ops() == ["-a -t 127.0.0.102:80 -r 127.0.0.5:8080 -m -w 1 -x 0 -y 0"]
    assert w.store.load() == {SVC, InetServiceKey(Protocol.TCP, ip_address("127.0.0.102"), 80)}
    await w.clock.advance(60)
    assert w.ops() == [] and w.converged()
    await w.engine.shutdown()  # cleanstop=no: the table keeps serving
    assert w.ops() == []
    assert len(w.backend.table) == 2


async def test_reload_keeps_soft_failure_count(tmp_path: Path) -> None:
    text = QUIESCENT
    w = World(text, tmp_path, up={"127.0.0.2:8080": True, "127.0.0.3:8080": True})
    await w.engine.start()
    await w.clock.advance(0.1)
    await w.clock.advance(15)  # past the spread second check: rounds are one interval apart
    w.up["127.0.0.2:8080"] = False
    await w.clock.advance(10)
    assert w.events()[-1] == "soft-failure 127.0.0.2:8080"
    w.ops()
    calls = len(w.calls)
    # A comment-only change: same model, same probes, nothing moves, nothing re-checked.
    await w.engine.reload(config("# edited\n" + text))
    await w.clock.advance(0.1)
    assert w.ops() == [] and len(w.calls) == calls
    await w.clock.advance(10)
    assert w.events() == ["quiesced 127.0.0.2:8080"]  # the count carried over: 2/2 now
    await w.engine.shutdown()


async def test_failed_reload_keeps_the_old_config_working(tmp_path: Path) -> None:
    """after a broken reload ldirectord stops applying results; here nothing changes."""
    w = World(PREEXISTING, tmp_path, up={f"127.0.0.{n}:8080": True for n in (11, 12, 13)})
    await w.engine.start()
    await w.clock.advance(0.1)
    await w.clock.advance(15)  # past the spread second check: rounds are one interval apart
    w.ops()
    before = w.engine.config
    # The daemon loads the new file first; a file that does not load never reaches the engine.
    with pytest.raises(ConfigError) as info:
        config(PREEXISTING + "bogus=1\n")
    assert "bogus" in str(info.value.diagnostics[0])
    w.engine.reload_rejected()
    assert w.engine.config is before
    assert w.engine.counters.last_reload_ok is False
    w.up["127.0.0.12:8080"] = False
    await w.clock.advance(10)
    assert w.ops() == ["-d -t 127.0.0.100:80 -r 127.0.0.12:8080"]
    await w.engine.shutdown()


COMBINED = """\
checkinterval=5

virtual=127.0.0.100:80
	real=127.0.0.2:8080 masq
	service=http
	checktype=2
"""


async def test_combined_checktype_sequence(tmp_path: Path) -> None:
    """Reference 8.6: negotiate, connect, connect, negotiate, ..."""
    w = World(COMBINED, tmp_path, up={"127.0.0.2:8080": True})
    await w.engine.start()
    await w.clock.advance(40)
    kinds = [k for _, _, k in w.calls]
    assert kinds[:7] == [
        "HttpSpec",
        "ConnectSpec",
        "ConnectSpec",
        "HttpSpec",
        "ConnectSpec",
        "ConnectSpec",
        "HttpSpec",
    ]
    # a failed connect: the next check is a negotiate, and the real went down on the connect
    w.calls.clear()
    w.up["127.0.0.2:8080"] = False
    await w.clock.advance(10)
    assert [k for _, _, k in w.calls][-1] == "HttpSpec"
    assert w.table() == ["tcp:127.0.0.100:80"]
    await w.engine.shutdown()


async def test_drift_is_repaired_within_one_resync(tmp_path: Path) -> None:
    w = World(
        PREEXISTING,
        tmp_path,
        up={f"127.0.0.{n}:8080": True for n in (11, 12, 13)},
        resync_interval=10,
    )
    await w.engine.start()
    await w.clock.advance(0.1)
    w.ops()
    # Someone deletes a real and changes a weight by hand, and adds a real to our service.
    dkey = DestKey(ip_address("127.0.0.12"), 8080)
    assert w.backend.apply_one(DelDest(SVC, dkey)) == 0
    w.backend.apply_one(
        EditDest(
            SVC, Dest(address=ip_address("127.0.0.13"), port=8080, forward=Forward.MASQ, weight=9)
        )
    )
    w.backend.apply_one(AddDest(SVC, _dest("127.0.0.99", 1)))
    await w.clock.advance(10)
    assert w.ops() == [
        "-a -t 127.0.0.100:80 -r 127.0.0.12:8080 -m -w 1 -x 0 -y 0",
        "-e -t 127.0.0.100:80 -r 127.0.0.13:8080 -m -w 1 -x 0 -y 0",
        "-d -t 127.0.0.100:80 -r 127.0.0.99:8080",
    ]
    # A foreign service added by hand is never touched.
    foreign = VirtualService.of(_svc("127.0.9.9"), [_dest("127.0.9.1", 1)])
    w.backend.apply_one(AddService(foreign.service))
    await w.clock.advance(30)
    assert w.ops() == [] and foreign.key in w.backend.table
    await w.engine.shutdown()


async def test_resyncinterval_directive_sets_the_cadence_and_follows_reload(
    tmp_path: Path,
) -> None:
    up = {f"127.0.0.{n}:8080": True for n in (11, 12, 13)}
    w = World("resyncinterval=3\n" + PREEXISTING, tmp_path, up=up)
    assert w.engine.resync_interval == 3
    await w.engine.start()
    await w.clock.advance(0.1)
    w.ops()
    dkey = DestKey(ip_address("127.0.0.12"), 8080)
    w.backend.apply_one(DelDest(SVC, dkey))
    await w.clock.advance(2.8)  # t=2.9: no resync yet, and no check is due before t=10
    assert w.ops() == []
    await w.clock.advance(0.2)  # t=3.1: repaired
    assert w.ops() == ["-a -t 127.0.0.100:80 -r 127.0.0.12:8080 -m -w 1 -x 0 -y 0"]
    # A reload follows the new value: resyncs at t=6 (already sleeping), then every 20 s.
    await w.engine.reload(config("resyncinterval=20\n" + PREEXISTING))
    assert w.engine.resync_interval == 20
    await w.clock.advance(3)  # t=6.1
    w.backend.apply_one(DelDest(SVC, dkey))
    await w.clock.advance(19.8)  # t=25.9: the resync after t=6 is at t=26
    assert "-a -t 127.0.0.100:80 -r 127.0.0.12:8080 -m -w 1 -x 0 -y 0" not in w.ops()
    await w.clock.advance(0.2)
    assert w.ops() == ["-a -t 127.0.0.100:80 -r 127.0.0.12:8080 -m -w 1 -x 0 -y 0"]
    await w.engine.shutdown()


def test_engine_resync_override_beats_the_config(tmp_path: Path) -> None:
    w = World("resyncinterval=3\n" + PREEXISTING, tmp_path, resync_interval=0.5)
    assert w.engine.resync_interval == 0.5


async def test_failed_apply_is_retried_at_next_resync(tmp_path: Path) -> None:
    """a refused op is logged, not believed; the next resync sees the truth and retries."""
    text = PREEXISTING.replace("\treal=127.0.0.11:8080 masq 5\n", "").replace(
        "\treal=127.0.0.13:8080 masq\n", ""
    )
    w = World(text, tmp_path, up={"127.0.0.12:8080": True})
    await w.engine.start()
    w.ops()
    w.backend.fail_next = {0: 12}  # ENOMEM on the first op of the next batch
    await w.clock.advance(0.1)
    assert w.ops() == ["-a -t 127.0.0.100:80 -r 127.0.0.12:8080 -m -w 1 -x 0 -y 0"]
    assert w.table() == ["tcp:127.0.0.100:80"]
    await w.clock.advance(10)
    assert w.ops() == ["-a -t 127.0.0.100:80 -r 127.0.0.12:8080 -m -w 1 -x 0 -y 0"]
    assert w.table() == ["tcp:127.0.0.100:80", "  127.0.0.12:8080 w1"]
    await w.engine.shutdown()


async def test_virtual_removed_while_down_is_cleaned_at_next_start(tmp_path: Path) -> None:
    up = {f"127.0.0.{n}:8080": True for n in range(2, 6)}
    first = World(BEFORE_HUP, tmp_path, up=up)  # cleanstop=no: stopping leaves it all
    await first.engine.start()
    await first.clock.advance(1)
    await first.engine.shutdown()
    foreign = VirtualService.of(_svc("127.0.9.9"), [_dest("127.0.9.1", 1)])
    first.backend.apply_one(AddService(foreign.service))
    # Edited while ldirector was down: 127.0.0.101 is gone from the config.
    second = World(AFTER_HUP, tmp_path, backend=first.backend, up=up)
    await second.engine.start()
    ops = second.ops()
    assert "-D -t 127.0.0.101:80" in ops
    assert not any("127.0.9.9" in op for op in ops)
    await second.clock.advance(0.1)
    assert InetServiceKey(Protocol.TCP, ip_address("127.0.0.101"), 80) not in second.engine.owned
    assert second.store.load() == second.engine.owned
    await second.engine.shutdown()


GATE = """\
checkinterval=10
quiescent=yes

virtual=127.0.0.100:80
	real=127.0.0.2:8080 gate 4
	checktype=connect
"""


async def test_gate_real_with_another_port_is_quiesced_and_restored(tmp_path: Path) -> None:
    """the kernel stores the virtual's port; restore must edit that entry, not re-add."""
    w = World(GATE, tmp_path, up={"127.0.0.2:8080": True})
    await w.engine.start()
    await w.clock.advance(0.1)
    assert w.table() == ["tcp:127.0.0.100:80", "  127.0.0.2:80 w4"]
    await w.clock.advance(15)  # past the spread second check: rounds are one interval apart
    w.up["127.0.0.2:8080"] = False
    await w.clock.advance(10)
    w.up["127.0.0.2:8080"] = True
    await w.clock.advance(10)
    assert w.ops()[-2:] == [
        "-e -t 127.0.0.100:80 -r 127.0.0.2:80 -g -w 0 -x 0 -y 0",
        "-e -t 127.0.0.100:80 -r 127.0.0.2:80 -g -w 4 -x 0 -y 0",
    ]
    assert w.table() == ["tcp:127.0.0.100:80", "  127.0.0.2:80 w4"]
    await w.engine.shutdown()


async def test_checktype_off_and_on(tmp_path: Path) -> None:
    text = """\
fallback=127.0.0.1:80 gate

virtual=127.0.0.100:80
	real=127.0.0.2:8080 masq
	checktype=off

virtual=127.0.0.101:80
	real=127.0.0.3:8080 masq
	checktype=on
"""
    on_svc = InetServiceKey(Protocol.TCP, ip_address("127.0.0.101"), 80)
    existing = VirtualService.of(_svc("127.0.0.100"), [_dest("127.0.0.2", 1)])
    w = World(text, tmp_path, table=IpvsTable.of(existing))
    await w.engine.start()
    await w.clock.advance(60)
    # off: the serving real is removed and no fallback is added; on: always in.
    assert w.table() == ["tcp:127.0.0.100:80", str(on_svc), "  127.0.0.3:8080 w1"]
    assert w.calls == []
    await w.engine.shutdown()


async def test_maintenance_forces_down_at_once(tmp_path: Path) -> None:
    maint = tmp_path / "maint"
    maint.mkdir()
    text = f"maintenancedir={maint}\n" + QUIESCENT.replace("failurecount=2", "failurecount=5")
    w = World(text, tmp_path, up={"127.0.0.2:8080": True, "127.0.0.3:8080": True})
    await w.engine.start()
    await w.clock.advance(0.1)
    await w.clock.advance(15)  # past the spread second check: rounds are one interval apart
    w.events()
    (maint / "127.0.0.2").touch()
    await w.clock.advance(10)
    assert w.events() == ["quiesced 127.0.0.2:8080"]  # no soft failures first
    (maint / "127.0.0.2").unlink()
    await w.clock.advance(10)
    assert w.events() == ["restored 127.0.0.2:8080"]
    # A reload that drops maintenancedir stops looking there.
    (maint / "127.0.0.3").touch()
    await w.engine.reload(config(text.split("\n", 1)[1]))
    await w.clock.advance(20)
    assert w.events() == []
    await w.engine.shutdown()


async def test_kernel_toggles_written_at_start_and_reload(tmp_path: Path) -> None:
    text = "expire_quiescent_template=yes\n" + GATE
    w = World(text, tmp_path)
    await w.engine.start()
    assert w.sysctl_writes == [{"expire_quiescent_template": 1}]
    await w.engine.reload(config(text.replace("=yes", "=no", 1)))
    assert w.sysctl_writes[-1] == {"expire_quiescent_template": 0}
    await w.engine.shutdown()


async def test_reload_with_a_changed_check_keeps_serving_reals_up(tmp_path: Path) -> None:
    """A changed probe starts afresh, seeded from the kernel: a serving real is not pulled."""
    w = World(GATE, tmp_path, up={"127.0.0.2:8080": True})
    await w.engine.start()
    await w.clock.advance(0.1)
    w.ops(), w.events()
    await w.engine.reload(config(GATE.replace("checktype=connect", "checktype=negotiate")))
    assert w.ops() == [] and w.events() == []
    await w.clock.advance(30)
    assert w.ops() == [] and w.events() == []
    assert {k for _, _, k in w.calls[-2:]} == {"HttpSpec"}  # port 80: the http check runs now
    await w.engine.shutdown()


async def test_run_serves_until_stop_and_survives_a_broken_event_handler(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    def broken(notice: Notice) -> None:
        raise RuntimeError("mail server on fire")

    ready: list[bool] = []
    w = World(
        COLD,
        tmp_path,
        up={"127.0.0.2:8080": True},
        on_event=broken,
        on_ready=lambda: ready.append(True),
    )
    with caplog.at_level(logging.INFO):
        task = asyncio.create_task(w.engine.run())
        await w.clock.advance(0.1)
        assert ready == [True]
        assert w.table() == ["tcp:127.0.0.100:80", "  127.0.0.2:8080 w5"]
        await w.clock.advance(7.5)  # past the spread second check
        w.up["127.0.0.2:8080"] = False
        await w.clock.advance(5)
        assert w.table() == ["tcp:127.0.0.100:80", "  127.0.0.1:80 w1"]
        w.engine.stop()
        await task
    assert w.table() == []
    assert "mail server on fire" in caplog.text
    # ldirectord's wording reaches the log
    assert "Added real server: 127.0.0.2:8080 (127.0.0.100:80) (Weight set to 5)" in caplog.text
    assert "Deleted real server: 127.0.0.2:8080 (127.0.0.100:80)" in caplog.text
    assert "Added fallback server: 127.0.0.1:80 (127.0.0.100:80) (Weight set to 1)" in caplog.text


class _Unreadable(FakeBackend):
    broken = False

    async def dump(self, only: Collection[ServiceKey] | None = None) -> IpvsTable:
        if self.broken:
            raise IpvsError("cannot read the IPVS table: netlink socket closed")
        return await super().dump(only)


async def test_unreadable_kernel_keeps_the_previous_config(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    backend = _Unreadable()
    w = World(BEFORE_HUP, tmp_path, backend=backend, up={"127.0.0.2:8080": True})
    await w.engine.start()
    await w.clock.advance(0.1)
    before = w.engine.config
    backend.broken = True
    with caplog.at_level(logging.ERROR):
        await w.engine.reload(config(AFTER_HUP))
        await w.clock.advance(10)  # the resync fails too, and says so
    assert w.engine.config is before
    assert "still running the previous configuration" in caplog.text
    assert "cannot reconcile the IPVS table" in caplog.text
    backend.broken = False
    await w.clock.advance(10)
    assert w.converged()
    await w.engine.shutdown()


async def test_a_storm_of_transitions_is_applied_in_batches_a_lone_one_at_once(
    tmp_path: Path,
) -> None:
    reals = [f"127.0.0.{n}:8080" for n in (11, 12, 13)]
    w = World(PREEXISTING, tmp_path, up=dict.fromkeys(reals, True), reconcile_spacing=0.2)
    await w.engine.start()
    await w.clock.advance(0.1)
    # The cold start checks all three within milliseconds: the first is added at once, the
    # other two wait for the end of the spacing and go in together.
    assert len(w.table()) == 2
    await w.clock.advance(0.1)
    assert len(w.table()) == 4
    assert [len(b) for b in w.backend.batches if b][-2:] == [1, 2]
    # Long after the storm, a lone failure is applied the moment its check reports it.
    await w.clock.advance(30)
    w.up[reals[1]] = False
    seen = len(w.calls)
    for _ in range(400):
        await w.clock.advance(0.05)
        if any(target == reals[1] for _, target, _ in w.calls[seen:]):
            break
    assert "  127.0.0.12:8080 w1" not in w.table()
    await w.engine.shutdown()


async def test_a_transition_reads_only_the_service_it_moves(tmp_path: Path) -> None:
    up = {f"127.0.0.{n}:8080": True for n in range(2, 5)}
    w = World(BEFORE_HUP, tmp_path, up=up)
    await w.engine.start()
    await w.clock.advance(1)
    assert w.converged()
    w.ops()
    w.up["127.0.0.4:8080"] = False
    ops: list[str] = []
    for _ in range(100):
        await w.clock.advance(0.5)
        if ops := w.ops():
            break
    assert ops == ["-d -t 127.0.0.101:80 -r 127.0.0.4:8080"]
    # The failure's reconcile asked the kernel for 127.0.0.101:80 alone; the resyncs still
    # compare every service.
    web2 = InetServiceKey(Protocol.TCP, ip_address("127.0.0.101"), 80)
    assert w.backend.dumps[-1] == frozenset({web2})
    assert None in w.backend.dumps
    await w.engine.shutdown()
