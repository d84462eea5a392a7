"""service=http, https and http_proxy: one HTTP request, up on a 2xx answer matching ``receive``.

The request goes out on checks.httpclient (an asyncio Protocol and httptools' parser), a fresh
connection per check that is closed afterwards (as ldirectord's ``Connection: close``): a pooled
keep-alive connection would hide a listener that stopped accepting. http_proxy, which needs a
proxy's side of HTTP (CONNECT for https), runs on aiohttp with one client session per loop.
Certificates are not verified unless the spec asks for it, because real servers are addressed by
IP and are commonly self-signed.

TLS: ``virtualhost`` is also the server name sent in the handshake (SNI), so a real serving
several sites presents that site's certificate, and with ``verify_tls`` the certificate must
name it. A failed verification says what did not match: the name, the CA, or the dates.

Redirects: ldirectord (LWP) follows up to 7 redirects of a GET or HEAD wherever they point, so a
real server could have the director judge it by another host's answer, or make the director
contact any host it names. This check follows a redirect only while it stays on the server
first asked: same scheme and port, and the same host (or the ``virtualhost`` name, which is then
still fetched from the real server with that Host header). A Location anywhere else is not
followed: the check judges the 3xx answer itself, which is not 2xx, so the real is down with
``HTTP 302 Found: redirect to <location> not followed (another host)``. More than 7 redirects,
as in ldirectord, is down too.
"""

from __future__ import annotations

import asyncio
import functools
import ssl
import weakref
from collections.abc import AsyncGenerator
from ipaddress import IPv6Address
from typing import TYPE_CHECKING

from yarl import URL

from checks._io import client_tls, describe, printable, read_bounded
from checks.httpclient import (
    Answer,
    InvalidRequest,
    ProtocolError,
    Reader,
    Request,
    ServerClosed,
    build_request,
    exchange,
)
from checks.probe import Done, Probe
from checks.types import HttpMethod, HttpSpec, Result, Target

if TYPE_CHECKING:  # imported by http_proxy checks only: the others do not pay for aiohttp
    import aiohttp

#: LWP::UserAgent's default, which ldirectord keeps.
MAX_REDIRECTS = 7
#: The statuses LWP follows for GET and HEAD.
REDIRECTS = frozenset({301, 302, 303, 307, 308})
#: Bytes of body searched for ``receive``: a health page, not a download.
MAX_BODY = 1024 * 1024
_HEADERS = {"Connection": "close", "User-Agent": "ldirector-check"}


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
    # The scheme's own port is left out here, as newer yarl releases leave it out by themselves
    # (Debian 12's yarl 1.8 keeps it): one URL, and one reason text, whatever yarl is installed.
    port = "" if target.port == (443 if tls else 80) else f":{target.port}"
    return URL(f"{'https' if tls else 'http'}://{_host(target)}{port}{path}")


@functools.lru_cache(maxsize=1 << 16)
def _proxy(target: Target) -> URL:
    return URL(f"http://{_host(target)}:{target.port}")


def _host(target: Target) -> str:
    host = str(target.address)
    return f"[{host}]" if isinstance(target.address, IPv6Address) else host


async def _read_body(resp: aiohttp.ClientResponse) -> str:
    body = await read_bounded(resp.content, MAX_BODY)
    try:
        return body.decode(resp.charset or "utf-8", "replace")
    except LookupError:  # a charset Python does not know
        return body.decode("utf-8", "replace")


#: OpenSSL's verification results an operator acts on, by X509_V_ERR code.
_VERIFY_WORDS = {
    9: "certificate not yet valid",
    10: "certificate expired",
    23: "certificate revoked",
}
#: Codes that mean the chain does not lead to a trusted CA.
_UNKNOWN_CA = frozenset({2, 18, 19, 20, 21, 27})
#: X509_V_ERR_HOSTNAME_MISMATCH and X509_V_ERR_IP_ADDRESS_MISMATCH.
_NAME_MISMATCH = frozenset({62, 64})


def verify_failure(error: BaseException, name: str | None) -> str:
    """Why a certificate was refused: the name it lacks, an unknown CA, or its dates."""
    if not isinstance(error, ssl.SSLCertVerificationError):
        return f"certificate verify failed: {printable(str(error))}"
    code, said = error.verify_code, printable(error.verify_message or str(error), 80)
    if code in _NAME_MISMATCH:
        what = f"'{printable(name, 80)}'" if name else "this address"
        return f"certificate verify failed: name mismatch: the certificate is not valid for {what}"
    if code in _UNKNOWN_CA:
        return f"certificate verify failed: unknown CA ({said})"
    if code in _VERIFY_WORDS:
        return f"certificate verify failed: {_VERIFY_WORDS[code]} ({said})"
    return f"certificate verify failed: {said}"


def _failure(exc: aiohttp.ClientError, name: str | None) -> str:
    import aiohttp

    if isinstance(exc, aiohttp.ClientConnectorCertificateError):
        return verify_failure(exc.certificate_error, name)
    if isinstance(exc, aiohttp.ClientConnectorError):
        return describe(exc.os_error)
    if isinstance(exc, aiohttp.ServerDisconnectedError):
        return "server closed the connection without a response"
    if isinstance(exc, aiohttp.ClientOSError):
        return describe(exc)
    return printable(f"{type(exc).__name__}: {exc}")


def _redirect(location: str, current: URL, first: URL, virtualhost: str | None) -> URL | str:
    """Where a 3xx answer leads if it stays on the server first asked, else why it is not followed.

    ``first`` is the URL the check started from; a Location naming ``virtualhost`` is taken back
    to ``first``'s host, since the Host header (not DNS) chose that name.
    """
    if not location:
        return "no Location to follow"
    try:
        following = current.join(URL(location))
    except ValueError:
        return f"bad redirect location '{printable(location, 80)}'"
    host = (following.host or "").lower()
    same_host = host == (first.host or "").lower() or (
        virtualhost is not None and host == virtualhost.lower()
    )
    if following.scheme != first.scheme or following.port != first.port or not same_host:
        return f"redirect to {printable(str(following), 80)} not followed (another host)"
    return following.with_host(first.host or "")


def _authority(where: URL) -> str:
    """The Host header for ``where``: its host, bracketed if IPv6, and a port not the scheme's."""
    host = where.raw_host or ""
    if ":" in host:
        host = f"[{host}]"
    return host if where.port == _DEFAULT_PORTS.get(where.scheme) else f"{host}:{where.port}"


_DEFAULT_PORTS = {"http": 80, "https": 443}


def _request(method: HttpMethod, where: URL, host: str) -> Request:
    return _encoded(method.value, where.raw_path_qs, host)


# A real is asked the same request at every check: it is checked and encoded once. Bounded:
# reloads may bring new reals.
@functools.lru_cache(maxsize=1 << 16)
def _encoded(method: str, target: str, host: str) -> Request:
    return build_request(method, target, [("Host", host), *_HEADERS.items()])


async def check(target: Target, spec: HttpSpec) -> Result:
    """Up on a final 2xx status (after up to 7 same-host redirects) whose body matches receive.

    Plain HTTP to the real itself runs as a probe (:func:`begin`); this coroutine serves the
    rest: TLS, an absolute ``request`` URL, a proxy, and a request that cannot be sent.
    """
    if spec.proxy:
        return await _through_proxy(target, spec)
    virtualhost = spec.virtualhost or None
    first = where = url(target, spec)
    tls = None
    if first.scheme == "https":
        tls = client_tls(virtualhost, verify=spec.verify_tls, ca_certs=spec.ca_certs)
    max_body = MAX_BODY if _wants_body(spec) else None
    # Every hop goes to the server first asked: a redirect elsewhere is not followed.
    address, port = first.host or "", first.port or 0
    for _ in range(MAX_REDIRECTS + 1):
        try:
            request = _request(spec.method, where, virtualhost or _authority(where))
            answer = await exchange(address, port, request, tls=tls, max_body=max_body)
        except _EXPECTED as exc:
            return _failed(exc, virtualhost)
        judged = _judged(answer, spec, where, first)
        if isinstance(judged, Result):
            return judged
        where = judged
    return _TOO_MANY


def begin(target: Target, spec: HttpSpec, done: Done) -> Probe | None:
    """Start a plain HTTP check of the real itself as a probe (:mod:`checks.probe`), or None
    when it needs :func:`check`: TLS, a proxy, an absolute URL, or a request refused as built."""
    if spec.proxy or spec.tls or spec.request.startswith(("http://", "https://")):
        return None
    first = url(target, spec)
    try:
        request = _request(spec.method, first, spec.virtualhost or _authority(first))
    except InvalidRequest:
        return None
    return _Fetch(target, spec, first, request, done)


class _Fetch(Probe):
    """:func:`check`'s plain-HTTP path on the probe's socket callbacks: same request, same
    reader, same judgement; a redirect it follows is a new connection to the same real."""

    __slots__ = ("_first", "_left", "_reader", "_request", "_spec", "_where")

    def __init__(
        self, target: Target, spec: HttpSpec, first: URL, request: Request, done: Done
    ) -> None:
        self._spec, self._first, self._where, self._request = spec, first, first, request
        self._left = MAX_REDIRECTS
        self._reader = self._read()
        super().__init__(target, done)

    def _read(self) -> Reader:
        max_body = MAX_BODY if _wants_body(self._spec) else None
        return Reader(self._request, max_body, self._answered)

    def connected(self) -> None:
        self.send(self._request.wire)

    def received(self, data: bytes) -> None:
        self._reader.data_received(data)

    def closed(self, exc: OSError | None) -> None:
        if exc is None:
            self._reader.eof_received()
        self._reader.connection_lost(exc)

    def _answered(self, outcome: Answer | Exception) -> None:
        virtualhost = self._spec.virtualhost or None
        if isinstance(outcome, Exception):
            self.finish(
                _failed(outcome, virtualhost) if isinstance(outcome, _EXPECTED) else outcome
            )
            return
        judged = _judged(outcome, self._spec, self._where, self._first)
        if isinstance(judged, Result):
            self.finish(judged)
            return
        if not self._left:
            self.finish(_TOO_MANY)
            return
        self._left -= 1
        try:
            self._request = _request(self._spec.method, judged, virtualhost or _authority(judged))
        except InvalidRequest as exc:
            self.finish(_failed(exc, virtualhost))
            return
        self._where = judged
        self._reader = self._read()
        self.reconnect()


_TOO_MANY = Result(False, f"more than {MAX_REDIRECTS} redirects")
#: What an exchange raises for a server that failed the check, as opposed to a bug of ours.
_EXPECTED = (OSError, ServerClosed, ProtocolError, InvalidRequest)


def _wants_body(spec: HttpSpec) -> bool:
    return spec.receive is not None and spec.method is not HttpMethod.HEAD


def _failed(exc: Exception, virtualhost: str | None) -> Result:
    """The down result for what an exchange raised (one of ``_EXPECTED``)."""
    if isinstance(exc, ssl.SSLCertVerificationError):
        return Result(False, verify_failure(exc, virtualhost))
    if isinstance(exc, OSError):
        return Result(False, describe(exc))
    if isinstance(exc, ServerClosed):
        return Result(False, "server closed the connection without a response")
    return Result(False, printable(str(exc)))


def _judged(answer: Answer, spec: HttpSpec, where: URL, first: URL) -> Result | URL:
    """The result an answer gives, or the URL of the redirect to follow."""
    status = printable(f"HTTP {answer.status} {answer.reason}")
    if answer.status in REDIRECTS:
        virtualhost = spec.virtualhost or None
        following = _redirect(answer.header(b"location"), where, first, virtualhost)
        return Result(False, f"{status}: {following}") if isinstance(following, str) else following
    if not 200 <= answer.status < 300:
        return Result(False, status)
    if not _wants_body(spec) or spec.receive is None:
        return Result(True, status)
    if spec.receive.search(answer.text()) is None:
        return Result(False, f"receive '{printable(spec.receive.pattern)}' not found ({status})")
    return Result(True, status)


async def _through_proxy(target: Target, spec: HttpSpec) -> Result:
    """service=http_proxy: ``request`` fetched through the real server as an HTTP proxy.

    aiohttp speaks the proxy's side (absolute-form requests, CONNECT for https) here.
    """
    import aiohttp

    session = await _session()
    first = where = url(target, spec)
    tls = client_tls(None, verify=spec.verify_tls, ca_certs=spec.ca_certs)
    try:
        for _ in range(MAX_REDIRECTS + 1):
            async with session.request(
                spec.method.value,
                where,
                proxy=_proxy(target),
                allow_redirects=False,
                ssl=tls,
            ) as resp:
                status = printable(f"HTTP {resp.status} {resp.reason or ''}")
                if resp.status in REDIRECTS:
                    location = resp.headers.get("Location", "")
                    following = _redirect(location, resp.url, first, None)
                    if isinstance(following, str):
                        return Result(False, f"{status}: {following}")
                    where = following
                    continue
                if not 200 <= resp.status < 300:
                    return Result(False, status)
                if spec.receive is None or spec.method is HttpMethod.HEAD:
                    return Result(True, status)
                body = await _read_body(resp)
                break
        else:
            return Result(False, f"more than {MAX_REDIRECTS} redirects")
    except aiohttp.ClientError as exc:
        return Result(False, _failure(exc, None))
    except ssl.SSLCertVerificationError as exc:
        return Result(False, verify_failure(exc, None))
    except OSError as exc:
        return Result(False, describe(exc))
    if spec.receive.search(body) is None:
        return Result(False, f"receive '{printable(spec.receive.pattern)}' not found ({status})")
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
    import aiohttp

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
