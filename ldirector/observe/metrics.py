"""Prometheus exposition of a status snapshot (``/metrics``).

Sits at the HTTP edge and reads one :class:`Snapshot`, so nothing is kept twice and every
figure is as fresh as the snapshot. The text format (version 0.0.4) is written here, line by
line: prometheus-client's objects cost about a millisecond per real (seconds at a few thousand
reals) and their release holds the interpreter lock long enough to stall the event loop. The
tests read every line back with prometheus-client's own parser.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass, field

from ldirector.observe import shadow, syncd
from ldirector.observe.render import inert
from ldirector.observe.snapshot import Snapshot

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


@dataclass
class _Family:
    """One metric: its help, its type and its sample lines."""

    name: str
    kind: str
    help: str
    lines: list[str] = field(default_factory=list)

    def add(self, labels: str, value: float, suffix: str = "") -> None:
        braces = f"{{{labels}}}" if labels else ""
        self.lines.append(f"{self.name}{suffix}{braces} {_number(value)}\n")

    def text(self) -> Iterator[str]:
        yield f"# HELP {self.name} {_help(self.help)}\n"
        yield f"# TYPE {self.name} {self.kind}\n"
        yield from self.lines


def exposition(snap: Snapshot) -> bytes:
    """The Prometheus text format for one snapshot."""
    up = _Family("ldirector_real_up", "gauge", "1 when the real's checks pass")
    held = _Family(
        "ldirector_real_manual",
        "gauge",
        "1 when an operator holds the real out (state: disabled or draining)",
    )
    weight = _Family("ldirector_real_weight", "gauge", "weight the kernel holds for the real")
    want = _Family("ldirector_real_desired_weight", "gauge", "weight ldirector wants for the real")
    configured = _Family(
        "ldirector_real_configured_weight",
        "gauge",
        "weight the config gives the real (desired is lower while slow start ramps it up)",
    )
    active = _Family("ldirector_real_active_connections", "gauge", "kernel active connections")
    inactive = _Family(
        "ldirector_real_inactive_connections", "gauge", "kernel inactive connections"
    )
    conns = _Family(
        "ldirector_real_connections_total", "counter", "connections the kernel sent to the real"
    )
    rbytes = _Family(
        "ldirector_real_bytes_total", "counter", "bytes through the real (direction: in, out)"
    )
    duration = _Family(
        "ldirector_check_duration_seconds", "histogram", "how long the real's checks took"
    )
    failures = _Family(
        "ldirector_check_failures_total", "counter", "checks of the real that failed"
    )
    matches = _Family(
        "ldirector_virtual_in_sync", "gauge", "1 when the kernel holds the desired state"
    )
    vconns = _Family("ldirector_virtual_connections_total", "counter", "connections to the virtual")
    vbytes = _Family(
        "ldirector_virtual_bytes_total",
        "counter",
        "bytes through the virtual (direction: in, out)",
    )
    for v in snap.virtuals:
        virtual = f'virtual="{_label(v.service)}"'
        matches.add(virtual, int(v.matches))
        if v.in_kernel:
            vconns.add(virtual, v.connections)
            vbytes.add(f'direction="in",{virtual}', v.in_bytes)
            vbytes.add(f'direction="out",{virtual}', v.out_bytes)
        for r in v.reals:
            labels = f'real="{_label(r.real)}",{virtual}'  # label names in order, as is usual
            up.add(labels, int(r.health == "up"))
            if r.manual:
                held.add(f'real="{_label(r.real)}",state="{_label(r.manual)}",{virtual}', 1)
            configured.add(labels, r.configured_weight)
            if r.desired_weight is not None:
                want.add(labels, r.desired_weight)
            if r.kernel_weight is not None:
                weight.add(labels, r.kernel_weight)
                active.add(labels, r.active)
                inactive.add(labels, r.inactive)
                conns.add(labels, r.connections)
                rbytes.add(f'direction="in",{labels}', r.in_bytes)
                rbytes.add(f'direction="out",{labels}', r.out_bytes)
            if r.checks is not None:
                pairs = r.checks.cumulative()
                for bound, count in pairs:
                    duration.add(f'le="{bound}",{labels}', count, "_bucket")
                duration.add(labels, pairs[-1][1], "_count")
                duration.add(labels, r.checks.total_seconds, "_sum")
                failures.add(labels, r.checks.failures)
    families = (
        up,
        held,
        weight,
        want,
        configured,
        active,
        inactive,
        conns,
        rbytes,
        duration,
        failures,
    )
    parts = [
        line for f in (*families, matches, vconns, vbytes, *_daemon(snap)) for line in f.text()
    ]
    return "".join(parts).encode()


def _daemon(snap: Snapshot) -> Iterator[_Family]:
    c = snap.counters
    figures: list[tuple[str, str, str, float | None]] = [
        (
            "ldirector_reconciles_total",
            "counter",
            "comparisons of the kernel table with the desired one",
            c.reconciles,
        ),
        ("ldirector_reconcile_operations_total", "counter", "IPVS operations applied", c.ops),
        (
            "ldirector_reconcile_errors_total",
            "counter",
            "IPVS operations the kernel refused",
            c.op_errors,
        ),
        (
            "ldirector_drift_repairs_total",
            "counter",
            "resyncs that found the kernel changed behind ldirector's back and repaired it",
            c.drift_repairs,
        ),
        (
            "ldirector_start_time_seconds",
            "gauge",
            "when the daemon started (unix time)",
            snap.started,
        ),
        (
            "ldirector_last_reload_timestamp_seconds",
            "gauge",
            "when the last reload ran (unix time)",
            c.last_reload,
        ),
        (
            "ldirector_last_reload_success",
            "gauge",
            "1 when the last reload was applied",
            None if c.last_reload is None else int(bool(c.last_reload_ok)),
        ),
        (
            "ldirector_event_loop_stalls_total",
            "counter",
            "times the event loop woke up late",
            c.stalls,
        ),
        (
            "ldirector_event_loop_stall_max_seconds",
            "gauge",
            "the longest stall seen",
            c.stall_max,
        ),
    ]
    if snap.shadow is not None:
        figures += shadow.metric_lines(snap.shadow)
    if snap.sync is not None:
        yield from _sync(snap.sync)
    for name, kind, text, value in figures:
        if value is None:  # no reload yet: no figure rather than a made-up one
            continue
        family = _Family(name, kind, text)
        family.add("", value)
        yield family


def _sync(status: syncd.SyncStatus) -> Iterator[_Family]:
    families: dict[str, _Family] = {}
    for name, kind, text, labels, value in syncd.metric_rows(status):
        family = families.setdefault(name, _Family(name, kind, text))
        family.add(labels, value)
    yield from families.values()


def _number(value: float) -> str:
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    return repr(float(value))


def _label(value: str) -> str:
    """A label value, made inert (a name from outside may hold any character) and quoted as
    the format wants."""
    return inert(value).replace("\\", "\\\\").replace('"', '\\"')


def _help(text: str) -> str:
    return text.replace("\\", "\\\\").replace("\n", "\\n")
