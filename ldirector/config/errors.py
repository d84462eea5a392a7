"""Diagnostics of the config layer: where a problem is (Span), what it is, and the error type.

Every stage of ``ldirector.config`` reports through these; ``load`` raises ``ConfigError`` carrying
all of them at once, GCC-style, so editors can jump to each line.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Span:
    """A place in a config file. ``line`` is 1-based; 0 means the file as a whole."""

    file: str
    line: int = 0

    def __str__(self) -> str:
        return f"{self.file}:{self.line}" if self.line > 0 else self.file


class Severity(enum.StrEnum):
    """How bad a diagnostic is: errors make the config invalid, warnings do not."""

    ERROR = "error"
    WARNING = "warning"


@dataclass(frozen=True, slots=True)
class Diagnostic:
    """One message about the config, printed as ``FILE:LINE: error: MESSAGE``."""

    severity: Severity
    span: Span
    message: str

    def __str__(self) -> str:
        return f"{self.span}: {self.severity}: {self.message}"


class ConfigError(Exception):
    """The config is invalid; ``diagnostics`` holds every error and warning of the one pass."""

    def __init__(self, diagnostics: tuple[Diagnostic, ...]) -> None:
        self.diagnostics = diagnostics
        errors = [d for d in diagnostics if d.severity is Severity.ERROR]
        super().__init__("\n".join(str(d) for d in errors) or "invalid configuration")

    @property
    def errors(self) -> tuple[Diagnostic, ...]:
        """Only the errors, in file order."""
        return tuple(d for d in self.diagnostics if d.severity is Severity.ERROR)

    @property
    def warnings(self) -> tuple[Diagnostic, ...]:
        """Only the warnings, in file order."""
        return tuple(d for d in self.diagnostics if d.severity is Severity.WARNING)


def internal_error(what: str, exc: Exception) -> str:
    """The last-resort message for an exception no check foresaw (a bug in ldirector)."""
    detail = " ".join(str(exc).split())
    if len(detail) > 120:
        detail = detail[:117] + "..."
    return f"internal error while reading {what}: {type(exc).__name__}" + (
        f": {detail}" if detail else ""
    )
