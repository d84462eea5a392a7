"""The daemon runner: ``serve`` takes a parsed config to a running daemon body and back.

Sits between ``ldirector.cli.lifecycle`` (which parsed the config and handles the verbs) and
the body (the engine, ``daemon.service``). It sets up the log, daemonizes and owns the pid
file (with ``process``), then runs the body on the event loop with the signal glue, readiness,
the systemd watchdog, config polling (autoreload, callback), reloads, execute= instances and
the email alerter, and bounds the cleanup after a stop signal.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import os
import signal
import sys
from collections.abc import Awaitable, Callable, Coroutine
from pathlib import Path
from typing import TextIO

from ldirector.core import wording
from ldirector.daemon import eventloop, logs
from ldirector.daemon.alerts import Alerter
from ldirector.daemon.process import (
    ConfigInvalid,
    DaemonBody,
    DaemonContext,
    Detached,
    Loader,
    ServiceFactory,
    Settings,
    daemonize,
    remove_pid_file,
    write_pid_file,
)
from ldirector.daemon.sdnotify import Notifier
from ldirector.ipvs.backend import IpvsError

TERMINATING_SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGQUIT)

log = logging.getLogger(wording.LOGGER_NAME)


# --- signals ---------------------------------------------------------------------------------


class SignalGlue:
    """asyncio signal handlers: HUP → reload, TERM/INT/QUIT → stop, PIPE ignored.

    The handlers run on the event loop as soon as it regains control, so a check awaiting a
    slow server never delays them. Reloads are serialised: a HUP during a reload queues exactly
    one more. Only the first terminating signal counts: repeating it must not cut the cleanup
    short (the reason ldirectord's unit needed KillMode=none).
    """

    def __init__(
        self,
        on_reload: Callable[[], Awaitable[None]],
        on_stop: Callable[[str], None],
    ) -> None:
        self._on_reload = on_reload
        self._on_stop = on_stop
        self.stop_signal: str | None = None
        self._reload_task: asyncio.Task[None] | None = None
        self._reload_again = False

    def install(self, loop: asyncio.AbstractEventLoop) -> None:
        signal.signal(signal.SIGPIPE, signal.SIG_IGN)
        loop.add_signal_handler(signal.SIGHUP, self._hup)
        for sig in TERMINATING_SIGNALS:
            loop.add_signal_handler(sig, self._terminate, sig)

    def uninstall(self, loop: asyncio.AbstractEventLoop) -> None:
        for sig in (signal.SIGHUP, *TERMINATING_SIGNALS):
            loop.remove_signal_handler(sig)

    def _terminate(self, sig: signal.Signals) -> None:
        if self.stop_signal is not None:
            return
        self.stop_signal = sig.name.removeprefix("SIG")
        self._on_stop(self.stop_signal)

    def _hup(self) -> None:
        if self.stop_signal is not None:
            return
        if self._reload_task is not None and not self._reload_task.done():
            self._reload_again = True
            return
        self._reload_task = asyncio.get_running_loop().create_task(self._reload())

    def request_reload(self) -> None:
        """A reload not caused by a signal (autoreload), serialised with HUP reloads."""
        self._hup()

    async def _reload(self) -> None:
        while True:
            self._reload_again = False
            await self._on_reload()
            if not self._reload_again or self.stop_signal is not None:
                return

    async def drain(self) -> None:
        """Let an in-flight reload finish before the process exits."""
        if self._reload_task is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await self._reload_task


# --- running the daemon body -----------------------------------------------------------------

#: The failures the daemon expects of its host and inputs: the project's own error types and
#: what the system refuses (permissions, space). Anything else is a bug.
EXPECTED_FAILURES = (IpvsError, ConfigInvalid, OSError)

STOP_GRACE = 45.0  # how long the body may spend on cleanstop before it is cancelled
ALERT_FLUSH = 10.0  # how long queued emails may delay the exit


def serve(
    argv: tuple[str, ...],
    *,
    config_path: Path,
    cfgname: str,
    settings: Settings,
    load: Loader,
    service: ServiceFactory,
    debug: bool,
    pid_file: Path,
    children: Callable[[str, tuple[str, ...]], None] = lambda _verb, _lines: None,
    err: TextIO | None = None,
) -> int:
    """Run the daemon: daemonize unless foreground, own the pid file, run the body to the end.

    Foreground when ``-d``, ``supervised=yes`` or under systemd (``NOTIFY_SOCKET``, where the
    main process must not fork); the pid file is written unless ``-d`` or supervised.
    """
    stderr = err or sys.stderr
    try:
        destination = logs.destination_for(
            settings.logfile, debug=debug, supervised=settings.supervised
        )
    except ValueError as exc:
        stderr.write(f"{config_path}: error: {exc}\n")
        return 2
    secret_filter = logs.configure(destination, cfgname, secrets=settings.secrets, debug=debug)
    log.info(wording.invoked_message((sys.argv[0], *argv)))
    write_pid = not (debug or settings.supervised)
    if write_pid and not os.access(pid_file.parent, os.W_OK):
        message = f"Can not write pid file {pid_file}"
        log.error(message)
        stderr.write(message + "\n")
        return 1
    notifier = Notifier()
    # Checks, fallbackcommands and execute= instances must not talk to systemd as this unit
    # (an execute= instance would even stay in the foreground, thinking it is the unit).
    for name in ("NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID"):
        os.environ.pop(name, None)
    detached: Detached | None = None
    if not (debug or settings.supervised or notifier.enabled):
        outcome = daemonize()
        if isinstance(outcome, tuple):
            code, message = outcome
            if message:
                stderr.write(f"ldirectord for {config_path}: {message}\n")
            return code
        detached = outcome
    pid = os.getpid()
    try:
        if write_pid:
            write_pid_file(pid_file, pid)
        log.info(wording.starting_message(None if detached else pid))
        runner = _Runner(config_path, cfgname, settings, load, service, detached, children)
        runner.notifier = notifier
        runner.secret_filter = secret_filter
        runner.destination = destination
        return eventloop.run(runner.main())
    except OSError as exc:
        log.error("%s", exc)
        return 1
    finally:
        if write_pid:
            remove_pid_file(pid_file, pid)
        if detached is not None:
            detached.report(1)  # no-op once ready was reported


class _Runner:
    """The daemon's event-loop half: signals, reload, readiness, watchdog, stop grace."""

    def __init__(
        self,
        config_path: Path,
        cfgname: str,
        settings: Settings,
        load: Loader,
        service: ServiceFactory,
        detached: Detached | None,
        children: Callable[[str, tuple[str, ...]], None],
    ) -> None:
        self.config_path = config_path
        self.cfgname = cfgname
        self.settings = settings
        self.load = load
        self.service_factory = service
        self.detached = detached
        #: Runs ``<verb>`` for execute= instances (blocking: always called in a thread).
        self.children = children
        self.notifier = Notifier()
        self.alerter = Alerter()
        self.secret_filter: logs.SecretFilter | None = None
        self.destination: logs.Destination | None = None
        self._ready = False
        self._background: set[asyncio.Task[object]] = set()
        self._digest: bytes | None = None
        self._changed_on_disk = False

    def ready(self) -> None:
        if self._ready:
            return
        self._ready = True
        self.alerter.release("running")
        self.notifier.ready()
        if self.detached is not None:
            self.detached.report(0)
        self._spawn(asyncio.to_thread(self.children, "start", self.settings.execute))

    def _spawn(self, coro: Coroutine[object, object, object]) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def main(self) -> int:
        loop = asyncio.get_running_loop()
        ctx = DaemonContext(
            self.config_path, self.cfgname, self.settings, self.notifier, self.ready, self.alerter
        )
        self.alerter.hold("starting")
        mailer = loop.create_task(self.alerter.run())
        body = self.service_factory(ctx)
        run_task = loop.create_task(body.run())

        def on_stop(signal_name: str) -> None:
            self.alerter.release("stopping")
            self.notifier.stopping()
            body.stop()
            loop.call_later(STOP_GRACE, run_task.cancel)

        async def on_reload() -> None:
            await self._reload(body)

        glue = SignalGlue(on_reload, on_stop)
        glue.install(loop)
        watchdog = loop.create_task(self.notifier.watchdog_loop())
        watcher = loop.create_task(self._watch_config(glue))
        code = 0
        try:
            await run_task
        except asyncio.CancelledError:
            if not run_task.cancelled():
                raise
            log.error("cleanup did not finish within %g s after a stop signal", STOP_GRACE)
            code = 1
        except EXPECTED_FAILURES as exc:
            # No IPVS, no permission, a config gone bad: one line, in every mode.
            log.error("the daemon failed: %s", str(exc) or type(exc).__name__)
            if self.detached is not None:
                self.detached.report(1, f"failed to start: {exc}")
            code = 1
        except Exception as exc:
            # A bug: the traceback is what a report of it needs.
            log.error("the daemon failed: internal error: %s: %s", type(exc).__name__, exc)
            log.error("traceback of the failure", exc_info=True)
            if self.detached is not None:
                self.detached.report(1, f"failed to start: internal error: {exc}")
            code = 1
        finally:
            glue.uninstall(loop)
            watchdog.cancel()
            watcher.cancel()
            await glue.drain()
        if self._background:
            # A start or reload of execute= instances still running: let it land first.
            await asyncio.wait(self._background, timeout=STOP_GRACE)
        if self.settings.execute:
            try:
                async with asyncio.timeout(STOP_GRACE):
                    await asyncio.to_thread(self.children, "stop", self.settings.execute)
            except TimeoutError:
                log.error("execute= instances did not stop within %g s", STOP_GRACE)
        self.alerter.release()
        await _bounded(self.alerter.join(), ALERT_FLUSH)
        mailer.cancel()
        if glue.stop_signal is not None:
            log.info(wording.terminated_message(glue.stop_signal))
        return code

    async def _reload(self, body: DaemonBody) -> None:
        if not self._changed_on_disk:
            log.info(wording.reloading_message())
        self._changed_on_disk = False
        self.notifier.reloading()
        try:
            try:
                self._digest = await asyncio.to_thread(_digest, self.config_path)
                new = await asyncio.to_thread(self.load, self.config_path)
            except ConfigInvalid as exc:
                for line in exc.diagnostics:
                    log.error("%s", line)
                log.error("Configuration error: keeping the running configuration")
                body.reload_rejected()
                return
            self._relog(new)
            old, self.settings = self.settings, new
            self.alerter.hold("reloading")
            try:
                await body.reload(new)
            finally:
                self.alerter.release("running")
            self._spawn(asyncio.to_thread(self._sync_children, old.execute, new.execute))
        finally:
            self.notifier.ready()

    async def _watch_config(self, glue: SignalGlue) -> None:
        """autoreload and callback: poll the file's content, as ldirectord's check_cfgfile."""
        self._digest = await asyncio.to_thread(_digest, self.config_path)
        while True:
            await asyncio.sleep(self.settings.poll_interval)
            digest = await asyncio.to_thread(_digest, self.config_path)
            if digest == self._digest:
                continue
            self._digest = digest
            changed, action = wording.config_changed_message(
                str(self.config_path), self.settings.autoreload
            )
            log.info(changed)
            log.info(action)
            if self.settings.callback:
                # Like ldirectord, the callback runs even with autoreload=no.
                await _run_callback(self.settings.callback, self.config_path)
            if self.settings.autoreload:
                self._changed_on_disk = True
                glue.request_reload()

    def _sync_children(self, old: tuple[str, ...], new: tuple[str, ...]) -> None:
        self.children("stop", tuple(c for c in old if c not in new))
        self.children("reload", tuple(c for c in new if c in old))
        self.children("start", tuple(c for c in new if c not in old))

    def _relog(self, new: Settings) -> None:
        """A reload may move the log (logfile= changed) and always brings new secrets."""
        if self.secret_filter is not None:
            self.secret_filter.secrets = frozenset(new.secrets)
        if isinstance(self.destination, logs.LogFile | logs.Syslog):
            try:
                destination = logs.destination_for(new.logfile, debug=False, supervised=False)
            except ValueError as exc:
                log.error("%s", exc)
                return
            if destination != self.destination:
                self.destination = destination
                self.secret_filter = logs.configure(destination, self.cfgname, secrets=new.secrets)


CALLBACK_TIMEOUT = 60.0


def _digest(path: Path) -> bytes | None:
    try:
        return hashlib.sha256(path.read_bytes()).digest()
    except OSError:
        return None


async def _run_callback(callback: str, config_path: Path) -> None:
    """``<callback> <config path>`` through the shell (ldirectord's contract), bounded in time."""
    program = callback.split()[0] if callback.split() else ""
    if not os.access(program, os.X_OK):
        log.warning("callback %s is not executable: not run", program)
        return
    # The path goes in as $1, never pasted into the command line.
    proc = await asyncio.create_subprocess_exec(
        "/bin/sh",
        "-c",
        f'{callback} "$1"',
        "sh",
        str(config_path),  # absolute: lifecycle made it so before starting
        stdin=asyncio.subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        async with asyncio.timeout(CALLBACK_TIMEOUT):
            code = await proc.wait()
    except TimeoutError:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        await proc.wait()
        log.error("callback %s killed after %g s", callback, CALLBACK_TIMEOUT)
        return
    if code:
        log.error("callback %s exited with %d", callback, code)


async def _bounded(awaitable: Awaitable[None], seconds: float) -> None:
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(seconds):
            await awaitable
