"""The programs the fault suite runs in its namespaces, as ``python -c`` scripts.

Each one bounds itself in time (a lifetime argument) and in what it sends or holds, so a test
that dies never leaves a process looping, and each prints ``ready`` once it serves. They use
the standard library only: under emulation a script that imports little starts in a second.
"""

from __future__ import annotations

#: An HTTP/1.1 real: ``GET /health`` answers ``ok``, any other path the server's name (argv[1]),
#: so a client sees which real answered. SIGUSR1 stops it the way an operator stops a service
#: (the listening socket closes, requests already accepted are answered) and SIGUSR2 starts it
#: again; each change is printed as ``down T`` or ``up T`` with the CLOCK_MONOTONIC time it
#: took effect. argv[2] is the lifetime in seconds.
REAL_SERVER = r"""
import asyncio, signal, sys, time
name, lifetime = sys.argv[1].encode(), float(sys.argv[2])

class Http(asyncio.Protocol):
    def connection_made(self, transport):
        self.transport, self.buf = transport, b""
    def data_received(self, data):
        self.buf += data
        if len(self.buf) > 65536:
            self.transport.close()
            return
        while b"\r\n\r\n" in self.buf:
            head, _, self.buf = self.buf.partition(b"\r\n\r\n")
            words = head.split(b" ", 2)
            body = b"ok" if len(words) > 2 and words[1] == b"/health" else name
            self.transport.write(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n"
                                 b"Content-Length: %d\r\n\r\n%s" % (len(body), body))

async def main():
    loop = asyncio.get_running_loop()
    listen = lambda: loop.create_server(Http, "0.0.0.0", 80, backlog=1024, reuse_address=True)
    server = await listen()
    changes = asyncio.Queue()
    loop.add_signal_handler(signal.SIGUSR1, changes.put_nowait, "down")
    loop.add_signal_handler(signal.SIGUSR2, changes.put_nowait, "up")
    print("ready", flush=True)
    end = loop.time() + lifetime
    while loop.time() < end:
        try:
            what = await asyncio.wait_for(changes.get(), end - loop.time())
        except TimeoutError:
            break
        if what == "down" and server is not None:
            server.close()
            server = None
        elif what == "up" and server is None:
            server = await listen()
        print(what, f"{time.monotonic():.4f}", flush=True)

asyncio.run(main())
"""

#: The client: ``rate`` requests a second to VIP:PORT, each on a new connection (so IPVS
#: schedules each one), each bounded by ``timeout`` seconds, at most ``rate * lifetime`` in
#: all. Every request is one line in the output file: ``START END OUTCOME``, where OUTCOME is
#: ``ok NAME`` or what went wrong (refused, reset, eof, timeout connecting, timeout waiting
#: for the reply, error ERRNO, bad ...). Each write (every 0.2 s) ends with ``flush NOW
#: OLDEST``: every request begun before OLDEST is in the file.
CLIENT = r"""
import asyncio, errno, sys, time
vip, port, rate, lifetime, timeout, out = sys.argv[1:7]
port, rate, lifetime, timeout = int(port), float(rate), float(lifetime), float(timeout)
REQUEST = b"GET / HTTP/1.1\r\nHost: vip\r\nConnection: close\r\n\r\n"
lines = []
inflight = {}

class Exchange(asyncio.Protocol):
    # One request on its own connection; a bare Protocol costs the client the least CPU.
    def __init__(self, done):
        self.done, self.buf = done, b""
    def connection_made(self, transport):
        self.transport = transport
        transport.write(REQUEST)
    def data_received(self, data):
        self.buf += data
        head, sep, body = self.buf.partition(b"\r\n\r\n")
        if not sep or self.done.done():
            return
        try:
            length = int(head.lower().split(b"content-length:")[1].split(b"\r\n")[0])
        except (IndexError, ValueError):
            self.done.set_result("bad reply")
            return
        if len(body) >= length:
            status = head.split(b" ", 2)[1]
            ok = status == b"200"
            self.done.set_result("ok " + body[:length].decode() if ok else "bad status")
    def connection_lost(self, exc):
        if not self.done.done():
            self.done.set_result("eof" if exc is None else "reset")

async def one(n):
    start = inflight[n] = time.monotonic()
    loop = asyncio.get_running_loop()
    done = loop.create_future()
    transport = None
    try:
        async with asyncio.timeout(timeout):
            transport, _ = await loop.create_connection(lambda: Exchange(done), vip, port)
            outcome = await done
    except TimeoutError:
        outcome = "timeout waiting for the reply" if transport else "timeout connecting"
    except ConnectionRefusedError:
        outcome = "refused"
    except ConnectionResetError:
        outcome = "reset"
    except OSError as exc:
        outcome = "error " + errno.errorcode.get(exc.errno or 0, "unknown")
    except Exception as exc:
        outcome = "bad " + type(exc).__name__
    if transport is not None:
        transport.close()
    lines.append(f"{start:.4f} {time.monotonic():.4f} {outcome}\n")
    del inflight[n]

async def main():
    loop = asyncio.get_running_loop()
    tasks = set()
    begin = flushed = loop.time()
    with open(out, "a") as stream:
        print("ready", flush=True)
        for n in range(int(rate * lifetime)):
            delay = begin + n / rate - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            if len(tasks) < 1000:
                task = asyncio.create_task(one(n))
                tasks.add(task)
                task.add_done_callback(tasks.discard)
            else:
                now = time.monotonic()
                lines.append(f"{now:.4f} {now:.4f} skipped\n")
            if loop.time() - flushed > 0.2:
                now = time.monotonic()
                lines.append(f"flush {now:.4f} {min(inflight.values(), default=now):.4f}\n")
                stream.write("".join(lines))
                stream.flush()
                lines.clear()
                flushed = loop.time()

asyncio.run(main())
"""

#: Hostile reals on one address: an LDAP server (port 389) that answers a bind, then answers
#: any search with search entries without end, and an HTTP server (port 80) that answers any
#: request with a 200 whose body never ends. Each connection is cut after 64 MiB; argv[1] is
#: the lifetime.
HOSTILE = r"""
import asyncio, sys
lifetime = float(sys.argv[1])
CAP = 64 << 20

def tlv(tag, value):
    n = len(value)
    if n < 0x80:
        return bytes((tag, n)) + value
    size = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes((tag, 0x80 | len(size))) + size + value

def message(msg_id, op):
    return tlv(0x30, tlv(0x02, msg_id.to_bytes(4, "big").lstrip(b"\0") or b"\0") + op)

async def read_id(reader):
    head = await reader.readexactly(2)
    length = head[1]
    if length & 0x80:
        length = int.from_bytes(await reader.readexactly(min(length & 0x7F, 4)), "big")
    body = await reader.readexactly(min(length, 65536))
    return int.from_bytes(body[2:2 + body[1]], "big") if len(body) > 2 else 0

async def ldap(reader, writer):
    try:
        bind = await read_id(reader)
        writer.write(message(bind, tlv(0x61, tlv(0x0A, b"\0") + tlv(0x04, b"") + tlv(0x04, b""))))
        search = await read_id(reader)
        entry = message(search, tlv(0x64, tlv(0x04, b"dc=example,dc=org") + tlv(0x30, b"")))
        batch, sent = entry * 256, 0
        while sent < CAP:
            writer.write(batch)
            sent += len(batch)
            await writer.drain()
    except (OSError, asyncio.IncompleteReadError):
        pass
    finally:
        writer.close()

async def endless(reader, writer):
    try:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\n")
        batch, sent = b"ok " * 20000, 0
        while sent < CAP:
            writer.write(batch)
            sent += len(batch)
            await writer.drain()
    except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError):
        pass
    finally:
        writer.close()

async def main():
    await asyncio.start_server(ldap, "0.0.0.0", 389, reuse_address=True)
    await asyncio.start_server(endless, "0.0.0.0", 80, reuse_address=True)
    print("ready", flush=True)
    await asyncio.sleep(lifetime)

asyncio.run(main())
"""

#: An SMTP server that accepts connections and never says a word (argv[1] port, argv[2]
#: lifetime); it holds at most 1,000 connections.
SMTP_HOLE = r"""
import socket, sys, time
port, lifetime = int(sys.argv[1]), float(sys.argv[2])
server = socket.socket()
server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
server.bind(("127.0.0.1", port))
server.listen(64)
server.settimeout(1)
print("ready", flush=True)
held, end = [], time.monotonic() + lifetime
while time.monotonic() < end and len(held) < 1000:
    try:
        held.append(server.accept()[0])
    except TimeoutError:
        pass
"""

#: Floods an HTTP status page (argv[1] host, argv[2] port): opens ``idle`` connections (every
#: other one sends half a request header, the rest nothing) and holds them; once they are
#: open prints ``open N``, then ``clients`` threads request /status for ``seconds`` (at most
#: 500 requests each); keeps the idle ones for ``hold`` seconds in all, then prints ``done``
#: and a JSON object: what it opened, what the server closed, how the status requests went.
FLOOD = r"""
import json, resource, socket, sys, threading, time
host, port, idle, clients, seconds, hold = sys.argv[1:7]
port, idle, clients, seconds, hold = int(port), int(idle), int(clients), float(seconds), float(hold)
soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
want = idle + 1024
resource.setrlimit(resource.RLIMIT_NOFILE, (want, max(hard, want)))
begin = time.monotonic()
held, refused = [], 0
for n in range(idle):
    sock = socket.socket()
    sock.settimeout(5)
    try:
        sock.connect((host, port))
        if n % 2:
            sock.sendall(b"GET /status HTTP/1.1\r\nHost: flood\r\n")
    except OSError:
        refused += 1
        sock.close()
        continue
    held.append(sock)
print("open", len(held), flush=True)
tally = {"ok": 0, "failed": 0, "slowest": 0.0}
lock = threading.Lock()

# The status requests name the endpoint as a browser would; the idle flood's half requests do not.
request = f"GET /status HTTP/1.1\r\nHost: {host}:{port}\r\nConnection: close\r\n\r\n".encode()

def status_client():
    end = time.monotonic() + seconds
    for _ in range(500):
        if time.monotonic() > end:
            return
        start = time.monotonic()
        ok = False
        try:
            with socket.create_connection((host, port), timeout=5) as sock:
                sock.sendall(request)
                data = b""
                while len(data) < (1 << 20):
                    chunk = sock.recv(65536)
                    if not chunk:
                        break
                    data += chunk
                ok = data.startswith(b"HTTP/1.1 200")
        except OSError:
            pass
        with lock:
            tally["ok" if ok else "failed"] += 1
            tally["slowest"] = max(tally["slowest"], time.monotonic() - start)

threads = [threading.Thread(target=status_client) for _ in range(clients)]
for thread in threads:
    thread.start()
for thread in threads:
    thread.join(seconds + 30)
time.sleep(max(0.0, begin + hold - time.monotonic()))
closed = 0
for sock in held:
    try:
        sock.setblocking(False)
        if sock.recv(1, socket.MSG_PEEK) == b"":
            closed += 1
    except BlockingIOError:
        pass
    except OSError:
        closed += 1
    sock.close()
print("done", json.dumps({"opened": len(held), "refused": refused, "closed_by_server": closed,
                  "status_ok": tally["ok"], "status_failed": tally["failed"],
                  "slowest_status": round(tally["slowest"], 2)}), flush=True)
"""
