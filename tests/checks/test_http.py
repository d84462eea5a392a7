"""service=http, https and http_proxy against a real nginx on 127.0.0.1 and ::1."""

from __future__ import annotations

import asyncio
import re
from ipaddress import ip_address

import pytest
import servers
from servers import Nginx

import checks
from checks.types import HttpMethod, HttpSpec, Target


def at(port: int, address: str = "127.0.0.1") -> Target:
    return Target(address=ip_address(address), port=port)


@pytest.mark.daemon
@pytest.mark.parametrize("address", ["127.0.0.1", "::1"])
async def test_http_up_with_receive(nginx: Nginx, address: str) -> None:
    spec = HttpSpec(request="/", receive=re.compile("Test Page"))
    result = await checks.probe(at(nginx.http, address), spec, 3)
    assert result == checks.Result(True, "HTTP 200 OK", result.elapsed)
    assert 0 < result.elapsed < 3


@pytest.mark.daemon
async def test_http_status_not_2xx_is_down(nginx: Nginx) -> None:
    result = await checks.probe(at(nginx.http), HttpSpec(request="/down"), 3)
    assert (result.ok, result.reason) == (False, "HTTP 503 Service Temporarily Unavailable")


@pytest.mark.daemon
@pytest.mark.parametrize("address", ["127.0.0.1", "::1"])
async def test_http_receive_not_found_is_down(nginx: Nginx, address: str) -> None:
    spec = HttpSpec(request="/other", receive=re.compile("Test Page"))
    result = await checks.probe(at(nginx.http, address), spec, 3)
    assert (result.ok, result.reason) == (False, "receive 'Test Page' not found (HTTP 200 OK)")


@pytest.mark.daemon
async def test_http_redirect_followed(nginx: Nginx) -> None:
    spec = HttpSpec(request="/moved", receive=re.compile("Test Page"))
    assert (await checks.probe(at(nginx.http), spec, 3)).ok


@pytest.mark.daemon
async def test_http_redirect_loop_is_down(nginx: Nginx) -> None:
    result = await checks.probe(at(nginx.http), HttpSpec(request="/loop"), 3)
    assert (result.ok, result.reason) == (False, "more than 7 redirects")


@pytest.mark.daemon
async def test_http_head_ignores_receive(nginx: Nginx) -> None:
    spec = HttpSpec(request="/", method=HttpMethod.HEAD, receive=re.compile("never in a body"))
    result = await checks.probe(at(nginx.http), spec, 3)
    assert (result.ok, result.reason) == (True, "HTTP 200 OK")


@pytest.mark.daemon
async def test_http_virtualhost_sets_host_header(nginx: Nginx) -> None:
    spec = HttpSpec(request="/", receive=re.compile("Virtual host page"), virtualhost="vhost.test")
    assert (await checks.probe(at(nginx.http), spec, 3)).ok
    without = HttpSpec(request="/", receive=re.compile("Virtual host page"))
    assert not (await checks.probe(at(nginx.http), without, 3)).ok


@pytest.mark.parametrize("address", ["127.0.0.1", "::1"])
async def test_http_refused(address: str) -> None:
    port = servers.free_port()
    result = await checks.probe(at(port, address), HttpSpec(), 3)
    assert (result.ok, result.reason) == (False, "connection refused")


@pytest.mark.parametrize("address", ["127.0.0.1", "::1"])
async def test_http_hung_server_times_out_without_leaks(address: str, no_leaks: None) -> None:
    with servers.silent_listener(address) as port:
        result = await checks.probe(at(port, address), HttpSpec(), 0.5)
    assert (result.ok, result.reason) == (False, "timed out after 0.5s")
    assert result.elapsed < 1.5


@pytest.mark.daemon
@pytest.mark.parametrize("address", ["127.0.0.1", "::1"])
async def test_https_self_signed_is_up_by_default(nginx: Nginx, address: str) -> None:
    spec = HttpSpec(tls=True, request="/", receive=re.compile("Secure Test Page"))
    result = await checks.probe(at(nginx.https, address), spec, 3)
    assert (result.ok, result.reason) == (True, "HTTP 200 OK")


@pytest.mark.daemon
async def test_https_verify_rejects_self_signed(nginx: Nginx) -> None:
    spec = HttpSpec(tls=True, verify_tls=True)
    result = await checks.probe(at(nginx.https), spec, 3)
    assert not result.ok
    assert result.reason.startswith("certificate verify failed")


@pytest.mark.daemon
async def test_https_wrong_status_and_plain_port(nginx: Nginx) -> None:
    down = await checks.probe(at(nginx.https), HttpSpec(tls=True, request="/down"), 3)
    assert (down.ok, down.reason) == (False, "HTTP 503 Service Temporarily Unavailable")
    plain = await checks.probe(at(nginx.http), HttpSpec(tls=True), 3)
    assert not plain.ok
    assert "TLS" in plain.reason or "SSL" in plain.reason


async def test_https_refused_and_hung() -> None:
    refused = await checks.probe(at(servers.free_port()), HttpSpec(tls=True), 3)
    assert (refused.ok, refused.reason) == (False, "connection refused")
    with servers.silent_listener("127.0.0.1") as port:
        hung = await checks.probe(at(port), HttpSpec(tls=True), 0.3)
    assert (hung.ok, hung.reason) == (False, "timed out after 0.3s")


@pytest.mark.daemon
async def test_http_proxy_fetches_through_the_real(nginx: Nginx) -> None:
    url = f"http://127.0.0.1:{nginx.http}/"
    spec = HttpSpec(proxy=True, request=url, receive=re.compile("Test Page"))
    result = await checks.probe(at(nginx.proxy), spec, 3)
    assert (result.ok, result.reason) == (True, "HTTP 200 OK")


@pytest.mark.daemon
async def test_http_proxy_wrong_answers(nginx: Nginx) -> None:
    body = HttpSpec(
        proxy=True, request=f"http://127.0.0.1:{nginx.http}/other", receive=re.compile("Test")
    )
    result = await checks.probe(at(nginx.proxy), body, 3)
    assert (result.ok, result.reason) == (False, "receive 'Test' not found (HTTP 200 OK)")
    # The proxy is up but what it proxies to is not: nginx answers 502.
    dead = HttpSpec(proxy=True, request=f"http://127.0.0.1:{servers.free_port()}/")
    result = await checks.probe(at(nginx.proxy), dead, 3)
    assert (result.ok, result.reason) == (False, "HTTP 502 Bad Gateway")


async def test_http_proxy_refused_and_hung() -> None:
    spec = HttpSpec(proxy=True, request="http://127.0.0.1:9/")
    refused = await checks.probe(at(servers.free_port()), spec, 3)
    assert (refused.ok, refused.reason) == (False, "connection refused")
    with servers.silent_listener("127.0.0.1") as port:
        hung = await checks.probe(at(port), spec, 0.3)
    assert (hung.ok, hung.reason) == (False, "timed out after 0.3s")


@pytest.mark.daemon
async def test_http_many_concurrent_checks_leave_nothing_open(nginx: Nginx, no_leaks: None) -> None:
    spec = HttpSpec(request="/", receive=re.compile("Test Page"))
    results = await asyncio.gather(*(checks.probe(at(nginx.http), spec, 5) for _ in range(50)))
    assert all(r.ok for r in results)


def test_url_building() -> None:
    from checks.http import url

    assert str(url(at(80, "::1"), HttpSpec(request="/a?b=1"))) == "http://[::1]/a?b=1"
    assert str(url(at(8443), HttpSpec(tls=True, request="x"))) == "https://127.0.0.1:8443/x"
    absolute = HttpSpec(request="http://example.invalid/p")
    assert str(url(at(80), absolute)) == "http://example.invalid/p"


def test_shared_session_is_closed_when_its_loop_ends() -> None:
    from checks import http

    sessions = []

    async def one_check() -> None:
        await checks.probe(at(servers.free_port()), HttpSpec(), 3)
        sessions.append(await http._session())

    asyncio.run(one_check())
    asyncio.run(one_check())
    assert sessions[0] is not sessions[1]
    assert all(s.closed for s in sessions)
