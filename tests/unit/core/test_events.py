"""The engine's log lines in ldirectord's exact wording, its purge
notices (they reach email alerts), and the monitorfile lines it writes."""

from __future__ import annotations

import errno
import logging
import os
import re
from collections.abc import Callable
from ipaddress import ip_address
from pathlib import Path

import pytest

from ldirector.core.desired import RealKey
from ldirector.core.events import EventKind, Notice, mailed, serving_after
from ldirector.ipvs.ops import DelDest
from ldirector.ipvs.types import (
    Dest,
    DestKey,
    Forward,
    InetServiceKey,
    IpvsTable,
    Protocol,
    Service,
    VirtualService,
)
from tests.support.engine_world import World, config

SVC = InetServiceKey(Protocol.TCP, ip_address("127.0.0.100"), 80)

TWO_UP_ONE_DOWN = """\
checkinterval=5
checktimeout=3
quiescent=yes
fallback=127.0.0.1:80 gate

virtual=127.0.0.100:80
	real=127.0.0.2:8080 masq 5
	real=127.0.0.3:8080 masq
	real=127.0.0.4:8080 masq
	checktype=connect
"""


def lines(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno >= logging.INFO]


async def test_cleanstop_purges_each_real_thought_up_then_the_virtual(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    up = {"127.0.0.2:8080": True, "127.0.0.3:8080": True}
    w = World(TWO_UP_ONE_DOWN, tmp_path, up=up)
    with caplog.at_level(logging.INFO):
        await w.engine.start()
        await w.clock.advance(0.1)
        assert "Added virtual server: 127.0.0.100:80" in lines(caplog)
        assert "Added real server: 127.0.0.2:8080 (127.0.0.100:80) (Weight set to 5)" in lines(
            caplog
        )
        w.up["127.0.0.3:8080"] = False  # quiesced before the stop: not thought up
        await w.clock.advance(10)
        assert "Quiescent real server: 127.0.0.3:8080 (127.0.0.100:80) (Weight set to 0)" in lines(
            caplog
        )
        w.events(), w.ops()
        caplog.clear()
        await w.engine.shutdown()
    assert lines(caplog) == [
        "Purged real server (stop): 127.0.0.2:8080 (127.0.0.100:80)",
        "Purged virtual server (stop): 127.0.0.100:80",
    ]
    assert w.events() == [f"{EventKind.PURGED} 127.0.0.2:8080"]
    assert w.ops() == ["-D -t 127.0.0.100:80"]


async def test_untracked_real_is_purged_with_a_notice(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    stranger = Dest(address=ip_address("127.0.0.9"), port=8080, forward=Forward.MASQ, weight=1)
    table = IpvsTable.of(VirtualService.of(Service(key=SVC, scheduler="wrr"), [stranger]))
    w = World(TWO_UP_ONE_DOWN, tmp_path, table=table, up={"127.0.0.2:8080": True})
    with caplog.at_level(logging.INFO):
        await w.engine.start()
    assert "Changed virtual server: 127.0.0.100:80" not in lines(caplog)  # same scheduler
    assert "Purged real server (start): 127.0.0.9:8080 (127.0.0.100:80)" in lines(caplog)
    purges = [n for n in w.notices if n.kind is EventKind.PURGED]
    assert [(n.server, n.message, n.virtual.endpoint) for n in purges] == [
        (
            "127.0.0.9:8080",
            "Purged real server (start): 127.0.0.9:8080 (127.0.0.100:80)",
            "127.0.0.100:80",
        )
    ]
    await w.engine.shutdown()


async def test_soft_failure_lines_use_the_virtual_id(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    text = TWO_UP_ONE_DOWN.replace("checktype=connect", "checktype=connect\n\tfailurecount=2")
    w = World(text, tmp_path, up={"127.0.0.2:8080": True})
    await w.engine.start()
    await w.clock.advance(15)
    with caplog.at_level(logging.INFO):
        w.up["127.0.0.2:8080"] = False
        await w.clock.advance(5)
        w.up["127.0.0.2:8080"] = True
        await w.clock.advance(5)
    assert "Soft failure real server: 127.0.0.2:8080 (tcp:127.0.0.100:80) failure 1/2" in lines(
        caplog
    )
    assert "Resetting soft failure count: 127.0.0.2:8080 (tcp:127.0.0.100:80)" in lines(caplog)
    await w.engine.shutdown()


MONITORED = """\
checkinterval=5
checktimeout=3

virtual=127.0.0.100:80
	real=127.0.0.2:8080 masq 5
	real=127.0.0.3:8080 masq
	service=http
	request="/x"
	receive="Test"
	monitorfile="{first}"

virtual=127.0.0.101:80
	real=127.0.0.2:8080 masq 5
	service=http
	request="/x"
	receive="Test"
	monitorfile="{second}"
"""


async def test_each_virtual_writes_its_monitorfile(tmp_path: Path) -> None:
    first, second = tmp_path / "first.monitor", tmp_path / "second.monitor"
    text = MONITORED.format(first=first, second=second)
    w = World(text, tmp_path, up={"127.0.0.2:8080": True})
    await w.engine.start()
    await w.clock.advance(0.1)
    pid = os.getpid()
    stamp = r"\[\w{3} \w{3} [ \d]\d \d\d:\d\d:\d\d \d{4}\]"
    two_up = (
        stamp
        + rf" \[{pid}\] negotiate http tcp 127\.0\.0\.2 8080 5 masq /x Test \[up\] HTTP 200 OK"
    )
    three_down = (
        stamp + rf" \[{pid}\] negotiate http tcp 127\.0\.0\.3 8080 1 masq /x Test"
        r" \[down\] connection refused"
    )
    one = first.read_text().splitlines()
    assert len(one) == 2
    assert any(re.fullmatch(two_up, line) for line in one)
    assert any(re.fullmatch(three_down, line) for line in one)
    # The shared probe ran once; the other virtual sharing the real writes its own file.
    (two,) = second.read_text().splitlines()
    assert re.fullmatch(two_up, two)
    await w.engine.shutdown()


async def test_unwritable_monitorfile_is_reported_once(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    target = tmp_path / "gone" / "m.monitor"
    target.parent.mkdir()
    text = MONITORED.format(first=target, second=tmp_path / "ok.monitor")
    w = World(text, tmp_path, up={"127.0.0.2:8080": True})
    target.parent.rmdir()  # parsed fine, then the directory vanished
    with caplog.at_level(logging.INFO):
        await w.engine.start()
        await w.clock.advance(30)
    errors = [m for m in lines(caplog) if m.startswith("cannot write monitorfile")]
    assert errors == [f"cannot write monitorfile {target}: No such file or directory"]
    assert (tmp_path / "ok.monitor").read_text().count("\n") >= 2
    await w.engine.shutdown()


async def test_readd_quiescent_when_a_quiesced_real_vanished(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    text = "readdquiescent=yes\n" + TWO_UP_ONE_DOWN
    w = World(text, tmp_path, up={"127.0.0.2:8080": True, "127.0.0.3:8080": True})
    await w.engine.start()
    await w.clock.advance(15)
    w.up["127.0.0.3:8080"] = False
    await w.clock.advance(10)
    w.ops(), w.events()
    # An operator removes the quiesced real by hand; the next resync puts it back at weight 0.
    dkey = DestKey(ip_address("127.0.0.3"), 8080)
    assert w.backend.apply_one(DelDest(SVC, dkey)) == 0
    with caplog.at_level(logging.INFO):
        await w.clock.advance(10)
    assert w.ops() == ["-a -t 127.0.0.100:80 -r 127.0.0.3:8080 -m -w 0 -x 0 -y 0"]
    assert "Readd Quiescent real server: 127.0.0.3:8080 (127.0.0.100:80) (Weight set to 0)" in (
        lines(caplog)
    )
    assert w.events() == [f"{EventKind.READD_QUIESCENT} 127.0.0.3:8080"]
    await w.engine.shutdown()


async def test_settled_once_the_first_checks_of_a_start_or_reload_reported(
    tmp_path: Path,
) -> None:
    settled: list[list[str]] = []
    up = {"127.0.0.2:8080": True, "127.0.0.5:8080": True}
    w = World(TWO_UP_ONE_DOWN, tmp_path, up=up, on_settled=lambda: settled.append(w.events()))
    await w.engine.start()
    assert settled == []  # the fallback is in, no check has reported yet
    await w.clock.advance(0.1)
    # One call, after the reconcile that followed the first results: the fallback came and went.
    assert settled == [
        [
            "fallback-on tcp:127.0.0.100:80",
            "added 127.0.0.2:8080",
            "fallback-off tcp:127.0.0.100:80",
        ]
    ]
    await w.clock.advance(30)
    assert len(settled) == 1  # later rounds are not a start
    added = TWO_UP_ONE_DOWN + "\nvirtual=127.0.0.101:80\n\treal=127.0.0.5:8080 masq\n"
    await w.engine.reload(config(added))
    assert len(settled) == 1  # the new real has not reported yet
    await w.clock.advance(0.1)
    assert len(settled) == 2 and "added 127.0.0.5:8080" in settled[1]
    await w.engine.shutdown()


async def test_settled_at_once_when_nothing_needs_a_first_check(tmp_path: Path) -> None:
    settled: list[int] = []
    text = TWO_UP_ONE_DOWN.replace("checktype=connect", "checktype=on")
    w = World(text, tmp_path, on_settled=lambda: settled.append(1))
    await w.engine.start()
    assert settled == [1]
    await w.engine.shutdown()


async def test_debug_line_names_the_virtuals_checktype(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    w = World(TWO_UP_ONE_DOWN, tmp_path, up={"127.0.0.2:8080": True})
    with caplog.at_level(logging.DEBUG, logger="ldirector.engine"):
        await w.engine.start()
        await w.clock.advance(0.1)
        await w.engine.shutdown()
    debug = [r.getMessage() for r in caplog.records if r.levelno == logging.DEBUG]
    checked = [line for line in debug if " up: " in line or " down: " in line]
    assert checked
    assert all(line.startswith("connect ") for line in checked), checked


# --- the lines come from what the kernel took, not from health -------------------------------

HELD = """\
checkinterval=5
checktimeout=3
quiescent={quiescent}

virtual=127.0.0.100:80
	real=127.0.0.2:8080 masq 5
	real=127.0.0.3:8080 masq
	checktype=connect
"""
REAL2 = RealKey(SVC, DestKey(ip_address("127.0.0.2"), 8080))


def table_lines(caplog: pytest.LogCaptureFixture) -> list[str]:
    """The lines about reals and fallbacks, ldirectord's wording."""
    return [m for m in lines(caplog) if "real server" in m or "fallback server" in m]


async def _both_up(
    tmp_path: Path,
    quiescent: str,
    on_event: Callable[[Notice], None] | None = None,
    resync_interval: float | None = None,
) -> World:
    """Both reals up and in the kernel, past the start."""
    up = {"127.0.0.2:8080": True, "127.0.0.3:8080": True}
    text = HELD.format(quiescent=quiescent)
    w = World(text, tmp_path, up=up, on_event=on_event, resync_interval=resync_interval)
    await w.engine.start()
    await w.clock.advance(15)
    w.ops(), w.events()
    return w


async def _order(
    w: World, caplog: pytest.LogCaptureFixture, order: Callable[[RealKey], object]
) -> tuple[list[str], list[str]]:
    """An operator's order about 127.0.0.2, applied at once: the ops and the lines it caused."""
    caplog.clear()
    with caplog.at_level(logging.INFO):
        order(REAL2)
        await w.engine.refresh()
    return w.ops(), table_lines(caplog)


async def _flap(w: World, caplog: pytest.LogCaptureFixture) -> list[str]:
    """127.0.0.2's server goes down for two rounds, then comes back for two."""
    caplog.clear()
    w.notices.clear()
    with caplog.at_level(logging.INFO):
        w.up["127.0.0.2:8080"] = False
        await w.clock.advance(10)
        w.up["127.0.0.2:8080"] = True
        await w.clock.advance(10)
    return table_lines(caplog)


async def test_a_disabled_real_that_flaps_logs_and_mails_nothing(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    w = await _both_up(tmp_path, quiescent="no")
    # The kernel dropped it: that is said, once.
    assert await _order(w, caplog, w.engine.holds.disable) == (
        ["-d -t 127.0.0.100:80 -r 127.0.0.2:8080"],
        ["Deleted real server: 127.0.0.2:8080 (127.0.0.100:80)"],
    )
    # Its server goes down and comes back while it is held out: the kernel is told nothing,
    # and nothing is logged or mailed about it.
    assert await _flap(w, caplog) == []
    assert w.ops() == [] and w.notices == []
    assert await _order(w, caplog, w.engine.holds.enable) == (
        ["-a -t 127.0.0.100:80 -r 127.0.0.2:8080 -m -w 5 -x 0 -y 0"],
        ["Added real server: 127.0.0.2:8080 (127.0.0.100:80) (Weight set to 5)"],
    )
    assert w.events() == ["added 127.0.0.2:8080"]
    await w.engine.shutdown()


async def test_a_draining_real_that_flaps_is_never_restored(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    w = await _both_up(tmp_path, quiescent="yes")
    assert await _order(w, caplog, w.engine.holds.drain) == (
        ["-e -t 127.0.0.100:80 -r 127.0.0.2:8080 -m -w 0 -x 0 -y 0"],
        ["Quiescent real server: 127.0.0.2:8080 (127.0.0.100:80) (Weight set to 0)"],
    )
    # Down and up while draining: it stays at weight 0, so no "Quiescent" again and no
    # "Restored ... (Weight set to 5)".
    assert await _flap(w, caplog) == []
    assert w.ops() == [] and w.notices == []
    await w.engine.shutdown()


async def test_a_draining_real_deleted_when_down_is_not_added_when_up(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    w = await _both_up(tmp_path, quiescent="no")
    await _order(w, caplog, w.engine.holds.drain)
    flapped = await _flap(w, caplog)
    # Down: the kernel dropped it, which is said. Gone from the kernel, its drain is over (it
    # stays out, disabled), so when its server comes back nothing is added and nothing "Added".
    assert w.ops() == ["-d -t 127.0.0.100:80 -r 127.0.0.2:8080"]
    assert flapped == ["Deleted real server: 127.0.0.2:8080 (127.0.0.100:80)"]
    assert w.events() == ["deleted 127.0.0.2:8080"]
    await w.engine.shutdown()


async def test_deleted_is_said_only_once_the_kernel_dropped_the_real(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    kernel_had: list[bool] = []

    def alert(notice: Notice) -> None:
        w.notices.append(notice)
        kernel_had.append(REAL2.dest in w.backend.table[SVC].dests)

    w = await _both_up(tmp_path, quiescent="no", on_event=alert, resync_interval=30)
    kernel_had.clear()
    w.backend.fail_next = {0: errno.ENOMEM}  # the kernel refuses the delete
    with caplog.at_level(logging.INFO):
        w.up["127.0.0.2:8080"] = False
        await w.clock.advance(5)
    assert w.ops() == ["-d -t 127.0.0.100:80 -r 127.0.0.2:8080"]
    assert table_lines(caplog) == []  # refused: no success line, no alert
    assert w.events() == []
    assert any("cannot" in m and "127.0.0.2:8080" in m for m in lines(caplog))
    caplog.clear()
    with caplog.at_level(logging.INFO):
        await w.clock.advance(30)  # the resync tries again, and this time it is taken
    assert w.ops() == ["-d -t 127.0.0.100:80 -r 127.0.0.2:8080"]
    assert table_lines(caplog) == ["Deleted real server: 127.0.0.2:8080 (127.0.0.100:80)"]
    assert w.events() == ["deleted 127.0.0.2:8080"]
    assert kernel_had == [False]  # told after the kernel no longer held it
    await w.engine.shutdown()


async def test_a_real_at_weight_0_is_restored_and_an_absent_one_added(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """ldirectord's words: an entry edited back to its weight is "Restored", a new one "Added"."""
    parked = Dest(address=ip_address("127.0.0.2"), port=8080, forward=Forward.MASQ, weight=0)
    table = IpvsTable.of(VirtualService.of(Service(key=SVC, scheduler="wrr"), [parked]))
    up = {"127.0.0.2:8080": True, "127.0.0.3:8080": True}
    w = World(HELD.format(quiescent="yes"), tmp_path, table=table, up=up)
    with caplog.at_level(logging.INFO):
        await w.engine.start()
        await w.clock.advance(0.1)
    assert sorted(table_lines(caplog)) == [
        "Added real server: 127.0.0.3:8080 (127.0.0.100:80) (Weight set to 1)",
        "Restored real server: 127.0.0.2:8080 (127.0.0.100:80) (Weight set to 5)",
    ]
    await w.engine.shutdown()


@pytest.mark.parametrize(
    ("kind", "sent"),
    [
        (EventKind.ADDED, True),
        (EventKind.RESTORED, True),
        (EventKind.QUIESCED, True),
        (EventKind.DELETED, True),
        (EventKind.READD_QUIESCENT, True),
        (EventKind.PURGED, True),
        (EventKind.FALLBACK_ON, True),
        (EventKind.FALLBACK_OFF, True),
        (EventKind.INACCESSIBLE, True),
        (EventKind.SOFT_FAILURE, False),
        (EventKind.RESET_SOFT_FAILURE, False),
    ],
)
def test_what_ldirectord_mails(kind: EventKind, sent: bool) -> None:
    assert mailed(kind) is sent


def test_every_kind_is_classified() -> None:
    silent = {k for k in EventKind if not mailed(k)}
    assert silent == {EventKind.SOFT_FAILURE, EventKind.RESET_SOFT_FAILURE}
    for kind in EventKind:  # each kind leaves a server serving or not (a batch's net effect)
        assert isinstance(serving_after(kind), bool)
