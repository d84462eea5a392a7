"""Email alerts: a real SMTP server (aiosmtpd) on loopback gets them; a dead one delays nothing."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import os
import signal
import socket
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from ldirector.config import MailAddress, SmtpServer
from ldirector.core import wording
from ldirector.core.events import EventKind
from ldirector.daemon import alerts
from tests.support.sandbox import Sandbox
from tests.support.smtp import Collector

V, R = "127.0.0.1:80", "127.0.0.2:80"


@pytest.fixture
async def dead_smtp() -> AsyncIterator[str]:
    """Accepts connections and never says a word (a black-holed mail server)."""
    held: list[asyncio.StreamWriter] = []

    async def swallow(_reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        held.append(writer)

    server = await asyncio.start_server(swallow, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        yield f"127.0.0.1:{port}"
    finally:
        for writer in held:
            writer.close()
        server.close()
        await server.wait_closed()


def mailbox(text: str) -> MailAddress:
    user, _, domain = text.partition("@")
    return MailAddress(user, domain)


def smtp_server(text: str) -> SmtpServer:
    host, _, port = text.rpartition(":")
    return SmtpServer(host, int(port))


def settings(smtp: str | None, **kw: object) -> alerts.AlertSettings:
    base: dict[str, object] = {
        "recipients": (mailbox("ops@example.org"), mailbox("oncall@example.org"))
    }
    base.update(kw)
    where = None if smtp is None else smtp_server(smtp)
    return alerts.AlertSettings(smtp=where, **base)  # type: ignore[arg-type]


def event(kind: EventKind, s: alerts.AlertSettings, server: str = R) -> alerts.Event:
    messages = {
        EventKind.ADDED: wording.added_real_message(server, V, 1),
        EventKind.RESTORED: wording.restored_real_message(server, V, 1),
        EventKind.DELETED: wording.deleted_real_message(server, V),
        EventKind.QUIESCED: wording.quiescent_real_message(server, V),
        EventKind.FALLBACK_ON: wording.added_fallback_message(server, V),
        EventKind.FALLBACK_OFF: wording.deleted_fallback_message(server, V),
    }
    return alerts.Event(kind, messages[kind], V, server, s)


@contextlib.asynccontextmanager
async def running(alerter: alerts.Alerter) -> AsyncIterator[alerts.Alerter]:
    task = asyncio.create_task(alerter.run())
    try:
        yield alerter
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def drained(alerter: alerts.Alerter, bound: float = 10) -> None:
    async with asyncio.timeout(bound):
        await alerter.join()


async def test_one_message_per_event_with_ldirectord_body(smtp: tuple[Collector, str]) -> None:
    collector, address = smtp
    s = settings(
        address, servicename="web", comment="front page", sender=MailAddress("lvs", "example.org")
    )
    alerter = alerts.Alerter(hostname="director1")
    alerter.status = "running"
    async with running(alerter):
        alerter.notify(event(EventKind.DELETED, s))
        alerter.notify(event(EventKind.RESTORED, s))
        await drained(alerter)
    assert len(collector.envelopes) == 2
    mail_from, rcpts, message = collector.envelopes[0]
    assert mail_from == alerts.default_sender()
    assert rcpts == ["ops@example.org", "oncall@example.org"]
    assert message["From"] == "lvs@example.org"
    assert message["To"] == "ops@example.org, oncall@example.org"
    subject = "[web] Deleted real server: 127.0.0.2:80 (127.0.0.1:80)"
    assert message["Subject"] == subject
    assert str(message.get_payload()).replace("\r\n", "\n") == (
        f"ldirectord host: director1\nLog-Message: {subject}\nDaemon-Status: running\n"
        "Service name: web\nComment: front page\n"
    )
    assert collector.envelopes[1][2]["Subject"] == (
        "[web] Restored real server: 127.0.0.2:80 (127.0.0.1:80) (Weight set to 1)"
    )


async def test_emailalertstatus_filters_by_daemon_status(smtp: tuple[Collector, str]) -> None:
    collector, address = smtp
    s = settings(address, statuses=frozenset({"running"}))
    alerter = alerts.Alerter(hostname="h")
    async with running(alerter):
        alerter.status = "starting"
        alerter.notify(event(EventKind.ADDED, s))
        alerter.status = "running"
        alerter.notify(event(EventKind.DELETED, s))
        alerter.notify(event(EventKind.DELETED, settings(address, statuses=frozenset())))
        alerter.notify(event(EventKind.DELETED, settings(address, recipients=())))
        await drained(alerter)
    assert [m["Subject"] for _, _, m in collector.envelopes] == [
        "Deleted real server: 127.0.0.2:80 (127.0.0.1:80)"
    ]


async def test_settling_sends_only_net_changes_of_a_start_or_reload(
    smtp: tuple[Collector, str],
) -> None:
    collector, address = smtp
    s = settings(address)
    alerter = alerts.Alerter(hostname="h")
    async with running(alerter):
        alerter.hold()
        # ldirectord's start-up flap: fallback in and out, a real added then deleted ...
        alerter.notify(event(EventKind.FALLBACK_ON, s, "127.0.0.9:80"))
        alerter.notify(event(EventKind.ADDED, s))
        alerter.notify(event(EventKind.FALLBACK_OFF, s, "127.0.0.9:80"))
        alerter.notify(event(EventKind.DELETED, s))
        # ... and one real that really came up.
        alerter.notify(event(EventKind.ADDED, s, "127.0.0.3:80"))
        assert alerter._queue.empty()
        alerter.release()
        await drained(alerter)
    assert [m["Subject"] for _, _, m in collector.envelopes] == [
        "Added real server: 127.0.0.3:80 (127.0.0.1:80) (Weight set to 1)"
    ]


def sender_deadline(alerter: alerts.Alerter) -> str:
    """Whether the sender is waiting, and whether its wait has a deadline."""
    waiting = alerter._waiting
    if waiting is None:
        return "not waiting"
    return "no deadline" if waiting.when() is None else "deadline"


async def test_the_sender_wakes_for_a_reminder_and_not_before(
    smtp: tuple[Collector, str],
) -> None:
    collector, address = smtp
    alerter = alerts.Alerter(hostname="h")
    async with running(alerter):
        await asyncio.sleep(0.05)
        assert sender_deadline(alerter) == "no deadline"  # no reminder set: no wake-ups
        alerter.notify(event(EventKind.QUIESCED, settings(address, freq=1)))
        await drained(alerter)
        assert sender_deadline(alerter) == "deadline"  # the reminder bounds the wait at once
        await asyncio.sleep(1.2)
        await drained(alerter)
    assert [m["Subject"] for _, _, m in collector.envelopes] == [
        "Quiescent real server: 127.0.0.2:80 (127.0.0.1:80) (Weight set to 0)",
        "Inaccessible real server: 127.0.0.2:80 (127.0.0.1:80)",
    ]


async def test_reminders_every_emailalertfreq_until_restored(smtp: tuple[Collector, str]) -> None:
    collector, address = smtp
    now = [1000.0]
    s = settings(address, freq=60)
    alerter = alerts.Alerter(hostname="h", clock=lambda: now[0])
    async with running(alerter):
        alerter.notify(event(EventKind.QUIESCED, s))
        alerter.notify(event(EventKind.FALLBACK_OFF, s, "127.0.0.9:80"))
        now[0] += 59
        alerter.tick()
        now[0] += 1
        alerter.tick()
        alerter.tick()
        now[0] += 60
        alerter.tick()
        alerter.notify(event(EventKind.RESTORED, s))
        now[0] += 600
        alerter.tick()
        await drained(alerter)
    assert [m["Subject"] for _, _, m in collector.envelopes] == [
        "Quiescent real server: 127.0.0.2:80 (127.0.0.1:80) (Weight set to 0)",
        "Deleted fallback server: 127.0.0.9:80 (127.0.0.1:80)",
        "Inaccessible real server: 127.0.0.2:80 (127.0.0.1:80)",
        "Inaccessible real server: 127.0.0.2:80 (127.0.0.1:80)",
        "Restored real server: 127.0.0.2:80 (127.0.0.1:80) (Weight set to 1)",
    ]


async def test_operator_templates_override_the_shipped_ones(
    smtp: tuple[Collector, str], tmp_path: Path
) -> None:
    collector, address = smtp
    (tmp_path / "alert_subject.j2").write_text("LVS {{ status }}: {{ message }}")
    alerter = alerts.Alerter(renderer=alerts.Renderer(tmp_path), hostname="h")
    alerter.status = "running"
    async with running(alerter):
        alerter.notify(event(EventKind.DELETED, settings(address)))
        await drained(alerter)
    message = collector.envelopes[0][2]
    assert message["Subject"] == "LVS running: Deleted real server: 127.0.0.2:80 (127.0.0.1:80)"
    assert "Daemon-Status: running" in str(message.get_payload())  # body still shipped


async def test_a_dead_mail_server_delays_nothing(
    dead_smtp: str, caplog: pytest.LogCaptureFixture
) -> None:
    alerter = alerts.Alerter(
        transport=alerts.MailTransport(timeout=0.3), hostname="h", send_timeout=0.5
    )
    ticks: list[float] = []

    async def heartbeat() -> None:
        for _ in range(20):
            ticks.append(time.monotonic())
            await asyncio.sleep(0.02)

    async with running(alerter):
        started = time.monotonic()
        for _ in range(3):
            alerter.notify(event(EventKind.DELETED, settings(dead_smtp)))
        assert time.monotonic() - started < 0.05
        await heartbeat()
        await drained(alerter, bound=10)
    gaps = [b - a for a, b in itertools.pairwise(ticks)]
    assert max(gaps) < 0.25  # the loop kept running while the mail server hung
    failures = [r for r in caplog.records if r.getMessage().startswith("emailalert failed")]
    assert len(failures) == 3


async def test_a_mail_that_cannot_be_built_costs_only_itself(
    smtp: tuple[Collector, str], caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    collector, address = smtp
    alerter = alerts.Alerter(hostname="h")
    build = alerter.compose
    built: list[str] = []

    def broken_once(event: alerts.Event, status: str, subject: str = "") -> alerts.Outgoing:
        built.append(event.message)
        if len(built) == 1:  # as an address the email package chokes on would
            raise AttributeError("'NoneType' object has no attribute 'addr_spec'")
        return build(event, status, subject)

    monkeypatch.setattr(alerter, "compose", broken_once)
    s = settings(address)
    async with running(alerter):
        alerter.notify(event(EventKind.DELETED, s))
        alerter.notify(event(EventKind.RESTORED, s))
        await drained(alerter)
    assert [m["Subject"] for _, _, m in collector.envelopes] == [
        "Restored real server: 127.0.0.2:80 (127.0.0.1:80) (Weight set to 1)"
    ]
    failed = [r.getMessage() for r in caplog.records if "emailalert failed" in r.getMessage()]
    assert failed == [
        "emailalert failed: Deleted real server: 127.0.0.2:80 (127.0.0.1:80):"
        " 'NoneType' object has no attribute 'addr_spec'"
    ]
    assert not any(r.exc_info for r in caplog.records)  # one line per mail, no traceback


async def test_a_full_queue_drops_instead_of_blocking(caplog: pytest.LogCaptureFixture) -> None:
    alerter = alerts.Alerter(hostname="h", queue_size=2)
    for _ in range(5):
        alerter.notify(event(EventKind.DELETED, settings("127.0.0.1:1")))
    assert alerter.dropped == 3
    assert "email alert queue full" in caplog.text


def test_default_sender_uses_the_uid_not_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("USER", raising=False)
    monkeypatch.delenv("LOGNAME", raising=False)
    user, _, host = alerts.default_sender().partition("@")
    assert user and host == socket.gethostname()


def test_settings_from_a_parsed_virtual(tmp_path: Path) -> None:
    from ldirector.config import load

    config_file = tmp_path / "alerts.cf"
    config_file.write_text(
        'emailalert="ops@example.org, oncall@example.org"\n'
        "emailalertfreq=300\n"
        "emailalertstatus=running,stopping\n"
        "emailalertfrom=lvs@example.org\n"
        "smtp=127.0.0.1\n"
        "virtual=127.0.0.1:80\n"
        "\treal=127.0.0.2:80 gate\n"
        "\tservicename=web\n"
        "\tcomment=front page\n"
    )
    config = load(config_file)
    s = alerts.settings_for(config.virtuals[0], config.emailalertfrom)
    assert s == alerts.AlertSettings(
        recipients=(MailAddress("ops", "example.org"), MailAddress("oncall", "example.org")),
        freq=300,
        statuses=frozenset({"running", "stopping"}),
        sender=MailAddress("lvs", "example.org"),
        smtp=SmtpServer("127.0.0.1"),
        servicename="web",
        comment="front page",
    )


async def test_held_events_carry_the_status_they_happened_in(smtp: tuple[Collector, str]) -> None:
    collector, address = smtp
    s = settings(address)
    alerter = alerts.Alerter(hostname="h")
    async with running(alerter):
        alerter.hold("starting")
        alerter.notify(event(EventKind.ADDED, s))
        alerter.release("running")
        alerter.hold("reloading")
        alerter.notify(event(EventKind.DELETED, s))
        alerter.release("running")
        alerter.notify(event(EventKind.RESTORED, s))
        await drained(alerter)
    statuses = [
        next(ln for ln in str(m.get_payload()).splitlines() if ln.startswith("Daemon-Status"))
        for _, _, m in collector.envelopes
    ]
    assert statuses == [
        "Daemon-Status: starting",
        "Daemon-Status: reloading",
        "Daemon-Status: running",
    ]


def test_daemon_sends_alerts_with_its_status(smtp: tuple[Collector, str], sandbox: Sandbox) -> None:
    collector, address = smtp
    sandbox.env["DRIVER_SMTP"] = address
    pid = sandbox.start()
    os.kill(pid, signal.SIGHUP)
    assert sandbox.wait_for(lambda: len(collector.envelopes) == 2, timeout=10)
    sent = [(m["Subject"], str(m.get_payload()).splitlines()[2]) for _, _, m in collector.envelopes]
    assert sent == [
        (
            "Added real server: 127.0.0.2:80 (127.0.0.1:80) (Weight set to 1)",
            "Daemon-Status: starting",
        ),
        ("Deleted real server: 127.0.0.2:80 (127.0.0.1:80)", "Daemon-Status: reloading"),
    ]
    assert any("emailalert: Deleted real server" in line for line in sandbox.log_lines())
