"""checks._io: one wording per failure, whichever check meets it, and one-line reasons."""

from __future__ import annotations

import asyncio
import errno
import os
import ssl

import pytest

from checks._io import ProtocolError, describe, printable, underlying


def err(kind: type[OSError], code: int) -> OSError:
    """``kind`` as the kernel raises it: an errno and its message."""
    return kind(code, os.strerror(code))


WORDS = [
    (err(ConnectionRefusedError, errno.ECONNREFUSED), "connection refused"),
    (err(ConnectionResetError, errno.ECONNRESET), "connection reset by peer"),
    (ConnectionResetError("Connection lost"), "connection reset by peer"),  # asyncio, no errno
    (err(OSError, errno.EHOSTUNREACH), "no route to host"),
    (err(OSError, errno.ENETUNREACH), "network unreachable"),
    (err(OSError, errno.EADDRNOTAVAIL), "address not available"),
    (err(OSError, errno.ETIMEDOUT), "connection timed out"),
    (err(BrokenPipeError, errno.EPIPE), "connection closed by server"),
    (asyncio.IncompleteReadError(b"", 2), "connection closed by server"),
    (EOFError(), "connection closed by server"),
    (err(OSError, errno.EMFILE), "too many open files"),
    (ProtocolError("FTP 530 Login incorrect."), "FTP 530 Login incorrect."),
    (OSError("odd\nfailure"), "odd failure"),
    (OSError(), "OSError"),
]


@pytest.mark.parametrize(("exc", "words"), WORDS, ids=[w for _, w in WORDS])
def test_one_wording_per_failure(exc: BaseException, words: str) -> None:
    assert describe(exc) == words


def test_tls_errors_name_their_reason() -> None:
    exc = ssl.SSLError(1, "[SSL: WRONG_VERSION_NUMBER] wrong version number")
    exc.reason = "WRONG_VERSION_NUMBER"
    assert describe(exc) == "TLS error: WRONG_VERSION_NUMBER"


def test_a_drivers_wrapped_os_error_reads_the_same() -> None:
    class DriverError(Exception):
        pass

    try:
        try:
            raise ConnectionRefusedError(errno.ECONNREFUSED, "Connection refused")
        except OSError as exc:
            raise DriverError("cannot connect") from exc
    except DriverError as wrapped:
        assert underlying(wrapped) == "connection refused"
    assert underlying(DriverError("no cause")) is None


def test_reasons_are_one_bounded_line() -> None:
    assert printable("550 no\r\nsecond line\x00") == "550 no second line\\x00"
    assert printable("  padded\tand\x1b[31m coloured  ") == "padded and\\x1b[31m coloured"
    assert len(printable("x" * 500)) == 120
    assert printable("x" * 500, 10) == "xxxxxxx..."
