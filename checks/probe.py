"""A check's socket on the event loop's own callbacks: no task, no future, no transport.

The connect check and plain HTTP are most of a large director's checks, and on a loaded host the
work around a check (a task, its futures, the transport's setup) cost about as much CPU as the
check itself. A ``Probe`` is a non-blocking socket watched with ``add_writer`` and
``add_reader``: connecting, sending a request and reading the answer are each one callback, so a
check costs a few syscalls and the loop turns its socket needs, as in a C checker.

A probe calls ``done`` once: with the check's ``Result`` (an expected failure is a down result,
worded by :func:`checks._io.describe`), or with the exception of a bug in its code, which the
harness reports as an internal error. ``cancel()`` closes the socket at once and ``done`` is then
never called. The caller owns the deadline, as for every check: a probe has no timer.
"""

from __future__ import annotations

import asyncio
import errno
import os
import socket
from collections.abc import Callable

from checks._io import MAX_READ, describe, family, sockaddr
from checks.types import Result, Target

#: What a probe hands its caller: the result, or the exception of a bug in the probe.
Outcome = Result | Exception
Done = Callable[[Outcome], None]


class Probe:
    """One TCP connection to ``target``, connected at construction; subclasses say what to do
    once connected (``connected``) and with what arrives (``received``, ``closed``)."""

    __slots__ = ("_done", "_fd", "_loop", "_open", "_sock", "_target", "_unsent")

    def __init__(self, target: Target, done: Done) -> None:
        self._loop = asyncio.get_running_loop()
        self._target = target
        self._done: Done | None = done
        self._unsent = b""
        self._connect()

    # --- what a subclass decides --------------------------------------------------------------

    def connected(self) -> None:
        """The handshake completed."""
        raise NotImplementedError

    def received(self, data: bytes) -> None:
        """Bytes arrived (only after ``send``)."""
        raise NotImplementedError

    def closed(self, exc: OSError | None) -> None:
        """The server ended the connection: end of file, or ``exc`` (a reset)."""
        raise NotImplementedError

    # --- what a subclass calls ----------------------------------------------------------------

    def send(self, data: bytes) -> None:
        """Write ``data`` and then read the answer: ``received`` and ``closed`` follow."""
        self._unsent = data
        self._guarded(self._flush)

    def finish(self, outcome: Outcome) -> None:
        """Close the connection and hand ``outcome`` to the caller, once."""
        self._close()
        done, self._done = self._done, None
        if done is not None:
            done(outcome)

    def reconnect(self) -> None:
        """Drop this connection and connect again (a redirect on the same server)."""
        self._close()
        self._connect()

    def cancel(self) -> None:
        """Close the socket now; ``done`` is not called."""
        self._done = None
        self._close()

    # --- the socket ---------------------------------------------------------------------------

    def _connect(self) -> None:
        target = self._target
        # Non-blocking from the start: one ioctl less than setblocking() afterwards.
        sock = socket.socket(family(target), socket.SOCK_STREAM | socket.SOCK_NONBLOCK)
        self._sock, self._fd, self._open = sock, sock.fileno(), True
        try:
            code = sock.connect_ex(sockaddr(target))
        except OSError as exc:  # e.g. no route: refused by the kernel before any packet
            self._loop.call_soon(self.finish, Result(False, describe(exc)))
            return
        if code in (0, errno.EINPROGRESS):
            self._loop.add_writer(self._fd, self._guarded, self._handshake)
        else:
            # Reported on the next turn: a caller never sees its done called before it returned.
            self._loop.call_soon(self.finish, Result(False, describe(_error(code))))

    def _handshake(self) -> None:
        # The writer stays watched until a reader replaces it: uvloop drops its poll handle when
        # an fd has no watcher left, and making a new one costs several syscalls.
        code = self._sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
        if code:
            self.finish(Result(False, describe(_error(code))))
        else:
            self.connected()

    def _flush(self) -> None:
        try:
            sent = self._sock.send(self._unsent)
        except BlockingIOError:
            sent = 0
        except OSError as exc:
            self.closed(exc)
            return
        self._unsent = self._unsent[sent:]
        if self._unsent:  # a full send buffer: the rest when it drains
            self._loop.add_writer(self._fd, self._guarded, self._flush)
            return
        self._loop.add_reader(self._fd, self._guarded, self._readable)
        self._loop.remove_writer(self._fd)

    def _readable(self) -> None:
        try:
            data = self._sock.recv(MAX_READ)
        except BlockingIOError:
            return
        except OSError as exc:
            self.closed(exc)
            return
        if data:
            self.received(data)
        else:
            self.closed(None)

    def _guarded(self, step: Callable[[], None]) -> None:
        """Run one step; a bug in it ends the check as the bug, never as a silent hang."""
        try:
            step()
        except Exception as exc:  # handed to the harness, which logs it
            self.finish(exc)

    def _close(self) -> None:
        if not self._open:
            return
        self._open = False
        # Unwatched before the close: the number may be reused by the next socket at once.
        self._loop.remove_writer(self._fd)
        self._loop.remove_reader(self._fd)
        self._sock.close()


def _error(code: int) -> OSError:
    return OSError(code, os.strerror(code))
