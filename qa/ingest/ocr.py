"""OCR through Tesseract (Debian's `tesseract-ocr` with English data), for scanned PDF pages
and images: `ocr_image(image) -> text`.

The `tesseract` program is run directly (one process per page, the image on stdin, the text on
stdout): pytesseract does the same with temporary files. OCR is on unless `QA_OCR=0` (or
`qa index --no-ocr`, which is `configured(enabled=False)`: it sets `QA_OCR` for the run, so
loader processes started meanwhile see it too); `configured(progress=...)` reports each page
read, as `progress("ocr", pages_so_far, None)`, for the progress bar. Pages read in a loader
process (`qa.ingest.parallel`) are counted there into a shared counter (`count_into`) that the
parent reads while it waits and hands on with `pages_read(n)`, so one count covers both.

Tesseract runs with one OpenMP thread (OMP_THREAD_LIMIT=1): a second thread did not read a
page faster on 2 cores (0.52 vs 0.53 s), and with the cores busy (parsing in other
processes, embedding) it made a page 7 to 25 times slower (OpenMP threads waiting for a core).
Pages run side by side only in separate loader processes, `QA_THREADS` of them.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import threading
from collections.abc import Callable, Iterator

from qa.ingest.base import Unsupported, newlines

LANGUAGE = "eng"
DPI = 300  # what scanned PDF pages are rendered at, and what images are assumed to be
PAGE_TIMEOUT = 180.0  # seconds for one page
MAX_PIXELS = 60_000_000  # a page larger than this (e.g. 7,700 x 7,700) is not OCR'd
OFF_VALUES = ("0", "false", "no", "off")
MISSING = (
    "OCR needs Tesseract, which is not installed "
    "(apt-get install tesseract-ocr tesseract-ocr-eng), or turn OCR off with QA_OCR=0"
)
OFF = "OCR is off (QA_OCR=0 or --no-ocr)"


class OcrOff(Unsupported):
    """A file not read because OCR is turned off: skipped by choice, not a failure."""


_shared: dict = {"progress": None, "pages": 0, "counter": None}
_lock = threading.Lock()


def enabled() -> bool:
    """Whether OCR is on: as `QA_OCR` says (default on; 0, false, no or off turn it off)."""
    return os.environ.get("QA_OCR", "1").strip().lower() not in OFF_VALUES


def tesseract() -> str | None:
    """The path of the `tesseract` program, or None if it is not installed."""
    return shutil.which("tesseract")


@contextlib.contextmanager
def configured(
    enabled: bool | None = None, progress: Callable[[str, int, int | None], None] | None = None
) -> Iterator[None]:
    """Within the block (in every thread): OCR on or off (None: as `QA_OCR` says), and
    `progress` told of every page read, counted from 0 (None: the progress already set, if
    any, with its count)."""
    before, env = dict(_shared), os.environ.get("QA_OCR")
    if progress is not None:
        _shared.update(progress=progress, pages=0)
    if enabled is not None:
        os.environ["QA_OCR"] = "1" if enabled else "0"
    try:
        yield
    finally:
        _shared.update(before)
        if enabled is not None:
            if env is None:
                os.environ.pop("QA_OCR", None)
            else:
                os.environ["QA_OCR"] = env


def count_into(counter) -> None:
    """In a loader process: add every page read to `counter` (a `multiprocessing.Value`
    the parent reads), besides the progress in this process."""
    _shared["counter"] = counter


def pages_read(n: int = 1) -> None:
    """`n` more pages were read (here, or in a loader process): count them and tell the
    progress set by `configured`."""
    if n <= 0:
        return
    with _lock:
        _shared["pages"] += n
        pages, progress = _shared["pages"], _shared["progress"]
    if progress is not None:
        with contextlib.suppress(Exception):  # a progress bar must never fail a file
            progress("ocr", pages, None)


def _report() -> None:
    counter = _shared["counter"]
    # a worker that died holding the lock must not stop the others: the page goes uncounted
    if counter is not None and counter.get_lock().acquire(timeout=1.0):
        try:
            counter.value += 1
        finally:
            counter.get_lock().release()
    pages_read(1)


def check() -> None:
    """Raise `OcrOff` if OCR is off, `Unsupported` if Tesseract is missing."""
    if not enabled():
        raise OcrOff(OFF)
    if tesseract() is None:
        raise Unsupported(MISSING)


def ocr_image(image) -> str:
    """The text Tesseract reads in a PIL image (newlines only, trimmed; '' if none)."""
    check()
    width, height = image.size
    if width * height > MAX_PIXELS:
        raise Unsupported(f"image too large to OCR: {width} x {height} pixels")
    if image.mode not in ("1", "L"):
        image = image.convert("L")
    buffer = _png(image)
    env = dict(os.environ, OMP_THREAD_LIMIT="1")  # tesseract's threads only slow small pages
    command = [tesseract(), "stdin", "stdout", "-l", LANGUAGE, "--dpi", str(DPI), "--psm", "3"]
    try:
        done = subprocess.run(
            command, input=buffer, capture_output=True, timeout=PAGE_TIMEOUT, env=env
        )
    except subprocess.TimeoutExpired as exc:
        raise Unsupported(f"OCR took longer than {PAGE_TIMEOUT:.0f} s on one page") from exc
    except OSError as exc:
        raise Unsupported(f"cannot run tesseract: {exc.strerror or exc}") from exc
    if done.returncode != 0:
        detail = " ".join(done.stderr.decode("utf-8", "replace").split())[:120]
        raise Unsupported(f"OCR failed: {detail or f'tesseract exit code {done.returncode}'}")
    _report()
    text = newlines(done.stdout.decode("utf-8", "replace")).replace("\x0c", "")
    return "\n".join(line.rstrip() for line in text.split("\n")).strip()


def _png(image) -> bytes:
    import io

    out = io.BytesIO()
    image.save(out, format="PNG", dpi=(DPI, DPI))
    return out.getvalue()
