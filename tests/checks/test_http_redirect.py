"""service=http redirects: followed while they stay on the real server, never to another host.

ldirectord (LWP) follows up to 7 redirects anywhere; here a Location on another host, port or
scheme is judged as the 3xx it is (down), so a real cannot have the director judge, or contact,
another host. The cross-host cases use two recording servers, on 127.0.0.2 and 127.0.0.3.
"""

from __future__ import annotations

import re

import pytest

from checks.types import HttpMethod, HttpSpec
from tests.support.checkrun import run_check, target
from tests.support.daemons_web import VHOST_PAGE, Nginx
from tests.support.httpwire import Answer, http_server, page, response


def redirect(location: str, status: str = "302 Found") -> Answer:
    return lambda head: response(status, b"", f"Location: {location}")


@pytest.mark.daemon
async def test_http_redirect_followed(nginx: Nginx) -> None:
    spec = HttpSpec(request="/moved", receive=re.compile("Test Page"))
    assert (await run_check(target(nginx.http), spec, 3)).ok


@pytest.mark.daemon
async def test_http_redirect_loop_is_down(nginx: Nginx) -> None:
    result = await run_check(target(nginx.http), HttpSpec(request="/loop"), 3)
    assert (result.ok, result.reason) == (False, "more than 7 redirects")


@pytest.mark.daemon
async def test_redirect_naming_the_virtualhost_stays_on_the_real(nginx: Nginx) -> None:
    # nginx answers http://vhost.test:PORT/: the name is the Host header's, not a DNS lookup.
    spec = HttpSpec(
        request="/moved", virtualhost="vhost.test", receive=re.compile(VHOST_PAGE.strip())
    )
    result = await run_check(target(nginx.http), spec, 3)
    assert (result.ok, result.reason) == (True, "HTTP 200 OK")


@pytest.mark.daemon
async def test_http_proxy_follows_a_redirect_of_the_proxied_site(nginx: Nginx) -> None:
    spec = HttpSpec(
        proxy=True, request=f"http://127.0.0.1:{nginx.http}/moved", receive=re.compile("Test")
    )
    result = await run_check(target(nginx.proxy), spec, 3)
    assert (result.ok, result.reason) == (True, "HTTP 200 OK")


async def test_redirect_to_another_host_is_not_followed(no_leaks: None) -> None:
    async with http_server(page(b"elsewhere is fine"), "127.0.0.3") as other:
        elsewhere = f"http://127.0.0.3:{other.port}/health"
        async with http_server(redirect(elsewhere), "127.0.0.2") as real:
            spec = HttpSpec(request="/health", receive=re.compile("fine"))
            result = await run_check(target(real.port, "127.0.0.2"), spec, 3)
            head = await run_check(
                target(real.port, "127.0.0.2"), HttpSpec(method=HttpMethod.HEAD), 3
            )
    reason = f"HTTP 302 Found: redirect to {elsewhere} not followed (another host)"
    assert (result.ok, result.reason) == (False, reason)
    assert (head.ok, head.reason) == (False, reason)
    assert other.connections == []  # never contacted
    assert real.paths() == ["/health", "/"]


def redirect_templated(template: str, other: int, third: int) -> Answer:
    """A 301 to ``template`` with {host} (the request's own Host), {other} and {third} filled."""

    def answer(head: list[str]) -> bytes:
        host = next(line.split(":", 1)[1].strip() for line in head if line.startswith("Host:"))
        location = template.format(host=host, other=other, third=third)
        return response("301 Moved Permanently", b"", f"Location: {location}")

    return answer


@pytest.mark.parametrize(
    "template",
    ["http://127.0.0.2:{other}/x", "https://{host}/x", "//127.0.0.3:{third}/x"],
    ids=["other-port", "other-scheme", "scheme-relative-other-host"],
)
async def test_redirect_off_the_real_server_is_down(template: str, no_leaks: None) -> None:
    async with (
        http_server(page(b"other"), "127.0.0.2") as other,
        http_server(page(b"third"), "127.0.0.3") as third,
        http_server(redirect_templated(template, other.port, third.port), "127.0.0.2") as real,
    ):
        result = await run_check(target(real.port, "127.0.0.2"), HttpSpec(), 3)
    assert not result.ok
    assert result.reason.startswith("HTTP 301 Moved Permanently: redirect to ")
    assert result.reason.endswith(" not followed (another host)")
    assert (other.connections, third.connections, len(real.connections)) == ([], [], 1)


async def test_relative_redirects_on_the_real_are_followed(no_leaks: None) -> None:
    def answer(head: list[str]) -> bytes:
        path = head[0].split(" ")[1]
        if path == "/a/b":
            return response("307 Temporary Redirect", b"", "Location: ../c")
        if path == "/c":
            return response("301 Moved Permanently", b"", "Location: /d?x=1")
        return response("200 OK", f"landed on {path}".encode())

    async with http_server(answer, "127.0.0.2") as real:
        spec = HttpSpec(request="/a/b", receive=re.compile("landed on /d"))
        result = await run_check(target(real.port, "127.0.0.2"), spec, 3)
    assert (result.ok, result.reason) == (True, "HTTP 200 OK")
    assert real.paths() == ["/a/b", "/c", "/d?x=1"]


async def test_a_redirect_without_a_usable_location_is_down(no_leaks: None) -> None:
    async with http_server(redirect("http://[zz/")) as bad:
        result = await run_check(target(bad.port), HttpSpec(), 3)
    assert (result.ok, result.reason) == (
        False,
        "HTTP 302 Found: bad redirect location 'http://[zz/'",
    )
    async with http_server(lambda head: response("302 Found")) as missing:
        result = await run_check(target(missing.port), HttpSpec(), 3)
    assert (result.ok, result.reason) == (False, "HTTP 302 Found: no Location to follow")
