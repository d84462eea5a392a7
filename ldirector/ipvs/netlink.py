"""The kernel backend: reads and changes the IPVS table over one generic-netlink socket.

Ops go out in batches, many requests per ``send``; only the last request of each batch asks for
an acknowledgement, because the kernel always answers a failed request with an error carrying
its sequence number. So each failure is matched to its op, and a batch costs one round trip.
Messages are packed by `genl.py`, not by pyroute2 (whose encoder is ~70x slower and whose
high-level API has the bugs listed in docs/ipvs.md); pyroute2 is not needed at run time.
"""

from __future__ import annotations

import asyncio
import errno
import itertools
import logging
import os
import socket
import threading
from collections.abc import Callable, Collection, Sequence

from ldirector.ipvs import decode, genl
from ldirector.ipvs.backend import ApplyError, IpvsError, IpvsUnavailable, daemon_error, op_error
from ldirector.ipvs.ops import Op
from ldirector.ipvs.sync import DaemonState, SyncDaemon
from ldirector.ipvs.types import ForeignService, IpvsTable, ServiceKey

log = logging.getLogger(__name__)

NETLINK_GENERIC = 16
SOL_NETLINK = 270
NETLINK_CAP_ACK = 10  # errors echo only the failed request's header, not its whole body
SO_RCVBUFFORCE = 33
CLONE_NEWNET = 0x40000000

#: Requests per send. The kernel handles a send's requests in order before send returns; each
#: failure queues one error message, so the receive buffer must hold a whole batch of them.
BATCH = 256
RCVBUF = 4 << 20

NO_IPVS = (
    "this kernel has no IPVS support: load it with 'modprobe ip_vs' "
    "or use a kernel built with CONFIG_IP_VS"
)
NO_PERMISSION = (
    "reading or changing the IPVS table needs root (CAP_NET_ADMIN): run ldirector as root"
)


def netns_socket(netns: str, family: int, kind: int, proto: int = 0) -> socket.socket:
    """A socket created inside network namespace ``netns`` (a name under /run/netns or a path).

    A socket stays in the namespace it was created in, so only a short-lived thread of ours
    enters the namespace; the rest of the process stays where it is.
    """
    path = netns if "/" in netns else f"/run/netns/{netns}"
    made: list[socket.socket] = []
    failed: list[BaseException] = []

    def enter() -> None:
        import ctypes  # a backend in another namespace only: libffi loads for no other start

        try:
            with open(path, "rb") as handle:
                libc = ctypes.CDLL(None, use_errno=True)
                if libc.setns(handle.fileno(), CLONE_NEWNET) != 0:
                    code = ctypes.get_errno()
                    raise OSError(
                        code, f"cannot enter network namespace {netns}: {os.strerror(code)}"
                    )
            made.append(socket.socket(family, kind, proto))
        except BaseException as exc:  # handed to the caller's thread below
            failed.append(exc)

    thread = threading.Thread(target=enter, name=f"netns-{netns}")
    thread.start()
    thread.join()
    if failed:
        raise failed[0]
    return made[0]


class NetlinkBackend:
    """IPVS through the kernel's generic-netlink family "IPVS".

    ``netns`` selects a network namespace (IPVS tables are per namespace); default: our own.
    """

    def __init__(self, netns: str | None = None) -> None:
        self._netns = netns
        self._sock: socket.socket | None = None
        self._family = 0
        self._seq = itertools.count(1)
        self._lock = asyncio.Lock()
        self._buf = bytearray(1 << 18)
        self._noted: set[str] = set()  # what was logged about odd entries, to log it once

    async def _socket(self) -> socket.socket:
        if self._sock is not None:
            return self._sock
        if self._netns is None:
            sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, NETLINK_GENERIC)
        else:
            try:
                sock = netns_socket(
                    self._netns, socket.AF_NETLINK, socket.SOCK_RAW, NETLINK_GENERIC
                )
            except OSError as exc:
                raise IpvsError(
                    f"cannot open IPVS in network namespace {self._netns}: {exc}"
                ) from None
        try:
            sock.setblocking(False)
            sock.bind((0, 0))
            sock.setsockopt(SOL_NETLINK, NETLINK_CAP_ACK, 1)
            try:
                sock.setsockopt(socket.SOL_SOCKET, SO_RCVBUFFORCE, RCVBUF)
            except PermissionError:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, RCVBUF)
            loop = asyncio.get_running_loop()
            seq = next(self._seq)
            await loop.sock_sendall(sock, genl.getfamily_request("IPVS", seq))
            family = 0
            while not family:
                size = await loop.sock_recv_into(sock, self._buf)
                for kind, _, got, payload in genl.messages(memoryview(self._buf)[:size]):
                    if got != seq:
                        continue
                    if kind == genl.NLMSG_ERROR:
                        code = genl.error_code(payload)
                        raise IpvsUnavailable(
                            NO_IPVS if code == errno.ENOENT else f"IPVS lookup failed: {code}",
                            errno=code,
                        )
                    family = genl.family_id(payload)
        except BaseException:
            sock.close()
            raise
        self._sock, self._family = sock, family
        return sock

    async def close(self) -> None:
        """Close the socket; the next call opens a new one."""
        if self._sock is not None:
            self._sock.close()
            self._sock = None

    async def apply(self, ops: Sequence[Op]) -> None:
        """Apply ops in batches of BATCH requests; raise ApplyError naming each failed op."""
        if not ops:
            return
        failures: list[IpvsError] = []
        async with self._lock:
            sock = await self._socket()
            try:
                for start in range(0, len(ops), BATCH):
                    chunk = ops[start : start + BATCH]
                    for index, code in await self._send_batch(sock, chunk):
                        failures.append(op_error(chunk[index], code))
            except BaseException:
                # Cancelled or broken mid-exchange: replies may still be queued on this socket,
                # so start the next call on a fresh one.
                await self.close()
                raise
        if failures:
            raise ApplyError(failures)

    async def _send_batch(self, sock: socket.socket, ops: Sequence[Op]) -> list[tuple[int, int]]:
        first = next(self._seq)
        for _ in range(len(ops) - 1):
            next(self._seq)
        last = first + len(ops) - 1
        parts = [
            genl.encode_op(op, self._family, first + i, genl.NLM_F_REQUEST)
            for i, op in enumerate(ops)
        ]
        # The final request alone carries NLM_F_ACK: its ack marks the end of this batch's replies.
        parts[-1] = genl.encode_op(ops[-1], self._family, last, genl.NLM_F_REQUEST | genl.NLM_F_ACK)
        loop = asyncio.get_running_loop()
        await loop.sock_sendall(sock, b"".join(parts))
        errors: list[tuple[int, int]] = []
        done = False
        while not done:
            size = await self._recv(sock)
            for kind, _, seq, payload in genl.messages(memoryview(self._buf)[:size]):
                if kind != genl.NLMSG_ERROR or not first <= seq <= last:
                    continue  # a stale reply from an interrupted earlier request
                code = genl.error_code(payload)
                if code:
                    errors.append((seq - first, code))
                done = done or seq == last
        return errors

    async def _recv(self, sock: socket.socket) -> int:
        loop = asyncio.get_running_loop()
        try:
            return await loop.sock_recv_into(sock, self._buf)
        except OSError as exc:
            if exc.errno == errno.ENOBUFS:
                # Replies were dropped: which ops failed is unknown, so the caller must re-dump.
                raise IpvsError(
                    "the kernel dropped IPVS replies (receive buffer overrun); re-read the table",
                    errno=errno.ENOBUFS,
                ) from None
            raise

    async def dump(self, only: Collection[ServiceKey] | None = None) -> IpvsTable:
        """Every service with its destinations and counters (one dump plus one per service);
        with ``only``, the destinations of just those services are asked for."""
        async with self._lock:
            sock = await self._socket()
            try:
                return await self._dump_table(sock, only)
            except BaseException:
                # An unfinished dump keeps the socket busy (EBUSY for the next one): replace it.
                await self.close()
                raise

    async def _dump_table(
        self, sock: socket.socket, only: Collection[ServiceKey] | None = None
    ) -> IpvsTable:
        seq = next(self._seq)
        replies = await self._dump(sock, seq, genl.dump_services_request(self._family, seq))
        entries: list[decode.Entry] = []
        for svc in map(decode.service, replies):
            if isinstance(svc, ForeignService):
                # Its key may be unreadable, and ldirector leaves all of it alone: no reals asked.
                if only is None or svc.key in only:
                    entries.append((svc, ()))
                continue
            if only is not None and svc.key not in only:
                continue
            seq = next(self._seq)
            request = genl.dump_dests_request(self._family, seq, svc.key)
            replies = await self._dump(sock, seq, request)
            entries.append((svc, [decode.dest(p, svc.key.family) for p in replies]))
        table, notes = decode.assemble(entries)
        for note in notes:
            if note not in self._noted:
                self._noted.add(note)
                log.warning("%s", note)
        return table

    async def daemons(self) -> tuple[SyncDaemon, ...]:
        """The running sync daemons, master first."""
        async with self._lock:
            sock = await self._socket()
            try:
                seq = next(self._seq)
                replies = await self._dump(sock, seq, genl.dump_daemons_request(self._family, seq))
            except BaseException:
                await self.close()
                raise
        return tuple(sorted(map(decode.daemon, replies), key=lambda d: d.state))

    async def start_daemon(self, daemon: SyncDaemon) -> None:
        """Start a sync daemon (``ipvsadm --start-daemon``)."""
        code = await self._ask(lambda seq: genl.start_daemon_request(self._family, seq, daemon))
        if code:
            raise daemon_error(daemon.state, code, daemon.interface)

    async def stop_daemon(self, state: DaemonState) -> None:
        """Stop the sync daemon of this role (``ipvsadm --stop-daemon``)."""
        code = await self._ask(lambda seq: genl.stop_daemon_request(self._family, seq, state))
        if code:
            raise daemon_error(state, code)

    async def _ask(self, build: Callable[[int], bytes]) -> int:
        """Send one request that asks for an ack; return the kernel's errno (0: done)."""
        async with self._lock:
            sock = await self._socket()
            seq = next(self._seq)
            try:
                await asyncio.get_running_loop().sock_sendall(sock, build(seq))
                while True:
                    size = await self._recv(sock)
                    for kind, _, got, payload in genl.messages(memoryview(self._buf)[:size]):
                        if kind == genl.NLMSG_ERROR and got == seq:
                            return genl.error_code(payload)
            except BaseException:
                await self.close()
                raise

    async def _dump(self, sock: socket.socket, seq: int, request: bytes) -> list[memoryview]:
        await asyncio.get_running_loop().sock_sendall(sock, request)
        replies: list[memoryview] = []
        while True:
            size = await self._recv(sock)
            data = bytes(self._buf[:size])  # replies outlive the next recv into the buffer
            for kind, _, got, payload in genl.messages(data):
                if got != seq:
                    continue
                if kind == genl.NLMSG_DONE:
                    return replies
                if kind == genl.NLMSG_ERROR:
                    code = genl.error_code(payload)
                    if code == errno.EPERM:
                        raise IpvsUnavailable(NO_PERMISSION, errno=code)
                    if code:
                        raise IpvsError(f"reading the IPVS table failed: errno {code}", errno=code)
                    continue
                replies.append(payload)
