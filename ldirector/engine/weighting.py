"""The weights of serving reals while they ramp up (slow start) or follow what they asked for
(dynamic weights), kept across reloads and stepped by the engine's clock.

The rules are ``ldirector.core.weights``; this holds one state per real, feeds it the reals'
transitions and check results, and says which services' weights moved so the engine reconciles
just those. Reals held by an operator are left to the holds: ``desired`` gives a held real
weight 0 or no entry whatever is here.
"""

from __future__ import annotations

from collections.abc import Mapping

from checks.types import Weight
from ldirector.config.model import Real, Virtual
from ldirector.core import weights
from ldirector.core.desired import RealKey
from ldirector.core.weights import Setting, WeightState
from ldirector.ipvs.types import ServiceKey

#: Seconds between two steps of the ramps; a real's weight still changes at most once per
#: check interval.
TICK = 1.0

Reals = Mapping[RealKey, tuple[Virtual, Real]]


def setting(virtual: Virtual, real: Real) -> Setting:
    """What the config says about a real's weight."""
    return Setting(real.weight, virtual.slowstart, virtual.checkinterval)


class Weighting:
    """Per real: the weight in force below its configured one, if any."""

    def __init__(self) -> None:
        self.states: dict[RealKey, WeightState] = {}
        #: The weights ``desired`` applies: a copy of each state's weight.
        self.weights: dict[RealKey, int] = {}

    def _set(self, key: RealKey, state: WeightState | None) -> bool:
        """Store ``state``; True when the weight in force changed."""
        before = self.weights.get(key)
        if state is None:
            self.states.pop(key, None)
            self.weights.pop(key, None)
            return before is not None
        self.states[key] = state
        self.weights[key] = state.weight
        return before != state.weight

    def came_up(self, key: RealKey, virtual: Virtual, real: Real, now: float) -> None:
        """A real came up (or back): it enters at the ramp's first weight."""
        old = self.states.get(key)
        self._set(key, weights.came_up(setting(virtual, real), old.asked if old else None, now))

    def went_down(self, key: RealKey) -> None:
        """A real is no longer up: a ramp starts again when it comes back."""
        old = self.states.get(key)
        kept = old.asked if old else None
        self._set(key, None)
        if kept is not None:  # what it asked for still holds when it comes back
            self.states[key] = WeightState(weight=0, changed=float("-inf"), asked=kept)

    def asked(self, key: RealKey, virtual: Virtual, real: Real, weight: Weight | None) -> None:
        """A passing check of a real reported the weight it wants (None: its configured one)."""
        state = weights.ask(self.states.get(key), setting(virtual, real), weight)
        if state is not None:  # the weight in force moves at the next tick, damped
            self.states[key] = state

    def tick(self, reals: Reals, up: Mapping[RealKey, bool], now: float) -> set[ServiceKey]:
        """Step every state; return the services whose weights changed."""
        moved: set[ServiceKey] = set()
        for key, state in list(self.states.items()):
            if key not in reals:  # gone with a reload
                self._set(key, None)
                continue
            if not up.get(key, False):
                continue  # down: kept for when it comes back, nothing in force
            if self._set(key, weights.step(setting(*reals[key]), state, now)):
                moved.add(key.service)
        return moved

    def forget(self, reals: Reals) -> None:
        """Drop the reals a reload removed; the others keep their ramps."""
        for key in [k for k in self.states if k not in reals]:
            self._set(key, None)
