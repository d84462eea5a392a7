"""The control socket: how ``ldirector status -v``, ``disable``, ``enable`` and ``drain`` reach
the running daemon.

Sits at the daemon's edge, beside signals: a unix socket at ``/run/ldirector/<CFGNAME>.sock``,
mode 0600 and answering only root (or the daemon's own user), speaking JSON lines. Each
request is one object with a ``cmd``; each reply is one object with ``ok`` and either the
result or a one-line ``error``. A malformed request gets an error reply; nothing a client sends
can stop the daemon. The client half (:func:`request`) is plain blocking sockets; the command
line that uses it is ``ldirector.controlcli``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import socket
import struct
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from ldirector import manual
from ldirector.ipvs.backend import IpvsError
from ldirector.stall import StallDetector
from ldirector.status import Snapshot
from ldirector.statusrender import to_json

if TYPE_CHECKING:
    from aiohttp.web import AppRunner

log = logging.getLogger(__name__)

CONTROL_DIR = Path("/run/ldirector")
#: A request line longer than this is refused (a status reply may be longer; requests never are).
MAX_REQUEST = 64 * 1024
#: A client that sends nothing for this long is disconnected.
IDLE_TIMEOUT = 30.0
VERBS = ("disable", "enable", "drain")


def control_dir() -> Path:
    """``/run/ldirector``, or ``$LDIRECTOR_CONTROL_DIR`` (tests, unprivileged sandboxes)."""
    return Path(os.environ.get("LDIRECTOR_CONTROL_DIR") or CONTROL_DIR)


def socket_path(cfgname: str, directory: Path | None = None) -> Path:
    return (directory or control_dir()) / f"{cfgname}.sock"


class ControlError(Exception):
    """A request that failed: ``str()`` is the one line to show."""


# --- what the server controls ------------------------------------------------------------------


class Daemon(Protocol):
    """The daemon as the control socket and the HTTP endpoint see it."""

    async def snapshot(self) -> Snapshot: ...

    async def override(self, verb: str, virtual: str, real: str, bound: float | None) -> str: ...


class Engine(Protocol):
    """What :class:`EngineControl` needs of ``ldirector.engine.core.Engine``."""

    config: Any
    manual: manual.ManualOverrides

    async def snapshot(self, name: str = "") -> Snapshot: ...

    async def refresh(self) -> None: ...


@dataclass
class EngineControl:
    """Adapts the engine (plus the stall detector) to :class:`Daemon`."""

    engine: Engine
    stall: StallDetector | None = None
    name: str = ""
    #: The HTTP endpoint, which a reload moves when ``httpstatus`` changed (``observing``).
    endpoint: StatusEndpoint | None = None

    async def snapshot(self) -> Snapshot:
        snap = await self.engine.snapshot(self.name)
        if self.stall is not None:
            snap.counters.stalls = self.stall.count
            snap.counters.stall_max = self.stall.max_lateness
        return snap

    async def override(self, verb: str, virtual: str, real: str, bound: float | None) -> str:
        key = manual.resolve(self.engine.config, virtual, real)  # ManualError: one line
        overrides = self.engine.manual
        if verb == "disable":
            overrides.disable(key)
            message = f"disabled {key}"
        elif verb == "drain":
            overrides.drain(key, manual.DEFAULT_DRAIN_TIMEOUT if bound is None else bound)
            message = f"draining {key}"
        else:
            message = f"enabled {key}" if overrides.enable(key) else f"{key} was not held"
        log.info("manual override: %s", message)
        await self.engine.refresh()
        return message


# --- the server --------------------------------------------------------------------------------


class ControlServer:
    """The daemon's end of the socket."""

    def __init__(self, path: Path, daemon: Daemon) -> None:
        self.path = path
        self.daemon = daemon
        self._server: asyncio.Server | None = None

    async def start(self) -> None:
        """Bind the socket; refuse (OSError) when another daemon already answers on it."""
        self.path.parent.mkdir(mode=0o755, parents=True, exist_ok=True)
        if self.path.exists() or self.path.is_symlink():
            if _answers(self.path):
                raise OSError(f"{self.path}: another daemon is answering on it")
            self.path.unlink()
        old = os.umask(0o177)  # never a moment when the socket is open to others
        try:
            self._server = await asyncio.start_unix_server(
                self._client, path=str(self.path), limit=MAX_REQUEST
            )
        finally:
            os.umask(old)
        os.chmod(self.path, 0o600)

    async def close(self) -> None:
        if self._server is None:
            return
        self._server.close()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self._server.wait_closed(), 2)
        self._server = None
        with contextlib.suppress(OSError):
            self.path.unlink()

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            if not _allowed(writer):
                await _send(writer, {"ok": False, "error": "permission denied: root only"})
                return
            while True:
                try:
                    line = await asyncio.wait_for(reader.readuntil(b"\n"), IDLE_TIMEOUT)
                except (asyncio.IncompleteReadError, TimeoutError):
                    return
                except asyncio.LimitOverrunError:
                    await _send(writer, {"ok": False, "error": "request too long"})
                    return
                await _send(writer, await self.handle(line))
        except (ConnectionError, OSError):
            return
        except Exception:  # a bug must cost one client, not the daemon
            log.exception("control socket: internal error")
        finally:
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()

    async def handle(self, line: bytes) -> dict[str, Any]:
        """One request line to one reply; never raises for anything a client can send."""
        try:
            request = json.loads(line)
        except (ValueError, UnicodeDecodeError):
            return {"ok": False, "error": "not a JSON object"}
        if not isinstance(request, dict):
            return {"ok": False, "error": "not a JSON object"}
        cmd = request.get("cmd")
        try:
            if cmd == "ping":
                return {"ok": True, "pid": os.getpid()}
            if cmd == "status":
                return {"ok": True, "status": to_json(await self.daemon.snapshot())}
            if cmd in VERBS:
                virtual, real = request.get("virtual"), request.get("real")
                if not isinstance(virtual, str) or not isinstance(real, str):
                    return {"ok": False, "error": f"{cmd} needs 'virtual' and 'real' strings"}
                timeout = request.get("timeout")
                if timeout is not None and (
                    isinstance(timeout, bool)
                    or not isinstance(timeout, int | float)
                    or not 0 <= timeout <= 7 * 86400
                ):
                    return {"ok": False, "error": "timeout must be 0..604800 seconds"}
                message = await self.daemon.override(cmd, virtual, real, timeout)
                return {"ok": True, "message": message}
        except manual.ManualError as exc:
            return {"ok": False, "error": str(exc)}
        except IpvsError as exc:
            return {"ok": False, "error": f"cannot read the IPVS table: {exc}"}
        except OSError as exc:
            return {"ok": False, "error": f"cannot save the override: {exc}"}
        return {"ok": False, "error": f"unknown command: {str(cmd)[:40]!r}"}


def _allowed(writer: asyncio.StreamWriter) -> bool:
    sock = writer.get_extra_info("socket")
    if sock is None:
        return False
    creds = sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
    _, uid, _ = struct.unpack("3i", creds)
    return uid in (0, os.getuid())


async def _send(writer: asyncio.StreamWriter, reply: dict[str, Any]) -> None:
    writer.write(json.dumps(reply).encode() + b"\n")
    await writer.drain()


def _answers(path: Path) -> bool:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(1)
        try:
            sock.connect(str(path))
        except OSError:
            return False
    return True


# --- the daemon's observability, started and stopped together --------------------------------


class StatusEndpoint:
    """The HTTP endpoint (``httpstatus=``), following the config across reloads."""

    def __init__(self, daemon: Daemon) -> None:
        self._daemon = daemon
        self._address: tuple[str, int] | None = None
        self._runner: AppRunner | None = None

    async def follow(self, address: tuple[str, int] | None) -> None:
        """Serve on ``address`` (None: not at all); a failure to bind is logged, and retried
        at the next reload."""
        if address == self._address and (address is None or self._runner is not None):
            return
        await self.close()
        self._address = address
        if address is None:
            return
        from ldirector import web  # aiohttp's server side: only when a status page is wanted

        try:
            self._runner = await web.start(self._daemon, *address)
        except OSError as exc:
            log.error("httpstatus %s:%d: %s", *address, exc)

    async def close(self) -> None:
        runner, self._runner = self._runner, None
        if runner is not None:
            await runner.cleanup()


@contextlib.asynccontextmanager
async def observing(
    engine: Engine,
    *,
    cfgname: str,
    httpstatus: tuple[str, int] | None = None,
    directory: Path | None = None,
    stall: StallDetector | None = None,
) -> AsyncIterator[EngineControl]:
    """Run the control socket, the stall detector and (when configured) the HTTP endpoint.

    None of them is essential to health checking: one that cannot start is logged and the
    daemon carries on without it.
    """
    stall = stall or StallDetector()
    control = EngineControl(engine, stall, cfgname)
    task = asyncio.create_task(stall.run(), name="stall detector")
    server = ControlServer(socket_path(cfgname, directory), control)
    try:
        await server.start()
    except OSError as exc:
        log.error(
            "control socket %s: %s (status -v, disable and drain will not work)", server.path, exc
        )
    endpoint = control.endpoint = StatusEndpoint(control)
    await endpoint.follow(httpstatus)
    try:
        yield control
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await server.close()
        await endpoint.close()


# --- the client --------------------------------------------------------------------------------


def request(path: Path, message: dict[str, Any], *, timeout: float = 15.0) -> dict[str, Any]:
    """Send one request and return the reply's payload; ControlError on any failure."""
    deadline = time.monotonic() + timeout
    data = b""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(timeout)
        try:
            sock.connect(str(path))
            sock.sendall(json.dumps(message).encode() + b"\n")
            while not data.endswith(b"\n"):
                sock.settimeout(max(0.01, deadline - time.monotonic()))
                chunk = sock.recv(1 << 16)
                if not chunk:
                    break
                data += chunk
        except FileNotFoundError:
            raise ControlError(f"no control socket at {path}: is the daemon running?") from None
        except PermissionError:
            raise ControlError(
                f"permission denied on {path}: the control socket is root only"
            ) from None
        except TimeoutError:
            raise ControlError(
                f"the daemon did not answer on {path} within {timeout:g} s"
            ) from None
        except OSError as exc:
            raise ControlError(
                f"cannot talk to the daemon on {path}: {exc.strerror or exc}"
            ) from None
    try:
        reply = json.loads(data)
    except ValueError:
        raise ControlError(f"the daemon sent an unreadable reply on {path}") from None
    if not isinstance(reply, dict):
        raise ControlError(f"the daemon sent an unreadable reply on {path}")
    if not reply.get("ok"):
        raise ControlError(str(reply.get("error") or "the daemon refused the request"))
    return reply
