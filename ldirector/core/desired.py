"""The desired IPVS table: configuration plus health, as one pure function.

Sits between ``health`` and ``reconcile.diff``. Every ldirectord rule about what the kernel
should hold lives here: quiescent, readdquiescent, the fallback, weights and thresholds, and
the port the kernel really stores for gate/ipip reals (so reconcile never fights it).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from ipaddress import IPv4Address
from types import MappingProxyType

from ldirector.config.model import CheckType, Config, Fallback, Real, ServiceProtocol, Virtual
from ldirector.core.health import CheckMode, Policy, RealHealth, Status
from ldirector.ipvs.types import (
    SCHEDFLAG_WORDS,
    Dest,
    DestKey,
    Family,
    Forward,
    FwmarkServiceKey,
    InetServiceKey,
    IpvsTable,
    SchedFlags,
    Service,
    ServiceKey,
    VirtualService,
)
from ldirector.ipvs.types import Protocol as IpvsProtocol


@dataclass(frozen=True, slots=True)
class RealKey:
    """One real server of one virtual service, as the kernel stores it."""

    service: ServiceKey
    dest: DestKey
    #: Hashing an ipaddress object formats it in hex; the engine looks keys up thousands of
    #: times a second, so the hash is computed once.
    _hash: int = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_hash", hash((self.service, self.dest)))

    def __hash__(self) -> int:
        return self._hash

    def __str__(self) -> str:
        return f"{self.dest} ({self.service})"


HealthMap = Mapping[RealKey, RealHealth]

#: An operator's holds (``ldirector.core.holds``): "disabled" leaves the real out, "draining" keeps
#: it at weight 0; neither counts as up. Values are plain strings so this module needs no import.
HoldMap = Mapping[RealKey, str]
NO_HOLDS: HoldMap = MappingProxyType({})

#: Weights below the configured ones, of serving reals that ramp up (slow start) or asked for
#: less (dynamic weights): ``ldirector.core.weights``. A real not in it serves at its own weight.
WeightMap = Mapping[RealKey, int]
NO_WEIGHTS: WeightMap = MappingProxyType({})


def service_key(virtual: Virtual) -> ServiceKey:
    """The kernel's key for a virtual service."""
    family = Family.INET6 if virtual.family == 6 else Family.INET
    if virtual.fwmark is not None:
        return FwmarkServiceKey(family, virtual.fwmark)
    if virtual.address is None:
        raise ValueError(f"{virtual.vid}: a non-firewall-mark virtual without an address")
    protocol = IpvsProtocol.UDP if virtual.protocol is ServiceProtocol.UDP else IpvsProtocol.TCP
    return InetServiceKey(protocol, virtual.address, virtual.port)


def schedflags(words: tuple[str, ...]) -> SchedFlags:
    """ipvsadm's comma-separated ``-b`` words as flag bits (unknown words are the parser's job)."""
    flags = SchedFlags.NONE
    for word in words:
        for part in word.split(","):
            flags |= SCHEDFLAG_WORDS.get(part.strip(), SchedFlags.NONE)
    return flags


def service(virtual: Virtual) -> Service:
    """The service attributes a virtual asks for, as ldirectord passes them to ipvsadm -A/-E."""
    flags = schedflags(virtual.schedflags)
    if virtual.ops and virtual.protocol is ServiceProtocol.UDP:
        flags |= SchedFlags.ONEPACKET
    netmask: int | None = None
    # ldirectord only sends -M along with -p; without persistence the mask means nothing.
    if virtual.persistent is not None and virtual.netmask is not None:
        mask = virtual.netmask
        netmask = bin(int(mask)).count("1") if isinstance(mask, IPv4Address) else mask
    return Service(
        key=service_key(virtual),
        scheduler=virtual.scheduler,
        flags=flags,
        persistent=virtual.persistent,
        netmask=netmask,
    )


def kernel_port(virtual: Virtual, port: int, forward: Forward) -> int:
    """The destination port the kernel actually stores.

    For gate and ipip on an address service the kernel cannot rewrite the port, so it stores
    the virtual's port whatever was configured; ldirectord then looks for the configured one
    and re-adds it for ever. Firewall-mark services keep the real's port.
    """
    if virtual.fwmark is None and forward is not Forward.MASQ:
        return virtual.port
    return port


def real_key(virtual: Virtual, real: Real) -> RealKey:
    """The key a real has in the kernel (and in the health map)."""
    port = kernel_port(virtual, real.port, real.forward)
    return RealKey(service_key(virtual), DestKey(real.address, port))


def fallback_dest(virtual: Virtual, fallback: Fallback) -> Dest:
    """The fallback server as a destination: weight 1, no thresholds."""
    port = kernel_port(virtual, fallback.port, fallback.forward)
    return Dest(address=fallback.address, port=port, forward=fallback.forward, weight=1)


def policy(virtual: Virtual) -> Policy:
    """The health rules of a virtual."""
    mode = {CheckType.ON: CheckMode.ON, CheckType.OFF: CheckMode.OFF}.get(
        virtual.checktype, CheckMode.CHECK
    )
    return Policy(failurecount=virtual.failurecount, rise=virtual.rise, mode=mode)


def virtual_service(
    virtual: Virtual,
    health: HealthMap,
    actual: IpvsTable,
    *,
    readdquiescent: bool,
    keys: Sequence[RealKey] | None = None,
    holds: HoldMap = NO_HOLDS,
    weights: WeightMap = NO_WEIGHTS,
) -> VirtualService:
    """One virtual's desired service and destinations.

    ``keys``, when given, are ``real_key(virtual, real)`` for each real in order, computed
    once by a caller that asks again and again (the engine).
    """
    key = service_key(virtual)
    present = actual.services[key].dests if key in actual else {}
    dests: dict[DestKey, Dest] = {}
    any_up = False
    unknown = RealHealth()
    if keys is None:
        keys = [real_key(virtual, real) for real in virtual.reals]
    seen: set[DestKey] = set()
    for real, rkey in zip(virtual.reals, keys, strict=True):
        dkey = rkey.dest
        if dkey in seen:  # two reals the kernel cannot tell apart: the first one wins
            continue
        seen.add(dkey)
        hold = holds.get(rkey) if holds else None
        if hold == "disabled":
            continue
        up = health.get(rkey, unknown).status is Status.UP
        if up or (virtual.quiescent and (readdquiescent or dkey in present)):
            serving = up and hold is None
            # Quiesced (not up): no new connections, existing ones carry on. Thresholds
            # are left as configured; they do not matter at weight 0.
            dests[dkey] = Dest(
                address=real.address,
                port=dkey.port,
                forward=real.forward,
                weight=(weights.get(rkey, real.weight) if weights else real.weight)
                if serving
                else 0,
                upper=real.upper,
                lower=real.lower,
            )
            any_up |= serving
    fallback = virtual.fallback
    if fallback is not None and not any_up and virtual.checktype is not CheckType.OFF:
        fb = fallback_dest(virtual, fallback)
        dests.setdefault(fb.key, fb)
    return VirtualService(service(virtual), MappingProxyType(dests))


def desired_table(
    config: Config,
    health: HealthMap,
    actual: IpvsTable,
    holds: HoldMap = NO_HOLDS,
    weights: WeightMap = NO_WEIGHTS,
) -> IpvsTable:
    """The table ldirector converges the kernel to, for every virtual in ``config``.

    ``actual`` matters only for quiesced reals under ``readdquiescent=no``: they keep their
    weight-0 entry while it exists, but one removed by hand (to drain persistent clients)
    is not put back.
    """
    services: dict[ServiceKey, VirtualService] = {}
    for virtual in config.virtuals:
        vs = virtual_service(
            virtual,
            health,
            actual,
            readdquiescent=config.readdquiescent,
            holds=holds,
            weights=weights,
        )
        services.setdefault(vs.key, vs)
    return IpvsTable.of(*services.values())
