"""The engine's index of a config: each virtual with its service key and its reals' keys, and
the desired table computed from it incrementally.

Sits between the engine and ``desired``: the result always equals
``desired.desired_table(config, health, actual)``, but only virtuals whose inputs changed are
recomputed, which keeps a reconcile of a 10,000-real table to a few milliseconds.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass

from ldirector.config.model import Config, Real, Virtual
from ldirector.core.desired import (
    NO_HOLDS,
    NO_WEIGHTS,
    HealthMap,
    HoldMap,
    RealKey,
    WeightMap,
    real_key,
    service_key,
    virtual_service,
)
from ldirector.core.health import Status
from ldirector.ipvs.types import IpvsTable, ServiceKey, VirtualService


@dataclass(frozen=True, slots=True)
class LaidOut:
    """One virtual, its kernel key, and the keys of the reals it owns (config order)."""

    virtual: Virtual
    key: ServiceKey
    reals: tuple[RealKey, ...]
    #: The key of every real in config order, duplicates included (``virtual_service``).
    every: tuple[RealKey, ...]


class Layout:
    """A config indexed for the engine, with a per-virtual cache of the desired state."""

    def __init__(self, config: Config, reals: Mapping[RealKey, tuple[Virtual, Real]]) -> None:
        self.readdquiescent = config.readdquiescent
        self.virtuals: list[LaidOut] = []
        for virtual in config.virtuals:
            every = tuple(real_key(virtual, r) for r in virtual.reals)
            # A real the kernel cannot tell from another belongs to the first one (desired).
            own = dict.fromkeys(k for k in every if reals[k][0] is virtual)
            self.virtuals.append(LaidOut(virtual, service_key(virtual), tuple(own), every))
        self._cache: dict[ServiceKey, tuple[object, VirtualService]] = {}

    def virtual_of(self, key: ServiceKey) -> Virtual | None:
        """The virtual that owns this service, if the config has it."""
        return next((laid.virtual for laid in self.virtuals if laid.key == key), None)

    def desired(
        self,
        health: HealthMap,
        actual: IpvsTable,
        holds: HoldMap = NO_HOLDS,
        *,
        only: Collection[ServiceKey] | None = None,
        weights: WeightMap = NO_WEIGHTS,
    ) -> IpvsTable:
        """``desired_table`` for this config, recomputing only virtuals whose inputs changed.

        ``only``: the table of just these services (those configured).
        """
        readd = self.readdquiescent
        services: dict[ServiceKey, VirtualService] = {}
        for laid in self.virtuals:
            if only is not None and laid.key not in only:
                continue
            statuses = tuple(health[k].status for k in laid.reals)
            present: tuple[bool, ...] | None = None
            if laid.virtual.quiescent and not readd:  # only then is the kernel an input
                have = actual.services.get(laid.key)
                dests = have.dests if have else {}
                present = tuple(
                    k.dest in dests
                    for k, status in zip(laid.reals, statuses, strict=True)
                    if status is not Status.UP
                )
            held = tuple(holds.get(k) for k in laid.reals) if holds else ()
            weighed = tuple(weights.get(k) for k in laid.reals) if weights else ()
            signature = (laid.virtual, statuses, present, held, weighed)
            cached = self._cache.get(laid.key)
            if cached is not None and cached[0] == signature:
                vs = cached[1]
            else:
                vs = virtual_service(
                    laid.virtual,
                    health,
                    actual,
                    readdquiescent=readd,
                    keys=laid.every,
                    holds=holds,
                    weights=weights,
                )
                self._cache[laid.key] = (signature, vs)
            services.setdefault(laid.key, vs)
        return IpvsTable.of(*services.values())
