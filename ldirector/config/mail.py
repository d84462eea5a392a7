"""The grammars of the alert-email directives: ``smtp``, ``emailalert`` and ``emailalertfrom``.

Pure. Each value is parsed here once into a model value the mailer uses as it is, so an address
or a server the config accepts is one the mailer can send to (and the other way round).
"""

from __future__ import annotations

import re

from ldirector.config.model import SMTP_PORT, MailAddress, SmtpServer
from ldirector.config.values import Invalid, clip, decimal, digits, literal, shown, unquote

_LABEL = r"(?!-)[A-Za-z0-9_-]{1,63}(?<!-)"
_HOSTNAME = re.compile(rf"{_LABEL}(?:\.{_LABEL})*\.?")
_NAMED = re.compile(r"(?P<name>[^<>]*?)\s*<(?P<addr>[^<>]*)>")


def smtp_value(value: str) -> SmtpServer:
    """``smtp = HOST``, ``HOST:PORT``, ``[IPV6]`` or ``[IPV6]:PORT``; the port defaults to 25."""
    text = unquote(value).strip()

    def bad(why: str = "") -> Invalid:
        return Invalid(f"invalid SMTP server address: {shown(text)}{why}")

    port_text: str | None = None
    if text.startswith("["):
        host, close, rest = text[1:].partition("]")
        if not close or (rest and not rest.startswith(":")):
            raise bad()
        port_text = rest[1:] if rest else None
        address = literal(host)
        if address is None or address.version != 6:
            raise bad(": brackets hold an IPv6 address")
    elif text.count(":") > 1:
        raise bad(f": write an IPv6 address in brackets, [{clip(text)}]:{SMTP_PORT}")
    else:
        host, colon, after = text.partition(":")
        port_text = after if colon else None
        numeric = digits(host.replace(".", ""))
        if not _HOSTNAME.fullmatch(host) or len(host) > 253 or (numeric and not literal(host)):
            raise bad()
    port = SMTP_PORT
    if port_text is not None:
        found = decimal(port_text, 1, 65535)
        if found is None:
            raise bad(": the port must be a number 1..65535")
        port = found
    return SmtpServer(host=host, port=port)


def email_addresses(value: str) -> tuple[MailAddress, ...]:
    """``emailalert``: a comma list of recipients, each ``ADDRESS`` or ``NAME <ADDRESS>``."""
    parts = [p.strip() for p in _split_commas(_unquote_list(value))]
    addresses = tuple(mail_address(p, "email address") for p in parts if p)
    if not addresses:
        raise Invalid("no email address specified")
    return addresses


def email_from(value: str) -> MailAddress:
    """``emailalertfrom``: one ``ADDRESS`` or ``NAME <ADDRESS>``."""
    text = _unquote_list(value).strip()
    if not text:
        raise Invalid("no email from address specified")
    if len([p for p in _split_commas(text) if p.strip()]) > 1:
        raise Invalid(f"invalid email from address {shown(text)}: one address only")
    return mail_address(text, "email from address")


def mail_address(text: str, what: str) -> MailAddress:
    """One address as the ``email`` package reads an addr-spec; a bare local part is a local
    mailbox (``root``)."""
    display = ""
    spec = text
    if "<" in text or ">" in text:
        m = _NAMED.fullmatch(text)
        if m is None:
            raise Invalid(f"invalid {what} {shown(text)}: expected ADDRESS or NAME <ADDRESS>")
        display, spec = _display_name(m.group("name"), text, what), m.group("addr").strip()
    if not spec:
        raise Invalid(f"invalid {what} {shown(text)}: the address is empty")
    if not spec.isascii():
        raise Invalid(f"invalid {what} {shown(text)}: the address must be ASCII")
    # Here, not at the top: only a config that names an address pays for the email package.
    from email.errors import HeaderParseError
    from email.headerregistry import Address

    local = "@" not in spec
    try:
        # A local part alone is no addr-spec to the email package; check it with any domain.
        parsed = Address(addr_spec=spec + "@localhost" if local else spec)
    except Exception as exc:  # its parser also fails with IndexError or AttributeError
        said = str(exc).splitlines() if isinstance(exc, ValueError | HeaderParseError) else []
        reason = clip(said[0], 80) if said else "not a valid address"
        raise Invalid(f"invalid {what} {shown(text)}: {reason}") from None
    if not parsed.username:
        raise Invalid(f"invalid {what} {shown(text)}: the part before @ is empty")
    if not local and not _mail_domain(parsed.domain):
        raise Invalid(
            f"invalid {what} {shown(text)}: the part after @ must be a host name or [IP address]"
        )
    return MailAddress(
        username=parsed.username, domain="" if local else parsed.domain, display_name=display
    )


def _mail_domain(domain: str) -> bool:
    if domain.startswith("[") and domain.endswith("]"):
        inner = domain[1:-1]
        found = literal(inner.removeprefix("IPv6:"))
        return found is not None and (found.version == 6) == inner.startswith("IPv6:")
    return bool(_HOSTNAME.fullmatch(domain)) and len(domain) <= 253


def _display_name(name: str, text: str, what: str) -> str:
    name = name.strip()
    if len(name) >= 2 and name.startswith('"') and name.endswith('"'):
        name = name[1:-1]
    if '"' in name or "\\" in name:
        raise Invalid(f'invalid {what} {shown(text)}: a name may not contain " or \\')
    return name


def _unquote_list(value: str) -> str:
    """Enclosing quotes are removed, unless they belong to a name: ``"Ops" <ops@example.test>``."""
    try:
        return unquote(value)
    except Invalid:
        return value


def _split_commas(text: str) -> list[str]:
    """Split at commas outside double quotes and angle brackets (``"Ops, Team" <a@b>``)."""
    parts: list[str] = []
    start, quoted, angle = 0, False, False
    for i, ch in enumerate(text):
        if ch == '"' and not angle:
            quoted = not quoted
        elif ch == "<" and not quoted:
            angle = True
        elif ch == ">" and not quoted:
            angle = False
        elif ch == "," and not quoted and not angle:
            parts.append(text[start:i])
            start = i + 1
    parts.append(text[start:])
    return parts
