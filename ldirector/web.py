"""The optional HTTP endpoint (``httpstatus = 127.0.0.1:9555``): ``/metrics``, ``/status``, ``/``.

Sits at the daemon's edge, beside the control socket, and reads the same snapshot: taken per
request, so a scrape costs one kernel dump and nothing runs between scrapes. Off unless the
config asks for it; read only (overrides go through the root-only control socket, never HTTP).
"""

from __future__ import annotations

import asyncio
import json
import logging
import socket

import jinja2
from aiohttp import web

from ldirector.control import Daemon
from ldirector.ipvs.backend import IpvsError
from ldirector.status import Snapshot
from ldirector.statusrender import local_time, state_word, to_json

log = logging.getLogger(__name__)

#: Seconds between reloads of the status page.
REFRESH = 5

DAEMON_KEY = web.AppKey("daemon", Daemon)

_env = jinja2.Environment(
    loader=jinja2.PackageLoader("ldirector", "templates"),
    autoescape=True,
    undefined=jinja2.StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)
_env.filters["localtime"] = local_time
_env.filters["state"] = state_word


def render_page(snap: Snapshot, *, refresh: int = REFRESH) -> str:
    """The status page for one snapshot."""
    return _env.get_template("status.html.j2").render(
        snap=snap, refresh=refresh, host=socket.gethostname(), generated=local_time(snap.generated)
    )


async def _snapshot(request: web.Request) -> Snapshot:
    try:
        return await request.app[DAEMON_KEY].snapshot()
    except IpvsError as exc:
        raise web.HTTPServiceUnavailable(text=f"cannot read the IPVS table: {exc}\n") from None


async def _metrics(request: web.Request) -> web.Response:
    try:
        from ldirector import metrics
    except ImportError:
        return web.Response(
            status=501, text="prometheus-client is not installed (pip install ldirector[metrics])\n"
        )
    snap = await _snapshot(request)
    return web.Response(
        # Rendering 10,000 reals takes half a second: not on the event loop.
        body=await asyncio.to_thread(metrics.exposition, snap),
        headers={"Content-Type": metrics.CONTENT_TYPE},
    )


async def _status(request: web.Request) -> web.Response:
    snap = await _snapshot(request)
    return web.Response(text=json.dumps(to_json(snap), indent=1), content_type="application/json")


async def _page(request: web.Request) -> web.Response:
    snap = await _snapshot(request)
    page = await asyncio.to_thread(render_page, snap)  # 0.1 s at 10,000 reals
    return web.Response(text=page, content_type="text/html", charset="utf-8")


def application(daemon: Daemon) -> web.Application:
    app = web.Application()
    app[DAEMON_KEY] = daemon
    app.router.add_get("/", _page)
    app.router.add_get("/status", _status)
    app.router.add_get("/metrics", _metrics)
    return app


async def start(daemon: Daemon, host: str, port: int) -> web.AppRunner:
    """Serve on ``host:port``; the caller cleans the runner up. OSError if it cannot bind."""
    runner = web.AppRunner(application(daemon), access_log=None, handle_signals=False)
    await runner.setup()
    try:
        await web.TCPSite(runner, host, port).start()
    except BaseException:
        await runner.cleanup()
        raise
    log.info("status page on http://%s/", f"[{host}]:{port}" if ":" in host else f"{host}:{port}")
    return runner
