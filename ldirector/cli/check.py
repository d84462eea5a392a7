"""``ldirector check --probe`` and ``--plan``: one round of checks, two reports.

The engine's pipeline run once with no writer: plan -> one check per job, under the scheduler's
harness -> health (seeded from the kernel, as at start) -> desired table -> ``reconcile.diff``
against the kernel table when it can be read. ``--probe`` shows what each real's check found,
``--plan`` the table ldirector would converge to and the operations that would take the kernel
there; asked together they share the one round, so each real is checked once. Nothing is
applied; results change the exit status only with ``--fail-if-down``.
"""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TextIO

import checks
from checks.types import Result
from ldirector.config.model import Config
from ldirector.core.desired import RealKey, desired_table, policy, service_key
from ldirector.core.health import RealHealth, initial, step
from ldirector.core.plan import Job, job_for, plan, reals_by_key
from ldirector.core.reconcile import diff
from ldirector.engine.clock import MonotonicClock
from ldirector.engine.scheduler import CheckRunner, Slots, run_check
from ldirector.ipvs.backend import IpvsBackend, IpvsError
from ldirector.ipvs.ipvsadm import format_op, format_table
from ldirector.ipvs.ops import Op
from ldirector.ipvs.types import IpvsTable, ServiceKey
from ldirector.state.owned import OwnedStore, default_path

#: Checks in flight at once: enough for big configs, few enough not to flood a small host.
CONCURRENCY = 128


@dataclass(frozen=True, slots=True)
class Row:
    """One line of the probe report: a real of a virtual and what its check found (None: not
    checked, checktype on or off)."""

    virtual: str
    real: str
    check: str
    result: Result | None


@dataclass(frozen=True, slots=True)
class Preview:
    """What one round of checks would make of the kernel table."""

    table: IpvsTable
    #: Ops from the kernel table to ``table``; None when the kernel table could not be read.
    ops: tuple[Op, ...] | None
    kernel_error: str | None
    health: dict[RealKey, RealHealth]


async def check_all(
    jobs: Sequence[Job], run: CheckRunner = checks.run, concurrency: int = CONCURRENCY
) -> dict[Job, Result]:
    """Run every job once, at most ``concurrency`` at a time."""
    slots = Slots(concurrency)
    clock = MonotonicClock()

    async def one(job: Job) -> Result:
        async with slots:
            return await run_check(run, job.target, job.spec, job.timeout, clock)

    results = await asyncio.gather(*(one(j) for j in jobs))
    return dict(zip(jobs, results, strict=True))


def rows(config: Config, results: Mapping[Job, Result]) -> list[Row]:
    """The probe report: every real of every virtual, in config order."""
    out: list[Row] = []
    for v in config.virtuals:
        for r in v.reals:
            job = job_for(v, r)
            out.append(
                Row(
                    virtual=v.vid,
                    real=str(r.target),
                    check=job.label if job else f"{v.checktype} (not probed)",
                    result=results[job] if job else None,
                )
            )
    return out


def preview(
    config: Config,
    results: Mapping[Job, Result],
    actual: IpvsTable,
    kernel_error: str | None,
    owned: frozenset[ServiceKey] = frozenset(),
) -> Preview:
    """The converged table (and the ops, if the kernel was readable) for one round of results."""
    job_of, _ = plan(config)
    health: dict[RealKey, RealHealth] = {}
    for key, (virtual, _) in reals_by_key(config).items():
        vs = actual.services.get(key.service)
        dest = vs.dests.get(key.dest) if vs else None
        rules = policy(virtual)
        health[key] = initial(rules, dest.weight if dest else None)
        if key in job_of:
            result = results[job_of[key]]
            health[key], _ = step(health[key], result.ok, result.reason, rules)
    table = desired_table(config, health, actual)
    ops: tuple[Op, ...] | None = None
    if kernel_error is None:
        keys = {service_key(v) for v in config.virtuals} | (owned & actual.services.keys())
        ops = tuple(diff(table, actual, keys))
    return Preview(table, ops, kernel_error, health)


@dataclass(frozen=True, slots=True)
class Round:
    """One round of checks, and what the kernel held when it ran."""

    results: dict[Job, Result]
    actual: IpvsTable
    kernel_error: str | None
    owned: frozenset[ServiceKey]


async def one_round(
    config: Config,
    backend: Callable[[], IpvsBackend] | None,
    *,
    run: CheckRunner = checks.run,
) -> Round:
    """Check every job once; read the kernel table and the owned set when ``backend`` is given."""
    actual, error, owned = IpvsTable(), None, frozenset[ServiceKey]()
    if backend is None:
        error = "not read"
    else:
        try:
            ipvs = backend()
        except IpvsError as exc:
            ipvs, error = None, str(exc)
        if ipvs is not None:
            try:
                actual = await ipvs.dump()
                owned = OwnedStore(default_path(config.path)).load()
            except IpvsError as exc:
                error = str(exc)
            finally:
                await ipvs.close()
    _, readers = plan(config)
    return Round(await check_all(list(readers), run), actual, error, owned)


# --- renderings ------------------------------------------------------------------------------


def state(row: Row) -> str:
    """``up``, ``down`` or ``-`` (not probed)."""
    if row.result is None:
        return "-"
    return "up" if row.result.ok else "down"


def probe_table(report: Sequence[Row]) -> str:
    """Rows as aligned columns: virtual, real, check, state, time, reason."""
    lines = [("VIRTUAL", "REAL", "CHECK", "STATE", "TIME", "REASON")]
    for row in report:
        result = row.result
        reason = result.reason if result else "checktype on/off: no check is run"
        elapsed = f"{result.elapsed * 1000:.0f}ms" if result else "-"
        lines.append((row.virtual, row.real, row.check, state(row), elapsed, reason))
    widths = [max(len(line[i]) for line in lines) for i in range(5)]
    return "\n".join(
        "  ".join([*(cell.ljust(w) for cell, w in zip(line[:5], widths, strict=True)), line[5]])
        for line in lines
    )


def probe_document(report: Sequence[Row]) -> dict[str, object]:
    """Rows as JSON; ``up`` is null for reals that are not probed."""
    return {
        "probes": [
            {
                "virtual": row.virtual,
                "real": row.real,
                "check": row.check,
                "up": row.result.ok if row.result else None,
                "reason": row.result.reason if row.result else None,
                "seconds": round(row.result.elapsed, 6) if row.result else None,
            }
            for row in report
        ],
    }


def plan_text(result: Preview) -> str:
    """The preview as ``ipvsadm -R`` text with comment headers."""
    lines = ["# the IPVS table ldirector would converge to (ipvsadm -R)"]
    lines += format_table(result.table).splitlines()
    if result.ops is None:
        lines.append(f"# kernel table not read ({result.kernel_error}): no operations shown")
    else:
        lines.append(f"# operations from the current kernel table: {len(result.ops)}")
        lines += [format_op(op) for op in result.ops]
    return "\n".join(lines)


def plan_document(result: Preview) -> dict[str, object]:
    """The preview as JSON."""
    return {
        "rules": format_table(result.table).splitlines(),
        "operations": None if result.ops is None else [format_op(op) for op in result.ops],
        "kernel_error": result.kernel_error,
        "reals": [
            {"virtual": str(key.service), "real": str(key.dest), "status": str(h.status)}
            for key, h in result.health.items()
        ],
    }


def netlink() -> IpvsBackend:
    """The kernel's table, read over netlink."""
    from ldirector.ipvs.netlink import NetlinkBackend

    return NetlinkBackend()


def report(
    config: Config, rnd: Round, *, probe: bool, plan: bool, json_output: bool
) -> str | dict[str, object]:
    """The reports asked for, from one round: text, or one JSON document holding both."""
    parts: list[str] = []
    doc: dict[str, object] = {"config": config.path}
    if probe:
        found = rows(config, rnd.results)
        doc.update(probe_document(found))
        parts.append(probe_table(found))
    if plan:
        converged = preview(config, rnd.results, rnd.actual, rnd.kernel_error, rnd.owned)
        doc.update(plan_document(converged))
        parts.append(plan_text(converged))
    return doc if json_output else "\n\n".join(parts)


def main(
    config: Config,
    *,
    probe: bool,
    plan: bool,
    json_output: bool = False,
    out: TextIO | None = None,
    backend: Callable[[], IpvsBackend] = netlink,
    run: CheckRunner = checks.run,
) -> int:
    """``check --probe`` and/or ``--plan``: prints the reports and returns how many reals'
    checks failed (``check --fail-if-down`` turns that into its exit status)."""
    rnd = asyncio.run(one_round(config, backend if plan else None, run=run))
    shown = report(config, rnd, probe=probe, plan=plan, json_output=json_output)
    text = shown if isinstance(shown, str) else json.dumps(shown, indent=2)
    print(text, file=out or sys.stdout)
    return sum(1 for result in rnd.results.values() if not result.ok)
