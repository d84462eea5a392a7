"""The least a health checker written in Python costs: bench_keepalived's floor, not a tool.

Checks the reals listed in its config file (``kind interval timeout`` on the first line, one
address per line after it) on their cadence, as keepalived and ldirector do, with nothing else:
the standard library's epoll selector and a heap of timers, one non-blocking socket per check, a
GET of ``/`` matched against the page (HTTP) or a handshake (connect), no asyncio, no logging,
no kernel table. What it costs per check and in memory, and how long it takes to start, in the
same VM as the two tools, is the part of their ratio that the language runtime sets: no Python
program can go below it.

    python tests/bench/pyfloor.py CONF
"""

from __future__ import annotations

import heapq
import random
import selectors
import socket
import sys
import time

PORT = 80
PAGE = b"Test Page"  # benchtools.PAGE, not imported: this program imports nothing of ours
REQUEST = b"GET / HTTP/1.1\r\nHost: %s\r\nConnection: close\r\nUser-Agent: floor\r\n\r\n"
MAX_READ = 64 * 1024


class Check:
    __slots__ = ("address", "buffer", "due", "request", "sock")

    def __init__(self, address: str) -> None:
        self.address = address
        self.request = REQUEST % address.encode()
        self.sock: socket.socket | None = None
        self.buffer = b""
        self.due = 0.0


def main(conf: str) -> None:
    with open(conf) as f:
        kind, interval_text, timeout_text = f.readline().split()
        addresses = [line.strip() for line in f if line.strip()]
    interval, timeout = float(interval_text), float(timeout_text)
    http = kind == "http"
    selector = selectors.DefaultSelector()
    timers: list[tuple[float, int, int, Check]] = []  # (when, tiebreak, generation, check)
    generation: dict[int, int] = {}
    results = [0, 0]  # failed, passed: judged as a checker must, though nobody reads them
    now = time.monotonic()
    for n, address in enumerate(addresses):
        check = Check(address)
        check.due = now + random.uniform(0, interval)
        heapq.heappush(timers, (check.due, n, -1, check))

    def start(check: Check, key: int) -> None:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM | socket.SOCK_NONBLOCK)
        check.sock, check.buffer = sock, b""
        sock.connect_ex((check.address, PORT))
        selector.register(sock, selectors.EVENT_WRITE, (check, key))
        generation[key] = generation.get(key, 0) + 1
        heapq.heappush(timers, (time.monotonic() + timeout, key, generation[key], check))

    def end(check: Check, key: int) -> None:
        sock, check.sock = check.sock, None
        if sock is not None:
            selector.unregister(sock)
            sock.close()
        generation[key] = generation.get(key, 0) + 1  # its deadline is void
        check.due += interval
        heapq.heappush(timers, (max(check.due, time.monotonic()), key, -1, check))

    while True:
        wait = max(0.0, timers[0][0] - time.monotonic()) if timers else None
        for selected, events in selector.select(wait):
            check, key = selected.data
            sock = check.sock
            if sock is None:
                continue
            if events & selectors.EVENT_WRITE:
                if sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR) or not http:
                    end(check, key)
                    continue
                sock.send(check.request)
                selector.modify(sock, selectors.EVENT_READ, (check, key))
                continue
            try:
                data = sock.recv(MAX_READ)
            except OSError:
                data = b""
            check.buffer += data
            if not data or PAGE in check.buffer:
                results[check.buffer[9:12] == b"200" and PAGE in check.buffer] += 1
                end(check, key)
        while timers and timers[0][0] <= time.monotonic():
            _, key, gen, check = heapq.heappop(timers)
            if gen == -1:
                start(check, key)
            elif gen == generation.get(key) and check.sock is not None:
                end(check, key)  # timed out


if __name__ == "__main__":
    main(sys.argv[1])
