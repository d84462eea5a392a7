"""The programs the pair suite runs inside the VM's namespaces: the reals and the client.

Each is Python source run with ``python -c`` in a namespace (tests/kernel/pairrig.py starts them).
"""

from __future__ import annotations

# --- the helper processes ---------------------------------------------------------------------

#: The reals: argv[1:] are the namespaces to serve port 80 in. Echoes lines; a connection that
#: starts with ``GET `` (a health check) gets ``ok``. Thin-stream linear retransmission timeouts
#: on every connection, like the client's (see CLIENT).
REALS_SERVER = r"""
import asyncio, socket, sys
from ldirector.ipvs.netlink import netns_socket
THIN = getattr(socket, "TCP_THIN_LINEAR_TIMEOUTS", 16)
HEALTH = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok"

class Echo(asyncio.Protocol):
    def connection_made(self, transport):
        self.transport, self.first = transport, True
        sock = transport.get_extra_info("socket")
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.setsockopt(socket.IPPROTO_TCP, THIN, 1)
    def data_received(self, data):
        if self.first and data.startswith(b"GET "):
            self.transport.write(HEALTH)
            self.transport.close()
            return
        self.first = False
        self.transport.write(data)

async def main():
    loop = asyncio.get_running_loop()
    for ns in sys.argv[2:]:
        sock = netns_socket(ns, socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("0.0.0.0", 80))
        sock.listen(1024)
        sock.setblocking(False)
        await loop.create_server(Echo, sock=sock)
    print("ready", flush=True)
    await asyncio.sleep(float(sys.argv[1]))

asyncio.run(main())
"""

#: The client: argv VIP PORT CONNS PERIOD RATE LIFETIME. CONNS long-lived connections each send
#: a numbered line every PERIOD seconds and wait for its echo; one new short connection every
#: 1/RATE s sends a line, reads its echo and closes. Prints ``ready`` once every long-lived
#: connection is up; on SIGUSR1 prints ``report JSON`` with what happened since the last report
#: (per connection: echoes, the longest gap between two echoes, counting one still open, and
#: its start; the error that ended it; every short request with start, end, error), then starts
#: a new window; SIGTERM closes everything and prints ``done``. All times CLOCK_MONOTONIC.
#: Sockets use TCP_THIN_LINEAR_TIMEOUTS: a thin interactive stream retransmits every RTO for its
#: first six timeouts instead of backing off, so it resumes within ~0.2 s of the path coming
#: back rather than after a doubled timeout.
CLIENT_SCRIPT = r"""
import asyncio, json, signal, socket, sys, time
vip, port, conns, period, rate, lifetime = (sys.argv[1], int(sys.argv[2]), int(sys.argv[3]),
    float(sys.argv[4]), float(sys.argv[5]), float(sys.argv[6]))
THIN = getattr(socket, "TCP_THIN_LINEAR_TIMEOUTS", 16)
now = time.monotonic
state = [{"echoes": 0, "last": None, "gap": 0.0, "gap_from": None, "error": None,
          "error_at": None} for _ in range(conns)]
requests = []
inflight = set()

async def dial(timeout):
    loop = asyncio.get_running_loop()
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.setsockopt(socket.IPPROTO_TCP, THIN, 1)
    sock.setblocking(False)
    try:
        await asyncio.wait_for(loop.sock_connect(sock, (vip, port)), timeout)
    except BaseException:
        sock.close()
        raise
    return await asyncio.open_connection(sock=sock)

async def long_lived(n, up, stop):
    s = state[n]
    try:
        reader, writer = await dial(30)
    except (OSError, asyncio.TimeoutError) as exc:
        s["error"], s["error_at"] = f"connect: {type(exc).__name__}: {exc}", now()
        up.set_result(False) if not up.done() else None
        return
    up.set_result(True)
    seq = 0
    try:
        while not stop.is_set():
            seq += 1
            sent = now()
            line = f"{n} {seq}\n".encode()
            writer.write(line)
            got = await asyncio.wait_for(reader.readline(), 120)
            if not got:
                raise ConnectionResetError("closed by the peer")
            if got != line:
                raise ValueError(f"echo {got!r} for {line!r}")
            t = now()
            if s["last"] is not None and t - s["last"] > s["gap"]:
                s["gap"], s["gap_from"] = t - s["last"], s["last"]
            s["last"] = t
            s["echoes"] += 1
            try:
                await asyncio.wait_for(stop.wait(), max(0.0, sent + period - t))
            except asyncio.TimeoutError:
                pass
        writer.close()
    except (OSError, asyncio.TimeoutError, ValueError) as exc:
        s["error"], s["error_at"] = f"{type(exc).__name__}: {exc}", now()
        writer.close()

async def short():
    start, error = now(), None
    try:
        reader, writer = await dial(5)
        try:
            writer.write(b"new\n")
            got = await asyncio.wait_for(reader.readline(), 5)
            if got != b"new\n":
                error = f"echo {got!r}"
        finally:
            writer.close()
    except (OSError, asyncio.TimeoutError) as exc:
        error = f"{type(exc).__name__}: {exc}"
    requests.append([start, now(), error])

def report():
    t = now()
    rows = []
    for s in state:
        gap, gap_from = s["gap"], s["gap_from"]
        if s["error"] is None and s["last"] is not None and t - s["last"] > gap:
            gap, gap_from = t - s["last"], s["last"]
        rows.append({"echoes": s["echoes"], "gap": round(gap, 3), "gap_from": gap_from,
                     "error": s["error"], "error_at": s["error_at"]})
        s["echoes"], s["gap"], s["gap_from"] = 0, 0.0, None
    out = {"at": t, "conns": rows, "requests": requests[:]}
    requests.clear()
    print("report " + json.dumps(out), flush=True)

async def main():
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    loop.add_signal_handler(signal.SIGUSR1, report)
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    ups = [loop.create_future() for _ in range(conns)]
    tasks = [asyncio.create_task(long_lived(n, ups[n], stop)) for n in range(conns)]
    ok = await asyncio.gather(*ups)
    print(f"ready {sum(ok)}", flush=True)
    end = now() + lifetime
    while not stop.is_set() and now() < end:
        if len(inflight) < 50:
            task = asyncio.create_task(short())
            inflight.add(task)
            task.add_done_callback(inflight.discard)
        try:
            await asyncio.wait_for(stop.wait(), 1.0 / rate)
        except asyncio.TimeoutError:
            pass
    stop.set()
    await asyncio.wait(tasks + list(inflight), timeout=10)
    print("done", flush=True)

asyncio.run(main())
"""
