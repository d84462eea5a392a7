"""Text that came from outside (real servers, scripts, the kernel) made safe, once.

Every reason a check gives reaches a log line, the monitorfile, ``status -v``, ``/status`` and
the status page. A real server controls it, so before it goes anywhere it is redacted (a
server may echo the password it was sent) and made inert: no terminal escape, no line break,
no character a log reader or a page could misinterpret, and a bounded length.
"""

from __future__ import annotations

import dataclasses
import re
import unicodedata
from collections.abc import Iterable

#: Longest reason kept: enough for a status line and a regex, not for a page.
MAX_REASON = 512
#: Unicode categories that never belong in a one-line reason: controls (C0, DEL, C1 with NEL
#: and CSI), format characters (bidi overrides, zero-width), line and paragraph separators,
#: surrogates and unassigned code points.
_UNSAFE_CATEGORIES = frozenset({"Cc", "Cf", "Zl", "Zp", "Cs", "Cn"})
#: Spec fields that hold credentials.
_SECRET_FIELDS = ("passwd", "password", "secret")


# key=value / key: value forms of credentials, caught even when the value is not known up front
# (e.g. a library echoing a DSN). Known values (passwd=, secret= from the config) are redacted
# exactly as well, wherever they appear.
_SECRET_KV = re.compile(
    r"(?i)\b(passwd|password|pass|secret|pwd|auth)(\s*[=:]\s*)(\"[^\"]*\"|'[^']*'|\S+)"
)
_URL_CREDENTIALS = re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://[^/\s:@]*:)([^@\s/]+)(@)")
MASK = "********"


def redact(text: str, secrets: Iterable[str] = ()) -> str:
    """Replace known secret values and credential-looking fragments with a mask."""
    for secret in sorted({s for s in secrets if s}, key=len, reverse=True):
        text = text.replace(secret, MASK)
    text = _SECRET_KV.sub(lambda m: m.group(1) + m.group(2) + MASK, text)
    return _URL_CREDENTIALS.sub(lambda m: m.group(1) + MASK + m.group(3), text)


def safe_text(text: str, limit: int = MAX_REASON) -> str:
    """``text`` on one line with every unsafe character escaped (``\\x1b``, ``\\u2028``) and
    its length bounded."""
    if len(text) <= limit and text.isascii() and text.isprintable():
        return text  # the common answer ("HTTP 200 OK"): nothing to escape, checked in C
    out: list[str] = []
    size = 0
    for char in text:
        if unicodedata.category(char) in _UNSAFE_CATEGORIES:
            code = ord(char)
            piece = f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"
        else:
            piece = char
        out.append(piece)
        size += len(piece)
        if size > limit:
            break
    cleaned = "".join(out)
    return cleaned if size <= limit else cleaned[: limit - 3] + "..."


def secrets_of(spec: object) -> tuple[str, ...]:
    """The credentials a check spec carries, to be masked wherever its results are shown."""
    kind = type(spec)
    names = _secret_fields.get(kind)
    if names is None:  # once per spec type: every check result passes through here
        fields = dataclasses.fields(kind) if dataclasses.is_dataclass(kind) else ()
        names = _secret_fields[kind] = tuple(f.name for f in fields if f.name in _SECRET_FIELDS)
    values = (getattr(spec, name, "") for name in names)
    return tuple(value for value in values if isinstance(value, str) and value)


#: The credential fields of each spec type seen (a handful of check types).
_secret_fields: dict[type, tuple[str, ...]] = {}


def clean_reason(reason: str, secrets: Iterable[str] = ()) -> str:
    """A reason from outside, redacted and made safe: the one path every reason takes."""
    return safe_text(redact(reason, secrets))
