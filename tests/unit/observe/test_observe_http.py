"""The HTTP endpoint: /metrics read back by Prometheus's own text parser, /status, and /."""

from __future__ import annotations

import contextlib
import json
import socket
from collections.abc import AsyncIterator, Iterator

import aiohttp
import pytest
from aiohttp import web
from fake_daemon import BlindDaemon, FakeDaemon
from observe_world import snapshot
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample

from ldirector import web as ldweb
from ldirector.control import StatusEndpoint
from ldirector.metrics import exposition
from ldirector.statusrender import to_json


def samples(text: str) -> dict[str, list[Sample]]:
    found: dict[str, list[Sample]] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found.setdefault(sample.name, []).append(sample)
    return found


def value(found: dict[str, list[Sample]], name: str, **labels: str) -> float:
    (match,) = [s for s in found[name] if all(s.labels.get(k) == v for k, v in labels.items())]
    return match.value


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
    assert value(found, "ldirector_check_duration_seconds_count", real=r2) == 3
    assert value(found, "ldirector_check_duration_seconds_bucket", real=r2, le="0.005") == 1
    assert value(found, "ldirector_check_duration_seconds_bucket", real=r2, le="+Inf") == 3
    assert value(found, "ldirector_check_duration_seconds_sum", real=r2) == pytest.approx(0.222)
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
    runner = await ldweb.start(FakeDaemon(), "127.0.0.1", 0)
    try:
        host, port = runner.addresses[0][:2]
        yield f"http://{host}:{port}"
    finally:
        await runner.cleanup()


async def test_http_endpoint_serves_all_three(endpoint: str) -> None:
    async with aiohttp.ClientSession() as session:
        async with session.get(f"{endpoint}/metrics") as resp:
            assert resp.status == 200
            assert resp.headers["Content-Type"].startswith("text/plain; version=0.0.4")
            assert "ldirector_real_up" in samples(await resp.text())
        async with session.get(f"{endpoint}/status") as resp:
            assert resp.status == 200
            assert json.loads(await resp.text()) == json.loads(json.dumps(to_json(snapshot())))
        async with session.get(f"{endpoint}/") as resp:
            assert resp.status == 200
            page = await resp.text()
        async with session.get(f"{endpoint}/nope") as resp:
            assert resp.status == 404
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


async def test_busy_port_is_an_oserror() -> None:
    runner = await ldweb.start(FakeDaemon(), "127.0.0.1", 0)
    try:
        port = runner.addresses[0][1]
        with pytest.raises(OSError):
            await ldweb.start(FakeDaemon(), "127.0.0.1", port)
    finally:
        await runner.cleanup()


def test_application_has_no_write_routes() -> None:
    app = ldweb.application(FakeDaemon())
    methods = {r.method for r in app.router.routes()}
    assert methods <= {"GET", "HEAD"}
    assert isinstance(app, web.Application)


async def test_unreadable_kernel_is_a_503() -> None:
    runner = await ldweb.start(BlindDaemon(), "127.0.0.1", 0)
    try:
        host, port = runner.addresses[0][:2]
        async with aiohttp.ClientSession() as session:
            for path in ("/", "/status", "/metrics"):
                async with session.get(f"http://{host}:{port}{path}") as resp:
                    assert resp.status == 503
                    assert "cannot read the IPVS table" in await resp.text()
    finally:
        await runner.cleanup()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


async def _answers(port: int) -> bool:
    try:
        async with (
            aiohttp.ClientSession() as session,
            session.get(f"http://127.0.0.1:{port}/status") as resp,
        ):
            return resp.status == 200
    except aiohttp.ClientConnectionError:
        return False


async def test_the_endpoint_follows_httpstatus_across_reloads(
    caplog: pytest.LogCaptureFixture,
) -> None:
    first, second = _free_port(), _free_port()
    endpoint = StatusEndpoint(FakeDaemon())
    try:
        await endpoint.follow(None)  # off: nothing listens
        await endpoint.follow(("127.0.0.1", first))
        assert await _answers(first)
        await endpoint.follow(("127.0.0.1", first))  # unchanged: the same listener serves on
        assert await _answers(first)
        await endpoint.follow(("127.0.0.1", second))  # moved by a reload
        assert await _answers(second) and not await _answers(first)
        await endpoint.follow(None)  # removed by a reload
        assert not await _answers(second)
        with socket_on(first):  # busy: logged, and tried again at the next reload
            await endpoint.follow(("127.0.0.1", first))
        assert f"httpstatus 127.0.0.1:{first}:" in caplog.text
        await endpoint.follow(("127.0.0.1", first))
        assert await _answers(first)
    finally:
        await endpoint.close()


@contextlib.contextmanager
def socket_on(port: int) -> Iterator[None]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", port))
        s.listen()
        yield
