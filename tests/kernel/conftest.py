"""Kernel suite fixtures: a real IPVS table, only inside the throwaway VM scripts/vm-test boots.

These tests flush and rewrite the IPVS table, so they refuse to run anywhere but that VM.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import AsyncIterator

import pytest
from hypothesis import HealthCheck, settings

from ldirector.ipvs.backend import IpvsUnavailable
from ldirector.ipvs.netlink import NetlinkBackend

from .vmtools import ipvsadm

IN_VM = os.environ.get("LDIRECTOR_IN_VM") == "1"

# TCG emulation is slow and the host root is read-only in the guest: few examples, no database.
settings.register_profile(
    "vm",
    max_examples=12,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
if IN_VM:
    settings.load_profile("vm")


@pytest.fixture(scope="session")
def vm() -> None:
    """Skip unless inside the test VM with ipvsadm and an IPVS-capable kernel."""
    if not IN_VM:
        pytest.skip("kernel tests change the IPVS table: they run only inside scripts/vm-test")
    if shutil.which("ipvsadm") is None:
        pytest.skip("ipvsadm is not installed")
    subprocess.run(["modprobe", "ip_vs"], check=False, capture_output=True, timeout=60)


@pytest.fixture
async def kernel(vm: None) -> AsyncIterator[NetlinkBackend]:
    """A NetlinkBackend on an empty table, flushed again afterwards."""
    backend = NetlinkBackend()
    try:
        await backend.dump()
    except IpvsUnavailable as exc:
        pytest.skip(str(exc))
    ipvsadm("-C")
    try:
        yield backend
    finally:
        await backend.close()
        ipvsadm("-C")
