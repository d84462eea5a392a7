"""A world for engine scenarios: config text, a FakeBackend kernel, a FakeClock, scripted checks.

Nothing here touches the network: checks answer from ``World.up`` and fallbackcommands are
recorded instead of run.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from pathlib import Path

from checks.types import CheckSpec, Result, Target, Weight
from ldirector.config import Config, loads
from ldirector.core.desired import desired_table
from ldirector.engine import Engine, Notice
from ldirector.engine.fallbackcommands import FallbackCommands
from ldirector.ipvs.ipvsadm import format_op
from ldirector.ipvs.types import IpvsTable
from ldirector.state.owned import OwnedStore
from ldirector.testing import FakeBackend, FakeClock


def config(text: str) -> Config:
    return loads(text, "ldirectord.cf")


class World:
    def __init__(
        self,
        text: str,
        tmp: Path,
        *,
        table: IpvsTable | None = None,
        backend: FakeBackend | None = None,
        up: dict[str, bool] | None = None,
        resync_interval: float | None = None,
        on_event: Callable[[Notice], None] | None = None,
        on_ready: Callable[[], None] | None = None,
        on_settled: Callable[[], None] | None = None,
        reconcile_spacing: float = 0.0,
    ) -> None:
        self.clock = FakeClock()
        self.backend = backend or FakeBackend(table)
        #: str(target) -> does its check pass; missing means refused.
        self.up: dict[str, bool] = dict(up or {})
        #: str(target) -> the weight its passing check reports (dynamic weights).
        self.weights: dict[str, Weight] = {}
        #: str(target) -> the exact result its check returns (load agents' answers).
        self.replies: dict[str, Result] = {}
        self.calls: list[tuple[float, str, str]] = []
        self.notices: list[Notice] = []
        self.commands: list[list[str]] = []
        self.sysctl_writes: list[dict[str, int]] = []
        self.store = OwnedStore(tmp / "ldirectord.cf.owned")
        self._seen = len(self.backend.batches)
        self.engine = Engine(
            config(text),
            self.backend,
            clock=self.clock,
            run=self.check,
            owned=self.store,
            resync_interval=resync_interval,
            sysctls=lambda values: self.sysctl_writes.append(dict(values)),
            fallback_commands=FallbackCommands(self.spawn),
            resolver=self._no_name,
            rng=random.Random(5),
            on_event=on_event or self.notices.append,
            on_ready=on_ready,
            on_settled=on_settled,
            # Scenarios assert what each transition does; the batching of storms (a reconcile
            # at most every 0.2 s) has its own test.
            reconcile_spacing=reconcile_spacing,
        )

    @staticmethod
    async def _no_name(address: object) -> str | None:
        return None

    async def check(self, target: Target, spec: CheckSpec) -> Result:
        self.calls.append((self.clock.now(), str(target), type(spec).__name__))
        if str(target) in self.replies:
            return self.replies[str(target)]
        ok = self.up.get(str(target), False)
        weight = self.weights.get(str(target)) if ok else None
        return Result(ok, "HTTP 200 OK" if ok else "connection refused", weight=weight)

    async def spawn(self, args: Sequence[str]) -> int:
        self.commands.append(list(args))
        return 0

    def ops(self) -> list[str]:
        """ipvsadm lines of every op applied since the last call."""
        batches = self.backend.batches[self._seen :]
        self._seen = len(self.backend.batches)
        return [format_op(op) for batch in batches for op in batch]

    def events(self) -> list[str]:
        """The notices so far as ``kind real`` strings, then forget them."""
        out = [f"{n.kind} {n.real.dest if n.real else n.virtual.vid}" for n in self.notices]
        self.notices.clear()
        return out

    def converged(self) -> bool:
        """The kernel holds exactly what ``desired_table`` says for the configured services."""
        table = self.backend.table
        want = desired_table(self.engine.config, self.engine.health, table)
        return want == table.only(want.services)

    def table(self) -> list[str]:
        """The kernel table, one ``service dest weight`` line per entry."""
        lines = []
        for vs in self.backend.table:
            lines.append(str(vs.key))
            dests = sorted(vs.dests.values(), key=lambda d: d.key.sort_key)
            lines += [f"  {d.key} w{d.weight}" for d in dests]
        return lines
