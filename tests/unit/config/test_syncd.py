"""syncd: the sync-daemon directives, their ranges and their FILE:LINE diagnostics."""

from __future__ import annotations

from ipaddress import IPv4Address, IPv6Address
from pathlib import Path

import pytest

from ldirector.config import Config, ConfigError, loads
from ldirector.config import load as load_path
from ldirector.config.render import config_json
from ldirector.config.syncd import interface_exists
from ldirector.ipvs.sync import DaemonState, SyncDaemon
from tests.unit.config.cfgtools import HOSTNAME, all_drivers, fake_resolver

INTERFACES = {"eth0", "eth1", "sync0"}


def load(text: str) -> Config:
    return loads(
        text,
        "pair.cf",
        resolver=fake_resolver,
        host=HOSTNAME,
        have_driver=all_drivers,
        has_interface=INTERFACES.__contains__,
    )


def errors(text: str) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        load(text)
    return [str(d) for d in caught.value.errors]


def test_both_starts_a_master_and_a_backup_with_the_kernel_defaults() -> None:
    config = load("syncdaemon = both eth1\n")
    assert config.syncdaemons == (
        SyncDaemon(state=DaemonState.MASTER, interface="eth1"),
        SyncDaemon(state=DaemonState.BACKUP, interface="eth1"),
    )


def test_every_setting_reaches_every_daemon() -> None:
    config = load(
        "syncdaemon = master eth0\nsyncdaemon = backup sync0\nsyncid = 7\nsyncmaxlen = 1400\n"
        "syncgroup = 239.1.2.3\nsyncport = 9000\nsyncttl = 3\n"
    )
    tuned = {"syncid": 7, "maxlen": 1400, "group": IPv4Address("239.1.2.3"), "port": 9000}
    assert config.syncdaemons == (
        SyncDaemon(state=DaemonState.MASTER, interface="eth0", ttl=3, **tuned),  # type: ignore[arg-type]
        SyncDaemon(state=DaemonState.BACKUP, interface="sync0", ttl=3, **tuned),  # type: ignore[arg-type]
    )
    assert config_json(config)["syncdaemons"] == [
        {
            "state": "master",
            "interface": "eth0",
            "syncid": 7,
            "maxlen": 1400,
            "group": "239.1.2.3",
            "port": 9000,
            "ttl": 3,
        },
        {
            "state": "backup",
            "interface": "sync0",
            "syncid": 7,
            "maxlen": 1400,
            "group": "239.1.2.3",
            "port": 9000,
            "ttl": 3,
        },
    ]


def test_an_ipv6_group_is_accepted() -> None:
    (daemon,) = load("syncdaemon = backup eth0\nsyncgroup = ff02::8848\n").syncdaemons
    assert daemon.group == IPv6Address("ff02::8848")


def test_no_syncdaemon_means_no_daemons() -> None:
    assert load("checktimeout = 3\n").syncdaemons == ()


def test_tuning_without_a_daemon_is_a_warning_at_its_line() -> None:
    config = load("checktimeout = 3\nsyncid = 4\n")
    assert [str(d) for d in config.warnings] == [
        "pair.cf:2: warning: sync daemon settings have no effect without a syncdaemon directive"
    ]


def test_an_unknown_interface_is_an_error_at_the_directive_line() -> None:
    assert errors("checktimeout = 3\nsyncdaemon = both eth9\n") == [
        "pair.cf:2: error: syncdaemon: no network interface 'eth9' on this host"
    ]


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("syncdaemon = eth0", "invalid syncdaemon 'eth0': expected master|backup|both INTERFACE"),
        (
            "syncdaemon = primary eth0",
            "invalid syncdaemon 'primary eth0': expected master|backup|both INTERFACE",
        ),
        (
            "syncdaemon = master eth0 eth1",
            "invalid syncdaemon 'master eth0 eth1': expected master|backup|both INTERFACE",
        ),
        (
            "syncdaemon = master a-very-long-interface",
            "invalid syncdaemon interface 'a-very-long-interface': "
            "a network interface name of at most 15 bytes",
        ),
        ("syncid = 256", "invalid syncid '256': expected a number 0..255"),
        ("syncid = -1", "invalid syncid '-1': expected a number 0..255"),
        ("syncid = seven", "invalid syncid 'seven': expected a number 0..255"),
        ("syncmaxlen = 0", "invalid syncmaxlen '0': expected a number 1..65535"),
        ("syncmaxlen = 65536", "invalid syncmaxlen '65536': expected a number 1..65535"),
        ("syncport = 0", "invalid syncport '0': expected a number 1..65535"),
        ("syncttl = 0", "invalid syncttl '0': expected a number 1..255"),
        ("syncttl = 256", "invalid syncttl '256': expected a number 1..255"),
        (
            "syncgroup = 10.0.0.1",
            "invalid syncgroup '10.0.0.1': expected an IPv4 or IPv6 multicast address",
        ),
        (
            "syncgroup = 2001:db8::1",
            "invalid syncgroup '2001:db8::1': expected an IPv4 or IPv6 multicast address",
        ),
        (
            "syncgroup = sync.example",
            "invalid syncgroup 'sync.example': expected an IPv4 or IPv6 multicast address",
        ),
    ],
)
def test_invalid_values_are_one_line_errors_at_their_line(line: str, message: str) -> None:
    assert errors(f"syncdaemon = both eth0\n{line}\n") == [f"pair.cf:2: error: {message}"]


def test_a_role_configured_twice_is_an_error_naming_the_first_line() -> None:
    assert errors("syncdaemon = master eth0\nsyncdaemon = both eth1\n") == [
        "pair.cf:2: error: master sync daemon already configured at line 1"
    ]


def test_sync_directives_are_global_only() -> None:
    found = errors("virtual = 10.0.0.1:80\n\tsyncdaemon = both eth0\n")
    assert found == ["pair.cf:2: error: syncdaemon is only valid in the global section"]


def test_the_production_lookup_knows_loopback_and_refuses_a_missing_name() -> None:
    assert interface_exists("lo")
    assert not interface_exists("nosuchif0")


def test_the_pair_example_runs_both_daemons_with_the_sync_tuning() -> None:
    example = Path(__file__).resolve().parents[3] / "examples" / "pair.cf"
    config = load_file(example)
    assert [(d.state, d.interface, d.syncid) for d in config.syncdaemons] == [
        (DaemonState.MASTER, "eth0", 20),
        (DaemonState.BACKUP, "eth0", 20),
    ]
    assert dict(config.sysctls) == {
        "sync_period": 50,
        "sync_persist_mode": 1,
        "sync_threshold": 3,
        "sync_version": 1,
    }
    assert not config.warnings


def load_file(path: Path) -> Config:
    return load_path(
        path,
        resolver=fake_resolver,
        host=HOSTNAME,
        have_driver=all_drivers,
        has_interface={"eth0"}.__contains__,
    )
