"""What the checks have said: each real's health and when it last moved, the check statistics,
the monitorfile lines, maintenancedir, and whether the first checks of a start or reload are in.

Sits between the scheduler's observations and the engine's reconcile: the engine hands each
observation to :meth:`Observed.observe`, then reconciles the services it marked dirty. Only the
facts health alone knows (soft failures) are told from here; what the kernel was told is told
by ``ldirector.engine.oplog``.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping

from ldirector.config.model import Config, Real, Virtual
from ldirector.core import wording
from ldirector.core.desired import RealKey, policy
from ldirector.core.events import Detail, Notice, about_real
from ldirector.core.health import RealHealth, Status, initial, step
from ldirector.core.layout import Layout
from ldirector.core.plan import Job, kept_health, plan, reals_by_key
from ldirector.engine.agents import Agents
from ldirector.engine.clock import Clock
from ldirector.engine.maintenance import Maintenance, Resolver
from ldirector.engine.monitorfile import Monitors
from ldirector.engine.scheduler import Observation
from ldirector.engine.weighting import Weighting
from ldirector.ipvs.types import IpvsTable, ServiceKey
from ldirector.observe.snapshot import CheckStats

# The engine's logger: every line about the reals comes from one name, so one filter sees them.
log = logging.getLogger(__name__)


class Observed:
    """The health of every configured real, kept from check results (and across reloads)."""

    def __init__(
        self,
        config: Config,
        clock: Clock,
        *,
        resolver: Resolver,
        notify: Callable[[Notice], None],
        on_observation: Callable[[Observation], None] | None = None,
        on_settled: Callable[[], None] | None = None,
    ) -> None:
        self._clock = clock
        self._resolver = resolver
        self._notify = notify
        #: Sees every check result (metrics, benchmarks); must be cheap and must not raise.
        self._on_observation = on_observation
        #: Called once every job started by a start or reload has reported and the table
        #: was reconciled: the notices until then are one start-up (or reload) to settle.
        self._on_settled = on_settled
        self._unsettled: set[Job] = set()
        self._settle_due = False
        self._monitors = Monitors()
        self.maintenance = self._maintenance_for(config)
        self.health: dict[RealKey, RealHealth] = {}
        self.job_of: dict[RealKey, Job] = {}
        self.readers: dict[Job, tuple[RealKey, ...]] = {}
        self.reals: Mapping[RealKey, tuple[Virtual, Real]] = reals_by_key(config)
        self.layout = Layout(config, self.reals)
        self.checks = CheckStats()
        #: Wall-clock time each real's status last moved (the status page's "since").
        self.changed: dict[RealKey, float] = {}
        #: Services whose reals' status moved since the last reconcile.
        self._dirty: set[ServiceKey] = set()
        #: Slow start and dynamic weights, kept across reloads like health.
        self.weighting = Weighting()
        #: Load agents (``agentport``): their jobs, and the holds they asked for.
        self.agents = Agents()

    def install(
        self, config: Config, actual: IpvsTable, *, keep: Mapping[RealKey, RealHealth]
    ) -> set[Job]:
        """Build jobs and health for ``config``; return the jobs to run at once.

        Reals in ``keep`` keep their health; the others are seeded from the kernel.
        """
        self.job_of, self.readers = plan(config)
        self.agents.install(self.reals)
        self.layout = Layout(config, self.reals)
        health: dict[RealKey, RealHealth] = {}
        for key, (virtual, _) in self.reals.items():
            if key in keep:
                health[key] = keep[key]
                continue
            vs = actual.services.get(key.service)
            dest = vs.dests.get(key.dest) if vs else None
            health[key] = initial(policy(virtual), dest.weight if dest else None)
        self.health = health
        return {
            job
            for job, readers in self.readers.items()
            if any(health[k].status is Status.UNKNOWN for k in readers)
        }

    async def switch(self, old: Config, config: Config, actual: IpvsTable) -> set[Job]:
        """Move to ``config`` (a reload): reals whose job did not change keep their health."""
        job_of, _ = plan(config)
        reals = reals_by_key(config)
        same = kept_health(self.health, self.job_of, self.reals, job_of, reals)
        if config.maintenancedir != old.maintenancedir:
            await self.close()
            self.maintenance = self._maintenance_for(config)
        self.reals = reals
        self.weighting.forget(reals)
        return self.install(config, actual, keep=same)

    async def close(self) -> None:
        """Stop watching maintenancedir."""
        if self.maintenance:
            await self.maintenance.close()

    def _maintenance_for(self, config: Config) -> Maintenance | None:
        if not config.maintenancedir:
            return None
        return Maintenance(config.maintenancedir, self._clock, resolver=self._resolver)

    def observe(self, obs: Observation) -> bool:
        """Apply one observation to every real that reads its job; True if a status moved."""
        if self._on_observation:
            self._on_observation(obs)
        if self._unsettled:
            self._unsettled.discard(obs.job)
        self.checks.record(obs.job, obs.result.ok, obs.result.elapsed)
        if obs.job in self.agents.jobs:
            return self._agent_said(obs)
        moved = False
        for key in self.readers.get(obs.job, ()):  # a job dropped by reload reads nothing
            virtual, real = self.reals[key]
            ok, reason, forced = obs.result.ok, obs.result.reason, False
            if self.maintenance and self.maintenance.match(real.address, real.port):
                ok, reason, forced = False, wording.IN_MAINTENANCE, True
            # Only checktype=N alternates kinds; otherwise the virtual's checktype names the check.
            check = obs.kind if obs.job.combined is not None else virtual.checktype
            log.debug("%s %s %s: %s", check, key, "up" if ok else "down", reason)
            if virtual.monitorfile:
                self._monitors.write(virtual, real, ok, reason)
            before = self.health[key]
            after, events = step(before, ok, reason, policy(virtual), forced=forced)
            self.health[key] = after
            if virtual.dynamicweight and ok:
                self.weighting.asked(key, virtual, real, obs.result.weight)
            if before.status is not after.status:
                if after.status is Status.UP:
                    self.weighting.came_up(key, virtual, real, self._clock.now())
                else:
                    self.weighting.went_down(key)
                self.changed[key] = time.time()
                self._dirty.add(key.service)
                moved = True
            for event in events:
                counted = Detail(failures=event.failures, failurecount=event.failurecount)
                self._notify(about_real(event.kind, virtual, key, real, counted))
            if not ok and before.status is Status.UP:  # a soft failure, or taken down
                log.info("check of %s failed: %s", key, reason)
        return moved

    @property
    def jobs(self) -> list[Job]:
        """Every job to schedule: the health checks', then the load agents'."""
        return [*self.readers, *self.agents.jobs]

    def _agent_said(self, obs: Observation) -> bool:
        """A load agent's answer: a weight, or a hold; True if a hold moved."""
        moved = False
        for key in self.agents.jobs[obs.job]:
            virtual, real = self.reals[key]
            log.debug("agent %s: %s", key, obs.result.reason)
            if self.agents.record(key, obs.result):
                self._dirty.add(key.service)
                moved = True
            if obs.result.ok:
                self.weighting.asked(key, virtual, real, obs.result.weight)
        return moved

    def step_weights(self) -> set[ServiceKey]:
        """Move ramps and asked-for weights on; the services whose weights changed."""
        if not self.weighting.states:
            return set()
        up = {k: self.health[k].status is Status.UP for k in self.weighting.states}
        return self.weighting.tick(self.reals, up, self._clock.now())

    def take_dirty(self) -> set[ServiceKey]:
        """The services whose reals moved since the last call."""
        dirty, self._dirty = self._dirty, set()
        return dirty

    def begin_settling(self, fresh: set[Job]) -> None:
        """A start or reload began: it settles once ``fresh`` jobs have all reported."""
        # Jobs a reload dropped will never report; new ones join those still pending.
        self._unsettled = (self._unsettled & self.readers.keys()) | fresh
        self._settle_due = True
        self.settled()

    def settled(self) -> None:
        """Call ``on_settled`` if a start or reload is due and its first checks are all in."""
        if self._settle_due and not self._unsettled:
            self._settle_due = False
            if self._on_settled:
                self._on_settled()
