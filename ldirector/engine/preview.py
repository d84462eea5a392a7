"""``ldirector check --plan``: probe once, then show the table ldirector would converge to and
the operations that would take the kernel there.

The engine's pipeline run a single time with no writer: plan -> one check per probe -> health
(seeded from the kernel, as at start) -> desired table -> ``reconcile.diff`` against the kernel
table when it can be read. Nothing is applied.
"""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TextIO

import checks
from checks.types import Result
from ldirector.config.model import Config
from ldirector.desired import RealKey, desired_table, policy, service_key
from ldirector.engine.probes import plan, reals_by_key
from ldirector.health import RealHealth, initial, step
from ldirector.ipvs.backend import IpvsBackend, IpvsError
from ldirector.ipvs.dryrun import format_op, format_table
from ldirector.ipvs.types import IpvsTable, Op, ServiceKey
from ldirector.owned import OwnedStore, default_path
from ldirector.reconcile import diff
from ldirector.scheduler import CheckRunner, Probe, Slots, run_once

#: Probes in flight at once (as ``check --probe``).
CONCURRENCY = 128


@dataclass(frozen=True, slots=True)
class Preview:
    """What one round of checks would make of the kernel table."""

    table: IpvsTable
    #: Ops from the kernel table to ``table``; None when the kernel table could not be read.
    ops: tuple[Op, ...] | None
    kernel_error: str | None
    health: dict[RealKey, RealHealth]


async def probe_all(
    probes: Sequence[Probe], run: CheckRunner = checks.run, concurrency: int = CONCURRENCY
) -> dict[Probe, Result]:
    """Run every probe once, at most ``concurrency`` at a time."""
    slots = Slots(concurrency)

    async def one(probe: Probe) -> Result:
        async with slots:
            return await run_once(run, probe.target, probe.spec, probe.timeout)

    results = await asyncio.gather(*(one(p) for p in probes))
    return dict(zip(probes, results, strict=True))


async def preview(
    config: Config,
    backend: IpvsBackend | None,
    *,
    owned: frozenset[ServiceKey] = frozenset(),
    run: CheckRunner = checks.run,
) -> Preview:
    """Probe once and compute the converged table (and the ops, if the kernel is readable)."""
    actual, error = IpvsTable(), None
    if backend is not None:
        try:
            actual = await backend.dump()
        except IpvsError as exc:
            error = str(exc)
    else:
        error = "no IPVS backend"
    probe_of, readers = plan(config)
    results = await probe_all(list(readers), run)
    health: dict[RealKey, RealHealth] = {}
    for key, (virtual, _) in reals_by_key(config).items():
        vs = actual.services.get(key.service)
        dest = vs.dests.get(key.dest) if vs else None
        rules = policy(virtual)
        health[key] = initial(rules, dest.weight if dest else None)
        if key in probe_of:
            result = results[probe_of[key]]
            health[key], _ = step(health[key], result.ok, result.reason, rules)
    table = desired_table(config, health, actual)
    ops: tuple[Op, ...] | None = None
    if error is None:
        keys = {service_key(v) for v in config.virtuals} | (owned & actual.services.keys())
        ops = tuple(diff(table, actual, keys))
    return Preview(table, ops, error, health)


def render(result: Preview) -> str:
    """The preview as ``ipvsadm -R`` text with comment headers."""
    lines = ["# the IPVS table ldirector would converge to (ipvsadm -R)"]
    lines += format_table(result.table).splitlines()
    if result.ops is None:
        lines.append(f"# kernel table not read ({result.kernel_error}): no operations shown")
    else:
        lines.append(f"# operations from the current kernel table: {len(result.ops)}")
        lines += [format_op(op) for op in result.ops]
    return "\n".join(lines)


def document(config: Config, result: Preview) -> dict[str, object]:
    """The preview as a JSON object."""
    return {
        "config": config.path,
        "rules": format_table(result.table).splitlines(),
        "operations": None if result.ops is None else [format_op(op) for op in result.ops],
        "kernel_error": result.kernel_error,
        "reals": [
            {"virtual": str(key.service), "real": str(key.dest), "status": str(h.status)}
            for key, h in result.health.items()
        ],
    }


def as_json(config: Config, result: Preview) -> str:
    """The preview as one JSON document."""
    return json.dumps(document(config, result), indent=2)


def _netlink() -> IpvsBackend:
    from ldirector.ipvs.netlink import NetlinkBackend

    return NetlinkBackend()


def main(
    config: Config,
    *,
    json_output: bool = False,
    out: TextIO | None = None,
    backend: Callable[[], IpvsBackend] = _netlink,
) -> int:
    """``check --plan``: 0 once the preview is printed, whatever the checks found."""
    result = asyncio.run(collect(config, backend))
    print(as_json(config, result) if json_output else render(result), file=out or sys.stdout)
    return 0


async def collect(config: Config, backend: Callable[[], IpvsBackend] | None = None) -> Preview:
    """Read the kernel table and the owned set, probe once, and compute the preview."""
    ipvs = (backend or _netlink)()
    try:
        owned = OwnedStore(default_path(config.path)).load()
        return await preview(config, ipvs, owned=owned)
    finally:
        await ipvs.close()
