"""HTML: the visible text (scripts, navigation, hidden elements dropped), blocks as lines or
paragraphs, tables as "a | b" rows, <pre> kept, and sections from <h1>-<h6>.

Parsing is BeautifulSoup's (with lxml, which decodes by BOM, declared charset, then a UTF-8
guess). The text walk is hand-written on purpose: html2text/trafilatura/inscriptis return text
without the heading offsets citations need, and decide differently what counts as visible.
"""

from __future__ import annotations

import re
from pathlib import Path

from qa.ingest.base import (
    Heading,
    LoadedDocument,
    Unsupported,
    document,
    first_title,
    heading_sections,
    newlines,
    read,
)

_DROP = frozenset(
    {"script", "style", "noscript", "template", "nav", "aside", "form", "svg", "iframe"}
    | {"object", "embed", "canvas", "audio", "video", "title", "meta", "link"}
    | {"select", "textarea", "input", "button"}
)
_DROP_ROLES = frozenset({"navigation", "banner", "contentinfo", "search"})
_LINE = frozenset({"li", "dt", "dd", "tr", "caption", "figcaption", "summary", "legend"})
_PARA = frozenset(
    {"address", "article", "blockquote", "center", "details", "dialog", "div", "dl", "hr"}
    | {"fieldset", "figure", "footer", "header", "hgroup", "main", "menu", "ol", "ul", "p"}
    | {"pre", "section", "table", "tbody", "thead", "tfoot", "body", "html"}
)
_LEVELS = {f"h{n}": n for n in range(1, 7)}
_CELLS = ("td", "th")
_WS = re.compile(r"\s+")


def _dropped(tag) -> bool:
    """Invisible or navigational: dropped elements, hidden ones, site header and footer."""
    style = str(tag.get("style", "")).replace(" ", "").lower()
    return (
        tag.name in _DROP
        or tag.has_attr("hidden")
        or str(tag.get("aria-hidden", "")).strip().lower() == "true"
        or "display:none" in style
        or "visibility:hidden" in style
        or str(tag.get("role", "")).strip().lower() in _DROP_ROLES
        # a page-level header or footer is navigation; one inside an article is content
        or (
            tag.name in ("header", "footer") and not tag.find_parent(["article", "main", "section"])
        )
    )


class _TextBuilder:
    """Collapses whitespace and writes pending line (1) or paragraph (2) breaks lazily."""

    def __init__(self) -> None:
        self.parts: list[str] = []
        self.size = self.pending = 0
        self.space = False
        self.heads: list[Heading] = []

    def brk(self, n: int) -> None:
        self.pending = max(self.pending, n)

    def write(self, s: str, pre: bool = False) -> int:
        """Append `s` (raw if `pre`); returns the offset where its text starts."""
        trailing = False
        if not pre:
            s = _WS.sub(" ", s)
            self.space |= s.startswith(" ")
            s, trailing = s.strip(" "), s.endswith(" ")
        if s:
            last = self.parts[-1] if self.parts else ""
            if not last:
                sep = ""
            elif self.pending:  # a <pre> may already have ended its line
                sep = "\n" * max(0, self.pending - len(last) + len(last.rstrip("\n")))
            else:
                sep = " " if self.space else ""
            self.parts += [sep, s]
            self.size += len(sep) + len(s)
            self.pending, self.space = 0, False
        self.space |= trailing
        return self.size - len(s)


def _html_walk(root, out: _TextBuilder) -> None:
    """Depth-first without recursion, so deeply nested pages cannot overflow the stack."""
    from bs4.element import NavigableString, PreformattedString, Tag

    stack: list[tuple[object, bool]] = [(root, False)]
    pre = cells = 0
    while stack:
        node, closing = stack.pop()
        if isinstance(node, NavigableString) and not isinstance(node, PreformattedString):
            text = str(node)
            if pre and node.parent.name == "pre" and node.previous_sibling is None:
                text = text.removeprefix("\n")  # as browsers do
            out.write(newlines(text) if pre else text, pre=pre > 0)
        if not isinstance(node, Tag):
            continue
        name = node.name
        breaks = 2 if name in _PARA else 1 if name in _LINE else 0
        if closing:
            pre, cells = pre - (name == "pre"), cells - (name in _CELLS)
        elif name in _LEVELS:
            for br in node.find_all("br"):
                br.replace_with(" ")
            if title := " ".join(node.get_text().split()):
                out.brk(2)
                out.heads.append((out.write(title), _LEVELS[name], title))
                out.brk(2)
            continue
        elif name == "br":
            out.write("\n", pre=True) if pre else out.write(" ") if cells else out.brk(1)
            continue
        else:
            if name in _CELLS and node.find_previous_sibling(_CELLS):
                out.write(" | ")
            pre, cells = pre + (name == "pre"), cells + (name in _CELLS)
            stack.append((node, True))
            stack.extend((child, False) for child in reversed(node.contents))
        out.write(" ") if cells and breaks else out.brk(breaks)  # a table row stays one line


def visible_text(data: bytes | str) -> tuple[str, list[Heading], str]:
    """The visible text of an HTML page, its headings (offset, level, title) and its title
    (also for the chapters of an EPUB and HTML mail)."""
    from bs4 import BeautifulSoup

    soup = BeautifulSoup(data, "lxml")  # decodes by BOM, declared charset, then UTF-8 guess
    title_tag = soup.head.find("title") if soup.head else soup.find("title")
    title = title_tag.get_text() if title_tag else ""
    for tag in soup.find_all(_dropped):
        if not tag.decomposed:
            tag.decompose()
    out = _TextBuilder()
    _html_walk(soup.body or soup, out)
    text = "".join(out.parts).rstrip()
    return text, out.heads, title.strip() or first_title(out.heads)


def load(path: Path, source: str | None = None, data: bytes | None = None) -> LoadedDocument:
    data = read(path, data)
    if b"\x00" in data[:4096] and not data.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise Unsupported("not an HTML file (binary data)")
    text, heads, title = visible_text(data)
    return document(path, source, text, title, heading_sections(text, heads))
