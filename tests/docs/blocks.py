"""Fenced code blocks of a Markdown page, with the ``<!-- docs-test: ... -->`` marker above each.

Fences are found wherever Markdown renders them: at the top level, indented in lists and admonitions, and
inside blockquotes (``> ```python``), whose ``>`` markers are stripped from the code.
"""

from __future__ import annotations

import re
import shlex
import textwrap
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
DOCS = REPO / "docs"
OTHER_PAGES = (REPO / "README.md", REPO / "examples" / "README.md")
"""Pages outside docs/ whose blocks are checked too; their commands run from the root of a checkout."""

_FENCE = re.compile(r"^(?P<indent>[ \t]*)(?P<fence>`{3,}|~{3,})(?P<info>.*)$")
_QUOTE = re.compile(r"^ {0,3}> ?")
_MARKER = re.compile(r"^\s*<!--\s*docs-test:\s*(?P<body>.*?)\s*-->\s*$")
_ATTRIBUTE = re.compile(r'(\w+)="([^"]*)"')

MARKER_KINDS = frozenset({"output", "excerpt", "schema", "static", "signature", "given", "not-checked", "fresh-clone"})


class PageError(Exception):
    """A page the harness cannot read: an unclosed fence, a stray or unknown marker."""


@dataclass(frozen=True)
class Marker:
    """``<!-- docs-test: KIND ARGS -->``: ``args`` are the words after the kind, ``options`` the ``key=value`` ones."""

    kind: str
    args: tuple[str, ...] = ()
    options: dict[str, str] = field(default_factory=dict[str, str])

    @property
    def text(self) -> str:
        """The words after the kind, as written (a reason, a file name, a dotted name)."""
        return " ".join(self.args)


@dataclass(frozen=True)
class Block:
    """One fenced block: where it is, its language and title, its code (dedented) and its marker."""

    page: Path
    line: int
    language: str
    title: str | None
    code: str
    marker: Marker | None

    @property
    def where(self) -> str:
        """``page.md:LINE`` of the opening fence, for messages."""
        return f"{display(self.page)}:{self.line}"

    def marked(self, kind: str) -> bool:
        return self.marker is not None and self.marker.kind == kind


def display(page: Path) -> str:
    """The page's path from the repository root (pages elsewhere, as in the harness's own tests, as given)."""
    return str(page.relative_to(REPO)) if page.is_relative_to(REPO) else str(page)


def parse_marker(body: str, where: str) -> Marker:
    """Split a marker's body into its kind, words and ``key=value`` options; an unknown kind is a PageError."""
    try:
        words = shlex.split(body)
    except ValueError as exc:  # an unclosed quote
        raise PageError(f"{where}: docs-test marker {body!r}: {exc}") from None
    if not words or words[0] not in MARKER_KINDS:
        raise PageError(f"{where}: unknown docs-test marker {body!r}; known: {', '.join(sorted(MARKER_KINDS))}")
    options = dict(word.split("=", 1) for word in words[1:] if "=" in word)
    args = tuple(word for word in words[1:] if "=" not in word)
    return Marker(words[0], args, options)


def read_blocks(page: Path) -> list[Block]:
    """Every fenced block of ``page`` in order; a marker must sit on the last non-blank line above a fence."""
    lines = page.read_text(encoding="utf-8").splitlines()
    rel = display(page)
    blocks: list[Block] = []
    pending: tuple[int, Marker] | None = None
    i = 0
    while i < len(lines):
        depth, line = _unquote_all(lines[i])
        marker = _MARKER.match(line)
        if marker:
            if pending is not None:
                raise PageError(f"{rel}:{pending[0]}: a docs-test marker that no code block follows")
            pending = (i + 1, parse_marker(marker["body"], f"{rel}:{i + 1}"))
            i += 1
            continue
        fence = _FENCE.match(line)
        if not fence:
            if line.strip() and pending is not None:
                raise PageError(f"{rel}:{pending[0]}: a docs-test marker must be right above a code block")
            i += 1
            continue
        end = _closing_fence(lines, i, depth, fence["indent"], fence["fence"])
        if end is None:
            inside = " inside a blockquote (every line of it needs the `>`)" if depth else ""
            raise PageError(f"{rel}:{i + 1}: a code block{inside} that is never closed")
        info = fence["info"].strip()
        language = info.split()[0].lower() if info and not info.startswith(("{", "title=")) else ""
        title = dict(_ATTRIBUTE.findall(info)).get("title")
        body = textwrap.dedent("\n".join(_unquote(text, depth) or "" for text in lines[i + 1 : end]))
        blocks.append(Block(page, i + 1, language, title, body + "\n", pending[1] if pending else None))
        pending = None
        i = end + 1
    if pending is not None:
        raise PageError(f"{rel}:{pending[0]}: a docs-test marker that no code block follows")
    return blocks


def _unquote(line: str, depth: int) -> str | None:
    """``line`` without ``depth`` blockquote markers; None if it has fewer (the blockquote ended)."""
    for _ in range(depth):
        quote = _QUOTE.match(line)
        if quote is None:
            return None
        line = line[quote.end() :]
    return line


def _unquote_all(line: str) -> tuple[int, str]:
    """How deep in blockquotes ``line`` is, and its text without the markers."""
    depth = 0
    while quote := _QUOTE.match(line):
        depth += 1
        line = line[quote.end() :]
    return depth, line


def _closing_fence(lines: list[str], start: int, depth: int, indent: str, fence: str) -> int | None:
    """Index of the line that closes the fence opened at ``start`` (same character, at least as long, in the
    same blockquote); None if the page, or the blockquote the fence is in, ends first."""
    closing = re.compile(rf"^[ \t]{{0,{len(indent) + 3}}}{re.escape(fence[0])}{{{len(fence)},}}\s*$")
    for j in range(start + 1, len(lines)):
        text = _unquote(lines[j], depth)
        if text is None:
            return None
        if closing.match(text):
            return j
    return None


def pages() -> list[Path]:
    """Every Markdown page under docs/ that holds a code block or a marker, then README.md and examples/README.md."""
    found = []
    for page in [*sorted(DOCS.rglob("*.md")), *OTHER_PAGES]:
        text = page.read_text(encoding="utf-8")
        if "```" in text or "~~~" in text or "docs-test:" in text:
            found.append(page)
    return found
