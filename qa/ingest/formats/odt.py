"""ODT (odfpy): paragraphs, list items and tables ("a | b" rows) in document order, with
sections from the headings (text:h and its outline level).

The walk is hand-written on purpose: odfpy gives the XML tree, and `teletype.extractText` the
text of one element; the headings' levels and offsets are what citations need. A
password-protected file (its manifest lists encryption data) is refused as encrypted.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path

from qa.ingest.base import (
    LoadedDocument,
    Unsupported,
    block_document,
    newlines,
    open_zip,
    read,
    reason,
)

_CONTAINERS = ("section", "list", "list-item", "list-header", "index-body", "table-of-content")


def _blocks(element) -> Iterator[tuple[str, int | None]]:
    """(text, heading level or None) of the blocks under `element`, in document order."""
    from odf import teletype

    stack = list(reversed(element.childNodes))
    while stack:
        node = stack.pop()
        name = getattr(node, "tagName", "") or ""
        local = name.split(":")[-1]
        if name == "text:h":
            level = node.getAttribute("outlinelevel") or "1"
            yield " ".join(teletype.extractText(node).split()), int(level)
        elif name == "text:p":
            yield newlines(teletype.extractText(node)).strip(), None
        elif name == "table:table":
            for row in node.getElementsByType(_table_row()):
                cells = [" ".join(teletype.extractText(c).split()) for c in row.childNodes]
                yield " | ".join(c for c in cells if c), None
        elif name.startswith(("text:", "table:")) and local in _CONTAINERS:
            stack.extend(reversed(node.childNodes))


def _table_row():
    from odf.table import TableRow

    return TableRow


def load(path: Path, source: str | None = None, data: bytes | None = None) -> LoadedDocument:
    from odf.opendocument import load as load_odf

    data = read(path, data)
    archive = open_zip(data, "ODT")
    try:
        manifest = archive.read("META-INF/manifest.xml")
    except KeyError:
        manifest = b""
    if b"encryption-data" in manifest:
        raise Unsupported("encrypted ODT: it needs a password")
    try:
        doc = load_odf(io.BytesIO(data))
        blocks = [(text, level) for text, level in _blocks(doc.text) if text]
    except Exception as exc:
        raise Unsupported(reason("corrupt ODT", exc)) from exc
    return block_document(path, source, blocks)
