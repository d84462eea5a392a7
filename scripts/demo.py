"""``make run``: ldirector on examples/ldirectord.cf with demo real servers, on a real IPVS table.

Started by scripts/demo, either directly (a host whose kernel has IPVS, as root) or inside the
throwaway VM the kernel tests use. It starts small real servers on the loopback addresses the
example names, runs ``ldirector -d examples/ldirectord.cf start`` beside them, and prints the
kernel table (``ipvsadm -Ln``) as the real 127.0.0.3 is stopped and started again; then it
stops ldirector (cleanstop removes the example's services) and exits. Every wait is bounded,
and nothing listens or connects outside 127.0.0.0/8.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CONFIG = ROOT / "examples" / "ldirectord.cf"
VENV = Path(sys.executable).parent
WAIT = 60.0  # seconds at most for any one change to reach the kernel table

#: The example's real servers: address -> the ports it serves (8080 HTTP, 7000 TCP, 7100 PING).
REALS = {
    "127.0.0.2": (8080, 7000, 7100),
    "127.0.0.3": (8080, 7000, 7100),
    "127.0.0.4": (8080, 7100),
}
VICTIM = "127.0.0.3"


def say(text: str) -> None:
    print(f"\n==== {text}", flush=True)


async def http(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, name: str) -> None:
    """GET /health answers ``ok``; any other path says which server answered."""
    with contextlib.suppress(ConnectionError, asyncio.IncompleteReadError):
        while True:
            head = await reader.readuntil(b"\r\n\r\n")
            path = head.split(b" ", 2)[1] if head.count(b" ") >= 2 else b"/"
            body = b"ok" if path == b"/health" else f"hello from {name}\n".encode()
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body))
            await writer.drain()
    writer.close()


async def pong(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """A line protocol: PING gets PONG."""
    with contextlib.suppress(ConnectionError):
        while line := await reader.readline():
            writer.write(b"PONG\n" if line.strip() == b"PING" else b"ERR\n")
            await writer.drain()
    writer.close()


async def hello(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """A plain TCP service: the connect check only needs it to accept."""
    writer.write(b"demo session\n")
    with contextlib.suppress(ConnectionError):
        await writer.drain()
    writer.close()


async def serve(address: str) -> list[asyncio.Server]:
    """Start every server of one real (and the fallback's sorry page on 127.0.0.1:8081)."""
    servers = []
    for port in REALS.get(address, (8081,)):
        if port in (8080, 8081):
            name = "the sorry page" if port == 8081 else address

            async def handler(
                r: asyncio.StreamReader, w: asyncio.StreamWriter, name: str = name
            ) -> None:
                await http(r, w, name)

            servers.append(await asyncio.start_server(handler, address, port))
        elif port == 7100:
            servers.append(await asyncio.start_server(pong, address, port))
        else:
            servers.append(await asyncio.start_server(hello, address, port))
    return servers


async def stop(servers: list[asyncio.Server]) -> None:
    for server in servers:
        server.close()
        await server.wait_closed()


def table() -> str:
    done = subprocess.run(["ipvsadm", "-Ln"], capture_output=True, text=True, check=False)
    return done.stdout if done.returncode == 0 else done.stderr


def dests() -> dict[tuple[str, str], int]:
    """(virtual, real) -> weight, from ``ipvsadm -Ln``."""
    out: dict[tuple[str, str], int] = {}
    virtual = ""
    for line in table().splitlines():
        words = line.split()
        if words[:1] in (["TCP"], ["UDP"], ["FWM"]):
            virtual = words[1]
        elif words[:1] == ["->"] and virtual and words[1][0].isdigit():
            out[(virtual, words[1])] = int(words[3])
    return out


async def until(what: str, ok: Callable[[dict[tuple[str, str], int]], bool]) -> bool:
    """Poll the kernel table until ``ok(dests)`` holds; print the table and the time it took."""
    start = time.monotonic()
    while not ok(dests()):
        if time.monotonic() - start > WAIT:
            print(f"demo: {what}: not seen within {WAIT:.0f} s", flush=True)
            print(table(), flush=True)
            return False
        await asyncio.sleep(0.25)
    print(f"---- {what} (after {time.monotonic() - start:.1f} s); ipvsadm -Ln:", flush=True)
    print(table(), flush=True)
    return True


def all_up(d: dict[tuple[str, str], int]) -> bool:
    want = {(f"127.0.0.1:{p}", f"{a}:{p}") for a, ports in REALS.items() for p in ports}
    return all(d.get(k, 0) > 0 for k in want) and not any(v.endswith(":8081") for _, v in d)


def victim_out(d: dict[tuple[str, str], int]) -> bool:
    # 8080 and 7100 remove a failed real (quiescent=no); 7000 keeps it at weight 0.
    return (
        ("127.0.0.1:8080", f"{VICTIM}:8080") not in d
        and ("127.0.0.1:7100", f"{VICTIM}:7100") not in d
        and d.get(("127.0.0.1:7000", f"{VICTIM}:7000")) == 0
    )


def ldirector_command() -> list[str]:
    """The ldirector command line that the venv installed."""
    return [str(VENV / "ldirector"), "-d", str(CONFIG), "start"]


async def main() -> int:
    say("demo real servers on 127.0.0.2-4 (HTTP :8080 with /health, TCP :7000, PING/PONG :7100)")
    running = {address: await serve(address) for address in [*REALS, "127.0.0.1"]}
    command = ldirector_command()
    say(f"starting: {' '.join(Path(c).name if c == sys.executable else c for c in command)}")
    print(f"(logging to stderr; checks every 5 s; {CONFIG.relative_to(ROOT)})", flush=True)
    daemon = await asyncio.create_subprocess_exec(*command, cwd=ROOT)
    ok = False
    try:
        ok = await until("every real server is up", all_up)
        if ok:
            say(f"stopping every server on {VICTIM}")
            await stop(running.pop(VICTIM))
            ok = await until(f"{VICTIM} is out (weight 0 where quiescent=yes)", victim_out)
        if ok:
            say(f"starting {VICTIM} again")
            running[VICTIM] = await serve(VICTIM)
            ok = await until(f"{VICTIM} is back", all_up)
    finally:
        say("stopping ldirector (cleanstop=yes removes its services)")
        if daemon.returncode is None:
            daemon.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(daemon.wait(), WAIT)
            except TimeoutError:
                daemon.kill()
                await daemon.wait()
        print(table(), flush=True)
        for servers in running.values():
            await stop(servers)
    print(f"demo: {'done' if ok else 'FAILED'} (ldirector exit {daemon.returncode})", flush=True)
    return 0 if ok and daemon.returncode == 0 else 1


if __name__ == "__main__":
    if os.geteuid() != 0:
        sys.exit("demo: needs root (it programs the kernel's IPVS table)")
    subprocess.run(["modprobe", "ip_vs"], capture_output=True, check=False)
    sys.exit(asyncio.run(main()))
