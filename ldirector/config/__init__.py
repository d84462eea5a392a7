"""The configuration layer: ldirectord.cf text in, a frozen ``Config`` (or every diagnostic) out.

``load`` is the one entry point the daemon and the CLI use; ``find_config`` applies ldirectord's
lookup of a config name (``/etc/ha.d/NAME``, then ``/etc/ha.d/conf/NAME``, then the path itself).
``parse_port`` and ``parse_fwmark`` are the number grammars other layers share with the config.
"""

from __future__ import annotations

from ldirector.config.errors import ConfigError, Diagnostic, Severity, Span
from ldirector.config.loader import (
    MAX_FILE,
    SEARCH_DIRS,
    driver_available,
    find_config,
    hostname,
    load,
    loads,
)
from ldirector.config.model import (
    SERVICES,
    CheckService,
    CheckType,
    Config,
    DaemonState,
    Fallback,
    MailAddress,
    Real,
    ServiceInfo,
    ServiceProtocol,
    SmtpServer,
    Virtual,
)
from ldirector.config.names import Resolver
from ldirector.config.values import Invalid, parse_fwmark, parse_port
from ldirector.ipvs.types import Forward

__all__ = [
    "MAX_FILE",
    "SEARCH_DIRS",
    "SERVICES",
    "CheckService",
    "CheckType",
    "Config",
    "ConfigError",
    "DaemonState",
    "Diagnostic",
    "Fallback",
    "Forward",
    "Invalid",
    "MailAddress",
    "Real",
    "Resolver",
    "ServiceInfo",
    "ServiceProtocol",
    "Severity",
    "SmtpServer",
    "Span",
    "Virtual",
    "driver_available",
    "find_config",
    "hostname",
    "load",
    "loads",
    "parse_fwmark",
    "parse_port",
]
