"""``ldirector check --probe``: run every real server's first check once and show the results.

The command-line edge of the check pipeline: plan (pure) -> ``checks.probe`` concurrently under a
cap -> a table or JSON on stdout. Results do not change the exit status: 0 means every probe ran.
"""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import TextIO

import checks
from checks.types import ExternalSpec, Result, Target
from ldirector.config.model import Config, Real, Virtual
from ldirector.plan import Probe, first_probe

#: Probes in flight at once: enough for big configs, few enough not to flood a small host.
CONCURRENCY = 128


@dataclass(frozen=True, slots=True)
class Row:
    """One line of the report: a real of a virtual and what its check found (None: not probed)."""

    virtual: str
    real: str
    check: str
    result: Result | None


async def run(config: Config, concurrency: int = CONCURRENCY) -> list[Row]:
    """Probe every real of every virtual once; identical (target, check) pairs share one probe."""
    planned: list[tuple[Virtual, Real, Probe | None]] = [
        (v, r, first_probe(v, r)) for v in config.virtuals for r in v.reals
    ]
    limit = asyncio.Semaphore(concurrency)
    unique: dict[tuple[Target, Probe], asyncio.Task[Result]] = {}

    async def one(target: Target, probe: Probe) -> Result:
        async with limit:
            return await checks.probe(target, probe.spec, probe.timeout)

    async with asyncio.TaskGroup() as group:
        for _, real, probe in planned:
            if probe is not None and (key := _key(real.target, probe)) not in unique:
                unique[key] = group.create_task(one(real.target, probe))
    return [
        Row(
            virtual=v.vid,
            real=str(r.target),
            check=p.label if p else f"{v.checktype} (not probed)",
            result=unique[_key(r.target, p)].result() if p else None,
        )
        for v, r, p in planned
    ]


def _key(target: Target, probe: Probe) -> tuple[Target, Probe]:
    """What makes two probes the same: only external checks see the virtual (VIP VPORT args)."""
    if isinstance(probe.spec, ExternalSpec):
        return target, probe
    return replace(target, virtual="", virtual_port=0, real_port=0), probe


def state(row: Row) -> str:
    """``up``, ``down`` or ``-`` (not probed)."""
    if row.result is None:
        return "-"
    return "up" if row.result.ok else "down"


def table(rows: Sequence[Row]) -> str:
    """Rows as aligned columns: virtual, real, check, state, reason, time."""
    lines = [("VIRTUAL", "REAL", "CHECK", "STATE", "TIME", "REASON")]
    for row in rows:
        result = row.result
        reason = result.reason if result else "checktype on/off: no check is run"
        elapsed = f"{result.elapsed * 1000:.0f}ms" if result else "-"
        lines.append((row.virtual, row.real, row.check, state(row), elapsed, reason))
    widths = [max(len(line[i]) for line in lines) for i in range(5)]
    return "\n".join(
        "  ".join([*(cell.ljust(w) for cell, w in zip(line[:5], widths, strict=True)), line[5]])
        for line in lines
    )


def document(config: Config, rows: Sequence[Row]) -> dict[str, object]:
    """Rows as a JSON object; ``up`` is null for reals that are not probed."""
    return {
        "config": config.path,
        "probes": [
            {
                "virtual": row.virtual,
                "real": row.real,
                "check": row.check,
                "up": row.result.ok if row.result else None,
                "reason": row.result.reason if row.result else None,
                "seconds": round(row.result.elapsed, 6) if row.result else None,
            }
            for row in rows
        ],
    }


def as_json(config: Config, rows: Sequence[Row]) -> str:
    """Rows as one JSON document."""
    return json.dumps(document(config, rows), indent=2)


def main(config: Config, *, json_output: bool = False, out: TextIO | None = None) -> int:
    """Run the probes and print them; 0 once every probe has run, whatever it found."""
    rows = asyncio.run(run(config))
    print(as_json(config, rows) if json_output else table(rows), file=out or sys.stdout)
    return 0
