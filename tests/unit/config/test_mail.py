"""mail: smtp=, emailalert= and emailalertfrom= have one grammar, and it is the mailer's."""

from __future__ import annotations

import pytest

from ldirector.config import ConfigError, Invalid, MailAddress, Severity, SmtpServer
from ldirector.config.mail import email_addresses, email_from, smtp_value
from tests.unit.config.cfgtools import load_text


@pytest.mark.parametrize(
    ("value", "server"),
    [
        ("mail.example.test", SmtpServer("mail.example.test", 25)),
        ("mail.example.test:2525", SmtpServer("mail.example.test", 2525)),
        ('"mail:587"', SmtpServer("mail", 587)),
        ("localhost.", SmtpServer("localhost.", 25)),
        ("192.0.2.25", SmtpServer("192.0.2.25", 25)),
        ("192.0.2.25:465", SmtpServer("192.0.2.25", 465)),
        ("[::1]", SmtpServer("::1", 25)),
        ("[::1]:25", SmtpServer("::1", 25)),
        ("[2001:db8::25]:65535", SmtpServer("2001:db8::25", 65535)),
    ],
)
def test_smtp_forms(value: str, server: SmtpServer) -> None:
    assert smtp_value(value) == server


@pytest.mark.parametrize(
    ("value", "why"),
    [
        ("mail:99999", ": the port must be a number 1..65535"),
        ("mail:0", ": the port must be a number 1..65535"),
        ("mail:", ": the port must be a number 1..65535"),
        ("mail:smtp", ": the port must be a number 1..65535"),
        ("mail:\u0662\u0665", ": the port must be a number 1..65535"),
        ("[::1]:99999", ": the port must be a number 1..65535"),
        ("::1", ": write an IPv6 address in brackets, [::1]:25"),
        ("[mail]:25", ": brackets hold an IPv6 address"),
        ("[::1", ""),
        ("[::1]x", ""),
        ("mail server", ""),
        ("", ""),
        ("-mail", ""),
        ("mail..test", ""),
        ("999.1.1.1", ""),
        ("m\u00e4il.test", ""),
        ("a" * 64 + ".test", ""),
    ],
)
def test_smtp_errors(value: str, why: str) -> None:
    with pytest.raises(Invalid) as info:
        smtp_value(value)
    assert str(info.value).startswith("invalid SMTP server address: ")
    assert str(info.value).endswith(why)


def test_smtp_port_out_of_range_is_an_error_at_its_line() -> None:
    with pytest.raises(ConfigError) as info:
        load_text("checkinterval=5\nsmtp=mail:99999\n")
    (only,) = info.value.diagnostics
    assert (only.span.line, only.severity) == (2, Severity.ERROR)
    assert "mail:99999" in only.message


def test_bracketed_ipv6_smtp_is_accepted_and_parsed() -> None:
    config = load_text("smtp=[::1]:25\nvirtual=127.0.0.1:80\n\treal=127.0.0.2:80 gate\n")
    assert config.virtuals[0].smtp == SmtpServer(host="::1", port=25)


@pytest.mark.parametrize(
    ("value", "addresses"),
    [
        ("ops@example.test", ("ops@example.test",)),
        ('"a@example.test, b@example.test"', ("a@example.test", "b@example.test")),
        ("a@example.test,,b@example.test,", ("a@example.test", "b@example.test")),
        ("root", ("root",)),
        ("Ops <ops@example.test>", ("Ops <ops@example.test>",)),
        ('"Ops, Team" <ops@example.test>, x@y', ('"Ops, Team" <ops@example.test>', "x@y")),
        ("<ops@example.test>", ("ops@example.test",)),
        ('"a b"@example.test', ('"a b"@example.test',)),
        ("ops@[192.0.2.1]", ("ops@[192.0.2.1]",)),
        ("ops@[IPv6:2001:db8::1]", ("ops@[IPv6:2001:db8::1]",)),
        ("\u00c9quipe <ops@example.test>", ("\u00c9quipe <ops@example.test>",)),
    ],
)
def test_recipient_forms(value: str, addresses: tuple[str, ...]) -> None:
    assert tuple(str(a) for a in email_addresses(value)) == addresses


@pytest.mark.parametrize(
    ("value", "why"),
    [
        ("Ops <", "expected ADDRESS or NAME <ADDRESS>"),
        ("ops@example.test>", "expected ADDRESS or NAME <ADDRESS>"),
        ("Ops <a@b> <c@d>", "expected ADDRESS or NAME <ADDRESS>"),
        ("Ops <>", "the address is empty"),
        ("a b@example.test", "local-part is not dot-atom"),
        ("ops@", ""),
        ("@example.test", ""),
        ("ops@example.test.", ""),
        ("o..ps@example.test", "local-part is not dot-atom"),
        ("op\u00e9@example.test", "the address must be ASCII"),
        ('O"ps <ops@example.test>', 'a name may not contain " or \\'),
        ("web@[127.0", "not a valid address"),
        ("ops@[::1]", "the part after @ must be a host name or [IP address]"),
        ("ops@[]", "the part after @ must be a host name or [IP address]"),
        ("ops@mail!x", "the part after @ must be a host name or [IP address]"),
    ],
)
def test_recipient_errors(value: str, why: str) -> None:
    with pytest.raises(Invalid) as info:
        email_addresses(value)
    assert str(info.value).startswith("invalid email address ")
    assert why in str(info.value)
    assert "\n" not in str(info.value)


def test_no_recipient() -> None:
    with pytest.raises(Invalid, match=r"^no email address specified$"):
        email_addresses('" , "')


def test_from_forms() -> None:
    assert email_from("lvs@example.test") == MailAddress("lvs", "example.test")
    assert email_from('"LVS, Ops" <lvs@example.test>') == MailAddress(
        "lvs", "example.test", "LVS, Ops"
    )
    assert email_from('"lvs@example.test"') == MailAddress("lvs", "example.test")


def test_half_an_address_in_emailalertfrom_is_an_error_at_its_line() -> None:
    """It passed check and then went out as a broken From header."""
    with pytest.raises(ConfigError) as info:
        load_text("checkinterval=5\nemailalertfrom=Ops <\n")
    (only,) = info.value.diagnostics
    assert (only.span.line, only.severity) == (2, Severity.ERROR)
    assert only.message == (
        "invalid email from address 'Ops <': expected ADDRESS or NAME <ADDRESS>"
    )


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ('""', "no email from address specified"),
        ("a@example.test, b@example.test", "one address only"),
        ("Ops", "Ops"),  # a local mailbox is a fine From
    ],
)
def test_from_errors(value: str, message: str) -> None:
    if value == "Ops":
        assert email_from(value) == MailAddress("Ops")
        return
    with pytest.raises(Invalid, match=message):
        email_from(value)
