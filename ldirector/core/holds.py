"""Operator holds: an operator's ``disable``, ``drain`` and ``enable`` of one real server.

The rules only: naming a real on the command line, and when a drain is over. Time is passed in
and nothing is read or written here; the live holds of a daemon and their file are
``ldirector.state.holds``. ``desired`` reads each held real's :class:`Hold` (a disabled real is
left out of the table, a draining one kept at weight 0).

Disable removes the real even under ``quiescent=yes``: it is an explicit order, and the gentle
way out is ``drain``. A drain ends when the kernel shows no active and no inactive connection
left on the real (or no longer holds it), or when its time bound passes; the real then stays
out, disabled, until ``enable``.
"""

from __future__ import annotations

import enum
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from ipaddress import ip_address

from ldirector.config.model import Config
from ldirector.config.values import digits, parse_port
from ldirector.core.desired import RealKey, real_key, service_key
from ldirector.ipvs.types import (
    Family,
    FwmarkServiceKey,
    InetServiceKey,
    IPAddress,
    IpvsTable,
    Protocol,
    ServiceKey,
    parse_service_key,
)

#: Seconds a drain waits for connections to end before the real is removed anyway.
DEFAULT_DRAIN_TIMEOUT = 300.0


class Hold(enum.StrEnum):
    """How an operator holds a real out. ``desired`` reads these values as plain strings."""

    DISABLED = "disabled"
    DRAINING = "draining"


class HoldError(ValueError):
    """A bad VIRTUAL or REAL: ``str()`` is one line an operator can act on."""


@dataclass(frozen=True, slots=True)
class HoldEntry:
    """One real held out of service. Times are wall-clock (they are saved across reboots)."""

    hold: Hold
    since: float
    #: When a drain gives up waiting for connections to end; None for a disable.
    deadline: float | None = None


def disabled(now: float) -> HoldEntry:
    """A disable ordered at ``now``."""
    return HoldEntry(Hold.DISABLED, now)


def draining(now: float, timeout: float = DEFAULT_DRAIN_TIMEOUT) -> HoldEntry:
    """A drain ordered at ``now`` that gives up after ``timeout`` seconds."""
    return HoldEntry(Hold.DRAINING, now, now + timeout)


def settle(
    entries: Mapping[RealKey, HoldEntry],
    actual: IpvsTable,
    now: float,
    within: Collection[ServiceKey] | None = None,
) -> dict[RealKey, HoldEntry]:
    """The drains that are over: connections gone, the real gone, or the bound passed.

    ``within``: ``actual`` holds only these services, so only their drains can be judged.
    Returns only the entries that change (each becomes a disable).
    """
    done: dict[RealKey, HoldEntry] = {}
    for key, entry in entries.items():
        if entry.hold is not Hold.DRAINING or (within is not None and key.service not in within):
            continue
        vs = actual.services.get(key.service)
        dest = vs.dests.get(key.dest) if vs else None
        counters = dest.counters if dest else None
        idle = dest is None or (
            counters is not None and counters.active_conns + counters.inactive_conns == 0
        )
        if idle or (entry.deadline is not None and now >= entry.deadline):
            done[key] = disabled(now)
    return done


# --- naming reals on the command line --------------------------------------------------------


def parse_virtual(text: str) -> ServiceKey:
    """A virtual as ldirectord writes it: ``127.0.0.1:80``, ``tcp:127.0.0.1:80``,
    ``udp:[::1]:53``, ``fwm:100`` (``fwm6:100`` for IPv6), or a bare mark ``100``."""
    text = text.strip()
    if digits(text):
        text = f"fwm:{text}"
    kind, sep, _ = text.partition(":")
    if sep and kind.lower() in ("tcp", "udp", "sctp", "fwm", "fwm6"):
        try:
            return parse_service_key(kind.lower() + text[len(kind) :])
        except ValueError:
            raise HoldError(f"not a virtual service: {text!r}") from None
    try:
        address, port = _hostport(text)
    except HoldError:
        raise HoldError(
            f"not a virtual service: {text!r} (expected IP:PORT, tcp:IP:PORT, udp:IP:PORT"
            " or fwm:MARK)"
        ) from None
    if port is None:
        raise HoldError(f"not a virtual service: {text!r} (no port)")
    return InetServiceKey(Protocol.TCP, address, port)


def parse_real(text: str) -> tuple[IPAddress, int | None]:
    """A real as ``127.0.0.1:8080``, ``[::1]:8080`` or a bare address (any port)."""
    try:
        return _hostport(text.strip())
    except HoldError:
        raise HoldError(f"not a real server: {text!r} (expected IP:PORT or IP)") from None


def _hostport(text: str) -> tuple[IPAddress, int | None]:
    host, port_text = text, ""
    if text.startswith("["):
        host, close, rest = text[1:].partition("]")
        if not close or (rest and not rest.startswith(":")):
            raise HoldError(text)
        port_text = rest[1:]
    elif text.count(":") == 1:
        host, _, port_text = text.partition(":")
    try:
        address = ip_address(host)
        port = parse_port(port_text, minimum=0) if port_text else None
    except ValueError:
        raise HoldError(text) from None
    return address, port


def resolve(config: Config, virtual: str, real: str) -> RealKey:
    """The configured real named by the command line, or HoldError saying what is wrong."""
    want = parse_virtual(virtual)
    address, port = parse_real(real)
    virtuals = [v for v in config.virtuals if service_key(v) == want]
    if not virtuals and isinstance(want, FwmarkServiceKey) and address.version == 6:
        want = FwmarkServiceKey(Family.INET6, want.fwmark)
        virtuals = [v for v in config.virtuals if service_key(v) == want]
    if not virtuals:
        raise HoldError(f"no virtual service {want} in the configuration")
    found: dict[RealKey, None] = {}
    for v in virtuals:
        for r in v.reals:
            key = real_key(v, r)
            if r.address == address and port in (None, r.port, key.dest.port):
                found[key] = None
    if not found:
        raise HoldError(f"virtual service {want} has no real server {real.strip()}")
    if len(found) > 1:
        ports = ", ".join(str(k.dest) for k in found)
        raise HoldError(f"{real.strip()} matches several real servers ({ports}): give the port")
    return next(iter(found))
