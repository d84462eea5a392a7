"""httpscafile and dnsquerytype: parsed, inherited, validated at their line, shown by --json."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import trustme

from checks.types import DnsQueryType, DnsSpec, HttpSpec
from ldirector.config import ConfigError
from ldirector.config.converters import MAX_CA_FILE
from ldirector.config.render import config_json
from tests.unit.config.cfgtools import load_text

HTTPS = "virtual=127.0.0.1:443\n\treal=127.0.0.2:443 masq\n\tservice=https\n"
DNS = "virtual=127.0.0.1:53\n\treal=127.0.0.2:53 masq\n\tservice=dns\n\trequest={request}\n"


@pytest.fixture
def ca_file(tmp_path: Path) -> tuple[Path, str]:
    pem = trustme.CA().cert_pem.bytes().decode()
    path = tmp_path / "ca.pem"
    path.write_text(pem)
    return path, pem


def errors(text: str) -> list[tuple[int, str]]:
    with pytest.raises(ConfigError) as caught:
        load_text(text)
    return [(d.span.line, d.message) for d in caught.value.errors]


def warnings(text: str) -> list[tuple[int, str]]:
    return [(d.span.line, d.message) for d in load_text(text).warnings]


# --- httpscafile -------------------------------------------------------------------------------


def test_cafile_is_read_into_the_https_spec(ca_file: tuple[Path, str]) -> None:
    path, pem = ca_file
    config = load_text(HTTPS + f"\thttpsverify=yes\n\thttpscafile={path}\n")
    virtual = config.virtuals[0]
    spec = virtual.reals[0].check
    assert isinstance(spec, HttpSpec)
    assert (spec.verify_tls, spec.ca_certs) == (True, pem)
    assert virtual.httpscafile == str(path)
    assert config_json(config)["virtuals"][0]["check"]["httpscafile"] == str(path)  # type: ignore[index]
    assert pem not in repr(spec)


def test_cafile_is_inherited_from_the_global_section(ca_file: tuple[Path, str]) -> None:
    path, pem = ca_file
    config = load_text(f'httpsverify=yes\nhttpscafile="{path}"\n' + HTTPS)
    spec = config.virtuals[0].reals[0].check
    assert isinstance(spec, HttpSpec)
    assert spec.ca_certs == pem


def test_cafile_without_httpsverify_warns_and_is_ignored(ca_file: tuple[Path, str]) -> None:
    path, _ = ca_file
    text = HTTPS + f"\thttpscafile={path}\n"
    assert warnings(text) == [(4, "httpscafile has no effect without httpsverify = yes; ignored")]
    config = load_text(text)
    spec = config.virtuals[0].reals[0].check
    assert isinstance(spec, HttpSpec)
    assert (spec.verify_tls, spec.ca_certs, config.virtuals[0].httpscafile) == (False, None, None)


def test_unset_cafile_means_the_system_store() -> None:
    config = load_text(HTTPS + "\thttpsverify=yes\n")
    spec = config.virtuals[0].reals[0].check
    assert isinstance(spec, HttpSpec)
    assert (spec.verify_tls, spec.ca_certs) == (True, None)
    assert config_json(config)["virtuals"][0]["check"]["httpscafile"] is None  # type: ignore[index]


def test_unreadable_cafiles_are_errors_at_their_line(tmp_path: Path) -> None:
    empty = tmp_path / "empty.pem"
    empty.write_text("")
    junk = tmp_path / "junk.pem"
    junk.write_text("-----BEGIN CERTIFICATE-----\nnot base64\n-----END CERTIFICATE-----\n")
    binary = tmp_path / "binary.pem"
    binary.write_bytes(b"\xff\xfe")
    big = tmp_path / "big.pem"
    with big.open("wb") as f:
        f.truncate(MAX_CA_FILE + 1)
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    cases = {
        "relative.pem": "invalid httpscafile 'relative.pem': an absolute path is required",
        str(tmp_path / "missing.pem"): f"cannot read httpscafile {tmp_path}/missing.pem: "
        "No such file or directory",
        str(tmp_path): f"cannot read httpscafile {tmp_path}: not a regular file",
        str(fifo): f"cannot read httpscafile {fifo}: not a regular file",
        str(empty): f"httpscafile {empty} holds no PEM certificate",
        str(junk): f"httpscafile {junk} holds no PEM certificate",
        str(binary): f"httpscafile {binary} holds no PEM certificate",
        str(big): f"cannot read httpscafile {big}: larger than 4 MiB",
    }
    for value, message in cases.items():
        assert errors(f"httpscafile={value}\n") == [(1, message)], value


# --- dnsquerytype ------------------------------------------------------------------------------


@pytest.mark.parametrize("written", ["AAAA", "aaaa", '"Aaaa"'])
def test_dnsquerytype_reaches_the_dns_spec(written: str) -> None:
    config = load_text(DNS.format(request="www.example.test") + f"\tdnsquerytype={written}\n")
    spec = config.virtuals[0].reals[0].check
    assert spec == DnsSpec(query="www.example.test", qtype=DnsQueryType.AAAA)
    assert config.virtuals[0].dnsquerytype is DnsQueryType.AAAA
    assert config_json(config)["virtuals"][0]["check"]["dnsquerytype"] == "AAAA"  # type: ignore[index]


def test_unset_dnsquerytype_keeps_ldirectords_choice() -> None:
    config = load_text(DNS.format(request="192.0.2.1"))
    spec = config.virtuals[0].reals[0].check
    assert spec == DnsSpec(query="192.0.2.1", qtype=None)
    assert config_json(config)["virtuals"][0]["check"]["dnsquerytype"] is None  # type: ignore[index]


def test_every_type_is_accepted() -> None:
    for qtype in DnsQueryType:
        request = "192.0.2.1" if qtype is DnsQueryType.PTR else "example.test"
        config = load_text(DNS.format(request=request) + f"\tdnsquerytype={qtype}\n")
        assert config.virtuals[0].dnsquerytype is qtype


def test_an_unknown_type_is_an_error_with_a_hint() -> None:
    assert errors(DNS.format(request="x.test") + "\tdnsquerytype=AAA\n") == [
        (
            5,
            "dnsquerytype must be A, AAAA, CNAME, MX, NS, PTR, SOA, SRV, TXT "
            "(did you mean 'AAAA'?)",
        )
    ]


def test_a_name_type_with_an_address_request_is_an_error() -> None:
    assert errors(DNS.format(request="192.0.2.1") + "\tdnsquerytype=MX\n") == [
        (
            5,
            "dnsquerytype=MX asks for a name's records, but request= is an address "
            "(use dnsquerytype=PTR, or leave it unset)",
        )
    ]


def test_dnsquerytype_on_another_service_warns_and_is_ignored() -> None:
    text = HTTPS + "\tdnsquerytype=AAAA\n"
    assert warnings(text) == [(4, "dnsquerytype only applies to service=dns (not https); ignored")]
    assert load_text(text).virtuals[0].dnsquerytype is None


def test_dnsquerytype_is_virtual_only() -> None:
    found = errors("dnsquerytype=AAAA\n")
    assert found == [(1, "dnsquerytype is only valid inside a virtual block")]
