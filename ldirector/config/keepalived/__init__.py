"""``ldirector import keepalived.conf``: keepalived's LVS configuration as an ldirectord.cf.

:func:`convert` reads keepalived.conf's grammar itself (``grammar``), turns each
``virtual_server`` into virtual blocks (``virtuals``; the services it stands for, a
``virtual_server_group``'s members among them, in ``members``) and each real's health checker
into check directives (``checkers``, with HTTP_GET's and SSL_GET's urls in ``httpget``), and
writes the text (``emit``). Every keepalived setting the result cannot express is a warning
at its FILE:LINE; VRRP and keepalived's other networking sections are reported as out of scope,
since they stay keepalived's. The text it returns passes ``ldirector check``: it is loaded once
more here, and a problem there (a converter bug) is reported too.
"""

from __future__ import annotations

from ipaddress import IPv4Address, IPv6Address

from ldirector.config.errors import ConfigError, Diagnostic, Severity, Span
from ldirector.config.keepalived.emit import OutConfig, OutVirtual
from ldirector.config.keepalived.grammar import Node, Reader, parse, read_file
from ldirector.config.keepalived.report import Report, name, shown
from ldirector.config.keepalived.virtuals import virtual_server
from ldirector.config.loader import loads
from ldirector.config.mail import email_addresses, email_from, smtp_value
from ldirector.config.values import Invalid

__all__ = ["convert", "convert_file"]

#: keepalived's sections that are not its LVS configuration.
OUT_OF_SCOPE = frozenset(
    {
        "vrrp_instance",
        "vrrp_sync_group",
        "vrrp_script",
        "vrrp_track_process",
        "vrrp_track_file",
        "track_file",
        "track_process",
        "static_ipaddress",
        "static_routes",
        "static_rules",
        "garp_group",
        "linkbeat_interfaces",
        "bfd_instance",
        "net_namespace",
        "net_namespace_ipvs",
        "instance",
        "use_pid_dir",
    }
)


_ELSEWHERE = "out of scope: VRRP and keepalived's other networking stay keepalived's"


def convert(text: str, path: str, *, read: Reader = read_file) -> tuple[str, list[Diagnostic]]:
    """The ldirectord.cf equivalent of keepalived.conf ``text`` (read from ``path``), and a
    warning at FILE:LINE for every setting it does not carry. ``read`` reads included files."""
    parsed = parse(text, path, read)
    report = Report()
    for diagnostic in parsed.diagnostics:
        report.drop(diagnostic.span, diagnostic.message)
    groups = {
        node.args[0]: node
        for node in parsed.nodes
        if node.keyword == "virtual_server_group" and node.args and node.children is not None
    }
    out = OutConfig(source=path)
    seen: dict[tuple[object, ...], OutVirtual] = {}
    for node in parsed.nodes:
        match node.keyword:
            case "virtual_server" if node.children is not None:
                for virtual in virtual_server(node, groups, report):
                    if virtual.key in seen:
                        report.drop(
                            node.span,
                            f"virtual_server {shown(' '.join(node.args))}: the same service as "
                            f"the one at {seen[virtual.key].span}: not converted again",
                        )
                        continue
                    seen[virtual.key] = virtual
                    out.virtuals.append(virtual)
            case "virtual_server_group" if node.args[:1] and node.children is not None:
                pass  # read with the virtual_server that names it
            case "virtual_server" | "virtual_server_group":
                report.drop(node.span, f"{node.keyword} without a name or a block: skipped")
            case "global_defs":
                _global_defs(node, out, report)
            case "SSL":
                report.drop(
                    node.span,
                    "SSL: not converted: ldirector sends no client certificate (to verify the "
                    "reals' certificates, set httpsverify and httpscafile)",
                )
            case keyword if keyword in OUT_OF_SCOPE or keyword.startswith("vrrp_"):
                report.drop(node.span, f"{name(keyword)}: {_ELSEWHERE}")
            case keyword:
                report.drop(node.span, f"{name(keyword)}: not a keepalived section ldirector knows")
    converted = out.text()
    last = len(parsed.order)
    found = sorted(report.diagnostics, key=lambda d: parsed.order.get(d.span, last))
    return converted, found + _self_check(converted, path)


def convert_file(path: str) -> tuple[str, list[Diagnostic]]:
    """:func:`convert` of the file at ``path``; unreadable, it is one error and no text."""
    try:
        text = read_file(path)
    except OSError as exc:
        message = f"cannot read keepalived config: {exc.strerror or exc}"
        return "", [Diagnostic(Severity.ERROR, Span(path), message)]
    return convert(text, path)


def _global_defs(node: Node, out: OutConfig, report: Report) -> None:
    for child in node.children or ():
        word = " ".join(child.args)
        try:
            match child.keyword:
                case "notification_email":
                    recipients = [c.keyword for c in child.children or ()]
                    email_addresses(",".join(recipients))
                    out.globals.append(("emailalert", ",".join(recipients)))
                case "notification_email_from":
                    email_from(word)
                    out.globals.append(("emailalertfrom", word))
                case "smtp_server":
                    host = child.args[0] if child.args else ""
                    host = f"[{host}]" if ":" in host else host
                    port = f":{child.args[1]}" if len(child.args) > 1 else ""
                    out.globals.append(("smtp", str(smtp_value(host + port))))
                case keyword if keyword.startswith("vrrp_") or keyword.startswith("garp_"):
                    report.drop(child.span, f"{name(keyword)}: {_ELSEWHERE}")
                case keyword:
                    report.drop(
                        child.span,
                        f"{name(keyword)}: not converted: ldirector has no such setting",
                    )
        except Invalid as exc:
            report.drop(child.span, f"{child.keyword}: not converted: {exc}")


def _refuse(name: str, family: int) -> IPv4Address | IPv6Address:
    raise Invalid(f"{name}: the converter writes addresses only (IPv{family})")


def _self_check(text: str, path: str) -> list[Diagnostic]:
    """What ``ldirector check`` finds wrong with the text written: nothing, unless a bug."""
    try:
        loads(text, f"{path} (converted)", resolver=_refuse)
    except ConfigError as exc:
        return [
            Diagnostic(Severity.WARNING, Span(path), f"the converted text fails check: {d}")
            for d in exc.errors
        ]
    return []
