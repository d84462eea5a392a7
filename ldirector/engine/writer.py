"""The one writer of the kernel table: the owned set kept on disk before anything is created,
each batch of ops applied and then what the kernel took told (in ldirectord's wording), and the
kernel toggles.

Sits between the engine, which decides what the table should hold, and the IPVS backend. The
lock serialises every read-decide-write of the table: a resync, a batch of transitions, an
operator's refresh, a reload and the stop never interleave.
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from collections.abc import Callable, Collection, Mapping, Sequence

from ldirector.config.model import Config
from ldirector.ipvs.backend import ApplyError, IpvsBackend
from ldirector.ipvs.ops import AddService, DelService, Op
from ldirector.ipvs.toggles import ToggleError
from ldirector.ipvs.types import IpvsTable, ServiceKey
from ldirector.observe.snapshot import Counters
from ldirector.state.owned import OwnedStore

# The engine's logger: every line about the table comes from one name, so one filter sees them.
log = logging.getLogger(__name__)

#: Writes the kernel toggles a config asks for (``ldirector.ipvs.toggles.apply`` in the
#: daemon). Blocking; it runs in a thread. Raises ToggleError or OSError on failure.
SysctlWriter = Callable[[Mapping[str, int]], object]


class TableWriter:
    """Owns the services ldirector manages and applies the ops that keep them right."""

    def __init__(
        self,
        backend: IpvsBackend,
        store: OwnedStore,
        counters: Counters,
        sysctls: SysctlWriter | None = None,
    ) -> None:
        self.backend = backend
        self.lock = asyncio.Lock()
        self.owned: frozenset[ServiceKey] = frozenset()
        self._store = store
        self._counters = counters
        self._sysctls = sysctls

    def load_owned(self) -> None:
        """Take over the claim of the last run (a virtual removed from the config while
        ldirector was down is still deleted)."""
        self.owned = self._store.load()

    def claim(self, configured: Collection[ServiceKey], actual: IpvsTable) -> None:
        """Own every configured service, and keep owning those the kernel still holds.

        Written before the ops it covers are applied, so a crash keeps the claim; inline, not
        in a thread: a few lines, written only when ownership changes. Best effort: a file that
        cannot be written is logged once by the store and retried here at every reconcile.
        """
        owned = frozenset(set(configured) | (self.owned & actual.services.keys()))
        if owned != self.owned:
            self.owned = owned
            self._store.save(owned)
        else:
            self._store.flush()

    def release(self, cleaned: Collection[ServiceKey], left: Collection[ServiceKey]) -> None:
        """Stop owning the services a cleanstop deleted (one still in the kernel stays owned)."""
        self.owned = frozenset(k for k in self.owned if k not in cleaned or k in left)
        self._store.save(self.owned)

    async def apply(self, ops: Sequence[Op], tell: Callable[[Sequence[Op]], None]) -> None:
        """Apply the ops, then ``tell`` (the log lines and notices) those the kernel took.

        An op the kernel refuses is logged, counted and not told: the table did not take
        everything, the next resync sees the real state and tries again, and nothing here
        pretends it worked. When the backend cannot say which ops it took (the exchange broke
        off), none is told and the error is raised.
        """
        if not ops:
            return
        self._counters.ops += len(ops)
        try:
            await self.backend.apply(ops)
        except ApplyError as exc:
            self._counters.op_errors += len(exc.failures)
            for failure in exc.failures:
                log.error("%s", failure)
            taken = _taken(ops, exc)
            self._disown(taken)
            tell(taken)
            return
        self._disown(ops)
        tell(ops)

    def _disown(self, taken: Sequence[Op]) -> None:
        """Stop owning the services the kernel just deleted: a partial reconcile (which does
        not claim) must not leave a deleted service owned until the next full one."""
        gone = {op.key for op in taken if isinstance(op, DelService)}
        if gone & self.owned:
            gone -= {op.service.key for op in taken if isinstance(op, AddService)}
            self.owned -= gone
            self._store.save(self.owned)

    async def write_sysctls(self, config: Config) -> None:
        """The kernel toggles ``config`` asks for; a failure is logged, never raised."""
        if self._sysctls is None or not config.ipvs_sysctls:
            return
        try:
            await asyncio.to_thread(self._sysctls, config.sysctls)
        except (ToggleError, OSError) as exc:
            log.error("cannot set IPVS kernel settings: %s", exc)


def _taken(ops: Sequence[Op], error: ApplyError) -> list[Op]:
    """The ops of a batch the kernel took: all but those ``error`` names (equal ops count once
    each); none when a failure names no op, as then which ones failed is unknown."""
    refused = Counter(failure.op for failure in error.failures)
    if None in refused:
        return []  # tell nothing rather than something false
    taken: list[Op] = []
    for op in ops:
        if refused[op] > 0:
            refused[op] -= 1
        else:
            taken.append(op)
    return taken
