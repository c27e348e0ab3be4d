"""Plain text: the decoded text as it is (see `qa.ingest.encoding`), titled by file name."""

from __future__ import annotations

from pathlib import Path

from qa.ingest.base import LoadedDocument, document, read
from qa.ingest.encoding import decode


def load(path: Path, source: str | None = None, data: bytes | None = None) -> LoadedDocument:
    return document(path, source, decode(read(path, data)), "")
