"""First stage of the config layer: raw bytes of an ldirectord.cf -> one ``Line`` per directive.

Pure. Here ldirector is deliberately more robust than ldirectord: CRLF and trailing blanks are
ignored, ``#`` inside a quoted value is literal, and blank lines do not end a virtual block
(indentation alone says which lines belong to it).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from ldirector.config.errors import Diagnostic, Severity, Span

MAX_LINE = 65536  # no directive needs more; a longer line is junk, not config

_DIRECTIVE = re.compile(r"([A-Za-z0-9_.-]+)[ \t]*(?:=[ \t]*(.*))?")
#: Control characters (C0 but tab, DEL, C1 with NEL) and the Unicode line and paragraph
#: separators: inside a value they reach host names, headers and commands, where a CR or a line
#: break splits one value into two; a terminal would also hide them from whoever reads the file.
_CONTROL = re.compile("[\x00-\x08\x0a-\x1f\x7f-\x9f\u2028\u2029]")


@dataclass(frozen=True, slots=True)
class Line:
    """One directive line: ``key = value`` (``value`` is None for a bare ``key``)."""

    key: str
    value: str | None
    indented: bool
    span: Span


def strip_comment(text: str) -> str:
    """Drop a trailing comment: a ``#`` outside double quotes, at the start or after a blank."""
    if "#" not in text:
        return text
    quoted = False
    for i, ch in enumerate(text):
        if ch == '"':
            quoted = not quoted
        elif ch == "#" and not quoted and (i == 0 or text[i - 1] in " \t"):
            return text[:i]
    return text


def lex(data: bytes, file: str) -> tuple[list[Line], list[Diagnostic]]:
    """Split ``data`` into directive lines; lines that cannot be read become error diagnostics."""
    lines: list[Line] = []
    diags: list[Diagnostic] = []

    def error(lineno: int, message: str) -> None:
        diags.append(Diagnostic(Severity.ERROR, Span(file, lineno), message))

    for lineno, raw in enumerate(data.split(b"\n"), start=1):
        if len(raw) > MAX_LINE:
            error(lineno, f"line too long ({len(raw)} bytes; at most {MAX_LINE})")
            continue
        if b"\0" in raw:
            error(lineno, "line contains a NUL byte: is this a text file?")
            continue
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            error(lineno, "line is not valid UTF-8")
            continue
        # CRLF files: the CR before the line feed is part of the line ending, not of the value.
        text = text.removesuffix("\r")
        if not text.strip() or text.lstrip().startswith("#"):
            continue
        content = strip_comment(text)
        if bad := _CONTROL.search(content):
            at = f"U+{ord(bad.group()):04X} in column {bad.start() + 1}"
            error(lineno, f"control character {at}: only tab may appear inside a line")
            continue
        body = content.strip()
        if not body:
            continue
        m = _DIRECTIVE.fullmatch(body)
        if m is None:
            shown = body if len(body) <= 60 else body[:57] + "..."
            error(lineno, f"cannot parse {shown!r}: expected 'directive = value'")
            continue
        value = m.group(2)
        lines.append(
            Line(
                key=m.group(1),
                value=None if value is None else value.strip(),
                indented=text[0] in " \t",
                span=Span(file, lineno),
            )
        )
    return lines, diags
