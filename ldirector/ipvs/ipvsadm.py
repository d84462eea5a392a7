"""Ops and tables as ``ipvsadm -R`` text: what ``check --plan`` shows and operators can replay.

The text is ipvsadm's own syntax, so ``ipvsadm -R`` run on it makes the same changes as the
netlink backend would.
"""

from __future__ import annotations

from typing import assert_never

from ldirector.ipvs.ops import AddDest, AddService, DelDest, DelService, EditDest, EditService, Op
from ldirector.ipvs.types import (
    SCHEDFLAG_WORDS,
    Dest,
    DestKey,
    Family,
    FwmarkServiceKey,
    InetServiceKey,
    IpvsTable,
    SchedFlags,
    Service,
    ServiceKey,
)

_PROTO_OPTION = {"tcp": "-t", "udp": "-u", "sctp": "--sctp-service"}
_FORWARD_OPTION = {0: "-m", 1: "-g", 2: "-i", 3: "-g"}  # ipvsadm has no option for LOCAL
#: The generic word for each flag: what a scheduler-specific word means depends on the scheduler.
_FLAG_WORDS = tuple(
    (flag, word) for word, flag in SCHEDFLAG_WORDS.items() if word.startswith("flag-")
)


def service_option(key: ServiceKey) -> str:
    """``-t 192.0.2.1:80``, ``-u [2001:db8::1]:53`` or ``-f 7 -6``."""
    match key:
        case InetServiceKey(protocol=proto, address=address, port=port):
            host = f"[{address}]" if address.version == 6 else str(address)
            return f"{_PROTO_OPTION[proto.word]} {host}:{port}"
        case FwmarkServiceKey(family=family, fwmark=mark):
            return f"-f {mark}" + (" -6" if family is Family.INET6 else "")
        case _:
            assert_never(key)


def _netmask_text(svc: Service) -> str:
    if svc.key.family is Family.INET6:
        return str(svc.prefix)
    mask = (0xFFFFFFFF << (32 - svc.prefix)) & 0xFFFFFFFF
    return ".".join(str((mask >> shift) & 0xFF) for shift in (24, 16, 8, 0))


def _service_args(svc: Service) -> str:
    parts = [service_option(svc.key), f"-s {svc.scheduler}"]
    words = [word for flag, word in _FLAG_WORDS if flag in svc.flags]
    if words:
        parts.append("-b " + ",".join(words))
    if svc.persistent is not None:
        parts.append(f"-p {svc.persistent}")
        if svc.prefix != svc.key.family.max_prefix:
            parts.append(f"-M {_netmask_text(svc)}")
    if SchedFlags.ONEPACKET in svc.flags:
        parts.append("-o")
    if svc.pe_name:
        parts.append(f"--pe {svc.pe_name}")
    return " ".join(parts)


def _dest_args(key: ServiceKey, dest: Dest) -> str:
    return (
        f"{service_option(key)} -r {dest.key} {_FORWARD_OPTION[dest.forward]} -w {dest.weight}"
        f" -x {dest.upper} -y {dest.lower}"
    )


def format_op(op: Op) -> str:
    """One op as one ``ipvsadm -R`` line."""
    match op:
        case AddService(service=svc):
            return f"-A {_service_args(svc)}"
        case EditService(service=svc):
            return f"-E {_service_args(svc)}"
        case DelService(key=key):
            return f"-D {service_option(key)}"
        case AddDest(service=key, dest=dest):
            return f"-a {_dest_args(key, dest)}"
        case EditDest(service=key, dest=dest):
            return f"-e {_dest_args(key, dest)}"
        case DelDest(service=key, dest=dkey):
            return f"-d {service_option(key)} -r {_dest_key_text(dkey)}"
        case _:
            assert_never(op)


def _dest_key_text(dkey: DestKey) -> str:
    return str(dkey)


def format_table(table: IpvsTable) -> str:
    """A whole table as ``ipvsadm -R`` input that recreates it in an empty kernel table.

    Foreign entries (ones ldirector cannot read) have no ipvsadm form and are left out.
    """
    lines: list[str] = []
    for vs in table:
        lines.append(format_op(AddService(vs.service)))
        for dkey in sorted(vs.dests, key=lambda d: d.sort_key):
            lines.append(format_op(AddDest(vs.key, vs.dests[dkey])))
    return "".join(line + "\n" for line in lines)
