"""The status snapshot: what the daemon believes, what the kernel holds, and whether they agree.

Pure: no clock, no state of its own. The engine gathers its inputs (config, health, the kernel
table it just dumped, the desired table, holds, counters, the time) and :func:`build` turns
them into one frozen :class:`Snapshot`, which every surface reads: ``status -v``,
``status --json`` and ``/status`` (rendered by ``ldirector.observe.render``), ``/metrics`` and
the status page. The counters the engine keeps for it (:class:`Counters`,
:class:`CheckStats`) live here too, so the engine imports no exporter.
"""

from __future__ import annotations

import bisect
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from types import MappingProxyType

from ldirector.config.model import Config
from ldirector.core.desired import RealKey, fallback_dest
from ldirector.core.divergence import Report
from ldirector.core.health import RealHealth
from ldirector.core.holds import Hold, HoldEntry
from ldirector.core.layout import Layout
from ldirector.core.plan import reals_by_key
from ldirector.ipvs.types import Dest, DestKey, IpvsTable
from ldirector.observe.syncd import SyncStatus

SCHEMA_VERSION = 1

#: Check duration histogram bounds, seconds: from a loopback connect to a slow negotiate.
BUCKETS: tuple[float, ...] = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


# --- counters the daemon keeps ---------------------------------------------------------------


@dataclass(slots=True)
class Counters:
    """Per-daemon totals since start (Prometheus counters, and the last reload)."""

    reconciles: int = 0
    ops: int = 0
    op_errors: int = 0
    #: Resyncs that found the kernel different from the desired table and corrected it.
    drift_repairs: int = 0
    last_reload: float | None = None
    last_reload_ok: bool | None = None
    stalls: int = 0
    stall_max: float = 0.0
    #: Checks due but waiting for the event loop to catch up (a gauge: falling behind).
    checks_waiting: int = 0
    #: Checks that timed out while the loop itself was behind, and were not judged.
    checks_unjudged: int = 0


@dataclass(slots=True)
class CheckCounts:
    """Check results of one job: count, failures and a cumulative-ready duration histogram."""

    count: int = 0
    failures: int = 0
    total_seconds: float = 0.0
    #: One slot per bound in BUCKETS plus one for +Inf; not cumulative.
    buckets: list[int] = field(default_factory=lambda: [0] * (len(BUCKETS) + 1))

    def add(self, ok: bool, elapsed: float) -> None:
        self.count += 1
        self.failures += not ok
        self.total_seconds += elapsed
        self.buckets[bisect.bisect_left(BUCKETS, elapsed)] += 1

    def cumulative(self) -> list[tuple[str, int]]:
        """``(le, count)`` pairs as Prometheus wants them, ending with ``+Inf``."""
        pairs, running = [], 0
        for bound, n in zip((*map(str, BUCKETS), "+Inf"), self.buckets, strict=True):
            running += n
            pairs.append((bound, running))
        return pairs


class CheckStats:
    """Check results by job (any hashable key): reals sharing a job share its counts."""

    def __init__(self) -> None:
        self.by_job: dict[object, CheckCounts] = {}

    def record(self, job: object, ok: bool, elapsed: float) -> None:
        counts = self.by_job.get(job)
        if counts is None:
            counts = self.by_job[job] = CheckCounts()
        counts.add(ok, elapsed)


# --- the snapshot ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class RealStatus:
    """One real of one virtual as the operator wants to see it."""

    real: str
    health: str
    reason: str
    #: Wall-clock time of the last change of health (the daemon's start if none since).
    since: float
    manual: str | None = None
    drain_deadline: float | None = None
    #: Weight the kernel holds, None when the kernel does not hold the real.
    kernel_weight: int | None = None
    desired_weight: int | None = None
    #: The weight the config gives; a serving real below it ramps up (slow start) or asked
    #: for less (dynamic weights).
    configured_weight: int = 0
    active: int = 0
    inactive: int = 0
    connections: int = 0
    in_bytes: int = 0
    out_bytes: int = 0
    in_packets: int = 0
    out_packets: int = 0
    checks: CheckCounts | None = None

    @property
    def matches(self) -> bool:
        return self.kernel_weight == self.desired_weight


@dataclass(frozen=True, slots=True, kw_only=True)
class VirtualStatus:
    service: str
    scheduler: str
    in_kernel: bool
    matches: bool
    reals: tuple[RealStatus, ...]
    #: The fallback server when the kernel or the desired table holds it.
    fallback: str | None = None
    #: The kernel holds the configured fallback server (no real is serving).
    fallback_active: bool = False
    connections: int = 0
    in_bytes: int = 0
    out_bytes: int = 0


@dataclass(frozen=True, slots=True, kw_only=True)
class Snapshot:
    generated: float
    started: float
    config: str
    virtuals: tuple[VirtualStatus, ...]
    counters: Counters
    #: A shadow instance's comparison of the kernel table (another manager's) with its own.
    shadow: Report | None = None
    #: Why the kernel table could not be read (a shadow on a host without IPVS), or None.
    no_kernel: str | None = None
    #: The connection-sync daemons, when the config names some or ldirector started some.
    sync: SyncStatus | None = None

    @property
    def matches(self) -> bool:
        return all(v.matches for v in self.virtuals)


def build(
    config: Config,
    health: Mapping[RealKey, RealHealth],
    *,
    actual: IpvsTable,
    desired: IpvsTable,
    started: float,
    now: float,
    layout: Layout | None = None,
    changed: Mapping[RealKey, float] | None = None,
    overrides: Mapping[RealKey, HoldEntry] | None = None,
    job_of: Mapping[RealKey, object] | None = None,
    checks: CheckStats | None = None,
    counters: Counters | None = None,
    config_name: str = "",
) -> Snapshot:
    """The snapshot of a daemon's state at wall-clock time ``now``. Reals are listed once per
    virtual, in config order.

    ``layout``: the config's keys, which cost more than the rest of a snapshot to compute; the
    engine keeps them from one reload to the next and passes them in.
    """
    changed = changed or {}
    overrides = overrides or {}
    job_of = job_of or {}
    by_job = checks.by_job if checks else {}
    unknown = RealHealth()
    virtuals: list[VirtualStatus] = []
    seen: set[object] = set()
    for laid in (layout or Layout(config, reals_by_key(config))).virtuals:
        virtual, skey, every = laid.virtual, laid.key, laid.every
        if skey in seen:
            continue
        seen.add(skey)
        have = actual.services.get(skey)
        want = desired.services.get(skey)
        have_dests = have.dests if have else _EMPTY
        want_dests = want.dests if want else _EMPTY
        reals: list[RealStatus] = []
        same = (have is None) == (want is None) and (
            have is None or want is None or have.service == want.service
        )
        in_have = in_want = 0
        config_weight: dict[RealKey, int] = {}
        for key, real in zip(every, virtual.reals, strict=True):
            config_weight.setdefault(key, real.weight)
        for key in dict.fromkeys(every):
            kdest = have_dests.get(key.dest)
            ddest = want_dests.get(key.dest)
            in_have += kdest is not None
            in_want += ddest is not None
            same = same and kdest == ddest
            job = job_of.get(key)
            reals.append(
                _real(
                    str(key.dest),
                    health.get(key, unknown),
                    kdest,
                    ddest,
                    changed.get(key, started),
                    overrides.get(key),
                    by_job.get(job) if job is not None else None,
                    config_weight[key],
                )
            )
        extra: list[str] = []
        if in_have < len(have_dests) or in_want < len(want_dests):  # the fallback, strays
            configured = {k.dest for k in every}
            others = ({*have_dests} | {*want_dests}) - configured
            same = same and all(have_dests.get(d) == want_dests.get(d) for d in others)
            extra = [str(d) for d in sorted(others, key=lambda d: d.sort_key)]
        stats = have.service.stats if have else None
        fb = virtual.fallback
        # A fallback that is also a configured real serves as that real, not as the fallback.
        fb_key = fallback_dest(virtual, fb).key if fb is not None else None
        fb_active = (
            fb_key is not None and fb_key in have_dests and all(k.dest != fb_key for k in every)
        )
        virtuals.append(
            VirtualStatus(
                service=str(skey),
                scheduler=virtual.scheduler,
                in_kernel=have is not None,
                matches=same,
                reals=tuple(reals),
                fallback=", ".join(extra) or None,
                fallback_active=fb_active,
                connections=stats.conns if stats else 0,
                in_bytes=stats.in_bytes if stats else 0,
                out_bytes=stats.out_bytes if stats else 0,
            )
        )
    return Snapshot(
        generated=now,
        started=started,
        config=config_name,
        virtuals=tuple(virtuals),
        counters=replace(counters) if counters else Counters(),
    )


_EMPTY: Mapping[DestKey, Dest] = MappingProxyType({})


def _real(
    name: str,
    h: RealHealth,
    kdest: Dest | None,
    ddest: Dest | None,
    since: float,
    over: HoldEntry | None,
    counts: CheckCounts | None,
    configured: int,
) -> RealStatus:
    c = kdest.counters if kdest else None
    return RealStatus(
        real=name,
        health=h.status.value,
        reason=h.reason,
        since=since,
        manual=over.hold.value if over else None,
        drain_deadline=over.deadline if over and over.hold is Hold.DRAINING else None,
        kernel_weight=kdest.weight if kdest else None,
        desired_weight=ddest.weight if ddest else None,
        configured_weight=configured,
        active=c.active_conns if c else 0,
        inactive=c.inactive_conns if c else 0,
        connections=c.stats.conns if c else 0,
        in_bytes=c.stats.in_bytes if c else 0,
        out_bytes=c.stats.out_bytes if c else 0,
        in_packets=c.stats.in_packets if c else 0,
        out_packets=c.stats.out_packets if c else 0,
        # A copy: the engine goes on counting while an exporter renders this in a thread.
        checks=CheckCounts(
            counts.count, counts.failures, counts.total_seconds, list(counts.buckets)
        )
        if counts
        else None,
    )
