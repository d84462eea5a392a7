"""The status snapshot rendered: the JSON document, its inverse, and the ``status -v`` text.

Pure. Sits after ``ldirector.observe.snapshot``, which builds the :class:`Snapshot`:
``status --json`` and ``/status`` serve :func:`to_json`, the CLI turns that document back into
a snapshot (:func:`from_json`) to print :func:`render_text`, and the status page reuses
:func:`local_time` and :func:`state_word`. The text goes to a terminal and came partly from
outside (reasons, names, and a document another daemon version sent), so every cell is made
inert on the way out.
"""

from __future__ import annotations

import time
from typing import Any

from ldirector.core.text import MAX_REASON, safe_text
from ldirector.observe import shadow, syncd
from ldirector.observe.snapshot import SCHEMA_VERSION, Counters, RealStatus, Snapshot, VirtualStatus


def to_json(snap: Snapshot) -> dict[str, Any]:
    """The ``status --json`` and ``/status`` document (schema in docs/observability.md)."""
    c = snap.counters
    doc: dict[str, Any] = {
        "schema": SCHEMA_VERSION,
        "generated": snap.generated,
        "started": snap.started,
        "config": snap.config,
        "matches": snap.matches,
        "daemon": {
            "reconciles": c.reconciles,
            "operations": c.ops,
            "operation_errors": c.op_errors,
            "drift_repairs": c.drift_repairs,
            "last_reload": c.last_reload,
            "last_reload_ok": c.last_reload_ok,
            "stalls": c.stalls,
            "stall_max_seconds": c.stall_max,
            "checks_waiting": c.checks_waiting,
            "checks_unjudged": c.checks_unjudged,
        },
        "virtuals": [
            {
                "service": v.service,
                "scheduler": v.scheduler,
                "in_kernel": v.in_kernel,
                "matches": v.matches,
                "fallback": v.fallback,
                "fallback_active": v.fallback_active,
                "connections": v.connections,
                "in_bytes": v.in_bytes,
                "out_bytes": v.out_bytes,
                "reals": [_real_json(r) for r in v.reals],
            }
            for v in snap.virtuals
        ],
    }
    if snap.shadow is not None:
        doc["shadow"] = shadow.to_json(snap.shadow)
    if snap.no_kernel is not None:
        doc["no_kernel"] = snap.no_kernel
    if snap.sync is not None:
        doc["sync"] = syncd.to_json(snap.sync)
    return doc


def _real_json(r: RealStatus) -> dict[str, Any]:
    return {
        "real": r.real,
        "health": r.health,
        "reason": r.reason,
        "since": r.since,
        "manual": r.manual,
        "drain_deadline": r.drain_deadline,
        "kernel_weight": r.kernel_weight,
        "desired_weight": r.desired_weight,
        "configured_weight": r.configured_weight,
        "matches": r.matches,
        "active": r.active,
        "inactive": r.inactive,
        "connections": r.connections,
        "in_bytes": r.in_bytes,
        "out_bytes": r.out_bytes,
        "checks": r.checks.count if r.checks else 0,
        "check_failures": r.checks.failures if r.checks else 0,
    }


def from_json(doc: Any) -> Snapshot:
    """Inverse of :func:`to_json` (without the check histograms): the CLI renders from it."""
    d = doc["daemon"]
    counters = Counters(
        ops=int(d["operations"]),
        op_errors=int(d["operation_errors"]),
        drift_repairs=int(d["drift_repairs"]),
        reconciles=int(d["reconciles"]),
        last_reload=d["last_reload"],
        last_reload_ok=d["last_reload_ok"],
        stalls=int(d["stalls"]),
        stall_max=float(d["stall_max_seconds"]),
        checks_waiting=int(d.get("checks_waiting", 0)),
        checks_unjudged=int(d.get("checks_unjudged", 0)),
    )
    virtuals = tuple(
        VirtualStatus(
            service=str(v["service"]),
            scheduler=str(v["scheduler"]),
            in_kernel=bool(v["in_kernel"]),
            matches=bool(v["matches"]),
            fallback=v["fallback"],
            fallback_active=bool(v.get("fallback_active", False)),
            connections=int(v["connections"]),
            in_bytes=int(v["in_bytes"]),
            out_bytes=int(v["out_bytes"]),
            reals=tuple(
                RealStatus(
                    **{k: r[k] for k in _REAL_FIELDS},
                    checks=None,
                )
                for r in v["reals"]
            ),
        )
        for v in doc["virtuals"]
    )
    return Snapshot(
        generated=float(doc["generated"]),
        started=float(doc["started"]),
        config=str(doc["config"]),
        virtuals=virtuals,
        counters=counters,
        shadow=shadow.from_json(doc["shadow"]) if doc.get("shadow") is not None else None,
        no_kernel=None if doc.get("no_kernel") is None else str(doc["no_kernel"]),
        sync=syncd.from_json(doc["sync"]) if doc.get("sync") is not None else None,
    )


_REAL_FIELDS = (
    "real",
    "health",
    "reason",
    "since",
    "manual",
    "drain_deadline",
    "kernel_weight",
    "desired_weight",
    "configured_weight",
    "active",
    "inactive",
    "connections",
    "in_bytes",
    "out_bytes",
)


def inert(text: str) -> str:
    """``text`` safe to show (``safe_text``), quickly when it already is: a page or a status
    of thousands of reals shows tens of thousands of names and reasons."""
    if len(text) <= MAX_REASON and text.isprintable():  # no control, format or separator
        return text
    return safe_text(text)


def local_time(stamp: float | None) -> str:
    if stamp is None:
        return "-"
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(stamp))


def state_word(r: RealStatus) -> str:
    """Health, with an operator's hold shown first: ``disabled``, ``draining``, or the health."""
    return f"{r.manual} ({r.health})" if r.manual else r.health


def render_text(snap: Snapshot) -> str:
    """``status -v``: one block per virtual, one line per real."""
    lines: list[str] = []
    for v in snap.virtuals:
        where = "kernel matches desired" if v.matches else "KERNEL DIFFERS from desired"
        if not v.in_kernel:
            where = "not in the kernel" + ("" if v.matches else " (it should be)")
        lines.append(f"{inert(v.service)} {inert(v.scheduler)}: {where}")
        rows: list[tuple[str, ...]] = [
            ("REAL", "STATE", "WEIGHT", "ACTIVE", "INACTIVE", "SINCE", "LAST CHECK")
        ]
        for r in v.reals:
            weight = "-" if r.kernel_weight is None else str(r.kernel_weight)
            if not r.matches:
                want = "-" if r.desired_weight is None else str(r.desired_weight)
                weight += f" (want {want})"
            if not r.manual and 0 < (r.desired_weight or 0) < r.configured_weight:
                weight += f" of {r.configured_weight}"  # ramping up, or asked for less
            cells = (r.real, state_word(r), weight, r.active, r.inactive, local_time(r.since))
            rows.append(tuple(inert(str(c)) for c in (*cells, r.reason or "-")))
        widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]) - 1)]
        for row in rows:
            padded = [cell.ljust(w) for cell, w in zip(row, widths, strict=False)]
            lines.append("  " + "  ".join([*padded, row[-1]]).rstrip())
        if v.fallback:
            lines.append(f"  fallback/other: {inert(v.fallback)}")
    if not snap.virtuals:
        lines.append("no virtual services configured")
    if snap.no_kernel is not None:
        lines.append(f"kernel table unreadable ({inert(snap.no_kernel)}): desired table only")
    if snap.sync is not None:
        lines.extend(syncd.render_lines(snap.sync))
    c = snap.counters
    if c.checks_waiting or c.checks_unjudged:
        lines.append(
            f"RUNNING BEHIND: {c.checks_waiting} checks waiting to start; "
            f"{c.checks_unjudged} timed out while ldirector was behind and were not judged"
        )
    text = "\n".join(lines) + "\n"
    if snap.shadow is not None:
        text += shadow.render_text(snap.shadow, local_time)
    return text
