"""Shadow mode: the whole engine on the real config and servers, beside the manager that owns
the table, writing nothing it owns.

Every check runs and health is kept as in a live start; the desired table is built against the
kernel table as the live manager keeps it. What differs from a live engine:

- the writer never writes (:class:`ShadowWriter`): what a live engine would apply is logged once,
  in ldirectord's wording behind :data:`PREFIX` (``shadow: would add real server: ...``); no
  kernel toggle is written and no owned set is kept on disk;
- the config it runs has no fallbackcommand and no monitorfile (:func:`shadow_config`), and the
  daemon wires no email and no execute= instances;
- a kernel without IPVS reads as an empty table, so the desired table and health still show;
- :class:`ShadowMonitor` compares the two tables every second, per virtual and per real, with
  ``ldirector.core.divergence``, and logs each divergence episode as it starts and ends; one that
  begins just after a reload may last twice as long and still be timing (the live manager is
  reloading too), and a virtual whose reals agree is explained by its fallback or its settings.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Collection, Iterator, Sequence
from dataclasses import dataclass, replace

from ldirector.config.model import Config
from ldirector.core import divergence
from ldirector.core.desired import fallback_dest, service, service_key
from ldirector.core.divergence import Kind, Report, Tracker, Verdict
from ldirector.core.text import safe_text
from ldirector.core.wording import localtime
from ldirector.engine.engine import Engine
from ldirector.engine.writer import TableWriter
from ldirector.ipvs.backend import IpvsBackend, IpvsError
from ldirector.ipvs.ops import Op, op_service_key
from ldirector.ipvs.types import DestKey, IpvsTable, Service, ServiceKey, VirtualService
from ldirector.observe.snapshot import Counters, RealStatus, Snapshot, VirtualStatus
from ldirector.state.owned import OwnedStore

#: What starts every line the shadow writes about itself.
PREFIX = "shadow: "
#: Seconds between two comparisons of the kernel table with the desired one.
COMPARE_INTERVAL = 1.0

log = logging.getLogger("ldirector.engine.shadow")
#: The loggers that tell the ops a writer applied (the ops themselves, and the notices).
_TELLING = ("ldirector.engine.oplog", "ldirector.engine.engine")

#: ldirectord's past tense (what it did) to the infinitive (what the shadow would do).
_WOULD = {
    "Added": "would add",
    "Restored": "would restore",
    "Deleted": "would delete",
    "Quiescent": "would quiesce",
    "Readd": "would readd",
    "Purged": "would purge",
    "Changed": "would change",
}


def would(message: str) -> str:
    """``Added real server: ...`` as the shadow says it: ``shadow: would add real server: ...``."""
    first, _, rest = message.partition(" ")
    verb = _WOULD.get(first)
    if verb is None:
        return f"{PREFIX}would: {message}"
    return f"{PREFIX}{verb} {rest}"


class _Would(logging.Filter):
    """Rewrites the engine's lines about ops into what the shadow would have done."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg, record.args = would(record.getMessage()), ()
        return True


@contextlib.contextmanager
def _pretending() -> Iterator[None]:
    """While the ops are told: the loggers that tell them say what would be done."""
    loggers, rewrite = [logging.getLogger(name) for name in _TELLING], _Would()
    for logger in loggers:
        logger.addFilter(rewrite)
    try:
        yield
    finally:
        for logger in loggers:
            logger.removeFilter(rewrite)


class ShadowWriter(TableWriter):
    """The writer of a shadow engine: decides like the live writer, applies nothing.

    Each op a live engine would apply is told once while the table stays as it is (every
    resync would find it again); :meth:`forget` re-arms a service that came to agree.
    """

    def __init__(self, backend: IpvsBackend, counters: Counters) -> None:
        super().__init__(backend, OwnedStore(None), counters, None)
        self._told: dict[ServiceKey, frozenset[Op]] = {}

    def load_owned(self) -> None:
        """The live instance's owned set is not the shadow's to read or write."""

    def claim(self, configured: Collection[ServiceKey], actual: IpvsTable) -> None:
        self.owned = frozenset(configured)

    def release(self, cleaned: Collection[ServiceKey], left: Collection[ServiceKey]) -> None:
        """Nothing was created, so nothing is released."""

    async def apply(self, ops: Sequence[Op], tell: Callable[[Sequence[Op]], None]) -> None:
        by_service: dict[ServiceKey, list[Op]] = {}
        for op in ops:
            by_service.setdefault(op_service_key(op), []).append(op)
        new: list[Op] = []
        for key, batch in by_service.items():
            before = self._told.get(key, frozenset())
            new += [op for op in batch if op not in before]
            self._told[key] = frozenset(batch)
        if new:
            with _pretending():
                tell(new)

    async def write_sysctls(self, config: Config) -> None:
        """The kernel toggles belong to the live manager."""

    def forget(self, agreeing: Collection[str]) -> None:
        """Services (by name) the kernel now holds as wanted: their next op is told again."""
        for key in [k for k in self._told if str(k) in agreeing]:
            del self._told[key]


class ReadOnlyBackend:
    """The kernel table for reading; an empty one where the kernel has no IPVS."""

    def __init__(self, factory: Callable[[], IpvsBackend]) -> None:
        self._factory = factory
        self._inner: IpvsBackend | None = None
        self.unavailable: str | None = None
        #: The table the last dump read: what the comparison explains a divergence with.
        self.last = IpvsTable()

    async def dump(self, only: Collection[ServiceKey] | None = None) -> IpvsTable:
        # Always the whole table: a divergence is explained against everything the kernel has.
        try:
            if self._inner is None:
                self._inner = self._factory()
            table = await self._inner.dump()
        except (IpvsError, OSError) as exc:
            if self.unavailable is None:
                log.warning(
                    "%scannot read the IPVS table (%s): showing the desired table and health only",
                    PREFIX,
                    exc,
                )
            self.unavailable = str(exc) or type(exc).__name__
            self.last = IpvsTable()
            return self.last
        self.unavailable = None
        self.last = table
        return table

    async def apply(self, ops: Sequence[Op]) -> None:
        raise IpvsError("the shadow never writes the IPVS table")

    async def close(self) -> None:
        if self._inner is not None:
            await self._inner.close()


def shadow_config(config: Config) -> Config:
    """``config`` without what would act outside the table (fallbackcommands, monitorfiles,
    sync daemons) and without cleanstop: the shadow created nothing, so it has nothing to
    clean at its stop."""
    virtuals = tuple(
        replace(v, fallbackcommand=(), monitorfile=None, cleanstop=False) for v in config.virtuals
    )
    return replace(config, virtuals=virtuals, syncdaemons=())


def tolerance(config: Config, interval: float = COMPARE_INTERVAL) -> dict[str, float]:
    """Per virtual (by service name): how long a divergence is timing. Both managers read the
    same config, so each may take one detection window; the comparison adds its interval."""
    out: dict[str, float] = {}
    for v in config.virtuals:
        window = divergence.detection_window(v.checkinterval, v.checktimeout, v.failurecount)
        out[str(service_key(v))] = 2 * window + interval
    return out


@dataclass(frozen=True, slots=True)
class Expected:
    """What ldirector wants of a virtual beside its reals, and what the kernel holds of it:
    enough to say why a virtual whose reals all agree still differs."""

    service: Service
    fallback: DestKey | None
    kernel: VirtualService | None


def expectations(config: Config, kernel: IpvsTable) -> dict[str, Expected]:
    """Per virtual (by service name): its wanted settings and fallback, and the kernel's."""
    out: dict[str, Expected] = {}
    for v in config.virtuals:
        key = service_key(v)
        fallback = fallback_dest(v, v.fallback).key if v.fallback is not None else None
        out.setdefault(str(key), Expected(service(v), fallback, kernel.services.get(key)))
    return out


def verdicts(
    snap: Snapshot,
    tolerances: dict[str, float],
    no_kernel: bool = False,
    expected: dict[str, Expected] | None = None,
) -> list[Verdict]:
    """One verdict per virtual and per real of ``snap``; none without a kernel table."""
    if no_kernel:
        return []
    out: list[Verdict] = []
    for v in snap.virtuals:
        tol = tolerances.get(v.service, 0.0)
        cause = "" if v.matches else _virtual_cause(v, (expected or {}).get(v.service))
        out.append(Verdict(v.service, v.matches, cause, tol))
        for r in v.reals:
            cause = "" if r.matches else _real_cause(r)
            out.append(Verdict(f"{v.service} {r.real}", r.matches, cause, tol))
    return out


def _virtual_cause(v: VirtualStatus, expected: Expected | None = None) -> str:
    if not v.in_kernel:
        return "kernel does not hold the virtual service; ldirector wants it"
    wrong = [r.real for r in v.reals if not r.matches]
    if wrong:
        return "reals differ: " + ", ".join(wrong)
    have = expected.kernel if expected is not None else None
    if expected is not None and have is not None:
        if have.service != expected.service:
            return (
                f"kernel holds the service with {_settings(have.service)};"
                f" ldirector wants {_settings(expected.service)}"
            )
        fallback = expected.fallback
        if fallback is not None:
            held = fallback in have.dests
            serving = any(r.desired_weight for r in v.reals)
            if held and serving:
                return (
                    f"kernel holds the fallback {fallback}; ldirector wants it out (a real serves)"
                )
            if not held and not serving:
                return f"kernel does not hold the fallback {fallback}; ldirector wants it in"
    return f"kernel differs in the service or its fallback (kernel/wanted extra: {v.fallback})"


def _settings(svc: Service) -> str:
    persistent = (
        f"persistent {svc.persistent} s" if svc.persistent is not None else "no persistence"
    )
    words = [f"scheduler {svc.scheduler}", persistent, f"netmask /{svc.prefix}"]
    if svc.flags:
        words.append(f"flags {int(svc.flags):#x}")
    if svc.pe_name:
        words.append(f"pe {svc.pe_name}")
    return ", ".join(words)


def _real_cause(r: RealStatus) -> str:
    kernel = (
        f"kernel holds {r.real} at weight {r.kernel_weight}"
        if r.kernel_weight is not None
        else f"kernel does not hold {r.real}"
    )
    wanted = f"wants weight {r.desired_weight}" if r.desired_weight is not None else "wants it out"
    why = f", {safe_text(r.reason)}" if r.reason else ""
    return f"{kernel}; ldirector: {r.health} since {localtime(r.since)}{why}, {wanted}"


class ShadowEngine(Engine):
    """An engine whose writer never writes, comparing the tables as it goes."""

    def __init__(self, config: Config, backend: ReadOnlyBackend, **kwargs: object) -> None:
        super().__init__(shadow_config(config), backend, **kwargs)  # type: ignore[arg-type]
        self.shadow_writer = ShadowWriter(backend, self.counters)  # type: ignore[arg-type]
        self._writer = self.shadow_writer
        self.reader = backend
        self.monitor = ShadowMonitor(self)

    async def reload(self, config: Config) -> None:
        # Before (a comparison may run while the reload is under way) and after.
        self.monitor.reloaded()
        await super().reload(shadow_config(config))
        self.monitor.reloaded()

    async def snapshot(self, name: str = "") -> Snapshot:
        snap = await super().snapshot(name)
        return replace(snap, shadow=self.monitor.report(), no_kernel=self.reader.unavailable)

    async def run(self) -> None:
        task = asyncio.create_task(self.monitor.run(), name="shadow comparison")
        try:
            await super().run()
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task


class ShadowMonitor:
    """Compares the kernel table with the desired one every :data:`COMPARE_INTERVAL`."""

    def __init__(self, engine: ShadowEngine, wall: Callable[[], float] = time.time) -> None:
        self._engine = engine
        self._wall = wall
        self.tracker = Tracker(started=wall())
        #: Wall-clock time of the shadow's last reload, None before the first.
        self._reloaded: float | None = None

    def reloaded(self) -> None:
        """The shadow took a new config: the live manager is (or soon will be) reloading too."""
        self._reloaded = self._wall()

    def report(self) -> Report:
        return self.tracker.report(self._wall())

    def tolerances(self, now: float) -> dict[str, float]:
        """:func:`tolerance`, doubled for divergences that begin within it after a reload:
        both managers then re-read the file, and ldirectord re-runs its whole start (with its
        add-then-delete of the reals it finds missing, B12) and a full round of checks before
        it acts on a check again."""
        out = tolerance(self._engine.config)
        if self._reloaded is None:
            return out
        since = now - self._reloaded
        return {item: 2 * tol if since <= tol else tol for item, tol in out.items()}

    async def compare(self) -> None:
        engine = self._engine
        tolerances = self.tolerances(self._wall())
        snap = await Engine.snapshot(engine)
        expected = expectations(engine.config, engine.reader.last)
        found = verdicts(snap, tolerances, engine.reader.unavailable is not None, expected)
        for episode in self.tracker.update(found, self._wall()):
            log.info("%s", episode_line(episode))
        engine.shadow_writer.forget({v.item for v in found if v.agrees})

    async def run(self) -> None:
        while True:
            try:
                await self.compare()
            except IpvsError as exc:
                log.error("%scannot compare the tables: %s", PREFIX, exc)
            except Exception:  # the comparison is a side part: it must not stop the checks
                log.exception("%sinternal error while comparing the tables", PREFIX)
            await asyncio.sleep(COMPARE_INTERVAL)


def episode_line(e: divergence.Episode) -> str:
    if e.end is None:
        return f"{PREFIX}divergence on {e.item} since {localtime(e.start)}: {e.cause}"
    kind = "timing" if e.kind is Kind.TIMING else "disagreement"
    return (
        f"{PREFIX}agreement again on {e.item} after {e.end - e.start:.1f} s"
        f" ({kind}; was: {e.cause})"
    )
