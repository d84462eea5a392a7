"""keepalived.conf's grammar: lines of words, with blocks in braces, read into a tree of nodes.

A statement is a keyword and its arguments on one line, optionally followed by a block: ``{``
(on that line or alone on the next) up to the matching ``}``, which may also close on the
same line (``real_server 10.0.0.2 80 { weight 2 }``). ``#`` and ``!`` start a comment outside
double quotes; a double-quoted string is one word. ``include FILE`` splices a file in where it
stands, relative to the including file's directory; a pattern (``*``, ``?``, ``[``, ``{``) is
not expanded but reported. keepalived's conditional lines (``@id``), parameter definitions
(``$NAME=``) and substitutions are reported and left out, since their meaning depends on the
host keepalived runs on.

Hostile input is bounded: line length, nesting depth, node count and the total size of the
included files; every problem is a diagnostic at its FILE:LINE, never an exception.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from ldirector.config.errors import Diagnostic, Severity, Span
from ldirector.config.files import read_regular

MAX_LINE = 65536
MAX_DEPTH = 32
MAX_NODES = 200_000
#: The main file and all the files it includes together.
MAX_TOTAL = 64 * 1024 * 1024
MAX_INCLUDE_DEPTH = 8
INCLUDES = frozenset({"include", "includer", "includem", "includew", "includeb", "includea"})

_WORD = re.compile(r'"([^"]*)"?|\{|\}|[^\s{}"]+')
_CONTROL = re.compile("[\x00-\x08\x0a-\x1f\x7f]")
_PATTERN = re.compile(r"[*?\[{]")
#: ``include NAME`` or ``include "NAME"``, and perhaps a comment: braces are part of a name.
_INCLUDE = re.compile(r'\s*\S+\s+(?:"([^"]+)"|([^\s"#!]+))\s*(?:[#!].*)?')
_SUBSTITUTION = re.compile(r"\$(\{[A-Za-z_][A-Za-z0-9_]*\}|[A-Za-z_][A-Za-z0-9_]*)")

#: Reads one included file: its text, or OSError.
Reader = Callable[[str], str]


@dataclass
class Node:
    """One statement: ``keyword args...`` and, when it has one, its block's statements."""

    keyword: str
    args: list[str]
    span: Span
    children: list[Node] | None = None

    def find(self, keyword: str) -> Node | None:
        """The last statement ``keyword`` of this node's block (keepalived's last one wins)."""
        found = None
        for child in self.children or ():
            if child.keyword == keyword:
                found = child
        return found


@dataclass
class _Token:
    text: str
    line: Span
    brace: str = ""  # "{" or "}" for a brace, else ""


@dataclass
class Parsed:
    """The statements of a file and the problems found reading it."""

    nodes: list[Node] = field(default_factory=list)
    diagnostics: list[Diagnostic] = field(default_factory=list)
    #: Each line read, by the order it was read in (included files where they are included),
    #: so that messages can be given in the order of the configuration.
    order: dict[Span, int] = field(default_factory=dict)


def read_file(path: str) -> str:
    """A keepalived file's text; OSError when it cannot be read or is too large."""
    return read_regular(path, MAX_TOTAL).decode("utf-8", "surrogateescape")


class _Reader:
    """Turns the text of a file and of the files it includes into tokens."""

    def __init__(self, read: Reader) -> None:
        self.read = read
        self.diagnostics: list[Diagnostic] = []
        self.total = 0
        self.open: list[str] = []  # the include chain, to refuse a file including itself
        self.order: dict[Span, int] = {}

    def warn(self, span: Span, message: str) -> None:
        self.diagnostics.append(Diagnostic(Severity.WARNING, span, message))

    def tokens(self, text: str, path: str) -> Iterator[_Token]:
        self.total += len(text)
        self.open.append(os.path.normpath(path))
        try:
            for number, raw in enumerate(text.split("\n"), start=1):
                yield from self.line_tokens(raw, Span(path, number))
        finally:
            self.open.pop()

    def line_tokens(self, raw: str, span: Span) -> Iterator[_Token]:
        self.order.setdefault(span, len(self.order))
        if len(raw) > MAX_LINE:
            self.warn(span, f"line too long ({len(raw)} characters; at most {MAX_LINE}): skipped")
            return
        text = raw.rstrip("\r")
        if _CONTROL.search(text):
            self.warn(span, "line holds control characters: skipped")
            return
        words = _words(text)
        if not words:
            return
        first = words[0].text
        if first.startswith("@"):
            self.warn(span, "conditional line (@...) depends on keepalived's host: skipped")
            return
        if first.startswith("$") and "=" in first:
            self.warn(span, "parameter definition ($NAME=...) is not supported: skipped")
            return
        if _SUBSTITUTION.search(text) or "~SEQ(" in text:
            self.warn(span, "parameter substitution ($NAME, ~SEQ) is not supported: line skipped")
            return
        if first in INCLUDES:
            yield from self.include(text, span)
            return
        for word in words:
            word.line = span
            yield word
        yield _Token("", span, "\n")

    def include(self, text: str, span: Span) -> Iterator[_Token]:
        m = _INCLUDE.fullmatch(text)
        if m is None:
            self.warn(span, "include needs one file name: skipped")
            return
        name = m.group(1) if m.group(1) is not None else m.group(2)
        if _PATTERN.search(name):
            self.warn(span, f"include of a pattern ({_shown(name)}) is not expanded: skipped")
            return
        base = os.path.dirname(self.open[-1]) if self.open else ""
        path = os.path.normpath(os.path.join(base, name))
        if path in self.open:
            self.warn(span, f"include of {_shown(name)} includes itself: skipped")
            return
        if len(self.open) >= MAX_INCLUDE_DEPTH:
            self.warn(span, f"includes nested more than {MAX_INCLUDE_DEPTH} deep: skipped")
            return
        try:
            text = self.read(path)
        except OSError as exc:
            self.warn(span, f"cannot read included file {_shown(path)}: {exc.strerror or exc}")
            return
        if self.total + len(text) > MAX_TOTAL:
            self.warn(span, f"included files exceed {MAX_TOTAL // (1024 * 1024)} MiB: skipped")
            return
        yield from self.tokens(text, path)


def _words(text: str) -> list[_Token]:
    """The words of one line, up to a comment; a quoted string is one word without its quotes."""
    words: list[_Token] = []
    nowhere = Span("")
    for m in _WORD.finditer(text):
        token = m.group()
        if token in ("{", "}"):
            words.append(_Token(token, nowhere, token))
        elif token.startswith('"'):
            words.append(_Token(m.group(1), nowhere))
        else:
            cut = next((i for i, ch in enumerate(token) if ch in "#!"), None)
            if cut is None:
                words.append(_Token(token, nowhere))
                continue
            if cut:
                words.append(_Token(token[:cut], nowhere))
            break
    return words


def _shown(text: str) -> str:
    return repr(text if len(text) <= 80 else text[:77] + "...")


def parse(text: str, path: str, read: Reader = read_file) -> Parsed:
    """The statement tree of ``text`` (the contents of ``path``) and every problem met."""
    reader = _Reader(read)
    out = Parsed()
    stack: list[tuple[list[Node], Node | None]] = [(out.nodes, None)]
    words: list[_Token] = []
    nodes = 0
    last: Node | None = None  # the statement just ended, which a "{" on the next line opens

    def flush() -> None:
        nonlocal nodes, last
        if words:
            nodes += 1
            node = Node(words[0].text, [w.text for w in words[1:]], words[0].line)
            stack[-1][0].append(node)
            last = node
            words.clear()

    for token in reader.tokens(text, path):
        if nodes > MAX_NODES:
            reader.warn(token.line, f"more than {MAX_NODES} statements: the rest is skipped")
            break
        if token.brace == "\n":
            flush()
        elif token.brace == "{":
            flush()
            block: list[Node] = []
            if last is None or last.children is not None:
                reader.warn(token.line, "a block without a keyword: skipped")
                owner = Node("{", [], token.line, block)
            else:
                owner = last
                owner.children = block
            if len(stack) > MAX_DEPTH:
                reader.warn(token.line, f"blocks nested more than {MAX_DEPTH} deep: skipped")
                stack.append(([], owner))  # read and dropped
            else:
                stack.append((block, owner))
            last = None
        elif token.brace == "}":
            flush()
            if len(stack) == 1:
                reader.warn(token.line, "'}' without a block to close: ignored")
            else:
                stack.pop()
            last = None
        else:
            if not words:
                last = None
            words.append(token)
    flush()
    for _, unclosed in stack[1:]:
        if unclosed is not None:
            reader.warn(
                unclosed.span, f"block of {unclosed.keyword} is never closed: it ends the file"
            )
    out.diagnostics = reader.diagnostics
    out.order = reader.order
    return out
