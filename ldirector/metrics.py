"""Prometheus exposition of a status snapshot (``/metrics``).

Sits at the HTTP edge: a custom prometheus-client Collector reads one :class:`Snapshot`, taken
at scrape time, so nothing is kept twice and every figure is as fresh as the kernel dump. The
exposition format itself is prometheus-client's, never written by hand.
"""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector

from ldirector.status import Snapshot

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
_REAL = ["virtual", "real"]


class SnapshotCollector(Collector):
    """Every ldirector metric, from one snapshot."""

    def __init__(self, snap: Snapshot) -> None:
        self.snap = snap

    def collect(self) -> Iterator[Metric]:
        snap = self.snap
        up = GaugeMetricFamily("ldirector_real_up", "1 when the real's checks pass", labels=_REAL)
        held = GaugeMetricFamily(
            "ldirector_real_manual",
            "1 when an operator holds the real out (state: disabled or draining)",
            labels=[*_REAL, "state"],
        )
        weight = GaugeMetricFamily(
            "ldirector_real_weight", "weight the kernel holds for the real", labels=_REAL
        )
        want = GaugeMetricFamily(
            "ldirector_real_desired_weight", "weight ldirector wants for the real", labels=_REAL
        )
        active = GaugeMetricFamily(
            "ldirector_real_active_connections", "kernel active connections", labels=_REAL
        )
        inactive = GaugeMetricFamily(
            "ldirector_real_inactive_connections", "kernel inactive connections", labels=_REAL
        )
        conns = CounterMetricFamily(
            "ldirector_real_connections", "connections the kernel sent to the real", labels=_REAL
        )
        rbytes = CounterMetricFamily(
            "ldirector_real_bytes",
            "bytes through the real (direction: in, out)",
            labels=[*_REAL, "direction"],
        )
        duration = HistogramMetricFamily(
            "ldirector_check_duration_seconds", "how long the real's checks took", labels=_REAL
        )
        failures = CounterMetricFamily(
            "ldirector_check_failures", "checks of the real that failed", labels=_REAL
        )
        matches = GaugeMetricFamily(
            "ldirector_virtual_in_sync",
            "1 when the kernel holds the desired state",
            labels=["virtual"],
        )
        vconns = CounterMetricFamily(
            "ldirector_virtual_connections", "connections to the virtual", labels=["virtual"]
        )
        vbytes = CounterMetricFamily(
            "ldirector_virtual_bytes",
            "bytes through the virtual (direction: in, out)",
            labels=["virtual", "direction"],
        )
        for v in snap.virtuals:
            matches.add_metric([v.service], int(v.matches))
            if v.in_kernel:
                vconns.add_metric([v.service], v.connections)
                vbytes.add_metric([v.service, "in"], v.in_bytes)
                vbytes.add_metric([v.service, "out"], v.out_bytes)
            for r in v.reals:
                labels = [v.service, r.real]
                up.add_metric(labels, int(r.health == "up"))
                if r.manual:
                    held.add_metric([*labels, r.manual], 1)
                if r.desired_weight is not None:
                    want.add_metric(labels, r.desired_weight)
                if r.kernel_weight is not None:
                    weight.add_metric(labels, r.kernel_weight)
                    active.add_metric(labels, r.active)
                    inactive.add_metric(labels, r.inactive)
                    conns.add_metric(labels, r.connections)
                    rbytes.add_metric([*labels, "in"], r.in_bytes)
                    rbytes.add_metric([*labels, "out"], r.out_bytes)
                if r.checks is not None:
                    duration.add_metric(labels, r.checks.cumulative(), r.checks.total_seconds)
                    failures.add_metric(labels, r.checks.failures)
        yield from (up, held, weight, want, active, inactive, conns, rbytes, duration, failures)
        yield from (matches, vconns, vbytes)
        yield from _daemon(snap)


def _daemon(snap: Snapshot) -> Iterator[Metric]:
    c = snap.counters
    yield CounterMetricFamily(
        "ldirector_reconciles",
        "comparisons of the kernel table with the desired one",
        value=c.reconciles,
    )
    yield CounterMetricFamily(
        "ldirector_reconcile_operations", "IPVS operations applied", value=c.ops
    )
    yield CounterMetricFamily(
        "ldirector_reconcile_errors", "IPVS operations the kernel refused", value=c.op_errors
    )
    yield CounterMetricFamily(
        "ldirector_drift_repairs",
        "resyncs that found the kernel changed behind ldirector's back and repaired it",
        value=c.drift_repairs,
    )
    yield GaugeMetricFamily(
        "ldirector_start_time_seconds", "when the daemon started (unix time)", value=snap.started
    )
    if c.last_reload is not None:
        yield GaugeMetricFamily(
            "ldirector_last_reload_timestamp_seconds",
            "when the last reload ran (unix time)",
            value=c.last_reload,
        )
        yield GaugeMetricFamily(
            "ldirector_last_reload_success",
            "1 when the last reload was applied",
            value=int(bool(c.last_reload_ok)),
        )
    yield CounterMetricFamily(
        "ldirector_event_loop_stalls", "times the event loop woke up late", value=c.stalls
    )
    yield GaugeMetricFamily(
        "ldirector_event_loop_stall_max_seconds", "the longest stall seen", value=c.stall_max
    )


def exposition(snap: Snapshot) -> bytes:
    """The Prometheus text format for one snapshot."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(SnapshotCollector(snap))
    return generate_latest(registry)
