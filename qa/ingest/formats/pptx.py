"""PPTX (python-pptx): each slide's text (its title first, then text boxes, tables as "a | b"
rows and grouped shapes, top to bottom) and its speaker notes, one part per slide, located by
slide number and headed by the slide's title.

The shape walk is hand-written on purpose: python-pptx gives shapes, not "the slide's text in
reading order", and other extractors drop the slide numbers that citations need.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path

from qa.ingest.base import (
    LoadedDocument,
    Part,
    Unsupported,
    newlines,
    open_zip,
    parts_document,
    read,
    reason,
)
from qa.records import Locator


def _shape_texts(shapes) -> Iterator[str]:
    """The text of `shapes` and the shapes grouped in them, top to bottom, left to right."""
    ordered = sorted(shapes, key=lambda s: ((s.top or 0), (s.left or 0)))
    for shape in ordered:
        if getattr(shape, "shape_type", None) == 6 and hasattr(shape, "shapes"):  # a group
            yield from _shape_texts(shape.shapes)
        elif getattr(shape, "has_table", False) and shape.has_table:
            lines = []
            for row in shape.table.rows:
                cells = [" ".join(c.text.split()) for c in row.cells]
                lines.append(" | ".join(c for c in cells if c))
            yield "\n".join(line for line in lines if line)
        elif getattr(shape, "has_text_frame", False) and shape.has_text_frame:
            yield newlines(shape.text_frame.text).strip()


def _slide_part(number: int, slide) -> Part:
    title_shape = slide.shapes.title
    title = " ".join(title_shape.text_frame.text.split()) if title_shape is not None else ""
    others = [s for s in slide.shapes if title_shape is None or s.shape_id != title_shape.shape_id]
    blocks = ([title] if title else []) + [t for t in _shape_texts(others) if t]
    frame = slide.notes_slide.notes_text_frame if slide.has_notes_slide else None
    notes = newlines(frame.text).strip() if frame is not None else ""
    if notes:
        blocks.append(f"Notes: {notes}")
    text = "\n\n".join(blocks)
    heading = (f"Slide {number}: {title}",) if title else (f"Slide {number}",)
    return Part(text, Locator(slide=number), heading)


def load(path: Path, source: str | None = None, data: bytes | None = None) -> LoadedDocument:
    from pptx import Presentation

    data = read(path, data)
    open_zip(data, "PPTX")
    try:
        deck = Presentation(io.BytesIO(data))
        parts = [_slide_part(n, slide) for n, slide in enumerate(deck.slides, 1)]
        title = deck.core_properties.title or ""
    except Unsupported:
        raise
    except Exception as exc:
        raise Unsupported(reason("corrupt PPTX", exc)) from exc
    if not parts:
        raise Unsupported("PPTX has no slides")
    if not title:
        title = next((p.headings[0].split(": ", 1)[-1] for p in parts if ": " in p.headings[0]), "")
    return parts_document(path, source, parts, title)
