"""A director pair fails over under load: VRRP moves the VIP, the sync daemons keep connections.

Two NAT directors, each running ``ldirector`` with ``examples/pair.cf`` and keepalived (VRRP
only) with ``contrib/keepalived-pair.conf``, a client and two echo reals, all in namespaces of
the VM (tests/kernel/pairrig.py draws the network). The client holds 50 long-lived connections
through the VIP, each exchanging a line every 100 ms, and opens five short connections a
second. The bar, with the sync daemons: across a failover (the active director's keepalived
stopped) and a failback (the then active director's links pulled), every long-lived connection
keeps exchanging data, with no reset and no stall longer than that failover's time plus 1 s,
and every short request started after the VIP moved succeeds. Without the sync daemons the
same failover breaks the connections, so the bar can fail. The figures are printed and
written to artifacts/kernel/pair.txt.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from .pairrig import (
    DIRECTORS,
    Client,
    Pair,
    Report,
    record,
    running,
    set_links,
    start_client,
    wait_vip,
)

pytestmark = pytest.mark.kernel

CONNS = 50
PERIOD = 0.1
RATE = 5.0
#: How long the test watches after the VIP moved before it reads the client's report.
SETTLE = 4.0
#: The stall allowed beyond the measured failover time.
SLACK = 1.0


@pytest.fixture(scope="module")
def pair(vm: None, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Pair]:
    pycache = tmp_path_factory.getbasetemp() / "pycache"
    with running(tmp_path_factory.mktemp("pair"), pycache) as built:
        yield built


def warm(pair: Pair, want: int, timeout: float = 60.0) -> int:
    """Wait until director2 (the standby) knows ``want`` established client connections."""
    standby = pair.ldirector["director2"]
    deadline = time.monotonic() + timeout
    while (known := standby.connections()) < want and time.monotonic() < deadline:
        time.sleep(0.25)
    return known


def failover(pair: Pair, client: Client, how: str, to: str) -> tuple[float, float, Report]:
    """Fail the active director ``how`` (``keepalived`` stopped, or ``link`` pulled), wait
    for ``to`` to hold the VIP and for things to settle; returns when the failure began, the
    failover time and the client's report of that window."""
    client.report()  # a fresh window
    active = next(n for n in DIRECTORS if n != to)
    began = time.monotonic()
    if how == "keepalived":
        pair.keepalived[active].stop()
    else:
        set_links(active, False)
    moved = wait_vip(to)
    time.sleep(SETTLE)
    return began, moved - began, client.report()


def judge(name: str, report: Report, moved: float, took: float) -> list[str]:
    """Record one failover's figures; return what misses the bar."""
    bar = took + SLACK
    sent, failed = report.requests_after(moved)
    errors = report.errors()
    record(
        f"{name}: failover {took:.2f} s; {report.echoed()}/{len(report.conns)} long-lived "
        f"connections exchanged data, {len(errors)} reset, {report.stalled(bar)} stalled "
        f"> {bar:.2f} s; longest stall {report.longest_gap():.2f} s; new requests after the "
        f"move {sent - len(failed)}/{sent} ok"
    )
    return report.misses(name, bar, moved, CONNS)


def test_vrrp_failover_and_failback_keep_every_connection(pair: Pair) -> None:
    pair.prepare(sync=True)
    client = start_client(CONNS, PERIOD, RATE)
    try:
        known = warm(pair, CONNS)
        record(f"sync: the standby knew {known} of {CONNS} connections before the failover")
        assert known >= CONNS, "the sync daemon did not copy the connections to the standby"

        # Failover: director1's keepalived stops (priority 0: director2 takes over at once).
        began, took, report = failover(pair, client, "keepalived", "director2")
        problems = judge("sync failover (keepalived stopped)", report, began + took, took)
        pair.keepalived["director1"].start()
        pair.keepalived["director1"].wait_state("BACKUP")  # nopreempt: it stays backup
        assert wait_vip("director1", held=False)

        # Failback: director2's links are pulled; director1 takes over after 3 adverts + skew.
        warm_back = pair.ldirector["director1"].connections()
        began, took, report = failover(pair, client, "link", "director1")
        problems += judge("sync failback (links down)", report, began + took, took)
        set_links("director2", True)
        pair.keepalived["director2"].wait_state("BACKUP")
        wait_vip("director2", held=False)
        time.sleep(1.0)
        final = client.report()
        record(
            f"sync: director1 knew {warm_back} connections at the failback; after both moves "
            f"{final.echoed()}/{CONNS} connections still exchange data, "
            f"{len(final.errors())} reset"
        )
        problems += [f"after both moves: {e}" for e in final.errors()]
        if final.echoed() != CONNS:
            problems.append(f"after both moves only {final.echoed()} connections exchange data")
    finally:
        client.stop()
    assert not problems, problems


def test_without_sync_daemons_a_failover_breaks_connections(pair: Pair) -> None:
    pair.prepare(sync=False)
    client = start_client(CONNS, PERIOD, RATE)
    try:
        time.sleep(2.0)
        # Sync daemons stopped, director2 knows none of these connections.
        assert not pair.ldirector["director2"].daemons()
        began, took, report = failover(pair, client, "keepalived", "director2")
        bar = took + SLACK
        broken = len(report.errors()) + report.stalled(bar)
        record(
            f"no sync failover (keepalived stopped): failover {took:.2f} s; "
            f"{len(report.errors())} of {CONNS} connections reset, {report.stalled(bar)} "
            f"stalled > {bar:.2f} s; errors {sorted(set(report.errors()))[:2]}"
        )
        sent, failed = report.requests_after(began + took)
        record(f"no sync: new requests after the move {sent - len(failed)}/{sent} ok")
    finally:
        client.stop()
        pair.keepalived["director1"].start()
    # The bar fails: every connection the new director did not know is lost.
    assert broken >= CONNS * 0.9, f"only {broken} of {CONNS} connections broke without sync"
    assert not failed, f"new connections failed too: {failed[:3]}"
