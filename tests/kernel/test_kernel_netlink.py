"""NetlinkBackend against the real kernel: attributes round-trip, errors map, batches scale,
sync daemons start, read back and stop."""

from __future__ import annotations

import errno
import os
import subprocess
from collections.abc import AsyncIterator, Iterator
from dataclasses import replace
from ipaddress import IPv4Address, IPv6Address

import pytest

from ldirector.core.reconcile import diff
from ldirector.ipvs import decode, genl
from ldirector.ipvs.backend import ApplyError, IpvsError
from ldirector.ipvs.layout import Layouts
from ldirector.ipvs.netlink import NetlinkBackend
from ldirector.ipvs.ops import AddDest, AddService, DelDest, DelService, EditDest, EditService, Op
from ldirector.ipvs.sync import DaemonState, SyncDaemon
from ldirector.ipvs.types import (
    Dest,
    Family,
    Forward,
    FwmarkServiceKey,
    InetServiceKey,
    IpvsTable,
    Protocol,
    SchedFlags,
    Service,
    VirtualService,
)
from ldirector.testing import FakeBackend

from .vmtools import ipvsadm, run_as_nobody, sh

pytestmark = pytest.mark.kernel

A4 = IPv4Address("127.0.10.1")
A6 = IPv6Address("fd00::1")


def r4(last: int, port: int = 80, **kw: object) -> Dest:
    return Dest(address=IPv4Address(f"127.0.20.{last}"), port=port, **kw)  # type: ignore[arg-type]


def r6(last: int, port: int = 80, **kw: object) -> Dest:
    return Dest(address=IPv6Address(f"fd00:1::{last}"), port=port, **kw)  # type: ignore[arg-type]


def every_attribute() -> IpvsTable:
    """IPv4/IPv6, TCP/UDP/SCTP, fwmarks of both families, persistence with netmask, scheduler
    flags, one-packet scheduling, a persistence engine, all three forwarding methods, weights 0
    and above, and thresholds."""
    tcp4 = InetServiceKey(Protocol.TCP, A4, 80)
    udp4 = InetServiceKey(Protocol.UDP, A4, 53)
    sctp4 = InetServiceKey(Protocol.SCTP, A4, 3868)
    sip4 = InetServiceKey(Protocol.UDP, A4, 5060)
    tcp6 = InetServiceKey(Protocol.TCP, A6, 443)
    udp6 = InetServiceKey(Protocol.UDP, A6, 53)
    sctp6 = InetServiceKey(Protocol.SCTP, A6, 3868)
    fwm4 = FwmarkServiceKey(Family.INET, 100)
    fwm6 = FwmarkServiceKey(Family.INET6, 200)
    return IpvsTable.of(
        VirtualService.of(
            Service(key=tcp4, scheduler="wrr", persistent=300, netmask=24),
            [
                r4(1, weight=5, upper=100, lower=10),
                r4(2, 8080, forward=Forward.MASQ, weight=0),
                r4(3, forward=Forward.IPIP, weight=2),
            ],
        ),
        VirtualService.of(
            Service(key=udp4, scheduler="rr", flags=SchedFlags.ONEPACKET),
            [r4(4, 5353, forward=Forward.MASQ, upper=7)],
        ),
        VirtualService.of(
            Service(key=sctp4, scheduler="sh", flags=SchedFlags.SCHED1 | SchedFlags.SCHED2),
            [r4(5, 3868), r4(6, 3868, weight=65535)],
        ),
        VirtualService.of(
            Service(key=sip4, scheduler="wlc", persistent=60, pe_name="sip"),
            [r4(7, 5060, forward=Forward.MASQ)],
        ),
        VirtualService.of(
            Service(key=tcp6, scheduler="mh", flags=SchedFlags.SCHED1, persistent=60, netmask=64),
            [
                r6(1, 443, forward=Forward.MASQ, weight=3, upper=50, lower=5),
                r6(2, 443),
                r6(3, 443, forward=Forward.IPIP),
            ],
        ),
        VirtualService.of(Service(key=udp6, scheduler="lc"), [r6(4, 53, forward=Forward.MASQ)]),
        VirtualService.of(Service(key=sctp6, scheduler="sed"), [r6(5, 3868)]),
        VirtualService.of(
            Service(key=fwm4, scheduler="wlc", persistent=600, netmask=16),
            [r4(8, 0), r4(9, 0, forward=Forward.MASQ, weight=0), r4(10, 0, forward=Forward.IPIP)],
        ),
        VirtualService.of(
            Service(key=fwm6, scheduler="nq", persistent=30),
            [r6(6, 0), r6(7, 0, forward=Forward.MASQ, upper=9, lower=9)],
        ),
    )


def edited(table: IpvsTable) -> IpvsTable:
    """Every service and destination of ``table`` with every mutable attribute changed."""
    out = []
    for vs in table:
        svc = vs.service
        persistent = None if svc.persistent is not None else 120
        new = Service(
            key=svc.key,
            scheduler="rr" if svc.scheduler != "rr" else "wrr",
            flags=SchedFlags.SCHED3 if not svc.flags else SchedFlags.NONE,
            persistent=persistent,
            netmask=svc.key.family.max_prefix - 8 if persistent else None,
        )
        forward = {
            Forward.GATE: Forward.MASQ,
            Forward.MASQ: Forward.IPIP,
            Forward.IPIP: Forward.GATE,
        }
        dests = [
            Dest(
                address=d.address,
                port=d.port,
                forward=forward[d.forward],
                weight=d.weight + 1,
                upper=d.upper + 20,
                lower=d.lower + 1,
            )
            for d in vs.dests.values()
        ]
        out.append(VirtualService.of(new, dests))
    return IpvsTable.of(*out)


async def test_every_attribute_round_trips(kernel: NetlinkBackend) -> None:
    table = every_attribute()
    owned = set(table.services)
    await kernel.apply(diff(table, IpvsTable(), owned))
    assert await kernel.dump() == table

    changed = edited(table)
    ops = diff(changed, table, owned)
    assert {type(op) for op in ops} == {EditService, EditDest}
    await kernel.apply(ops)
    assert await kernel.dump() == changed

    await kernel.apply(diff(IpvsTable(), changed, owned))
    assert await kernel.dump() == IpvsTable()


async def test_a_dump_of_some_services_reads_just_those(kernel: NetlinkBackend) -> None:
    table = every_attribute()
    await kernel.apply(diff(table, IpvsTable(), set(table.services)))
    keys = sorted(table.services, key=str)
    some = {keys[0], keys[-1], InetServiceKey(Protocol.TCP, A4, 9)}  # the last one is absent
    assert await kernel.dump(some) == table.only({keys[0], keys[-1]})
    assert await kernel.dump(()) == IpvsTable()


async def test_this_kernels_dest_replies_read_alike_by_layout_and_by_walk(
    kernel: NetlinkBackend,
) -> None:
    """The learned layout applies to this kernel's replies and reads each as the walk does."""
    table = every_attribute()
    await kernel.apply(diff(table, IpvsTable(), set(table.services)))
    replies: list[tuple[memoryview, Family]] = []
    async with kernel._lock:  # the raw replies, which dump() only returns decoded
        sock = await kernel._socket()
        for key in table.services:
            seq = next(kernel._seq)
            request = genl.dump_dests_request(kernel._family, seq, key)
            replies += [(p, key.family) for p in await kernel._dump(sock, seq, request)]
    assert len(replies) == sum(len(vs.dests) for vs in table)
    layouts = Layouts()
    for payload, family in replies:
        walked = decode.walk_dest(payload, family)
        assert isinstance(walked, Dest)
        if layouts.read(payload, family) is None:
            layouts.learn(payload, family, walked)
        fast = layouts.read(payload, family)
        assert fast is not None, f"no layout reads this kernel's reply for {walked.key}"
        assert fast == walked
        assert fast.counters == walked.counters


async def test_dump_matches_ipvsadm_listing(kernel: NetlinkBackend) -> None:
    table = every_attribute()
    await kernel.apply(diff(table, IpvsTable(), set(table.services)))
    listing = ipvsadm("-L", "-n", "--thresholds")
    dumped = await kernel.dump()
    for vs in dumped:
        for dest in vs.dests.values():
            assert str(dest.key) in listing
    header = 1  # "  -> RemoteAddress:Port ..."
    assert listing.count("  -> ") - header == sum(len(vs.dests) for vs in dumped)


WEB = InetServiceKey(Protocol.TCP, A4, 80)
MARK6 = FwmarkServiceKey(Family.INET6, 7)


def error_batch() -> list[Op]:
    """A batch in which every other op fails, each for a different reason."""
    v6_in_v4 = Dest(address=IPv6Address("fd00:1::1"), port=80)
    return [
        AddService(Service(key=WEB)),
        AddService(Service(key=WEB)),  # EEXIST
        EditService(Service(key=InetServiceKey(Protocol.UDP, A4, 80))),  # ESRCH
        DelService(InetServiceKey(Protocol.SCTP, A4, 80)),  # ESRCH
        AddService(Service(key=InetServiceKey(Protocol.TCP, A4, 81), scheduler="nosuch")),  # ENOENT
        AddService(Service(key=MARK6, persistent=10, netmask=0)),  # EINVAL: IPv6 prefix 0
        AddDest(InetServiceKey(Protocol.TCP, A4, 82), r4(1)),  # ESRCH
        AddDest(WEB, r4(1)),
        AddDest(WEB, r4(1)),  # EEXIST
        EditDest(WEB, r4(2)),  # ENOENT
        DelDest(WEB, r4(3).key),  # ENOENT
        AddDest(WEB, r4(4, upper=5, lower=10)),  # ERANGE
        AddDest(WEB, r4(5, lower=1)),  # ERANGE: lower above an unset (0) upper
        AddDest(WEB, r4(6, weight=-1)),  # ERANGE
        AddDest(WEB, v6_in_v4),  # EINVAL: mixed families need a tunnel
        EditDest(WEB, r4(1, weight=0)),
    ]


async def test_kernel_errors_match_the_fake_and_name_their_op(kernel: NetlinkBackend) -> None:
    ops = error_batch()
    with pytest.raises(ApplyError) as real:
        await kernel.apply(ops)
    fake = FakeBackend()
    with pytest.raises(ApplyError) as model:
        await fake.apply(ops)
    index = {id(op): i for i, op in enumerate(ops)}
    got = [(index[id(f.op)], errno.errorcode[f.errno]) for f in real.value.failures]
    assert got == [
        (1, "EEXIST"),
        (2, "ESRCH"),
        (3, "ESRCH"),
        (4, "ENOENT"),
        (5, "EINVAL"),
        (6, "ESRCH"),
        (8, "EEXIST"),
        (9, "ENOENT"),
        (10, "ENOENT"),
        (11, "ERANGE"),
        (12, "ERANGE"),
        (13, "ERANGE"),
        (14, "EINVAL"),
    ]
    assert [str(f) for f in real.value.failures] == [str(f) for f in model.value.failures]
    assert await kernel.dump() == fake.table
    assert str(real.value.failures[3]) == (
        "cannot add service tcp:127.0.10.1:81: scheduler 'nosuch' or its module is not available"
    )


async def test_batches_larger_than_one_send(kernel: NetlinkBackend) -> None:
    services = [InetServiceKey(Protocol.TCP, A4, port) for port in (1, 2, 3)]
    ops: list[Op] = [AddService(Service(key=key)) for key in services]
    for key in services:
        ops += [
            AddDest(
                key, Dest(address=IPv4Address(f"127.1.{i // 250}.{i % 250 + 1}"), port=key.port)
            )
            for i in range(200)
        ]
    bad = 400  # inside the second send
    ops[bad] = AddDest(services[0], r4(1, weight=-5))
    with pytest.raises(ApplyError) as caught:
        await kernel.apply(ops)
    assert [f.op for f in caught.value.failures] == [ops[bad]]
    table = await kernel.dump()
    assert sum(len(vs.dests) for vs in table) == 599
    await kernel.apply([DelService(key) for key in services])
    assert await kernel.dump() == IpvsTable()


async def test_without_cap_net_admin_errors_are_one_sentence(kernel: NetlinkBackend) -> None:
    code = (
        "import asyncio\n"
        "from ldirector.ipvs.netlink import NetlinkBackend\n"
        "from ldirector.ipvs.backend import IpvsUnavailable\n"
        "try:\n"
        "    asyncio.run(NetlinkBackend().dump())\n"
        "except IpvsUnavailable as exc:\n"
        "    print(exc)\n"
    )
    done = run_as_nobody("-c", code)
    assert done.returncode == 0, done.stderr
    assert done.stdout == (
        "reading or changing the IPVS table needs root (CAP_NET_ADMIN): run ldirector as root\n"
    )


@pytest.fixture
def own_netns(vm: None) -> Iterator[str]:
    """A network namespace of the test's own, with only ``lo``, up."""
    name = f"ldir-sync-{os.getpid()}"
    sh("ip", "netns", "add", name)
    try:
        sh("ip", "-n", name, "link", "set", "lo", "up")
        yield name
    finally:
        subprocess.run(["ip", "netns", "del", name], capture_output=True, check=False)


@pytest.fixture
async def isolated(own_netns: str) -> AsyncIterator[NetlinkBackend]:
    """A backend on that namespace's IPVS."""
    backend = NetlinkBackend(netns=own_netns)
    try:
        yield backend
    finally:
        await backend.close()


BACKUP = SyncDaemon(state=DaemonState.BACKUP, interface="lo", syncid=7)


async def test_backup_sync_daemon_starts_reads_back_and_stops(isolated: NetlinkBackend) -> None:
    assert await isolated.daemons() == ()
    await isolated.start_daemon(BACKUP)
    (got,) = await isolated.daemons()
    # The kernel derives the payload size from the interface MTU; the rest reads back as sent.
    assert got.maxlen is not None and got.maxlen > 0
    assert replace(got, maxlen=None) == BACKUP
    await isolated.stop_daemon(DaemonState.BACKUP)
    assert await isolated.daemons() == ()


async def test_sync_daemon_errors_are_one_sentence_and_match_the_fake(
    isolated: NetlinkBackend,
) -> None:
    fake = FakeBackend(interfaces={"lo"})
    nosuch = SyncDaemon(state=DaemonState.BACKUP, interface="nosuch0")
    got: list[tuple[str, int]] = []
    for backend in (isolated, fake):
        with pytest.raises(IpvsError) as unknown:
            await backend.start_daemon(nosuch)
        await backend.start_daemon(BACKUP)
        with pytest.raises(IpvsError) as twice:
            await backend.start_daemon(BACKUP)
        await backend.stop_daemon(DaemonState.BACKUP)
        with pytest.raises(IpvsError) as none:
            await backend.stop_daemon(DaemonState.BACKUP)
        got += [(str(e.value), e.value.errno) for e in (unknown, twice, none)]
    assert got[:3] == [
        ("cannot start the backup sync daemon: no network interface named 'nosuch0'", errno.ENODEV),
        ("cannot start the backup sync daemon: one is already running", errno.EEXIST),
        ("cannot stop the backup sync daemon: none is running", errno.ESRCH),
    ]
    assert got[3:] == got[:3]
