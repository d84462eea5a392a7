"""The kernel's connection-sync daemon as a typed value: what a director pair starts and reads.

A master multicasts its connection table; a backup listens and mirrors it, so connections
survive a failover. The kernel runs at most one of each per network namespace. Defaults are the
kernel's own (group 224.0.0.81, port 8848, TTL 1), so a daemon read back equals the one started.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from ipaddress import IPv4Address
from typing import Final

from ldirector.ipvs.types import IPAddress

#: The kernel's multicast group and base port for sync messages (IP_VS_SYNC_GROUP / _PORT).
DEFAULT_GROUP: Final = IPv4Address("224.0.0.81")
DEFAULT_PORT: Final = 8848
#: Interface names are at most 15 bytes (IFNAMSIZ 16 with its NUL).
IFNAME_MAX: Final = 15


class DaemonState(enum.IntEnum):
    """Role of a sync daemon (IP_VS_STATE_* numbers)."""

    MASTER = 1
    BACKUP = 2

    @property
    def word(self) -> str:
        """The lower-case name ipvsadm uses (``--start-daemon backup``)."""
        return self.name.lower()


@dataclass(frozen=True, slots=True, kw_only=True)
class SyncDaemon:
    """One sync daemon's settings.

    ``syncid`` tags (master) or filters (backup, 0 accepts every tag) sync messages. ``maxlen``
    is the UDP payload size; None lets the kernel derive it from the interface MTU, and a
    daemon read back always carries the value the kernel chose.
    """

    state: DaemonState
    interface: str
    syncid: int = 0
    maxlen: int | None = None
    group: IPAddress = DEFAULT_GROUP
    port: int = DEFAULT_PORT
    ttl: int = 1

    def __post_init__(self) -> None:
        ifname = self.interface.encode()
        if not 0 < len(ifname) <= IFNAME_MAX or b"\0" in ifname or b"/" in ifname:
            raise ValueError(f"sync daemon: invalid interface name {self.interface!r}")
        checks = (
            ("syncid", self.syncid, 0, 255),
            ("maxlen", 1 if self.maxlen is None else self.maxlen, 1, 65535),
            ("port", self.port, 1, 65535),
            ("ttl", self.ttl, 1, 255),
        )
        for name, value, low, high in checks:
            if not low <= value <= high:
                raise ValueError(f"sync daemon: {name} {value} out of range {low}..{high}")
        if not self.group.is_multicast:
            raise ValueError(f"sync daemon: group {self.group} is not a multicast address")
