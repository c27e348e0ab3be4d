"""EPUB (EbookLib): the chapters in reading (spine) order, each an HTML document read as the
HTML loader reads pages (visible text, headings kept), located by chapter number (from 1,
counting the spine documents that have text).

A DRM-protected book (META-INF/encryption.xml naming more than fonts) is refused as encrypted;
the archive is checked against zip bombs first (`base.open_zip`).
"""

from __future__ import annotations

import io
import re
from pathlib import Path

from qa.ingest.base import LoadedDocument, Part, Unsupported, open_zip, parts_document, read, reason
from qa.ingest.formats.html import visible_text
from qa.records import Locator

_URI = re.compile(rb'URI\s*=\s*"([^"]+)"')
_FONTS = (b".otf", b".ttf", b".woff", b".woff2")


def _check_drm(archive) -> None:
    try:
        xml = archive.read("META-INF/encryption.xml")
    except KeyError:
        return
    if any(not uri.lower().endswith(_FONTS) for uri in _URI.findall(xml)):
        raise Unsupported("encrypted EPUB (DRM): its chapters cannot be read")


def load(path: Path, source: str | None = None, data: bytes | None = None) -> LoadedDocument:
    import ebooklib
    from ebooklib import epub

    data = read(path, data)
    _check_drm(open_zip(data, "EPUB"))
    try:
        book = epub.read_epub(io.BytesIO(data), {"ignore_ncx": True})
        items = [book.get_item_with_id(idref) for idref, _ in book.spine]
        chapters = [
            visible_text(item.get_content())
            for item in items
            if item is not None and item.get_type() == ebooklib.ITEM_DOCUMENT
        ]
        titles = book.get_metadata("DC", "title")
    except Unsupported:
        raise
    except Exception as exc:
        raise Unsupported(reason("corrupt EPUB", exc)) from exc
    parts = []
    for text, heads, _ in chapters:
        if text.strip():
            parts.append(Part(text, Locator(chapter=len(parts) + 1), (), heads))
    title = str(titles[0][0]) if titles else ""
    return parts_document(path, source, parts, title)
