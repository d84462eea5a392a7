"""service=https as keepalived's SSL_GET: SNI from ``virtualhost``, and certificate verification
by name, by CA file and by date, against a real nginx on 127.0.0.1 and ::1.

One nginx port serves four sites, each with its own certificate, chosen by the name the client
sends (SNI): ``a.test`` (also the default, when no name is sent) and ``b.test`` from the trusted
CA, ``old.test`` from that CA but expired, and ``rogue.test`` from a CA nobody trusts. Every
page answers with the name nginx received in the handshake, so a test sees what was sent.
"""

from __future__ import annotations

import asyncio
import datetime
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import trustme

from checks._io import client_tls
from checks.http import verify_failure
from checks.types import HttpSpec
from ldirector.config import loads
from tests.support.checkrun import run_check, target
from tests.support.servers import Daemon, free_port, need, private_dir, running

ADDRESSES = ["127.0.0.1", "::1"]
SITES = ("a.test", "b.test", "old.test", "rogue.test")
YEAR = datetime.timedelta(days=365)


@dataclass(frozen=True)
class Sites:
    """The nginx port and the PEM text of the CA that signed a.test, b.test and old.test."""

    port: int
    ca: str


def _issue(
    ca: trustme.CA, directory: Path, name: str, expired: datetime.datetime | None = None
) -> str:
    """nginx's lines for ``name``'s certificate; ``expired`` is the end of its validity."""
    dates = {} if expired is None else {"not_before": expired - YEAR, "not_after": expired}
    cert = ca.issue_cert(name, **dates)  # type: ignore[arg-type]
    chain, key = directory / f"{name}.pem", directory / f"{name}.key"
    chain.write_bytes(b"".join(blob.bytes() for blob in cert.cert_chain_pems))
    cert.private_key_pem.write_to_path(str(key))
    key.chmod(0o644)
    return f"ssl_certificate {chain}; ssl_certificate_key {key};"


def _nginx_conf(tmp: Path, port: int, certs: dict[str, str]) -> str:
    def server(name: str, default: bool = False) -> str:
        flag = " default_server" if default else ""
        return f"""
            server {{
                listen 127.0.0.1:{port} ssl{flag}; listen [::1]:{port} ssl{flag};
                server_name {name};
                {certs[name]}
                location / {{ return 200 "sni=$ssl_server_name site={name}\\n"; }}
            }}"""

    temp = " ".join(
        f"{kind}_temp_path {tmp / kind};"
        for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
    )
    return f"""
        {"user root;" if os.geteuid() == 0 else ""}
        daemon off;
        worker_processes 1;
        pid {tmp / "nginx.pid"};
        error_log {tmp / "error.log"} warn;
        events {{ worker_connections 256; }}
        http {{
            access_log off;
            default_type text/plain;
            {temp}
            {server("a.test", default=True)}
            {"".join(server(name) for name in SITES[1:])}
        }}
    """


@pytest.fixture(scope="module")
def sites() -> Iterator[Sites]:
    binary = need("nginx")
    daemon = Daemon("nginx-sni", private_dir("nginx-sni"))
    trusted, stranger = trustme.CA(), trustme.CA()
    yesterday = datetime.datetime.now(datetime.UTC) - datetime.timedelta(days=1)
    certs = {
        "a.test": _issue(trusted, daemon.directory, "a.test"),
        "b.test": _issue(trusted, daemon.directory, "b.test"),
        "old.test": _issue(trusted, daemon.directory, "old.test", expired=yesterday),
        "rogue.test": _issue(stranger, daemon.directory, "rogue.test"),
    }
    port = free_port()
    conf = daemon.directory / "nginx.conf"
    conf.write_text(_nginx_conf(daemon.directory, port, certs))
    argv = [binary, "-p", str(daemon.directory), "-e", str(daemon.directory / "error.log")]
    daemon.start([*argv, "-c", str(conf)])
    with running(daemon):
        daemon.wait_tcp(port)
        yield Sites(port, trusted.cert_pem.bytes().decode())


def https(virtualhost: str | None = None, verify: bool = False, ca: str | None = None) -> HttpSpec:
    return HttpSpec(
        tls=True,
        receive=re.compile("site="),
        virtualhost=virtualhost,
        verify_tls=verify,
        ca_certs=ca,
    )


# --- SNI ---------------------------------------------------------------------------------------


@pytest.mark.daemon
@pytest.mark.parametrize("address", ADDRESSES)
async def test_virtualhost_is_sent_as_sni_and_selects_that_site(sites: Sites, address: str) -> None:
    spec = HttpSpec(
        tls=True, virtualhost="b.test", receive=re.compile(r"^sni=b\.test site=b\.test$")
    )
    result = await run_check(target(sites.port, address), spec, 5)
    assert (result.ok, result.reason) == (True, "HTTP 200 OK")


@pytest.mark.daemon
async def test_without_virtualhost_no_name_is_sent(sites: Sites) -> None:
    # An address is never a server name: nginx sees none and serves its default site.
    spec = HttpSpec(tls=True, receive=re.compile(r"^sni= site=a\.test$"))
    assert (await run_check(target(sites.port), spec, 5)).ok


@pytest.mark.daemon
@pytest.mark.parametrize("name", ["a.test", "b.test", "rogue.test"])
async def test_the_handshake_gets_the_certificate_of_the_name_sent(sites: Sites, name: str) -> None:
    # The context the check uses, on its own: the certificate nginx chose names what was sent.
    _, writer = await asyncio.open_connection(
        "127.0.0.1", sites.port, ssl=client_tls(name), server_hostname=""
    )
    try:
        der = writer.get_extra_info("ssl_object").getpeercert(binary_form=True)
    finally:
        writer.close()
        await writer.wait_closed()
    assert name.encode() in der
    assert all(other.encode() not in der for other in SITES if other != name)


# --- verification ------------------------------------------------------------------------------


@pytest.mark.daemon
@pytest.mark.parametrize("address", ADDRESSES)
@pytest.mark.parametrize("name", ["a.test", "b.test"])
async def test_verification_passes_for_the_name_with_the_ca_file(
    sites: Sites, address: str, name: str
) -> None:
    result = await run_check(target(sites.port, address), https(name, True, sites.ca), 5)
    assert (result.ok, result.reason) == (True, "HTTP 200 OK")


@pytest.mark.daemon
async def test_a_name_the_server_has_no_certificate_for_is_a_name_mismatch(sites: Sites) -> None:
    # nginx falls back to a.test's certificate, which does not name c.test.
    result = await run_check(target(sites.port), https("c.test", True, sites.ca), 5)
    assert (result.ok, result.reason) == (
        False,
        "certificate verify failed: name mismatch: the certificate is not valid for 'c.test'",
    )


@pytest.mark.daemon
async def test_an_expired_certificate_is_named_as_expired(sites: Sites) -> None:
    result = await run_check(target(sites.port), https("old.test", True, sites.ca), 5)
    assert (result.ok, result.reason) == (
        False,
        "certificate verify failed: certificate expired (certificate has expired)",
    )


@pytest.mark.daemon
async def test_a_certificate_from_another_ca_is_an_unknown_ca(sites: Sites) -> None:
    result = await run_check(target(sites.port), https("rogue.test", True, sites.ca), 5)
    assert not result.ok
    assert result.reason.startswith("certificate verify failed: unknown CA (")


@pytest.mark.daemon
async def test_without_a_ca_file_the_system_store_does_not_know_a_private_ca(sites: Sites) -> None:
    result = await run_check(target(sites.port), https("b.test", True), 5)
    assert not result.ok
    assert result.reason.startswith("certificate verify failed: unknown CA (")


@pytest.mark.daemon
async def test_without_virtualhost_only_the_chain_is_verified(sites: Sites) -> None:
    # The real is known by its address only: a trusted chain is enough, whatever it names.
    trusted = await run_check(target(sites.port), https(None, True, sites.ca), 5)
    assert (trusted.ok, trusted.reason) == (True, "HTTP 200 OK")


@pytest.mark.daemon
@pytest.mark.parametrize("name", ["c.test", "old.test", "rogue.test"])
async def test_without_httpsverify_no_certificate_problem_matters(sites: Sites, name: str) -> None:
    result = await run_check(target(sites.port), https(name, False, sites.ca), 5)
    assert (result.ok, result.reason) == (True, "HTTP 200 OK")


def test_verify_failure_wording_without_a_verification_error() -> None:
    # Anything that is not OpenSSL's verification result keeps its own text, on one line.
    assert (
        verify_failure(ValueError("odd\nthing"), "x.test") == "certificate verify failed: odd thing"
    )


def test_client_contexts_are_shared_per_name_and_ca() -> None:
    assert client_tls("b.test", verify=True) is client_tls("b.test", verify=True)
    assert client_tls("b.test") is not client_tls("a.test")
    assert client_tls(None) is client_tls()


@pytest.mark.daemon
async def test_a_config_with_httpscafile_and_virtualhost_checks_as_configured(
    sites: Sites, tmp_path: Path
) -> None:
    # The directives end to end: the CA file is read into the spec the check uses.
    ca = tmp_path / "ca.pem"
    ca.write_text(sites.ca)
    text = (
        f"virtual=127.0.0.1:{sites.port}\n\treal=127.0.0.1:{sites.port} masq\n"
        f"\tservice=https\n\tvirtualhost={{name}}\n\thttpsverify=yes\n\thttpscafile={ca}\n"
    )
    for name, ok in (("b.test", True), ("c.test", False)):
        real = loads(text.format(name=name), "https.cf").virtuals[0].reals[0]
        assert real.check is not None
        result = await run_check(real.target, real.check, 5)
        assert result.ok is ok, result.reason
