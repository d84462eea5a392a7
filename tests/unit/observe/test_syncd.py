"""syncd: the sync daemons in status -v, the status document and /metrics."""

from __future__ import annotations

from prometheus_client.parser import text_string_to_metric_families

from ldirector.observe import render
from ldirector.observe.metrics import exposition
from ldirector.observe.snapshot import Counters, Snapshot
from ldirector.observe.syncd import SyncDaemonStatus, SyncStatus, describe, render_lines

OURS = SyncDaemonStatus(
    state="master",
    interface="eth1",
    syncid=7,
    configured=True,
    running=True,
    ours=True,
    matches=True,
)
FOREIGN = SyncDaemonStatus(
    state="backup",
    interface="eth2",
    syncid=3,
    configured=True,
    running=True,
    ours=False,
)
STATUS = SyncStatus(daemons=(OURS, FOREIGN), starts=2, stops=1, repairs=1, errors=1, error="x")


def snapshot(sync: SyncStatus | None) -> Snapshot:
    return Snapshot(
        generated=2.0, started=1.0, config="pair.cf", virtuals=(), counters=Counters(), sync=sync
    )


def test_each_state_reads_as_a_few_words() -> None:
    assert describe(OURS) == "sync master on eth1 syncid 7: running"
    assert describe(FOREIGN) == (
        "sync backup on eth2 syncid 3: running, NOT started by ldirector (left alone)"
    )
    stopped = SyncDaemonStatus(state="backup", interface="eth1", syncid=7, configured=True)
    assert describe(stopped) == "sync backup on eth1 syncid 7: NOT RUNNING"
    changed = SyncDaemonStatus(
        state="master", interface="eth1", syncid=7, configured=True, running=True, ours=True
    )
    assert describe(changed) == "sync master on eth1 syncid 7: running, DIFFERS from config"


def test_an_interface_name_from_the_kernel_is_made_inert() -> None:
    hostile = SyncDaemonStatus(state="master", interface="e\x1b[2Jx", running=True, ours=True)
    assert "\x1b" not in describe(hostile)


def test_status_text_ends_with_the_sync_block_and_the_last_error() -> None:
    text = render.render_text(snapshot(STATUS))
    assert text.splitlines()[-3:] == [
        "sync master on eth1 syncid 7: running",
        "sync backup on eth2 syncid 3: running, NOT started by ldirector (left alone)",
        "sync daemon error: x",
    ]
    assert render_lines(SyncStatus()) == []


def test_the_document_round_trips_and_is_absent_without_sync() -> None:
    assert render.from_json(render.to_json(snapshot(STATUS))).sync == STATUS
    assert "sync" not in render.to_json(snapshot(None))
    assert render.from_json(render.to_json(snapshot(None))).sync is None


def test_metrics_parse_and_carry_each_role() -> None:
    families = {
        f.name: f for f in text_string_to_metric_families(exposition(snapshot(STATUS)).decode())
    }
    running = {
        s.labels["state"]: s.value for s in families["ldirector_sync_daemon_running"].samples
    }
    owned = {s.labels["state"]: s.value for s in families["ldirector_sync_daemon_owned"].samples}
    assert running == {"master": 1.0, "backup": 1.0}
    assert owned == {"master": 1.0, "backup": 0.0}
    assert families["ldirector_sync_daemon_repairs"].samples[0].value == 1.0
    assert "ldirector_sync_daemon_running" not in exposition(snapshot(None)).decode()
