"""Which probes a configuration needs: one per distinct (target, check, timing) and who reads it.

Sits between the config model and the scheduler. Probes compare whole, so reals of different
virtuals share one only when everything about the check is identical, credentials included.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping
from dataclasses import replace

from checks.types import CheckSpec, ExternalSpec, PingSpec, Target
from ldirector.config.model import CheckType, Config, Real, Virtual
from ldirector.desired import RealKey, policy, real_key
from ldirector.health import RealHealth
from ldirector.plan import PING_SLACK, first_probe
from ldirector.scheduler import Probe


def _connect_timeout(spec: CheckSpec, checktimeout: float) -> float:
    # The connect rounds of a combined checktype time out like checktype=connect (plan.py).
    if isinstance(spec, PingSpec):
        return spec.count * spec.attempt_timeout + PING_SLACK
    return checktimeout


def _shared_target(target: Target, spec: CheckSpec) -> Target:
    # The virtual's address and ports ride on the target only for external checks (their
    # argv); every other check probes the real alone, so the same real behind several
    # virtuals is probed once.
    if isinstance(spec, ExternalSpec):
        return target
    return replace(target, virtual="", virtual_port=0, real_port=0)


def probe_for(virtual: Virtual, real: Real) -> Probe | None:
    """The probe a real of ``virtual`` needs; None for checktype on and off.

    Spec and timeout come from ``plan.first_probe`` (negotiatetimeout for negotiate checks,
    checktimeout for connect, ping and external); a combined checktype adds its connect check.
    """
    first = first_probe(virtual, real)
    if first is None:
        return None
    target = _shared_target(real.target, first.spec)
    if virtual.checktype is CheckType.COMBINED:
        return Probe(
            target=target,
            spec=first.spec,
            timeout=first.timeout,
            interval=virtual.checkinterval,
            combined=virtual.combined_connects,
            connect_spec=real.connect,
            connect_timeout=_connect_timeout(real.connect, virtual.checktimeout),
        )
    return Probe(
        target=target, spec=first.spec, timeout=first.timeout, interval=virtual.checkinterval
    )


def plan(config: Config) -> tuple[dict[RealKey, Probe], dict[Probe, tuple[RealKey, ...]]]:
    """Each checked real's probe, and each probe's readers (in config order)."""
    probe_of: dict[RealKey, Probe] = {}
    readers: defaultdict[Probe, list[RealKey]] = defaultdict(list)
    for virtual in config.virtuals:
        for real in virtual.reals:
            probe = probe_for(virtual, real)
            key = real_key(virtual, real)
            if probe is None or key in probe_of:
                continue
            probe_of[key] = probe
            readers[probe].append(key)
    return probe_of, {p: tuple(keys) for p, keys in readers.items()}


def reals_by_key(config: Config) -> Mapping[RealKey, tuple[Virtual, Real]]:
    """Every real of the config by its kernel key (the first one wins, as in ``desired``)."""
    out: dict[RealKey, tuple[Virtual, Real]] = {}
    for virtual in config.virtuals:
        for real in virtual.reals:
            out.setdefault(real_key(virtual, real), (virtual, real))
    return out


def kept_health(
    health: Mapping[RealKey, RealHealth],
    old: Mapping[RealKey, Probe],
    old_reals: Mapping[RealKey, tuple[Virtual, Real]],
    new: Mapping[RealKey, Probe],
    new_reals: Mapping[RealKey, tuple[Virtual, Real]],
) -> dict[RealKey, RealHealth]:
    """The health a reload keeps: reals still configured, probed the same way, under the same
    checktype mode (on, off or checked). The others start again as at start."""
    return {
        key: state
        for key, state in health.items()
        if key in new_reals
        and old.get(key) == new.get(key)
        and policy(old_reals[key][0]).mode is policy(new_reals[key][0]).mode
    }
