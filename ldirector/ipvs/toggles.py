"""Kernel IPVS toggles: the ``/proc/sys/net/ipv4/vs/*`` values a config asks for, set and verified.

The config layer produces a mapping such as ``{"expire_quiescent_template": 1}``; `apply`
loads ip_vs if needed, writes each value and reads it back. Failures raise `ToggleError`, whose
text is one sentence saying what is wrong and what to do, for the CLI to print as is.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from types import MappingProxyType
from typing import Final

VS_DIR: Final = Path("/proc/sys/net/ipv4/vs")

_BOOL = (0, 1)
_INT = (0, 2**31 - 1)

#: The integer toggles ldirector may set, with the range the kernel accepts for each.
#: ``est_cpulist`` (a CPU list) and ``debug_level`` (debug kernels only) are not among them.
TOGGLES: Final[Mapping[str, tuple[int, int]]] = MappingProxyType(
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
        "sync_period": _INT,
        "sync_persist_mode": _BOOL,
        "sync_ports": (1, 2**31 - 1),
        "sync_qlen_max": _INT,
        "sync_refresh_period": _INT,
        "sync_retries": (0, 3),
        "sync_sock_size": _INT,
        "sync_threshold": _INT,
        "sync_version": _BOOL,
    }
)

#: The kernel keeps these two in one file, ``sync_threshold``, as "THRESHOLD PERIOD": a
#: connection is synced after THRESHOLD packets, then every PERIOD packets (0: only once).
PAIR_FILE: Final = "sync_threshold"
PAIRED: Final[Mapping[str, int]] = MappingProxyType({"sync_threshold": 0, "sync_period": 1})


class ToggleError(Exception):
    """Setting an IPVS toggle failed; ``str()`` is one sentence for the user."""


def _modprobe() -> bool:
    import subprocess  # every verb imports this module; only a kernel without ip_vs runs this

    try:
        done = subprocess.run(["modprobe", "ip_vs"], capture_output=True, check=False, timeout=60)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return done.returncode == 0


def apply(
    values: Mapping[str, int],
    *,
    root: Path = VS_DIR,
    load_module: Callable[[], bool] = _modprobe,
) -> dict[str, int]:
    """Write each toggle, read it back, and return what the kernel now holds.

    Unknown names and out-of-range values are refused before anything is written.
    """
    for name, value in values.items():
        if name not in TOGGLES:
            raise ToggleError(f"unknown IPVS setting '{name}'; known: {', '.join(sorted(TOGGLES))}")
        low, high = TOGGLES[name]
        # bool is an int subclass; True from a careless caller must not pass as 1.
        valid = type(value) is int and low <= value <= high
        if not valid:
            raise ToggleError(f"IPVS setting {name}={value!r} is out of range {low}..{high}")
    if not values:
        return {}
    if not root.is_dir() and not (load_module() and root.is_dir()):
        raise ToggleError(
            f"this kernel has no IPVS ({root} is missing and 'modprobe ip_vs' failed): "
            "install a kernel with the ip_vs module or load it before starting ldirector"
        )
    result: dict[str, int] = {}
    paired = {name: value for name, value in values.items() if name in PAIRED}
    if paired:
        result.update(_apply_pair(paired, root))
    for name, value in values.items():
        if name in PAIRED:
            continue
        path = root / name
        result[name] = _numbers(_write(path, str(value)), path, 1)[0]
        if result[name] != value:
            raise ToggleError(f"the kernel kept {path} at {result[name]} after writing {value}")
    return result


def _apply_pair(values: Mapping[str, int], root: Path) -> dict[str, int]:
    """Write sync_threshold and/or sync_period, keeping the other half of their shared file."""
    path = root / PAIR_FILE
    try:
        pair = _numbers(path.read_text(), path, 2)
    except FileNotFoundError:
        raise ToggleError(
            f"this kernel does not support the IPVS setting {PAIR_FILE} ({path} is missing)"
        ) from None
    except OSError as exc:
        raise ToggleError(f"cannot read {path}: {exc}") from None
    for name, value in values.items():
        pair[PAIRED[name]] = value
    threshold, period = pair
    if period and threshold >= period:
        raise ToggleError(
            f"IPVS sync_threshold {threshold} must be below sync_period {period} "
            "(or sync_period 0 to sync only once)"
        )
    kept = _numbers(_write(path, f"{threshold} {period}"), path, 2)
    if kept != pair:
        raise ToggleError(f"the kernel kept {path} at {kept} after writing {pair}")
    return {name: kept[PAIRED[name]] for name in values}


def _write(path: Path, text: str) -> str:
    """Write one toggle file and return what it reads afterwards; ToggleError on failure."""
    try:
        if not path.is_file():
            raise FileNotFoundError(path)
        path.write_text(f"{text}\n")
        return path.read_text()
    except FileNotFoundError:
        raise ToggleError(
            f"this kernel does not support the IPVS setting {path.name} ({path} is missing)"
        ) from None
    except PermissionError:
        raise ToggleError(
            f"cannot write {path}: changing IPVS settings needs root (CAP_NET_ADMIN); "
            "run ldirector as root"
        ) from None
    except OSError as exc:
        raise ToggleError(f"cannot set {path} to {text}: {exc}") from None


def _numbers(text: str, path: Path, count: int) -> list[int]:
    """The first ``count`` integers of a toggle file's text."""
    try:
        numbers = [int(word) for word in text.split()[:count]]
    except ValueError:
        numbers = []
    if len(numbers) != count:
        raise ToggleError(f"cannot read {path}: unexpected contents {text.strip()[:40]!r}")
    return numbers


def read(names: list[str] | None = None, *, root: Path = VS_DIR) -> dict[str, int]:
    """The current values of the named toggles (default: every known one present)."""
    found: dict[str, int] = {}
    for name in names if names is not None else sorted(TOGGLES):
        path = root / (PAIR_FILE if name in PAIRED else name)
        if path.exists():
            found[name] = int(path.read_text().split()[PAIRED.get(name, 0)])
    return found


def main(argv: list[str] | None = None) -> int:
    """``python -m ldirector.ipvs.toggles name=value ...``: set toggles, print them, exit 0/1."""
    values: dict[str, int] = {}
    for arg in sys.argv[1:] if argv is None else argv:
        name, sep, text = arg.partition("=")
        if not sep or not text.strip().lstrip("-").isdigit():
            print(f"ldirector: expected NAME=INTEGER, got '{arg}'", file=sys.stderr)
            return 2
        values[name] = int(text)
    try:
        for name, value in apply(values).items():
            print(f"{name}={value}")
    except ToggleError as exc:
        print(f"ldirector: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
