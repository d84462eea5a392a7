"""Kernel IPVS toggles: the ``/proc/sys/net/ipv4/vs/*`` values a config asks for, set and verified.

The config layer produces a mapping such as ``{"expire_quiescent_template": 1}``; `apply`
loads ip_vs if needed, writes each value and reads it back. Failures raise `ToggleError`, whose
text is one sentence saying what is wrong and what to do, for the CLI to print as is.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Final

VS_DIR: Final = Path("/proc/sys/net/ipv4/vs")

#: The integer toggles ldirector may set, with the range the kernel accepts for each. Others in
#: the directory (sync_threshold, est_cpulist, ...) take other value types or belong to sync
#: daemons, which ldirector does not manage.
TOGGLES: Final[Mapping[str, tuple[int, int]]] = {
    "expire_quiescent_template": (0, 1),
    "expire_nodest_conn": (0, 1),
    "conn_reuse_mode": (0, 3),
    "conntrack": (0, 1),
    "cache_bypass": (0, 1),
    "nat_icmp_send": (0, 1),
    "pmtu_disc": (0, 1),
    "snat_reroute": (0, 1),
    "sloppy_tcp": (0, 1),
    "sloppy_sctp": (0, 1),
    "schedule_icmp": (0, 1),
    "ignore_tunneled": (0, 1),
    "run_estimation": (0, 1),
    "secure_tcp": (0, 3),
    "drop_entry": (0, 3),
    "drop_packet": (0, 3),
    "am_droprate": (0, 2**31 - 1),
    "amemthresh": (0, 2**31 - 1),
    "backup_only": (0, 1),
}


class ToggleError(Exception):
    """Setting an IPVS toggle failed; ``str()`` is one sentence for the user."""


def _modprobe() -> bool:
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
    for name, value in values.items():
        path = root / name
        try:
            if not path.is_file():
                raise FileNotFoundError(path)
            path.write_text(f"{value}\n")
            result[name] = int(path.read_text().split()[0])
        except FileNotFoundError:
            raise ToggleError(
                f"this kernel does not support the IPVS setting {name} ({path} is missing)"
            ) from None
        except PermissionError:
            raise ToggleError(
                f"cannot write {path}: changing IPVS settings needs root (CAP_NET_ADMIN); "
                "run ldirector as root"
            ) from None
        except (OSError, ValueError) as exc:
            raise ToggleError(f"cannot set {path} to {value}: {exc}") from None
        if result[name] != value:
            raise ToggleError(f"the kernel kept {path} at {result[name]} after writing {value}")
    return result


def read(names: list[str] | None = None, *, root: Path = VS_DIR) -> dict[str, int]:
    """The current values of the named toggles (default: every known one present)."""
    found: dict[str, int] = {}
    for name in names if names is not None else sorted(TOGGLES):
        path = root / name
        if path.exists():
            found[name] = int(path.read_text().split()[0])
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
