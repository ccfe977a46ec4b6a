"""Relative links and anchors of Markdown files, resolved as GitHub resolves them.

A link is checked when it is relative (``docs/x.md``, ``../bench/README.md#cases``,
``#anchor``) or points into this repository on GitHub (``<homepage>/blob/main/PATH`` or
``/tree/main/PATH``, which the README uses so that PyPI can show it); other URLs are left
alone. Anchors follow GitHub's rule for headings: the heading's text as rendered, lower-cased,
with everything but letters, digits, spaces, ``-`` and ``_`` dropped and spaces made ``-``; a
repeated heading gets ``-1``, ``-2`` ... Code blocks and code spans hold no links or headings.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote

_FENCE = re.compile(r"^ {0,3}(```|~~~)")
_HEADING = re.compile(r"^ {0,3}(#{1,6})\s+(.*?)\s*#*\s*$")
_CODE_SPAN = re.compile(r"(`+)(.+?)\1")
_INLINE_LINK = re.compile(
    r"!?\[(?:[^\[\]]|\[[^\]]*\])*\]\(\s*<?([^)\s>]*)>?(?:\s+\"[^\"]*\")?\s*\)"
)
_REFERENCE = re.compile(r"^ {0,3}\[[^\]]+\]:\s*<?(\S+?)>?(?:\s+\"[^\"]*\")?\s*$")
_HTML_ID = re.compile(r"<a\s+(?:id|name)=\"([^\"]+)\"")
_TAG = re.compile(r"<[^>]+>")


@dataclass(frozen=True)
class Link:
    source: Path
    line: int
    target: str


def _prose_lines(text: str) -> list[tuple[int, str]]:
    """(line number, line) outside fenced code blocks."""
    lines = []
    fence: str | None = None
    for number, line in enumerate(text.splitlines(), 1):
        opened = _FENCE.match(line)
        if fence is not None:
            if opened and opened.group(1) == fence:
                fence = None
            continue
        if opened:
            fence = opened.group(1)
            continue
        lines.append((number, line))
    return lines


def slug(heading: str) -> str:
    text = _CODE_SPAN.sub(lambda m: m.group(2), heading)
    text = re.sub(r"!?\[([^\]]*)\]\([^)]*\)", r"\1", text)  # a link shows its text
    text = _TAG.sub("", text).lower()
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def anchors(path: Path) -> set[str]:
    found: set[str] = set()
    seen: dict[str, int] = {}
    for _, line in _prose_lines(path.read_text(encoding="utf-8")):
        found.update(_HTML_ID.findall(line))
        match = _HEADING.match(line)
        if not match:
            continue
        base = slug(match.group(2))
        count = seen.get(base, 0)
        seen[base] = count + 1
        found.add(base if count == 0 else f"{base}-{count}")
    return found


def links(path: Path) -> list[Link]:
    found = []
    for number, line in _prose_lines(path.read_text(encoding="utf-8")):
        reference = _REFERENCE.match(line)
        if reference:
            found.append(Link(path, number, reference.group(1)))
            continue
        prose = _CODE_SPAN.sub("", line)
        found += [Link(path, number, m.group(1)) for m in _INLINE_LINK.finditer(prose)]
    return found


def problems(files: list[Path], root: Path, homepage: str) -> list[str]:
    """Every link among ``files`` whose file or anchor does not exist, as ``file:line: why``."""
    own = re.compile(re.escape(homepage.rstrip("/")) + r"/(?:blob|tree)/main/([^?#]*)(#.*)?$")
    cache: dict[Path, set[str]] = {}
    found = []
    for source in files:
        for link in links(source):
            target = link.target
            mine = own.match(target)
            if mine:
                path_part, anchor = mine.group(1), (mine.group(2) or "")[1:]
                resolved = root / unquote(path_part)
            elif re.match(r"^[a-z][a-z0-9+.-]*:", target, re.IGNORECASE) or target.startswith("//"):
                continue  # another site
            else:
                path_part, _, anchor = target.partition("#")
                resolved = source.parent / unquote(path_part) if path_part else source
            where = f"{source.relative_to(root)}:{link.line}: {target}"
            resolved = resolved.resolve()
            if not resolved.is_relative_to(root.resolve()):
                found.append(f"{where}: outside the repository")
                continue
            if not resolved.exists():
                found.append(f"{where}: no such file")
                continue
            if not anchor:
                continue
            if resolved.suffix != ".md":
                found.append(f"{where}: an anchor into a file that is not Markdown")
                continue
            if resolved not in cache:
                cache[resolved] = anchors(resolved)
            if anchor not in cache[resolved]:
                found.append(f"{where}: no heading with this anchor")
    return found
