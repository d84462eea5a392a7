"""Which connection-sync daemons to start and stop: the config's wish against the kernel's state.

Pure. The kernel runs at most one daemon per role (master, backup) in a network namespace, and
an operator or another manager (keepalived's ``lvs_sync_daemon``, a script) may run one too. So
ldirector only ever stops a daemon it started itself (``ours``, kept across restarts); a daemon
it did not start is left alone, even when it differs from the config, and reported instead.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Collection, Iterable
from dataclasses import dataclass

from ldirector.ipvs.sync import DaemonState, SyncDaemon


@dataclass(frozen=True, slots=True)
class SyncPlan:
    """What to do to the sync daemons, in this order: stop, then start."""

    stop: tuple[DaemonState, ...] = ()
    start: tuple[SyncDaemon, ...] = ()
    #: Running daemons ldirector did not start and leaves alone although the config names
    #: their role: a conflict to report.
    foreign: tuple[SyncDaemon, ...] = ()
    #: The roles ldirector will have started once the plan is applied.
    ours: frozenset[DaemonState] = frozenset()

    def __bool__(self) -> bool:
        return bool(self.stop or self.start)


def matches(wanted: SyncDaemon, running: SyncDaemon) -> bool:
    """Whether ``running`` is ``wanted``; a payload size left to the kernel matches any."""
    if wanted.maxlen is None:
        running = dataclasses.replace(running, maxlen=None)
    return wanted == running


def plan(
    desired: Iterable[SyncDaemon],
    actual: Iterable[SyncDaemon],
    ours: Collection[DaemonState],
) -> SyncPlan:
    """The actions that make the kernel's daemons the desired ones, touching only ours.

    A daemon of ours that differs from the config is restarted (a reload changed it); one that
    is gone is started again (stopped by hand: drift); one the config no longer names is
    stopped. A role whose daemon ldirector did not start is never touched.
    """
    want = {d.state: d for d in desired}
    have = {d.state: d for d in actual}
    stop: list[DaemonState] = []
    start: list[SyncDaemon] = []
    foreign: list[SyncDaemon] = []
    mine: set[DaemonState] = set()
    for state in sorted(want.keys() | have.keys()):
        wanted, running = want.get(state), have.get(state)
        if running is not None and state not in ours:
            if wanted is not None:
                foreign.append(running)
            continue
        if running is not None and (wanted is None or not matches(wanted, running)):
            stop.append(state)
        if wanted is not None:
            mine.add(state)
            if running is None or not matches(wanted, running):
                start.append(wanted)
    return SyncPlan(tuple(stop), tuple(start), tuple(foreign), frozenset(mine))


def release(actual: Iterable[SyncDaemon], ours: Collection[DaemonState]) -> tuple[DaemonState, ...]:
    """The daemons to stop when ldirector stops: the running ones it started."""
    return tuple(sorted(d.state for d in actual if d.state in ours))
