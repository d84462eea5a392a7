"""The control socket's daemon end: how ``ldirector status -v``, ``disable``, ``enable`` and
``drain`` reach the running daemon, and the daemon's read side started with it.

Sits at the daemon's edge, beside signals. The socket (``ldirector.control.protocol``) is mode
0600 and answers only root or the daemon's own user. A malformed request gets a one-line error
reply; nothing a client sends or fails to read can stop the daemon or hold it: a client that
sends nothing, or reads nothing, for :data:`IDLE_TIMEOUT` seconds is dropped.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import os
import socket
import struct
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, assert_never

from ldirector.control.protocol import (
    MAX_DRAIN,
    MAX_REQUEST,
    FrameError,
    Verb,
    decode,
    encode,
    socket_path,
)
from ldirector.core import holds
from ldirector.ipvs.backend import IpvsError
from ldirector.observe.endpoint import StatusEndpoint
from ldirector.observe.shared import SharedSnapshots, SnapshotSource
from ldirector.observe.snapshot import Snapshot
from ldirector.state.holds import Holds

log = logging.getLogger(__name__)

#: A client that sends nothing, or reads nothing of a reply, for this long is disconnected.
IDLE_TIMEOUT = 30.0


class Daemon(SnapshotSource, Protocol):
    """The daemon as the control socket sees it: its snapshot, and operators' holds."""

    async def override(self, verb: Verb, virtual: str, real: str, bound: float | None) -> str: ...


class Engine(Protocol):
    """What :class:`EngineControl` needs of ``ldirector.engine.engine.Engine``."""

    config: Any
    holds: Holds

    async def snapshot(self, name: str = "") -> Snapshot: ...

    async def refresh(self) -> None: ...


@dataclass
class EngineControl:
    """Adapts the engine to :class:`Daemon`; snapshots come through the shared read side."""

    engine: Engine
    snapshots: SharedSnapshots
    #: The HTTP endpoint, which a reload moves when ``httpstatus`` changed.
    endpoint: StatusEndpoint

    async def snapshot(self) -> Snapshot:
        return await self.snapshots.snapshot()

    async def override(self, verb: Verb, virtual: str, real: str, bound: float | None) -> str:
        key = holds.resolve(self.engine.config, virtual, real)  # HoldError: one line
        held = self.engine.holds
        match verb:
            case Verb.DISABLE:
                held.disable(key)
                message = f"disabled {key}"
            case Verb.DRAIN:
                held.drain(key, holds.DEFAULT_DRAIN_TIMEOUT if bound is None else bound)
                message = f"draining {key}"
            case Verb.ENABLE:
                message = f"enabled {key}" if held.enable(key) else f"{key} was not held"
            case Verb.PING | Verb.STATUS:
                raise ValueError(f"{verb} is not an override")
            case _:
                assert_never(verb)
        log.info("manual override: %s", message)
        await self.engine.refresh()
        self.snapshots.invalidate()  # the next status shows the change
        return message


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
                await _send(writer, encode({"ok": False, "error": "permission denied: root only"}))
                return
            while True:
                try:
                    line = await asyncio.wait_for(reader.readuntil(b"\n"), IDLE_TIMEOUT)
                except (asyncio.IncompleteReadError, TimeoutError):
                    return
                except asyncio.LimitOverrunError:
                    await _send(writer, encode({"ok": False, "error": "request too long"}))
                    return
                # A status of thousands of reals takes a while to encode: not on the event loop.
                data = await asyncio.to_thread(encode, await self.handle(line))
                if not await _send(writer, data):
                    return
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
            request = decode(line)
        except FrameError as exc:
            return {"ok": False, "error": str(exc)}
        cmd = request.get("cmd")
        try:
            verb = Verb(cmd) if isinstance(cmd, str) else None
        except ValueError:
            verb = None
        try:
            match verb:
                case None:
                    return {"ok": False, "error": f"unknown command: {str(cmd)[:40]!r}"}
                case Verb.PING:
                    return {"ok": True, "pid": os.getpid()}
                case Verb.STATUS:
                    snap = await self.daemon.snapshot()
                    return {"ok": True, "status": await asyncio.to_thread(_status_json, snap)}
                case Verb.DISABLE | Verb.ENABLE | Verb.DRAIN:
                    return await self._hold(verb, request)
                case _:
                    assert_never(verb)
        except holds.HoldError as exc:
            return {"ok": False, "error": str(exc)}
        except IpvsError as exc:
            return {"ok": False, "error": f"cannot read the IPVS table: {exc}"}
        except OSError as exc:
            return {"ok": False, "error": f"cannot save the override: {exc}"}

    async def _hold(self, verb: Verb, request: dict[str, Any]) -> dict[str, Any]:
        virtual, real = request.get("virtual"), request.get("real")
        if not isinstance(virtual, str) or not isinstance(real, str):
            return {"ok": False, "error": f"{verb} needs 'virtual' and 'real' strings"}
        timeout = request.get("timeout")
        if timeout is not None and (
            isinstance(timeout, bool)
            or not isinstance(timeout, int | float)
            or not 0 <= timeout <= MAX_DRAIN
        ):
            return {"ok": False, "error": f"timeout must be 0..{MAX_DRAIN} seconds"}
        message = await self.daemon.override(verb, virtual, real, timeout)
        return {"ok": True, "message": message}


def _status_json(snap: Snapshot) -> dict[str, Any]:
    """The status document, built in a worker thread: the first request, not every start,
    loads the renderer, and its import never holds the event loop."""
    from ldirector.observe.render import to_json

    return to_json(snap)


def _allowed(writer: asyncio.StreamWriter) -> bool:
    sock = writer.get_extra_info("socket")
    if sock is None:
        return False
    creds = sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
    _, uid, _ = struct.unpack("3i", creds)
    return uid in (0, os.getuid())


async def _send(writer: asyncio.StreamWriter, data: bytes) -> bool:
    """Write one reply; False (and the connection dropped) when the client does not read it."""
    writer.write(data)
    try:
        await asyncio.wait_for(writer.drain(), IDLE_TIMEOUT)
    except TimeoutError:
        writer.transport.abort()  # close() would wait for the buffer to drain: it never does
        return False
    return True


def _answers(path: Path) -> bool:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(1)
        try:
            sock.connect(str(path))
        except OSError:
            return False
    return True


@contextlib.asynccontextmanager
async def observing(
    engine: Engine,
    *,
    cfgname: str,
    httpstatus: tuple[str, int] | None = None,
    directory: Path | None = None,
) -> AsyncIterator[EngineControl]:
    """Run the control socket and (when configured) the HTTP endpoint, both reading one shared
    snapshot.

    None of them is essential to health checking: one that cannot start is logged and the
    daemon carries on without it. This lives with the control socket, not in the read side,
    because the read side must not import the control layer that sits above it.
    """
    snapshots = SharedSnapshots(functools.partial(engine.snapshot, cfgname))
    control = EngineControl(engine, snapshots, StatusEndpoint(snapshots))
    server = ControlServer(socket_path(cfgname, directory), control)
    try:
        await server.start()
    except OSError as exc:
        log.error(
            "control socket %s: %s (status -v, disable and drain will not work)", server.path, exc
        )
    await control.endpoint.follow(httpstatus)
    try:
        yield control
    finally:
        await server.close()
        await control.endpoint.close()
        await snapshots.close()
