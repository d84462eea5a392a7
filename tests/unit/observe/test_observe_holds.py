"""Operator holds in the desired table: disabled is out, draining is weight 0, neither is up."""

from __future__ import annotations

from observe_world import R2, R3, config

from ldirector.desired import desired_table, real_key
from ldirector.engine.layout import Layout
from ldirector.health import RealHealth, Status
from ldirector.ipvs.types import IpvsTable

TEXT = """\
fallback=127.0.0.1:80 gate
virtual=127.0.0.100:80
	real=127.0.0.2:8080 masq 5
	real=127.0.0.3:8080 masq 2
	service=http
	quiescent={quiescent}
"""
UP = {R2: RealHealth(status=Status.UP), R3: RealHealth(status=Status.UP)}


def weights(table: IpvsTable) -> dict[str, int]:
    (vs,) = list(table)
    return {str(k): d.weight for k, d in vs.dests.items()}


def test_no_holds_is_todays_table() -> None:
    cfg = config(TEXT.format(quiescent="no"))
    assert desired_table(cfg, UP, IpvsTable(), {}) == desired_table(cfg, UP, IpvsTable())


def test_disabled_is_out_even_when_quiescent() -> None:
    for quiescent in ("yes", "no"):
        cfg = config(TEXT.format(quiescent=quiescent))
        table = desired_table(cfg, UP, IpvsTable(), {R3: "disabled"})
        assert weights(table) == {"127.0.0.2:8080": 5}


def test_draining_is_weight_zero_and_not_up() -> None:
    cfg = config(TEXT.format(quiescent="no"))
    assert weights(desired_table(cfg, UP, IpvsTable(), {R2: "draining"})) == {
        "127.0.0.2:8080": 0,
        "127.0.0.3:8080": 2,
    }
    # Nothing left serving: the fallback comes in beside the draining real.
    holds = {R2: "draining", R3: "disabled"}
    assert weights(desired_table(cfg, UP, IpvsTable(), holds)) == {
        "127.0.0.2:8080": 0,
        "127.0.0.1:80": 1,
    }


def test_draining_a_down_real_leaves_it_out() -> None:
    cfg = config(TEXT.format(quiescent="no"))
    health = {R2: RealHealth(status=Status.DOWN), R3: RealHealth(status=Status.UP)}
    assert weights(desired_table(cfg, health, IpvsTable(), {R2: "draining"})) == {
        "127.0.0.3:8080": 2
    }


def test_cached_layout_follows_holds() -> None:
    cfg = config(TEXT.format(quiescent="yes"))
    reals = {real_key(v, r): (v, r) for v in cfg.virtuals for r in v.reals}
    layout = Layout(cfg, reals)
    for holds in ({}, {R2: "draining"}, {R2: "disabled"}, {}, {R3: "draining", R2: "disabled"}):
        want = desired_table(cfg, UP, IpvsTable(), holds)
        assert layout.desired(UP, IpvsTable(), holds) == want
