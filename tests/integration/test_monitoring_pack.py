"""contrib/prometheus and contrib/grafana: the alert rules checked and unit-tested by promtool,
the dashboard's structure, every PromQL expression in it parsed by promtool, and every metric
the rules and the dashboard name rendered by ldirector's /metrics.

promtool comes with Debian's ``prometheus`` package (tests/deps/monitoring.apt); without it the
tests that need it skip, except under ``CI=true`` where they fail."""

from __future__ import annotations

import dataclasses
import json
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from ldirector.observe.exposition import Format
from ldirector.observe.metrics import exposition
from tests.support.observe_world import snapshot
from tests.support.sandbox import REPO
from tests.support.servers import need

RULES = REPO / "contrib" / "prometheus" / "ldirector.rules.yml"
RULE_TESTS = REPO / "contrib" / "prometheus" / "ldirector.rules.test.yml"
DASHBOARD = REPO / "contrib" / "grafana" / "ldirector.json"

#: What Grafana puts in place of its variables before a query reaches Prometheus.
GRAFANA_VARIABLES = {
    "$__rate_interval": "5m",
    "$__interval": "1m",
    "$__range": "1h",
    "$instance": ".*",
    "$virtual": ".*",
}
METRIC = re.compile(r"\b(?:ldirector|process)_[a-z_]+\b")


def promtool(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [need("promtool"), *args], capture_output=True, text=True, timeout=120, check=False
    )


def rendered_names() -> set[str]:
    """Every sample name /metrics renders, for a snapshot with a reload and a held real."""
    snap = snapshot()
    snap.counters.last_reload, snap.counters.last_reload_ok = 1.0, True
    first = snap.virtuals[0]
    held = dataclasses.replace(first.reals[1], manual="disabled")
    snap = dataclasses.replace(
        snap,
        virtuals=(dataclasses.replace(first, reals=(first.reals[0], held)), *snap.virtuals[1:]),
    )
    text = exposition(snap, Format.TEXT).decode()
    return {s.name for f in text_string_to_metric_families(text) for s in f.samples}


def dashboard() -> dict[str, Any]:
    doc: dict[str, Any] = json.loads(DASHBOARD.read_text())
    return doc


def panels(doc: dict[str, Any]) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    for panel in doc["panels"]:
        found.append(panel)
        found.extend(panel.get("panels", []))  # a collapsed row holds its panels
    return found


def grafana_exprs(doc: dict[str, Any]) -> list[str]:
    exprs = []
    for panel in panels(doc):
        for target in panel.get("targets", []):
            expr = target["expr"]
            for variable, value in GRAFANA_VARIABLES.items():
                expr = expr.replace(variable, value)
            exprs.append(expr)
    return exprs


# --- alert rules -------------------------------------------------------------------------------


def test_rules_are_valid() -> None:
    done = promtool("check", "rules", str(RULES))
    assert done.returncode == 0, done.stdout + done.stderr


def test_promtool_rule_tests_pass() -> None:
    done = promtool("test", "rules", str(RULE_TESTS))
    assert done.returncode == 0, done.stdout + done.stderr
    assert "SUCCESS" in done.stdout


def test_every_alert_has_a_rule_test() -> None:
    alerts = set(re.findall(r"^\s*- alert: (\w+)$", RULES.read_text(), re.M))
    tested = set(re.findall(r"^\s*alertname: (\w+)$", RULE_TESTS.read_text(), re.M))
    assert alerts == tested
    assert {
        "LdirectorDown",
        "LdirectorAbsent",
        "LdirectorRealDown",
        "LdirectorVirtualWithoutReals",
        "LdirectorVirtualOnFallback",
        "LdirectorKernelOutOfSync",
        "LdirectorEventLoopStalled",
        "LdirectorReloadFailed",
    } <= alerts


def test_rules_name_only_metrics_ldirector_renders() -> None:
    used = set(METRIC.findall(RULES.read_text()))
    assert used and used <= rendered_names(), used - rendered_names()


# --- the dashboard -----------------------------------------------------------------------------


def test_dashboard_structure() -> None:
    doc = dashboard()
    assert isinstance(doc["schemaVersion"], int) and doc["schemaVersion"] >= 36
    assert doc["title"] and doc["uid"]
    ids = [p["id"] for p in panels(doc)]
    assert len(ids) == len(set(ids)), "panel ids must be unique"
    variables = {v["name"]: v for v in doc["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource"
    assert variables["datasource"]["query"] == "prometheus"
    graphs = [p for p in panels(doc) if p["type"] != "row"]
    assert len(graphs) >= 10
    for panel in graphs:
        where = f"panel {panel['id']} ({panel['title']})"
        assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}, where
        assert panel["targets"], where
        for target in panel["targets"]:
            assert target.get("datasource", panel["datasource"]) == panel["datasource"], where
            assert target["expr"].strip(), where
        box = panel["gridPos"]
        assert box["x"] + box["w"] <= 24 and box["w"] > 0 and box["h"] > 0, where


def test_dashboard_exprs_parse(tmp_path: Path) -> None:
    # promtool has no command that parses a lone expression; a recording rule per expression
    # makes `check rules` parse each. JSON is YAML, so the file needs no YAML writer.
    rules = [
        {"record": f"dashboard:expr_{n}", "expr": expr}
        for n, expr in enumerate(grafana_exprs(dashboard()))
    ]
    path = tmp_path / "dashboard.rules.yml"
    path.write_text(json.dumps({"groups": [{"name": "dashboard", "rules": rules}]}))
    done = promtool("check", "rules", str(path))
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"SUCCESS: {len(rules)} rules found" in done.stdout


def test_dashboard_names_only_metrics_ldirector_renders() -> None:
    used = set(METRIC.findall(DASHBOARD.read_text()))
    assert len(used) >= 10 and used <= rendered_names(), used - rendered_names()


@pytest.mark.parametrize("path", [RULES, RULE_TESTS, DASHBOARD])
def test_packaged_as_examples(path: Path) -> None:
    shipped = (REPO / "debian" / "ldirector.examples").read_text().split()
    assert str(path.parent.relative_to(REPO)) in shipped
