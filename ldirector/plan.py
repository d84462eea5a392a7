"""Planning: which check a real server gets, and within what time (pure, no I/O).

Sits between the config model and the scheduler. ``first_probe`` applies ldirectord's checktype
rules to the first check of a real: negotiate first for the combined form N, ping for connect on
UDP services (already chosen by the config layer in ``Real.connect``), nothing for on/off.
"""

from __future__ import annotations

from dataclasses import dataclass

from checks.types import CheckSpec, PingSpec
from ldirector.config.model import CheckType, Real, Virtual

#: Slack on top of count x attempt_timeout, so that the last ping attempt can finish by itself.
PING_SLACK = 0.5


@dataclass(frozen=True, slots=True)
class Probe:
    """One check to run: a label for people, the spec, and the caller-owned timeout."""

    label: str
    spec: CheckSpec
    timeout: float


def first_probe(virtual: Virtual, real: Real) -> Probe | None:
    """The first check ldirectord would run for ``real``; None for checktype on and off."""
    match virtual.checktype:
        case CheckType.ON | CheckType.OFF:
            return None
        case CheckType.NEGOTIATE | CheckType.COMBINED:
            return Probe(f"negotiate {virtual.service}", real.negotiate, virtual.negotiatetimeout)
        case CheckType.CONNECT:
            return _timed("connect", real.connect, virtual.checktimeout)
        case CheckType.PING | CheckType.EXTERNAL | CheckType.EXTERNAL_PERL:
            if real.check is None:  # pragma: no cover - the config layer always sets it
                return None
            return _timed(str(virtual.checktype), real.check, virtual.checktimeout)


def _timed(label: str, spec: CheckSpec, checktimeout: float) -> Probe:
    if isinstance(spec, PingSpec):
        # Each attempt waits checktimeout; the whole check may take all of them.
        label = "ping" if label == "ping" else f"{label} (ping: udp)"
        return Probe(label, spec, spec.count * spec.attempt_timeout + PING_SLACK)
    return Probe(label, spec, checktimeout)
