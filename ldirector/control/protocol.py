"""The control socket's protocol: where the socket is, how a message is framed, and the client.

Both ends share this module: the daemon's end is ``ldirector.control.server``, the command line
calls :func:`request`. A unix socket at ``/run/ldirector/<CFGNAME>.sock`` speaks JSON lines:
each request is one object with a ``cmd`` (a :class:`Verb`), each reply one object with ``ok``
and either the result or a one-line ``error``. The client is plain blocking sockets.
"""

from __future__ import annotations

import enum
import json
import os
import socket
import time
from pathlib import Path
from typing import Any

from ldirector.core.text import safe_text

CONTROL_DIR = Path("/run/ldirector")
#: A request line longer than this is refused (a status reply may be longer; requests never are).
MAX_REQUEST = 64 * 1024
#: The longest drain an operator may ask for, in seconds: a week.
MAX_DRAIN = 7 * 86400
#: A reply longer than this is refused by the client: a status of 100,000 reals fits in it.
MAX_REPLY = 256 * 1024 * 1024


class Verb(enum.StrEnum):
    """What a request asks for: its ``cmd``."""

    PING = "ping"
    STATUS = "status"
    DISABLE = "disable"
    ENABLE = "enable"
    DRAIN = "drain"


#: The verbs that change an operator's hold on one real; each names a VIRTUAL and a REAL.
HOLD_VERBS = (Verb.DISABLE, Verb.ENABLE, Verb.DRAIN)


class ControlError(Exception):
    """A request that failed: ``str()`` is the one line to show."""


class FrameError(ValueError):
    """A line that is not one JSON object: ``str()`` is the error to reply with."""


def control_dir() -> Path:
    """``/run/ldirector``, or ``$LDIRECTOR_CONTROL_DIR`` (tests, unprivileged sandboxes)."""
    return Path(os.environ.get("LDIRECTOR_CONTROL_DIR") or CONTROL_DIR)


def socket_path(cfgname: str, directory: Path | None = None) -> Path:
    """``/run/ldirector/<CFGNAME>.sock``."""
    return (directory or control_dir()) / f"{cfgname}.sock"


def encode(message: dict[str, Any]) -> bytes:
    """One message as one line."""
    return json.dumps(message).encode() + b"\n"


def decode(line: bytes) -> dict[str, Any]:
    """One line as one message; FrameError for anything else, whatever the bytes."""
    try:
        message = json.loads(line)
    except (ValueError, UnicodeDecodeError):
        raise FrameError("not a JSON object") from None
    except RecursionError:  # "[[[[..." thousands deep: the parser recurses once per level
        raise FrameError("not a JSON object (nested too deeply)") from None
    if not isinstance(message, dict):
        raise FrameError("not a JSON object")
    return message


def request(path: Path, message: dict[str, Any], *, timeout: float = 15.0) -> dict[str, Any]:
    """Send one request and return the reply's payload; ControlError on any failure."""
    deadline = time.monotonic() + timeout
    data = bytearray()
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(timeout)
        try:
            sock.connect(str(path))
            sock.sendall(encode(message))
            while not data.endswith(b"\n"):
                sock.settimeout(max(0.01, deadline - time.monotonic()))
                chunk = sock.recv(1 << 16)
                if not chunk:
                    break
                data += chunk
                if len(data) > MAX_REPLY:
                    raise ControlError(f"the daemon sent an oversized reply on {path}")
        except FileNotFoundError:
            raise ControlError(f"no control socket at {path}: is the daemon running?") from None
        except PermissionError:
            raise ControlError(
                f"permission denied on {path}: the control socket is root only"
            ) from None
        except TimeoutError:
            raise ControlError(
                f"the daemon did not answer on {path} within {timeout:g} s"
            ) from None
        except OSError as exc:
            raise ControlError(
                f"cannot talk to the daemon on {path}: {exc.strerror or exc}"
            ) from None
    try:
        reply = decode(bytes(data))
    except FrameError:
        raise ControlError(f"the daemon sent an unreadable reply on {path}") from None
    if not reply.get("ok"):
        raise ControlError(safe_text(str(reply.get("error") or "the daemon refused the request")))
    return reply
