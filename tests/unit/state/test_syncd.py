"""syncd: the roles of the sync daemons ldirector started survive a restart."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from ldirector.ipvs.sync import DaemonState
from ldirector.state.syncd import SyncOwnedStore, default_path


def test_saved_roles_are_loaded_by_the_next_run(tmp_path: Path) -> None:
    path = default_path("/etc/ha.d/pair.cf", tmp_path)
    assert path == tmp_path / "pair.cf.syncd"
    assert SyncOwnedStore(path).load() == frozenset()
    assert SyncOwnedStore(path).save([DaemonState.BACKUP, DaemonState.MASTER])
    assert path.read_text().splitlines()[1:] == ["master", "backup"]
    assert SyncOwnedStore(path).load() == {DaemonState.MASTER, DaemonState.BACKUP}
    assert SyncOwnedStore(path).save([])
    assert SyncOwnedStore(path).load() == frozenset()


def test_unknown_lines_are_skipped_with_a_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "x.syncd"
    path.write_text("# comment\nbackup\nprimary\n")
    with caplog.at_level(logging.WARNING):
        assert SyncOwnedStore(path).load() == {DaemonState.BACKUP}
    assert f"{path}:3: not a sync daemon role (ignored)" in caplog.messages


def test_an_oversized_file_is_read_only_up_to_its_bound(tmp_path: Path) -> None:
    path = tmp_path / "x.syncd"
    path.write_text("master\n" + "x" * 100_000 + "\nbackup\n")
    assert SyncOwnedStore(path).load() == {DaemonState.MASTER}


def test_memory_only_store_keeps_roles_without_a_file() -> None:
    store = SyncOwnedStore(None)
    store.save([DaemonState.MASTER])
    assert store.load() == {DaemonState.MASTER}
    assert store.flush()


def test_an_unwritable_directory_costs_the_copy_not_the_run(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    store = SyncOwnedStore(blocker / "sub" / "x.syncd")
    assert not store.save([DaemonState.MASTER])
    assert not store.flush()
