"""Keeps the kernel's connection-sync daemons as the config asks, like the table.

The engine calls :meth:`SyncKeeper.reconcile` at start, at every reload and at every resync,
and :meth:`SyncKeeper.shutdown` at stop. Each pass reads the running daemons, plans with
``ldirector.core.syncd`` and applies the plan, so a daemon of ours stopped by hand is back
within one resync. The roles ldirector started are saved (``ldirector.state.syncd``) before a
daemon is started, so a restarted ldirector still knows them, and it never stops any other.
A config without ``syncdaemon`` (and nothing of ours running) costs nothing: the kernel is not
even asked. Every failure is logged and counted, never raised.
"""

from __future__ import annotations

import asyncio
import errno
import logging
from collections.abc import Sequence

from ldirector.core import syncd as planner
from ldirector.ipvs.backend import IpvsBackend, IpvsError
from ldirector.ipvs.sync import DaemonState, SyncDaemon
from ldirector.observe.syncd import SyncDaemonStatus, SyncStatus
from ldirector.state.syncd import SyncOwnedStore

log = logging.getLogger("ldirector.engine.engine")


class SyncKeeper:
    """The one writer of the sync daemons: plans, applies, remembers what it started."""

    def __init__(self, backend: IpvsBackend, store: SyncOwnedStore) -> None:
        self._backend = backend
        self._store = store
        self._lock = asyncio.Lock()
        self.ours: frozenset[DaemonState] = store.load()
        self._desired: tuple[SyncDaemon, ...] = ()
        self._running: tuple[SyncDaemon, ...] = ()
        self._reported: frozenset[SyncDaemon] = frozenset()
        self._starts = self._stops = self._repairs = self._errors = 0
        self._error: str | None = None
        self._logged: str | None = None

    @property
    def status(self) -> SyncStatus | None:
        """What the status surfaces show; None when there is nothing to show."""
        if not (self._desired or self.ours or self._running):
            return None
        want = {d.state: d for d in self._desired}
        have = {d.state: d for d in self._running}
        rows = []
        for state in sorted(want.keys() | have.keys()):
            wanted, running = want.get(state), have.get(state)
            shown = running or wanted
            assert shown is not None  # noqa: S101 - one of the two holds the role
            rows.append(
                SyncDaemonStatus(
                    state=state.word,
                    interface=shown.interface,
                    syncid=shown.syncid,
                    configured=wanted is not None,
                    running=running is not None,
                    ours=running is not None and state in self.ours,
                    matches=bool(wanted and running and planner.matches(wanted, running)),
                )
            )
        return SyncStatus(
            daemons=tuple(rows),
            starts=self._starts,
            stops=self._stops,
            repairs=self._repairs,
            errors=self._errors,
            error=self._error,
        )

    async def reconcile(self, desired: Sequence[SyncDaemon], *, resync: bool = False) -> None:
        """Make the running daemons the desired ones, touching only those ldirector started."""
        async with self._lock:
            self._desired = tuple(desired)
            if not self._desired and not self.ours:
                self._running = ()
                return
            actual = await self._read()
            if actual is None:
                return
            step = planner.plan(self._desired, actual, self.ours)
            self._report(step.foreign)
            gone = self.ours - {d.state for d in actual}
            self._error = None
            kept = {state for state in step.stop if not await self._stop(state)}
            claim = self.ours | step.ours
            if claim != self.ours:  # saved before starting: a crash keeps the claim
                self.ours = claim
                self._store.save(claim)
            failed = set()
            for daemon in step.start:
                if not await self._start(daemon):
                    failed.add(daemon.state)  # not running: not ours until a start succeeds
                elif resync and daemon.state in gone:
                    self._repairs += 1
                    log.warning("sync daemon: %s was not running; started it again", _name(daemon))
            self._own((step.ours - failed) | kept)
            self._running = await self._read() or ()
            if self._error is None:
                self._logged = None

    async def shutdown(self) -> None:
        """Stop the daemons ldirector started; leave every other one running."""
        async with self._lock:
            if not self.ours:
                return
            actual = await self._read()
            if actual is None:
                return
            kept = {s for s in planner.release(actual, self.ours) if not await self._stop(s)}
            self._own(kept)
            self._running = await self._read() or ()

    def _own(self, roles: set[DaemonState] | frozenset[DaemonState]) -> None:
        """Record the roles ldirector now runs (saved when they changed, else a retry)."""
        if roles != self.ours:
            self.ours = frozenset(roles)
            self._store.save(self.ours)
        else:
            self._store.flush()

    async def _read(self) -> tuple[SyncDaemon, ...] | None:
        try:
            return await self._backend.daemons()
        except IpvsError as exc:
            self._fail(f"cannot read the sync daemons: {exc}")
            return None

    async def _start(self, daemon: SyncDaemon) -> bool:
        try:
            await self._backend.start_daemon(daemon)
        except IpvsError as exc:
            self._fail(str(exc))
            return False
        self._starts += 1
        log.info("sync daemon: started %s", _name(daemon))
        return True

    async def _stop(self, state: DaemonState) -> bool:
        try:
            await self._backend.stop_daemon(state)
        except IpvsError as exc:
            if exc.errno == errno.ESRCH:  # already gone: what a stop wanted
                return True
            self._fail(str(exc))
            return False
        self._stops += 1
        log.info("sync daemon: stopped the %s", state.word)
        return True

    def _report(self, foreign: Sequence[SyncDaemon]) -> None:
        """Log each daemon ldirector did not start once, not at every resync."""
        for daemon in foreign:
            if daemon not in self._reported:
                log.warning(
                    "sync daemon: a %s not started by ldirector is running; leaving it alone "
                    "(stop it to let ldirector start the configured one)",
                    _name(daemon),
                )
        self._reported = frozenset(foreign)

    def _fail(self, message: str) -> None:
        self._errors += 1
        if message != self._logged:  # a lasting failure is logged once, not at every resync
            log.error("%s", message)
        self._error = self._logged = message


def _name(daemon: SyncDaemon) -> str:
    return f"{daemon.state.word} on {daemon.interface} (syncid {daemon.syncid})"
