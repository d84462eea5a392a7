"""The shadow's report on the status snapshot: JSON both ways, ``status -v``, ``/metrics``."""

from __future__ import annotations

import json
from dataclasses import replace

from prometheus_client.parser import text_string_to_metric_families

from ldirector.core.divergence import Report, Tracker, Verdict
from ldirector.observe.metrics import exposition
from ldirector.observe.render import from_json, render_text, to_json
from tests.support.observe_world import snapshot

REAL = "tcp:127.0.0.100:80 127.0.0.3:8080"
CAUSE = "kernel holds 127.0.0.3:8080 at weight 1; ldirector: down since 12:03:04, refused"


def report() -> Report:
    t = Tracker(started=1_700_000_000.0)
    t.update([Verdict(REAL, True, "", 10)], 1_700_000_000.0)
    t.update([Verdict(REAL, False, CAUSE, 10)], 1_700_000_010.0)
    t.update([Verdict(REAL, True, "", 10)], 1_700_000_015.0)
    t.update([Verdict(REAL, False, "kernel does not hold it\x1b[2J", 10)], 1_700_000_020.0)
    return t.report(1_700_000_060.0)


def test_report_goes_through_json_and_back() -> None:
    snap = replace(snapshot(), shadow=report(), no_kernel=None)
    doc = json.loads(json.dumps(to_json(snap)))
    assert doc["shadow"]["agreement_seconds"] == 15
    assert doc["shadow"]["divergence_seconds"] == 45
    assert [e["kind"] for e in doc["shadow"]["episodes"]] == ["timing", "disagreement"]
    assert from_json(doc).shadow == snap.shadow


def test_status_text_tells_each_episode_and_cause_made_inert() -> None:
    text = render_text(replace(snapshot(), shadow=report()))
    assert "shadow: KERNEL DIFFERS from ldirector; in agreement 15 s, in divergence 45 s" in text
    assert CAUSE in text and "timing" in text and "disagreement" in text
    assert "\x1b" not in text


def test_a_live_snapshot_has_no_shadow_section() -> None:
    snap = snapshot()
    assert "shadow" not in to_json(snap) and "shadow:" not in render_text(snap)


def test_metrics_carry_the_totals() -> None:
    text = exposition(replace(snapshot(), shadow=report())).decode()
    values = {
        s.name: s.value
        for f in text_string_to_metric_families(text)
        for s in f.samples
        if s.name.startswith("ldirector_shadow")
    }
    assert values == {
        "ldirector_shadow_agrees": 0.0,
        "ldirector_shadow_agreement_seconds_total": 15.0,
        "ldirector_shadow_divergence_seconds_total": 45.0,
        "ldirector_shadow_disagreements_total": 1.0,
        "ldirector_shadow_timing_episodes_total": 1.0,
    }
