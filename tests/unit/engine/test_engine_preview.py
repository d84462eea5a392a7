"""check --plan: probe once, show the converged table and the ops from the kernel table."""

from __future__ import annotations

import io
import json
from ipaddress import ip_address

from engine_world import config

from checks.types import CheckSpec, Result, Target
from ldirector.engine import preview as plan_view
from ldirector.ipvs.backend import IpvsError
from ldirector.ipvs.dryrun import format_op
from ldirector.ipvs.fake import FakeBackend
from ldirector.ipvs.types import (
    Dest,
    Forward,
    InetServiceKey,
    IpvsTable,
    Protocol,
    Service,
    VirtualService,
)

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


async def test_cold_table_and_ops() -> None:
    got = await plan_view.preview(config(TEXT), FakeBackend(), run=only_two_up)
    assert plan_view.render(got).splitlines() == [
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
    got = await plan_view.preview(
        config(TEXT), FakeBackend(IpvsTable.of(existing)), run=only_two_up
    )
    assert got.ops is not None
    assert [format_op(op) for op in got.ops] == [
        "-a -t 127.0.0.100:80 -r 127.0.0.2:8080 -m -w 3 -x 0 -y 0"
    ]
    data = json.loads(plan_view.as_json(config(TEXT), got))
    assert data["kernel_error"] is None and len(data["rules"]) == 3
    assert {r["real"]: r["status"] for r in data["reals"]} == {
        "127.0.0.2:8080": "up",
        "127.0.0.3:8080": "up",
    }


class Unreadable(FakeBackend):
    async def dump(self) -> IpvsTable:
        raise IpvsError("the IPVS netlink family is not available (is ip_vs loaded?)")


async def test_unreadable_kernel_shows_the_table_without_ops() -> None:
    got = await plan_view.preview(config(TEXT), Unreadable(), run=only_two_up)
    assert got.ops is None
    text = plan_view.render(got)
    assert "-a -t 127.0.0.100:80 -r 127.0.0.2:8080" in text
    assert text.endswith("no operations shown")


def test_main_prints_json() -> None:
    out = io.StringIO()
    text = TEXT.replace("checktype=connect", "checktype=on")
    assert plan_view.main(config(text), json_output=True, out=out, backend=FakeBackend) == 0
    data = json.loads(out.getvalue())
    assert data["operations"][0] == "-A -t 127.0.0.100:80 -s wrr"
    assert len(data["rules"]) == 3
