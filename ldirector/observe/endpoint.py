"""The status endpoint's sockets and life: where it listens, how many connections it keeps and
for how long, and following ``httpstatus`` across reloads.

Sits under the daemon's composition, beside the control socket; the routes are
``ldirector.observe.web``'s. The endpoint shares the daemon's open-file limit with the checks
and the log handlers, and anyone who can reach the port can open connections, so it never holds
more than :data:`MAX_CONNECTIONS`: its own accept loop takes a connection only when there is
room (making room by dropping the oldest connection that has not finished sending a request
head), gives each request head :data:`HEADER_TIMEOUT` seconds, keeps an idle connection
:data:`KEEPALIVE_TIMEOUT` seconds, and drops a client that stops reading its reply for
:data:`WRITE_TIMEOUT` seconds.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import re
import resource
import socket
from collections.abc import Callable
from ipaddress import ip_address
from typing import TYPE_CHECKING, cast

from ldirector.observe.shared import SnapshotSource

if TYPE_CHECKING:  # aiohttp is imported when an endpoint starts: most configs have none
    from aiohttp import web

log = logging.getLogger(__name__)

#: Connections kept at once; the daemon raises its open-file limit far above this for checks.
MAX_CONNECTIONS = 64
#: Connections the kernel queues while the accept loop is busy: not the daemon's files until
#: accepted, and a burst beyond it is only slowed down (the kernel drops a SYN, the client
#: sends it again a second later).
BACKLOG = 128
#: Seconds a client has to send a whole request head, counted from its first byte (or connect).
HEADER_TIMEOUT = 5.0
#: Seconds an idle keep-alive connection is kept.
KEEPALIVE_TIMEOUT = 10.0
#: Seconds a reply may wait on a client that reads nothing before the connection is dropped.
WRITE_TIMEOUT = 10.0
#: Seconds a stopping endpoint gives requests under way.
SHUTDOWN_TIMEOUT = 2.0

_HEAD_END = re.compile(rb"\r?\n\r?\n")


class Limits:
    """The connections of one listener, and the timeouts they live by."""

    def __init__(
        self,
        protocol: Callable[[], asyncio.Protocol],
        *,
        cap: int = MAX_CONNECTIONS,
        header_timeout: float = HEADER_TIMEOUT,
        write_timeout: float = WRITE_TIMEOUT,
    ) -> None:
        self.protocol = protocol
        self.cap = cap
        self.header_timeout = header_timeout
        self.write_timeout = write_timeout
        self.live: set[Guarded] = set()
        #: The live connections still sending a request head, oldest first.
        self.waiting: dict[Guarded, None] = {}
        self.refused = 0

    def admit(self) -> bool:
        """Room for one more connection, dropping the stalest waiting one when full."""
        if len(self.live) < self.cap:
            return True
        if not self.waiting:
            self.refused += 1
            return False
        oldest = next(iter(self.waiting))
        oldest.drop()
        return True


class Guarded(asyncio.Protocol):
    """One connection: aiohttp's protocol inside, with the deadlines aiohttp does not keep."""

    def __init__(self, limits: Limits) -> None:
        self._limits = limits
        self._inner = limits.protocol()
        self._transport: asyncio.Transport | None = None
        self._head = _Deadline(self.drop)
        self._write = _Deadline(self.drop)
        self._tail = b""

    # --- asyncio.Protocol, passed on -------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = cast(asyncio.Transport, transport)  # a stream socket's
        self._limits.live.add(self)
        self._wait_for_head()  # a connection that sends nothing is a head that never comes
        self._inner.connection_made(transport)

    def data_received(self, data: bytes) -> None:
        self._watch(data)
        self._inner.data_received(data)

    def eof_received(self) -> bool | None:
        return self._inner.eof_received()

    def pause_writing(self) -> None:
        self._write.start(self._limits.write_timeout)
        self._inner.pause_writing()

    def resume_writing(self) -> None:
        self._write.stop()
        self._inner.resume_writing()

    def connection_lost(self, exc: Exception | None) -> None:
        self._release()
        self._inner.connection_lost(exc)

    # --- the limits --------------------------------------------------------------------------

    def drop(self) -> None:
        """Close at once, whatever is buffered: a slow or idle client loses its place."""
        self._release()
        if self._transport is not None:
            self._transport.abort()

    def _release(self) -> None:
        self._limits.live.discard(self)
        self._limits.waiting.pop(self, None)
        self._head.stop()
        self._write.stop()

    def _wait_for_head(self) -> None:
        self._limits.waiting[self] = None
        self._tail = b""
        self._head.start(self._limits.header_timeout)

    def _watch(self, data: bytes) -> None:
        """Follow request heads through the bytes: a head's first byte starts its deadline,
        its blank line ends it. Pipelined heads are followed one after another."""
        while data and self in self._limits.live:
            if self not in self._limits.waiting:
                self._wait_for_head()
            seen = self._tail + data
            end = _HEAD_END.search(seen)
            if end is None:
                self._tail = seen[-3:]
                return
            self._limits.waiting.pop(self, None)
            self._head.stop()
            data = seen[end.end() :]


class _Deadline:
    """A timer that can be started again and stopped any number of times."""

    def __init__(self, action: Callable[[], None]) -> None:
        self._action = action
        self._handle: asyncio.TimerHandle | None = None

    def start(self, delay: float) -> None:
        self.stop()
        self._handle = asyncio.get_running_loop().call_later(delay, self._action)

    def stop(self) -> None:
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None


class Listener:
    """The status endpoint on one address: a listening socket, its accept loop, the app."""

    def __init__(
        self, sock: socket.socket, runner: web.AppRunner, limits: Limits, address: tuple[str, int]
    ) -> None:
        self._sock = sock
        self._runner = runner
        self.limits = limits
        self.address = address
        self._task = asyncio.create_task(self._accept(), name="status endpoint accept loop")

    @property
    def app(self) -> web.Application:
        return self._runner.app

    async def _accept(self) -> None:
        loop = asyncio.get_running_loop()
        failing = False
        while True:
            try:
                conn, _ = await loop.sock_accept(self._sock)
            except OSError as exc:
                # Out of files (a limit reached elsewhere) or a connection reset while queued:
                # said once, not once per attempt, and waited out rather than spun on.
                if exc.errno not in (errno.ECONNABORTED, errno.EPROTO):
                    if not failing:
                        log.warning("status endpoint: cannot accept connections: %s", exc)
                    failing = True
                    await asyncio.sleep(0.5)
                continue
            failing = False
            if not self.limits.admit():
                conn.close()
                continue
            conn.setblocking(False)
            try:
                await loop.connect_accepted_socket(lambda: Guarded(self.limits), conn)
            except OSError:
                conn.close()

    async def close(self) -> None:
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task
        self._sock.close()
        server = self._runner.server
        if server is not None:  # the connections, which no aiohttp site closes here
            await server.shutdown(SHUTDOWN_TIMEOUT)
        await self._runner.cleanup()


async def start(
    source: SnapshotSource,
    host: str,
    port: int,
    *,
    cap: int = MAX_CONNECTIONS,
    header_timeout: float = HEADER_TIMEOUT,
    write_timeout: float = WRITE_TIMEOUT,
) -> Listener:
    """Serve ``source`` on ``host:port``; OSError if it cannot bind.

    However low the process's open-file limit, the endpoint keeps most of it for the checks
    and the logs: it takes a sixteenth at most.
    """
    from aiohttp import web

    from ldirector.observe.web import application

    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY:
        cap = min(cap, max(4, soft // 16))
    runner = web.AppRunner(
        application(source, host),
        access_log=None,
        handle_signals=False,
        keepalive_timeout=KEEPALIVE_TIMEOUT,
    )
    await runner.setup()
    server = runner.server
    if server is None:  # setup() makes it
        raise RuntimeError("the status endpoint's HTTP server was not set up")
    try:
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        sock = socket.create_server((host, port), family=family, backlog=BACKLOG)
    except BaseException:
        await runner.cleanup()
        raise
    sock.setblocking(False)
    limits = Limits(server, cap=cap, header_timeout=header_timeout, write_timeout=write_timeout)
    bound = sock.getsockname()
    listener = Listener(sock, runner, limits, (bound[0], bound[1]))
    shown = f"[{host}]:{bound[1]}" if ":" in host else f"{host}:{bound[1]}"
    log.info("status page on http://%s/", shown)
    return listener


class StatusEndpoint:
    """The HTTP endpoint (``httpstatus=``), following the config across reloads."""

    def __init__(self, source: SnapshotSource) -> None:
        self._source = source
        self._address: tuple[str, int] | None = None
        self._listener: Listener | None = None

    @property
    def listener(self) -> Listener | None:
        return self._listener

    async def follow(self, address: tuple[str, int] | None) -> None:
        """Serve on ``address`` (None: not at all); a failure to bind is logged, and retried
        at the next reload."""
        if address == self._address and (address is None or self._listener is not None):
            return
        await self.close()
        moved, self._address = address != self._address, address
        if address is None:
            return
        host, port = address
        if moved and not ip_address(host).is_loopback:
            log.warning(
                "httpstatus %s:%d is not a loopback address: anyone who can reach it can read"
                " the status of every real server",
                host,
                port,
            )
        try:
            self._listener = await start(self._source, host, port)
        except OSError as exc:
            log.error("httpstatus %s:%d: %s", host, port, exc)

    async def close(self) -> None:
        listener, self._listener = self._listener, None
        if listener is not None:
            await listener.close()
