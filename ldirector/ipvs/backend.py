"""The boundary between ldirector and a kernel IPVS table: one Protocol and its errors.

`reconcile.diff` produces ops; a backend applies them as one batch and reports every failure
against the op that caused it. Implementations: `ipvs.netlink` (the kernel) and
`ldirector.testing.FakeBackend` (in memory, for tests).
"""

from __future__ import annotations

import errno as errnos
import os
from collections.abc import Collection, Sequence
from typing import Protocol

from ldirector.ipvs.ops import AddDest, AddService, DelDest, DelService, EditDest, EditService, Op
from ldirector.ipvs.sync import DaemonState, SyncDaemon
from ldirector.ipvs.types import IpvsTable, ServiceKey


class IpvsError(Exception):
    """An IPVS operation or query failed. ``str()`` is one sentence a CLI can print as is."""

    def __init__(self, message: str, *, errno: int = 0, op: Op | None = None) -> None:
        super().__init__(message)
        self.errno = errno
        self.op = op


class IpvsUnavailable(IpvsError):
    """The kernel has no IPVS, or this process may not configure it."""


class MalformedReply(IpvsError):
    """A kernel reply could not even be split into messages; nothing in it can be trusted."""


class ApplyError(IpvsError):
    """Some ops of a batch failed; the others were applied. ``failures`` is in op order."""

    def __init__(self, failures: Sequence[IpvsError]) -> None:
        first = failures[0]
        more = f" (and {len(failures) - 1} more)" if len(failures) > 1 else ""
        super().__init__(f"{first}{more}", errno=first.errno, op=first.op)
        self.failures = tuple(failures)


class IpvsBackend(Protocol):
    """Reads and changes one IPVS table."""

    async def dump(self, only: Collection[ServiceKey] | None = None) -> IpvsTable:
        """Return the whole table, with counters; with ``only``, just those of these services
        the kernel has (a transition reads the services it moves, not every real)."""
        ...

    async def apply(self, ops: Sequence[Op]) -> None:
        """Apply ops in order, all of them, even after a failure (as the kernel does for a batch).

        Raises ApplyError listing each failed op with its kernel error.
        """
        ...

    async def daemons(self) -> tuple[SyncDaemon, ...]:
        """The running sync daemons, master first."""
        ...

    async def start_daemon(self, daemon: SyncDaemon) -> None:
        """Start a sync daemon; raise IpvsError (see `daemon_error`) if the kernel refuses."""
        ...

    async def stop_daemon(self, state: DaemonState) -> None:
        """Stop the sync daemon of this role; raise IpvsError if none runs."""
        ...

    async def close(self) -> None:
        """Release the backend's resources."""
        ...


def describe(op: Op) -> str:
    """A short human description of an op, used in error messages and logs."""
    match op:
        case AddService(service=svc):
            return f"add service {svc.key}"
        case EditService(service=svc):
            return f"edit service {svc.key}"
        case DelService(key=key):
            return f"delete service {key}"
        case AddDest(service=key, dest=dest):
            return f"add real {dest.key} to {key}"
        case EditDest(service=key, dest=dest):
            return f"edit real {dest.key} of {key}"
        case DelDest(service=key, dest=dkey):
            return f"delete real {dkey} from {key}"


def op_error(op: Op, code: int) -> IpvsError:
    """The exception for a kernel errno returned by ``op``, with a message naming the cause."""
    what = describe(op)
    reason = _REASONS.get(code) or os.strerror(code)
    if isinstance(op, AddService | EditService) and code == errnos.ENOENT:
        reason = f"scheduler '{op.service.scheduler}' or its module is not available"
    cls = IpvsUnavailable if code == errnos.EPERM else IpvsError
    return cls(f"cannot {what}: {reason}", errno=code, op=op)


def daemon_error(state: DaemonState, code: int, interface: str | None = None) -> IpvsError:
    """The exception for a kernel errno answering a start (``interface`` given) or a stop."""
    action = "start" if interface is not None else "stop"
    match code:
        case errnos.ENODEV:
            reason = f"no network interface named {interface!r}"
        case errnos.EEXIST:
            reason = "one is already running"
        case errnos.ESRCH:
            reason = "none is running"
        case errnos.EINVAL:
            # The kernel also refuses to sync while any service has reals of another family.
            reason = "the kernel rejected its settings (or a service mixes address families)"
        case _:
            reason = _REASONS.get(code) or os.strerror(code)
    cls = IpvsUnavailable if code == errnos.EPERM else IpvsError
    return cls(f"cannot {action} the {state.word} sync daemon: {reason}", errno=code)


_REASONS = {
    errnos.EEXIST: "it already exists",
    errnos.ESRCH: "no such service",
    errnos.ENOENT: "no such real server",
    errnos.EINVAL: "the kernel rejected the attributes as invalid",
    errnos.ERANGE: "weight or thresholds out of range (weight must be >= 0, l: <= u:)",
    errnos.EPERM: "permission denied: changing IPVS needs root (CAP_NET_ADMIN)",
    errnos.EAFNOSUPPORT: "IPv6 is not supported or is disabled in this kernel",
}
