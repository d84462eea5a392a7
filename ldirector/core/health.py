"""The pure up/down state machine: check results in, health and events out.

Sits between the scheduler (which produces results) and ``desired`` (which turns health into
an IPVS table). Nothing here does I/O or reads the time; every rule of ldirectord's
``service_set`` lives in :func:`step`, with its start-up flap and ``checktype=off``
bugs fixed.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Collection, Iterable
from dataclasses import dataclass, replace
from ipaddress import IPv4Address, IPv6Address

from ldirector.core.events import EventKind


class Status(enum.StrEnum):
    """Whether a real server is serving."""

    #: Not checked yet and not found serving in the kernel: it is not added until a check
    #: passes, so a start never sends clients to a dead server.
    UNKNOWN = "unknown"
    UP = "up"
    DOWN = "down"


class CheckMode(enum.StrEnum):
    """How a virtual's reals get their health: by checks, or fixed by ``checktype``."""

    CHECK = "check"
    #: checktype=on: always up, nothing probed.
    ON = "on"
    #: checktype=off: never up, and no fallback either. ldirectord still keeps reals it finds
    #: serving and adds its fallback; here "off" means exactly what its manual says.
    OFF = "off"


@dataclass(frozen=True, slots=True, kw_only=True)
class Event:
    """A fact only health knows: a soft failure, or the reset of their count.

    Whether a real went in or out is the kernel's to say (``ldirector.engine.oplog``): a real
    an operator holds out, or one the kernel cannot hold, moves in health and nowhere else.
    """

    kind: EventKind
    reason: str = ""
    failures: int = 0
    failurecount: int = 0


@dataclass(frozen=True, slots=True, kw_only=True)
class Policy:
    """The per-virtual rules that decide how results move a real's health."""

    failurecount: int = 1
    #: Consecutive successes a down real needs before it is up again.
    rise: int = 1
    mode: CheckMode = CheckMode.CHECK


@dataclass(frozen=True, slots=True, kw_only=True)
class RealHealth:
    """Health of one real server within one virtual service."""

    status: Status = Status.UNKNOWN
    #: Consecutive failures counted toward failurecount while still up.
    failures: int = 0
    #: Consecutive successes counted toward rise while still down.
    successes: int = 0
    reason: str = ""


def initial(policy: Policy, kernel_weight: int | None) -> RealHealth:
    """Health at start or when a real first appears, seeded from what the kernel holds.

    A real the kernel already serves (weight > 0) starts up and stays up until a check says
    otherwise; anything else waits for its first passing check (ldirectord adds it at full
    weight first, then deletes it).
    """
    match policy.mode:
        case CheckMode.ON:
            return RealHealth(status=Status.UP, reason="checktype on")
        case CheckMode.OFF:
            return RealHealth(status=Status.DOWN, reason="checktype off")
        case CheckMode.CHECK:
            if kernel_weight is not None and kernel_weight > 0:
                return RealHealth(status=Status.UP, reason="serving at start")
            return RealHealth()


def step(
    health: RealHealth, ok: bool, reason: str, policy: Policy, *, forced: bool = False
) -> tuple[RealHealth, tuple[Event, ...]]:
    """Apply one check result. ``forced`` (maintenance) takes a real down at once.

    Up needs one success, or ``rise`` consecutive ones for a real that is down. Down needs
    ``failurecount`` consecutive failures of a real that is up; a real that was never up goes
    straight to down (there is nothing to protect).
    """
    if policy.mode is not CheckMode.CHECK:
        return health, ()
    if ok and health.status is Status.DOWN and health.successes + 1 < policy.rise:
        return replace(health, successes=health.successes + 1, reason=reason), ()
    if ok:
        if health.status is Status.UP and not health.failures and health.reason == reason:
            return health, ()  # the common case keeps its object: less for the collector
        events: tuple[Event, ...] = ()
        if health.failures:
            reset = Event(
                kind=EventKind.RESET_SOFT_FAILURE,
                reason=reason,
                failures=health.failures,
                failurecount=policy.failurecount,
            )
            events = (reset,)
        return RealHealth(status=Status.UP, reason=reason), events

    if health.status is Status.DOWN:
        if health.reason == reason and not health.successes:
            return health, ()
        return replace(health, successes=0, reason=reason), ()
    if health.status is Status.UNKNOWN:
        return replace(health, status=Status.DOWN, reason=reason), ()
    failures = health.failures + 1
    if failures < policy.failurecount and not forced:
        soft = Event(
            kind=EventKind.SOFT_FAILURE,
            reason=reason,
            failures=failures,
            failurecount=policy.failurecount,
        )
        return replace(health, failures=failures, reason=reason), (soft,)
    return RealHealth(status=Status.DOWN, reason=reason), ()


def serving(healths: Iterable[RealHealth]) -> bool:
    """True when at least one real is up: the fallback is needed exactly when this is False."""
    return any(h.status is Status.UP for h in healths)


def fallback_switch(policy: Policy, was_serving: bool, is_serving: bool) -> bool | None:
    """Whether a change of "any real up" switches the fallback on (True) or off (False), or
    None (no change, or checktype=off). It runs the fallbackcommand; the fallback server
    itself is the desired table's business."""
    if policy.mode is CheckMode.OFF or was_serving == is_serving:
        return None
    return not is_serving


# --- the combined numeric checktype -----------------------------------------------------------


class CheckKind(enum.StrEnum):
    """Which of a combined checktype's two checks runs next."""

    NEGOTIATE = "negotiate"
    CONNECT = "connect"


@dataclass(frozen=True, slots=True)
class Rotation:
    """checktype=N: negotiate, then N connects, then negotiate again.

    The first check is a negotiate, and so is the one after any failure, so a real is
    never brought back on a bare connect. ``connects=0`` means always negotiate.
    """

    connects: int
    #: Connect checks left before the next negotiate.
    remaining: int = 0

    @property
    def next_kind(self) -> CheckKind:
        return CheckKind.CONNECT if self.remaining > 0 else CheckKind.NEGOTIATE

    def after(self, kind: CheckKind, ok: bool) -> Rotation:
        """The rotation once a check of ``kind`` has returned ``ok``."""
        if not ok:
            return Rotation(self.connects)
        if kind is CheckKind.NEGOTIATE:
            return Rotation(self.connects, self.connects)
        return Rotation(self.connects, max(0, self.remaining - 1))


# --- maintenancedir -------------------------------------------------------------------------

_SHORT_NAME = re.compile(r"^([a-z][a-z0-9-]+)\.")


def maintenance_names(
    address: IPv4Address | IPv6Address, port: int, fqdn: str | None = None
) -> tuple[str, ...]:
    """The file names that put a real in maintenance, most specific first.

    ``fqdn`` comes from a reverse lookup the caller has cached: ldirectord resolves it before
    every single check, which costs a DNS round trip per real per interval.
    """
    rip = f"[{address}]" if isinstance(address, IPv6Address) else str(address)
    names = [f"{rip}:{port}", rip]
    if fqdn:
        fqdn = fqdn.rstrip(".")
        names += [f"{fqdn}:{port}", fqdn]
        short = _SHORT_NAME.match(fqdn)
        if short:
            names += [f"{short.group(1)}:{port}", short.group(1)]
    return tuple(dict.fromkeys(names))


def maintenance_match(names: Iterable[str], present: Collection[str]) -> str | None:
    """The first of ``names`` found among the maintenance directory's entries, if any."""
    return next((name for name in names if name in present), None)
