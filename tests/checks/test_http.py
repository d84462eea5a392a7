"""service=http, https and http_proxy against a real nginx on 127.0.0.1 and ::1, and on the wire.

The wire tests use a small asyncio server on loopback that records each connection and answers
as the test says, so they see exactly what reaches a real server. Redirects: test_http_redirect.
"""

from __future__ import annotations

import asyncio
import gzip
import re
import time

import pytest

import checks
from checks.types import HttpMethod, HttpSpec
from tests.support.checkrun import assert_times_out_cleanly, run_check, target
from tests.support.daemons_web import Nginx
from tests.support.httpwire import http_server, page
from tests.support.servers import free_port, hung_tcp


@pytest.mark.daemon
@pytest.mark.parametrize("address", ["127.0.0.1", "::1"])
async def test_http_up_with_receive(nginx: Nginx, address: str) -> None:
    spec = HttpSpec(request="/", receive=re.compile("Test Page"))
    result = await run_check(target(nginx.http, address), spec, 3)
    # The harness times the check; checks.run leaves elapsed to it.
    assert result == checks.Result(True, "HTTP 200 OK")


@pytest.mark.daemon
async def test_http_status_not_2xx_is_down(nginx: Nginx) -> None:
    result = await run_check(target(nginx.http), HttpSpec(request="/down"), 3)
    assert (result.ok, result.reason) == (False, "HTTP 503 Service Temporarily Unavailable")


@pytest.mark.daemon
@pytest.mark.parametrize("address", ["127.0.0.1", "::1"])
async def test_http_receive_not_found_is_down(nginx: Nginx, address: str) -> None:
    spec = HttpSpec(request="/other", receive=re.compile("Test Page"))
    result = await run_check(target(nginx.http, address), spec, 3)
    assert (result.ok, result.reason) == (False, "receive 'Test Page' not found (HTTP 200 OK)")


@pytest.mark.daemon
async def test_http_head_ignores_receive(nginx: Nginx) -> None:
    spec = HttpSpec(request="/", method=HttpMethod.HEAD, receive=re.compile("never in a body"))
    result = await run_check(target(nginx.http), spec, 3)
    assert (result.ok, result.reason) == (True, "HTTP 200 OK")


@pytest.mark.daemon
async def test_http_virtualhost_sets_host_header(nginx: Nginx) -> None:
    spec = HttpSpec(request="/", receive=re.compile("Virtual host page"), virtualhost="vhost.test")
    assert (await run_check(target(nginx.http), spec, 3)).ok
    without = HttpSpec(request="/", receive=re.compile("Virtual host page"))
    assert not (await run_check(target(nginx.http), without, 3)).ok


@pytest.mark.parametrize("address", ["127.0.0.1", "::1"])
async def test_http_refused(address: str) -> None:
    port = free_port()
    result = await run_check(target(port, address), HttpSpec(), 3)
    assert (result.ok, result.reason) == (False, "connection refused")


@pytest.mark.parametrize("address", ["127.0.0.1", "::1"])
async def test_http_hung_server_times_out_without_leaks(address: str) -> None:
    with hung_tcp(address) as port:
        await assert_times_out_cleanly(target(port, address), HttpSpec(), 0.5)


@pytest.mark.daemon
@pytest.mark.parametrize("address", ["127.0.0.1", "::1"])
async def test_https_self_signed_is_up_by_default(nginx: Nginx, address: str) -> None:
    spec = HttpSpec(tls=True, request="/", receive=re.compile("Secure Test Page"))
    result = await run_check(target(nginx.https, address), spec, 3)
    assert (result.ok, result.reason) == (True, "HTTP 200 OK")


@pytest.mark.daemon
async def test_https_verify_rejects_self_signed(nginx: Nginx) -> None:
    spec = HttpSpec(tls=True, verify_tls=True)
    result = await run_check(target(nginx.https), spec, 3)
    assert not result.ok
    assert result.reason.startswith("certificate verify failed")


@pytest.mark.daemon
async def test_https_wrong_status_and_plain_port(nginx: Nginx) -> None:
    down = await run_check(target(nginx.https), HttpSpec(tls=True, request="/down"), 3)
    assert (down.ok, down.reason) == (False, "HTTP 503 Service Temporarily Unavailable")
    plain = await run_check(target(nginx.http), HttpSpec(tls=True), 3)
    assert not plain.ok
    assert "TLS" in plain.reason or "SSL" in plain.reason


async def test_https_refused_and_hung() -> None:
    refused = await run_check(target(free_port()), HttpSpec(tls=True), 3)
    assert (refused.ok, refused.reason) == (False, "connection refused")
    with hung_tcp("127.0.0.1") as port:
        await assert_times_out_cleanly(target(port), HttpSpec(tls=True), 0.3)


@pytest.mark.daemon
async def test_http_proxy_fetches_through_the_real(nginx: Nginx) -> None:
    url = f"http://127.0.0.1:{nginx.http}/"
    spec = HttpSpec(proxy=True, request=url, receive=re.compile("Test Page"))
    result = await run_check(target(nginx.proxy), spec, 3)
    assert (result.ok, result.reason) == (True, "HTTP 200 OK")


@pytest.mark.daemon
async def test_http_proxy_wrong_answers(nginx: Nginx) -> None:
    body = HttpSpec(
        proxy=True, request=f"http://127.0.0.1:{nginx.http}/other", receive=re.compile("Test")
    )
    result = await run_check(target(nginx.proxy), body, 3)
    assert (result.ok, result.reason) == (False, "receive 'Test' not found (HTTP 200 OK)")
    # The proxy is up but what it proxies to is not: nginx answers 502.
    dead = HttpSpec(proxy=True, request=f"http://127.0.0.1:{free_port()}/")
    result = await run_check(target(nginx.proxy), dead, 3)
    assert (result.ok, result.reason) == (False, "HTTP 502 Bad Gateway")


async def test_http_proxy_refused_and_hung() -> None:
    spec = HttpSpec(proxy=True, request="http://127.0.0.1:9/")
    refused = await run_check(target(free_port()), spec, 3)
    assert (refused.ok, refused.reason) == (False, "connection refused")
    with hung_tcp("127.0.0.1") as port:
        await assert_times_out_cleanly(target(port), spec, 0.3)


@pytest.mark.daemon
async def test_http_many_concurrent_checks_leave_nothing_open(nginx: Nginx, no_leaks: None) -> None:
    spec = HttpSpec(request="/", receive=re.compile("Test Page"))
    results = await asyncio.gather(*(run_check(target(nginx.http), spec, 5) for _ in range(50)))
    assert all(r.ok for r in results)


def test_url_building() -> None:
    from checks.http import url

    assert str(url(target(80, "::1"), HttpSpec(request="/a?b=1"))) == "http://[::1]/a?b=1"
    assert str(url(target(8443), HttpSpec(tls=True, request="x"))) == "https://127.0.0.1:8443/x"
    absolute = HttpSpec(request="http://example.invalid/p")
    assert str(url(target(80), absolute)) == "http://example.invalid/p"


def test_shared_session_is_closed_when_its_loop_ends() -> None:
    from checks import http

    sessions = []

    async def one_check() -> None:
        await run_check(target(free_port()), HttpSpec(), 3)
        sessions.append(await http._session())

    asyncio.run(one_check())
    asyncio.run(one_check())
    assert sessions[0] is not sessions[1]
    assert all(s.closed for s in sessions)


# --- on the wire -------------------------------------------------------------------------------


async def test_request_head_and_a_fresh_connection_per_check() -> None:
    spec = HttpSpec(request="/health?x=1", virtualhost="www.test", receive=re.compile("ok"))
    async with http_server(page(b"all ok")) as rec:
        for _ in range(3):
            result = await run_check(target(rec.port), spec, 3)
            assert (result.ok, result.reason) == (True, "HTTP 200 OK")
    # No pooled keep-alive connection: every check opens its own.
    assert len(rec.connections) == 3
    for head in rec.connections:
        assert head[0] == "GET /health?x=1 HTTP/1.1"
        fields = {k.lower(): v.strip() for k, v in (line.split(":", 1) for line in head[1:])}
        assert fields["host"] == "www.test"
        assert fields["connection"] == "close"
        assert fields["user-agent"] == "ldirector-check"


async def test_host_header_defaults_to_the_real_address_on_ipv6() -> None:
    async with http_server(page(b"x"), "::1") as rec:
        result = await run_check(target(rec.port, "::1"), HttpSpec(), 3)
    assert result.ok
    fields = dict(line.split(": ", 1) for line in rec.connections[0][1:])
    assert fields["Host"] == f"[::1]:{rec.port}"


async def test_without_receive_the_status_decides_and_the_body_is_not_awaited() -> None:
    # Headers announce 100 bytes; 3 arrive and the server then stays silent.
    def stalled(head: list[str]) -> bytes:
        return b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nabc"

    async with http_server(stalled) as rec:
        started = time.monotonic()
        up = await run_check(target(rec.port), HttpSpec(), 2)
        assert (up.ok, up.reason) == (True, "HTTP 200 OK")
        assert time.monotonic() - started < 1
        # With a receive string the body is needed: the same answer runs into the timeout.
        await assert_times_out_cleanly(target(rec.port), HttpSpec(receive=re.compile("abc")), 0.3)


async def test_receive_matches_the_decoded_body_of_a_compressed_page() -> None:
    body = gzip.compress(b"<html>Compressed Test Page</html>")
    async with http_server(page(body, "Content-Encoding: gzip")) as rec:
        found = await run_check(target(rec.port), HttpSpec(receive=re.compile("Test Page")), 3)
        missing = await run_check(target(rec.port), HttpSpec(receive=re.compile("absent")), 3)
    assert (found.ok, found.reason) == (True, "HTTP 200 OK")
    assert (missing.ok, missing.reason) == (False, "receive 'absent' not found (HTTP 200 OK)")


async def test_url_is_built_once_per_real_and_request() -> None:
    from checks.http import url

    spec = HttpSpec(request="status")
    first, again = url(target(8080), spec), url(target(8080), HttpSpec(request="status"))
    assert first is again
    assert str(first) == "http://127.0.0.1:8080/status"
    assert (
        str(url(target(8080), HttpSpec(request="status", tls=True)))
        == "https://127.0.0.1:8080/status"
    )
