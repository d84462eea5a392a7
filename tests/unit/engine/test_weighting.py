"""Engine scenarios on the fake clock: rise, the slow start ramp (step by step, across a reload,
under an operator's hold) and damped dynamic weights, as the kernel sees them."""

from __future__ import annotations

import itertools
from ipaddress import ip_address
from pathlib import Path

from checks.agent import verdict
from checks.types import Result, Weight
from ldirector.core.desired import RealKey
from ldirector.core.health import Status
from ldirector.engine.weighting import Weighting
from ldirector.ipvs.types import DestKey, InetServiceKey, Protocol
from ldirector.observe.metrics import exposition
from ldirector.observe.render import render_text
from tests.support.engine_world import World, config

SVC = InetServiceKey(Protocol.TCP, ip_address("127.0.0.100"), 80)
A, B = "127.0.0.2:8080", "127.0.0.3:8080"
KEY_B = RealKey(SVC, DestKey(ip_address("127.0.0.3"), 8080))

BASE = """\
checktimeout=3
checkinterval=5
{extra}
virtual=127.0.0.100:80
	real=127.0.0.2:8080 masq 10
	real=127.0.0.3:8080 masq 10
	checktype=connect
	scheduler=wlc
"""


def text(**extra: object) -> str:
    return BASE.format(extra="\n".join(f"{k}={v}" for k, v in extra.items()))


def weight_of(w: World, real: str) -> int | None:
    vs = w.backend.table.services.get(SVC)
    for dest in vs.dests.values() if vs else ():
        if str(dest.key) == real:
            return dest.weight
    return None


async def trace(w: World, real: str, seconds: int) -> list[tuple[int, int | None]]:
    """(second, weight) each time the kernel's weight of ``real`` changes, over ``seconds``."""
    out: list[tuple[int, int | None]] = []
    start = w.clock.now()
    for _ in range(seconds):
        await w.clock.advance(1)
        weight = weight_of(w, real)
        if not out or out[-1][1] != weight:
            out.append((round(w.clock.now() - start), weight))
    return out


async def running(w: World, seconds: float) -> None:
    """Start the engine and let it check for ``seconds``."""
    await w.engine.start()
    await w.clock.advance(0.1)
    await w.clock.advance(seconds)


async def both_up_then_b_fails(w: World) -> None:
    await running(w, 30)  # both came up at start; let their ramps finish
    assert weight_of(w, A) == 10 and weight_of(w, B) == 10
    w.up[B] = False
    await w.clock.advance(10)
    assert weight_of(w, B) is None


async def test_rise_needs_consecutive_successes_before_a_real_is_back(tmp_path: Path) -> None:
    w = World(text(rise=3), tmp_path, up={A: True, B: True})
    await both_up_then_b_fails(w)
    w.up[B] = True
    seen = await trace(w, B, 16)
    # Checks every 5 s: the third consecutive success brings it back, not the first.
    assert [weight for _, weight in seen] == [None, 10]
    assert 10 <= seen[1][0] <= 15
    assert w.engine.health[KEY_B].status is Status.UP
    await w.engine.shutdown()


async def test_rise_count_restarts_after_a_failure(tmp_path: Path) -> None:
    w = World(text(rise=2), tmp_path, up={A: True, B: True})
    await both_up_then_b_fails(w)
    w.up[B] = True
    await w.clock.advance(5)  # one success
    assert w.engine.health[KEY_B].successes == 1
    w.up[B] = False
    await w.clock.advance(5)  # a failure resets the count
    assert w.engine.health[KEY_B].successes == 0
    w.up[B] = True
    await w.clock.advance(5)
    assert weight_of(w, B) is None  # one success again: still out
    await w.clock.advance(5)
    assert weight_of(w, B) == 10
    await w.engine.shutdown()


async def test_default_rise_is_ldirectords_one_success(tmp_path: Path) -> None:
    w = World(text(), tmp_path, up={A: True, B: True})
    await both_up_then_b_fails(w)
    w.up[B] = True
    seen = await trace(w, B, 6)
    assert [weight for _, weight in seen] == [None, 10]


async def test_slow_start_ramps_one_step_per_check_interval(tmp_path: Path) -> None:
    w = World(text(slowstart=20), tmp_path, up={A: True, B: True})
    await both_up_then_b_fails(w)
    w.up[B] = True
    seen = await trace(w, B, 30)
    weights = [weight for _, weight in seen]
    # Enters at 1 (never at full weight first), then ~10 x elapsed / 20, rounded up.
    assert weights == [None, 1, 3, 6, 8, 10]
    times = [t for t, _ in seen[1:]]
    assert all(b - a >= 5 for a, b in itertools.pairwise(times))  # damped
    assert weight_of(w, A) == 10  # the other real is left alone
    assert not w.engine._observed.weighting.states  # nothing left once ramped
    await w.engine.shutdown()


async def test_ramp_is_visible_in_status_and_metrics(tmp_path: Path) -> None:
    w = World(text(slowstart=20), tmp_path, up={A: True, B: True})
    await both_up_then_b_fails(w)
    w.up[B] = True
    await trace(w, B, 2)
    snap = await w.engine.snapshot()
    row = next(line for line in render_text(snap).splitlines() if line.strip().startswith(B))
    assert row.split()[:4] == [B, "up", "1", "of"] and row.split()[4] == "10"
    metrics = exposition(snap).decode()
    labels = f'real="{B}",virtual="tcp:127.0.0.100:80"'
    assert f"ldirector_real_weight{{{labels}}} 1" in metrics
    assert f"ldirector_real_configured_weight{{{labels}}} 10" in metrics
    await w.engine.shutdown()


async def test_ramp_carries_on_across_a_reload(tmp_path: Path) -> None:
    w = World(text(slowstart=20), tmp_path, up={A: True, B: True})
    await both_up_then_b_fails(w)
    w.up[B] = True
    first = await trace(w, B, 13)
    assert [weight for _, weight in first] == [None, 1, 3, 6]
    await w.engine.reload(config(text(slowstart=20, quiescent="no")))
    assert weight_of(w, B) == 6  # not reset to 1, not jumped to 10
    rest = await trace(w, B, 20)
    assert [weight for _, weight in rest] == [6, 8, 10]
    await w.engine.shutdown()


async def test_operator_hold_mid_ramp_is_left_alone(tmp_path: Path) -> None:
    w = World(text(slowstart=20), tmp_path, up={A: True, B: True})
    await both_up_then_b_fails(w)
    w.up[B] = True
    await trace(w, B, 6)
    assert weight_of(w, B) == 1
    w.engine.holds.drain(KEY_B)
    await w.engine.refresh()
    held = await trace(w, B, 20)
    assert [weight for _, weight in held] == [0]  # the ramp never writes over the hold
    w.engine.holds.enable(KEY_B)
    await w.engine.refresh()
    assert weight_of(w, B) == 10  # the ramp's time ran on under the hold
    await w.engine.shutdown()


async def test_dynamic_weights_are_bounded_and_damped(tmp_path: Path) -> None:
    w = World(text(dynamicweight="yes"), tmp_path, up={A: True, B: True})
    await running(w, 10)
    assert weight_of(w, B) == 10
    w.weights[B] = Weight(4)
    seen = await trace(w, B, 6)
    assert [weight for _, weight in seen] == [10, 4]
    # Flapping answers every check: at most one change per check interval.
    changes: list[int | None] = []
    for i in range(6):
        w.weights[B] = Weight(50, percent=True) if i % 2 else Weight(500)
        changes += [weight for _, weight in await trace(w, B, 5)]
    assert set(changes) <= {4, 5, 10}  # 500 is bounded by the configured 10; 50% of 10 is 5
    assert 10 in changes and 5 in changes
    w.weights.pop(B)  # exit 0: the configured weight again
    await trace(w, B, 12)
    assert weight_of(w, B) == 10
    assert not w.engine._observed.weighting.states
    await w.engine.shutdown()


async def test_asked_weight_without_dynamicweight_is_ignored(tmp_path: Path) -> None:
    w = World(text(), tmp_path, up={A: True, B: True})
    w.weights[B] = Weight(3)
    await running(w, 20)
    assert weight_of(w, B) == 10
    await w.engine.shutdown()


def test_weighting_forgets_reals_a_reload_removed() -> None:
    cfg = config(text(slowstart=20))
    virtual = cfg.virtuals[0]
    weighting = Weighting()
    weighting.came_up(KEY_B, virtual, virtual.reals[1], 0.0)
    assert weighting.weights == {KEY_B: 1}
    weighting.forget({})
    assert weighting.weights == {} and weighting.states == {}


AGENT = "127.0.0.3:9999"


def agent_says(w: World, line: str) -> None:
    w.replies[AGENT] = verdict(line)


async def test_agent_weights_and_holds(tmp_path: Path) -> None:
    w = World(text(agentport=9999, agentinterval=5), tmp_path, up={A: True, B: True})
    agent_says(w, "up")
    await running(w, 10)
    assert weight_of(w, B) == 10
    assert any(target == AGENT and kind == "AgentSpec" for _, target, kind in w.calls)
    agent_says(w, "75%")
    await trace(w, B, 6)
    assert weight_of(w, B) == 7  # 75% of 10, rounded down
    agent_says(w, "drain")
    await trace(w, B, 6)
    assert weight_of(w, B) == 0  # kept at weight 0: existing connections carry on
    agent_says(w, "maint")
    await trace(w, B, 6)
    assert weight_of(w, B) is None  # taken out, as an operator's disable does
    assert w.engine.health[KEY_B].status is Status.UP  # the agent never moves health
    w.replies[AGENT] = Result(False, "connection refused")  # unreachable: last word stands
    await trace(w, B, 6)
    assert weight_of(w, B) is None
    agent_says(w, "ready")
    await trace(w, B, 12)
    assert weight_of(w, B) == 10
    assert weight_of(w, A) == 10  # A's agent was never told anything but what World says
    await w.engine.shutdown()


async def test_operator_hold_wins_over_the_agent(tmp_path: Path) -> None:
    w = World(text(agentport=9999, agentinterval=5), tmp_path, up={A: True, B: True})
    agent_says(w, "ready 75%")
    await running(w, 10)
    assert weight_of(w, B) == 7
    w.engine.holds.drain(KEY_B)
    await w.engine.refresh()
    await trace(w, B, 11)
    assert weight_of(w, B) == 0  # the operator's drain, whatever the agent says
    w.engine.holds.enable(KEY_B)
    await w.engine.refresh()
    assert weight_of(w, B) == 7
    await w.engine.shutdown()
