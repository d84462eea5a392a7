"""Real servers for the check tests: nginx, dnsmasq and kamailio on loopback, plus dead ones.

Each daemon runs in the foreground in its own session with its config and state in a temporary
directory, on free loopback ports, and is killed with its whole process group at teardown.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest


def need(program: str) -> str:
    """The path of ``program``; skip without it, but fail under CI=true, where none may skip."""
    found = shutil.which(program) or shutil.which(program, path="/usr/sbin:/sbin")
    if found:
        return found
    message = f"{program} is not installed (tests/deps/checks1.apt; run scripts/setup as root)"
    if os.environ.get("CI") == "true":
        pytest.fail(message)
    pytest.skip(message)


def free_port(kind: socket.SocketKind = socket.SOCK_STREAM) -> int:
    """A port free for both TCP and UDP on 127.0.0.1 and ::1 at the time of asking."""
    while True:
        with socket.socket(socket.AF_INET, kind) as probe:
            probe.bind(("127.0.0.1", 0))
            port: int = probe.getsockname()[1]
        if _free_everywhere(port):
            return port


def _free_everywhere(port: int) -> bool:
    for af, host in ((socket.AF_INET, "127.0.0.1"), (socket.AF_INET6, "::1")):
        for kind in (socket.SOCK_STREAM, socket.SOCK_DGRAM):
            with socket.socket(af, kind) as probe:
                try:
                    probe.bind((host, port))
                except OSError:
                    return False
    return True


def wait_tcp(host: str, port: int, proc: subprocess.Popen[bytes], log: Path) -> None:
    """Wait until ``host:port`` accepts connections; fail with the daemon's log if it died."""
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"{proc.args!r} exited {proc.returncode}:\n{log.read_text()[-2000:]}")
        with contextlib.suppress(OSError), socket.create_connection((host, port), timeout=0.5):
            return
        time.sleep(0.05)
    pytest.fail(f"{proc.args!r} did not listen on {host}:{port}:\n{log.read_text()[-2000:]}")


@contextlib.contextmanager
def daemon(argv: list[str], log: Path) -> Iterator[subprocess.Popen[bytes]]:
    """Run ``argv`` in its own session; kill its whole process group on exit."""
    with log.open("wb") as out:
        proc = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        yield proc
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        with contextlib.suppress(ProcessLookupError):  # workers that outlived their master
            os.killpg(proc.pid, signal.SIGKILL)


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


def nginx_conf(tmp: Path, web: Nginx, cert: Path, key: Path) -> str:
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


def dnsmasq_argv(port: int) -> list[str]:
    """dnsmasq as an authoritative-looking server for ``*.test`` only: no upstream, no DHCP."""
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
        f"--host-record={DNS_NAME},{DNS_ADDRESS}",
        "--local=/test/",
        "--log-facility=-",
        *(["--user=root"] if os.geteuid() == 0 else []),
    ]


# --- kamailio ----------------------------------------------------------------------------------

#: The only URI the kamailio fixture answers 200 to; everything else gets 404.
SIP_LOGIN = "health@127.0.0.1"


def kamailio_conf(port: int) -> str:
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


def wait_udp_sip(port: int, proc: subprocess.Popen[bytes], log: Path) -> None:
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
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                pytest.fail(f"kamailio exited {proc.returncode}:\n{log.read_text()[-2000:]}")
            with contextlib.suppress(OSError):
                sock.send(probe)
                if sock.recv(4096).startswith(b"SIP/2.0"):
                    return
            time.sleep(0.05)
    pytest.fail(f"kamailio did not answer on udp {port}:\n{log.read_text()[-2000:]}")


# --- dead servers ------------------------------------------------------------------------------


@contextlib.contextmanager
def silent_listener(host: str) -> Iterator[int]:
    """A TCP port whose handshakes the kernel completes but which never reads or answers."""
    af = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(af, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        sock.listen(64)
        yield sock.getsockname()[1]


@contextlib.contextmanager
def black_hole(host: str) -> Iterator[int]:
    """A TCP port that drops SYNs: a listener whose accept queue is full, so connects hang."""
    af = socket.AF_INET6 if ":" in host else socket.AF_INET
    with contextlib.ExitStack() as stack:
        sock = stack.enter_context(socket.socket(af, socket.SOCK_STREAM))
        sock.bind((host, 0))
        sock.listen(0)
        port: int = sock.getsockname()[1]
        for _ in range(2):  # backlog 0 still queues one; two fill it
            filler = stack.enter_context(socket.socket(af, socket.SOCK_STREAM))
            filler.setblocking(False)
            filler.connect_ex((host, port))
        time.sleep(0.05)  # let the kernel queue the fillers' handshakes
        yield port


@contextlib.contextmanager
def silent_udp(host: str) -> Iterator[int]:
    """A UDP port that receives and never answers."""
    af = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(af, socket.SOCK_DGRAM) as sock:
        sock.bind((host, 0))
        yield sock.getsockname()[1]
