"""CSV and TSV (the standard library's `csv`, after `qa.ingest.encoding` decodes the bytes):
rows with the header row as context, located by row (the header is row 1). The delimiter is a
tab for .tsv, else what `csv.Sniffer` finds among , ; | and tab (a comma if it cannot tell).
"""

from __future__ import annotations

import csv
import io
from pathlib import Path

from qa.ingest.base import LoadedDocument, Unsupported, parts_document, read
from qa.ingest.encoding import decode
from qa.ingest.tabular import cell_text, row_parts

MAX_ROWS = 500_000
MAX_FIELD = 1_000_000  # characters in one field (the csv module's default is 131,072)


def _dialect(text: str, suffix: str):
    if suffix == ".tsv":
        return csv.excel_tab
    try:
        return csv.Sniffer().sniff(text[:20_000], delimiters=",;|\t")
    except csv.Error:
        return csv.excel


def load(path: Path, source: str | None = None, data: bytes | None = None) -> LoadedDocument:
    data = read(path, data)
    if b"\x00" in data[:4096] and not data.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise Unsupported(f"not a {path.suffix[1:].upper()} file (binary data)")
    text = decode(data)
    reader = csv.reader(io.StringIO(text, newline=""), _dialect(text, path.suffix.lower()))
    csv.field_size_limit(MAX_FIELD)
    rows = []
    try:
        for values in reader:
            if reader.line_num > MAX_ROWS:
                raise Unsupported(f"too large: more than {MAX_ROWS:,} rows")
            rows.append((len(rows) + 1, [cell_text(v) for v in values]))
    except csv.Error as exc:
        kind = path.suffix[1:].upper()
        raise Unsupported(f"malformed {kind} at line {reader.line_num}: {exc}") from exc
    parts = row_parts(rows, None)
    if not parts:
        raise Unsupported("no text")
    return parts_document(path, source, parts, "")
