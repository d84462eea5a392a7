"""IPVS operations: what ``reconcile.diff`` emits and backends apply. Each maps to exactly one
netlink request and one ipvsadm line."""

from __future__ import annotations

from dataclasses import dataclass

from ldirector.ipvs.types import Dest, DestKey, Service, ServiceKey


@dataclass(frozen=True, slots=True)
class AddService:
    """Create a service (``ipvsadm -A``)."""

    service: Service


@dataclass(frozen=True, slots=True)
class EditService:
    """Replace every attribute of an existing service (``ipvsadm -E``)."""

    service: Service


@dataclass(frozen=True, slots=True)
class DelService:
    """Delete a service and all its destinations (``ipvsadm -D``)."""

    key: ServiceKey


@dataclass(frozen=True, slots=True)
class AddDest:
    """Add a destination to a service (``ipvsadm -a``)."""

    service: ServiceKey
    dest: Dest


@dataclass(frozen=True, slots=True)
class EditDest:
    """Replace every attribute of an existing destination (``ipvsadm -e``)."""

    service: ServiceKey
    dest: Dest


@dataclass(frozen=True, slots=True)
class DelDest:
    """Remove a destination from a service (``ipvsadm -d``)."""

    service: ServiceKey
    dest: DestKey


Op = AddService | EditService | DelService | AddDest | EditDest | DelDest


def op_service_key(op: Op) -> ServiceKey:
    """The service an op touches."""
    match op:
        case AddService(service=svc) | EditService(service=svc):
            return svc.key
        case DelService(key=key):
            return key
        case AddDest(service=key) | EditDest(service=key) | DelDest(service=key):
            return key
