"""The owned-services file: what ldirector created, kept across restarts."""

from __future__ import annotations

import errno
import logging
import os
from ipaddress import ip_address
from pathlib import Path

import pytest

from ldirector.ipvs.types import Family, FwmarkServiceKey, InetServiceKey, Protocol, ServiceKey
from ldirector.state import atomicfile
from ldirector.state.owned import OwnedStore, default_path
from tests.support.engine_world import World, config

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


def test_a_failed_save_is_logged_once_kept_and_retried(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="ldirector")
    store = OwnedStore(tmp_path / "x.cf.owned")
    monkeypatch.setattr(atomicfile, "replace_file", _disk_full)
    assert store.save(KEYS) is False  # no exception: the caller's memory is the truth
    assert store.flush() is False
    monkeypatch.undo()
    assert store.flush() is True
    assert store.load() == KEYS
    assert [r.getMessage() for r in caplog.records] == [
        f"cannot save owned services to {store.path}: No space left on device"
        " (kept in memory; will retry)",
        f"saved owned services to {store.path} again",
    ]


def _disk_full(path: Path, text: str) -> None:
    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))


RELOADED = """\
virtual=127.0.0.100:80
	real=127.0.0.2:8080 masq
	checktype=on

virtual=127.0.0.101:80
	real=127.0.0.3:8080 masq
	checktype=on
"""


async def test_a_full_disk_never_stops_the_owned_services_being_created(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """A reload adds a virtual while the owned set cannot be saved: it is created all the
    same, and the file catches up at the first reconcile after the disk has room again."""
    w = World(RELOADED.split("\n\n")[0] + "\n", tmp_path)
    await w.engine.start()
    monkeypatch.setattr(atomicfile, "replace_file", _disk_full)
    await w.engine.reload(config(RELOADED))
    assert w.table() == [
        "tcp:127.0.0.100:80",
        "  127.0.0.2:8080 w1",
        "tcp:127.0.0.101:80",
        "  127.0.0.3:8080 w1",
    ]
    await w.clock.advance(30)  # resyncs retry the save: no more lines
    assert len([r for r in caplog.records if "cannot save owned services" in r.getMessage()]) == 1
    monkeypatch.undo()
    await w.clock.advance(10)
    assert (
        w.store.load()
        == w.engine.owned
        == {InetServiceKey(Protocol.TCP, ip_address(f"127.0.0.{n}"), 80) for n in (100, 101)}
    )
    await w.engine.shutdown()
