"""service=ftp: log in, CWD /, binary mode, passive RETR of ``request``, match ``receive``.

Called through :func:`checks.run`; speaks FTP over :mod:`checks._lines`. The data connection goes
to the real server's own address, whatever host a PASV reply names (a NATed or hostile server
cannot point it elsewhere); IPv6 targets use EPSV. With ``request`` "/" or empty and no
``receive``, a successful login is the whole check.
"""

from __future__ import annotations

import dataclasses
import re
from ipaddress import IPv6Address

from checks._io import FAILURES, ProtocolError, describe, printable, read_bounded, tcp_stream
from checks._lines import LineClient
from checks.types import FtpSpec, Result, Target

#: Bytes of a file read for matching; ldirectord reads it whole, a health page is small.
MAX_BODY = 1 << 20
_PASV = re.compile(r"(\d+),(\d+),(\d+),(\d+),(\d+),(\d+)")
_EPSV = re.compile(r"\(([!-~])\1\1(\d+)\1\)")


async def _passive_port(ftp: LineClient, target: Target) -> int:
    if isinstance(target.address, IPv6Address):
        await ftp.send("EPSV")
        code, text = await ftp.reply()
        match = _EPSV.search(text) if code == 229 else None
        if match is None:
            raise ProtocolError(f"FTP {code} {text} (EPSV)")
        return int(match.group(2))
    await ftp.send("PASV")
    code, text = await ftp.reply()
    match = _PASV.search(text) if code == 227 else None
    if match is None:
        raise ProtocolError(f"FTP {code} {text} (PASV)")
    return int(match.group(5)) * 256 + int(match.group(6))


async def _retrieve(ftp: LineClient, target: Target, path: str) -> bytes:
    port = await _passive_port(ftp, target)
    async with tcp_stream(dataclasses.replace(target, port=port)) as (reader, _):
        await ftp.send(f"RETR {path}")
        await ftp.expect("FTP", (125, 150), f"RETR {path}")
        body = await read_bounded(reader, MAX_BODY)
    if len(body) < MAX_BODY:
        await ftp.expect("FTP", (226, 250), f"RETR {path}")
    return body


def _password(spec: FtpSpec) -> str:
    # Like Net::FTP, an anonymous login without a password offers the customary e-mail-ish one:
    # many servers refuse an empty PASS.
    if not spec.passwd and spec.login.lower() in ("anonymous", "ftp"):
        return "anonymous@"
    return spec.passwd


async def check(target: Target, spec: FtpSpec) -> Result:
    """Log in and fetch ``request``; up when its content matches ``receive``."""
    fetch = spec.request not in ("", "/") or spec.receive is not None
    try:
        async with await LineClient.open(target) as ftp:
            await ftp.expect("FTP", (220,), "greeting")
            await ftp.send(f"USER {spec.login}")
            code, text = await ftp.reply()
            if code in (331, 332):
                await ftp.send(f"PASS {_password(spec)}")
                code, text = await ftp.reply()
            if code not in (230, 202):
                raise ProtocolError(f"FTP {code} {text} (login as {spec.login})")
            await ftp.send("CWD /")
            await ftp.expect("FTP", (250,), "CWD /")
            await ftp.send("TYPE I")
            await ftp.expect("FTP", (200,), "TYPE I")
            seen = f"FTP logged in as {spec.login}"
            if fetch:
                body = await _retrieve(ftp, target, spec.request)
                seen = f"FTP RETR {spec.request}: {len(body)} bytes"
            else:
                body = b""
            await ftp.goodbye("QUIT")
    except FAILURES as exc:
        return Result(False, describe(exc))
    if spec.receive is not None:
        if spec.receive.search(body.decode("utf-8", "replace")) is None:
            return Result(
                False, f"receive {printable(spec.receive.pattern)!r} not found in {spec.request}"
            )
        seen += ", receive matched"
    return Result(True, seen)
