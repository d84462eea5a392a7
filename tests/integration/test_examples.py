"""examples/: every config loads with `ldirector check`, warning-free, and together they cover the
setups operators run (the forwarding methods, firewall marks with persistence, IPv6, UDP DNS,
HTTPS with a virtual host, an SQL service)."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.support.sandbox import REPO

EXAMPLES = REPO / "examples"
CONFIGS = sorted(EXAMPLES.glob("*.cf"))
#: Services whose check needs an optional driver: without it `check` reports an error at the
#: service= line, so such an example is only loadable where the driver is installed.
DRIVERS = {"pgsql": "asyncpg", "mysql": "aiomysql", "oracle": "oracledb", "radius": "pyrad"}


def check(path: Path, *flags: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "ldirector", "check", *flags, str(path)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        cwd=REPO,
    )


def model(path: Path) -> dict[str, Any]:
    done = check(path, "--json")
    assert done.returncode == 0, done.stderr
    document: dict[str, Any] = json.loads(done.stdout)
    return document


def services(path: Path) -> set[str]:
    return {str(v["check"]["service"]) for v in model(path)["virtuals"]}


def needs_missing_driver(path: Path) -> str | None:
    text = path.read_text()
    for service, driver in DRIVERS.items():
        if f"service = {service}" in text and importlib.util.find_spec(driver) is None:
            return driver
    return None


def test_examples_are_there() -> None:
    names = {p.name for p in CONFIGS}
    assert {
        "ldirectord.cf",
        "nat.cf",
        "direct-routing.cf",
        "tunnelling.cf",
        "firewall-mark.cf",
        "ipv6.cf",
        "dns-udp.cf",
        "https-virtualhost.cf",
        "sql.cf",
    } <= names


@pytest.mark.parametrize("path", CONFIGS, ids=[p.name for p in CONFIGS])
def test_example_loads_without_warnings(path: Path) -> None:
    missing = needs_missing_driver(path)
    if missing is not None:
        pytest.skip(f"{missing} is not installed")
    done = check(path)
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""
    assert done.stdout.startswith(f"{path}: OK: ")


def forwards(path: Path) -> set[str]:
    return {str(r["forward"]) for v in model(path)["virtuals"] for r in v["reals"]}


def test_each_forwarding_method_has_its_example() -> None:
    assert forwards(EXAMPLES / "nat.cf") == {"masq"}
    assert forwards(EXAMPLES / "direct-routing.cf") == {"gate"}
    assert forwards(EXAMPLES / "tunnelling.cf") == {"ipip"}


def test_firewall_mark_example_handles_the_persistence_trap(tmp_path: Path) -> None:
    doc = model(EXAMPLES / "firewall-mark.cf")
    (virtual,) = doc["virtuals"]
    assert virtual["protocol"] == "fwm" and virtual["persistent"] > 0 and virtual["quiescent"]
    assert doc["ipvs_sysctls"] == {"expire_quiescent_template": 1}
    # The toggle is what keeps `check` quiet: without it the trap is reported.
    text = (EXAMPLES / "firewall-mark.cf").read_text()
    trapped = tmp_path / "trapped.cf"
    trapped.write_text(
        "\n".join(ln for ln in text.splitlines() if not ln.startswith("expire_quiescent_template"))
    )
    done = check(trapped)
    assert done.returncode == 0
    assert "set expire_quiescent_template = yes" in done.stderr


def test_ipv6_udp_https_and_sql_examples() -> None:
    (v6,) = model(EXAMPLES / "ipv6.cf")["virtuals"]
    assert v6["family"] == 6 and v6["netmask"] is not None
    dns = model(EXAMPLES / "dns-udp.cf")["virtuals"]
    assert {(v["protocol"], v["check"]["service"]) for v in dns} >= {("udp", "dns")}
    (https,) = model(EXAMPLES / "https-virtualhost.cf")["virtuals"]
    assert https["check"]["service"] == "https" and https["check"]["virtualhost"]
    sql = EXAMPLES / "sql.cf"
    if needs_missing_driver(sql) is None:
        assert services(sql) & {"pgsql", "mysql", "oracle"}
