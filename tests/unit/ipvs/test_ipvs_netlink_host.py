"""NetlinkBackend's failure paths that the host can exercise without touching any IPVS table."""

from __future__ import annotations

import os
import platform
from pathlib import Path

import pytest

from ldirector.ipvs.backend import IpvsError, IpvsUnavailable
from ldirector.ipvs.netlink import NetlinkBackend

HOST_HAS_IPVS = (
    Path("/proc/sys/net/ipv4/vs").exists()
    or Path(f"/lib/modules/{platform.release()}/kernel/net/netfilter/ipvs").exists()
)


@pytest.mark.skipif(HOST_HAS_IPVS, reason="this host kernel has IPVS; tests/kernel covers it")
async def test_kernel_without_ipvs_is_one_sentence() -> None:
    backend = NetlinkBackend()
    with pytest.raises(IpvsUnavailable) as caught:
        await backend.dump()
    assert str(caught.value) == (
        "this kernel has no IPVS support: load it with 'modprobe ip_vs' "
        "or use a kernel built with CONFIG_IP_VS"
    )
    await backend.close()


async def test_missing_network_namespace_is_one_sentence() -> None:
    backend = NetlinkBackend(netns=f"ldirector-absent-{os.getpid()}")
    with pytest.raises(
        IpvsError, match=r"^cannot open IPVS in network namespace ldirector-absent-"
    ):
        await backend.dump()
    await backend.apply([])  # nothing to do: no socket is needed, so no error either
