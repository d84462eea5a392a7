"""A recording HTTP server on loopback for the http check tests: it answers as the test says.

Each connection's request head is recorded, so a test sees exactly what reached the server; the
answer is raw bytes chosen from that head. Connections are closed by the server only when the
block ends: the client must close its own.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

#: The answer to one request, from its head lines (request line first).
Answer = Callable[[list[str]], bytes]


@dataclass
class Recorder:
    """Where the server listens, and the requests received: head lines, one entry each."""

    port: int = 0
    connections: list[list[str]] = field(default_factory=list)

    def paths(self) -> list[str]:
        return [head[0].split(" ")[1] for head in self.connections if head]


def response(status: str, body: bytes = b"", *extra: str) -> bytes:
    head = [f"HTTP/1.1 {status}", f"Content-Length: {len(body)}", *extra, "", ""]
    return "\r\n".join(head).encode() + body


def page(body: bytes, *extra: str) -> Answer:
    """200 OK with ``body`` to every request."""
    return lambda head: response("200 OK", body, *extra)


@asynccontextmanager
async def http_server(answer: Answer, address: str = "127.0.0.1") -> AsyncIterator[Recorder]:
    rec = Recorder()
    held: list[asyncio.StreamWriter] = []

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        held.append(writer)
        lines: list[str] = []
        rec.connections.append(lines)
        for _ in range(100):  # a request head is a few lines
            line = (await reader.readline()).decode().rstrip("\r\n")
            if not line:
                break
            lines.append(line)
        writer.write(answer(lines))
        await writer.drain()

    srv = await asyncio.start_server(handle, address, 0)
    rec.port = srv.sockets[0].getsockname()[1]
    try:
        yield rec
    finally:
        for writer in held:
            writer.close()
        srv.close()
        await srv.wait_closed()


#: What a raw server does on one connection once the request head is read.
Serve = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


@asynccontextmanager
async def server(serve: Serve) -> AsyncIterator[int]:
    """A loopback server that reads each request head, then runs ``serve``; its port."""
    tasks: list[asyncio.Task[None]] = []

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        tasks.append(asyncio.current_task())  # type: ignore[arg-type]
        try:
            await reader.readuntil(b"\r\n\r\n")
            await serve(reader, writer)
        except (ConnectionError, asyncio.IncompleteReadError):
            pass  # the check hung up, as it should once it has what it needs
        finally:
            writer.close()

    srv = await asyncio.start_server(handle, "127.0.0.1", 0)
    try:
        yield srv.sockets[0].getsockname()[1]
    finally:
        srv.close()
        for task in tasks:
            task.cancel()
        await srv.wait_closed()
