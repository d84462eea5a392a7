"""Layout.desired is desired_table with a cache: equal after any sequence of changes."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from ldirector.core.desired import desired_table
from ldirector.core.health import RealHealth, Status
from ldirector.core.layout import Layout
from ldirector.core.plan import reals_by_key
from ldirector.core.reconcile import diff
from ldirector.ipvs.ops import DelDest
from ldirector.testing import FakeBackend
from tests.support.engine_world import config

TEXT = """\
readdquiescent={readd}
fallback=127.0.0.1:80 gate

virtual=127.0.0.100:80
	real=127.0.0.2:8080 masq 2
	real=127.0.0.3:8080 gate 3
	real=127.0.0.4:8080 masq
	quiescent=yes
	checktype=connect

virtual=127.0.0.101:80
	real=127.0.0.2:8080 masq
	real=127.0.0.5:8080 masq
	quiescent=no
	checktype=connect
"""

STATUSES = st.sampled_from(list(Status))


@settings(max_examples=60, deadline=None)
@given(
    readd=st.booleans(),
    steps=st.lists(
        st.tuples(st.lists(STATUSES, min_size=5, max_size=5), st.integers(0, 4), st.booleans()),
        min_size=1,
        max_size=6,
    ),
)
async def test_cached_desired_equals_desired_table(
    readd: bool, steps: list[tuple[list[Status], int, bool]]
) -> None:
    cfg = config(TEXT.format(readd="yes" if readd else "no"))
    reals = reals_by_key(cfg)
    layout = Layout(cfg, reals)
    backend = FakeBackend()
    keys = list(reals)
    for statuses, victim, delete in steps:
        health = {k: RealHealth(status=s) for k, s in zip(keys, statuses, strict=True)}
        actual = backend.table
        want = desired_table(cfg, health, actual)
        assert layout.desired(health, actual) == want
        for only in ({k} for k in want.services):  # a reconcile of just the services that moved
            assert layout.desired(health, actual, only=only) == want.only(only)
        await backend.apply(diff(want, actual, set(want.services)))
        if delete:  # someone removes a dest by hand: presence is an input too
            key = keys[victim]
            if key.dest in backend.table[key.service].dests:
                backend.apply_one(DelDest(key.service, key.dest))
