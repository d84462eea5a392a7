"""Agreement between the table another manager keeps and the one ldirector wants, over time.

Pure bookkeeping for shadow mode: at each comparison the caller hands :class:`Tracker` one
:class:`Verdict` per virtual and per real (does the kernel hold what ldirector wants, and if not,
why), with the time; the tracker keeps since when each item agrees or not, the totals of time
in agreement and in divergence, and each divergence episode with its start, end and cause.

Two managers checking the same servers see a change at different moments: each needs up to its
detection window (``(checkinterval + checktimeout) * failurecount``) to act on it. A divergence
no longer than the two windows together is therefore reported as timing, not as disagreement.
"""

from __future__ import annotations

import enum
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field

#: Episodes kept for the report (the oldest are dropped first; the totals keep counting).
EPISODES_KEPT = 200


def detection_window(checkinterval: float, checktimeout: float, failurecount: int) -> float:
    """Longest time one manager may take to act on a change of a real's health."""
    return (checkinterval + checktimeout) * max(1, failurecount)


class Kind(enum.StrEnum):
    """What a divergence episode turned out to be."""

    ONGOING = "ongoing"  # not over, and not yet longer than the tolerance
    TIMING = "timing"  # over within the two managers' detection windows
    DISAGREEMENT = "disagreement"  # longer than the windows: the managers really differ


@dataclass(frozen=True, slots=True)
class Verdict:
    """One item (a virtual or one of its reals) compared at one instant."""

    item: str
    agrees: bool
    #: Why not, in words ("" when it agrees).
    cause: str = ""
    #: How long a divergence of this item may last and still count as timing.
    tolerance: float = 0.0


@dataclass(frozen=True, slots=True)
class Episode:
    item: str
    start: float
    end: float | None
    cause: str
    kind: Kind

    def duration(self, now: float) -> float:
        return (self.end if self.end is not None else now) - self.start


@dataclass(frozen=True, slots=True)
class ItemState:
    item: str
    agrees: bool
    since: float
    cause: str


@dataclass(frozen=True, slots=True)
class Report:
    """The comparison so far, at ``now``."""

    now: float
    agrees: bool
    items: tuple[ItemState, ...]
    agreement_seconds: float
    divergence_seconds: float
    episodes: tuple[Episode, ...]
    #: Episodes that were disagreements, and those that were timing (ended ones).
    disagreements: int = 0
    timings: int = 0


@dataclass(slots=True)
class _Open:
    start: float
    cause: str
    tolerance: float


@dataclass(slots=True)
class Tracker:
    """Keeps the agreement of each item over time; feed it with :meth:`update`."""

    started: float
    _since: dict[str, tuple[bool, float, str]] = field(default_factory=dict)
    _open: dict[str, _Open] = field(default_factory=dict)
    _closed: deque[Episode] = field(default_factory=lambda: deque(maxlen=EPISODES_KEPT))
    _last: float | None = None
    _all_agree: bool = True
    _agree_s: float = 0.0
    _diverge_s: float = 0.0
    _disagreements: int = 0
    _timings: int = 0

    def update(self, verdicts: Iterable[Verdict], now: float) -> list[Episode]:
        """Record one comparison; return the episodes it started or ended (for the log).

        An item no longer compared (its virtual left the config) ends its episode.
        """
        if self._last is not None:
            spent = max(0.0, now - self._last)
            if self._all_agree:
                self._agree_s += spent
            else:
                self._diverge_s += spent
        self._last = now
        told: list[Episode] = []
        seen: set[str] = set()
        for v in verdicts:
            seen.add(v.item)
            before = self._since.get(v.item)
            if before is None or before[0] != v.agrees or before[2] != v.cause:
                self._since[v.item] = (v.agrees, now, v.cause)
            opened = self._open.get(v.item)
            if v.agrees and opened is not None:
                told.append(self._close(v.item, opened, now))
            elif not v.agrees and opened is None:
                self._open[v.item] = _Open(now, v.cause, v.tolerance)
                told.append(Episode(v.item, now, None, v.cause, Kind.ONGOING))
            elif not v.agrees and opened is not None:
                opened.cause = v.cause  # the latest reason is the one worth telling
        for item in [i for i in self._since if i not in seen]:
            del self._since[item]
            opened = self._open.get(item)
            if opened is not None:
                told.append(self._close(item, opened, now))
        self._all_agree = not self._open
        return told

    def _close(self, item: str, opened: _Open, now: float) -> Episode:
        del self._open[item]
        timing = now - opened.start <= opened.tolerance
        kind = Kind.TIMING if timing else Kind.DISAGREEMENT
        if timing:
            self._timings += 1
        else:
            self._disagreements += 1
        episode = Episode(item, opened.start, now, opened.cause, kind)
        self._closed.append(episode)
        return episode

    def report(self, now: float) -> Report:
        spent = max(0.0, now - self._last) if self._last is not None else 0.0
        agree_s = self._agree_s + (spent if self._all_agree else 0.0)
        diverge_s = self._diverge_s + (0.0 if self._all_agree else spent)
        ongoing = tuple(
            Episode(
                item,
                o.start,
                None,
                o.cause,
                Kind.DISAGREEMENT if now - o.start > o.tolerance else Kind.ONGOING,
            )
            for item, o in self._open.items()
        )
        items = tuple(ItemState(i, a, s, c) for i, (a, s, c) in self._since.items())
        return Report(
            now=now,
            agrees=not self._open,
            items=items,
            agreement_seconds=agree_s,
            divergence_seconds=diverge_s,
            episodes=(*self._closed, *ongoing),
            disagreements=self._disagreements + sum(e.kind is Kind.DISAGREEMENT for e in ongoing),
            timings=self._timings,
        )
