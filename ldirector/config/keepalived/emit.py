"""The converted configuration and its ldirectord.cf text.

The converter fills these with values it has already validated (addresses parsed, numbers in
range, strings free of quotes and control characters), so the text written here is one that
``ldirector check`` accepts.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ldirector.config.errors import Span
from ldirector.config.values import IPAddress


@dataclass(frozen=True, slots=True)
class OutReal:
    """One ``real=`` line."""

    address: IPAddress
    port: int | None
    forward: str
    weight: int
    lower: int = 0
    upper: int = 0
    #: Per-real request and receive, when this real's check differs from the virtual's.
    request: str | None = None
    receive: str | None = None

    def line(self) -> str:
        key = "real6" if self.address.version == 6 else "real"
        host = f"[{self.address}]" if self.address.version == 6 else str(self.address)
        where = host if self.port is None else f"{host}:{self.port}"
        words = [where, self.forward, str(self.weight)]
        if self.request is not None and self.receive is not None:
            words.append(f'"{self.request}","{self.receive}"')
        if self.lower:
            words.append(f"l:{self.lower}")
        if self.upper:
            words.append(f"u:{self.upper}")
        return f"{key}={' '.join(words)}"


@dataclass(frozen=True, slots=True)
class OutVirtual:
    """One virtual block: where it came from, its address, reals and settings in order."""

    span: Span
    family: int
    address: IPAddress | None
    port: int
    fwmark: int | None
    reals: tuple[OutReal, ...]
    settings: tuple[tuple[str, str], ...]

    @property
    def key(self) -> tuple[object, ...]:
        """What the kernel tells services apart by (protocol is one of the settings)."""
        protocol = dict(self.settings).get("protocol", "")
        return (protocol, self.family, self.address, self.port, self.fwmark)

    def lines(self) -> list[str]:
        key = "virtual6" if self.family == 6 else "virtual"
        if self.fwmark is not None:
            where = str(self.fwmark)
        elif self.address is not None and self.address.version == 6:
            where = f"[{self.address}]:{self.port}"
        else:
            where = f"{self.address}:{self.port}"
        out = [f"# {_comment(str(self.span))}", f"{key}={where}"]
        out += [f"\t{real.line()}" for real in self.reals]
        out += [f"\t{name}={value}" for name, value in self.settings]
        return out


@dataclass
class OutConfig:
    """Global settings and virtual blocks, in the order they are written."""

    source: str
    globals: list[tuple[str, str]] = field(default_factory=list)
    virtuals: list[OutVirtual] = field(default_factory=list)

    def text(self) -> str:
        lines = [
            f"# ldirectord.cf converted from {_comment(self.source)} by ldirector import.",
            "# keepalived settings that could not be converted were reported at their line.",
            "# Each block names the keepalived line it comes from.",
            "",
        ]
        lines += [f"{name}={value}" for name, value in self.globals]
        for virtual in self.virtuals:
            lines.append("")
            lines += virtual.lines()
        return "\n".join(lines) + "\n"


def _comment(text: str) -> str:
    """Text safe on a comment line: no line breaks or other control characters."""
    return "".join(ch if ch.isprintable() else "?" for ch in text)


def quote(value: str) -> str:
    """A value as ldirectord.cf writes it: in double quotes (the converter never passes one)."""
    return f'"{value}"'


def number(value: float) -> str:
    """Seconds as written in a config: ``5`` rather than ``5.0``."""
    return str(int(value)) if value == int(value) else repr(value)
