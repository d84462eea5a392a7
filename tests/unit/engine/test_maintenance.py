"""maintenancedir: a file named after a real takes it out; the directory is read boundedly."""

from __future__ import annotations

import os
from collections.abc import Iterator
from ipaddress import ip_address
from pathlib import Path
from typing import Any

import pytest

from ldirector.engine import maintenance
from ldirector.engine.maintenance import Maintenance
from ldirector.testing import FakeClock

R2, R3 = ip_address("127.0.0.2"), ip_address("127.0.0.3")


async def _no_name(address: object) -> str | None:
    return None


class _Counted:
    """Counts the names a directory read hands out, whichever call does the reading."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.read = 0
        scandir, listdir = os.scandir, os.listdir
        counted = self

        class Entries:
            def __init__(self, path: str) -> None:
                self._it = scandir(path)

            def __enter__(self) -> Entries:
                return self

            def __exit__(self, *exc: object) -> None:
                self._it.close()

            def __iter__(self) -> Iterator[os.DirEntry[str]]:
                for entry in self._it:
                    counted.read += 1
                    yield entry

        def counting_listdir(path: Any = ".") -> list[str]:
            names = listdir(path)
            counted.read += len(names)
            return names

        monkeypatch.setattr(os, "scandir", Entries)
        monkeypatch.setattr(os, "listdir", counting_listdir)


async def test_a_real_named_in_the_directory_is_in_maintenance(tmp_path: Path) -> None:
    (tmp_path / "127.0.0.2:8080").touch()
    os.mkfifo(tmp_path / "127.0.0.3")  # a FIFO is a name like any other: never opened
    clock = FakeClock()
    watch = Maintenance(str(tmp_path), clock, resolver=_no_name)
    assert watch.match(R2, 8080) == "127.0.0.2:8080"
    assert watch.match(R2, 80) is None
    assert watch.match(R3, 80) == "127.0.0.3"
    (tmp_path / "127.0.0.2:8080").unlink()
    assert watch.match(R2, 8080) == "127.0.0.2:8080"  # the listing is kept for a second
    await clock.advance(1)
    assert watch.match(R2, 8080) is None
    await watch.close()


async def test_a_huge_directory_is_not_read_whole(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """Each listing runs on the event loop: a directory of millions of names must not stall
    it, nor hide the reals it names."""
    monkeypatch.setattr(maintenance, "MAX_LISTING", 50, raising=False)
    directory = tmp_path / "maint"
    directory.mkdir()
    for n in range(500):
        (directory / f"filler-{n}").touch()
    (directory / "127.0.0.2").touch()
    (tmp_path / "outside").touch()
    counted = _Counted(monkeypatch)
    clock = FakeClock()

    async def hostile(address: object) -> str | None:
        return "../outside"  # a reverse-DNS answer pointing out of the directory

    watch = Maintenance(str(directory), clock, resolver=hostile)
    for _ in range(3):
        assert watch.match(R2, 8080) == "127.0.0.2"
        assert watch.match(R3, 8080) is None
        await clock.advance(1)
    assert counted.read <= 3 * 51
    assert caplog.text.count("holds more than 50 entries") == 1
    for n in range(500):
        (directory / f"filler-{n}").unlink()
    await clock.advance(1)
    assert watch.match(R2, 8080) == "127.0.0.2"  # small again: listed again
    await watch.close()
