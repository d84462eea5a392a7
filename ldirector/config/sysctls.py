"""The /proc/sys/net/ipv4/vs toggles a config may ask for, and the range each accepts.

The table itself belongs to the IPVS layer, which writes the values (``ldirector.ipvs.toggles``);
the config validates against the same table, so ``ldirector check`` accepts exactly what the
daemon can set. ``sync_threshold`` and ``sync_period`` are the two halves of one kernel file.
"""

from __future__ import annotations

from collections.abc import Mapping

from ldirector.ipvs.toggles import TOGGLES

SYSCTLS: Mapping[str, tuple[int, int]] = TOGGLES
"""Sysctl name -> (minimum, maximum) of the value ldirector accepts for it."""

#: Toggles that exist but are not single integers (or only on debug kernels): named in errors.
UNSUPPORTED = frozenset({"est_cpulist", "debug_level"})
