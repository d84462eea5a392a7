"""check --probe/--plan: one round of checks, the converged table and the ops from the kernel
table, and both reports from that one round."""

from __future__ import annotations

import io
import json
from collections.abc import Collection
from ipaddress import ip_address

from checks.types import CheckSpec, Result, Target
from ldirector.cli import check
from ldirector.ipvs.backend import IpvsError
from ldirector.ipvs.ipvsadm import format_op
from ldirector.ipvs.types import (
    Dest,
    Forward,
    InetServiceKey,
    IpvsTable,
    Protocol,
    Service,
    ServiceKey,
    VirtualService,
)
from ldirector.testing import FakeBackend
from tests.support.engine_world import config

TEXT = """\
fallback=127.0.0.1:80 gate

virtual=127.0.0.100:80
	real=127.0.0.2:8080 masq 3
	real=127.0.0.3:8080 masq
	checktype=connect
	failurecount=2
"""
SVC = InetServiceKey(Protocol.TCP, ip_address("127.0.0.100"), 80)


async def only_two_up(target: Target, spec: CheckSpec) -> Result:
    return Result(str(target.address) == "127.0.0.2", "scripted")


async def plan_of(text: str, backend: type[FakeBackend] | FakeBackend) -> check.Preview:
    cfg = config(text)
    rnd = await check.one_round(
        cfg, lambda: backend() if isinstance(backend, type) else backend, run=only_two_up
    )
    return check.preview(cfg, rnd.results, rnd.actual, rnd.kernel_error, rnd.owned)


async def test_cold_table_and_ops() -> None:
    got = await plan_of(TEXT, FakeBackend)
    assert check.plan_text(got).splitlines() == [
        "# the IPVS table ldirector would converge to (ipvsadm -R)",
        "-A -t 127.0.0.100:80 -s wrr",
        "-a -t 127.0.0.100:80 -r 127.0.0.2:8080 -m -w 3 -x 0 -y 0",
        "# operations from the current kernel table: 2",
        "-A -t 127.0.0.100:80 -s wrr",
        "-a -t 127.0.0.100:80 -r 127.0.0.2:8080 -m -w 3 -x 0 -y 0",
    ]


async def test_seeded_from_the_kernel_like_a_start() -> None:
    # .3 serves in the kernel: one failed check with failurecount=2 is only a soft failure.
    existing = VirtualService.of(
        Service(key=SVC, scheduler="wrr"),
        [Dest(address=ip_address("127.0.0.3"), port=8080, forward=Forward.MASQ, weight=1)],
    )
    got = await plan_of(TEXT, FakeBackend(IpvsTable.of(existing)))
    assert got.ops is not None
    assert [format_op(op) for op in got.ops] == [
        "-a -t 127.0.0.100:80 -r 127.0.0.2:8080 -m -w 3 -x 0 -y 0"
    ]
    data = json.loads(json.dumps(check.plan_document(got)))
    assert data["kernel_error"] is None and len(data["rules"]) == 3
    assert {r["real"]: r["status"] for r in data["reals"]} == {
        "127.0.0.2:8080": "up",
        "127.0.0.3:8080": "up",
    }


class Unreadable(FakeBackend):
    async def dump(self, only: Collection[ServiceKey] | None = None) -> IpvsTable:
        raise IpvsError("the IPVS netlink family is not available (is ip_vs loaded?)")


async def test_unreadable_kernel_shows_the_table_without_ops() -> None:
    got = await plan_of(TEXT, Unreadable)
    assert got.ops is None
    text = check.plan_text(got)
    assert "-a -t 127.0.0.100:80 -r 127.0.0.2:8080" in text
    assert text.endswith("no operations shown")


def test_main_prints_json() -> None:
    out = io.StringIO()
    text = TEXT.replace("checktype=connect", "checktype=on")
    assert (
        check.main(
            config(text), probe=False, plan=True, json_output=True, out=out, backend=FakeBackend
        )
        == 0
    )
    data = json.loads(out.getvalue())
    assert data["operations"][0] == "-A -t 127.0.0.100:80 -s wrr"
    assert len(data["rules"]) == 3


def test_probe_and_plan_check_each_real_once_and_print_one_document() -> None:
    calls: list[str] = []

    async def counting(target: Target, spec: CheckSpec) -> Result:
        calls.append(str(target.address))
        return await only_two_up(target, spec)

    out = io.StringIO()
    cfg = config(TEXT)
    code = check.main(
        cfg, probe=True, plan=True, json_output=True, out=out, backend=FakeBackend, run=counting
    )
    assert code == 1  # one real down
    assert sorted(calls) == ["127.0.0.2", "127.0.0.3"]
    doc = json.loads(out.getvalue())
    assert [p["up"] for p in doc["probes"]] == [True, False]
    assert doc["operations"][0] == "-A -t 127.0.0.100:80 -s wrr"
