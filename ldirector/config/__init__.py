"""The configuration layer: ldirectord.cf text in, a frozen ``Config`` (or every diagnostic) out.

``load`` is the one entry point the daemon and the CLI use; ``find_config`` applies ldirectord's
lookup of a config name (``/etc/ha.d/NAME``, then ``/etc/ha.d/conf/NAME``, then the path itself).
"""

from ldirector.config.errors import ConfigError, Diagnostic, Severity, Span
from ldirector.config.model import (
    SERVICES,
    CheckType,
    Config,
    DaemonState,
    Fallback,
    Forward,
    Protocol,
    Real,
    Service,
    ServiceInfo,
    Virtual,
)

__all__ = [
    "SERVICES",
    "CheckType",
    "Config",
    "ConfigError",
    "DaemonState",
    "Diagnostic",
    "Fallback",
    "Forward",
    "Protocol",
    "Real",
    "Service",
    "ServiceInfo",
    "Severity",
    "Span",
    "Virtual",
]
