"""Email alert edge: state-change events in, one email per event out, never blocking the engine.

The engine calls ``Alerter.notify`` with an ``Event`` (the log message plus plain settings);
that only filters and enqueues. A single worker task renders the jinja2 templates and hands the
message to SMTP (``smtp=``, already parsed by the config) or the local sendmail, so a dead mail
server delays nothing but its own queue, and a mail that cannot be built or sent costs only
itself. ``Alerter.hold()``/``release()`` collapse the events of a start or reload to their net
effect, which is what keeps ldirectord's spurious start/reload alerts away.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import os
import pwd
import socket
import subprocess
import time
from collections.abc import Callable, Collection
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from ldirector.config.model import MailAddress, SmtpServer, Virtual
from ldirector.core import wording
from ldirector.core.events import EventKind, serving_after

if TYPE_CHECKING:
    # Like jinja2, the email package and smtplib are loaded at the first mail, not at start:
    # most directors send none, and together they are some twenty modules to read.
    from email.message import EmailMessage
    from email.policy import EmailPolicy

    import jinja2

log = logging.getLogger(wording.LOGGER_NAME)

DAEMON_STATUSES = frozenset({"starting", "running", "stopping", "reloading"})
SEND_TIMEOUT = 30.0
QUEUE_SIZE = 256
#: Operators drop alert_subject.j2 / alert_body.j2 here to replace the shipped templates.
TEMPLATE_DIR = Path("/etc/ldirector/templates")


@functools.cache
def _policy() -> EmailPolicy[EmailMessage]:
    from email import policy

    return policy.SMTP.clone(max_line_length=998)


def _reminds(kind: EventKind) -> bool:
    """A real taken out: emailalertfreq reminds of it until it is back (fallbacks never)."""
    return kind in (EventKind.DELETED, EventKind.QUIESCED, EventKind.READD_QUIESCENT)


@dataclass(frozen=True, slots=True)
class AlertSettings:
    """The effective email settings of one virtual (per-virtual values over the globals)."""

    recipients: tuple[MailAddress, ...] = ()
    freq: int = 0
    statuses: frozenset[str] = DAEMON_STATUSES
    sender: MailAddress | None = None
    smtp: SmtpServer | None = None
    servicename: str | None = None
    comment: str | None = None


@dataclass(frozen=True, slots=True)
class Event:
    """One state change: ``message`` is exactly the line that was logged for it."""

    kind: EventKind
    message: str
    virtual: str  # ``VIP:PORT`` as in the log line
    server: str  # ``RIP:PORT`` of the real or fallback server
    settings: AlertSettings


@dataclass(frozen=True, slots=True)
class Outgoing:
    """One mail ready to send: ``recipients`` are bare addresses for the envelope."""

    message: EmailMessage
    envelope_from: str
    recipients: tuple[str, ...]
    smtp: SmtpServer | None


def settings_for(virtual: Virtual, emailalertfrom: MailAddress | None) -> AlertSettings:
    """A virtual's effective email settings (the parser already folded in the globals)."""
    return AlertSettings(
        recipients=virtual.emailalert,
        freq=virtual.emailalertfreq,
        statuses=frozenset(str(status) for status in virtual.emailalertstatus),
        sender=emailalertfrom,
        smtp=virtual.smtp,
        servicename=virtual.servicename,
        comment=virtual.comment,
    )


def default_sender() -> str:
    """``<user>@<hostname>`` from the uid, never $USER, which the OCF agent leaves unset."""
    try:
        user = pwd.getpwuid(os.getuid()).pw_name
    except KeyError:
        user = str(os.getuid())
    return f"{user}@{socket.gethostname()}"


class TemplateProblem(Exception):
    """An alert template that cannot be loaded or rendered; the message says why."""


class Renderer:
    """The alert templates; files in ``override_dir`` replace the shipped ones by name.

    jinja2 is loaded at the first mail, not at start: most directors send none.
    """

    def __init__(self, override_dir: Path | None = None) -> None:
        if override_dir is None and TEMPLATE_DIR.is_dir():
            override_dir = TEMPLATE_DIR
        self.override_dir = override_dir
        self._env: jinja2.Environment | None = None

    @property
    def env(self) -> jinja2.Environment:
        if self._env is None:
            import jinja2

            loaders: list[jinja2.BaseLoader] = []
            if self.override_dir is not None:
                loaders.append(jinja2.FileSystemLoader(self.override_dir))
            loaders.append(jinja2.PackageLoader("ldirector", "templates"))
            # Plain-text mail, not HTML: escaping would mangle addresses and messages.
            self._env = jinja2.Environment(
                loader=jinja2.ChoiceLoader(loaders),
                autoescape=False,  # noqa: S701
                undefined=jinja2.StrictUndefined,
                keep_trailing_newline=True,
            )
        return self._env

    def render(self, event: Event, status: str, host: str, subject: str) -> tuple[str, str]:
        values = {
            "message": event.message,
            "kind": str(event.kind),
            "virtual": event.virtual,
            "server": event.server,
            "status": status,
            "host": host,
            "servicename": event.settings.servicename,
            "comment": event.settings.comment,
        }
        import jinja2

        try:
            subject = subject or self.env.get_template("alert_subject.j2").render(values)
            subject = " ".join(subject.split())
            body = self.env.get_template("alert_body.j2").render(values, subject=subject)
        except jinja2.TemplateError as exc:
            raise TemplateProblem(_reason(exc)) from exc
        return subject, body.rstrip("\n") + "\n"


class Transport(Protocol):
    async def send(self, outgoing: Outgoing) -> None: ...


class MailTransport:
    """SMTP to ``smtp=`` when set, else the local sendmail, else SMTP to localhost."""

    def __init__(self, timeout: float = 10.0, sendmail: str | None = None) -> None:
        self.timeout = timeout
        self._sendmail = sendmail

    @property
    def sendmail(self) -> str:
        """The local sendmail, looked up along PATH at the first mail; "" when there is none."""
        if self._sendmail is None:
            import shutil

            self._sendmail = shutil.which("sendmail") or ""
        return self._sendmail

    async def send(self, outgoing: Outgoing) -> None:
        # smtplib blocks; a thread keeps the event loop free, the timeout bounds each socket op.
        await asyncio.to_thread(self._send, outgoing)

    def _send(self, outgoing: Outgoing) -> None:
        if outgoing.smtp is None and self.sendmail:
            argv = [self.sendmail, "-oi", "-f", outgoing.envelope_from, "--", *outgoing.recipients]
            subprocess.run(
                argv, input=outgoing.message.as_bytes(), check=True, timeout=self.timeout
            )
            return
        import smtplib

        server = outgoing.smtp or SmtpServer("localhost")
        with smtplib.SMTP(server.host, server.port, timeout=self.timeout) as client:
            client.send_message(
                outgoing.message,
                from_addr=outgoing.envelope_from,
                to_addrs=list(outgoing.recipients),
            )


@dataclass(slots=True)
class _Reminder:
    event: Event
    due: float


@dataclass(slots=True)
class _Batch:
    events: list[Event] = field(default_factory=list)


class Alerter:
    """Filters, collapses and queues alerts; ``run()`` is the one task that sends them."""

    def __init__(
        self,
        transport: Transport | None = None,
        renderer: Renderer | None = None,
        *,
        queue_size: int = QUEUE_SIZE,
        hostname: str | None = None,
        clock: Callable[[], float] = time.monotonic,
        send_timeout: float = SEND_TIMEOUT,
    ) -> None:
        self.transport = transport or MailTransport()
        self.renderer = renderer or Renderer()
        self.hostname = hostname or socket.gethostname()
        self.clock = clock
        self.send_timeout = send_timeout
        #: The daemon status alerts are filtered by and report; the engine keeps it current.
        self.status = "starting"
        self._queue: asyncio.Queue[tuple[Event, str, str]] = asyncio.Queue(queue_size)
        self._batch: _Batch | None = None
        self._reminders: dict[tuple[str, str], _Reminder] = {}
        #: The sender's wait for the next alert, bounded by the next reminder due.
        self._waiting: asyncio.Timeout | None = None
        self.dropped = 0

    # -- engine-facing API ------------------------------------------------------------------

    def notify(self, event: Event) -> None:
        """Record one state change; never blocks and never raises for mail problems."""
        if self._batch is not None:
            self._batch.events.append(event)
            return
        self._track_reminder(event)
        self._enqueue(event, subject="")

    def hold(self, status: str | None = None) -> None:
        """Hold the events of a start or reload until ``release``, which sends only the net change
        per server (a real added then removed while the table is rebuilt sends nothing);
        optionally switch the daemon status."""
        if status is not None:
            self.status = status
        if self._batch is None:
            self._batch = _Batch()

    def release(self, status: str | None = None) -> None:
        """Send the net changes of what was held (under the status they happened in), then
        optionally switch the daemon status."""
        batch, self._batch = self._batch, None
        if batch is not None:
            for event in collapse(batch.events):
                self.notify(event)
        if status is not None:
            self.status = status

    def tick(self) -> None:
        """Queue every emailalertfreq reminder that is due (the sender calls it when one is)."""
        now = self.clock()
        for reminder in self._reminders.values():
            if reminder.due <= now:
                reminder.due = now + reminder.event.settings.freq
                gone = reminder.event
                message = wording.inaccessible_real_message(gone.server, gone.virtual)
                event = replace(gone, kind=EventKind.INACCESSIBLE, message=message)
                # The subject is the line as it is, without the service name ldirectord's
                # reminders never carried.
                self._enqueue(event, message)

    def forget(self, virtual: str) -> None:
        """Drop reminders of a virtual that is no longer configured."""
        for key in [k for k in self._reminders if k[0] == virtual]:
            del self._reminders[key]

    # -- internals --------------------------------------------------------------------------

    def _track_reminder(self, event: Event) -> None:
        key = (event.virtual, event.server)
        if _reminds(event.kind) and event.settings.freq > 0:
            self._reminders[key] = _Reminder(event, self.clock() + event.settings.freq)
            self._wake_by(event.settings.freq)
        elif event.kind in (EventKind.ADDED, EventKind.RESTORED, EventKind.PURGED):
            self._reminders.pop(key, None)

    def _next_due(self) -> float | None:
        """Seconds until the first reminder is due; None when there is none."""
        if not self._reminders:
            return None
        return max(0.0, min(r.due for r in self._reminders.values()) - self.clock())

    def _wake_by(self, seconds: float) -> None:
        """Make the sender's wait end within ``seconds`` (a reminder was just set)."""
        waiting = self._waiting
        if waiting is None:
            return
        when = asyncio.get_running_loop().time() + seconds
        deadline = waiting.when()
        if deadline is None or when < deadline:
            waiting.reschedule(when)

    def _enqueue(self, event: Event, subject: str) -> None:
        if not event.settings.recipients or self.status not in event.settings.statuses:
            return
        try:
            self._queue.put_nowait((event, self.status, subject))
        except asyncio.QueueFull:
            self.dropped += 1
            log.warning("email alert queue full: dropped alert for: %s", event.message)

    def compose(self, event: Event, status: str, subject: str = "") -> Outgoing:
        """The mail for one event: the config's addresses as parsed, never parsed again."""
        from email.message import EmailMessage
        from email.utils import formatdate, make_msgid

        subject, body = self.renderer.render(event, status, self.hostname, subject)
        settings = event.settings
        envelope_from = default_sender()
        # One-line headers (RFC 5322 allows 998): mail filters match the subject as logged.
        message = EmailMessage(policy=_policy())
        message["From"] = settings.sender.header if settings.sender else envelope_from
        message["To"] = [r.header for r in settings.recipients]
        message["Subject"] = subject
        message["Date"] = formatdate(localtime=True)
        message["Message-ID"] = make_msgid(domain=self.hostname)
        message.set_content(body)
        recipients = tuple(r.addr_spec for r in settings.recipients)
        return Outgoing(message, envelope_from, recipients, settings.smtp)

    async def run(self) -> None:
        """Send queued alerts one at a time until cancelled; failures are logged and dropped.

        Between alerts it also queues the reminders as they fall due; with none set it sleeps
        until an alert comes. Nothing one mail does ends this loop: it is the only sender for
        the daemon's lifetime.
        """
        while True:
            try:
                self.tick()
            except Exception as exc:  # a reminder that cannot be queued must not end the sender
                log.error("emailalert reminders failed: %s", _reason(exc))
            try:
                async with asyncio.timeout(self._next_due()) as self._waiting:
                    event, status, subject = await self._queue.get()
            except TimeoutError:
                continue
            finally:
                self._waiting = None
            try:
                await self._deliver(event, status, subject)
            finally:
                self._queue.task_done()

    async def _deliver(self, event: Event, status: str, subject: str) -> None:
        """Build and send one mail; whatever goes wrong is one line in the log."""
        try:
            # In a thread: the first mail imports jinja2 and the email package, which must not
            # hold the event loop (and the checks on it) while they load.
            outgoing = await asyncio.to_thread(self.compose, event, status, subject)
            log.info(wording.emailalert_message(str(outgoing.message["Subject"])))
            async with asyncio.timeout(self.send_timeout):
                await self.transport.send(outgoing)
        except TemplateProblem as exc:
            log.error("emailalert template error: %s", exc)
        except Exception as exc:  # building or sending: this mail is lost, the next one is not
            log.error("emailalert failed: %s: %s", event.message, _reason(exc))

    async def join(self) -> None:
        """Wait until every queued alert was handled; bound it with ``asyncio.timeout``."""
        await self._queue.join()


def collapse(events: Collection[Event]) -> list[Event]:
    """Per (virtual, server), keep the last event if the batch changed its serving state."""
    first: dict[tuple[str, str], Event] = {}
    last: dict[tuple[str, str], Event] = {}
    for event in events:
        key = (event.virtual, event.server)
        first.setdefault(key, event)
        last[key] = event
    # A change happened iff the state before the first event (its opposite) differs from the
    # state after the last one, i.e. iff first and last leave the server in the same state.
    return [
        last[key]
        for key in first
        if serving_after(first[key].kind) == serving_after(last[key].kind)
    ]


def _reason(exc: BaseException) -> str:
    """An exception as one line: its message, or its type when it has none."""
    text = " ".join(str(exc).split())
    return text or type(exc).__name__
