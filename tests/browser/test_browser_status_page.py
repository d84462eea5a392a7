"""The status page in a real browser: Debian's headless Chromium loads it from the daemon's
HTTP endpoint, and the screenshot is kept in ``artifacts/`` for a person to look at."""

from __future__ import annotations

import asyncio
import os
import shutil
import struct
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.support import REPO
from tests.support.fake_daemon import FakeDaemon, serving

ARTIFACTS = REPO / "artifacts"
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
    "--window-size=1200,800",
]


@pytest.fixture
def chromium() -> str:
    if CHROMIUM is None:
        if os.environ.get("CI") == "true":
            pytest.fail("chromium is not installed (tests/deps/observe.apt lists it)")
        pytest.skip("chromium is not installed (apt-get install chromium)")
    return CHROMIUM


@pytest.fixture
async def page_url() -> AsyncIterator[str]:
    async with serving(FakeDaemon()) as url:
        yield f"{url}/"


async def browse(chromium: str, profile: Path, *args: str) -> str:
    """Run Chromium once (the page is served by this same event loop, so never block it)."""
    proc = await asyncio.create_subprocess_exec(
        chromium,
        *FLAGS,
        f"--user-data-dir={profile}",
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env={**os.environ, "HOME": str(profile)},
    )
    try:
        out, err = await asyncio.wait_for(proc.communicate(), 90)
    except TimeoutError:
        proc.kill()
        await proc.wait()
        raise
    assert proc.returncode == 0, err.decode(errors="replace")[-2000:]
    return out.decode()


async def test_status_page_renders_in_chromium(
    chromium: str, page_url: str, tmp_path: Path
) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    shot = ARTIFACTS / "status-page.png"
    shot.unlink(missing_ok=True)
    dom = await browse(chromium, tmp_path / "dom", "--dump-dom", page_url)
    await browse(chromium, tmp_path / "shot", f"--screenshot={shot}", page_url)

    assert 'data-real="127.0.0.2:8080"' in dom and 'data-real="127.0.0.3:8080"' in dom
    assert "HTTP 200 OK" in dom and "connection refused" in dom
    assert "tcp:127.0.0.100:80" in dom and "fwm:7" in dom

    data = shot.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", data[16:24])
    assert (width, height) == (1200, 800)
    assert len(data) > 10_000  # a blank page compresses to a few hundred bytes
