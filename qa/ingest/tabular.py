"""Rows of a table as text: each row one paragraph of "Header: value; Header: value" (the
header row as context, as the issue asks), located by sheet and row, for xlsx and csv/tsv.

Rows are separated by blank lines so that each is its own sentence and a span over several
rows can be narrowed to the rows it quotes (`Locator.narrowed`). Cell text is put on one line.
"""

from __future__ import annotations

from collections.abc import Iterable

from qa.ingest.base import Part
from qa.records import Locator

MAX_CELL_CHARS = 2_000


def cell_text(value) -> str:
    """A cell as one line of text ('' for an empty cell); floats that are whole print as ints."""
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return " ".join(str(value).split())[:MAX_CELL_CHARS]


def row_parts(
    rows: Iterable[tuple[int, list[str]]], sheet: str | None, headings: tuple[str, ...] = ()
) -> list[Part]:
    """One part per non-empty row of (row number, cells); the first non-empty row is the header.
    A row's text names each value by its column's header ("Region: North; Sales: 12")."""
    parts: list[Part] = []
    header: list[str] | None = None
    for number, cells in rows:
        if not any(cells):
            continue
        if header is None:
            header = cells
            text = " | ".join(c for c in cells if c)
        else:
            pairs = []
            for i, value in enumerate(cells):
                if not value:
                    continue
                name = header[i] if i < len(header) and header[i] else ""
                pairs.append(f"{name}: {value}" if name else value)
            text = "; ".join(pairs)
        parts.append(Part(text, Locator(sheet=sheet, row=number), headings))
    return parts
