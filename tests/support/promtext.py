"""Reading ldirector's /metrics back as Prometheus does: prometheus-client's own parsers."""

from __future__ import annotations

from collections.abc import Callable, Iterator

from prometheus_client.metrics_core import Metric
from prometheus_client.openmetrics import parser as openmetrics_parser
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample

from ldirector.observe.exposition import Format

#: prometheus-client's OpenMetrics parser, which it ships without annotations.
openmetrics_families: Callable[[str], Iterator[Metric]] = (
    openmetrics_parser.text_string_to_metric_families
)


def samples(text: str, fmt: Format = Format.TEXT) -> dict[str, list[Sample]]:
    """Every sample of an exposition, by sample name."""
    parse = openmetrics_families if fmt is Format.OPENMETRICS else text_string_to_metric_families
    found: dict[str, list[Sample]] = {}
    for family in parse(text):
        for sample in family.samples:
            found.setdefault(sample.name, []).append(sample)
    return found


def value(found: dict[str, list[Sample]], name: str, **labels: str) -> float:
    """The one sample of ``name`` with these labels."""
    (match,) = [s for s in found[name] if all(s.labels.get(k) == v for k, v in labels.items())]
    return match.value
