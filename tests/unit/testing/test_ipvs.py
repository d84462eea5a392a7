"""FakeBackend answers ops with the kernel's errnos and reports each failure against its op."""

from __future__ import annotations

import errno
from ipaddress import IPv4Address, IPv6Address

import pytest

from ldirector.ipvs.backend import ApplyError, IpvsError
from ldirector.ipvs.ops import AddDest, AddService, DelDest, DelService, EditDest, EditService, Op
from ldirector.ipvs.sync import DaemonState, SyncDaemon
from ldirector.ipvs.types import (
    Dest,
    DestKey,
    Family,
    ForeignDest,
    ForeignService,
    Forward,
    FwmarkServiceKey,
    InetServiceKey,
    IpvsTable,
    Protocol,
    Service,
    VirtualService,
)
from ldirector.testing import FakeBackend

WEB = InetServiceKey(Protocol.TCP, IPv4Address("127.0.10.1"), 80)
R1 = Dest(address=IPv4Address("127.0.20.1"), port=80)


async def failures(fake: FakeBackend, *ops: Op) -> list[int]:
    try:
        await fake.apply(ops)
    except ApplyError as exc:
        return [f.errno for f in exc.failures]
    return []


@pytest.mark.parametrize(
    ("ops", "codes"),
    [
        ((AddService(Service(key=WEB)), AddService(Service(key=WEB))), [errno.EEXIST]),
        ((EditService(Service(key=WEB)),), [errno.ESRCH]),
        ((DelService(WEB),), [errno.ESRCH]),
        ((AddDest(WEB, R1),), [errno.ESRCH]),
        ((AddService(Service(key=WEB)), AddDest(WEB, R1), AddDest(WEB, R1)), [errno.EEXIST]),
        ((AddService(Service(key=WEB)), EditDest(WEB, R1)), [errno.ENOENT]),
        ((AddService(Service(key=WEB)), DelDest(WEB, R1.key)), [errno.ENOENT]),
        ((AddService(Service(key=WEB, scheduler="nosuch")),), [errno.ENOENT]),
    ],
)
async def test_kernel_errnos(ops: tuple[Op, ...], codes: list[int]) -> None:
    assert await failures(FakeBackend(), *ops) == codes


async def test_range_and_family_checks() -> None:
    fake = FakeBackend(IpvsTable.of(VirtualService.of(Service(key=WEB))))
    v6 = Dest(address=IPv6Address("fd00::1"), port=80)
    bad = [
        AddDest(WEB, Dest(address=IPv4Address("127.0.20.2"), port=80, weight=-1)),
        AddDest(WEB, Dest(address=IPv4Address("127.0.20.3"), port=80, upper=5, lower=10)),
        AddDest(WEB, Dest(address=IPv4Address("127.0.20.4"), port=80, lower=10)),
        AddDest(WEB, v6),
        AddDest(WEB, Dest(address=IPv6Address("fd00::2"), port=80, forward=Forward.IPIP)),
    ]
    assert await failures(fake, *bad) == [errno.ERANGE, errno.ERANGE, errno.ERANGE, errno.EINVAL]
    v6_svc = Service(key=FwmarkServiceKey(Family.INET6, 3), persistent=60, netmask=0)
    assert await failures(fake, AddService(v6_svc)) == [errno.EINVAL]


async def test_failures_name_their_op_and_the_rest_still_apply() -> None:
    fake = FakeBackend()
    ops: list[Op] = [AddDest(WEB, R1), AddService(Service(key=WEB)), AddDest(WEB, R1)]
    with pytest.raises(ApplyError) as caught:
        await fake.apply(ops)
    (failure,) = caught.value.failures
    assert failure.op == ops[0]
    assert str(failure) == "cannot add real 127.0.20.1:80 to tcp:127.0.10.1:80: no such service"
    assert str(caught.value) == str(failure)
    assert fake.table == IpvsTable.of(VirtualService.of(Service(key=WEB), [R1]))
    assert fake.batches == [ops]


async def test_injected_failure_skips_that_op() -> None:
    fake = FakeBackend()
    fake.fail_next = {0: errno.EPERM}
    assert await failures(fake, AddService(Service(key=WEB))) == [errno.EPERM]
    assert fake.table == IpvsTable()
    assert await failures(fake, AddService(Service(key=WEB))) == []


async def test_dump_strips_nothing_and_edits_replace_whole_objects() -> None:
    fake = FakeBackend()
    await fake.apply([AddService(Service(key=WEB, persistent=300, netmask=24)), AddDest(WEB, R1)])
    masq = Dest(address=R1.address, port=80, forward=Forward.MASQ, weight=0, upper=9, lower=1)
    await fake.apply([EditService(Service(key=WEB, scheduler="rr")), EditDest(WEB, masq)])
    table = await fake.dump()
    assert table[WEB].service == Service(key=WEB, scheduler="rr")
    assert table[WEB].dests[R1.key] == masq


ODD_REAL = ForeignDest(DestKey(IPv4Address("127.0.20.2"), 80), "unknown forwarding method 4", b"r")
UNKEYED_REAL = ForeignDest(None, "unknown address family 7", b"u")
WEB2 = InetServiceKey(Protocol.TCP, IPv4Address("127.0.10.2"), 80)
ODD_SERVICE = ForeignService(WEB2, "netmask attribute is 1 bytes, not 4", b"s")
UNKEYED_SERVICE = ForeignService(None, "unknown address family 99", b"v")


def hostile() -> IpvsTable:
    return IpvsTable.of(
        VirtualService.of(Service(key=WEB), [R1], [ODD_REAL, UNKEYED_REAL]),
        foreign=[ODD_SERVICE, UNKEYED_SERVICE],
    )


async def test_foreign_entries_dump_back_unchanged() -> None:
    assert await FakeBackend(hostile()).dump() == hostile()


async def test_foreign_entries_hold_their_keys_like_the_kernel_does() -> None:
    fake = FakeBackend(hostile())
    odd_real = Dest(address=IPv4Address("127.0.20.2"), port=80)
    codes = await failures(
        fake, AddService(Service(key=WEB2)), AddDest(WEB, odd_real), AddDest(WEB2, R1)
    )
    # The kernel adds a real to a service it lists even when ldirector cannot read that service.
    assert codes == [errno.EEXIST, errno.EEXIST]
    assert fake.table.foreign == hostile().foreign
    assert fake.table[WEB].foreign == hostile()[WEB].foreign


async def test_replacing_or_deleting_a_foreign_entry_makes_it_ordinary_or_gone() -> None:
    fake = FakeBackend(hostile())
    odd_real = Dest(address=IPv4Address("127.0.20.2"), port=80, weight=3)
    await fake.apply([EditDest(WEB, odd_real), EditService(Service(key=WEB2))])
    table = fake.table
    assert table[WEB].dests[odd_real.key] == odd_real
    assert table[WEB].foreign == (UNKEYED_REAL,)
    assert WEB2 in table and table.foreign == (UNKEYED_SERVICE,)
    await fake.apply([DelService(WEB)])
    assert WEB not in fake.table


BACKUP = SyncDaemon(state=DaemonState.BACKUP, interface="lo", syncid=7)


async def test_sync_daemons_start_read_and_stop() -> None:
    fake = FakeBackend(interfaces={"lo", "eth0"})
    assert await fake.daemons() == ()
    await fake.start_daemon(BACKUP)
    await fake.start_daemon(SyncDaemon(state=DaemonState.MASTER, interface="eth0", maxlen=1400))
    got = await fake.daemons()
    assert [d.state for d in got] == [DaemonState.MASTER, DaemonState.BACKUP]
    assert got[1] == SyncDaemon(state=DaemonState.BACKUP, interface="lo", syncid=7, maxlen=1472)
    assert got[0].maxlen == 1400
    await fake.stop_daemon(DaemonState.MASTER)
    assert [d.state for d in await fake.daemons()] == [DaemonState.BACKUP]


@pytest.mark.parametrize(
    ("start", "stop", "message"),
    [
        (
            SyncDaemon(state=DaemonState.BACKUP, interface="nosuch0"),
            None,
            "cannot start the backup sync daemon: no network interface named 'nosuch0'",
        ),
        (BACKUP, None, "cannot start the backup sync daemon: one is already running"),
        (None, DaemonState.MASTER, "cannot stop the master sync daemon: none is running"),
    ],
)
async def test_sync_daemon_errors_match_the_kernel(
    start: SyncDaemon | None, stop: DaemonState | None, message: str
) -> None:
    fake = FakeBackend(interfaces={"lo"})
    await fake.start_daemon(BACKUP)
    with pytest.raises(IpvsError) as caught:
        if start is not None:
            await fake.start_daemon(start)
        if stop is not None:
            await fake.stop_daemon(stop)
    assert str(caught.value) == message


async def test_no_sync_while_a_service_mixes_address_families() -> None:
    tunnel = Dest(address=IPv6Address("fd00::2"), port=80, forward=Forward.IPIP)
    fake = FakeBackend(IpvsTable.of(VirtualService.of(Service(key=WEB), [tunnel])))
    with pytest.raises(IpvsError, match="mixes address families") as caught:
        await fake.start_daemon(BACKUP)
    assert caught.value.errno == errno.EINVAL
