"""The live holds of a daemon and their file: kept across restarts, written best effort."""

from __future__ import annotations

import errno
import json
import logging
import os
from ipaddress import ip_address
from pathlib import Path

import pytest

from ldirector.core.desired import RealKey
from ldirector.core.holds import Hold, HoldEntry
from ldirector.ipvs.types import DestKey
from ldirector.state import atomicfile
from ldirector.state.holds import Holds, HoldsStore
from tests.support.engine_world import World
from tests.support.observe_world import R2, R3, SVC, dest, table


def test_holds_survive_a_restart(tmp_path: Path) -> None:
    path = tmp_path / "state" / "ldirectord.manual.json"
    now = [1000.0]
    first = Holds(HoldsStore(path), now=lambda: now[0])
    first.disable(R2)
    first.drain(R3, 60)
    assert dict(first.view()) == {R2: Hold.DISABLED, R3: Hold.DRAINING}
    again = Holds(HoldsStore(path))
    assert again.current == {
        R2: HoldEntry(Hold.DISABLED, 1000.0),
        R3: HoldEntry(Hold.DRAINING, 1000.0, 1060.0),
    }
    assert again.enable(R2) is True
    assert again.enable(R2) is False
    assert set(Holds(HoldsStore(path)).current) == {R3}


def test_settle_saves_the_finished_drain(tmp_path: Path) -> None:
    path = tmp_path / "m.json"
    holds = Holds(HoldsStore(path), now=lambda: 5.0)
    holds.drain(R2, 300)
    assert holds.settle(table(dest(2, 0, active=2))) == []
    assert holds.settle(table(dest(2, 0))) == [R2]
    assert Holds(HoldsStore(path)).current == {R2: HoldEntry(Hold.DISABLED, 5.0)}


def test_a_damaged_file_is_skipped_entry_by_entry(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "m.json"
    good = {"virtual": str(SVC), "real": "127.0.0.2:8080", "state": "disabled", "since": 1}
    bad = [{"virtual": "nope"}, {"virtual": str(SVC), "real": "127.0.0.3", "state": "x"}, 7]
    path.write_text(json.dumps({"version": 1, "overrides": [good, *bad]}))
    assert Holds(HoldsStore(path)).current == {R2: HoldEntry(Hold.DISABLED, 1.0)}
    assert len([r for r in caplog.records if "ignored" in r.getMessage()]) == 3
    path.write_text("{not json")
    assert HoldsStore(path).load() == {}
    assert "cannot read operator holds" in caplog.text


def test_saved_file_is_readable_json(tmp_path: Path) -> None:
    path = tmp_path / "m.json"
    v6 = RealKey(SVC, DestKey(ip_address("::1"), 80))
    HoldsStore(path).save({v6: HoldEntry(Hold.DISABLED, 2.0)})
    data = json.loads(path.read_text())
    assert data["overrides"] == [
        {"virtual": "tcp:127.0.0.100:80", "real": "[::1]:80", "state": "disabled", "since": 2.0}
    ]
    assert HoldsStore(path).load() == {v6: HoldEntry(Hold.DISABLED, 2.0)}


def _disk_full(path: Path, text: str) -> None:
    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))


TWO_REALS = """\
checkinterval=5
quiescent=no

virtual=127.0.0.100:80
	real=127.0.0.2:8080 masq 5
	real=127.0.0.3:8080 masq 2
	checktype=connect
"""


async def test_a_full_disk_never_stops_the_reconcile(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """A finished drain that cannot be saved still takes effect, and a real that fails after
    it still leaves the kernel; the full disk is one log line, and its end is another."""
    caplog.set_level(logging.INFO, logger="ldirector")
    w = World(TWO_REALS, tmp_path, up={"127.0.0.2:8080": True, "127.0.0.3:8080": True})
    path = tmp_path / "ldirectord.cf.manual.json"
    w.engine.holds = Holds(HoldsStore(path), now=lambda: 1000.0 + w.clock.now())
    await w.engine.start()
    await w.clock.advance(1)
    w.engine.holds.drain(R2, 20)  # saved: the disk was fine then
    await w.engine.refresh()
    assert w.table() == ["tcp:127.0.0.100:80", "  127.0.0.2:8080 w0", "  127.0.0.3:8080 w2"]

    monkeypatch.setattr(atomicfile, "replace_file", _disk_full)
    await w.clock.advance(30)  # the drain's bound passes: R2 goes, whatever the file says
    assert w.table() == ["tcp:127.0.0.100:80", "  127.0.0.3:8080 w2"]
    w.up["127.0.0.3:8080"] = False
    await w.clock.advance(10)
    assert w.table() == ["tcp:127.0.0.100:80"]  # the failed real left the kernel
    await w.clock.advance(60)  # more resyncs, more retries: still one line
    saves = [r.getMessage() for r in caplog.records if "operator holds" in r.getMessage()]
    assert saves == [
        f"cannot save operator holds to {path}: No space left on device"
        " (kept in memory; will retry)"
    ]
    assert dict(w.engine.holds.view()) == {R2: Hold.DISABLED}

    monkeypatch.undo()  # space again: the next reconcile writes the file
    await w.clock.advance(10)
    assert HoldsStore(path).load()[R2].hold is Hold.DISABLED
    assert [r.getMessage() for r in caplog.records if "operator holds" in r.getMessage()][1:] == [
        f"saved operator holds to {path} again"
    ]
    await w.engine.shutdown()


def test_a_failed_save_is_logged_once_per_error_and_kept_for_a_retry(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "m.json"
    holds = Holds(HoldsStore(path), now=lambda: 5.0)
    monkeypatch.setattr(atomicfile, "replace_file", _disk_full)
    holds.disable(R2)  # takes effect although it cannot be saved
    holds.drain(R3, 60)
    assert dict(holds.view()) == {R2: Hold.DISABLED, R3: Hold.DRAINING}
    assert holds.store.flush() is False
    read_only = OSError(errno.EROFS, os.strerror(errno.EROFS))

    def refuse(path: Path, text: str) -> None:
        raise read_only

    monkeypatch.setattr(atomicfile, "replace_file", refuse)
    holds.settle(table(dest(2, 0, active=1), dest(3, 0, active=1)))  # a retry, another error
    lines = [r.getMessage() for r in caplog.records if "operator holds" in r.getMessage()]
    assert [line.split(": ", 1)[1] for line in lines] == [
        "No space left on device (kept in memory; will retry)",
        "Read-only file system (kept in memory; will retry)",
    ]
    monkeypatch.undo()
    assert not path.exists()
    holds.settle(table(dest(2, 0, active=1), dest(3, 0, active=1)))  # the retry works
    assert set(HoldsStore(path).load()) == {R2, R3}
