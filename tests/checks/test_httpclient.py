"""checks.httpclient on the wire: the framing a real server may use, split across reads at its
worst places, and the request refused before it is sent when the configuration would break it.

Each server here sends raw bytes in pieces, with a pause between them, so the parser sees every
answer cut across reads; each test says what the check must make of it.
"""

from __future__ import annotations

import asyncio
import re
import zlib
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager

import httptools
import pytest

from checks.httpclient import (
    MAX_HEAD,
    Answer,
    InvalidRequest,
    ProtocolError,
    ServerClosed,
    build_request,
    exchange,
)
from checks.types import HttpMethod, HttpSpec
from tests.support.checkrun import run_check, target
from tests.support.httpwire import http_server, page, server

GET = build_request("GET", "/", [("Host", "real"), ("Connection", "close")])


@asynccontextmanager
async def pieces(parts: Sequence[bytes], close: bool = True) -> AsyncIterator[int]:
    """A loopback server that reads the request head, sends ``parts`` one read apart, then
    closes (or, with ``close=False``, stays silent); its port."""

    async def send(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        for part in parts:
            writer.write(part)
            await writer.drain()
            await asyncio.sleep(0.01)
        if not close:
            await asyncio.sleep(10)

    async with server(send) as port:
        yield port


async def ask(
    parts: Sequence[bytes], max_body: int | None = 1024, close: bool = True
) -> Answer | ProtocolError | ServerClosed:
    """The answer to GET (or the exception it raised) from a server sending ``parts``."""
    async with pieces(parts, close) as port:
        try:
            async with asyncio.timeout(3):
                return await exchange("127.0.0.1", port, GET, max_body=max_body)
        except (ProtocolError, ServerClosed) as exc:
            return exc


async def read(parts: Sequence[bytes], max_body: int | None = 1024, close: bool = True) -> Answer:
    """The answer to GET from a server sending ``parts``, which must be one."""
    answer = await ask(parts, max_body, close)
    assert isinstance(answer, Answer), answer
    return answer


async def test_a_chunked_body_split_across_reads() -> None:
    answer = await read(
        [
            b"HTTP/1.1 200 OK\r\nTransfer-Enc",
            b"oding: chunked\r\n\r\n5\r\nTest ",
            b"\r\n4;ext=1\r\nPage\r\n0\r\n",
            b"\r\n",
        ],
        close=False,  # the answer is complete without the close
    )
    assert answer.body == b"Test Page"


async def test_informational_answers_are_skipped() -> None:
    answer = await read(
        [
            b"HTTP/1.1 100 Continue\r\n\r\n",
            b"HTTP/1.1 103 Early Hints\r\nLink: </a.css>\r\nX-Hint: first\r\n\r\nHTTP/1.1 2",
            b"01 Created Here\r\nX-Final: yes\r\nContent-Length: 2\r\n\r\nok",
        ],
        close=False,
    )
    assert (answer.status, answer.reason, answer.body) == (201, "Created Here", b"ok")
    # The hints' headers are not the answer's.
    assert answer.headers == {b"x-final": b"yes", b"content-length": b"2"}


async def test_a_body_ended_by_the_close_and_one_cut_short_are_judged_on_what_came() -> None:
    until_close = await read([b"HTTP/1.0 200 OK\r\n\r\nTest", b" Page"])
    assert until_close.body == b"Test Page"
    cut = await read([b"HTTP/1.1 200 OK\r\nContent-Length: 500\r\n\r\nTest", b" Pa"])
    assert (cut.status, cut.body) == (200, b"Test Pa")
    broken = await read(
        [b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n4\r\nTest\r\nzz\r\n"]
    )
    assert (broken.status, broken.body) == (200, b"Test")


async def test_a_close_inside_the_head_is_server_closed() -> None:
    assert isinstance(await ask([b"HTTP/1.1 200 OK\r\nContent-Le"]), ServerClosed)


@pytest.mark.parametrize(
    "junk",
    [
        b"SSH-2.0-OpenSSH_9.2p1\r\n\r\n",
        b"HTTP/1.1 2x0 OK\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab",
        b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03",
    ],
)
async def test_a_malformed_answer_is_a_protocol_error_in_one_printable_line(junk: bytes) -> None:
    error = await ask([junk], close=False)
    assert isinstance(error, ProtocolError)
    assert str(error).startswith("invalid HTTP answer: ")
    assert str(error).isprintable() and len(str(error)) <= 200


async def test_one_endless_header_line_is_refused_at_the_limit() -> None:
    # One header that never ends: no complete header line is ever handed over to count.
    parts = [b"HTTP/1.1 200 OK\r\nX-Junk: ", *([b"a" * 8192] * (2 * MAX_HEAD // 8192))]
    error = await ask(parts, close=False)
    assert isinstance(error, ProtocolError)
    assert "past 64 KiB" in str(error)


async def test_a_head_just_within_the_limit_is_read() -> None:
    head = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nX-Pad: "
    head += b"p" * (MAX_HEAD - len(head) - 4) + b"\r\n\r\n"
    assert len(head) == MAX_HEAD
    answer = await read([head + b"ok"])
    assert answer.body == b"ok"


async def test_headers_lowercased_trimmed_and_the_first_of_a_repeat_decides() -> None:
    answer = await read(
        [
            b"HTTP/1.1 200 OK\r\nX-Seen:  first  \r\nx-seen: second\r\n",
            b"Content-Type: text/plain\r\nContent-Length: 0\r\n\r\n",
        ]
    )
    assert answer.headers[b"x-seen"] == b"first"
    assert answer.header(b"content-type") == "text/plain"


async def test_a_missing_reason_phrase_is_read() -> None:
    answer = await read([b"HTTP/1.1 204\r\nServer: tiny\r\n\r\n"], close=False)
    assert (answer.status, answer.reason, answer.headers) == (204, "", {b"server": b"tiny"})


@pytest.mark.skipif(
    not httptools.__version__.startswith("0.1.")
    and not hasattr(httptools.HttpResponseParser, "set_dangerous_leniencies"),
    reason="httptools 0.2 to 0.6.2: llhttp refuses bare LF and cannot be told otherwise",
)
async def test_bare_lf_line_ends_and_folded_values_are_read_as_other_clients_do() -> None:
    answer = await read([b"HTTP/1.1 200 OK\nX-Long: a\n b\nContent-Length: 2\n\nok"], close=False)
    assert (answer.status, answer.headers[b"x-long"], answer.body) == (200, b"a b", b"ok")


async def test_no_body_is_awaited_for_head_204_and_304() -> None:
    head = build_request("HEAD", "/", [("Host", "real")])
    async with pieces([b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n"], close=False) as port:
        async with asyncio.timeout(1):
            answer = await exchange("127.0.0.1", port, head, max_body=1024)
    assert (answer.status, answer.body) == (200, None)
    for status in (b"204 No Content", b"304 Not Modified"):
        got = await read([b"HTTP/1.1 %s\r\nContent-Length: 100\r\n\r\n" % status], close=False)
        assert (got.status, got.body) == (int(status[:3]), b"")


async def test_a_protocol_switch_not_asked_for_is_refused() -> None:
    error = await ask([b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: h2c\r\n\r\n"], close=False)
    assert isinstance(error, ProtocolError)


async def test_a_body_that_does_not_inflate_is_a_protocol_error() -> None:
    error = await ask([b"HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\n\r\nnot gzip at all"])
    assert isinstance(error, ProtocolError)
    assert str(error) == "invalid HTTP answer: body cannot be decoded"


async def test_a_deflated_body_is_bounded_by_max_body() -> None:
    body = zlib.compress(b"Test Page " * 1000)
    head = b"HTTP/1.1 200 OK\r\nContent-Encoding: deflate\r\nContent-Length: %d\r\n\r\n"
    answer = await read([head % len(body), body], max_body=15)
    assert answer.body == b"Test Page Test "


def test_the_request_is_one_head_in_http_framing() -> None:
    wire = build_request("GET", "/a?b=1", [("Host", "[::1]:8080"), ("X-Empty", "")]).wire
    assert wire == b"GET /a?b=1 HTTP/1.1\r\nHost: [::1]:8080\r\nX-Empty: \r\n\r\n"


@pytest.mark.parametrize(
    ("method", "where", "header"),
    [
        ("GET", "/", ("Host", "real\r\nX-Injected: 1")),
        ("GET", "/", ("Host", "real\nX-Injected: 1")),
        ("GET", "/", ("Host", "real\rX")),
        ("GET", "/", ("Host", "real\x00")),
        ("GET", "/", ("Host", " leading-space")),
        ("GET", "/", ("Host", "caf\u00e9.test")),
        ("GET", "/", ("Bad Name", "x")),
        ("GET", "/", ("Host:", "x")),
        ("GET", "/a b", ("Host", "x")),
        ("GET", "/a\r\n", ("Host", "x")),
        ("GET", "", ("Host", "x")),
        ("GET /x", "/", ("Host", "x")),
        ("", "/", ("Host", "x")),
    ],
)
def test_a_request_that_would_break_the_framing_is_refused(
    method: str, where: str, header: tuple[str, str]
) -> None:
    with pytest.raises(InvalidRequest) as refused:
        build_request(method, where, [header])
    assert str(refused.value).isprintable()


async def test_a_hostile_virtualhost_is_refused_and_nothing_is_sent() -> None:
    async with http_server(page(b"ok")) as rec:
        spec = HttpSpec(virtualhost="www.test\r\nX-Injected: 1", receive=re.compile("ok"))
        result = await run_check(target(rec.port), spec, 3)
        head = await run_check(target(rec.port), HttpSpec(method=HttpMethod.HEAD), 3)
    assert not result.ok
    assert result.reason == "invalid Host header 'www.test X-Injected: 1': not sent"
    assert head.ok
    assert len(rec.connections) == 1  # only the HEAD check's
    assert rec.connections[0][0] == "HEAD / HTTP/1.1"
