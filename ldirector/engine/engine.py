"""The engine: scheduler -> health -> desired -> reconcile.diff -> backend, kept running.

The one writer of the IPVS table. Observations from the scheduler update health
(``ldirector.engine.observed``); after every transition, and every ``resync_interval`` seconds
whatever happened, the kernel table is dumped, compared with the desired one and corrected, so
a manual ``ipvsadm`` edit to an owned service lasts at most one interval. What the kernel took
is then told in ldirectord's wording (``ldirector.engine.oplog``). Reload swaps configs
without re-checking unchanged jobs; stop honours ``cleanstop``.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import math
import random
import time
from collections.abc import Callable, Collection, Iterable, Sequence

import checks
from ldirector.config.model import Config
from ldirector.core.desired import RealKey, service_key
from ldirector.core.events import LOG_FIELDS, Notice, Phase, fields
from ldirector.core.health import RealHealth
from ldirector.core.reconcile import diff
from ldirector.engine.clock import Clock, MonotonicClock
from ldirector.engine.fallbackcommands import FallbackCommands
from ldirector.engine.maintenance import Resolver, reverse_lookup
from ldirector.engine.observed import Observed
from ldirector.engine.oplog import Basis, announce
from ldirector.engine.scheduler import (
    DEFAULT_CONCURRENCY,
    CheckRunner,
    Observation,
    Scheduler,
)
from ldirector.engine.serving import Serving
from ldirector.engine.syncd import SyncKeeper
from ldirector.engine.weighting import TICK
from ldirector.engine.writer import SysctlWriter, TableWriter
from ldirector.ipvs.backend import IpvsBackend, IpvsError
from ldirector.ipvs.ops import Op
from ldirector.ipvs.types import IpvsTable, ServiceKey
from ldirector.observe.snapshot import CheckStats, Counters, Snapshot
from ldirector.observe.snapshot import build as build_status
from ldirector.state.holds import Holds
from ldirector.state.owned import OwnedStore
from ldirector.state.syncd import SyncOwnedStore

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
        sync: SyncOwnedStore | None = None,
        resync_interval: float | None = None,
        sysctls: SysctlWriter | None = None,
        fallback_commands: FallbackCommands | None = None,
        resolver: Resolver = reverse_lookup,
        concurrency: int = DEFAULT_CONCURRENCY,
        rng: random.Random | None = None,
        on_event: Callable[[Notice], None] | None = None,
        on_ready: Callable[[], None] | None = None,
        on_observation: Callable[[Observation], None] | None = None,
        holds: Holds | None = None,
        on_settled: Callable[[], None] | None = None,
        on_installed: Callable[[], None] | None = None,
        reconcile_spacing: float = RECONCILE_SPACING,
    ) -> None:
        self.config = config
        self._clock = clock or MonotonicClock()
        #: None: follow the config's ``resyncinterval`` (across reloads too).
        self._resync_override = resync_interval
        self._on_event = on_event
        self._on_ready = on_ready
        #: Called once a start or a reload has installed its config, before its first checks:
        #: what that config brought is long-lived (the daemon freezes the heap then).
        self._on_installed = on_installed
        self._observed = Observed(
            config,
            self._clock,
            resolver=resolver,
            notify=self._notify,
            on_observation=on_observation,
            on_settled=on_settled,
        )
        self._queue: asyncio.Queue[Observation] = asyncio.Queue()
        #: What the status snapshot reads: totals, check results by job, health changes.
        self.counters = Counters()
        self._scheduler = Scheduler(
            self._queue,
            clock=self._clock,
            run=run,
            concurrency=concurrency,
            rng=rng,
            counters=self.counters,
        )
        #: Per virtual: is any real up? Drives the fallbackcommands.
        self._serving = Serving(fallback_commands or FallbackCommands())
        self._reload_lock = asyncio.Lock()
        self._stop_requested = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        #: Operator holds (disable/drain, ``ldirector.state.holds``), saved across restarts.
        self.holds = holds or Holds()
        #: The connection-sync daemons, kept like the table (``ldirector.engine.syncd``).
        self._sync = SyncKeeper(backend, sync or SyncOwnedStore(None))
        self._writer = TableWriter(backend, owned or OwnedStore(None), self.counters, sysctls)
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
    def health(self) -> dict[RealKey, RealHealth]:
        """Each configured real's health (``ldirector.engine.observed``)."""
        return self._observed.health

    @property
    def checks(self) -> CheckStats:
        """Check results by job, for the status snapshot."""
        return self._observed.checks

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
        fresh = self._observed.install(self.config, actual, keep={})
        await self._writer.write_sysctls(self.config)
        await self._reconcile(actual)
        await self._sync.reconcile(self.config.syncdaemons)
        self._update_serving()
        self._scheduler.set_jobs(self._observed.jobs, immediate=fresh)
        self._observed.begin_settling(fresh)
        self._tasks = [
            asyncio.create_task(self._consume(), name="engine observations"),
            asyncio.create_task(self._resync(), name="engine resync"),
            asyncio.create_task(self._weigh(), name="engine weights"),
        ]
        if self._on_installed:
            self._on_installed()
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
                await self._apply(ops, Phase.STOP, actual)
                self._writer.release(clean, (await self._writer.backend.dump()).services.keys())
            except IpvsError as exc:
                log.error("cleanstop: %s", exc)
            except OSError as exc:
                log.error("cannot record owned services: %s", exc)
        for key, virtual in clean.items():
            if self._serving.falling_back(key):  # its fallbackcommand "start" is in effect
                self._serving.commands.run(virtual, "stop")
        await self._serving.commands.wait()
        await self._sync.shutdown()
        await self._observed.close()

    def reload_rejected(self) -> None:
        """Record a reload whose config did not load (``/metrics`` shows the failure)."""
        self.counters.last_reload, self.counters.last_reload_ok = time.time(), False

    async def reload(self, config: Config) -> None:
        """Switch to ``config``, already parsed and valid.

        Reals whose job did not change keep their health (no re-check, no flap); new or
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
        fresh = await self._observed.switch(self.config, config, actual)
        self.config = config
        await self._writer.write_sysctls(config)
        await self._reconcile()
        await self._sync.reconcile(config.syncdaemons)
        self._serving.keep(self._service_keys())
        self._update_serving()
        self._scheduler.set_jobs(self._observed.jobs, immediate=fresh)
        self._observed.begin_settling(fresh)
        if self._on_installed:
            self._on_installed()

    # --- observability and manual control (ldirector.control.server) ------------------------------

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
        seen = self._observed
        snap = build_status(
            self.config,
            seen.health,
            actual=actual,
            desired=seen.layout.desired(
                seen.health,
                actual,
                seen.agents.holds(self.holds.view()),
                weights=seen.weighting.weights,
            ),
            started=self.started,
            now=time.time(),
            layout=seen.layout,
            changed=seen.changed,
            overrides=self.holds.current,
            job_of=seen.job_of,
            checks=seen.checks,
            counters=self.counters,
            config_name=name or self.config.path,
        )
        return dataclasses.replace(snap, sync=self._sync.status)

    # --- state -------------------------------------------------------------------------------

    def _service_keys(self) -> set[ServiceKey]:
        return {v.key for v in self._observed.layout.virtuals}

    def _update_serving(self, only: Collection[ServiceKey] | None = None) -> None:
        seen = self._observed
        self._serving.update(seen.layout, seen.health, seen.agents.holds(self.holds.view()), only)

    def _notify(self, notice: Notice) -> None:
        log.info("%s", notice.message, extra={LOG_FIELDS: fields(notice)})
        if self._on_event:
            try:
                self._on_event(notice)
            except Exception:  # an alerting bug must not stop health from being applied
                log.exception("engine: event handler failed for %s", notice.kind)

    # --- the kernel --------------------------------------------------------------------------

    async def _consume(self) -> None:
        seen = self._observed
        while True:
            first = await self._queue.get()
            try:
                moved = seen.observe(first)
                while not self._queue.empty():  # one reconcile for a burst of results
                    moved |= seen.observe(self._queue.get_nowait())
                if moved:
                    pause = self._reconciled_at + self._spacing - self._clock.now()
                    if pause > 0:  # a storm of transitions: one reconcile for a batch of them
                        await self._clock.sleep(pause)
                        while not self._queue.empty():
                            seen.observe(self._queue.get_nowait())
                    # Only the services whose reals moved: the resync still compares every
                    # service, every resync_interval.
                    dirty = seen.take_dirty()
                    await self._reconcile(only=dirty)
                    self._reconciled_at = self._clock.now()
                    self._update_serving(only=dirty)
                seen.settled()
            except Exception:  # a bug here must not stop the only writer of the table
                log.exception("engine: internal error while applying check results")

    async def _resync(self) -> None:
        while True:
            await self._clock.sleep(self.resync_interval)
            try:
                await self._reconcile(resync=True)
                await self._sync.reconcile(self.config.syncdaemons, resync=True)
            except Exception:
                log.exception("engine: internal error during resync")

    async def _weigh(self) -> None:
        while True:
            await self._clock.sleep(TICK)
            try:
                moved = self._observed.step_weights()
                if moved:
                    await self._reconcile(only=moved)
            except Exception:
                log.exception("engine: internal error while stepping weights")

    async def _reconcile(
        self,
        actual: IpvsTable | None = None,
        *,
        resync: bool = False,
        only: Collection[ServiceKey] | None = None,
    ) -> None:
        """Dump, diff against the desired table, apply. Errors are logged, never raised.

        ``only`` limits the comparison to these services (those whose reals' health moved), and
        the dump to them: a failure reaches the kernel without reading every real of every
        service first.
        """
        async with self._writer.lock:
            try:
                if actual is None:
                    actual = await self._writer.backend.dump(only)
                if only is None:
                    # Ownership needs the whole table; a partial reconcile only edits services
                    # the config has, which every full one before it has claimed.
                    self._writer.claim(self._service_keys(), actual)
                # Drains that are over become disables.
                settled = self.holds.settle(actual, only)
                holds = self._observed.agents.holds(self.holds.view())
                weights = self._observed.weighting.weights
                desired = self._observed.layout.desired(
                    self.health, actual, holds, only=only, weights=weights
                )
                # Only services that differ go through diff: at 10,000 reals a full diff
                # costs the event loop tens of milliseconds at every resync.
                scope = self.owned if only is None else self.owned & set(only)
                changed = {k for k in scope if desired.services.get(k) != actual.services.get(k)}
                ops = diff(desired.only(changed), actual, changed)
                self.counters.reconciles += 1
                if resync and ops and not settled:
                    self.counters.drift_repairs += 1
                await self._apply(ops, Phase.START, actual)
            except IpvsError as exc:
                log.error("cannot reconcile the IPVS table: %s", exc)
            except OSError as exc:
                log.error("cannot record owned services: %s", exc)

    async def _apply(self, ops: Iterable[Op], phase: Phase, before: IpvsTable) -> None:
        """Apply the ops computed against ``before``, then tell what the kernel took in
        ldirectord's wording (``oplog``)."""
        seen = self._observed
        basis = Basis(self.config, seen.reals, seen.health, seen.layout.virtual_of)

        def tell(applied: Sequence[Op]) -> None:
            announce(applied, phase, before, basis, self._notify)

        await self._writer.apply(list(ops), tell)
