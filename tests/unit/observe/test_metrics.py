"""/metrics: both formats read back by prometheus-client's parsers (and ``promtool check
metrics`` for the text format), the figures operators alert on, and content negotiation over
HTTP."""

from __future__ import annotations

import dataclasses
import os
import shutil
import subprocess

import aiohttp
import pytest

import ldirector
from ldirector.core.divergence import Report
from ldirector.core.health import RealHealth, Status
from ldirector.observe.exposition import Format
from ldirector.observe.metrics import exposition
from ldirector.observe.snapshot import Snapshot, build
from ldirector.observe.syncd import SyncDaemonStatus, SyncStatus
from tests.support.fake_daemon import FakeDaemon, serving
from tests.support.observe_world import R2, R3, config, dest, snapshot, table
from tests.support.promtext import openmetrics_families, samples, value

WEB80 = "tcp:127.0.0.100:80"

FALLBACK = """\
virtual=127.0.0.100:80
	real=127.0.0.2:8080 masq
	real=127.0.0.3:8080 masq
	fallback=127.0.0.9:8080 masq
	service=http
"""


def odd_snapshot() -> Snapshot:
    """Every optional part present (a hold, a reload, a shadow report, a sync daemon), and a
    name that needs escaping."""
    snap = snapshot()
    v = snap.virtuals[0]
    odd = dataclasses.replace(v.reals[0], real='127.0.0.2:8080 "quoted" \\ back\nline')
    held = dataclasses.replace(v.reals[1], manual="draining")
    snap.counters.last_reload, snap.counters.last_reload_ok = 1_700_000_050.0, True
    return dataclasses.replace(
        snap,
        virtuals=(dataclasses.replace(v, reals=(odd, held)), *snap.virtuals[1:]),
        shadow=Report(
            now=1.0,
            agrees=False,
            agreement_seconds=5.0,
            divergence_seconds=2.5,
            disagreements=1,
            timings=2,
            items=(),
            episodes=(),
        ),
        sync=SyncStatus(
            daemons=(SyncDaemonStatus(state="master", configured=True, running=True),),
            starts=1,
        ),
    )


@pytest.mark.parametrize("fmt", list(Format))
def test_both_formats_parse_with_the_same_figures(fmt: Format) -> None:
    text = exposition(odd_snapshot(), fmt).decode()
    found = samples(text, fmt)
    assert value(found, "ldirector_real_up", virtual=WEB80, real="127.0.0.3:8080") == 0
    assert value(found, "ldirector_real_manual", real="127.0.0.3:8080", state="draining") == 1
    assert value(found, "ldirector_real_connections_total") == 12
    assert value(found, "ldirector_check_failures_total", real="127.0.0.3:8080") == 1
    assert value(found, "ldirector_check_duration_seconds_count", virtual=WEB80) == 4
    assert value(found, "ldirector_last_reload_success") == 1
    assert value(found, "ldirector_reconciles_total") == 4
    assert value(found, "ldirector_shadow_divergence_seconds_total") == 2.5
    assert value(found, "ldirector_sync_daemon_running", state="master") == 1
    (odd,) = [s.labels["real"] for s in found["ldirector_real_weight"]]
    assert odd.startswith('127.0.0.2:8080 "quoted" \\ back') and "\n" not in odd
    assert text.endswith("# EOF\n") == (fmt is Format.OPENMETRICS)


def test_openmetrics_names_counter_and_info_families_without_their_suffix() -> None:
    text = exposition(snapshot(), Format.OPENMETRICS).decode()
    assert "# TYPE ldirector_check_failures counter\n" in text
    assert "# TYPE ldirector_build info\n" in text
    assert "# TYPE process_cpu_seconds counter\n" in text
    families = {f.name: f.type for f in openmetrics_families(text)}
    assert families["ldirector_real_connections"] == "counter"
    assert families["ldirector_build"] == "info"
    assert families["ldirector_check_duration_seconds"] == "histogram"
    plain = exposition(snapshot()).decode()
    assert "# TYPE ldirector_check_failures_total counter\n" in plain
    assert "# TYPE ldirector_build_info gauge\n" in plain and "# EOF" not in plain


def test_build_info_and_process_figures() -> None:
    found = samples(exposition(snapshot()).decode())
    (info,) = found["ldirector_build_info"]
    assert info.value == 1 and info.labels["version"] == ldirector.__version__
    assert info.labels["python"].startswith("3.")
    assert value(found, "process_cpu_seconds_total") > 0
    assert value(found, "process_resident_memory_bytes") > 1_000_000
    assert value(found, "process_open_fds") >= 3
    assert value(found, "process_start_time_seconds") > 1_600_000_000


def test_per_real_figures_are_the_alerting_ones_and_durations_are_per_virtual() -> None:
    found = samples(exposition(snapshot()).decode())
    per_real = {n for n, ss in found.items() if any("real" in s.labels for s in ss)}
    assert per_real == {
        "ldirector_real_up",
        "ldirector_real_weight",
        "ldirector_real_desired_weight",
        "ldirector_real_configured_weight",
        "ldirector_real_active_connections",
        "ldirector_real_inactive_connections",
        "ldirector_real_connections_total",
        "ldirector_real_bytes_total",
        "ldirector_checks_total",
        "ldirector_check_failures_total",
    }
    buckets = found["ldirector_check_duration_seconds_bucket"]
    assert {s.labels["virtual"] for s in buckets} == {WEB80}  # fwm:7's check counts nothing
    assert [s.value for s in buckets][:3] == [1, 1, 2]


def test_virtual_in_service_count_and_fallback() -> None:
    cfg = config(FALLBACK)
    down = {R2: RealHealth(status=Status.DOWN), R3: RealHealth(status=Status.DOWN)}
    on_fallback = table(dest(9, 1))
    snap = build(cfg, down, actual=on_fallback, desired=on_fallback, started=0.0, now=1.0)
    found = samples(exposition(snap).decode())
    assert value(found, "ldirector_virtual_reals_in_service", virtual=WEB80) == 0
    assert value(found, "ldirector_virtual_fallback_active", virtual=WEB80) == 1
    up = {R2: RealHealth(status=Status.UP), R3: RealHealth(status=Status.DOWN)}
    serving_one = table(dest(2, 1), dest(3, 0))
    snap = build(cfg, up, actual=serving_one, desired=serving_one, started=0.0, now=1.0)
    found = samples(exposition(snap).decode())
    assert value(found, "ldirector_virtual_reals_in_service", virtual=WEB80) == 1
    assert value(found, "ldirector_virtual_fallback_active", virtual=WEB80) == 0


def test_promtool_accepts_the_text_format() -> None:
    promtool = shutil.which("promtool")
    if promtool is None:
        if os.environ.get("CI") == "true":
            pytest.fail("CI=true and promtool is not installed (tests/deps/monitoring.apt)")
        pytest.skip("promtool is not installed (tests/deps/monitoring.apt)")
    # promtool reads the text format only; the OpenMetrics output is checked by the parser.
    for snap in (snapshot(), odd_snapshot()):
        done = subprocess.run(
            [promtool, "check", "metrics"],
            input=exposition(snap),
            capture_output=True,
            timeout=60,
            check=False,
        )
        assert done.returncode == 0, done.stdout.decode() + done.stderr.decode()


@pytest.mark.parametrize(
    ("accept", "wanted"),
    [
        (None, Format.TEXT),
        ("text/plain;version=0.0.4;q=0.5,*/*;q=0.1", Format.TEXT),
        # What Prometheus 2.x sends.
        (
            "application/openmetrics-text;version=1.0.0,application/openmetrics-text;"
            "version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1",
            Format.OPENMETRICS,
        ),
        ("application/openmetrics-text; version=1.0.0; charset=utf-8", Format.OPENMETRICS),
        ("application/openmetrics-text;q=0", Format.TEXT),
        ("application/openmetrics-text;q=0.2, text/plain", Format.TEXT),
    ],
)
async def test_http_content_negotiation(accept: str | None, wanted: Format) -> None:
    headers = {"Accept": accept} if accept is not None else {}
    # aiohttp sends "Accept: */*" when told nothing; skip_auto_headers leaves it out.
    async with (
        serving(FakeDaemon()) as url,
        aiohttp.ClientSession(skip_auto_headers=["Accept"]) as session,
        session.get(f"{url}/metrics", headers=headers) as resp,
    ):
        assert resp.status == 200
        assert resp.headers["Content-Type"] == wanted.content_type
        text = await resp.text()
    assert "ldirector_real_up" in samples(text, wanted)
