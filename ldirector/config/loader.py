"""Reading a config: ldirectord's lookup of a config name, the file checks, and the three stages.

``lex`` -> ``parse_lines`` -> ``build``; every diagnostic of the three is collected into one
``ConfigError``, so a single run reports everything wrong with a file.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import os
import stat
from collections.abc import Callable, Sequence
from pathlib import Path

from ldirector.config.build import build
from ldirector.config.errors import ConfigError, Diagnostic, Severity, Span, internal_error
from ldirector.config.lexer import lex
from ldirector.config.model import Config
from ldirector.config.names import Resolver, system_resolver
from ldirector.config.parser import parse_lines
from ldirector.config.syncd import InterfaceLookup, interface_exists
from ldirector.config.syncd import build as build_sync

#: ldirectord looks a config name up in these directories before taking it as a path.
SEARCH_DIRS = ("/etc/ha.d", "/etc/ha.d/conf")
#: The config ldirectord reads when none is named.
DEFAULT_CONFIG = "ldirectord.cf"
MAX_FILE = 256 * 1024 * 1024  # far beyond any real config; refuse rather than exhaust memory


def find_config(arg: str | None = None, search: Sequence[str] = SEARCH_DIRS) -> Path:
    """ldirectord's lookup: ``/etc/ha.d/ARG``, then ``/etc/ha.d/conf/ARG``, then ARG itself.

    The default name is ``ldirectord.cf``. The result may not exist; ``load`` reports that.
    """
    name = arg or DEFAULT_CONFIG
    for directory in search:
        candidate = Path(directory + "/" + name)
        if candidate.is_file():
            return candidate
    return Path(name)


def driver_available(module: str) -> bool:
    """Whether the optional Python module a service check needs can be imported."""
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False


def hostname() -> str:
    """ldirectord's ``$HOSTNAME``: the environment variable, else the node name."""
    return os.environ.get("HOSTNAME") or os.uname().nodename


def load(
    path: str | os.PathLike[str],
    *,
    resolver: Resolver | None = None,
    host: str | None = None,
    have_driver: Callable[[str], bool] = driver_available,
    has_interface: InterfaceLookup = interface_exists,
) -> Config:
    """Read and validate a config file; raise ``ConfigError`` carrying every diagnostic.

    ``has_interface`` says whether a sync daemon's network interface exists."""
    name = os.fspath(path)
    try:
        # O_NONBLOCK: opening a FIFO must not hang `ldirector check`; it is refused just below.
        fd = os.open(name, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    except IsADirectoryError:
        raise _fail(name, "is a directory, not a config file") from None
    except FileNotFoundError:
        raise _fail(name, "config file not found") from None
    except OSError as exc:
        raise _fail(name, f"cannot read config file: {exc.strerror or exc}") from None
    mode = os.fstat(fd).st_mode
    if not stat.S_ISREG(mode):
        os.close(fd)
        if stat.S_ISDIR(mode):
            raise _fail(name, "is a directory, not a config file")
        raise _fail(name, "is not a regular file")
    with open(fd, "rb") as f:
        try:
            data = f.read(MAX_FILE + 1)
        except OSError as exc:
            raise _fail(name, f"cannot read config file: {exc.strerror or exc}") from None
    if len(data) > MAX_FILE:
        raise _fail(name, f"config file is larger than {MAX_FILE // (1024 * 1024)} MiB")
    return loads(
        data,
        name,
        resolver=resolver,
        host=host,
        have_driver=have_driver,
        has_interface=has_interface,
    )


def loads(
    data: bytes | str,
    path: str = "<string>",
    *,
    resolver: Resolver | None = None,
    host: str | None = None,
    have_driver: Callable[[str], bool] = driver_available,
    has_interface: InterfaceLookup = interface_exists,
) -> Config:
    """Like ``load`` for config text already in memory; ``path`` is used in diagnostics."""
    raw = data.encode("utf-8", "surrogateescape") if isinstance(data, str) else data
    try:
        lines, diags = lex(raw, path)
        parsed = parse_lines(lines, resolver or system_resolver())
        config, built = build(path, parsed, host or hostname(), have_driver)
        daemons, synced = build_sync(parsed.globals.sync, has_interface)
        config = dataclasses.replace(config, syncdaemons=daemons)
    except Exception as exc:  # a bug the per-line guards missed: still a diagnostic, not a crash
        raise _fail(path, internal_error("the config", exc)) from exc
    every = sorted([*diags, *parsed.diagnostics, *built, *synced], key=lambda d: d.span.line)
    if any(d.severity is Severity.ERROR for d in every):
        raise ConfigError(tuple(every))
    return dataclasses.replace(config, warnings=tuple(every))


def _fail(path: str, message: str) -> ConfigError:
    return ConfigError((Diagnostic(Severity.ERROR, Span(path), message),))
