"""IPVS: the typed table model, the backend that reads and changes it, and the kernel toggles.

The engine imports the types and the backend protocol from here; only `ipvs.netlink` talks to a
kernel. The in-memory fake for tests is `ldirector.testing.FakeBackend`.
"""

from ldirector.ipvs.backend import (
    ApplyError,
    IpvsBackend,
    IpvsError,
    IpvsUnavailable,
    MalformedReply,
)
from ldirector.ipvs.ops import AddDest, AddService, DelDest, DelService, EditDest, EditService, Op
from ldirector.ipvs.sync import DaemonState, SyncDaemon
from ldirector.ipvs.types import (
    Dest,
    DestCounters,
    DestKey,
    Family,
    ForeignDest,
    ForeignService,
    Forward,
    FwmarkServiceKey,
    InetServiceKey,
    IpvsTable,
    Protocol,
    SchedFlags,
    Service,
    ServiceKey,
    Stats,
    VirtualService,
)

__all__ = [
    "AddDest",
    "AddService",
    "ApplyError",
    "DaemonState",
    "DelDest",
    "DelService",
    "Dest",
    "DestCounters",
    "DestKey",
    "EditDest",
    "EditService",
    "Family",
    "ForeignDest",
    "ForeignService",
    "Forward",
    "FwmarkServiceKey",
    "InetServiceKey",
    "IpvsBackend",
    "IpvsError",
    "IpvsTable",
    "IpvsUnavailable",
    "MalformedReply",
    "Op",
    "Protocol",
    "SchedFlags",
    "Service",
    "ServiceKey",
    "Stats",
    "SyncDaemon",
    "VirtualService",
]
