"""IPVS toggles against a stand-in /proc directory: validation, read-back, one-line errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from ldirector.ipvs import toggles
from ldirector.ipvs.toggles import ToggleError


@pytest.fixture
def vs_dir(tmp_path: Path) -> Path:
    root = tmp_path / "vs"
    root.mkdir()
    for name in ("expire_quiescent_template", "expire_nodest_conn", "conn_reuse_mode"):
        (root / name).write_text("0\n")
    return root


def test_writes_and_reads_back(vs_dir: Path) -> None:
    got = toggles.apply({"expire_quiescent_template": 1, "conn_reuse_mode": 2}, root=vs_dir)
    assert got == {"expire_quiescent_template": 1, "conn_reuse_mode": 2}
    assert (vs_dir / "expire_quiescent_template").read_text() == "1\n"
    assert toggles.read(root=vs_dir) == {
        "conn_reuse_mode": 2,
        "expire_nodest_conn": 0,
        "expire_quiescent_template": 1,
    }


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"expire_quiescent": 1}, "unknown IPVS setting 'expire_quiescent'"),
        ({"expire_nodest_conn": 2}, "expire_nodest_conn=2 is out of range 0..1"),
        ({"expire_nodest_conn": True}, "out of range"),
        ({"sloppy_tcp": 1}, "does not support the IPVS setting sloppy_tcp"),
    ],
)
def test_refusals_are_one_sentence(vs_dir: Path, values: dict[str, int], message: str) -> None:
    with pytest.raises(ToggleError) as caught:
        toggles.apply(values, root=vs_dir)
    assert message in str(caught.value)
    assert "\n" not in str(caught.value)


def test_loads_the_module_when_the_directory_is_absent(tmp_path: Path) -> None:
    root = tmp_path / "vs"
    calls: list[str] = []

    def load() -> bool:
        calls.append("modprobe")
        root.mkdir()
        (root / "expire_nodest_conn").write_text("0\n")
        return True

    assert toggles.apply({"expire_nodest_conn": 1}, root=root, load_module=load) == {
        "expire_nodest_conn": 1
    }
    assert calls == ["modprobe"]


def test_no_ipvs_in_kernel(tmp_path: Path) -> None:
    with pytest.raises(ToggleError, match="this kernel has no IPVS"):
        toggles.apply({"expire_nodest_conn": 1}, root=tmp_path / "vs", load_module=lambda: False)


def test_empty_mapping_touches_nothing(tmp_path: Path) -> None:
    assert toggles.apply({}, root=tmp_path / "absent", load_module=lambda: False) == {}


def test_value_the_kernel_did_not_keep_is_reported(
    vs_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(Path, "read_text", lambda self: "0\n")
    with pytest.raises(ToggleError, match=r"kept .*expire_nodest_conn at 0 after writing 1"):
        toggles.apply({"expire_nodest_conn": 1}, root=vs_dir)


def test_permission_error_says_run_as_root(vs_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # The real refusal is exercised in the VM (tests/kernel); here the write is made to fail.
    def refuse(self: Path, data: str) -> int:
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(Path, "write_text", refuse)
    with pytest.raises(ToggleError, match=r"needs root \(CAP_NET_ADMIN\); run ldirector as root"):
        toggles.apply({"expire_nodest_conn": 1}, root=vs_dir)


def test_main_prints_values_or_one_line(vs_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert toggles.main(["expire_nodest_conn=x"]) == 2
    assert (
        capsys.readouterr().err == "ldirector: expected NAME=INTEGER, got 'expire_nodest_conn=x'\n"
    )
    assert toggles.main(["bogus=1"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("ldirector: unknown IPVS setting 'bogus'") and err.count("\n") == 1
