"""The daemon body for ``ldirector start``: the engine on the kernel's IPVS table.

Sits between the operator surface (``daemon.serve``, which owns signals, the pid file and
readiness) and ``Engine``. The process layer has already parsed the config; a reload hands
over a new, valid one. What changes the whole process (the collector's tuning, the asyncio
patch of ``daemon.tuning``) is done here, around the engine's life, never by the engine.
"""

from __future__ import annotations

import asyncio
import logging
import resource
from collections.abc import Callable
from pathlib import Path

from ldirector.config.model import Config
from ldirector.control import server
from ldirector.core.events import Notice, mailed
from ldirector.daemon import alerts, tuning
from ldirector.daemon.process import DaemonContext, Settings
from ldirector.engine.clock import MonotonicClock
from ldirector.engine.engine import Engine
from ldirector.engine.scheduler import DEFAULT_CONCURRENCY
from ldirector.ipvs import toggles
from ldirector.ipvs.backend import IpvsBackend
from ldirector.observe.endpoint import StatusEndpoint
from ldirector.state import holds, syncd
from ldirector.state.owned import STATE_DIR, OwnedStore, default_path
from ldirector.state.syncd import SyncOwnedStore

log = logging.getLogger(__name__)

#: Seconds alerts of a start or reload are held at most while its first checks report.
SETTLE_LIMIT = 120.0


def _netlink() -> IpvsBackend:
    from ldirector.ipvs.netlink import NetlinkBackend

    return NetlinkBackend()


def raise_file_limit(wanted: int) -> int:
    """Lift the soft RLIMIT_NOFILE towards ``wanted`` (each check in flight holds a socket).

    Debian's default soft limit of 1024 is below the scheduler's cap; the hard limit is not.
    Returns the soft limit now in force.
    """
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
    if target > soft:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
        except (OSError, ValueError) as exc:
            log.warning("cannot raise the open-files limit to %d: %s", target, exc)
            return soft
        return target
    return soft


def _config(settings: Settings) -> Config:
    if not isinstance(settings.config, Config):
        raise TypeError("the daemon was handed settings without a parsed configuration")
    return settings.config


class EngineService:
    """``process.DaemonBody`` for the engine: run, reload, stop."""

    def __init__(
        self,
        ctx: DaemonContext,
        *,
        backend: Callable[[], IpvsBackend] = _netlink,
        state_dir: Path = STATE_DIR,
        manual_dir: Path | None = None,
        control_dir: Path | None = None,
        resync_interval: float | None = None,
        shadow: bool = False,
    ) -> None:
        self.ctx = ctx
        #: Check and compare only: the table, toggles, owned set and alerts are the live
        #: manager's (``ldirector.engine.shadow``).
        self._shadow = shadow
        self._backend_factory = backend
        self._state_dir = state_dir
        # Tests that move the state dir get the overrides file and the socket there too.
        moved = state_dir != STATE_DIR
        self._manual_dir = manual_dir or (state_dir if moved else holds.STATE_DIR)
        self._control_dir = control_dir or (state_dir if moved else None)
        self._resync_interval = resync_interval
        self._engine: Engine | None = None
        self._stop_early = False
        #: Alerts of a start or reload, held until its first checks have all reported.
        self._held: list[alerts.Event] | None = None
        #: The daemon status they happened in: their emails say ``starting``/``reloading``.
        self._held_status = ""
        self._settle_limit: asyncio.TimerHandle | None = None
        self._endpoint: StatusEndpoint | None = None

    async def run(self) -> None:
        config = _config(self.ctx.settings)
        raise_file_limit(DEFAULT_CONCURRENCY + 1024)
        clock = MonotonicClock()
        backend = self._backend_factory()
        collector = tuning.Collector()
        kept = holds.Holds(holds.HoldsStore(holds.default_path(self.ctx.cfgname, self._manual_dir)))
        if self._shadow:
            from ldirector.engine.shadow import ReadOnlyBackend, ShadowEngine  # --shadow only

            self._engine = ShadowEngine(
                config,
                ReadOnlyBackend(lambda: backend),
                clock=clock,
                resync_interval=self._resync_interval,
                on_ready=self.ctx.ready,
                on_settled=self._release,
                on_installed=collector.settle,
                holds=kept,
            )
        else:
            self._engine = Engine(
                config,
                backend,
                clock=clock,
                owned=OwnedStore(default_path(self.ctx.config_path, self._state_dir)),
                sync=SyncOwnedStore(syncd.default_path(self.ctx.config_path, self._state_dir)),
                resync_interval=self._resync_interval,
                sysctls=toggles.apply,
                on_ready=self.ctx.ready,
                on_event=self._alert,
                on_settled=self._release,
                on_installed=collector.settle,
                holds=kept,
            )
        if self._stop_early:
            self._engine.stop()
        self._hold("starting")
        try:
            # The control socket and (httpstatus=) the status page.
            async with server.observing(
                self._engine,
                cfgname=self.ctx.cfgname,
                httpstatus=config.httpstatus,
                directory=self._control_dir,
            ) as observed:
                self._endpoint = observed.endpoint
                await self._engine.run()
        finally:
            collector.restore()
            self._release()
            await backend.close()

    async def reload(self, settings: Settings) -> None:
        self.ctx.settings = settings
        if self._engine is not None:
            before = {v.endpoint for v in self._engine.config.virtuals}
            config = _config(settings)
            self._hold("reloading")
            try:
                await self._engine.reload(config)
            finally:
                if self._engine.config is not config:  # not switched: nothing will settle
                    self._release()
            for gone in before - {v.endpoint for v in self._engine.config.virtuals}:
                self.ctx.alerter.forget(gone)
            if self._endpoint is not None:  # the status page moves (or stops) with the config
                await self._endpoint.follow(self._engine.config.httpstatus)

    def reload_rejected(self) -> None:
        """The daemon could not load the new file: count it as a failed reload for metrics."""
        if self._engine is not None:
            self._engine.reload_rejected()

    def _alert(self, notice: Notice) -> None:
        """Hand a change the kernel took to the daemon's alerter (email, with reminders)."""
        if not mailed(notice.kind) or self._engine is None:
            return
        event = alerts.Event(
            kind=notice.kind,
            message=notice.message,
            virtual=notice.virtual.endpoint,
            server=notice.server,
            settings=alerts.settings_for(notice.virtual, self._engine.config.emailalertfrom),
        )
        if self._held is not None:
            self._held.append(event)
        else:
            self.ctx.alerter.notify(event)

    def _hold(self, status: str) -> None:
        """Hold alerts until the engine says the start or reload settled (its first checks all
        reported), so a fallback added at start and removed by the first good check mails
        nothing. The process layer's own hold ends at readiness, before any check reported."""
        if self._held is None:
            self._held, self._held_status = [], status
        if self._settle_limit is not None:
            self._settle_limit.cancel()
        # A bound, whatever happens to the checks (the slowest check's timeout, and then some).
        self._settle_limit = asyncio.get_running_loop().call_later(SETTLE_LIMIT, self._release)

    def _release(self) -> None:
        held, self._held = self._held, None
        if self._settle_limit is not None:
            self._settle_limit.cancel()
            self._settle_limit = None
        if not held:
            return
        alerter = self.ctx.alerter
        current = alerter.status
        if current != "stopping":  # a stop that came meanwhile keeps its own status
            alerter.status = self._held_status
        for event in alerts.collapse(held):
            alerter.notify(event)
        alerter.status = current

    def stop(self) -> None:
        if self._engine is None:
            self._stop_early = True
        else:
            self._engine.stop()


def engine_service(ctx: DaemonContext) -> EngineService:
    """The ``ServiceFactory`` ``commands.main`` should use for ``start``."""
    return EngineService(ctx)


def shadow_service(ctx: DaemonContext) -> EngineService:
    """The ``ServiceFactory`` for ``--shadow start``."""
    return EngineService(ctx, shadow=True)
