"""syncd: the sync-daemon planner starts what is missing and stops only what ldirector started."""

from __future__ import annotations

from ldirector.core.syncd import SyncPlan, matches, plan, release
from ldirector.ipvs.sync import DaemonState, SyncDaemon

MASTER, BACKUP = DaemonState.MASTER, DaemonState.BACKUP
M = SyncDaemon(state=MASTER, interface="eth1", syncid=3)
B = SyncDaemon(state=BACKUP, interface="eth1", syncid=3)


def test_nothing_running_starts_every_desired_daemon_and_owns_it() -> None:
    assert plan([M, B], [], set()) == SyncPlan(start=(M, B), ours=frozenset({MASTER, BACKUP}))


def test_our_daemons_as_desired_need_nothing() -> None:
    result = plan([M, B], [M, B], {MASTER, BACKUP})
    assert not result
    assert result.ours == {MASTER, BACKUP}


def test_a_kernel_chosen_maxlen_matches_a_daemon_that_left_it_to_the_kernel() -> None:
    running = SyncDaemon(state=MASTER, interface="eth1", syncid=3, maxlen=1472)
    assert matches(M, running)
    assert not plan([M], [running], {MASTER})
    assert not matches(SyncDaemon(state=MASTER, interface="eth1", syncid=3, maxlen=1000), running)


def test_a_changed_daemon_of_ours_is_stopped_then_started() -> None:
    changed = SyncDaemon(state=MASTER, interface="eth2", syncid=3)
    assert plan([changed, B], [M, B], {MASTER, BACKUP}) == SyncPlan(
        stop=(MASTER,), start=(changed,), ours=frozenset({MASTER, BACKUP})
    )


def test_a_daemon_of_ours_stopped_by_hand_is_started_again() -> None:
    assert plan([M, B], [M], {MASTER, BACKUP}) == SyncPlan(
        start=(B,), ours=frozenset({MASTER, BACKUP})
    )


def test_a_daemon_of_ours_the_config_dropped_is_stopped_and_released() -> None:
    assert plan([M], [M, B], {MASTER, BACKUP}) == SyncPlan(stop=(BACKUP,), ours=frozenset({MASTER}))


def test_a_daemon_ldirector_did_not_start_is_left_alone_and_reported() -> None:
    theirs = SyncDaemon(state=BACKUP, interface="eth0", syncid=9)
    result = plan([M, B], [theirs], set())
    assert result == SyncPlan(start=(M,), foreign=(theirs,), ours=frozenset({MASTER}))


def test_a_foreign_daemon_equal_to_the_config_is_still_not_adopted() -> None:
    result = plan([B], [B], set())
    assert not result
    assert result.foreign == (B,)
    assert result.ours == frozenset()


def test_a_foreign_daemon_the_config_does_not_name_is_neither_touched_nor_reported() -> None:
    assert plan([], [B], set()) == SyncPlan()


def test_a_claim_on_a_vanished_undesired_daemon_is_dropped() -> None:
    assert plan([], [], {MASTER}) == SyncPlan()


def test_release_stops_only_the_running_daemons_ldirector_started() -> None:
    assert release([M, B], {BACKUP}) == (BACKUP,)
    assert release([M], {MASTER, BACKUP}) == (MASTER,)
    assert release([M, B], set()) == ()
