"""``ldirector import``: the converted ldirectord.cf builds the same IPVS table keepalived does.

For each keepalived.conf below, Debian's keepalived runs as a checker only (``--check``, no
VRRP) in a network namespace this module creates, and its table is read with ``ipvsadm``;
then keepalived stops (it removes its services), the same file is converted, and ldirector's
engine runs the converted config on the netlink backend in the same namespace until its table
equals keepalived's. The reals are addresses on the namespace's loopback served by one small
HTTP server, so every check of either program passes; their number is what both must show.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from ldirector.config import Config, loads
from ldirector.config.keepalived import convert
from ldirector.engine import Engine
from ldirector.ipvs import toggles
from ldirector.ipvs.netlink import NetlinkBackend
from ldirector.state.owned import OwnedStore
from tests.support.servers import need

from .vmtools import HEALTH_SERVER, inside_netns, ipvsadm, ready_processes, sh

pytestmark = pytest.mark.kernel

NS = "lki-director"
REALS4 = [f"10.79.1.{n}" for n in (11, 12, 13, 14)]
REALS6 = ["fd79::11", "fd79::12"]
#: Generous under TCG emulation: keepalived starts in a few seconds, the engine in one.
WAIT = 60.0

GLOBAL = """\
global_defs {
    router_id lki
    script_user root
}
"""

CONFIGS = {
    # HTTP_GET and TCP_CHECK, DR, weights, thresholds, persistence with a mask, a sorry server.
    "web": """\
virtual_server 10.79.0.1 80 {
    delay_loop 1
    lvs_sched wrr
    lvs_method DR
    persistence_timeout 300
    persistence_granularity 255.255.255.0
    protocol TCP
    sorry_server 10.79.1.99 80
    real_server 10.79.1.11 80 {
        weight 3
        uthreshold 200
        lthreshold 20
        HTTP_GET {
            url {
                path /health
            }
            connect_timeout 2
            retry 1
        }
    }
    real_server 10.79.1.12 80 {
        weight 1
        HTTP_GET {
            url {
                path /health
            }
            connect_timeout 2
            retry 1
        }
    }
}
virtual_server 10.79.0.1 443 {
    delay_loop 1
    lvs_sched lc
    lvs_method NAT
    persistence_timeout
    protocol TCP
    inhibit_on_failure
    real_server 10.79.1.13 8443 {
        TCP_CHECK {
            connect_port 80
            connect_timeout 2
        }
    }
}
""",
    # UDP with one-packet scheduling, MISC_CHECK, keepalived's default protocol (UDP),
    # scheduler (wlc) and forwarding method (NAT), scheduler flags, and a real with no checker.
    "udp-misc-defaults": """\
virtual_server 10.79.0.2 53 {
    delay_loop 1
    lvs_sched rr
    protocol UDP
    ops
    real_server 10.79.1.11 53 {
        MISC_CHECK {
            misc_path /bin/true
        }
    }
    real_server 10.79.1.12 53 {
        MISC_CHECK {
            misc_path /bin/true
        }
    }
}
virtual_server 10.79.0.3 8080 {
    delay_loop 1
    real_server 10.79.1.14 8080 {
        weight 7
    }
}
virtual_server 10.79.0.4 80 {
    delay_loop 1
    lvs_sched sh
    sh-port
    sh-fallback
    protocol TCP
    real_server 10.79.1.11 80 {
        weight 2
    }
    real_server 10.79.1.12 80 {
        weight 5
    }
}
""",
    # A group of VIPs (a range and a mark), tunnels, an IPv6 service and an IPv6 mark.
    "group-fwmark-ipv6": """\
virtual_server_group pool {
    10.79.0.10-12 80
    fwmark 5
}
virtual_server group pool {
    delay_loop 1
    lvs_sched wlc
    lvs_method TUN
    protocol TCP
    real_server 10.79.1.11 80 {
        weight 4
        TCP_CHECK {
            connect_timeout 2
        }
    }
    real_server 10.79.1.12 80 {
        TCP_CHECK {
            connect_timeout 2
        }
    }
}
virtual_server fd79::1 80 {
    delay_loop 1
    lvs_sched rr
    protocol TCP
    real_server fd79::11 8080 {
        MISC_CHECK {
            misc_path /bin/true
        }
    }
    real_server fd79::12 8080 {
        weight 9
    }
}
virtual_server fwmark 6 {
    delay_loop 1
    ip_family inet6
    lvs_method DR
    persistence_timeout 60
    real_server fd79::11 {
        weight 2
    }
}
""",
}


@pytest.fixture(scope="module")
def namespace(vm: None, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """The namespace with the reals on its loopback and their HTTP server; this test's thread
    is in it for the module. Yields a directory for the flag files the server reads."""
    flags = tmp_path_factory.mktemp("flags")
    subprocess.run(["ip", "netns", "del", NS], capture_output=True, check=False)
    sh("ip", "netns", "add", NS)
    try:
        with inside_netns(NS):
            sh("ip", "link", "set", "lo", "up")
            for address in REALS4:
                sh("ip", "addr", "add", f"{address}/32", "dev", "lo")
            for address in REALS6:
                sh("ip", "addr", "add", f"{address}/128", "dev", "lo", "nodad")
            with ready_processes([[sys.executable, "-c", HEALTH_SERVER, "real", str(flags)]]):
                yield flags
    finally:
        subprocess.run(["ip", "netns", "del", NS], capture_output=True, check=False)


def table() -> dict[str, list[str]]:
    """The namespace's IPVS table as ipvsadm lists it: service line -> sorted destinations.

    A destination is its address, forwarding method, weight and connection thresholds (the
    ``--thresholds`` listing shows those instead of the method and weight); the connection
    counters and the kernel's listing order are left out.
    """
    plain, limits = _listing(), _listing("--thresholds")
    # A table changing between the two listings shows "? ?": the next look sees it settled.
    return {
        service: sorted(
            f"{dest} {' '.join(rest)} {' '.join(limits.get(service, {}).get(dest, ['?', '?']))}"
            for dest, rest in dests.items()
        )
        for service, dests in sorted(plain.items())
    }


def _listing(*options: str) -> dict[str, dict[str, list[str]]]:
    """Service line -> destination address -> the two columns after it."""
    found: dict[str, dict[str, list[str]]] = {}
    current: dict[str, list[str]] | None = None
    for line in ipvsadm("-Ln", *options).splitlines()[3:]:
        words = line.split()
        if words[:1] == ["->"] and current is not None:
            current[words[1]] = words[2:4]
        elif words:
            current = found.setdefault(" ".join(words), {})
    return found


def destinations(config: Config) -> int:
    return sum(len(v.reals) for v in config.virtuals)


def settled(want: int) -> dict[str, list[str]]:
    """The table once it holds ``want`` destinations and stays so for a second."""
    deadline = time.monotonic() + WAIT
    last: dict[str, list[str]] | None = None
    while time.monotonic() < deadline:
        now = table()
        if sum(len(d) for d in now.values()) == want and now == last:
            return now
        last = now
        time.sleep(1)
    raise AssertionError(f"the table never settled with {want} destinations: {last}")


@contextlib.contextmanager
def keepalived(conf: Path) -> Iterator[None]:
    """keepalived's checker process on ``conf``, stopped (and its services gone) at the end."""
    run = conf.parent
    log = (run / "keepalived.log").open("wb")
    process = subprocess.Popen(
        [
            need("keepalived"),
            "--check",
            "--dont-fork",
            "--log-console",
            "--log-detail",
            "-f",
            str(conf),
            "-p",
            str(run / "keepalived.pid"),
            "-c",
            str(run / "checkers.pid"),
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        yield
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)
        log.close()
        ipvsadm("-C")


async def ldirector_table(
    config: Config, state: Path, want: dict[str, list[str]]
) -> dict[str, list[str]]:
    """ldirector's table for ``config``, once it equals ``want`` (or the wait runs out)."""
    backend = NetlinkBackend()
    engine = Engine(config, backend, owned=OwnedStore(state / "owned"), sysctls=toggles.apply)
    await engine.start()
    try:
        deadline = time.monotonic() + WAIT
        got = await asyncio.to_thread(table)
        while got != want and time.monotonic() < deadline:
            await asyncio.sleep(0.5)
            got = await asyncio.to_thread(table)
        return got
    finally:
        await engine.shutdown()
        await backend.close()
        ipvsadm("-C")


@pytest.mark.parametrize("name", sorted(CONFIGS))
async def test_the_converted_config_builds_keepalived_s_table(
    namespace: Path, tmp_path: Path, name: str
) -> None:
    text = GLOBAL + CONFIGS[name]
    conf = tmp_path / "keepalived.conf"
    conf.write_text(text)
    converted, diagnostics = convert(text, str(conf))
    assert not [d for d in diagnostics if "fails check" in d.message], diagnostics
    config = loads(converted, "converted.cf")
    ipvsadm("-C")

    with keepalived(conf):
        theirs = await asyncio.to_thread(settled, destinations(config))
    log = (tmp_path / "keepalived.log").read_text(errors="replace")
    assert theirs, f"keepalived built no table:\n{log[-3000:]}"
    assert table() == {}, "keepalived left its services behind"

    ours = await ldirector_table(config, tmp_path, theirs)
    assert ours == theirs, f"converted:\n{converted}\nkeepalived's log:\n{log[-2000:]}"
