"""service=http, https and http_proxy: one HTTP request, up on a 2xx answer matching ``receive``.

Built on aiohttp, with one client session per event loop. Each check uses a fresh connection that
is closed afterwards (as ldirectord's ``Connection: close``): a pooled keep-alive connection would
hide a listener that stopped accepting. Certificates are not verified unless the spec asks for
it, because real servers are addressed by IP and are commonly self-signed.
"""

from __future__ import annotations

import asyncio
import functools
import ssl
import weakref
from collections.abc import AsyncGenerator
from ipaddress import IPv6Address

import aiohttp
from yarl import URL

from checks._io import describe, insecure_tls, quote
from checks.types import HttpMethod, HttpSpec, Result, Target

#: LWP::UserAgent's default, which ldirectord keeps.
MAX_REDIRECTS = 7
#: Bytes of body searched for ``receive``: a health page, not a download.
MAX_BODY = 1024 * 1024
_HEADERS = {"Connection": "close", "User-Agent": "ldirector-check"}


@functools.cache
def _tls(verify: bool) -> ssl.SSLContext:
    # Building a context costs milliseconds; two shared ones serve every check.
    if not verify:
        return insecure_tls()
    # Verify the chain, not the name: reals are addressed by IP, their certificates by name.
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    return ctx


def url(target: Target, spec: HttpSpec) -> URL:
    """The URL the check fetches: the absolute ``request``, or ``request`` on the real server."""
    return _url(target, spec.tls and not spec.proxy, spec.request)


# Parsing and quoting a URL is a twentieth of a check's CPU; a real is checked every few seconds
# with the same URL, so each is built once. Bounded: reloads may bring new reals.
@functools.lru_cache(maxsize=1 << 16)
def _url(target: Target, tls: bool, request: str) -> URL:
    if request.startswith(("http://", "https://")):
        return URL(request)
    path = request if request.startswith("/") else "/" + request
    return URL(f"{'https' if tls else 'http'}://{_host(target)}:{target.port}{path}")


@functools.lru_cache(maxsize=1 << 16)
def _proxy(target: Target) -> URL:
    return URL(f"http://{_host(target)}:{target.port}")


def _host(target: Target) -> str:
    host = str(target.address)
    return f"[{host}]" if isinstance(target.address, IPv6Address) else host


async def _read_body(resp: aiohttp.ClientResponse) -> str:
    body = bytearray()
    while len(body) < MAX_BODY and (chunk := await resp.content.read(MAX_BODY - len(body))):
        body += chunk
    try:
        return body.decode(resp.charset or "utf-8", "replace")
    except LookupError:  # a charset Python does not know
        return body.decode("utf-8", "replace")


def _failure(exc: aiohttp.ClientError) -> str:
    if isinstance(exc, aiohttp.ClientConnectorCertificateError):
        return f"certificate verify failed: {quote(str(exc.certificate_error))}"
    if isinstance(exc, aiohttp.ClientConnectorError):
        return describe(exc.os_error)
    if isinstance(exc, aiohttp.TooManyRedirects):
        return f"more than {MAX_REDIRECTS} redirects"
    if isinstance(exc, aiohttp.ServerDisconnectedError):
        return "server closed the connection without a response"
    if isinstance(exc, aiohttp.ClientOSError):
        return describe(exc)
    return quote(f"{type(exc).__name__}: {exc}")


async def check(target: Target, spec: HttpSpec) -> Result:
    """Up on a final 2xx status (after up to 7 redirects) whose body matches ``receive``."""
    # The session sends _HEADERS; http_proxy takes the Host from the URL.
    headers = {"Host": spec.virtualhost} if spec.virtualhost and not spec.proxy else None
    try:
        async with (await _session()).request(
            spec.method.value,
            url(target, spec),
            headers=headers,
            proxy=_proxy(target) if spec.proxy else None,
            max_redirects=MAX_REDIRECTS,
            ssl=_tls(spec.verify_tls),
        ) as resp:
            status = f"HTTP {resp.status} {resp.reason or ''}".rstrip()
            if not 200 <= resp.status < 300:
                return Result(False, status)
            if spec.receive is None or spec.method is HttpMethod.HEAD:
                return Result(True, status)
            body = await _read_body(resp)
    except aiohttp.ClientError as exc:
        return Result(False, _failure(exc))
    except OSError as exc:
        return Result(False, describe(exc))
    if spec.receive.search(body) is None:
        return Result(False, f"receive '{quote(spec.receive.pattern)}' not found ({status})")
    return Result(True, status)


# One session per event loop: building a ClientSession and its connector for every check costs
# a quarter of the check's CPU time. The connector never pools (force_close), so no connection
# outlives its check, and it has no connection limit: the caller caps concurrency.
_sessions: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, aiohttp.ClientSession] = (
    weakref.WeakKeyDictionary()
)
_keepers: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, AsyncGenerator[None]] = (
    weakref.WeakKeyDictionary()
)


async def _session() -> aiohttp.ClientSession:
    loop = asyncio.get_running_loop()
    session = _sessions.get(loop)
    if session is None or session.closed:
        connector = aiohttp.TCPConnector(
            force_close=True, limit=0, limit_per_host=0, use_dns_cache=False
        )
        session = aiohttp.ClientSession(
            connector=connector,
            cookie_jar=aiohttp.DummyCookieJar(),
            headers=_HEADERS,
            trust_env=False,
            # The caller owns the deadline; aiohttp's own 5-minute default only costs timers.
            timeout=aiohttp.ClientTimeout(),
        )
        _sessions[loop] = session
        keeper = _close_at_shutdown(loop, session)
        await anext(keeper)
        _keepers[loop] = keeper
    return session


async def _close_at_shutdown(
    loop: asyncio.AbstractEventLoop, session: aiohttp.ClientSession
) -> AsyncGenerator[None]:
    """Suspended until the loop shuts its async generators down (asyncio.run does at its end)."""
    try:
        yield
    finally:
        _sessions.pop(loop, None)
        _keepers.pop(loop, None)
        await session.close()
