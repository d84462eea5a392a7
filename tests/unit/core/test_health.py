"""The health state machine, table-driven: sequences of results in, statuses and events out.

Only soft failures and their reset are events here: whether a real went in or out of the table
is what the kernel was told (tests/unit/core/test_events.py)."""

from __future__ import annotations

from ipaddress import ip_address

import pytest

from ldirector.core.events import EventKind
from ldirector.core.health import (
    CheckKind,
    CheckMode,
    Event,
    Policy,
    RealHealth,
    Rotation,
    Status,
    fallback_switch,
    initial,
    maintenance_match,
    maintenance_names,
    serving,
    step,
)

UP, DOWN, UNKNOWN = Status.UP, Status.DOWN, Status.UNKNOWN
K = EventKind


def run(
    policy: Policy, start: RealHealth, results: str
) -> list[tuple[Status, tuple[EventKind, ...]]]:
    """Feed results ('+' ok, '-' failed, 'm' forced maintenance) and record each outcome."""
    health, out = start, []
    for r in results:
        health, events = step(health, r == "+", f"r{r}", policy, forced=r == "m")
        out.append((health.status, tuple(e.kind for e in events)))
    return out


@pytest.mark.parametrize(
    ("policy", "start", "results", "expected"),
    [
        # failurecount=1: one failure takes an up real down; one success brings it back.
        (Policy(), RealHealth(status=UP), "-+", [(DOWN, ()), (UP, ())]),
        # failurecount=3: two soft failures, the third takes it down; more failures are quiet.
        (
            Policy(failurecount=3),
            RealHealth(status=UP),
            "----",
            [
                (UP, (K.SOFT_FAILURE,)),
                (UP, (K.SOFT_FAILURE,)),
                (DOWN, ()),
                (DOWN, ()),
            ],
        ),
        # one success between failures resets the count.
        (
            Policy(failurecount=2),
            RealHealth(status=UP),
            "-+-+",
            [
                (UP, (K.SOFT_FAILURE,)),
                (UP, (K.RESET_SOFT_FAILURE,)),
                (UP, (K.SOFT_FAILURE,)),
                (UP, (K.RESET_SOFT_FAILURE,)),
            ],
        ),
        # never-up real: failures do not count softly, and the first pass brings it up.
        (
            Policy(failurecount=3),
            RealHealth(),
            "--+",
            [(DOWN, ()), (DOWN, ()), (UP, ())],
        ),
        # maintenance bypasses failurecount.
        (
            Policy(failurecount=5),
            RealHealth(status=UP),
            "mm+",
            [(DOWN, ()), (DOWN, ()), (UP, ())],
        ),
        # maintenance in the middle of soft failures.
        (
            Policy(failurecount=3),
            RealHealth(status=UP),
            "-m",
            [(UP, (K.SOFT_FAILURE,)), (DOWN, ())],
        ),
        # soft failures, then down: coming back resets nothing (the count went with the real).
        (
            Policy(failurecount=2),
            RealHealth(status=UP),
            "--+",
            [(UP, (K.SOFT_FAILURE,)), (DOWN, ()), (UP, ())],
        ),
        # steady up: no events at all.
        (Policy(), RealHealth(status=UP), "+++", [(UP, ())] * 3),
        # checktype on/off: results are ignored.
        (Policy(mode=CheckMode.ON), RealHealth(status=UP), "-m", [(UP, ())] * 2),
        (Policy(mode=CheckMode.OFF), RealHealth(status=DOWN), "++", [(DOWN, ())] * 2),
    ],
)
def test_sequences(
    policy: Policy,
    start: RealHealth,
    results: str,
    expected: list[tuple[Status, tuple[EventKind, ...]]],
) -> None:
    assert run(policy, start, results) == expected


def test_soft_failure_counts_and_reset_carry_numbers() -> None:
    policy = Policy(failurecount=3)
    h, ev = step(RealHealth(status=UP), False, "HTTP 503", policy)
    assert ev == (Event(kind=K.SOFT_FAILURE, reason="HTTP 503", failures=1, failurecount=3),)
    h, ev = step(h, False, "HTTP 503", policy)
    assert ev[0].failures == 2 and h.failures == 2
    h, ev = step(h, True, "HTTP 200 OK", policy)
    assert ev == (
        Event(kind=K.RESET_SOFT_FAILURE, reason="HTTP 200 OK", failures=2, failurecount=3),
    )
    assert h == RealHealth(status=UP, reason="HTTP 200 OK")


@pytest.mark.parametrize(
    ("policy", "weight", "status"),
    [
        (Policy(), 5, UP),  # serving in the kernel: stays up, no start flap
        (Policy(), 0, UNKNOWN),  # quiesced in the kernel: waits for a check
        (Policy(), None, UNKNOWN),  # absent: added only once a check passes
        (Policy(mode=CheckMode.ON), None, UP),
        (Policy(mode=CheckMode.OFF), 5, DOWN),  # off never serves, even if found up
        (Policy(mode=CheckMode.OFF), 0, DOWN),
    ],
)
def test_initial(policy: Policy, weight: int | None, status: Status) -> None:
    assert initial(policy, weight).status is status


def test_seeded_up_real_keeps_failurecount() -> None:
    # A real found serving at start is up: one failure with failurecount=2 is only soft.
    h = initial(Policy(failurecount=2), 3)
    h, ev = step(h, False, "refused", Policy(failurecount=2))
    assert h.status is UP and ev[0].kind is K.SOFT_FAILURE


@pytest.mark.parametrize(
    ("mode", "before", "after", "expected"),
    [
        (CheckMode.CHECK, True, False, True),
        (CheckMode.CHECK, False, True, False),
        (CheckMode.CHECK, True, True, None),
        (CheckMode.CHECK, False, False, None),
        (CheckMode.OFF, True, False, None),
    ],
)
def test_fallback_switch(mode: CheckMode, before: bool, after: bool, expected: bool | None) -> None:
    assert fallback_switch(Policy(mode=mode), before, after) is expected


def test_serving() -> None:
    assert not serving([])
    assert not serving([RealHealth(), RealHealth(status=DOWN)])
    assert serving([RealHealth(), RealHealth(status=UP)])


def kinds(rotation: Rotation, results: str) -> str:
    """The kinds of check run for results ('+'/'-'), as a string of 'n' and 'c'."""
    out = []
    for r in results:
        kind = rotation.next_kind
        out.append("n" if kind is CheckKind.NEGOTIATE else "c")
        rotation = rotation.after(kind, r == "+")
    return "".join(out)


@pytest.mark.parametrize(
    ("connects", "results", "expected"),
    [
        (2, "+++++++", "nccnccn"),  # the observed sequence for checktype=2
        (2, "++-++", "nccnc"),  # a failed connect forces a negotiate next
        (2, "-+++", "nncc"),  # a failed negotiate is retried as a negotiate
        (0, "++++", "nnnn"),  # N=0: always negotiate
        (1, "+++", "ncn"),
    ],
)
def test_rotation(connects: int, results: str, expected: str) -> None:
    assert kinds(Rotation(connects), results) == expected


@pytest.mark.parametrize(
    ("address", "port", "fqdn", "expected"),
    [
        ("10.0.0.2", 80, None, ("10.0.0.2:80", "10.0.0.2")),
        (
            "10.0.0.2",
            80,
            "web1.example.org.",
            (
                "10.0.0.2:80",
                "10.0.0.2",
                "web1.example.org:80",
                "web1.example.org",
                "web1:80",
                "web1",
            ),
        ),
        # the short form only exists for lower-case names of two characters or more
        (
            "10.0.0.2",
            80,
            "W.example.org",
            ("10.0.0.2:80", "10.0.0.2", "W.example.org:80", "W.example.org"),
        ),
        ("2001:db8::1", 443, None, ("[2001:db8::1]:443", "[2001:db8::1]")),
        ("10.0.0.2", 80, "localhost", ("10.0.0.2:80", "10.0.0.2", "localhost:80", "localhost")),
    ],
)
def test_maintenance_names(
    address: str, port: int, fqdn: str | None, expected: tuple[str, ...]
) -> None:
    assert maintenance_names(ip_address(address), port, fqdn) == expected


def test_maintenance_match_picks_most_specific() -> None:
    names = maintenance_names(ip_address("10.0.0.2"), 80, "web1.example.org")
    assert maintenance_match(names, {"web1", "10.0.0.2"}) == "10.0.0.2"
    assert maintenance_match(names, {"web1"}) == "web1"
    assert maintenance_match(names, {"10.0.0.2:8080", "web2"}) is None


def test_a_repeated_result_keeps_the_same_object() -> None:
    # 10,000 reals checked every few seconds: an unchanged state must not churn the heap.
    policy = Policy(failurecount=3)
    up = RealHealth(status=UP, reason="HTTP 200 OK")
    assert step(up, True, "HTTP 200 OK", policy) == (up, ())
    assert step(up, True, "HTTP 200 OK", policy)[0] is up
    moved, _ = step(up, True, "HTTP 204 No Content", policy)
    assert moved == RealHealth(status=UP, reason="HTTP 204 No Content")
    down = RealHealth(status=DOWN, reason="refused")
    assert step(down, False, "refused", policy)[0] is down
    assert step(down, False, "timed out", policy)[0] == RealHealth(status=DOWN, reason="timed out")
    # Still counting failures: a success resets them, with its event.
    soft = RealHealth(status=UP, failures=1, reason="HTTP 200 OK")
    back, events = step(soft, True, "HTTP 200 OK", policy)
    assert back == up and [e.kind for e in events] == [K.RESET_SOFT_FAILURE]


def test_rise_holds_a_down_real_until_enough_consecutive_successes() -> None:
    policy = Policy(failurecount=1, rise=3)
    h = RealHealth(status=Status.DOWN, reason="connection refused")
    h, _ = step(h, True, "HTTP 200 OK", policy)
    assert (h.status, h.successes) == (Status.DOWN, 1)
    h, _ = step(h, True, "HTTP 200 OK", policy)
    assert (h.status, h.successes) == (Status.DOWN, 2)
    h, events = step(h, True, "HTTP 200 OK", policy)
    assert (h.status, h.successes, events) == (Status.UP, 0, ())


def test_a_failure_restarts_the_rise_count() -> None:
    policy = Policy(rise=2)
    h = RealHealth(status=Status.DOWN, reason="connection refused")
    h, _ = step(h, True, "ok", policy)
    h, _ = step(h, False, "connection refused", policy)
    assert (h.status, h.successes) == (Status.DOWN, 0)
    h, _ = step(h, True, "ok", policy)
    assert h.status is Status.DOWN
    h, _ = step(h, True, "ok", policy)
    assert h.status is Status.UP


def test_rise_does_not_delay_a_real_never_seen_up() -> None:
    h, _ = step(RealHealth(), True, "ok", Policy(rise=5))
    assert h.status is Status.UP
