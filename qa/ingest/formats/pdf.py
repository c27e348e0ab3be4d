"""PDF (pypdf): the text layer page by page, one section per page with its number; pages with
no text layer (scans) are rendered by pypdfium2 and read by Tesseract OCR (`qa.ingest.ocr`).
A page with a text layer is never OCR'd.

Each failure says its cause: an encrypted PDF that needs a password, an AES-encrypted one when
the `cryptography` package (which pypdf needs for AES) is missing, a corrupt file, a PDF with no
text layer at all (scanned?). A page that fails to extract is logged as a warning with its
number and the error, the other pages are kept, and the document's `warnings` say how many failed.
"""

from __future__ import annotations

import io
import logging
from dataclasses import dataclass
from pathlib import Path

from qa.ingest import ocr
from qa.ingest.base import (
    LoadedDocument,
    Unsupported,
    document,
    join,
    newlines,
    one_line,
    read,
    reason,
    try_,
)
from qa.records import Locator, Section

log = logging.getLogger(__name__)

MISSING_CRYPTOGRAPHY = (
    "encrypted PDF (AES): reading it needs the Python package `cryptography`, which is not "
    "installed (pip install cryptography)"
)


@dataclass(frozen=True)
class PageFailure:
    """A page whose text could not be extracted: its number (from 1) and the error, one line."""

    page: int
    error: str


def _missing_package(exc: BaseException) -> Unsupported:
    """The Unsupported for a pypdf DependencyError (a package pypdf needs is not installed)."""
    message = str(exc)
    if "cryptography" in message or "AES" in message:
        return Unsupported(MISSING_CRYPTOGRAPHY)
    return Unsupported(reason("cannot read PDF: a package pypdf needs is missing", exc))


def _decrypt(reader) -> None:
    """Open an encrypted PDF with the empty user password, or say why it cannot be."""
    from pypdf.errors import DependencyError

    try:
        opened = reader.decrypt("")
    except DependencyError as exc:
        raise _missing_package(exc) from exc
    except Exception as exc:
        raise Unsupported(reason("encrypted PDF that cannot be decrypted", exc)) from exc
    if not opened:
        raise Unsupported("encrypted PDF: it needs a password")


def _extract(pages: list) -> tuple[list[tuple[int, str]], list[PageFailure]]:
    """(page number, text) for pages with text, and the pages that failed to extract."""
    from pypdf.errors import DependencyError

    texts: list[tuple[int, str]] = []
    failures: list[PageFailure] = []
    for number, page in enumerate(pages, 1):
        try:
            text = page.extract_text() or ""
        except DependencyError as exc:  # every page would fail the same way
            raise _missing_package(exc) from exc
        except Exception as exc:  # one unreadable page does not lose the others
            failures.append(PageFailure(number, one_line(exc)))
            continue
        if text := newlines(text).replace("\x00", "").strip():
            texts.append((number, text))
    return texts, failures


def _failed(failures: list[PageFailure], pages: int) -> str:
    first = failures[0]
    more = f" (and {len(failures) - 1} more)" if len(failures) > 1 else ""
    return f"{len(failures)} of {pages} pages failed to extract: page {first.page}: {first.error}{more}"


def _ocr_pages(data: bytes, numbers: list[int]) -> tuple[list[tuple[int, str]], list[PageFailure]]:
    """(page number, text) read by OCR from the pages `numbers` (from 1), rendered at
    `ocr.DPI`, and the pages that failed."""
    import pypdfium2

    texts: list[tuple[int, str]] = []
    failures: list[PageFailure] = []
    try:
        pdf = pypdfium2.PdfDocument(data, password="")
    except Exception as exc:
        return [], [PageFailure(n, reason("cannot render for OCR", exc)) for n in numbers]
    try:
        for number in numbers:
            try:
                page = pdf[number - 1]
                width, height = page.get_size()
                scale = ocr.DPI / 72
                if width * height * scale * scale > ocr.MAX_PIXELS:
                    scale = (ocr.MAX_PIXELS / (width * height)) ** 0.5
                image = page.render(scale=scale, grayscale=True).to_pil()
                text = ocr.ocr_image(image)
            except Exception as exc:
                failures.append(PageFailure(number, f"OCR: {one_line(exc)}"))
                continue
            if text:
                texts.append((number, text))
    finally:
        pdf.close()
    return texts, failures


def _scanned(data: bytes, pages: int, numbered, failures) -> tuple[list, list, list[str]]:
    """The pages with text, with the pages without a text layer read by OCR when it is on;
    the failures; and notes on pages left unread."""
    have = {n for n, _ in numbered} | {f.page for f in failures}
    blank = [n for n in range(1, pages + 1) if n not in have]
    if not blank:
        return numbered, failures, []
    if not ocr.enabled() or ocr.tesseract() is None:
        why = ocr.OFF if not ocr.enabled() else ocr.MISSING
        if not numbered and not failures:
            error = ocr.OcrOff if why == ocr.OFF else Unsupported  # off: skipped, not failed
            raise error(f"PDF has no text layer (scanned?) and {why}")
        return numbered, failures, [f"{len(blank)} of {pages} pages have no text layer: {why}"]
    read_texts, ocr_failures = _ocr_pages(data, blank)
    merged = sorted(numbered + read_texts)
    return merged, sorted(failures + ocr_failures, key=lambda f: f.page), []


def load(path: Path, source: str | None = None, data: bytes | None = None) -> LoadedDocument:
    from pypdf import PdfReader
    from pypdf.errors import DependencyError

    data = read(path, data)
    if b"%PDF" not in data[:1024]:
        raise Unsupported("not a PDF file")
    try:
        reader = PdfReader(io.BytesIO(data))
        if reader.is_encrypted:
            _decrypt(reader)
        pages = list(reader.pages)
    except Unsupported:
        raise
    except DependencyError as exc:
        raise _missing_package(exc) from exc
    except Exception as exc:
        raise Unsupported(reason("corrupt PDF", exc)) from exc
    numbered, failures = _extract(pages)
    numbered, failures, unread = _scanned(data, len(pages), numbered, failures)
    name = str(path) if source is None else source
    for failure in failures:
        log.warning("%s: page %d failed to extract: %s", name, failure.page, failure.error)
    if not numbered:
        if failures:
            raise Unsupported(f"no text extracted from the PDF: {_failed(failures, len(pages))}")
        raise Unsupported("PDF has no text layer (scanned?)")
    text, starts = join([t for _, t in numbered])
    sections = [
        Section(s, s + len(t), page=n, locator=Locator(page=n))
        for s, (n, t) in zip(starts, numbered, strict=True)
    ]
    title = str(try_(lambda: reader.metadata.title) or "")
    notes = ((_failed(failures, len(pages)),) if failures else ()) + tuple(unread)
    return document(path, source, text, title, sections, warnings=notes)
