"""A director pair under Pacemaker fails over under load: ``standby`` moves the VIP and gateway.

Two Corosync/Pacemaker nodes from Debian's packages, one per director namespace of the pair
suite's network (tests/kernel/pacemakerrig.py), configured with the shipped
``contrib/pacemaker/crm.txt``: ldirector as a clone through the OCF agent (``examples/pair.cf``
on both, sync daemons included), the VIP and the reals' gateway as one IPaddr2 group. The
client holds 50 long-lived connections through the VIP, each exchanging a line every 100 ms,
and opens five short connections a second. The bar, as for the VRRP pair: across the active
node's standby (failover) and then the other's (failback), every long-lived connection keeps
exchanging data, with no reset and no stall longer than that move's time plus 1 s, and every
short request started after the addresses moved succeeds. A move's time runs from the standby
command until the new node holds both the VIP and the gateway and the reals' neighbour entries
for the gateway name it (IPaddr2 announces an address in the background once it is up, and
until then the reals reply through the old node). The figures are printed and
written to artifacts/kernel/pacemaker.txt.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from .pacemakerrig import Cluster, running
from .pairrig import CLIENT, DIRECTORS, GW, VIP, Client, Report, start_client
from .pairrig import record as record_in

pytestmark = pytest.mark.kernel

CONNS = 50
PERIOD = 0.1
RATE = 5.0
#: How long the test watches after the addresses moved before it reads the client's report:
#: long enough for short requests started after the move to finish under emulation.
SETTLE = 10.0
#: The last window, after both moves.
FINAL = 3.0
#: The stall allowed beyond the measured failover time.
SLACK = 1.0
MOVE_WAIT = 180.0


def record(text: str) -> None:
    """Print a figure and append it to artifacts/kernel/pacemaker.txt."""
    record_in(text, "pacemaker.txt")


@pytest.fixture(scope="module")
def cluster(vm: None, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    with running(tmp_path_factory.mktemp("pacemaker")) as built:
        yield built


def known(cluster: Cluster, name: str) -> int:
    """Established client connections to the VIP in ``name``'s IPVS (synced ones included)."""
    text = cluster.nodes[name].proc_net("ip_vs_conn")
    client = "".join(f"{int(p):02X}" for p in CLIENT.split("."))
    vip = "".join(f"{int(p):02X}" for p in VIP.split("."))
    return sum(
        1
        for line in text.splitlines()[1:]
        if (w := line.split())[:2] == ["TCP", client] and w[3] == vip and w[7] == "ESTABLISHED"
    )


def warm(cluster: Cluster, name: str, want: int, timeout: float = 60.0) -> int:
    deadline = time.monotonic() + timeout
    while (got := known(cluster, name)) < want and time.monotonic() < deadline:
        time.sleep(0.5)
    return got


def move(cluster: Cluster, client: Client, active: str) -> tuple[str, float, float, float, Report]:
    """Put ``active`` in standby; wait for the other node to hold the VIP and the gateway, for
    the reals to know it holds the gateway, and for things to settle. The node that took over,
    when the standby began, when the addresses were up, the move's time (until the reals knew)
    and the client's report of that window."""
    cluster.wait_idle()
    client.report()  # a fresh window
    to = next(n for n in DIRECTORS if n != active)
    began = time.monotonic()
    # Wall-clock time: the node logs under artifacts/kernel/pacemaker/ are in UTC.
    print(f"{active} standby at {time.strftime('%H:%M:%S', time.gmtime())} UTC", flush=True)
    cluster.standby(active, True)
    deadline = began + MOVE_WAIT
    while cluster.holder(VIP) != to or cluster.holder(GW) != to:
        assert time.monotonic() < deadline, f"the addresses did not move:\n{cluster.crm_mon()}"
        time.sleep(0.05)
    held = time.monotonic() - began
    while not cluster.announced(to):
        assert time.monotonic() < deadline, "the reals never learnt the gateway's move"
        time.sleep(0.1)
    took = time.monotonic() - began
    time.sleep(SETTLE)
    return to, began, held, took, client.report()


def judge(name: str, report: Report, began: float, held: float, took: float) -> list[str]:
    """Record one move's figures; return what misses the bar."""
    bar = took + SLACK
    sent, failed = report.requests_after(began + took)
    errors = report.errors()
    window = len(report.requests)
    failed_in_window = sum(1 for r in report.requests if r[2] is not None)
    why = "; ".join(sorted(set(failed))[:3])
    record(
        f"{name}: moved in {took:.2f} s (addresses up after {held:.2f} s); "
        f"{report.echoed()}/{len(report.conns)} long-lived connections exchanged data, "
        f"{len(errors)} reset, {report.stalled(bar)} stalled > {bar:.2f} s; longest stall "
        f"{report.longest_gap():.2f} s; new requests after the move {sent - len(failed)}/{sent} "
        f"ok{': ' + why if why else ''} ({window} in the window, {failed_in_window} failed)"
    )
    return report.misses(name, bar, began + took, CONNS)


# The fixture's cluster start (about 90 s under emulation) counts against the test, and the
# whole module takes about 270 s there.
@pytest.mark.timeout(600)
def test_standby_moves_vip_and_gateway_keeping_every_connection(cluster: Cluster) -> None:
    active = cluster.holder(VIP)
    assert active is not None and cluster.holder(GW) == active
    standby = next(n for n in DIRECTORS if n != active)
    client = start_client(CONNS, PERIOD, RATE)
    problems: list[str] = []
    try:
        got = warm(cluster, standby, CONNS)
        record(f"pacemaker: the standby knew {got} of {CONNS} connections before the failover")
        assert got >= CONNS, "the sync daemon did not copy the connections to the standby"

        to, began, held, took, report = move(cluster, client, active)
        problems += judge(f"pacemaker failover ({active} standby)", report, began, held, took)

        # The old node comes back: ldirector starts there again and, with stickiness, the
        # addresses stay where they are.
        cluster.standby(active, False)
        cluster.wait_tables([active])
        assert cluster.holder(VIP) == to, f"the VIP moved back on its own:\n{cluster.crm_mon()}"
        got = warm(cluster, active, CONNS)
        record(f"pacemaker: {active} knew {got} of {CONNS} connections before the failback")
        assert got >= CONNS, "the returning node did not learn the connections"

        back, began, held, took, report = move(cluster, client, to)
        assert back == active
        problems += judge(f"pacemaker failback ({to} standby)", report, began, held, took)
        # A last window, after the move's: every connection still exchanges data.
        time.sleep(FINAL)
        final = client.report()
        record(
            f"pacemaker: after both moves {final.echoed()}/{CONNS} connections still exchange "
            f"data, {len(final.errors())} reset"
        )
        problems += [f"after both moves: {e}" for e in final.errors()]
        if final.echoed() != CONNS:
            problems.append(f"after both moves only {final.echoed()} connections exchange data")
    finally:
        client.stop()
    assert not problems, problems
