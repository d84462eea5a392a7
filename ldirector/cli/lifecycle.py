"""ldirectord's verbs: start, stop, restart, try-restart, reload, force-reload and plain status.

Sits between the verb table (``ldirector.cli.main``) and the process edge: applies the
pid-file rules of ``process`` and runs the daemon through the ``ServiceFactory`` in the
``Context`` (the engine in production). Messages, streams and exit codes are ldirectord's,
except that ``stop`` and ``status`` work from the pid file alone, whatever state the config
file is in (a config only adds its execute= instances to them), and ``stop`` waits, with a
bound, for the daemon's cleanup.
"""

from __future__ import annotations

import logging
import os
import shlex
import signal
import stat
import sys
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TextIO

from ldirector.cli.grammar import Invocation, runs_config
from ldirector.config import Config
from ldirector.core import wording
from ldirector.daemon import process
from ldirector.daemon.process import (
    ConfigInvalid,
    DaemonBody,
    DaemonContext,
    Loader,
    PidState,
    PidStatus,
    ServiceFactory,
    Settings,
)

STOP_TIMEOUT = 60.0

log = logging.getLogger(wording.LOGGER_NAME)


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


def default_service(ctx: DaemonContext) -> DaemonBody:
    """The engine on the kernel's IPVS table: what ``start`` runs in production."""
    from ldirector.daemon.service import engine_service

    return engine_service(ctx)


def default_shadow_service(ctx: DaemonContext) -> DaemonBody:
    """The engine that checks and compares, and writes nothing: what ``--shadow start`` runs."""
    from ldirector.daemon.service import shadow_service

    return shadow_service(ctx)


def shadow_settings(settings: Settings) -> Settings:
    """A shadow runs no callback and no execute= instances: both act for the live instance."""
    return replace(settings, callback=None, execute=())


def shadow_loader(load: Loader) -> Loader:
    def loaded(path: Path) -> Settings:
        return shadow_settings(load(path))

    return loaded


@dataclass(frozen=True, slots=True)
class Context:
    """What a verb runs with: its streams, the config file found for it, and the seams that
    tests (and the test driver) replace: the loader, the daemon body and the directories."""

    out: TextIO
    err: TextIO
    #: The config lookup's answer (``ldirector.config.find_config``); it may not exist.
    config: Path = Path("ldirectord.cf")
    load: Loader = field(default=load_settings)
    service: ServiceFactory = field(default=default_service)
    shadow_service: ServiceFactory = field(default=default_shadow_service)
    run_dir: Path | None = None
    control_dir: Path | None = None
    stop_timeout: float = STOP_TIMEOUT


#: A verb's handler: the parsed command line and its context in, the exit code out.
Handler = Callable[[Invocation, Context], int]


def secret_exposure_warning(path: Path, has_secrets: bool) -> str | None:
    """Passwords in a file other users can read deserve a loud warning."""
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


# --- the verbs: each is one handler of the verb table -----------------------------------------


def start(inv: Invocation, ctx: Context) -> int:
    return _Instance(inv, ctx).start()


def stop(inv: Invocation, ctx: Context) -> int:
    return _Instance(inv, ctx).stop()


def restart(inv: Invocation, ctx: Context) -> int:
    return _Instance(inv, ctx).restart()


def try_restart(inv: Invocation, ctx: Context) -> int:
    instance = _Instance(inv, ctx)
    if instance.pid_status().state is not PidState.RUNNING:
        return 0
    return instance.restart()


def reload(inv: Invocation, ctx: Context) -> int:
    """``reload`` and ``force-reload``: HUP to a running daemon whose new config loads."""
    return _Instance(inv, ctx).reload()


def status(inv: Invocation, ctx: Context) -> int:
    """ldirectord's ``status``: the pid file's verdict, then the execute= instances'."""
    return _Instance(inv, ctx).status()


class _Instance:
    """One daemon instance, named by the command line's config: its pid file and its verbs."""

    def __init__(self, inv: Invocation, ctx: Context) -> None:
        self.inv = inv
        self.ctx = ctx
        self.pid_file = process.pid_path(inv.cfgname, ctx.run_dir)
        #: Tells this instance's daemon from any other process a pid file may name.
        self.matches = runs_config(inv.cfgname)
        self.config_path = ctx.config if ctx.config.is_file() else None

    @property
    def config_name(self) -> str:
        """How messages name the config: its resolved path, or the argument as given."""
        return str(self.config_path) if self.config_path else self.inv.config_name

    def pid_status(self) -> PidStatus:
        return process.pid_status(self.pid_file, self.matches)

    # -- config ----------------------------------------------------------------------------

    def _load(self) -> Settings | int:
        """The settings, or an exit code (1 missing, 2 invalid) after saying why."""
        err = self.ctx.err
        if self.config_path is None:
            err.write(f"Config file {self.inv.config_name} not found\n")
            return 1
        try:
            settings = self._loader()(self.config_path)
        except ConfigInvalid as exc:
            for line in exc.diagnostics:
                err.write(line + "\n")
            err.write(wording.config_error_exit_message() + "\n")
            return 2
        for line in settings.warnings:
            err.write(line + "\n")
        warning = secret_exposure_warning(self.config_path, bool(settings.secrets))
        if warning:
            err.write(warning + "\n")
        return settings

    def _loader(self) -> Loader:
        return shadow_loader(self.ctx.load) if self.inv.shadow else self.ctx.load

    def _execute_lines(self) -> tuple[str, ...]:
        """For stop/status, after their own work: the execute= lines, if the config loads.

        Whatever the config (or the loader) does, the verb's answer is already given.
        """
        if self.config_path is None:
            return ()
        try:
            return self.ctx.load(self.config_path).execute
        except Exception as exc:  # a side part: it must never change the verb's answer
            log.debug("execute= instances not read from %s: %s", self.config_path, exc)
            return ()

    # -- verbs -----------------------------------------------------------------------------

    def status(self) -> int:
        found = self.pid_status()
        if found.state is PidState.RUNNING:
            self.ctx.err.write(
                f"ldirectord for {self.config_name} is running with pid: {found.pid}\n"
            )
            self.run_children("status", self._execute_lines())
            return 0
        if found.state is PidState.STALE:
            self.ctx.err.write(
                f"ldirectord stale pid file {self.pid_file} for {self.config_name}\n"
            )
        self.ctx.out.write(wording.stopped_message(self.config_name) + "\n")
        return 1 if found.state is PidState.STALE else 3

    def stop(self) -> int:
        code = self._stop_own()
        # The daemon stops its instances itself; this catches those of a daemon that died.
        self.run_children("stop", self._execute_lines())
        return code

    def _stop_own(self) -> int:
        found = self.pid_status()
        if found.state is PidState.STALE:
            process.remove_stale_pid_file(found, self.matches)
            return 0
        if found.state is PidState.STOPPED or found.pid is None:
            return 0
        if process.terminate(found.pid, self.ctx.stop_timeout, self.matches):
            return 0
        self.ctx.err.write(
            f"ldirectord for {self.config_name} (pid {found.pid}) did not stop"
            f" within {self.ctx.stop_timeout:g} s\n"
        )
        return 1

    def start(self, loaded: Settings | None = None) -> int:
        settings = loaded or self._load()
        if isinstance(settings, int):
            return settings
        found = self.pid_status()
        if found.state is PidState.RUNNING:
            return 0
        process.remove_stale_pid_file(found, self.matches)
        # The runner brings asyncio, the log handlers and the alerter: only start needs them.
        from ldirector.daemon.runner import serve

        return serve(
            self.inv.argv,
            # Absolute: the daemon chdirs to / and re-reads the file on reload.
            config_path=(self.config_path or Path(self.inv.config_name)).absolute(),
            cfgname=self.inv.cfgname,
            settings=settings,
            load=self._loader(),
            service=self.ctx.shadow_service if self.inv.shadow else self.ctx.service,
            debug=self.inv.debug,
            pid_file=self.pid_file,
            children=self.run_children,
        )

    def restart(self) -> int:
        # Validate before stopping: a typo must not turn a restart into an outage.
        settings = self._load()
        if isinstance(settings, int):
            return settings
        code = self._stop_own()
        return code if code else self.start(settings)

    def reload(self) -> int:
        found = self.pid_status()
        if found.state is not PidState.RUNNING or found.pid is None:
            self.ctx.err.write(wording.stopped_message(self.config_name) + "\n")
            return 1
        # The daemon would keep its old config anyway; refusing here tells the operator why.
        settings = self._load()
        if isinstance(settings, int):
            return settings
        try:
            os.kill(found.pid, signal.SIGHUP)
        except ProcessLookupError:
            self.ctx.err.write(wording.stopped_message(self.config_name) + "\n")
            return 1
        return 0

    # -- execute= instances ----------------------------------------------------------------

    def run_children(self, verb: str, lines: tuple[str, ...]) -> None:
        """Run ``ldirectord <child> <verb>`` for each execute= line; their output passes through.

        The daemon starts its instances once ready, reloads, adds and removes them on reload,
        and stops them on exit; ``status`` reports them and ``stop`` makes sure they are down.
        """
        if self.inv.shadow:  # execute= instances are live instances: not the shadow's to run
            return
        import subprocess  # most configs run no execute= instance

        for child in lines:
            argv = [*self_command(), *_split(child), verb]
            try:
                done = subprocess.run(
                    argv, capture_output=True, text=True, timeout=self.ctx.stop_timeout + 10
                )
            except (OSError, subprocess.TimeoutExpired) as exc:
                self.ctx.err.write(f"execute={child}: {verb} failed: {exc}\n")
                log.error("execute=%s: %s failed: %s", child, verb, exc)
                continue
            if done.returncode not in (0, 3) or (verb != "status" and done.returncode):
                log.error("execute=%s: %s exited with %d", child, verb, done.returncode)
            self.ctx.out.write(done.stdout)
            self.ctx.err.write(done.stderr)


def _split(value: str) -> list[str]:
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
