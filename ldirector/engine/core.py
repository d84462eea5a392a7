"""The engine: scheduler -> health -> desired -> reconcile.diff -> backend, kept running.

The one writer of the IPVS table. Observations from the scheduler update health; after every
transition, and every ``resync_interval`` seconds whatever happened, the kernel table is dumped,
compared with the desired one and corrected, so a manual ``ipvsadm`` edit to an owned service
lasts at most one interval. Reload swaps configs without re-checking unchanged probes; stop
honours ``cleanstop``.
"""

from __future__ import annotations

import asyncio
import logging
import math
import random
import time
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence

import checks
from ldirector.clock import Clock, MonotonicClock
from ldirector.config.errors import ConfigError, Diagnostic
from ldirector.config.model import Config
from ldirector.desired import RealKey, policy, service_key
from ldirector.engine.fallbackcmd import FallbackCommands
from ldirector.engine.heap import Collector
from ldirector.engine.layout import Layout
from ldirector.engine.maintenance import Maintenance, Resolver, reverse_lookup
from ldirector.engine.notices import Notice, worded
from ldirector.engine.oplog import announce
from ldirector.engine.probes import kept_health, plan, reals_by_key
from ldirector.engine.serving import Serving
from ldirector.engine.writer import SysctlWriter, TableWriter
from ldirector.health import (
    EventKind,
    RealHealth,
    Status,
    initial,
    step,
)
from ldirector.ipvs.backend import IpvsBackend, IpvsError
from ldirector.ipvs.types import IpvsTable, Op, ServiceKey
from ldirector.manual import ManualOverrides
from ldirector.monitorfile import Monitors
from ldirector.owned import OwnedStore
from ldirector.reconcile import diff
from ldirector.scheduler import DEFAULT_CONCURRENCY, CheckRunner, Observation, Probe, Scheduler
from ldirector.status import CheckStats, Counters, Snapshot
from ldirector.status import build as build_status

log = logging.getLogger(__name__)

#: Seconds between two full comparisons of the kernel table with the desired one, when the
#: config does not say (its ``resyncinterval`` has the same default).
DEFAULT_RESYNC_INTERVAL = 10.0
#: Least time between two reconciles caused by transitions. A lone failure is applied at once;
#: a storm of them (a cold start of 10,000 reals, a rack going dark) is applied in batches, as a
#: reconcile walks every real of the services it touches.
RECONCILE_SPACING = 0.2


class Engine:
    """Keeps one IPVS table equal to "configured reals minus unhealthy ones".

    ``run()`` is the daemon body: it starts, serves until ``stop()``, then cleans up.
    Tests drive ``start()``/``shutdown()`` directly with a FakeClock and a FakeBackend.
    """

    def __init__(
        self,
        config: Config,
        backend: IpvsBackend,
        *,
        clock: Clock | None = None,
        run: CheckRunner = checks.run,
        owned: OwnedStore | None = None,
        resync_interval: float | None = None,
        sysctls: SysctlWriter | None = None,
        fallback_commands: FallbackCommands | None = None,
        resolver: Resolver = reverse_lookup,
        concurrency: int = DEFAULT_CONCURRENCY,
        rng: random.Random | None = None,
        on_event: Callable[[Notice], None] | None = None,
        on_ready: Callable[[], None] | None = None,
        on_observation: Callable[[Observation], None] | None = None,
        manual: ManualOverrides | None = None,
        on_settled: Callable[[], None] | None = None,
        reconcile_spacing: float = RECONCILE_SPACING,
    ) -> None:
        self.config = config
        self._clock = clock or MonotonicClock()
        #: None: follow the config's ``resyncinterval`` (across reloads too).
        self._resync_override = resync_interval
        self._resolver = resolver
        self._maintenance = self._maintenance_for(config)
        self._on_event = on_event
        self._on_ready = on_ready
        #: Sees every check result (metrics, benchmarks); must be cheap and must not raise.
        self._on_observation = on_observation
        self._monitors = Monitors()
        #: Called once every probe started by a start or reload has reported and the table
        #: was reconciled: the notices until then are one start-up (or reload) to settle.
        self._on_settled = on_settled
        self._unsettled: set[Probe] = set()
        self._settle_due = False
        self._queue: asyncio.Queue[Observation] = asyncio.Queue()
        self._collector = Collector()
        self._scheduler = Scheduler(
            self._queue, clock=self._clock, run=run, concurrency=concurrency, rng=rng
        )
        self.health: dict[RealKey, RealHealth] = {}
        self._probe_of: dict[RealKey, Probe] = {}
        self._readers: dict[Probe, tuple[RealKey, ...]] = {}
        self._reals = reals_by_key(config)
        self._layout = Layout(config, self._reals)
        #: Per virtual: is any real up? Drives the fallback events and fallbackcommand.
        self._serving = Serving(fallback_commands or FallbackCommands(), self._notify)
        self._reload_lock = asyncio.Lock()
        self._stop_requested = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        #: Operator holds (disable/drain, ``ldirector.manual``), saved across restarts.
        self.manual = manual or ManualOverrides()
        #: What the status snapshot reads: totals, check results by probe, health changes.
        self.counters = Counters()
        self._writer = TableWriter(backend, owned or OwnedStore(None), self.counters, sysctls)
        self.checks = CheckStats()
        self.changed: dict[RealKey, float] = {}
        #: Services whose reals' status moved since the last reconcile.
        self._dirty: set[ServiceKey] = set()
        self._spacing = reconcile_spacing
        self._reconciled_at = -math.inf
        self.started = time.time()

    # --- lifecycle ---------------------------------------------------------------------------

    async def run(self) -> None:
        """Start, serve until :meth:`stop` is called, then shut down."""
        await self.start()
        try:
            await self._stop_requested.wait()
        finally:
            await self.shutdown()

    @property
    def owned(self) -> frozenset[ServiceKey]:
        """The services ldirector manages (``ldirector.engine.writer``)."""
        return self._writer.owned

    @property
    def resync_interval(self) -> float:
        """Seconds between two full resyncs: the override given, else the config's."""
        return self._resync_override or self.config.resyncinterval

    def stop(self) -> None:
        """Ask :meth:`run` to shut down."""
        self._stop_requested.set()

    async def start(self) -> None:
        """Adopt the kernel table, create what is missing, and start checking.

        Reals the kernel already serves stay up until a check says otherwise; missing ones
        are added as their first checks pass. Virtual services and fallbacks are created at
        once. Raises IpvsError when the table cannot be read.
        """
        actual = await self._writer.backend.dump()
        self._writer.load_owned()
        fresh = self._install(self.config, actual, keep={})
        await self._writer.write_sysctls(self.config)
        await self._reconcile(actual)
        self._update_serving()
        self._scheduler.set_probes(self._readers, immediate=fresh)
        self._begin_settling(fresh)
        self._tasks = [
            asyncio.create_task(self._consume(), name="engine observations"),
            asyncio.create_task(self._resync(), name="engine resync"),
        ]
        self._collector.settle()
        if self._on_ready:
            self._on_ready()

    async def shutdown(self) -> None:
        """Stop checking; with cleanstop=yes remove the virtual's services from the kernel."""
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks = []
        await self._scheduler.stop()
        clean = {service_key(v): v for v in self.config.virtuals if v.cleanstop}
        async with self._writer.lock:
            try:
                actual = await self._writer.backend.dump()
                ops = diff(IpvsTable(), actual, clean.keys() & self.owned)
                await self._apply(ops, "stop", actual)
                self._writer.release(clean, (await self._writer.backend.dump()).services.keys())
            except IpvsError as exc:
                log.error("cleanstop: %s", exc)
            except OSError as exc:
                log.error("cannot record owned services: %s", exc)
        for key, virtual in clean.items():
            if self._serving.falling_back(key):  # its fallbackcommand "start" is in effect (U6)
                self._serving.commands.run(virtual, "stop")
        await self._serving.commands.wait()
        if self._maintenance:
            await self._maintenance.close()
        self._collector.restore()

    async def reload_from(self, load: Callable[[], Config]) -> tuple[Diagnostic, ...]:
        """Parse a new config with ``load`` and switch to it; return its diagnostics.

        On any error the running config stays exactly as it was, and health results keep
        being applied (ldirectord half-applies a broken reload and then drops them: B1).
        """
        try:
            config = load()
        except ConfigError as exc:
            for diagnostic in exc.diagnostics:
                log.error("%s", diagnostic)
            log.error("reload failed: still running the previous configuration")
            self.reload_rejected()
            return exc.diagnostics
        await self.reload(config)
        return config.warnings

    def reload_rejected(self) -> None:
        """Record a reload whose config did not load (``/metrics`` shows the failure)."""
        self.counters.last_reload, self.counters.last_reload_ok = time.time(), False

    async def reload(self, config: Config) -> None:
        """Switch to ``config``, already parsed and valid.

        Reals whose probe did not change keep their health (no re-check, no flap); new or
        changed ones are seeded from the kernel like at start. Virtuals gone from the config
        are deleted from the kernel, new ones created.
        """
        async with self._reload_lock:
            await self._switch(config)
            self.counters.last_reload = time.time()
            self.counters.last_reload_ok = self.config is config

    async def _switch(self, config: Config) -> None:
        async with self._writer.lock:
            try:
                actual = await self._writer.backend.dump()
            except IpvsError as exc:
                # New reals are seeded from the kernel; without it they could not be told
                # from serving ones, so the switch waits for a reload that can read it.
                log.error("reload: %s; still running the previous configuration", exc)
                return
        probe_of, _ = plan(config)
        reals = reals_by_key(config)
        same = kept_health(self.health, self._probe_of, self._reals, probe_of, reals)
        if config.maintenancedir != self.config.maintenancedir:
            if self._maintenance:
                await self._maintenance.close()
            self._maintenance = self._maintenance_for(config)
        self.config = config
        self._reals = reals
        fresh = self._install(config, actual, keep=same)
        await self._writer.write_sysctls(config)
        await self._reconcile()
        self._serving.keep(self._service_keys())
        self._update_serving()
        self._scheduler.set_probes(self._readers, immediate=fresh)
        self._begin_settling(fresh)
        self._collector.settle()

    # --- observability and manual control (ldirector.control) ------------------------------

    async def refresh(self) -> None:
        """Reconcile now, as after an operator's disable/drain/enable, not at the next resync."""
        await self._reconcile()
        self._update_serving()

    async def snapshot(self, name: str = "") -> Snapshot:
        """The status snapshot: health, the kernel table read now, the desired one, counters.

        Raises IpvsError when the kernel table cannot be read.
        """
        async with self._writer.lock:
            actual = await self._writer.backend.dump()
        return build_status(
            self.config,
            self.health,
            actual=actual,
            desired=self._layout.desired(self.health, actual, self.manual.holds()),
            started=self.started,
            changed=self.changed,
            overrides=self.manual.current,
            probe_of=self._probe_of,
            checks=self.checks,
            counters=self.counters,
            config_name=name or self.config.path,
        )

    # --- state -------------------------------------------------------------------------------

    def _maintenance_for(self, config: Config) -> Maintenance | None:
        if not config.maintenancedir:
            return None
        return Maintenance(config.maintenancedir, self._clock, resolver=self._resolver)

    def _service_keys(self) -> set[ServiceKey]:
        return {v.key for v in self._layout.virtuals}

    def _install(
        self, config: Config, actual: IpvsTable, *, keep: Mapping[RealKey, RealHealth]
    ) -> set[Probe]:
        """Build probes and health for ``config``; return the probes to run at once."""
        self._probe_of, self._readers = plan(config)
        self._layout = Layout(config, self._reals)
        health: dict[RealKey, RealHealth] = {}
        for key, (virtual, _) in self._reals.items():
            if key in keep:
                health[key] = keep[key]
                continue
            vs = actual.services.get(key.service)
            dest = vs.dests.get(key.dest) if vs else None
            health[key] = initial(policy(virtual), dest.weight if dest else None)
        self.health = health
        return {
            probe
            for probe, readers in self._readers.items()
            if any(health[k].status is Status.UNKNOWN for k in readers)
        }

    def _observe(self, obs: Observation) -> bool:
        """Apply one observation to every real that reads its probe; True if a status moved."""
        if self._on_observation:
            self._on_observation(obs)
        if self._unsettled:
            self._unsettled.discard(obs.probe)
        self.checks.record(obs.probe, obs.result.ok, obs.result.elapsed)
        moved = False
        for key in self._readers.get(obs.probe, ()):  # a probe dropped by reload reads nothing
            virtual, real = self._reals[key]
            ok, reason, forced = obs.result.ok, obs.result.reason, False
            if self._maintenance and self._maintenance.match(real.address, real.port):
                ok, reason, forced = False, "Server in maintenance", True
            # Only checktype=N alternates kinds; otherwise the virtual's checktype names the check.
            check = obs.kind if obs.probe.combined is not None else virtual.checktype
            log.debug("%s %s %s: %s", check, key, "up" if ok else "down", reason)
            if virtual.monitorfile:
                self._monitors.write(virtual, real, ok, reason)
            before = self.health[key]
            after, events = step(before, ok, reason, policy(virtual), forced=forced)
            self.health[key] = after
            if before.status is not after.status:
                self.changed[key] = time.time()
                self._dirty.add(key.service)
            for event in events:
                self._notify(Notice(virtual, event, key))
                if event.kind in (EventKind.QUIESCED, EventKind.DELETED, EventKind.SOFT_FAILURE):
                    log.info("check of %s failed: %s", key, reason)
            moved |= before.status is not after.status
        return moved

    def _update_serving(self, only: Collection[ServiceKey] | None = None) -> None:
        self._serving.update(self._layout, self.health, self.manual.holds(), only)

    def _begin_settling(self, fresh: set[Probe]) -> None:
        # Probes a reload dropped will never report; new ones join those still pending.
        self._unsettled = (self._unsettled & self._readers.keys()) | fresh
        self._settle_due = True
        self._settled()

    def _settled(self) -> None:
        if self._settle_due and not self._unsettled:
            self._settle_due = False
            if self._on_settled:
                self._on_settled()

    def _notify(self, notice: Notice) -> None:
        notice = worded(notice, self._reals)
        if notice.message:
            log.info("%s", notice.message)
        if self._on_event:
            try:
                self._on_event(notice)
            except Exception:  # an alerting bug must not stop health from being applied
                log.exception("engine: event handler failed for %s", notice.kind)

    # --- the kernel --------------------------------------------------------------------------

    async def _consume(self) -> None:
        while True:
            first = await self._queue.get()
            try:
                moved = self._observe(first)
                while not self._queue.empty():  # one reconcile for a burst of results
                    moved |= self._observe(self._queue.get_nowait())
                if moved:
                    pause = self._reconciled_at + self._spacing - self._clock.now()
                    if pause > 0:  # a storm of transitions: one reconcile for a batch of them
                        await self._clock.sleep(pause)
                        while not self._queue.empty():
                            self._observe(self._queue.get_nowait())
                    # Only the services whose reals moved: the resync still compares every
                    # service, every resync_interval.
                    dirty, self._dirty = self._dirty, set()
                    await self._reconcile(only=dirty)
                    self._reconciled_at = self._clock.now()
                    self._update_serving(only=dirty)
                self._settled()
            except Exception:  # a bug here must not stop the only writer of the table
                log.exception("engine: internal error while applying check results")

    async def _resync(self) -> None:
        while True:
            await self._clock.sleep(self.resync_interval)
            try:
                await self._reconcile(resync=True)
            except Exception:
                log.exception("engine: internal error during resync")

    async def _reconcile(
        self,
        actual: IpvsTable | None = None,
        *,
        resync: bool = False,
        only: Collection[ServiceKey] | None = None,
    ) -> None:
        """Dump, diff against the desired table, apply. Errors are logged, never raised.

        ``only`` limits the comparison to these services (those whose reals' health moved).
        """
        async with self._writer.lock:
            try:
                if actual is None:
                    actual = await self._writer.backend.dump()
                self._writer.claim(self._service_keys(), actual)
                settled = self.manual.settle(actual)  # drains that are over become disables
                holds = self.manual.holds()
                desired = self._layout.desired(self.health, actual, holds, only=only)
                # Only services that differ go through diff: at 10,000 reals a full diff
                # costs the event loop tens of milliseconds at every resync.
                scope = self.owned if only is None else self.owned & set(only)
                changed = {k for k in scope if desired.services.get(k) != actual.services.get(k)}
                ops = diff(desired.only(changed), actual, changed)
                self.counters.reconciles += 1
                if resync and ops and not settled:
                    self.counters.drift_repairs += 1
                await self._apply(ops, "start")
            except IpvsError as exc:
                log.error("cannot reconcile the IPVS table: %s", exc)
            except OSError as exc:
                log.error("cannot record owned services: %s", exc)

    async def _apply(self, ops: Iterable[Op], phase: str, actual: IpvsTable | None = None) -> None:
        """Log each op in ldirectord's wording (``oplog``), then apply them. ``actual`` (at
        cleanstop) names the reals each deleted service held, so those thought up are logged as
        purged first."""

        def tell(batch: Sequence[Op]) -> None:
            announce(
                batch,
                phase,
                config=self.config,
                reals=self._reals,
                health=self.health,
                virtual_of=self._layout.virtual_of,
                notify=self._notify,
                actual=actual,
            )

        await self._writer.apply(list(ops), tell)
