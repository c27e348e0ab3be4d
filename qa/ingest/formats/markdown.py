"""Markdown: the text as it is, with sections from ATX (`## x`) and setext headings.

Hand-written on purpose: a Markdown parser (markdown-it, mistune) renders HTML and drops the
source offsets that citations need; finding headings outside code fences is all that is used.
"""

from __future__ import annotations

import re
from pathlib import Path

from qa.ingest.base import Heading, LoadedDocument, document, first_title, heading_sections, read
from qa.ingest.encoding import decode

_ATX = re.compile(r" {0,3}(#{1,6})(?=[ \t]|$)(.*)$")
_FENCE = re.compile(r" {0,3}(`{3,}|~{3,})(.*)$")
_SETEXT = re.compile(r" {0,3}(=+|-+)[ \t]*$")
_PLAIN = re.compile(r" {0,3}(?![-*+>|#]|\d+[.)]|`{3}|~{3})\S")  # a line that can be a paragraph
_LINK = re.compile(r"!?\[([^\]]*)\]\([^)]*\)")


def _md_title(raw: str) -> str:
    raw = re.sub(r"(?:^|[ \t]+)#+[ \t]*$", "", raw.strip())
    raw = _LINK.sub(r"\1", raw).replace("`", "").replace("**", "").replace("__", "")
    return " ".join(raw.split())


def markdown_headings(text: str) -> list[Heading]:
    """ATX (`## x`) and setext (`x` over `===`) headings outside fenced code blocks."""
    heads: list[Heading] = []
    fence = ""  # the opening fence while inside a fenced code block
    offset, prev, prev_at = 0, "", 0  # prev: the line above, if it can be a setext title
    lines = text.split("\n")
    if lines and lines[0].strip() == "---":  # YAML front matter holds no headings
        close = next((i for i, ln in enumerate(lines[1:], 1) if ln.strip() in ("---", "...")), 0)
        offset = sum(len(ln) + 1 for ln in lines[: close + 1]) if close else 0
        lines = lines[close + 1 :] if close else lines
    for line in lines:
        here, offset = offset, offset + len(line) + 1
        above, above_at, prev = prev, prev_at, ""
        f = _FENCE.match(line)
        if fence:  # inside a code block only its closing fence counts
            if f and f.group(1)[0] == fence[0] and len(f.group(1)) >= len(fence):
                fence = fence if f.group(2).strip() else ""
        elif f and not (f.group(1)[0] == "`" and "`" in f.group(2)):
            fence = f.group(1)
        elif (m := _ATX.match(line)) and (title := _md_title(m.group(2))):
            heads.append((here, len(m.group(1)), title))
        elif (m := _SETEXT.match(line)) and above and (title := _md_title(above)):
            heads.append((above_at, 1 if m.group(1)[0] == "=" else 2, title))
        elif _PLAIN.match(line):
            prev, prev_at = line, here
    return heads


def load(path: Path, source: str | None = None, data: bytes | None = None) -> LoadedDocument:
    text = decode(read(path, data))
    heads = markdown_headings(text)
    return document(path, source, text, first_title(heads), heading_sections(text, heads))
