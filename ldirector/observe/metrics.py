"""Prometheus metrics of a status snapshot (``/metrics``).

Sits at the HTTP edge and reads one :class:`Snapshot`, so nothing is kept twice and every
figure is as fresh as the snapshot; the formats are ``ldirector.observe.exposition``'s.

What is per real is what operators alert on and graph per server (health, weights, the
kernel's counts, failed checks): about ten samples a real. Check durations are a histogram per
virtual, not per real: fifteen samples a real made a director of 10,000 reals a scrape of a
quarter of a million samples.
"""

from __future__ import annotations

import platform
from collections.abc import Iterator

import ldirector
from ldirector.observe import process, shadow, syncd
from ldirector.observe.exposition import Family, Format, label, number, write
from ldirector.observe.snapshot import BUCKETS, RealStatus, Snapshot

#: The text format's content type, for callers that do not negotiate.
CONTENT_TYPE = Format.TEXT.content_type

_LE = [f'le="{b}"' for b in (*map(str, BUCKETS), "+Inf")]


def exposition(snap: Snapshot, fmt: Format = Format.TEXT) -> bytes:
    """The exposition of one snapshot, with the process's own figures read now."""
    return write((*_reals(snap), *_virtuals(snap), *_daemon(snap), *process.families()), fmt)


def _reals(snap: Snapshot) -> list[Family]:
    up = Family("ldirector_real_up", "gauge", "1 when the real's checks pass")
    held = Family(
        "ldirector_real_manual",
        "gauge",
        "1 when an operator holds the real out (state: disabled or draining)",
    )
    weight = Family("ldirector_real_weight", "gauge", "weight the kernel holds for the real")
    want = Family("ldirector_real_desired_weight", "gauge", "weight ldirector wants for the real")
    configured = Family(
        "ldirector_real_configured_weight",
        "gauge",
        "weight the config gives the real (desired is lower while slow start ramps it up)",
    )
    active = Family("ldirector_real_active_connections", "gauge", "kernel active connections")
    inactive = Family("ldirector_real_inactive_connections", "gauge", "kernel inactive connections")
    conns = Family(
        "ldirector_real_connections_total", "counter", "connections the kernel sent to the real"
    )
    rbytes = Family(
        "ldirector_real_bytes_total", "counter", "bytes through the real (direction: in, out)"
    )
    checks = Family("ldirector_checks_total", "counter", "checks of the real")
    failures = Family("ldirector_check_failures_total", "counter", "checks of the real that failed")
    # Bound methods and f-strings inline: this loop writes ~100,000 lines at 10,000 reals.
    a_up, a_weight, a_want = up.lines.append, weight.lines.append, want.lines.append
    a_conf, a_act, a_inact = configured.lines.append, active.lines.append, inactive.lines.append
    a_conns, a_bytes = conns.lines.append, rbytes.lines.append
    a_checks, a_fail = checks.lines.append, failures.lines.append
    for v in snap.virtuals:
        virtual = f'virtual="{label(v.service)}"'
        for r in v.reals:
            real = label(r.real)
            labels = f'{{real="{real}",{virtual}}} '  # label names in order, as is usual
            a_up(f"ldirector_real_up{labels}{int(r.health == 'up')}\n")
            if r.manual:
                held.add(f'real="{real}",state="{label(r.manual)}",{virtual}', 1)
            a_conf(f"ldirector_real_configured_weight{labels}{r.configured_weight}\n")
            if r.desired_weight is not None:
                a_want(f"ldirector_real_desired_weight{labels}{r.desired_weight}\n")
            if r.kernel_weight is not None:
                a_weight(f"ldirector_real_weight{labels}{r.kernel_weight}\n")
                a_act(f"ldirector_real_active_connections{labels}{r.active}\n")
                a_inact(f"ldirector_real_inactive_connections{labels}{r.inactive}\n")
                a_conns(f"ldirector_real_connections_total{labels}{r.connections}\n")
                a_bytes(f'ldirector_real_bytes_total{{direction="in",{labels[1:]}{r.in_bytes}\n')
                a_bytes(f'ldirector_real_bytes_total{{direction="out",{labels[1:]}{r.out_bytes}\n')
            if r.checks is not None:
                a_checks(f"ldirector_checks_total{labels}{r.checks.count}\n")
                a_fail(f"ldirector_check_failures_total{labels}{r.checks.failures}\n")
    return [up, held, weight, want, configured, active, inactive, conns, rbytes, checks, failures]


def _virtuals(snap: Snapshot) -> list[Family]:
    matches = Family(
        "ldirector_virtual_in_sync", "gauge", "1 when the kernel holds the desired state"
    )
    serving = Family(
        "ldirector_virtual_reals_in_service",
        "gauge",
        "configured reals the kernel holds at a weight above 0",
    )
    fallback = Family(
        "ldirector_virtual_fallback_active", "gauge", "1 when the kernel holds the fallback server"
    )
    vconns = Family("ldirector_virtual_connections_total", "counter", "connections to the virtual")
    vbytes = Family(
        "ldirector_virtual_bytes_total",
        "counter",
        "bytes through the virtual (direction: in, out)",
    )
    duration = Family(
        "ldirector_check_duration_seconds",
        "histogram",
        "how long the checks of the virtual's reals took",
    )
    for v in snap.virtuals:
        virtual = f'virtual="{label(v.service)}"'
        matches.add(virtual, int(v.matches))
        serving.add(virtual, sum(1 for r in v.reals if r.kernel_weight))
        fallback.add(virtual, int(v.fallback_active))
        if v.in_kernel:
            vconns.add(virtual, v.connections)
            vbytes.add(f'direction="in",{virtual}', v.in_bytes)
            vbytes.add(f'direction="out",{virtual}', v.out_bytes)
        _durations(duration, virtual, v.reals)
    return [matches, serving, fallback, vconns, vbytes, duration]


def _durations(family: Family, virtual: str, reals: tuple[RealStatus, ...]) -> None:
    """One histogram of the checks of a virtual's reals (a probe two reals share counts for
    each, as it tells about each)."""
    buckets = [0] * (len(BUCKETS) + 1)
    count, total = 0, 0.0
    for r in reals:
        if r.checks is not None:
            count += r.checks.count
            total += r.checks.total_seconds
            for i, n in enumerate(r.checks.buckets):
                buckets[i] += n
    if not count:
        return
    running, name = 0, family.name
    for le, n in zip(_LE, buckets, strict=True):
        running += n
        family.lines.append(f"{name}_bucket{{{le},{virtual}}} {running}\n")
    family.lines.append(f"{name}_count{{{virtual}}} {count}\n")
    family.lines.append(f"{name}_sum{{{virtual}}} {number(total)}\n")


def _daemon(snap: Snapshot) -> Iterator[Family]:
    info = Family("ldirector_build_info", "info", "the running ldirector's version")
    info.add(
        f'python="{label(platform.python_version())}",version="{label(ldirector.__version__)}"', 1
    )
    yield info
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
            # No reload yet: no figure rather than a made-up one.
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
        (
            "ldirector_checks_waiting",
            "gauge",
            "checks due but waiting for the event loop to catch up (running behind)",
            c.checks_waiting,
        ),
        (
            "ldirector_checks_unjudged_total",
            "counter",
            "checks that timed out while ldirector itself ran behind, and were not judged",
            c.checks_unjudged,
        ),
    ]
    if snap.shadow is not None:
        figures += shadow.metric_lines(snap.shadow)
    for name, kind, text, value in figures:
        family = Family(name, kind, text)
        if value is not None:
            family.add("", value)
        yield family
    if snap.sync is not None:
        yield from _sync(snap.sync)


def _sync(status: syncd.SyncStatus) -> Iterator[Family]:
    families: dict[str, Family] = {}
    for name, kind, text, labels, value in syncd.metric_rows(status):
        family = families.setdefault(name, Family(name, kind, text))
        family.add(labels, value)
    yield from families.values()
