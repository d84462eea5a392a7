"""toggles: the sync tuning toggles the config accepts are the ones the daemon can write."""

from __future__ import annotations

from pathlib import Path

import pytest

from ldirector.config.sysctls import SYSCTLS
from ldirector.ipvs import toggles
from ldirector.ipvs.toggles import ToggleError


@pytest.fixture
def vs_dir(tmp_path: Path) -> Path:
    root = tmp_path / "vs"
    root.mkdir()
    for name in ("sync_version", "sync_persist_mode", "conntrack", "sync_refresh_period"):
        (root / name).write_text("0\n")
    (root / "sync_threshold").write_text("3\t50\n")
    return root


def test_every_toggle_the_config_accepts_can_be_written() -> None:
    assert set(SYSCTLS) <= set(toggles.TOGGLES)


def test_sync_toggles_are_written(vs_dir: Path) -> None:
    values = {"sync_version": 1, "sync_persist_mode": 1, "conntrack": 1, "sync_refresh_period": 0}
    assert toggles.apply(values, root=vs_dir) == values


def test_threshold_and_period_share_one_file_and_keep_each_other(vs_dir: Path) -> None:
    assert toggles.apply({"sync_period": 100}, root=vs_dir) == {"sync_period": 100}
    assert (vs_dir / "sync_threshold").read_text() == "3 100\n"
    assert toggles.apply({"sync_threshold": 5}, root=vs_dir) == {"sync_threshold": 5}
    assert (vs_dir / "sync_threshold").read_text() == "5 100\n"
    assert toggles.read(["sync_threshold", "sync_period"], root=vs_dir) == {
        "sync_threshold": 5,
        "sync_period": 100,
    }


def test_a_period_of_zero_syncs_once_whatever_the_threshold(vs_dir: Path) -> None:
    got = toggles.apply({"sync_threshold": 9, "sync_period": 0}, root=vs_dir)
    assert got == {"sync_threshold": 9, "sync_period": 0}


def test_a_threshold_not_below_the_period_is_refused_in_one_sentence(vs_dir: Path) -> None:
    with pytest.raises(ToggleError) as caught:
        toggles.apply({"sync_threshold": 50}, root=vs_dir)
    assert str(caught.value) == (
        "IPVS sync_threshold 50 must be below sync_period 50 (or sync_period 0 to sync only once)"
    )
    assert (vs_dir / "sync_threshold").read_text() == "3\t50\n"
