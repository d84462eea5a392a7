"""The engine's log lines in ldirectord's exact wording (reference 5.1, 5.4-5.8), its purge
notices (they reach email alerts), and the monitorfile lines it writes (reference 5.9)."""

from __future__ import annotations

import logging
import os
import re
from ipaddress import ip_address
from pathlib import Path

import pytest
from engine_world import World, config

from ldirector.engine.notices import PURGED, READD_QUIESCENT
from ldirector.ipvs.types import (
    DelDest,
    Dest,
    DestKey,
    Forward,
    InetServiceKey,
    IpvsTable,
    Protocol,
    Service,
    VirtualService,
)

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
    assert w.events() == [f"{PURGED} 127.0.0.2:8080"]
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
    purges = [n for n in w.notices if n.kind == PURGED]
    assert [(n.server, n.phase, n.virtual.endpoint) for n in purges] == [
        ("127.0.0.9:8080", "start", "127.0.0.100:80")
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
    assert w.events() == [f"{READD_QUIESCENT} 127.0.0.3:8080"]
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
    with caplog.at_level(logging.DEBUG, logger="ldirector.engine.core"):
        await w.engine.start()
        await w.clock.advance(0.1)
        await w.engine.shutdown()
    debug = [r.getMessage() for r in caplog.records if r.levelno == logging.DEBUG]
    checked = [line for line in debug if " up: " in line or " down: " in line]
    assert checked
    assert all(line.startswith("connect ") for line in checked), checked
