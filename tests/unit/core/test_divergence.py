"""The agreement bookkeeping of shadow mode, driven with made-up times."""

from __future__ import annotations

from ldirector.core.divergence import (
    EPISODES_KEPT,
    Kind,
    Tracker,
    Verdict,
    detection_window,
)

VIP = "tcp:10.0.0.1:80"
REAL = f"{VIP} 10.0.0.3:80"
CAUSE = "kernel holds 10.0.0.3:80 at weight 1; ldirector: down since 12:03:04, refused"


def ok(item: str = REAL) -> Verdict:
    return Verdict(item, True, "", 10.0)


def bad(item: str = REAL, cause: str = CAUSE) -> Verdict:
    return Verdict(item, False, cause, 10.0)


def test_detection_window_is_each_round_times_failurecount() -> None:
    assert detection_window(5, 3, 2) == 16
    assert detection_window(5, 3, 0) == 8  # failurecount 0 still takes one round


def test_short_divergence_is_timing_long_one_disagreement() -> None:
    t = Tracker(started=0)
    t.update([ok()], 0)
    started = t.update([bad()], 5)
    assert [(e.item, e.start, e.end, e.kind) for e in started] == [(REAL, 5, None, Kind.ONGOING)]
    (ended,) = t.update([ok()], 12)  # 7 s <= 10 s tolerance
    assert (ended.kind, ended.end, ended.cause) == (Kind.TIMING, 12, CAUSE)
    t.update([bad()], 20)
    (ended,) = t.update([ok()], 50)  # 30 s > 10 s
    assert ended.kind is Kind.DISAGREEMENT
    report = t.report(60)
    assert (report.timings, report.disagreements) == (1, 1)
    assert [e.kind for e in report.episodes] == [Kind.TIMING, Kind.DISAGREEMENT]
    assert report.agrees


def test_totals_split_time_between_agreement_and_divergence() -> None:
    t = Tracker(started=0)
    t.update([ok()], 0)
    t.update([bad()], 10)
    t.update([bad()], 15)
    t.update([ok()], 40)
    report = t.report(100)
    assert report.agreement_seconds == 10 + 60
    assert report.divergence_seconds == 30


def test_ongoing_episode_turns_disagreement_once_past_tolerance() -> None:
    t = Tracker(started=0)
    t.update([bad()], 0)
    assert t.report(5).episodes[0].kind is Kind.ONGOING
    late = t.report(11)
    assert late.episodes[0].kind is Kind.DISAGREEMENT
    assert late.disagreements == 1 and not late.agrees


def test_item_state_says_since_when_and_why() -> None:
    t = Tracker(started=0)
    t.update([ok(), ok(VIP)], 0)
    t.update([bad(), ok(VIP)], 3)
    t.update([bad(cause="other"), ok(VIP)], 4)
    items = {i.item: i for i in t.report(9).items}
    assert (items[REAL].agrees, items[REAL].since, items[REAL].cause) == (False, 4, "other")
    assert (items[VIP].agrees, items[VIP].since) == (True, 0)
    # The episode keeps its start and tells the latest cause.
    (episode,) = t.report(9).episodes
    assert (episode.start, episode.cause) == (3, "other")


def test_item_gone_from_the_comparison_ends_its_episode() -> None:
    t = Tracker(started=0)
    t.update([bad()], 0)
    (ended,) = t.update([], 4)
    assert (ended.item, ended.end, ended.kind) == (REAL, 4, Kind.TIMING)
    assert t.report(5).items == ()


def test_episodes_kept_are_bounded() -> None:
    t = Tracker(started=0)
    for n in range(EPISODES_KEPT + 50):
        t.update([bad()], 2 * n)
        t.update([ok()], 2 * n + 1)
    report = t.report(10_000)
    assert len(report.episodes) == EPISODES_KEPT
    assert report.timings == EPISODES_KEPT + 50  # the totals keep counting
