"""A real server's words reach operators only redacted and inert: the log, the monitorfile and
the status snapshot all show what the check harness cleaned, once."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from checks.types import CheckSpec, Result, Target
from tests.support.engine_world import World

HOSTILE = "530 login incorrect for hunter2\x1b[2J\r\x9b31m\u2028\x85fake line"

TEXT = """\
virtual=127.0.0.100:21
\treal=127.0.0.2:21 masq
\tservice=ftp
\tlogin="bob"
\tpasswd="hunter2"
\tmonitorfile="{monitor}"
"""


class EchoingWorld(World):
    """Every real answers like a hostile FTP server: the password back, with terminal controls."""

    async def check(self, target: Target, spec: CheckSpec) -> Result:
        return Result(False, HOSTILE)


async def test_a_hostile_reason_is_masked_and_inert_everywhere(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    monitor = tmp_path / "ftp.monitor"
    world = EchoingWorld(TEXT.format(monitor=monitor), tmp_path)
    with caplog.at_level(logging.DEBUG):
        await world.engine.start()
        await world.clock.advance(30)
    snap = await world.engine.snapshot()
    reasons = [r.reason for v in snap.virtuals for r in v.reals]
    shown = [*reasons, monitor.read_text(), caplog.text]
    for text in shown:
        assert "hunter2" not in text
        assert not any(ch in text for ch in "\x1b\r\x9b\u2028\x85")
    assert reasons == ["530 login incorrect for ********\\x1b[2J\\x0d\\x9b31m\\u2028\\x85fake line"]
    await world.engine.shutdown()
