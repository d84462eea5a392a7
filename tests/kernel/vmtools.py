"""Helpers for kernel tests: running the host tools the VM shares (ipvsadm, ip, setpriv)."""

from __future__ import annotations

import contextlib
import ctypes
import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from ipaddress import IPv4Address

from ldirector.ipvs.netlink import CLONE_NEWNET


def ipvsadm(*args: str, stdin: str | None = None) -> str:
    """Run ipvsadm, failing the test with its stderr if it fails."""
    done = subprocess.run(
        ["ipvsadm", *args], input=stdin, capture_output=True, text=True, check=False, timeout=120
    )
    assert done.returncode == 0, f"ipvsadm {' '.join(args)}: {done.stderr.strip()}"
    return done.stdout


def run_as_nobody(*argv: str) -> subprocess.CompletedProcess[str]:
    """Run a Python snippet or module as user nobody with no capabilities at all."""
    return subprocess.run(
        [
            "setpriv",
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
            "--inh-caps=-all",
            sys.executable,
            *argv,
        ],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )


# --- Engine tests and the VM benchmark: namespaces, a health-flag HTTP server ------------------


def _setns(handle: int, what: str) -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.setns(handle, CLONE_NEWNET) != 0:
        code = ctypes.get_errno()
        raise OSError(code, f"cannot enter network namespace {what}: {os.strerror(code)}")


@contextlib.contextmanager
def inside_netns(name: str) -> Iterator[None]:
    """Move this thread into network namespace ``name`` (made with ``ip netns add``), and back.

    The threads and processes it starts meanwhile are born there too: an engine, its checks,
    its netlink socket, its sysctl writes, ipvsadm.
    """
    with open("/proc/thread-self/ns/net", "rb") as home:
        with open(f"/run/netns/{name}", "rb") as there:
            _setns(there.fileno(), name)
        try:
            yield
        finally:
            _setns(home.fileno(), "of the VM")


@contextlib.contextmanager
def ready_processes(argvs: list[list[str]]) -> Iterator[None]:
    """One process per argv, each printing ``ready`` once it serves; all killed at the end."""
    processes = [subprocess.Popen(argv, stdout=subprocess.PIPE, text=True) for argv in argvs]
    try:
        for process in processes:
            assert process.stdout is not None and process.stdout.readline() == "ready\n"
        yield
    finally:
        for process in processes:
            process.kill()
            process.wait(timeout=30)
            if process.stdout is not None:
                process.stdout.close()


def sh(*argv: str) -> str:
    """Run a command, failing the test with its stderr if it fails; return its stdout."""
    done = subprocess.run(argv, capture_output=True, text=True, check=False, timeout=120)
    assert done.returncode == 0, f"{' '.join(argv)}: {done.stderr.strip()}"
    return done.stdout


#: A small asyncio HTTP/1.1 server for real servers inside namespaces: ``GET /health`` answers
#: ``ok`` unless a file named after the server (argv[1]) or after the address the request came
#: in on exists in the flag directory (argv[2]); any other path answers the server's name, so a
#: client sees which real it reached. Keep-alive, one process for any number of addresses.
#: argv[3] (optional) is the port, default 80.
HEALTH_SERVER = r"""
import asyncio, os, sys
name, flags = sys.argv[1], sys.argv[2]
port = int(sys.argv[3]) if len(sys.argv) > 3 else 80
down = set()

def reply(status, body):
    return (f"HTTP/1.1 {status}\r\nContent-Length: {len(body)}\r\n"
            f"Content-Type: text/plain\r\n\r\n{body}").encode()

class Http(asyncio.Protocol):
    def connection_made(self, transport):
        self.transport, self.buf = transport, b""
        self.local = transport.get_extra_info("sockname")[0]
    def data_received(self, data):
        self.buf += data
        while b"\r\n\r\n" in self.buf:
            head, _, self.buf = self.buf.partition(b"\r\n\r\n")
            path = head.split(b" ", 2)[1] if head.count(b" ") >= 2 else b"/"
            if path == b"/health":
                bad = name in down or self.local in down
                self.transport.write(reply("503 Down", "down") if bad else reply("200 OK", "ok"))
            else:
                self.transport.write(reply("200 OK", name))

async def watch():
    while True:
        try:
            down.clear(); down.update(os.listdir(flags))
        except OSError:
            pass
        await asyncio.sleep(0.05)

async def main():
    loop = asyncio.get_running_loop()
    server = await loop.create_server(Http, "0.0.0.0", port, backlog=4096, reuse_address=True)
    print("ready", flush=True)
    await asyncio.gather(server.serve_forever(), watch())

asyncio.run(main())
"""


def http_get(sock: socket.socket, path: str = "/") -> str:
    """One HTTP/1.1 keep-alive request on ``sock``; returns the body."""
    sock.sendall(f"GET {path} HTTP/1.1\r\nHost: vip\r\n\r\n".encode())
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(4096)
        if not chunk:
            raise ConnectionResetError("connection closed")
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    length = int(head.lower().split(b"content-length:")[1].split(b"\r\n")[0])
    while len(body) < length:
        chunk = sock.recv(4096)
        if not chunk:
            raise ConnectionResetError("connection closed")
        body += chunk
    return body.decode()


def proc_ip_vs(text: str) -> dict[str, dict[str, int]]:
    """The kernel's text listing of its table (``/proc/net/ip_vs``) as service -> dest -> weight.

    Services read ``TCP 10.0.0.1:80`` (``FWM 5`` for a mark), IPv4 destinations ``10.0.0.2:80``;
    IPv6 entries keep the kernel's bracketed hex. It is the kernel's own view, independent of
    ldirector's netlink decoder, so it stays readable whatever another tool put in the table.
    """

    def endpoint(word: str) -> str:
        address, _, port = word.rpartition(":")
        if len(address) == 8 and not address.startswith("["):
            address = str(IPv4Address(int(address, 16)))
        return f"{address}:{int(port, 16)}" if port else word

    table: dict[str, dict[str, int]] = {}
    current: dict[str, int] | None = None
    for line in text.splitlines()[3:]:
        words = line.split()
        if len(words) >= 4 and words[0] == "->" and current is not None:
            with contextlib.suppress(ValueError):
                current[endpoint(words[1])] = int(words[3])
        elif len(words) >= 2 and not line.startswith(" "):
            name = str(int(words[1], 16)) if words[0] == "FWM" else endpoint(words[1])
            current = table.setdefault(f"{words[0]} {name}", {})
    return table
