"""FakeBackend answers ops with the kernel's errnos and reports each failure against its op."""

from __future__ import annotations

import errno
from ipaddress import IPv4Address, IPv6Address

import pytest

from ldirector.ipvs.backend import ApplyError
from ldirector.ipvs.fake import FakeBackend
from ldirector.ipvs.types import (
    AddDest,
    AddService,
    DelDest,
    DelService,
    Dest,
    EditDest,
    EditService,
    Family,
    Forward,
    FwmarkServiceKey,
    InetServiceKey,
    IpvsTable,
    Op,
    Protocol,
    Service,
    VirtualService,
)

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
