"""The status page's HTTP application (``httpstatus = 127.0.0.1:9555``): ``/metrics``,
``/status`` and ``/``.

Sits at the daemon's edge, beside the control socket, and reads the same shared snapshot. Read
only: overrides go through the root-only control socket, never HTTP. Each rendering is made in
a thread, once at a time, and served to every request that comes within a second, so a flood
of scrapers costs the event loop almost nothing. The sockets, their limits and the endpoint's
life are ``ldirector.observe.endpoint``'s.
"""

from __future__ import annotations

import asyncio
import enum
import json
import logging
import socket
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from ipaddress import ip_address
from typing import assert_never

import jinja2
from aiohttp import hdrs, web

from ldirector.ipvs.backend import IpvsError
from ldirector.observe import metrics
from ldirector.observe.exposition import Format, negotiate
from ldirector.observe.render import inert, local_time, state_word, to_json
from ldirector.observe.shared import Shared, SnapshotSource
from ldirector.observe.snapshot import Snapshot

log = logging.getLogger(__name__)

#: Seconds between reloads of the status page.
REFRESH = 5

#: Names a browser on this host uses for a loopback address (Debian's /etc/hosts has them all).
LOCAL_NAMES = frozenset({"localhost", "localhost.localdomain", "ip6-localhost", "ip6-loopback"})


def _finalize(value: object) -> object:
    # Every value the template prints, made inert before autoescape quotes it: names and
    # reasons that did not come through the check harness (kernel data, a host name, a config
    # path) must not break the page nor carry a control character into it.
    return inert(value) if isinstance(value, str) else value


_env = jinja2.Environment(
    loader=jinja2.PackageLoader("ldirector", "templates"),
    autoescape=True,
    undefined=jinja2.StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
    finalize=_finalize,
)
_env.filters["localtime"] = local_time
_env.filters["state"] = state_word


def render_page(snap: Snapshot, *, refresh: int = REFRESH) -> str:
    """The status page for one snapshot."""
    return _env.get_template("status.html.j2").render(
        snap=snap, refresh=refresh, host=socket.gethostname(), generated=local_time(snap.generated)
    )


class Rendering(enum.Enum):
    """What a route serves (the value is the route's path)."""

    PAGE = "/"
    STATUS = "/status"
    METRICS = "/metrics"
    #: ``/metrics`` to a scraper whose Accept header asks for OpenMetrics: no route of its own.
    OPENMETRICS = "/metrics openmetrics"


def content_type(kind: Rendering) -> str:
    match kind:
        case Rendering.PAGE:
            return "text/html; charset=utf-8"
        case Rendering.STATUS:
            return "application/json"
        case Rendering.METRICS:
            return metrics.CONTENT_TYPE
        case Rendering.OPENMETRICS:
            return Format.OPENMETRICS.content_type
        case _:
            assert_never(kind)


def render(kind: Rendering, snap: Snapshot) -> bytes:
    """One rendering of a snapshot (slow at thousands of reals: call it in a thread)."""
    match kind:
        case Rendering.PAGE:
            return render_page(snap).encode()
        case Rendering.STATUS:
            return json.dumps(to_json(snap), indent=1).encode()
        case Rendering.METRICS:
            return metrics.exposition(snap)
        case Rendering.OPENMETRICS:
            return metrics.exposition(snap, Format.OPENMETRICS)
        case _:
            assert_never(kind)


class Renderings:
    """Each rendering of the shared snapshot, made in one thread of its own and reused.

    One thread for all of them: the renderings compete with the event loop for the interpreter
    lock, and the default executor stays free for the daemon's own short jobs.
    """

    def __init__(self, source: SnapshotSource) -> None:
        self._source = source
        self._shared = {kind: Shared(self._maker(kind)) for kind in Rendering}
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="status rendering")

    def _maker(self, kind: Rendering) -> Callable[[], Awaitable[bytes]]:
        async def make() -> bytes:
            snap = await self._source.snapshot()
            loop = asyncio.get_running_loop()
            return await loop.run_in_executor(self._thread, render, kind, snap)

        return make

    async def get(self, kind: Rendering) -> bytes:
        """The rendering; IpvsError when the kernel table cannot be read."""
        return await self._shared[kind].get()

    def made(self, kind: Rendering) -> int:
        """How many times this rendering was made (each serves every request for a second)."""
        return self._shared[kind].computed

    async def close(self) -> None:
        for shared in self._shared.values():
            await shared.close()
        self._thread.shutdown(wait=False, cancel_futures=True)


def host_allowed(header: str | None, bound: str) -> bool:
    """Whether a request's ``Host`` names this endpoint: the bound address (any address when
    bound to all of them), a loopback name, or this host's name.

    A page on another site may make a browser send requests here under the site's own name
    (DNS rebinding); refusing names we do not know keeps it from reading the status. A request
    without a Host header comes from a tool, not a browser, and is served.
    """
    if header is None:
        return True
    name = _host_name(header)
    if not name:
        return False
    try:
        address = ip_address(name)
    except ValueError:
        return name in LOCAL_NAMES or name == socket.gethostname().lower()
    mine = ip_address(bound)
    return mine.is_unspecified or address == mine or (mine.is_loopback and address.is_loopback)


def _host_name(header: str) -> str:
    """The name in a Host header, lower case, without port, brackets or a final dot."""
    text = header.strip().lower()
    if text.startswith("["):
        inside, close, rest = text[1:].partition("]")
        return inside if close and (not rest or rest.startswith(":")) else ""
    if text.count(":") == 1:
        text = text.partition(":")[0]
    return text.removesuffix(".")


# Typed application keys came with aiohttp 3.9 (which warns about plain strings); Debian 12's
# aiohttp 3.8 has only the strings.
if hasattr(web, "AppKey"):
    RENDERINGS_KEY = web.AppKey("renderings", Renderings)
    BOUND_KEY = web.AppKey("bound", str)
else:
    RENDERINGS_KEY = "renderings"  # type: ignore[assignment]
    BOUND_KEY = "bound"  # type: ignore[assignment]


@web.middleware
async def _check_host(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    if not host_allowed(request.headers.get(hdrs.HOST), request.app[BOUND_KEY]):
        return web.Response(status=421, text="this endpoint does not serve that host name\n")
    return await handler(request)


def _route(kind: Rendering) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
    async def serve(request: web.Request) -> web.StreamResponse:
        chosen = kind
        if kind is Rendering.METRICS:
            wanted = negotiate(request.headers.get(hdrs.ACCEPT))
            chosen = Rendering.OPENMETRICS if wanted is Format.OPENMETRICS else kind
        try:
            body = await request.app[RENDERINGS_KEY].get(chosen)
        except IpvsError as exc:
            return web.Response(status=503, text=f"cannot read the IPVS table: {exc}\n")
        return await _send(request, body, content_type(chosen))

    return serve


#: Bytes handed to a connection at a time.
CHUNK = 256 * 1024


async def _send(request: web.Request, body: bytes, kind: str) -> web.StreamResponse:
    """``body`` in pieces, each written once the reader took the one before: a rendering of
    megabytes finished for thirty waiting readers is copied out over many turns of the
    event loop, not all in one."""
    response = web.StreamResponse(headers={hdrs.CONTENT_TYPE: kind})
    response.content_length = len(body)
    try:
        await response.prepare(request)
        if request.method != hdrs.METH_HEAD:
            view = memoryview(body)
            for start in range(0, len(view), CHUNK):
                await response.write(view[start : start + CHUNK])
        await response.write_eof()
    except ConnectionError:
        # The reader left, or was dropped for not reading (`endpoint.Guarded`): nobody is
        # left to answer, and aiohttp would log it as an error with a traceback.
        pass
    return response


def application(source: SnapshotSource, bound: str = "127.0.0.1") -> web.Application:
    """The routes, reading ``source``, for an endpoint bound to address ``bound``."""
    app = web.Application(middlewares=[_check_host])
    app[RENDERINGS_KEY] = renderings = Renderings(source)
    app[BOUND_KEY] = bound
    for kind in Rendering:
        if kind is not Rendering.OPENMETRICS:
            app.router.add_get(kind.value, _route(kind))

    async def close(app: web.Application) -> None:
        await renderings.close()

    app.on_cleanup.append(close)
    return app
