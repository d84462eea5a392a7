"""IPVS toggles in the real /proc: module loading, write and read back, one-line refusals."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from ldirector.ipvs import toggles
from ldirector.ipvs.toggles import ToggleError

from .vmtools import ipvsadm, run_as_nobody

pytestmark = pytest.mark.kernel


def unload_ipvs() -> None:
    """Remove ip_vs and its scheduler modules so /proc/sys/net/ipv4/vs disappears."""
    ipvsadm("-C")
    loaded = [
        line.split()[0]
        for line in Path("/proc/modules").read_text().splitlines()
        if line.startswith("ip_vs")
    ]
    helpers = [m for m in loaded if m != "ip_vs"]
    for names in (helpers, ["ip_vs"]):
        if names:
            done = subprocess.run(
                ["modprobe", "-r", *names], capture_output=True, text=True, check=False
            )
            assert done.returncode == 0, done.stderr


def test_toggles_load_ip_vs_and_read_back(vm: None) -> None:
    unload_ipvs()
    assert not toggles.VS_DIR.exists()
    values = {"expire_quiescent_template": 1, "expire_nodest_conn": 1, "conn_reuse_mode": 2}
    assert toggles.apply(values) == values
    assert toggles.read(list(values)) == values
    assert Path("/proc/sys/net/ipv4/vs/expire_nodest_conn").read_text() == "1\n"
    back = {"expire_quiescent_template": 0, "expire_nodest_conn": 0, "conn_reuse_mode": 1}
    assert toggles.apply(back) == back


def test_kernel_without_ipvs_is_one_sentence(vm: None) -> None:
    unload_ipvs()
    with pytest.raises(ToggleError) as caught:
        toggles.apply({"expire_nodest_conn": 1}, load_module=lambda: False)
    assert str(caught.value) == (
        "this kernel has no IPVS (/proc/sys/net/ipv4/vs is missing and 'modprobe ip_vs' failed): "
        "install a kernel with the ip_vs module or load it before starting ldirector"
    )
    subprocess.run(["modprobe", "ip_vs"], check=True, timeout=60)


def test_unprivileged_cli_prints_one_line_and_fails(vm: None) -> None:
    subprocess.run(["modprobe", "ip_vs"], check=True, timeout=60)
    done = run_as_nobody("-m", "ldirector.ipvs.toggles", "expire_nodest_conn=1")
    assert done.returncode == 1
    assert done.stdout == ""
    assert done.stderr == (
        "ldirector: cannot write /proc/sys/net/ipv4/vs/expire_nodest_conn: changing IPVS settings"
        " needs root (CAP_NET_ADMIN); run ldirector as root\n"
    )
