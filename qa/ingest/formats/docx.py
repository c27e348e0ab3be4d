"""DOCX (python-docx): paragraphs and tables in document order, tables as "a | b" rows, and
sections from the Title and Heading n styles (or styles based on them).

The walk over blocks is hand-written on purpose: python-docx has no "text with heading levels in
reading order", and docx2txt/mammoth drop the paragraph styles the sections come from.
"""

from __future__ import annotations

import io
import re
from collections.abc import Iterator
from pathlib import Path

from qa.ingest.base import LoadedDocument, Unsupported, block_document, newlines, read, reason

_HEADING_STYLE = re.compile(r"heading\s*([1-9])$", re.IGNORECASE)


def _docx_level(paragraph) -> int | None:
    """0 for the Title style, n for Heading n (or a style based on one), else None."""
    style = paragraph.style
    for _ in range(4):
        name = (style.name or "").strip() if style is not None else ""
        if name.lower() == "title":
            return 0
        if m := _HEADING_STYLE.match(name):
            return int(m.group(1))
        style = style.base_style if style is not None else None
    return None


def _docx_blocks(doc) -> Iterator[tuple[str, int | None]]:
    """(text, heading level or None) for each paragraph and table, in document order."""
    from docx.table import Table

    for block in doc.iter_inner_content():
        if not isinstance(block, Table):
            yield newlines(block.text).strip(), _docx_level(block)
            continue
        rows = []
        for row in block.rows:
            cells = {cell._tc: cell for cell in row.cells}  # a merged cell is listed per column
            rows.append(" | ".join(t for c in cells.values() if (t := " ".join(c.text.split()))))
        yield "\n".join(row for row in rows if row), None


def load(path: Path, source: str | None = None, data: bytes | None = None) -> LoadedDocument:
    import docx

    data = read(path, data)
    if data.startswith(b"\xd0\xcf\x11\xe0"):
        raise Unsupported("not a DOCX file (legacy .doc or encrypted)")
    try:
        doc = docx.Document(io.BytesIO(data))
        blocks = [(text, level) for text, level in _docx_blocks(doc) if text]
        title = doc.core_properties.title or ""
    except Exception as exc:
        raise Unsupported(reason("corrupt DOCX", exc)) from exc
    return block_document(path, source, blocks, title, title_levels=(0, 1))
