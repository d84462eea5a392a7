"""End to end: a real on the fake backend fails, the engine's notice becomes an email that a real
SMTP server (aiosmtpd on loopback) receives; the start-up fallback flap mails nothing."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from pathlib import Path

from ldirector.config import loads
from ldirector.core.events import EventKind, mailed
from ldirector.daemon import alerts
from ldirector.daemon.process import DaemonContext, Settings
from ldirector.daemon.sdnotify import Notifier
from ldirector.daemon.service import EngineService
from ldirector.testing import FakeBackend
from tests.support.smtp import Collector


async def wait_for(predicate: Callable[[], bool], bound: float = 10.0) -> None:
    for _ in range(int(bound / 0.05)):
        if predicate():
            return
        await asyncio.sleep(0.05)
    raise AssertionError("condition not met in time")


async def test_failed_real_is_mailed_through_smtp(
    smtp: tuple[Collector, str],
    tmp_path: Path,
) -> None:
    collector, address = smtp
    real = await asyncio.start_server(lambda _r, w: w.close(), "127.0.0.2", 0)
    port = real.sockets[0].getsockname()[1]
    text = (
        f'emailalert="ops@example.org"\nsmtp={address}\nemailalertfrom="lvs@example.org"\n'
        "fallback=127.0.0.1:80 gate\ncheckinterval=1\nchecktimeout=1\nquiescent=no\n\n"
        f"virtual=127.0.0.100:80\n\treal=127.0.0.2:{port} masq\n\tchecktype=connect\n"
        "\tservicename=web\n"
    )
    alerter = alerts.Alerter(hostname="director1")
    alerter.hold("starting")  # as daemon.serve does: held until ready, then "running"
    mailer = asyncio.create_task(alerter.run())
    ready = asyncio.Event()

    def on_ready() -> None:
        alerter.release("running")
        ready.set()

    ctx = DaemonContext(
        config_path=tmp_path / "x.cf",
        cfgname="x.cf",
        settings=Settings(config=loads(text, "x.cf")),
        notifier=Notifier({}),
        ready=on_ready,
        alerter=alerter,
    )
    backend = FakeBackend()
    service = EngineService(ctx, backend=lambda: backend, state_dir=tmp_path)
    task = asyncio.create_task(service.run())
    try:
        await asyncio.wait_for(ready.wait(), 5)
        await wait_for(lambda: len(collector.envelopes) >= 1)
        real.close()  # the real stops answering: connections are refused
        await real.wait_closed()
        await wait_for(lambda: len(collector.envelopes) >= 3)
    finally:
        service.stop()
        await asyncio.wait_for(task, 10)
        async with asyncio.timeout(10):
            await alerter.join()
        mailer.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await mailer
    subjects = [m["Subject"] for _, _, m in collector.envelopes]
    assert subjects == [
        f"[web] Added real server: 127.0.0.2:{port} (127.0.0.100:80) (Weight set to 1)",
        f"[web] Deleted real server: 127.0.0.2:{port} (127.0.0.100:80)",
        "[web] Added fallback server: 127.0.0.1:80 (127.0.0.100:80) (Weight set to 1)",
    ]  # no fallback flap at start, no purge at stop (the real was down)
    statuses = [
        next(ln for ln in str(m.get_payload()).splitlines() if ln.startswith("Daemon-Status"))
        for _, _, m in collector.envelopes
    ]
    # The first round's alerts carry the status they happened in, as ldirectord's do.
    assert statuses == ["Daemon-Status: starting"] + ["Daemon-Status: running"] * 2
    mail_from, rcpt, deleted = collector.envelopes[1]
    assert rcpt == ["ops@example.org"] and "@" in mail_from  # <user>@<hostname>
    assert deleted["From"] == "lvs@example.org"
    assert str(deleted.get_payload()).splitlines() == [
        "ldirectord host: director1",
        f"Log-Message: [web] Deleted real server: 127.0.0.2:{port} (127.0.0.100:80)",
        "Daemon-Status: running",
        "Service name: web",
    ]


def test_every_change_the_kernel_took_is_mailed_and_health_facts_are_not() -> None:
    expected = {
        EventKind.ADDED,
        EventKind.RESTORED,
        EventKind.QUIESCED,
        EventKind.DELETED,
        EventKind.FALLBACK_ON,
        EventKind.FALLBACK_OFF,
        EventKind.PURGED,
        EventKind.READD_QUIESCENT,
        EventKind.INACCESSIBLE,
    }
    assert {kind for kind in EventKind if mailed(kind)} == expected
    # Log-only, as in ldirectord.
    assert not mailed(EventKind.SOFT_FAILURE)
    assert not mailed(EventKind.RESET_SOFT_FAILURE)
