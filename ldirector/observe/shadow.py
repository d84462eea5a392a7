"""A shadow instance's comparison report rendered: JSON (and back), ``status -v`` text, metrics.

Pure. The report (``ldirector.core.divergence.Report``) rides on the status snapshot, so
``status --json``, ``status -v`` and ``/metrics`` show it with the rest of the daemon's state.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from ldirector.core.divergence import Episode, ItemState, Kind, Report
from ldirector.core.text import safe_text


def to_json(report: Report) -> dict[str, Any]:
    return {
        "now": report.now,
        "agrees": report.agrees,
        "agreement_seconds": report.agreement_seconds,
        "divergence_seconds": report.divergence_seconds,
        "disagreements": report.disagreements,
        "timings": report.timings,
        "items": [
            {"item": i.item, "agrees": i.agrees, "since": i.since, "cause": i.cause}
            for i in report.items
        ],
        "episodes": [
            {"item": e.item, "start": e.start, "end": e.end, "cause": e.cause, "kind": e.kind}
            for e in report.episodes
        ],
    }


def from_json(doc: Any) -> Report:
    """Inverse of :func:`to_json`; raises KeyError, TypeError or ValueError on a bad document."""
    return Report(
        now=float(doc["now"]),
        agrees=bool(doc["agrees"]),
        agreement_seconds=float(doc["agreement_seconds"]),
        divergence_seconds=float(doc["divergence_seconds"]),
        disagreements=int(doc["disagreements"]),
        timings=int(doc["timings"]),
        items=tuple(
            ItemState(str(i["item"]), bool(i["agrees"]), float(i["since"]), str(i["cause"]))
            for i in doc["items"]
        ),
        episodes=tuple(
            Episode(
                str(e["item"]),
                float(e["start"]),
                None if e["end"] is None else float(e["end"]),
                str(e["cause"]),
                Kind(e["kind"]),
            )
            for e in doc["episodes"]
        ),
    )


def render_text(report: Report, stamp: Any) -> str:
    """The shadow's section of ``status -v``; ``stamp`` formats a wall-clock time."""
    verdict = "kernel agrees with ldirector" if report.agrees else "KERNEL DIFFERS from ldirector"
    lines = [
        f"shadow: {verdict}; in agreement {report.agreement_seconds:.0f} s,"
        f" in divergence {report.divergence_seconds:.0f} s;"
        f" {report.disagreements} disagreement(s), {report.timings} timing episode(s)"
    ]
    for i in report.items:
        if not i.agrees:
            lines.append(
                f"  differs since {stamp(i.since)}: {safe_text(i.item)}: {safe_text(i.cause)}"
            )
    for e in report.episodes:
        end = "now" if e.end is None else stamp(e.end)
        lines.append(
            f"  episode {stamp(e.start)} .. {end} {e.kind}: {safe_text(e.item)}:"
            f" {safe_text(e.cause)}"
        )
    return "\n".join(lines) + "\n"


def metric_lines(report: Report) -> Iterator[tuple[str, str, str, float]]:
    """(name, type, help, value) of the shadow's figures."""
    yield (
        "ldirector_shadow_agrees",
        "gauge",
        "1 when the kernel holds what ldirector wants",
        float(report.agrees),
    )
    yield (
        "ldirector_shadow_agreement_seconds_total",
        "counter",
        "time the kernel held what ldirector wants",
        report.agreement_seconds,
    )
    yield (
        "ldirector_shadow_divergence_seconds_total",
        "counter",
        "time the kernel held something else",
        report.divergence_seconds,
    )
    yield (
        "ldirector_shadow_disagreements_total",
        "counter",
        "divergence episodes longer than both managers' detection windows",
        float(report.disagreements),
    )
    yield (
        "ldirector_shadow_timing_episodes_total",
        "counter",
        "divergence episodes within both managers' detection windows",
        float(report.timings),
    )
