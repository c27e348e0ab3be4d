"""Turn files into `Document`s: the dispatcher. Each format has its own module in
`qa.ingest.formats` (text, markdown, html, pdf, docx, pptx, xlsx, delimited, epub, odt, rtf,
eml, mbox, image), named by suffix in `walk.FORMATS`.

`load` never raises anything but `Unsupported` for a file it cannot read, so a corpus
with one bad file still indexes. Sections carry PDF page numbers and heading paths
("Guide", "Install", "Linux") as character offsets into `Document.text`.
"""

from __future__ import annotations

import importlib
import logging
import warnings
from pathlib import Path

from qa.ingest.base import LoadedDocument, Unsupported, reason
from qa.ingest.walk import FORMATS, SUFFIXES, iter_files

__all__ = ["SUFFIXES", "LoadedDocument", "Unsupported", "iter_files", "load"]

logging.getLogger("pypdf").setLevel(logging.CRITICAL)  # it logs every oddity it reads past


def load(path: Path, source: str | None = None, data: bytes | None = None) -> LoadedDocument:
    """Load one file, choosing the loader by suffix (case-insensitive). `data`: the file's
    bytes if the caller has already read them (so what is hashed is what is loaded)."""
    path = Path(path)
    suffix = path.suffix.lower()
    module = FORMATS.get(suffix)
    if module is None:
        raise Unsupported(f"unsupported file type {suffix or '(none)'}")
    loader = importlib.import_module(f"qa.ingest.formats.{module}").load
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return loader(path, source, data)
    except Unsupported:
        raise
    except RecursionError as exc:
        raise Unsupported(f"cannot read {suffix[1:].upper()}: nested too deeply") from exc
    except Exception as exc:  # a safety net: bad contents must never escape as anything else
        raise Unsupported(reason(f"cannot read {suffix[1:].upper()}", exc)) from exc
