"""Which checks a configuration needs: one job per distinct (target, check, timing), and who
reads each one (pure, no I/O).

Sits between the config model and the scheduler. ``job_for`` applies ldirectord's checktype
rules: negotiate first for the combined form N, ping for connect on UDP services (already chosen
by the config layer in ``Real.connect``), nothing for on/off. Jobs compare whole, so reals of
different virtuals share one only when everything about the check is identical, credentials
included (ldirectord shares results across different logins).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import assert_never

from checks.types import CheckSpec, ExternalSpec, PingSpec, Target
from ldirector.config.model import CheckType, Config, Real, Virtual
from ldirector.core.desired import RealKey, policy, real_key
from ldirector.core.health import CheckKind, RealHealth

#: Slack on top of count x attempt_timeout, so that the last ping attempt can finish by itself.
PING_SLACK = 0.5


@dataclass(frozen=True, slots=True, kw_only=True)
class Job:
    """One distinct check run on a cadence: what to run against which target, how often, and
    within what time (negotiatetimeout for negotiate checks, checktimeout for the others)."""

    target: Target
    spec: CheckSpec
    timeout: float
    interval: float
    #: checktype=N: the connect check run between negotiates, and its timeout (checktimeout).
    combined: int | None = None
    connect_spec: CheckSpec | None = None
    connect_timeout: float = 0.0
    #: What ``check --probe`` calls this check (``negotiate http``, ``connect``, ``ping``).
    label: str = field(default="", compare=False)
    #: Jobs key the engine's maps, looked up several times per check result; hashing a target's
    #: address and a spec field by field each time was most of a result's bookkeeping.
    _hash: int = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        fields = (self.target, self.spec, self.timeout, self.interval, self.combined)
        object.__setattr__(self, "_hash", hash((*fields, self.connect_spec, self.connect_timeout)))

    def __hash__(self) -> int:
        return self._hash

    def spec_for(self, kind: CheckKind) -> tuple[CheckSpec, float]:
        """The spec and timeout for a check of ``kind``."""
        if kind is CheckKind.CONNECT and self.connect_spec is not None:
            return self.connect_spec, self.connect_timeout
        return self.spec, self.timeout


def job_for(virtual: Virtual, real: Real) -> Job | None:
    """The job a real of ``virtual`` needs; None for checktype on and off."""
    match virtual.checktype:
        case CheckType.ON | CheckType.OFF:
            return None
        case CheckType.NEGOTIATE | CheckType.COMBINED:
            label, spec, timeout = (
                f"negotiate {virtual.service}",
                real.negotiate,
                virtual.negotiatetimeout,
            )
        case CheckType.CONNECT:
            label, spec = "connect", real.connect
            timeout = _timeout(spec, virtual.checktimeout)
        case CheckType.PING | CheckType.EXTERNAL | CheckType.EXTERNAL_PERL:
            if real.check is None:  # pragma: no cover - the config layer always sets it
                return None
            label, spec = str(virtual.checktype), real.check
            timeout = _timeout(spec, virtual.checktimeout)
        case _:
            assert_never(virtual.checktype)
    if isinstance(spec, PingSpec) and label != "ping":
        label = f"{label} (ping: udp)"
    target = _shared_target(real.target, spec)
    if virtual.checktype is CheckType.COMBINED:
        return Job(
            target=target,
            spec=spec,
            timeout=timeout,
            interval=virtual.checkinterval,
            combined=virtual.combined_connects,
            connect_spec=real.connect,
            connect_timeout=_timeout(real.connect, virtual.checktimeout),
            label=label,
        )
    return Job(
        target=target, spec=spec, timeout=timeout, interval=virtual.checkinterval, label=label
    )


def _timeout(spec: CheckSpec, checktimeout: float) -> float:
    # Each ping attempt waits checktimeout; the whole check may take all of them.
    if isinstance(spec, PingSpec):
        return spec.count * spec.attempt_timeout + PING_SLACK
    return checktimeout


def _shared_target(target: Target, spec: CheckSpec) -> Target:
    # The virtual's address and ports ride on the target only for external checks (their
    # argv); every other check probes the real alone, so the same real behind several
    # virtuals is checked once.
    if isinstance(spec, ExternalSpec):
        return target
    return replace(target, virtual="", virtual_port=0, real_port=0)


def plan(config: Config) -> tuple[dict[RealKey, Job], dict[Job, tuple[RealKey, ...]]]:
    """Each checked real's job, and each job's readers (in config order)."""
    job_of: dict[RealKey, Job] = {}
    readers: defaultdict[Job, list[RealKey]] = defaultdict(list)
    for virtual in config.virtuals:
        for real in virtual.reals:
            job = job_for(virtual, real)
            key = real_key(virtual, real)
            if job is None or key in job_of:
                continue
            job_of[key] = job
            readers[job].append(key)
    return job_of, {j: tuple(keys) for j, keys in readers.items()}


def reals_by_key(config: Config) -> Mapping[RealKey, tuple[Virtual, Real]]:
    """Every real of the config by its kernel key (the first one wins, as in ``desired``)."""
    out: dict[RealKey, tuple[Virtual, Real]] = {}
    for virtual in config.virtuals:
        for real in virtual.reals:
            out.setdefault(real_key(virtual, real), (virtual, real))
    return out


def kept_health(
    health: Mapping[RealKey, RealHealth],
    old: Mapping[RealKey, Job],
    old_reals: Mapping[RealKey, tuple[Virtual, Real]],
    new: Mapping[RealKey, Job],
    new_reals: Mapping[RealKey, tuple[Virtual, Real]],
) -> dict[RealKey, RealHealth]:
    """The health a reload keeps: reals still configured, checked the same way, under the same
    checktype mode (on, off or checked). The others start again as at start."""
    return {
        key: state
        for key, state in health.items()
        if key in new_reals
        and old.get(key) == new.get(key)
        and policy(old_reals[key][0]).mode is policy(new_reals[key][0]).mode
    }
