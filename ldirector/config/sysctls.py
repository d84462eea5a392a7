"""The /proc/sys/net/ipv4/vs toggles a config may ask for, and the range each accepts.

Only scalar integer toggles are listed (netlink-ipvs.md section 4); ``est_cpulist`` and
``sync_threshold`` are not integers and ``debug_level`` exists only on debug kernels.
Writing them to the kernel belongs to the IPVS layer; this table only validates.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

_BOOL = (0, 1)
_INT = (0, 2**31 - 1)

SYSCTLS: Mapping[str, tuple[int, int]] = MappingProxyType(
    {
        "am_droprate": _INT,
        "amemthresh": _INT,
        "backup_only": _BOOL,
        "cache_bypass": _BOOL,
        "conn_lfactor": (-8, 8),
        "conn_reuse_mode": (0, 3),
        "conntrack": _BOOL,
        "drop_entry": (0, 3),
        "drop_packet": (0, 3),
        "est_nice": (-20, 19),
        "expire_nodest_conn": _BOOL,
        "expire_quiescent_template": _BOOL,
        "ignore_tunneled": _BOOL,
        "lblc_expiration": _INT,
        "lblcr_expiration": _INT,
        "nat_icmp_send": _BOOL,
        "pmtu_disc": _BOOL,
        "run_estimation": _BOOL,
        "schedule_icmp": _BOOL,
        "secure_tcp": (0, 3),
        "sloppy_sctp": _BOOL,
        "sloppy_tcp": _BOOL,
        "snat_reroute": _BOOL,
        "svc_lfactor": (-8, 8),
        "sync_persist_mode": _BOOL,
        "sync_ports": (1, 2**31 - 1),
        "sync_qlen_max": _INT,
        "sync_refresh_period": _INT,
        "sync_retries": (0, 3),
        "sync_sock_size": _INT,
        "sync_version": _BOOL,
    }
)
"""Sysctl name -> (minimum, maximum) of the value ldirector accepts for it."""

#: Toggles that exist but are not single integers (or only on debug kernels): named in errors.
UNSUPPORTED = frozenset({"est_cpulist", "sync_threshold", "debug_level"})
