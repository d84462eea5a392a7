"""The collector tuning: thresholds while an engine runs, the old ones back after."""

from __future__ import annotations

import asyncio
import gc
import weakref

from ldirector.daemon.tuning import MIDDLE, OLD, YOUNG, Collector, break_transport_cycles


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


async def test_a_closed_connection_is_freed_without_the_collector() -> None:
    # On 3.11 every transport was a reference cycle (gh-100348): 2,000 checks a second left
    # 2,000 of them, sockets included, for the collector to find.
    break_transport_cycles()
    loop = asyncio.get_running_loop()
    server = await loop.create_server(asyncio.Protocol, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    lost = loop.create_future()

    class Client(asyncio.Protocol):
        def connection_lost(self, exc: Exception | None) -> None:
            lost.set_result(None)

    gc.disable()
    try:
        transport, _ = await loop.create_connection(Client, "127.0.0.1", port)
        gone = weakref.ref(transport)
        transport.close()
        del transport
        await lost
        await asyncio.sleep(0)
        assert gone() is None
    finally:
        gc.enable()
        server.close()
        await server.wait_closed()
