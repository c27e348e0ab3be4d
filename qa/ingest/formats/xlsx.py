"""XLSX (openpyxl, read-only, cached formula values): each sheet's rows, the header row as
context ("Region: North; Sales: 12"), located by sheet and row (as the spreadsheet numbers
them) and headed by the sheet's name. See `qa.ingest.tabular`.
"""

from __future__ import annotations

import io
from pathlib import Path

from qa.ingest.base import LoadedDocument, Part, Unsupported, open_zip, parts_document, read, reason
from qa.ingest.tabular import cell_text, row_parts

MAX_ROWS = 500_000  # in all sheets together


def load(path: Path, source: str | None = None, data: bytes | None = None) -> LoadedDocument:
    from openpyxl import load_workbook

    data = read(path, data)
    open_zip(data, "XLSX")
    try:
        book = load_workbook(io.BytesIO(data), read_only=True, data_only=True)
    except Exception as exc:
        raise Unsupported(reason("corrupt XLSX", exc)) from exc
    parts: list[Part] = []
    seen = 0
    try:
        for sheet in book.worksheets:
            rows = []
            for number, values in enumerate(sheet.iter_rows(values_only=True), 1):
                seen += 1
                if seen > MAX_ROWS:
                    raise Unsupported(f"XLSX too large: more than {MAX_ROWS:,} rows")
                rows.append((number, [cell_text(v) for v in values]))
            parts += row_parts(rows, sheet.title, (sheet.title,))
        title = book.properties.title or ""
    except Unsupported:
        raise
    except Exception as exc:
        raise Unsupported(reason("corrupt XLSX", exc)) from exc
    finally:
        book.close()
    if not parts:
        raise Unsupported("no text: the workbook's sheets are empty")
    return parts_document(path, source, parts, title)
