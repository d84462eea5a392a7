"""The collector tuning: thresholds while an engine runs, the old ones back after."""

from __future__ import annotations

import gc
import weakref

from ldirector.engine.heap import MIDDLE, OLD, YOUNG, Collector


def test_settle_tunes_freezes_and_restore_gives_the_thresholds_back() -> None:
    before = gc.get_threshold()
    collector = Collector()
    try:
        collector.settle()
        assert gc.get_threshold() == (YOUNG, MIDDLE, OLD)
        assert gc.get_freeze_count() > 0
        collector.settle()  # a reload: thaw, collect, freeze again; thresholds kept
        assert gc.get_threshold() == (YOUNG, MIDDLE, OLD) and gc.get_freeze_count() > 0
    finally:
        collector.restore()
    assert gc.get_threshold() == before
    collector.restore()  # twice is harmless
    assert gc.get_threshold() == before


def test_a_cycle_frozen_by_one_settle_is_collected_by_the_next() -> None:
    class Node:
        other: object = None

    collector = Collector()
    try:
        a, b = Node(), Node()
        a.other, b.other = b, a
        gone = weakref.ref(a)
        collector.settle()
        del a, b
        gc.collect()
        assert gone() is not None  # frozen: invisible to the collector
        collector.settle()  # a reload: the old config's cycles must not stay frozen forever
        assert gone() is None
    finally:
        collector.restore()
