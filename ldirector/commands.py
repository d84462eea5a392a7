"""The ldirectord verbs (start, stop, restart, try-restart, reload, force-reload, status).

Sits between ``cli`` and the process edge: parses the ldirectord command line, applies the
pid-file rules of ``process``, and runs the daemon through an injected ``ServiceFactory`` so the
engine (or, in tests, a minimal body) plugs in. Messages, streams and exit codes are
ldirectord's (reference 1.2), except that ``stop`` and ``status`` no longer depend on the
config file parsing (B2), and ``stop`` waits, with a bound, for the daemon's cleanup.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import stat
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

from ldirector import __version__, logs, process
from ldirector.config import Config
from ldirector.daemon import serve
from ldirector.process import (
    ConfigInvalid,
    DaemonContext,
    Loader,
    Service,
    ServiceFactory,
    Settings,
)

VERBS = ("start", "stop", "restart", "try-restart", "reload", "force-reload", "status")
CONFIG_DIRS = (Path("/etc/ha.d"), Path("/etc/ha.d/conf"))
DEFAULT_CONFIG = "ldirectord.cf"
STOP_TIMEOUT = 60.0
USAGE_EXIT = 255

USAGE = """\
Usage:
    ldirectord [-d|--debug] [--] [configfile]
               start|stop|restart|try-restart|reload|force-reload|status
    ldirectord [-h|-?|--help|-v|--version]

Options:
    -d, --debug    stay in the foreground, write no pid file, log to stderr
    -h, --help     show this help
    -v, --version  show the version
"""

log = logging.getLogger(logs.LOGGER_NAME)


@dataclass(frozen=True, slots=True)
class Invocation:
    """One parsed command line."""

    argv: tuple[str, ...]
    verb: str
    config_arg: str
    cfgname: str
    debug: bool


@dataclass(frozen=True, slots=True)
class Streams:
    out: TextIO
    err: TextIO


def parse_argv(argv: list[str], streams: Streams) -> Invocation | int:
    """ldirectord's grammar: options first, then ``[configfile] command``. An int is an exit."""
    debug = False
    rest = list(argv)
    while rest and rest[0].startswith("-") and rest[0] != "-":
        opt = rest.pop(0)
        if opt == "--":
            break
        if opt in ("-d", "--debug"):
            debug = True
        elif opt in ("-h", "-?", "--help"):
            streams.out.write(USAGE)
            return 0
        elif opt in ("-v", "--version"):
            streams.out.write(version_text())
            return 0
        else:
            streams.err.write(f"Unknown option: {opt.lstrip('-')}\n{USAGE}")
            return USAGE_EXIT
    if len(rest) not in (1, 2) or rest[-1] not in VERBS:
        streams.err.write(USAGE)
        return USAGE_EXIT
    config_arg = rest[0] if len(rest) == 2 else DEFAULT_CONFIG
    cfgname = os.path.basename(config_arg) if len(rest) == 2 else "ldirectord"
    return Invocation(tuple(argv), rest[-1], config_arg, cfgname, debug)


def version_text() -> str:
    return (
        f"{logs.VERSION_LINE} (ldirector {__version__})\n"
        "A drop-in replacement for ldirectord, the Linux Virtual Server health-check manager.\n"
        "Licensed under the Apache License, Version 2.0.\n"
    )


def resolve_config(arg: str, dirs: tuple[Path, ...] = CONFIG_DIRS) -> Path | None:
    """``/etc/ha.d/<arg>``, then ``/etc/ha.d/conf/<arg>``, then ``<arg>`` as a path."""
    for directory in dirs:
        candidate = directory / arg
        if candidate.is_file():
            return candidate
    path = Path(arg)
    return path if path.is_file() else None


def secret_exposure_warning(path: Path, has_secrets: bool) -> str | None:
    """Issue item 9: passwords in a file other users can read deserve a loud warning."""
    if not has_secrets:
        return None
    try:
        mode = path.stat().st_mode
    except OSError:
        return None
    if mode & (stat.S_IROTH | stat.S_IWOTH):
        return (
            f"{path}: warning: holds passwords or secrets but is readable by other users"
            f" (chmod o-rwx {path})"
        )
    return None


class Commands:
    """The verbs, bound to one invocation and its injected loader, daemon body and streams."""

    def __init__(
        self,
        inv: Invocation,
        *,
        load: Loader,
        service: ServiceFactory,
        streams: Streams,
        run_dir: Path | None = None,
        stop_timeout: float = STOP_TIMEOUT,
    ) -> None:
        self.inv = inv
        self.load = load
        self.service = service
        self.streams = streams
        self.pid_file = process.pid_path(inv.cfgname, run_dir)
        self.stop_timeout = stop_timeout
        self.config_path = resolve_config(inv.config_arg)

    @property
    def config_name(self) -> str:
        """How messages name the config: its resolved path, or the argument as given."""
        return str(self.config_path) if self.config_path else self.inv.config_arg

    def run(self) -> int:
        verb = self.inv.verb.replace("-", "_")
        handler: Callable[[], int] = getattr(self, f"do_{verb}")
        return handler()

    # -- config ----------------------------------------------------------------------------

    def _load(self) -> Settings | int:
        """The settings, or an exit code (1 missing, 2 invalid) after saying why."""
        if self.config_path is None:
            self.streams.err.write(f"Config file {self.inv.config_arg} not found\n")
            return 1
        try:
            settings = self.load(self.config_path)
        except ConfigInvalid as exc:
            for line in exc.diagnostics:
                self.streams.err.write(line + "\n")
            self.streams.err.write(logs.config_error_exit_message() + "\n")
            return 2
        for line in settings.warnings:
            self.streams.err.write(line + "\n")
        warning = secret_exposure_warning(self.config_path, bool(settings.secrets))
        if warning:
            self.streams.err.write(warning + "\n")
        return settings

    def _load_quietly(self) -> Settings | None:
        """For stop/status: the config only adds execute= instances, never blocks the verb."""
        if self.config_path is None:
            return None
        try:
            return self.load(self.config_path)
        except ConfigInvalid:
            return None

    # -- verbs -----------------------------------------------------------------------------

    def do_status(self) -> int:
        status = process.probe(self.pid_file)
        if status.state is process.PidState.RUNNING:
            self.streams.err.write(
                f"ldirectord for {self.config_name} is running with pid: {status.pid}\n"
            )
            settings = self._load_quietly()
            if settings:
                self.run_children("status", settings.execute)
            return 0
        if status.state is process.PidState.STALE:
            self.streams.err.write(
                f"ldirectord stale pid file {self.pid_file} for {self.config_name}\n"
            )
        self.streams.out.write(logs.stopped_message(self.config_name) + "\n")
        return 1 if status.state is process.PidState.STALE else 3

    def do_stop(self) -> int:
        settings = self._load_quietly()
        if settings:
            self.run_children("stop", settings.execute)
        return self._stop_own()

    def _stop_own(self) -> int:
        status = process.probe(self.pid_file)
        if status.state is process.PidState.STALE:
            process.remove_stale_pid_file(status)
            return 0
        if status.state is process.PidState.STOPPED or status.pid is None:
            return 0
        if process.terminate(status.pid, self.stop_timeout):
            return 0
        self.streams.err.write(
            f"ldirectord for {self.config_name} (pid {status.pid}) did not stop"
            f" within {self.stop_timeout:g} s\n"
        )
        return 1

    def do_start(self, loaded: Settings | None = None) -> int:
        settings = loaded or self._load()
        if isinstance(settings, int):
            return settings
        status = process.probe(self.pid_file)
        if status.state is process.PidState.RUNNING:
            return 0
        process.remove_stale_pid_file(status)
        return serve(
            self.inv.argv,
            # Absolute: the daemon chdirs to / and re-reads the file on reload.
            config_path=(self.config_path or Path(self.inv.config_arg)).absolute(),
            cfgname=self.inv.cfgname,
            settings=settings,
            load=self.load,
            service=self.service,
            debug=self.inv.debug,
            pid_file=self.pid_file,
            children=self.run_children,
        )

    def do_restart(self) -> int:
        # Validate before stopping: a typo must not turn a restart into an outage.
        settings = self._load()
        if isinstance(settings, int):
            return settings
        code = self._stop_own()
        return code if code else self.do_start(settings)

    def do_try_restart(self) -> int:
        if process.probe(self.pid_file).state is not process.PidState.RUNNING:
            return 0
        return self.do_restart()

    def do_reload(self) -> int:
        status = process.probe(self.pid_file)
        if status.state is not process.PidState.RUNNING or status.pid is None:
            message = logs.stopped_message(self.config_name)
            self.streams.err.write(message + "\n")
            return 1
        # The daemon would keep its old config anyway; refusing here tells the operator why.
        settings = self._load()
        if isinstance(settings, int):
            return settings
        try:
            os.kill(status.pid, signal.SIGHUP)
        except ProcessLookupError:
            self.streams.err.write(logs.stopped_message(self.config_name) + "\n")
            return 1
        return 0

    do_force_reload = do_reload

    # -- execute= instances ----------------------------------------------------------------

    def run_children(self, verb: str, lines: tuple[str, ...]) -> None:
        """Run ``ldirectord <child> <verb>`` for each execute= line; their output passes through.

        The daemon starts its instances once ready, reloads, adds and removes them on reload,
        and stops them on exit; ``status`` reports them and ``stop`` makes sure they are down.
        """
        for child in lines:
            argv = [*self_command(), *_split(child), verb]
            try:
                done = subprocess.run(
                    argv, capture_output=True, text=True, timeout=self.stop_timeout + 10
                )
            except (OSError, subprocess.TimeoutExpired) as exc:
                self.streams.err.write(f"execute={child}: {verb} failed: {exc}\n")
                log.error("execute=%s: %s failed: %s", child, verb, exc)
                continue
            if done.returncode not in (0, 3) or (verb != "status" and done.returncode):
                log.error("execute=%s: %s exited with %d", child, verb, done.returncode)
            self.streams.out.write(done.stdout)
            self.streams.err.write(done.stderr)


def _split(value: str) -> list[str]:
    import shlex

    try:
        return shlex.split(value)
    except ValueError:
        return [value]


def self_command() -> list[str]:
    """How to run this same program again (for execute= instances), whatever launched it."""
    argv0 = sys.argv[0] if sys.argv and sys.argv[0] else "ldirector"
    if argv0 in ("-m", "-c") or argv0.endswith("__main__.py"):
        return [sys.executable, "-m", "ldirector"]
    path = os.path.abspath(argv0)
    if path.endswith(".py") or not os.access(path, os.X_OK):
        return [sys.executable, path]
    return [path]


def load_settings(path: Path) -> Settings:
    """The production loader: ``ldirector.config.load`` mapped to ``Settings``."""
    from ldirector.config import ConfigError, load

    try:
        model = load(path)
    except ConfigError as exc:
        raise ConfigInvalid(tuple(str(d) for d in exc.diagnostics)) from None
    return settings_from_config(model)


def settings_from_config(model: Config) -> Settings:
    """The parts of the config model the process edge reads."""
    secrets = {v.passwd for v in model.virtuals} | {v.secret for v in model.virtuals}
    return Settings(
        logfile=model.logfile,
        supervised=model.supervised,
        execute=model.execute,
        secrets=tuple(sorted(s for s in secrets if s)),
        warnings=tuple(str(w) for w in model.warnings),
        autoreload=model.autoreload,
        callback=model.callback,
        poll_interval=model.checkinterval,
        config=model,
    )


class IdleService:
    """A body that only waits to be stopped: the stand-in the command-line tests run."""

    def __init__(self, ctx: DaemonContext) -> None:
        self.ctx = ctx
        self._stopped = asyncio.Event()

    async def run(self) -> None:
        self.ctx.ready()
        await self._stopped.wait()

    async def reload(self, settings: Settings) -> None:
        self.ctx.settings = settings

    def reload_rejected(self) -> None:
        """Nothing to record: the idle body has no metrics."""

    def stop(self) -> None:
        self._stopped.set()


def default_service(ctx: DaemonContext) -> Service:
    """The engine on the kernel's IPVS table: what ``start`` runs in production."""
    from ldirector.engine.service import engine_service

    return engine_service(ctx)


def main(
    argv: list[str] | None = None,
    *,
    load: Loader | None = None,
    service: ServiceFactory | None = None,
    out: TextIO | None = None,
    err: TextIO | None = None,
) -> int:
    """Entry point for the ldirectord verbs; ``cli.main`` delegates everything but ``check``."""
    streams = Streams(out or sys.stdout, err or sys.stderr)
    parsed = parse_argv(sys.argv[1:] if argv is None else argv, streams)
    if isinstance(parsed, int):
        return parsed
    commands = Commands(
        parsed,
        load=load or load_settings,
        service=service or default_service,
        streams=streams,
    )
    return commands.run()


if __name__ == "__main__":
    raise SystemExit(main())
