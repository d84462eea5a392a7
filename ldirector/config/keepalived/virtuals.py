"""keepalived's ``virtual_server`` (and the groups it may name) -> ldirectord.cf virtual blocks.

One virtual_server gives one block, or one per member of its ``virtual_server group``. The
IPVS settings map one to one (``lvs_sched``/``lb_algo`` -> scheduler, ``lvs_method``/``lb_kind``
NAT/DR/TUN -> masq/gate/ipip, ``persistence_timeout`` -> persistent, ``persistence_granularity``
-> netmask, the scheduler flags -> schedflags, ``ops``), ``inhibit_on_failure`` is quiescent
and ``sorry_server`` the fallback. Where keepalived has a default ldirectord lacks or differs
on, the block says keepalived's value outright: the scheduler (wlc), the forwarding method
(NAT), and the protocol, which keepalived 2.2 takes as UDP when none is given.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from ipaddress import IPv4Address

from ldirector.config.converters import netmask_value
from ldirector.config.errors import Span
from ldirector.config.keepalived.checkers import (
    ALREADY,
    INHERITED,
    UNCHECKED,
    Inherited,
    Probe,
    RealTarget,
    probe,
)
from ldirector.config.keepalived.emit import OutReal, OutVirtual, quote
from ldirector.config.keepalived.grammar import Node
from ldirector.config.keepalived.members import Member, describe, members
from ldirector.config.keepalived.report import Report, address, flag, name, shown, whole
from ldirector.config.values import Invalid, IPAddress
from ldirector.ipvs.types import SCHEDFLAG_WORDS

_FORWARD = {"NAT": "masq", "DR": "gate", "TUN": "ipip"}
_FLAGS = frozenset(SCHEDFLAG_WORDS)
#: Settings with no ldirector equivalent, and why.
_VIRTUAL_DROPPED = {
    "ha_suspend": "ldirector checks whether or not the VIP is on the director",
    "smtp_alert": "set emailalert in the converted file",
    "snmp_name": "ldirector has no SNMP agent",
    "omega": "ldirector runs no notifier at shutdown",
    "quorum_up": "use fallbackcommand",
    "quorum_down": "use fallbackcommand",
    "persistence_engine": "ldirector has no persistence engines",
    "sorry_server_inhibit": "ldirector's fallback always has weight 1",
    "nat_mask": "obsolete",
    "delay_before_retry": "ldirector retries at checkinterval",
    "warmup": "ldirector spreads the first checks itself",
}
_REAL_DROPPED = {
    "notify_up": "use fallbackcommand for all-down and all-up",
    "notify_down": "use fallbackcommand for all-down and all-up",
    "smtp_alert": "set emailalert in the converted file",
    "snmp_name": "ldirector has no SNMP agent",
    "delay_before_retry": "ldirector retries at checkinterval",
    "warmup": "ldirector spreads the first checks itself",
}


@dataclass
class _Service:
    """The settings of one virtual_server block, shared by every member."""

    span: Span
    protocol: str = "udp"
    scheduler: str = "wlc"
    flags: list[str] = field(default_factory=list)
    persistent: int | None = None
    granularity: Node | None = None
    ops: Node | None = None
    forward: str = "masq"
    family: int | None = None
    sorry: Node | None = None
    sorry_forward: str | None = None
    quiescent: bool = False
    inherited: Inherited = field(default_factory=Inherited)
    reals: list[Node] = field(default_factory=list)
    skip: bool = False


def virtual_server(node: Node, groups: dict[str, Node], report: Report) -> list[OutVirtual]:
    """The blocks of one virtual_server statement (none when it cannot be expressed)."""
    found = members(node, groups, report)
    service = _settings(node, report)
    if service.skip or not found:
        return []
    blocks = []
    for member in found:
        families = _families(service.reals)
        family = member.family or service.family or next(iter(families), 4)
        if families and family not in families:
            report.drop(
                member.span,
                f"{describe(member)}: not converted: it is IPv{family} and none of the "
                "virtual_server's reals is (ldirector keeps a service's reals in its family)",
            )
            continue
        blocks.append(_block(service, member, family, report))
    return blocks


def _families(reals: list[Node]) -> dict[int, None]:
    """The address families of the reals, the first real's first (an ordered set)."""
    found = (address(real.args[0]) if real.args else None for real in reals)
    return dict.fromkeys(a.version for a in found if a is not None)


def _settings(node: Node, report: Report) -> _Service:
    service = _Service(node.span)
    for child in node.children or ():
        key, word = child.keyword, child.args[0] if child.args else ""
        if key in ALREADY:
            pass
        elif key in INHERITED:
            service.inherited = service.inherited.set(child, report)
        elif key in ("lvs_sched", "lb_algo"):
            if word.isascii() and word.isalpha() and word.islower():
                service.scheduler = word
            else:
                report.drop(child.span, f"{key} {shown(word)}: not a scheduler; wlc is used")
        elif key in ("lvs_method", "lb_kind"):
            service.forward = _forward(child, report) or service.forward
        elif key == "sorry_server_lvs_method":
            service.sorry_forward = _forward(child, report)
        elif key in _FLAGS:
            service.flags.append(key)
        elif key == "ops":
            service.ops = child
        elif key == "protocol":
            if word.upper() in ("TCP", "UDP"):
                service.protocol = word.lower()
            else:
                report.drop(child.span, f"protocol {shown(word)}: ldirector has tcp and udp only")
                service.skip = True
        elif key == "persistence_timeout":
            timeout = whole(word, 1, 2**31 - 1) if child.args else 360
            if timeout is None:
                report.drop(child.span, f"persistence_timeout {shown(word)}: not seconds")
            service.persistent = timeout
        elif key == "persistence_granularity":
            service.granularity = child
        elif key == "ip_family":
            service.family = {"inet": 4, "inet6": 6}.get(word)
        elif key == "sorry_server":
            service.sorry = child
        elif key == "inhibit_on_failure":
            service.quiescent = bool(flag(child.args))
        elif key == "real_server":
            service.reals.append(child)
        elif key in _VIRTUAL_DROPPED:
            report.drop(child.span, f"{key}: not converted: {_VIRTUAL_DROPPED[key]}")
        elif key in ("quorum", "hysteresis") and word == ("1" if key == "quorum" else "0"):
            pass  # keepalived's default, which is ldirectord's behaviour
        elif key in ("quorum", "hysteresis"):
            report.drop(child.span, f"{key}: not converted: ldirector's fallback needs no real up")
        else:
            report.drop(child.span, f"{name(key)}: not a virtual_server setting ldirector knows")
    return service


def _forward(child: Node, report: Report) -> str | None:
    word = child.args[0].upper() if child.args else ""
    if word not in _FORWARD:
        report.drop(child.span, f"{child.keyword} {shown(word)}: not NAT, DR or TUN")
        return None
    if word == "TUN" and child.args[1:] not in ([], ["type", "ipip"]):
        report.drop(
            child.span,
            f"{child.keyword} TUN {shown(' '.join(child.args[1:]))}: ldirector's tunnels are "
            "ipip; ipip is used",
        )
    return _FORWARD[word]


def _block(service: _Service, member: Member, family: int, report: Report) -> OutVirtual:
    reals, probes, quiet = _reals(service, member, family, report)
    base = next((p for p in probes if p.kind is not None), UNCHECKED)
    _compare(base, probes, report)
    out_reals = tuple(_override(real, p, base) for real, p in zip(reals, probes, strict=True))
    protocol = "fwm" if member.fwmark is not None else service.protocol
    settings: list[tuple[str, str]] = [("protocol", protocol), ("scheduler", service.scheduler)]
    if service.flags:
        settings.append(("schedflags", ",".join(dict.fromkeys(service.flags))))
    if service.persistent is not None:
        settings.append(("persistent", str(service.persistent)))
        mask = _netmask(service.granularity, family, report)
        if mask is not None:
            settings.append(("netmask", mask))
    elif service.granularity is not None:
        report.drop(
            service.granularity.span,
            "persistence_granularity: not converted: it means nothing without persistence_timeout",
        )
    if service.ops is not None:
        if protocol == "udp":
            settings.append(("ops", "yes"))
        else:
            report.drop(service.ops.span, "ops: not converted: one-packet scheduling is UDP only")
    settings += base.settings
    if base.request is not None:
        settings.append(("request", quote(base.request)))
    if base.receive is not None:
        settings.append(("receive", quote(base.receive)))
    settings.append(("quiescent", "yes" if _quiescent(service, quiet, report) else "no"))
    fallback = _fallback(service, family, report)
    if fallback is not None:
        settings.append(fallback)
    return OutVirtual(
        span=service.span,
        family=family,
        address=member.address,
        port=member.port,
        fwmark=member.fwmark,
        reals=out_reals,
        settings=tuple(settings),
    )


def _reals(
    service: _Service, member: Member, family: int, report: Report
) -> tuple[list[OutReal], list[Probe], list[tuple[Node, bool]]]:
    reals: list[OutReal] = []
    probes: list[Probe] = []
    quiet: list[tuple[Node, bool]] = []
    seen: set[tuple[IPAddress, int | None]] = set()
    for node in service.reals:
        where = address(node.args[0]) if node.args else None
        port = whole(node.args[1], 0, 65535) if len(node.args) > 1 else None
        if where is None or (len(node.args) > 1 and port is None) or len(node.args) > 2:
            report.drop(node.span, f"real_server {shown(' '.join(node.args))}: not an address")
            continue
        if where.version != family:
            report.drop(
                node.span,
                f"real_server {where}: IPv{where.version} in an IPv{family} service is not "
                "converted (ldirector keeps a service's reals in its family)",
            )
            continue
        check_port = port
        if member.fwmark is not None:
            port = None  # keepalived clears the port of a firewall-mark service's reals
        elif port is None:
            port = check_port = member.port  # keepalived's: the virtual's port
        if (where, port) in seen:
            report.drop(node.span, f"real_server {where}: given twice; the first is kept")
            continue
        seen.add((where, port))
        real, inhibit, inherited = _real(node, where, port, service, report)
        target = RealTarget(where, port, service.protocol == "udp", check_port)
        reals.append(real)
        probes.append(probe(node, target, inherited, report))
        quiet.append((node, inhibit))
    return reals, probes, quiet


def _real(
    node: Node, where: IPAddress, port: int | None, service: _Service, report: Report
) -> tuple[OutReal, bool, Inherited]:
    weight, lower, upper = 1, 0, 0
    forward = service.forward
    inhibit = service.quiescent
    inherited = service.inherited
    for child in node.children or ():
        key, word = child.keyword, child.args[0] if child.args else ""
        if key in ALREADY:
            pass
        elif key in INHERITED:
            inherited = inherited.set(child, report)
        elif key == "weight":
            found = whole(word, 0, 2**31 - 1)
            if found is None:
                report.drop(child.span, f"weight {shown(word)}: not a weight; 1 is used")
            weight = 1 if found is None else found
        elif key in ("uthreshold", "lthreshold"):
            found = whole(word, 0, 2**32 - 1)
            if found is None:
                report.drop(child.span, f"{key} {shown(word)}: not a connection count")
            elif key == "uthreshold":
                upper = found
            else:
                lower = found
        elif key == "lvs_method":
            forward = _forward(child, report) or forward
        elif key == "inhibit_on_failure":
            inhibit = bool(flag(child.args))
        elif key in _REAL_DROPPED:
            report.drop(child.span, f"{key}: not converted: {_REAL_DROPPED[key]}")
        elif child.children is not None and key.isupper():
            pass  # a checker: converted by checkers.probe
        else:
            report.drop(child.span, f"{name(key)}: not a real_server setting ldirector knows")
    return OutReal(where, port, forward, weight, lower, upper), inhibit, inherited


def _compare(base: Probe, probes: list[Probe], report: Report) -> None:
    """Report each real whose check cannot be the virtual's (ldirectord checks reals alike)."""
    for found in probes:
        if found.settings == base.settings:
            continue
        if found.kind is None:
            report.drop(
                found.span,
                "real_server without a checker (keepalived keeps it up): ldirector checks it "
                f"with the {base.kind} of this virtual's first checked real ({base.span})",
            )
        elif found.kind is not base.kind:
            report.drop(
                found.span,
                f"{found.kind}: not converted: ldirector checks all reals of a service alike, "
                f"with the {base.kind} of this virtual's first checked real ({base.span})",
            )
        else:
            mine, theirs = dict(found.settings), dict(base.settings)
            keys = sorted(k for k in mine.keys() | theirs.keys() if mine.get(k) != theirs.get(k))
            report.drop(
                found.span,
                f"{found.kind}: its {', '.join(keys)} not converted: ldirector checks all reals "
                f"of a service alike, as this virtual's first checked real ({base.span})",
            )


def _override(real: OutReal, found: Probe, base: Probe) -> OutReal:
    """The real with its own request and receive when its HTTP check asks for another page."""
    if found.kind is None or found.settings != base.settings:
        return real
    if (found.request, found.receive) == (base.request, base.receive) or found.request is None:
        return real
    receive = found.receive if found.receive is not None else ".*"
    return OutReal(
        real.address, real.port, real.forward, real.weight, real.lower, real.upper,
        request=found.request, receive=receive,
    )  # fmt: skip


def _quiescent(service: _Service, quiet: list[tuple[Node, bool]], report: Report) -> bool:
    values = {inhibit for _, inhibit in quiet}
    if len(values) <= 1:
        return values.pop() if values else service.quiescent
    for node, inhibit in quiet:
        if inhibit != service.quiescent:
            report.drop(
                node.span,
                "inhibit_on_failure: differs between the reals of this virtual: ldirector's "
                "quiescent is per service; the virtual_server's "
                f"({'yes' if service.quiescent else 'no'}) is used",
            )
    return service.quiescent


def _netmask(node: Node | None, family: int, report: Report) -> str | None:
    if node is None:
        return None
    word = node.args[0] if node.args else ""
    text = word.lstrip("/")
    if family == 4 and text.isdigit() and int(text) <= 32:
        text = str(IPv4Address((0xFFFFFFFF << (32 - int(text))) & 0xFFFFFFFF))
    try:
        netmask_value(text, family)
    except Invalid as exc:
        report.drop(node.span, f"persistence_granularity {shown(word)}: {exc}")
        return None
    return text


def _fallback(service: _Service, family: int, report: Report) -> tuple[str, str] | None:
    node = service.sorry
    if node is None:
        return None
    where = address(node.args[0]) if node.args else None
    port = whole(node.args[1], 1, 65535) if len(node.args) > 1 else None
    if where is None or (len(node.args) > 1 and port is None):
        report.drop(node.span, f"sorry_server {shown(' '.join(node.args))}: not an address")
        return None
    if where.version != family:
        report.drop(node.span, f"sorry_server {where}: not in the service's address family")
        return None
    host = f"[{where}]" if family == 6 else str(where)
    forward = service.sorry_forward or service.forward
    text = f"{host}:{port} {forward}" if port is not None else f"{host} {forward}"
    return ("fallback6" if family == 6 else "fallback", text)
