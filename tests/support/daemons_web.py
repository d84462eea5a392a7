"""nginx, dnsmasq and kamailio for the web, DNS and SIP check tests, each run privately.

Each is configured in its own directory and started on free loopback ports (IPv4 and IPv6); the
check tests' conftest wraps them in session-scoped fixtures.
"""

from __future__ import annotations

import contextlib
import os
import socket
import time
from dataclasses import dataclass
from pathlib import Path

from tests.support.servers import Daemon, free_port, need, private_dir, write_cert

# --- nginx -------------------------------------------------------------------------------------

PAGE = "<html><body>Test Page</body></html>\n"
SECURE_PAGE = "Secure Test Page\n"
VHOST_PAGE = "Virtual host page\n"


@dataclass(frozen=True)
class Nginx:
    """Ports of the nginx fixture; all on 127.0.0.1 and ::1."""

    http: int
    https: int
    proxy: int


def start_nginx() -> tuple[Daemon, Nginx]:
    """nginx serving plain HTTP, HTTPS with a self-signed certificate, and a forward proxy."""
    binary = need("nginx")
    d = Daemon("nginx", private_dir("nginx"))
    cert, key = write_cert(d.directory)
    web = Nginx(http=free_port(), https=free_port(), proxy=free_port())
    conf = d.directory / "nginx.conf"
    conf.write_text(_nginx_conf(d.directory, web, cert, key))
    d.start([binary, "-p", str(d.directory), "-e", str(d.directory / "error.log"), "-c", str(conf)])
    for port in (web.http, web.https, web.proxy):
        d.wait_tcp(port)
    return d, web


def _nginx_conf(tmp: Path, web: Nginx, cert: Path, key: Path) -> str:
    """A self-contained nginx config with pages for every HTTP check case."""

    def listen(port: int, extra: str = "") -> str:
        return f"listen 127.0.0.1:{port}{extra}; listen [::1]:{port}{extra};"

    user = "user root;" if os.geteuid() == 0 else ""
    temp = " ".join(
        f"{kind}_temp_path {tmp / kind};"
        for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
    )
    pages = f"""
        location = / {{ return 200 "{PAGE.strip()}\\n"; }}
        location = /other {{ return 200 "Nothing to see here\\n"; }}
        location = /down {{ return 503 "maintenance\\n"; }}
        location = /moved {{ return 302 /; }}
        location = /loop {{ return 302 /loop; }}
    """
    return f"""
        {user}
        daemon off;
        worker_processes 1;
        pid {tmp / "nginx.pid"};
        error_log {tmp / "error.log"} warn;
        events {{ worker_connections 4096; }}
        http {{
            access_log off;
            default_type text/plain;
            {temp}
            server {{ {listen(web.http, " default_server")} {pages} }}
            server {{
                {listen(web.http)} server_name vhost.test;
                location / {{ return 200 "{VHOST_PAGE.strip()}\\n"; }}
                location = /moved {{ return 302 http://vhost.test:$server_port/; }}
            }}
            server {{
                {listen(web.https, " ssl")}
                ssl_certificate {cert}; ssl_certificate_key {key};
                location = / {{ return 200 "{SECURE_PAGE.strip()}\\n"; }}
                location = /down {{ return 503 "maintenance\\n"; }}
            }}
            server {{
                {listen(web.proxy)}
                location / {{ proxy_pass http://$http_host; }}
            }}
        }}
    """


# --- dnsmasq -----------------------------------------------------------------------------------

DNS_NAME = "www.test"
DNS_ADDRESS = "127.0.0.5"
#: The AAAA record of DNS_NAME, and the other record types the dnsmasq fixture answers.
DNS_ADDRESS6 = "fd00::5"
DNS_RECORDS = {
    "CNAME": ("alias.test", "www.test."),
    "MX": ("test", "10 mail.test."),
    "TXT": ("www.test", "v=check1 ok"),
    "SRV": ("_http._tcp.test", "1 2 80 www.test."),
}


def start_dnsmasq() -> Daemon:
    """dnsmasq answering ``DNS_NAME`` (A, AAAA and PTR) and ``DNS_RECORDS`` over UDP and TCP:
    no upstream, no DHCP."""
    d = Daemon("dnsmasq", private_dir("dnsmasq"))
    port = free_port()
    d.ports = {"dns": port}
    d.start(_dnsmasq_argv(port))
    d.wait_tcp(port)
    return d


def _dnsmasq_argv(port: int) -> list[str]:
    return [
        need("dnsmasq"),
        "--keep-in-foreground",
        "--conf-file=/dev/null",
        "--no-resolv",
        "--no-hosts",
        "--pid-file",
        f"--port={port}",
        "--listen-address=127.0.0.1",
        "--listen-address=::1",
        "--bind-interfaces",
        f"--host-record={DNS_NAME},{DNS_ADDRESS},{DNS_ADDRESS6}",
        "--cname=alias.test,www.test",
        "--mx-host=test,mail.test,10",
        "--txt-record=www.test,v=check1 ok",
        "--srv-host=_http._tcp.test,www.test,80,1,2",
        "--local=/test/",
        "--log-facility=-",
        *(["--user=root"] if os.geteuid() == 0 else []),
    ]


# --- kamailio ----------------------------------------------------------------------------------

#: The only URI the kamailio fixture answers 200 to; everything else gets 404.
SIP_LOGIN = "health@127.0.0.1"


def start_kamailio() -> Daemon:
    """kamailio answering OPTIONS for ``SIP_LOGIN`` on one port, UDP and TCP."""
    binary = need("kamailio")
    d = Daemon("kamailio", private_dir("kamailio"))
    port = free_port()
    d.ports = {"sip": port}
    conf = d.directory / "kamailio.cfg"
    conf.write_text(_kamailio_conf(port))
    d.start([binary, "-f", str(conf), "-DD", "-E", "-Y", str(d.directory), "-P", "pid"])
    _wait_udp_sip(d, port)
    d.wait_tcp(port)
    return d


def _kamailio_conf(port: int) -> str:
    """A stateless kamailio that answers OPTIONS for ``SIP_LOGIN`` and 404 to anything else."""
    modules = next(
        (
            d
            for d in ("/usr/lib/x86_64-linux-gnu/kamailio/modules", "/usr/lib/kamailio/modules")
            if Path(d).is_dir()
        ),
        "/usr/lib/x86_64-linux-gnu/kamailio/modules",
    )
    listen = "\n".join(
        f"listen={proto}:{host}:{port}"
        for proto in ("udp", "tcp")
        for host in ("127.0.0.1", "[::1]")
    )
    user = SIP_LOGIN.split("@")[0]
    return f"""#!KAMAILIO
debug=2
log_stderror=yes
children=1
tcp_children=1
auto_aliases=no
{listen}
mpath="{modules}/"
loadmodule "sl.so"
loadmodule "pv.so"
request_route {{
    if ($rm == "OPTIONS" && $rU == "{user}") {{ sl_send_reply("200", "OK"); exit; }}
    sl_send_reply("404", "Not Here");
}}
"""


def _wait_udp_sip(d: Daemon, port: int) -> None:
    """Wait until kamailio answers on UDP (its TCP port opens before its UDP workers run)."""
    deadline = time.monotonic() + 15
    probe = (
        b"OPTIONS sip:x@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:9;rport;branch=z9hG4bKw\r\n"
    )
    probe += b"From: <sip:x@127.0.0.1>;tag=1\r\nTo: <sip:x@127.0.0.1>\r\nCall-ID: w\r\n"
    probe += b"CSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n"
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.settimeout(0.2)
        sock.connect(("127.0.0.1", port))
        while time.monotonic() < deadline and d.alive():
            with contextlib.suppress(OSError):
                sock.send(probe)
                if sock.recv(4096).startswith(b"SIP/2.0"):
                    return
            time.sleep(0.05)
    d.fail(f"did not answer on udp port {port}")
