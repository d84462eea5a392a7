"""SyncDaemon: the kernel's defaults, and settings without an encoding refused early."""

from __future__ import annotations

from ipaddress import IPv4Address, IPv6Address
from typing import Any

import pytest

from ldirector.ipvs.sync import DaemonState, SyncDaemon


def test_defaults_are_the_kernels() -> None:
    daemon = SyncDaemon(state=DaemonState.BACKUP, interface="eth0")
    assert (daemon.group, daemon.port, daemon.ttl, daemon.syncid) == (
        IPv4Address("224.0.0.81"),
        8848,
        1,
        0,
    )
    assert daemon.maxlen is None
    assert DaemonState.BACKUP.word == "backup"


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"interface": ""}, "invalid interface name ''"),
        ({"interface": "a-very-long-name"}, "invalid interface name"),  # 16 bytes
        ({"interface": "a/b"}, "invalid interface name"),
        ({"syncid": 256}, "syncid 256 out of range 0..255"),
        ({"maxlen": 0}, "maxlen 0 out of range 1..65535"),
        ({"port": 65536}, "port 65536 out of range"),
        ({"ttl": 0}, "ttl 0 out of range 1..255"),
        ({"group": IPv4Address("192.0.2.1")}, "group 192.0.2.1 is not a multicast address"),
        ({"group": IPv6Address("fd00::1")}, "group fd00::1 is not a multicast address"),
    ],
)
def test_settings_without_an_encoding_are_refused(changes: dict[str, Any], message: str) -> None:
    settings: dict[str, Any] = {"state": DaemonState.MASTER, "interface": "eth0", **changes}
    with pytest.raises(ValueError, match=f"^sync daemon: {message}"):
        SyncDaemon(**settings)


def test_fifteen_byte_interface_names_fit() -> None:
    assert SyncDaemon(state=DaemonState.MASTER, interface="x" * 15).interface == "x" * 15
