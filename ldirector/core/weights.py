"""Slow start and dynamic weights: the weight a serving real gets, never above its configured one.

A real that comes up (or back) under ``slowstart`` enters at weight 1 and climbs in step with the
time it has been up, so a least-connection scheduler does not send it every new connection
because it has none. A real whose check reports a weight (``dynamicweight``) gets that weight,
bounded by the configured one. Every change after the first is damped: at most one per real per
check interval. Pure: the engine keeps the states and says what time it is.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

from checks.types import Weight


@dataclass(frozen=True, slots=True)
class Setting:
    """What the config says about one real's weight."""

    configured: int
    #: Seconds the ramp lasts; 0: no slow start.
    slowstart: float = 0.0
    #: Least seconds between two changes of the weight (the virtual's check interval).
    interval: float = 0.0


@dataclass(frozen=True, slots=True)
class WeightState:
    """One serving real's weight while it differs, or may come to differ, from the configured."""

    #: The weight in force.
    weight: int
    #: When ``weight`` last changed (clock seconds).
    changed: float
    #: When the real came up, while it ramps; None once the ramp is over or without one.
    up_since: float | None = None
    #: The weight the real last asked for; None: its configured weight.
    asked: Weight | None = None


def bounded(configured: int, asked: Weight | None) -> int:
    """The weight a real asked for, within 0 and its configured weight."""
    if asked is None:
        return configured
    value = configured * asked.value // 100 if asked.percent else asked.value
    return max(0, min(configured, value))


def ramp_share(elapsed: float, slowstart: float) -> float:
    """The share of its weight a real has after ``elapsed`` seconds of a ``slowstart`` ramp."""
    if slowstart <= 0 or elapsed >= slowstart:
        return 1.0
    return max(0.0, elapsed) / slowstart


def wanted(setting: Setting, state: WeightState, now: float) -> int:
    """The weight the real should have now: what it asked for, scaled by its ramp."""
    base = bounded(setting.configured, state.asked)
    if state.up_since is None or base == 0:
        return base
    share = ramp_share(now - state.up_since, setting.slowstart)
    return max(1, min(base, math.ceil(base * share)))


def came_up(setting: Setting, asked: Weight | None, now: float) -> WeightState | None:
    """The state of a real that just came up: at the ramp's first weight at once (no damping,
    so it never enters at full weight first); None when nothing holds it below its weight."""
    ramping = setting.slowstart > 0 and setting.configured > 0
    if not ramping and asked is None:
        return None
    start = WeightState(weight=setting.configured, changed=now, asked=asked)
    if ramping:
        start = replace(start, up_since=now)
    return replace(start, weight=wanted(setting, start, now))


def step(setting: Setting, state: WeightState, now: float) -> WeightState | None:
    """The state after time has passed; None once the real is back at its configured weight
    for good (no ramp left, nothing asked)."""
    want = wanted(setting, state, now)
    if want != state.weight and now - state.changed >= setting.interval:
        state = replace(state, weight=want, changed=now)
    ramped = state.up_since is not None and now - state.up_since >= setting.slowstart
    if ramped and state.weight == want:
        state = replace(state, up_since=None)
    if state.up_since is None and state.asked is None and state.weight == setting.configured:
        return None
    return state


def ask(state: WeightState | None, setting: Setting, asked: Weight | None) -> WeightState | None:
    """Record the weight a serving real asked for; the change itself waits for :func:`step`."""
    if state is None:
        if asked is None:
            return None
        # Steady at its configured weight until now: the first change is not damped.
        return WeightState(weight=setting.configured, changed=-math.inf, asked=asked)
    return state if state.asked == asked else replace(state, asked=asked)
