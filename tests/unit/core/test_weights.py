"""The slow start ramp and dynamic weights as pure functions of a state and the time."""

from __future__ import annotations

import math

import pytest

from checks.types import Weight
from ldirector.core.weights import (
    Setting,
    WeightState,
    ask,
    bounded,
    came_up,
    ramp_share,
    step,
    wanted,
)


@pytest.mark.parametrize(
    ("asked", "weight"),
    [
        (None, 10),
        (Weight(4), 4),
        (Weight(40), 10),  # never above the configured weight
        (Weight(-3), 0),
        (Weight(75, percent=True), 7),
        (Weight(0, percent=True), 0),
        (Weight(300, percent=True), 10),
    ],
)
def test_bounded(asked: Weight | None, weight: int) -> None:
    assert bounded(10, asked) == weight


def test_ramp_share() -> None:
    assert ramp_share(0, 0) == 1.0  # no slow start
    assert ramp_share(5, 20) == 0.25
    assert ramp_share(25, 20) == 1.0
    assert ramp_share(-1, 20) == 0.0


def test_a_real_enters_at_one_and_climbs_once_per_interval() -> None:
    setting = Setting(configured=10, slowstart=20, interval=5)
    state = came_up(setting, None, 100.0)
    assert state is not None and state.weight == 1
    seen = [state.weight]
    for now in range(101, 131):
        after = step(setting, state, float(now))
        if after is None:
            seen.append(10)
            break
        if after.weight != state.weight:
            assert after.changed - state.changed >= 5
            seen.append(after.weight)
        state = after
    assert seen == [1, 3, 5, 8, 10]


def test_no_slow_start_and_nothing_asked_keeps_no_state() -> None:
    assert came_up(Setting(configured=10), None, 0.0) is None
    assert came_up(Setting(configured=0, slowstart=20), None, 0.0) is None  # weight 0 stays 0


def test_ramp_scales_what_the_real_asked_for() -> None:
    setting = Setting(configured=10, slowstart=10, interval=1)
    state = came_up(setting, Weight(50, percent=True), 0.0)
    assert state is not None and state.weight == 1
    assert wanted(setting, state, 5.0) == math.ceil(5 * 0.5)
    assert wanted(setting, state, 50.0) == 5


def test_asked_changes_are_damped_to_one_per_interval() -> None:
    setting = Setting(configured=10, interval=5)
    state = ask(None, setting, Weight(4))
    assert state is not None and state.weight == 10
    state = step(setting, state, 0.0)  # the first change is not damped
    assert state is not None and state.weight == 4
    state = ask(state, setting, Weight(8))
    assert state is not None
    assert step(setting, state, 3.0) == state  # too soon
    later = step(setting, state, 5.0)
    assert later is not None and later.weight == 8
    back = ask(later, setting, None)
    assert back is not None
    assert step(setting, back, 6.0) == back  # still damped
    assert step(setting, back, 10.0) is None  # at its configured weight for good


def test_ask_nothing_of_a_steady_real_keeps_no_state() -> None:
    assert ask(None, Setting(configured=10), None) is None
    state = WeightState(weight=3, changed=0.0, asked=Weight(3))
    assert ask(state, Setting(configured=10), Weight(3)) is state
