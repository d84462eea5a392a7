"""service=http on the wire: what the check sends, per-check connections, and when it reads.

A small asyncio server on loopback records each connection and answers as the test says, so
the tests see exactly what reaches a real server.
"""

from __future__ import annotations

import asyncio
import gzip
import re
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from ipaddress import ip_address

import checks
from checks.types import HttpSpec, Target

Answer = Callable[[asyncio.StreamWriter], None]


@dataclass
class Recorder:
    """The requests received, one entry (head lines) per connection."""

    port: int = 0
    connections: list[list[str]] = field(default_factory=list)


def page(body: bytes, *extra: str) -> Answer:
    def answer(writer: asyncio.StreamWriter) -> None:
        head = ["HTTP/1.1 200 OK", f"Content-Length: {len(body)}", *extra, "", ""]
        writer.write("\r\n".join(head).encode() + body)

    return answer


@asynccontextmanager
async def server(answer: Answer, address: str = "127.0.0.1") -> AsyncIterator[Recorder]:
    rec = Recorder()
    held: list[asyncio.StreamWriter] = []

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        lines: list[str] = []
        rec.connections.append(lines)
        while line := (await reader.readline()).decode().rstrip("\r\n"):
            lines.append(line)
        answer(writer)
        await writer.drain()
        held.append(writer)  # closed by the server only at the end: the client must close

    srv = await asyncio.start_server(handle, address, 0)
    rec.port = srv.sockets[0].getsockname()[1]
    try:
        yield rec
    finally:
        for writer in held:
            writer.close()
        srv.close()
        await srv.wait_closed()


def at(port: int, address: str = "127.0.0.1") -> Target:
    return Target(address=ip_address(address), port=port)


async def test_request_head_and_a_fresh_connection_per_check() -> None:
    spec = HttpSpec(request="/health?x=1", virtualhost="www.test", receive=re.compile("ok"))
    async with server(page(b"all ok")) as rec:
        for _ in range(3):
            result = await checks.probe(at(rec.port), spec, 3)
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
    async with server(page(b"x"), "::1") as rec:
        result = await checks.probe(at(rec.port, "::1"), HttpSpec(), 3)
    assert result.ok
    fields = dict(line.split(": ", 1) for line in rec.connections[0][1:])
    assert fields["Host"] == f"[::1]:{rec.port}"


async def test_without_receive_the_status_decides_and_the_body_is_not_awaited() -> None:
    # Headers announce 100 bytes; 3 arrive and the server then stays silent.
    def stalled(writer: asyncio.StreamWriter) -> None:
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nabc")

    async with server(stalled) as rec:
        up = await checks.probe(at(rec.port), HttpSpec(), 2)
        assert (up.ok, up.reason) == (True, "HTTP 200 OK")
        assert up.elapsed < 1
        # With a receive string the body is needed: the same answer runs into the timeout.
        hung = await checks.probe(at(rec.port), HttpSpec(receive=re.compile("abc")), 0.3)
        assert (hung.ok, hung.reason) == (False, "timed out after 0.3s")


async def test_receive_matches_the_decoded_body_of_a_compressed_page() -> None:
    body = gzip.compress(b"<html>Compressed Test Page</html>")
    async with server(page(body, "Content-Encoding: gzip")) as rec:
        found = await checks.probe(at(rec.port), HttpSpec(receive=re.compile("Test Page")), 3)
        missing = await checks.probe(at(rec.port), HttpSpec(receive=re.compile("absent")), 3)
    assert (found.ok, found.reason) == (True, "HTTP 200 OK")
    assert (missing.ok, missing.reason) == (False, "receive 'absent' not found (HTTP 200 OK)")


async def test_url_is_built_once_per_real_and_request() -> None:
    from checks.http import url

    spec = HttpSpec(request="status")
    first, again = url(at(8080), spec), url(at(8080), HttpSpec(request="status"))
    assert first is again
    assert str(first) == "http://127.0.0.1:8080/status"
    assert (
        str(url(at(8080), HttpSpec(request="status", tls=True))) == "https://127.0.0.1:8080/status"
    )
