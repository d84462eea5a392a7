"""The two Prometheus exposition formats, written by hand: text 0.0.4 and OpenMetrics 1.0.0.

Pure. A :class:`Family` holds one metric's sample lines, which are the same in both formats;
only the headers differ (OpenMetrics names a counter's family without ``_total`` and an info
metric's without ``_info``) and OpenMetrics ends with ``# EOF``. prometheus-client's objects
cost about a millisecond per real and their release holds the interpreter lock long enough to
stall the event loop, so the daemon writes the lines itself; the tests read them back with
prometheus-client's parsers and ``promtool check metrics``.
"""

from __future__ import annotations

import enum
import math
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

from ldirector.observe.render import inert


class Format(enum.Enum):
    TEXT = "text/plain; version=0.0.4; charset=utf-8"
    OPENMETRICS = "application/openmetrics-text; version=1.0.0; charset=utf-8"

    @property
    def content_type(self) -> str:
        return self.value


def negotiate(accept: str | None) -> Format:
    """The format an ``Accept`` header prefers: OpenMetrics when it names it at a quality
    above 0 and no lower than the text format's, else the text format every Prometheus reads.
    """
    openmetrics = text = 0.0
    for item in (accept or "").split(","):
        media, *params = (p.strip() for p in item.split(";"))
        quality = 1.0
        for param in params:
            key, _, raw = param.partition("=")
            if key.strip().lower() == "q":
                try:
                    quality = float(raw)
                except ValueError:
                    quality = 0.0
        match media.lower():
            case "application/openmetrics-text":
                openmetrics = max(openmetrics, quality)
            case "text/plain" | "text/*" | "*/*":
                text = max(text, quality)
    return Format.OPENMETRICS if openmetrics > 0 and openmetrics >= text else Format.TEXT


@dataclass(slots=True)
class Family:
    """One metric: name (as its samples are named: ``_total`` included for a counter, and
    ``_info`` for an info metric), type (``counter``, ``gauge``, ``histogram``, ``info``), help,
    and the sample lines, each ending in a newline."""

    name: str
    kind: str
    help: str
    lines: list[str] = field(default_factory=list)

    def add(self, labels: str, value: float, suffix: str = "") -> None:
        """One sample; ``labels`` already written (``a="x",b="y"``), or empty."""
        braces = f"{{{labels}}}" if labels else ""
        self.lines.append(f"{self.name}{suffix}{braces} {number(value)}\n")

    def headers(self, fmt: Format) -> str:
        if fmt is Format.TEXT:
            kind = "gauge" if self.kind == "info" else self.kind
            return f"# HELP {self.name} {_help(self.help)}\n# TYPE {self.name} {kind}\n"
        name = self.name
        if self.kind == "counter":
            name = name.removesuffix("_total")
        elif self.kind == "info":
            name = name.removesuffix("_info")
        return f"# TYPE {name} {self.kind}\n# HELP {name} {_help(self.help, quotes=True)}\n"


def write(families: Iterable[Family], fmt: Format) -> bytes:
    """The exposition of ``families`` in ``fmt``. A family without a sample is left out: the
    text format allows it, but a figure that does not exist is better absent than empty."""

    def parts() -> Iterator[str]:
        for family in families:
            if family.lines:
                yield family.headers(fmt)
                yield from family.lines
        if fmt is Format.OPENMETRICS:
            yield "# EOF\n"

    return "".join(parts()).encode()


def number(value: float) -> str:
    if type(value) is int:  # the common case, and exact however large
        return str(value)
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    return repr(float(value))


def label(value: str) -> str:
    """A label value, made inert (a name from outside may hold any character) and quoted as
    both formats want."""
    return inert(value).replace("\\", "\\\\").replace('"', '\\"')


def _help(text: str, *, quotes: bool = False) -> str:
    text = text.replace("\\", "\\\\").replace("\n", "\\n")
    return text.replace('"', '\\"') if quotes else text
