"""What a virtual_server stands for: one service, or each member of its virtual_server_group.

A group line is an address, a range (``A-LAST`` with the last octet, or the last IPv6 group in
hexadecimal, or ``A-B``), a network (``A/LEN``, every address of it) or ``fwmark N`` with an
optional family; each with a port but the marks. A range of more than ``MAX_MEMBERS``
addresses is reported rather than expanded.
"""

from __future__ import annotations

from dataclasses import dataclass
from ipaddress import ip_address, ip_network

from ldirector.config.errors import Span
from ldirector.config.keepalived.grammar import Node
from ldirector.config.keepalived.report import Report, address, shown, whole
from ldirector.config.values import IPAddress

#: More virtual services than this from one group entry is a typo, not a deployment.
MAX_MEMBERS = 4096


@dataclass(frozen=True, slots=True)
class Member:
    """One virtual service a virtual_server stands for."""

    family: int
    address: IPAddress | None
    port: int
    fwmark: int | None
    span: Span


def describe(member: Member) -> str:
    """The member as a message names it."""
    if member.fwmark is not None:
        return f"fwmark {member.fwmark}"
    host = f"[{member.address}]" if member.family == 6 else str(member.address)
    return f"{host}:{member.port}"


def members(node: Node, groups: dict[str, Node], report: Report) -> list[Member]:
    args = node.args
    if len(args) == 2 and args[0] == "group":
        group = groups.get(args[1])
        if group is None:
            report.drop(node.span, f"virtual_server group {shown(args[1])}: no such group")
            return []
        found: list[Member] = []
        for entry in group.children or ():
            found += _entry(entry, report)
        return found
    if len(args) == 2 and args[0] == "fwmark":
        mark = whole(args[1], 1, 2**32 - 1)
        if mark is None:
            report.drop(node.span, f"virtual_server fwmark {shown(args[1])}: not a mark")
            return []
        return [Member(0, None, 0, mark, node.span)]
    return _address_port(args, node.span, report)


def _entry(entry: Node, report: Report) -> list[Member]:
    """One line of a virtual_server_group: ADDRESS[-END|/LEN] PORT, or fwmark N [inet|inet6]."""
    if entry.keyword == "fwmark":
        mark = whole(entry.args[0], 1, 2**32 - 1) if entry.args else None
        if mark is None:
            report.drop(entry.span, "fwmark: not a mark")
            return []
        family = {"inet": 4, "inet6": 6}.get(entry.args[1] if len(entry.args) > 1 else "", 0)
        return [Member(family, None, 0, mark, entry.span)]
    return _address_port([entry.keyword, *entry.args], entry.span, report)


def _address_port(args: list[str], span: Span, report: Report) -> list[Member]:
    if len(args) != 2:
        report.drop(
            span,
            f"virtual service {shown(' '.join(args))}: ldirector needs an address and a port "
            "(a service on every port cannot be expressed)",
        )
        return []
    port = whole(args[1], 1, 65535)
    addresses = _addresses(args[0])
    if port is None or addresses is None:
        report.drop(span, f"virtual service {shown(' '.join(args))}: not an address and a port")
        return []
    if len(addresses) > MAX_MEMBERS:
        report.drop(span, f"{shown(args[0])}: more than {MAX_MEMBERS} addresses: skipped")
        return []
    return [Member(a.version, a, port, None, span) for a in addresses]


def _addresses(word: str) -> list[IPAddress] | None:
    """An address, a range (``A-LAST`` or ``A-B``) or a network (``A/LEN``)."""
    if "/" in word:
        try:
            network = ip_network(word, strict=False)
        except ValueError:
            return None
        if network.num_addresses > MAX_MEMBERS + 1:
            return [network[0]] * (MAX_MEMBERS + 1)  # reported by the caller, never expanded
        return list(network)
    first_text, dash, last_text = word.partition("-")
    first = address(first_text)
    if first is None:
        return None
    if not dash:
        return [first]
    last = address(last_text)
    if last is None:  # only the last part: a decimal octet, or a hexadecimal IPv6 group
        base = 10 if first.version == 4 else 16
        try:
            end = int(last_text, base)
        except ValueError:
            return None
        step = 256 if first.version == 4 else 65536
        if not 0 <= end < step:
            return None
        last = ip_address(int(first) - int(first) % step + end)
    if last.version != first.version or int(last) < int(first):
        return None
    count = int(last) - int(first) + 1
    if count > MAX_MEMBERS:
        return [first] * (MAX_MEMBERS + 1)  # reported by the caller, never expanded
    return [ip_address(int(first) + i) for i in range(count)]
