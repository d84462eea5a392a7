"""checktype=ping: ICMP echo over IPv4 and IPv6.

The silent and unreachable cases run the check inside a network namespace this test creates
(``unshare -n``), where echo requests are ignored by sysctl or loopback is down.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from ipaddress import ip_address

import pytest

from checks.types import PingSpec, Target
from tests.support.checkrun import run_check

ADDRESSES = pytest.mark.parametrize("address", ["127.0.0.1", "::1"])


@ADDRESSES
async def test_loopback_answers(address: str, no_leaks: None) -> None:
    target = Target(address=ip_address(address), port=0)
    result = await run_check(target, PingSpec(count=2, attempt_timeout=1), 3)
    assert (result.ok, result.reason) == (True, "echo reply (1 of 2)")


def in_new_netns(
    setup: str, address: str, count: int, prelude: str = "", timeout: float = 5
) -> str:
    """Run one ping check inside a fresh network namespace; returns ``ok|reason|elapsed|leaked``.

    The reason is ``timed out`` when the check ran into the caller's ``timeout``.
    """
    unshare = shutil.which("unshare")
    if os.geteuid() != 0 or unshare is None:
        message = "network namespaces need root and unshare (util-linux)"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    code = (
        "import asyncio, ipaddress, os, time, checks\n"
        "from checks.types import PingSpec, Target\n"
        f"{prelude}\n"
        f"t = Target(address=ipaddress.ip_address({address!r}), port=0)\n"
        "fds = len(os.listdir('/proc/self/fd'))\n"
        f"spec = PingSpec(count={count}, attempt_timeout=0.2)\n"
        "async def main():\n"
        f"    async with asyncio.timeout({timeout}):\n"
        "        return await checks.run(t, spec)\n"
        "started = time.monotonic()\n"
        "try:\n"
        "    r = asyncio.run(main())\n"
        "    ok, reason = r.ok, r.reason\n"
        "except TimeoutError:\n"
        "    ok, reason = False, 'timed out'\n"
        "elapsed = time.monotonic() - started\n"
        "leaked = len(os.listdir('/proc/self/fd')) - fds\n"
        "print(ok, reason, round(elapsed, 1), f'leaked {leaked}', sep='|')\n"
    )
    script = f'{setup}\nexec {sys.executable} -c "$0"'
    done = subprocess.run(
        [unshare, "-n", "sh", "-ec", script, code],
        capture_output=True,
        text=True,
        timeout=20,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


@ADDRESSES
def test_silent_host_is_down_after_count_attempts(address: str) -> None:
    setup = (
        "ip link set lo up\n"
        "sysctl -qw net.ipv4.icmp_echo_ignore_all=1\n"
        "sysctl -qw net.ipv6.icmp.echo_ignore_all=1\n"
    )
    ok, reason, elapsed, leaked = in_new_netns(setup, address, 3).split("|")
    assert (ok, reason, leaked) == ("False", "no reply to 3 echo requests", "leaked 0")
    assert 0.5 <= float(elapsed) <= 1.5
    # The caller's deadline cuts the attempts short, and the socket is closed all the same.
    ok, reason, elapsed, leaked = in_new_netns(setup, address, 10, timeout=0.3).split("|")
    assert (ok, reason, leaked) == ("False", "timed out", "leaked 0")
    assert float(elapsed) < 0.8


@pytest.mark.parametrize(
    ("address", "expected"),
    [("127.0.0.1", "network unreachable"), ("::1", "address not available")],
)
def test_unreachable_network_is_down_at_once(address: str, expected: str) -> None:
    ok, reason, elapsed, _ = in_new_netns(":", address, 3).split("|")  # lo stays down
    assert (ok, reason) == ("False", expected)
    assert float(elapsed) < 0.5


def test_checksum_matches_a_known_packet() -> None:
    from checks.ping import _checksum

    # RFC 1071 example words 0x0001 0xf203 0xf4f5 0xf6f7: one's-complement sum 0xddf2.
    assert _checksum(bytes.fromhex("0001f203f4f5f6f7")) == 0xFFFF - 0xDDF2


NO_RAW_SOCKETS = """
import socket, checks.ping
class NoRaw(socket.socket):
    def __init__(self, family=-1, type=-1, proto=-1, fileno=None):
        if type == socket.SOCK_RAW:
            raise PermissionError(1, "Operation not permitted")
        super().__init__(family, type, proto, fileno)
checks.ping.socket.socket = NoRaw
"""


@ADDRESSES
def test_datagram_icmp_socket_when_raw_is_not_allowed(address: str) -> None:
    setup = "ip link set lo up\nsysctl -qw net.ipv4.ping_group_range='0 2147483647'\n"
    result = in_new_netns(setup, address, 1, prelude=NO_RAW_SOCKETS)
    assert result.split("|")[:2] == ["True", "echo reply (1 of 1)"]
