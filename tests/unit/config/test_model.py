"""model: spans take no part in equality, nodes are frozen, and the values the edges read."""

from __future__ import annotations

import typing
from email import policy
from email.message import EmailMessage
from ipaddress import IPv6Address
from pathlib import Path

import pytest

from checks.types import CheckSpec
from ldirector.config import SERVICES, CheckService, MailAddress, SmtpServer
from tests.unit.config.cfgtools import TESTDATA, load_fixture, load_text

ROOT = Path(__file__).resolve().parents[3]
REFERENCE = (ROOT / "docs" / "config-reference.md").read_text()


def test_spans_do_not_take_part_in_equality() -> None:
    a = load_fixture(TESTDATA / "valid" / "http-globals.cf")
    text = (TESTDATA / "valid" / "http-globals.cf").read_text()
    b = load_text("# one more comment line shifts every line number\n" + text)
    assert a.virtuals == b.virtuals
    assert a.virtuals[0].span.line + 1 == b.virtuals[0].span.line
    assert hash(a.virtuals[0].reals[0]) == hash(b.virtuals[0].reals[0])


def test_model_is_frozen() -> None:
    config = load_fixture(TESTDATA / "valid" / "http-globals.cf")
    with pytest.raises(AttributeError):
        config.virtuals[0].port = 81  # type: ignore[misc]


def test_ipv6_vid_and_endpoint() -> None:
    config = load_fixture(TESTDATA / "valid" / "fallbacks-sysctls.cf")
    v6 = config.virtuals[2]
    assert isinstance(v6.address, IPv6Address)
    assert v6.endpoint == "[2001:db8::1]:443"
    assert config.sysctls["expire_quiescent_template"] == 1


def test_every_service_spec_type_is_in_the_check_contract() -> None:
    union = set(typing.get_args(CheckSpec))
    assert len(SERVICES) == 21 == len(CheckService)
    for service, info in SERVICES.items():
        assert info.spec_type in union, service
        assert (info.module is None) == (info.extra is None)


def test_every_service_is_named_in_the_reference() -> None:
    for service in CheckService:
        assert f"{service}" in REFERENCE


def test_virtuals_with_mail_settings_stay_hashable() -> None:
    config = load_fixture(TESTDATA / "valid" / "mail.cf")
    assert len({*config.virtuals}) == 3


@pytest.mark.parametrize(
    ("server", "shown"),
    [
        (SmtpServer("mail.example.test"), "mail.example.test:25"),
        (SmtpServer("192.0.2.25", 2525), "192.0.2.25:2525"),
        (SmtpServer("2001:db8::25", 587), "[2001:db8::25]:587"),
    ],
)
def test_smtp_server_text(server: SmtpServer, shown: str) -> None:
    assert str(server) == shown


@pytest.mark.parametrize(
    ("address", "spec", "header"),
    [
        (MailAddress("ops", "example.test"), "ops@example.test", "ops@example.test"),
        (MailAddress("root"), "root", "root"),
        (MailAddress("a b", "example.test"), '"a b"@example.test', '"a b"@example.test'),
        (
            MailAddress("lvs", "example.test", "LVS, Ops"),
            "lvs@example.test",
            '"LVS, Ops" <lvs@example.test>',
        ),
    ],
)
def test_mail_address_forms(address: MailAddress, spec: str, header: str) -> None:
    assert address.addr_spec == spec
    assert str(address) == header


def test_mail_addresses_go_into_headers_unchanged() -> None:
    """What the mailer does with them: no parsing, no defects, no exception."""
    config = load_fixture(TESTDATA / "valid" / "mail.cf")
    assert config.emailalertfrom is not None
    message = EmailMessage(policy=policy.SMTP)
    message["From"] = config.emailalertfrom.header
    message["To"] = [a.header for a in config.virtuals[0].emailalert]
    message.set_content("x")
    data = message.as_bytes()
    assert b'From: "LVS, Ops" <lvs@example.test>\r\n' in data
    assert b'To: Ops Team <ops@example.test>, root, "On, Call" <oncall@example.test>\r\n' in data
    assert all(not h.defects for h in (message["From"], message["To"]))
