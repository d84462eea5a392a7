"""IPVS: the typed table model, the backends that read and change it, and the kernel toggles.

The engine imports the types and one backend from here; only `ipvs.netlink` talks to a kernel.
"""

from ldirector.ipvs.backend import ApplyError, IpvsBackend, IpvsError, IpvsUnavailable
from ldirector.ipvs.fake import FakeBackend
from ldirector.ipvs.types import (
    AddDest,
    AddService,
    DelDest,
    DelService,
    Dest,
    DestCounters,
    DestKey,
    EditDest,
    EditService,
    Family,
    Forward,
    FwmarkServiceKey,
    InetServiceKey,
    IpvsTable,
    Op,
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
    "DelDest",
    "DelService",
    "Dest",
    "DestCounters",
    "DestKey",
    "EditDest",
    "EditService",
    "FakeBackend",
    "Family",
    "Forward",
    "FwmarkServiceKey",
    "InetServiceKey",
    "IpvsBackend",
    "IpvsError",
    "IpvsTable",
    "IpvsUnavailable",
    "Op",
    "Protocol",
    "SchedFlags",
    "Service",
    "ServiceKey",
    "Stats",
    "VirtualService",
]
