"""Images (PNG, JPEG, TIFF): the text Tesseract reads in them (see `qa.ingest.ocr`), one page
per frame (a multi-page TIFF is a scan of several pages), located by page.

Pillow opens the image; its decompression-bomb check and `ocr.MAX_PIXELS` refuse images too
large to read, and a truncated or corrupt file says so.
"""

from __future__ import annotations

import io
from pathlib import Path

from qa.ingest import ocr
from qa.ingest.base import LoadedDocument, Part, Unsupported, parts_document, read, reason
from qa.records import Locator

MAX_FRAMES = 500  # pages of one TIFF
_KINDS = {".png": "PNG", ".jpg": "JPEG", ".jpeg": "JPEG", ".tif": "TIFF", ".tiff": "TIFF"}


def load(path: Path, source: str | None = None, data: bytes | None = None) -> LoadedDocument:
    from PIL import Image, ImageSequence, UnidentifiedImageError

    data = read(path, data)
    kind = _KINDS.get(path.suffix.lower(), "image")
    try:
        image = Image.open(io.BytesIO(data))
        image.load()
    except Image.DecompressionBombError as exc:
        raise Unsupported(reason("image too large to read", exc)) from exc
    except UnidentifiedImageError as exc:  # its message is the repr of our BytesIO
        raise Unsupported(
            f"corrupt or unreadable {kind} image: not an image format Pillow can identify"
        ) from exc
    except Exception as exc:
        raise Unsupported(reason(f"corrupt or unreadable {kind} image", exc)) from exc
    ocr.check()
    parts: list[Part] = []
    failures: list[str] = []
    for number, frame in enumerate(ImageSequence.Iterator(image), 1):
        if number > MAX_FRAMES:
            failures.append(f"only the first {MAX_FRAMES} pages were read")
            break
        try:
            text = ocr.ocr_image(frame.copy())
        except Unsupported as exc:
            if number == 1 and getattr(image, "n_frames", 1) == 1:
                raise
            failures.append(f"page {number}: {exc}")
            continue
        except Exception as exc:
            failures.append(reason(f"page {number}", exc))
            continue
        parts.append(Part(text, Locator(page=number)))
    if not any(p.text.strip() for p in parts):
        raise Unsupported(
            "no text found in the image by OCR" + (f" ({failures[0]})" if failures else "")
        )
    return parts_document(path, source, parts, "", warnings=tuple(failures[:1]))
