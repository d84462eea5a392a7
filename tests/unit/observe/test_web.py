"""The HTTP endpoint's routes: /metrics read back by Prometheus's own text parser, /status and
/; the Host check; text from outside on the page; and a flood of readers."""

from __future__ import annotations

import asyncio
import dataclasses
import gc
import json
import sys
import time
import unicodedata
from collections.abc import AsyncIterator

import aiohttp
import pytest
from aiohttp import web

from ldirector.observe import endpoint as ldendpoint
from ldirector.observe import web as ldweb
from ldirector.observe.metrics import exposition
from ldirector.observe.render import from_json, render_text, to_json
from ldirector.observe.shared import SharedSnapshots
from ldirector.observe.snapshot import Snapshot
from tests.support.fake_daemon import BlindDaemon, FakeDaemon, serving
from tests.support.observe_world import BigWorld, snapshot
from tests.support.promtext import samples, value


def test_metrics_parse_and_carry_every_figure() -> None:
    found = samples(exposition(snapshot()).decode())
    web80, r2, r3 = "tcp:127.0.0.100:80", "127.0.0.2:8080", "127.0.0.3:8080"
    assert value(found, "ldirector_real_up", virtual=web80, real=r2) == 1
    assert value(found, "ldirector_real_up", virtual=web80, real=r3) == 0
    assert value(found, "ldirector_real_weight", virtual=web80, real=r2) == 5
    assert value(found, "ldirector_real_active_connections", real=r2) == 3
    assert value(found, "ldirector_real_inactive_connections", real=r2) == 4
    assert value(found, "ldirector_real_connections_total", real=r2) == 12
    assert value(found, "ldirector_real_bytes_total", real=r2, direction="out") == 60000
    # One histogram per virtual: R2's three checks and R3's one.
    assert value(found, "ldirector_check_duration_seconds_count", virtual=web80) == 4
    assert value(found, "ldirector_check_duration_seconds_bucket", virtual=web80, le="0.005") == 1
    assert value(found, "ldirector_check_duration_seconds_bucket", virtual=web80, le="+Inf") == 4
    assert value(found, "ldirector_check_duration_seconds_sum", virtual=web80) == pytest.approx(
        3.222
    )
    assert value(found, "ldirector_checks_total", real=r2) == 3
    assert value(found, "ldirector_check_failures_total", real=r3) == 1
    assert value(found, "ldirector_virtual_in_sync", virtual=web80) == 1
    assert value(found, "ldirector_virtual_in_sync", virtual="fwm:7") == 1
    assert value(found, "ldirector_reconciles_total") == 4
    assert value(found, "ldirector_reconcile_operations_total") == 6
    assert value(found, "ldirector_reconcile_errors_total") == 1
    assert value(found, "ldirector_drift_repairs_total") == 2
    assert value(found, "ldirector_event_loop_stalls_total") == 0
    assert value(found, "ldirector_start_time_seconds") == 1_700_000_000.0
    assert "ldirector_last_reload_success" not in found  # no reload yet


def test_reload_metrics_once_reloaded() -> None:
    snap = snapshot()
    snap.counters.last_reload, snap.counters.last_reload_ok = 1_700_000_050.0, False
    snap.counters.stalls, snap.counters.stall_max = 2, 0.75
    found = samples(exposition(snap).decode())
    assert value(found, "ldirector_last_reload_timestamp_seconds") == 1_700_000_050.0
    assert value(found, "ldirector_last_reload_success") == 0
    assert value(found, "ldirector_event_loop_stalls_total") == 2
    assert value(found, "ldirector_event_loop_stall_max_seconds") == 0.75


@pytest.fixture
async def endpoint() -> AsyncIterator[str]:
    async with serving(FakeDaemon()) as url:
        yield url


async def test_http_endpoint_serves_all_three(endpoint: str) -> None:
    async with aiohttp.ClientSession() as session:
        async with session.get(f"{endpoint}/metrics") as resp:
            assert resp.status == 200
            assert resp.headers["Content-Type"].startswith("text/plain; version=0.0.4")
            assert "ldirector_real_up" in samples(await resp.text())
        async with session.get(f"{endpoint}/status") as resp:
            assert resp.status == 200
            assert resp.headers["Content-Type"] == "application/json"
            assert json.loads(await resp.text()) == json.loads(json.dumps(to_json(snapshot())))
        async with session.get(f"{endpoint}/") as resp:
            assert resp.status == 200
            assert resp.headers["Content-Type"] == "text/html; charset=utf-8"
            page = await resp.text()
        async with session.get(f"{endpoint}/nope") as resp:
            assert resp.status == 404
        async with session.head(f"{endpoint}/") as resp:
            assert resp.status == 200
            assert resp.headers["Content-Length"] == str(len(page.encode()))
            assert await resp.read() == b""
    assert '<meta http-equiv="refresh" content="5">' in page
    assert 'data-real="127.0.0.2:8080"' in page and 'data-real="127.0.0.3:8080"' in page
    assert "connection refused" in page


def test_page_escapes_what_servers_say() -> None:
    snap = snapshot()
    bad = snap.virtuals[0].reals[1]
    object.__setattr__(bad, "reason", "receive '<script>alert(1)</script>' not found")
    page = ldweb.render_page(snap)
    assert "<script>" not in page
    assert "&lt;script&gt;" in page


def test_application_has_no_write_routes() -> None:
    app = ldweb.application(FakeDaemon())
    methods = {r.method for r in app.router.routes()}
    assert methods <= {"GET", "HEAD"}
    assert isinstance(app, web.Application)


async def test_unreadable_kernel_is_a_503() -> None:
    async with serving(BlindDaemon()) as url, aiohttp.ClientSession() as session:
        for path in ("/", "/status", "/metrics"):
            async with session.get(f"{url}{path}") as resp:
                assert resp.status == 503
                assert "cannot read the IPVS table" in await resp.text()


# --- names a browser may use --------------------------------------------------------------


@pytest.mark.parametrize(
    ("header", "bound", "allowed"),
    [
        (None, "127.0.0.1", True),  # a tool, not a browser
        ("127.0.0.1:9555", "127.0.0.1", True),
        ("LOCALHOST:9555", "127.0.0.1", True),
        ("localhost.", "127.0.0.1", True),
        ("127.0.0.2", "127.0.0.1", True),  # loopback is loopback
        ("[::1]:9555", "::1", True),
        ("192.0.2.7:9555", "0.0.0.0", True),  # bound everywhere: any address of ours
        ("192.0.2.7:9555", "192.0.2.7", True),
        ("192.0.2.8", "192.0.2.7", False),
        ("evil.example:9555", "127.0.0.1", False),  # DNS rebinding
        ("localhost.evil.example", "127.0.0.1", False),
        ("127.0.0.1.nip.io", "127.0.0.1", False),
        ("[::1", "::1", False),
        ("", "127.0.0.1", False),
    ],
)
def test_host_names_this_endpoint_answers_to(header: str | None, bound: str, allowed: bool) -> None:
    assert ldweb.host_allowed(header, bound) is allowed


async def test_a_foreign_host_name_is_refused(endpoint: str) -> None:
    async with aiohttp.ClientSession() as session:
        for path in ("/", "/status", "/metrics", "/nope"):
            headers = {"Host": "rebind.attacker.example"}
            async with session.get(f"{endpoint}{path}", headers=headers) as resp:
                assert resp.status == 421
                assert "ldirector" not in await resp.text()
        async with session.get(f"{endpoint}/status", headers={"Host": "localhost"}) as resp:
            assert resp.status == 200


# --- text from outside ------------------------------------------------------------------------

ODD = "a\x9b[31mb \x1b[2J c\u2028d\re \udc9b f\u202eg"


class OddDaemon:
    """A daemon whose snapshot carries control characters in every text it shows."""

    async def snapshot(self) -> Snapshot:
        snap = snapshot()
        web80 = snap.virtuals[0]
        reals = tuple(
            dataclasses.replace(r, real=f"{r.real}{ODD}", reason=ODD) for r in web80.reals
        )
        odd = dataclasses.replace(
            web80, service=f"{web80.service}{ODD}", scheduler=ODD, fallback=ODD, reals=reals
        )
        return dataclasses.replace(snap, config=ODD, virtuals=(odd, *snap.virtuals[1:]))


def unsafe(text: str) -> list[str]:
    return [
        c for c in text if c != "\n" and unicodedata.category(c) in {"Cc", "Cf", "Zl", "Zp", "Cs"}
    ]


async def test_odd_text_is_shown_inert_everywhere() -> None:
    snap = await OddDaemon().snapshot()
    assert unsafe(render_text(snap)) == []
    # The command line renders what the daemon sent, through the JSON document.
    assert unsafe(render_text(from_json(json.loads(json.dumps(to_json(snap)))))) == []
    assert "\\x1b[2J" in render_text(snap)
    async with serving(OddDaemon()) as url, aiohttp.ClientSession() as session:
        async with session.get(f"{url}/") as resp:
            assert resp.status == 200
            page = await resp.text()
        for path in ("/status", "/metrics"):
            async with session.get(f"{url}{path}") as resp:
                assert resp.status == 200
    assert unsafe(page) == []
    assert "\\x1b[2J" in page and "\\u2028" in page


# --- a flood of readers -------------------------------------------------------------------

#: Thirty clients in another process, each asking for /, /status and /metrics in turn for
#: a bounded time; prints how many answers came back, by status.
FLOOD = r"""
import asyncio, collections, sys, time
host, port, clients, seconds = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4])
counts = collections.Counter()
async def client(n):
    paths = ["/", "/status", "/metrics"]
    end = time.monotonic() + seconds
    i = n
    while time.monotonic() < end:
        path = paths[i % 3]; i += 1
        try:
            r, w = await asyncio.wait_for(asyncio.open_connection(host, port), 10)
            w.write(f"GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n".encode())
            data = await asyncio.wait_for(r.read(), 30)
            w.close()
            counts[data.split(b" ", 2)[1].decode() if data else "none"] += 1
        except (OSError, asyncio.TimeoutError) as exc:
            counts[type(exc).__name__] += 1
async def main():
    await asyncio.gather(*(client(n) for n in range(clients)))
asyncio.run(main())
print(dict(counts))
"""


async def test_a_flood_of_readers_does_not_stall_the_loop() -> None:
    world = BigWorld(4000)
    one_build = 0.0  # the slowest of three: the machine's speed now, its load counted in
    for _ in range(3):
        start = time.perf_counter()
        world.build()
        one_build = max(one_build, time.perf_counter() - start)
    world.builds = 0
    gc.collect()
    gc.freeze()  # as the daemon does after loading its config (daemon.tuning)
    listener = await ldendpoint.start(SharedSnapshots(world.snapshot), "127.0.0.1", 0)
    lags: list[float] = []
    busy: list[float] = []

    async def ticker() -> None:
        while True:
            wall, cpu = time.monotonic(), time.thread_time()
            await asyncio.sleep(0.01)
            lags.append(time.monotonic() - wall - 0.01)
            # The event loop's own work between two ticks, without the time the machine gave
            # to other processes (or to the rendering thread): what this test is about.
            busy.append(time.thread_time() - cpu)

    tick = asyncio.create_task(ticker())
    try:
        host, port = listener.address
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-c", FLOOD, host, str(port), "30", "2.0",
            stdout=asyncio.subprocess.PIPE,
        )  # fmt: skip
        out, _ = await asyncio.wait_for(proc.communicate(), 60)
    finally:
        tick.cancel()
        await listener.close()
        gc.unfreeze()
    answers = json.loads(out.decode().replace("'", '"'))
    assert answers.get("200", 0) >= 30, answers
    assert set(answers) == {"200"}, answers
    # One build a second at most, however many readers; the loop is late by about one
    # build at worst (the machine's load counted in), never by one per reader.
    renderings = listener.app[ldweb.RENDERINGS_KEY]
    assert world.builds <= 5
    assert all(renderings.made(kind) <= 5 for kind in ldweb.Rendering)
    # Serving each reader its own snapshot and JSON kept the loop busy for seconds: a build
    # and a rendering per reader, thirty at once. Now the loop is busy for about one build at
    # worst (plus handing a finished rendering of megabytes to every reader that waited).
    assert max(busy) < max(0.1, 4 * one_build), (max(busy), one_build)
    # ... and never late by seconds (a machine shared with other work adds its own delays to a
    # process with two busy threads, the loop and the rendering: about 0.2 s under a load of 5
    # on two cores, against six seconds before).
    assert max(lags) < max(1.0, 6 * one_build), (max(lags), one_build)
