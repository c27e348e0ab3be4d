"""Uploaded files: safe names, the size cap, and copying them into the uploads folder.

Uploads are copied into one folder beside the index (`<index parent>/uploads/`) under a
sanitised name: only the base name is kept (no folders, no `..`), characters other than
letters, digits, `._-+()` and spaces become `_`, and a name can neither be hidden (leading
dot) nor empty. A file with the same name replaces the earlier upload, so uploading a new
version of a document updates it in the index.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
import unicodedata
from dataclasses import dataclass
from pathlib import Path

from qa.ingest.loaders import SUFFIXES
from qa.web.render import FileResult, formats_html

DEFAULT_MAX_UPLOAD_MB = 50.0
# What the upload accepts, as the page lists it: (kind, ((name, suffixes), ...)); every
# suffix in qa.ingest.walk.FORMATS once (tests/test_ui.py checks). `ocr`: read by OCR.
FORMAT_GROUPS: tuple[tuple[str, tuple[tuple[str, str], ...]], ...] = (
    (
        "Documents",
        (
            ("PDF", ".pdf"),
            ("Word", ".docx"),
            ("OpenDocument", ".odt"),
            ("RTF", ".rtf"),
            ("web pages", ".html .htm"),
            ("text", ".txt .md .markdown"),
        ),
    ),
    ("Slides", (("PowerPoint", ".pptx"),)),
    ("Spreadsheets", (("Excel", ".xlsx"), ("CSV", ".csv"), ("TSV", ".tsv"))),
    ("E-books", (("EPUB", ".epub"),)),
    ("Mail", (("messages", ".eml"), ("mailboxes", ".mbox"))),
    ("Images (OCR)", (("PNG", ".png"), ("JPEG", ".jpg .jpeg"), ("TIFF", ".tif .tiff"))),
)
MAX_NAME = 120
_UNSAFE = re.compile(r"[^\w.\-+() ]", re.UNICODE)


def formats_view(ocr: bool = True) -> str:
    """The formats the upload accepts (HTML), with what OCR will do: on, off, or missing."""
    from qa.ingest import ocr as tesseract

    if not ocr:
        note = "OCR is off (QA_OCR=0): images are skipped and scanned PDF pages are not read."
    elif tesseract.tesseract() is None:
        note = (
            "Tesseract is not installed, so images and scanned PDF pages cannot be read "
            "(apt-get install tesseract-ocr tesseract-ocr-eng)."
        )
    else:
        note = (
            "Scanned PDF pages and images are read by OCR (Tesseract): a second or more a "
            "page, counted in the progress."
        )
    return formats_html(FORMAT_GROUPS, note)


def safe_filename(name: str) -> str:
    """A file name that is safe to create inside the uploads folder."""
    name = unicodedata.normalize("NFKC", str(name))
    name = re.split(r"[\\/]", name)[-1]  # base name only, whatever the separator
    name = "".join(ch for ch in name if ch.isprintable())
    name = _UNSAFE.sub("_", name).strip(" .")
    name = re.sub(r"\s+", " ", name)
    if not name or set(name) <= {"_", "."}:
        name = "upload"
    if len(name) > MAX_NAME:
        stem, dot, suffix = name.rpartition(".")
        if dot and 0 < len(suffix) <= 10:
            name = stem[: MAX_NAME - len(suffix) - 1] + "." + suffix
        else:
            name = name[:MAX_NAME]
    return name


@dataclass(frozen=True)
class Staged:
    """The outcome of putting uploads in place: files ready to index, and files refused."""

    paths: tuple[Path, ...]
    names: dict[str, str]  # resolved path -> the name shown to the user
    refused: tuple[FileResult, ...]


def stage_uploads(
    files: list[str | Path], upload_dir: Path, max_bytes: int, suffixes=SUFFIXES
) -> Staged:
    """Check each uploaded file (type, size) and copy the acceptable ones into `upload_dir`."""
    upload_dir.mkdir(parents=True, exist_ok=True)
    root = upload_dir.resolve()
    paths: list[Path] = []
    names: dict[str, str] = {}
    refused: list[FileResult] = []
    for f in files:
        src = Path(f)
        name = safe_filename(src.name)
        suffix = Path(name).suffix.lower()
        if suffix not in suffixes:
            kinds = ", ".join(sorted(s.lstrip(".") for s in suffixes))
            refused.append(
                FileResult(
                    name,
                    "skipped",
                    f"unsupported file type {suffix or '(none)'}: use one of {kinds}",
                )
            )
            continue
        try:
            size = src.stat().st_size
        except OSError as exc:
            refused.append(FileResult(name, "failed", f"cannot read the upload: {exc.strerror}"))
            continue
        if size > max_bytes:
            refused.append(
                FileResult(
                    name,
                    "refused",
                    f"too large: {size / 1e6:.1f} MB, the limit is {max_bytes / 1e6:.0f} MB",
                )
            )
            continue
        dest = (root / name).resolve()
        if dest.parent != root:  # cannot happen with a sanitised name; checked anyway
            refused.append(FileResult(name, "refused", "invalid file name"))
            continue
        fd, tmp = tempfile.mkstemp(dir=root, prefix=".upload-", suffix=".part")
        try:
            with os.fdopen(fd, "wb") as out, open(src, "rb") as inp:
                shutil.copyfileobj(inp, out)
            os.replace(tmp, dest)
        except OSError as exc:
            Path(tmp).unlink(missing_ok=True)
            refused.append(FileResult(name, "failed", f"cannot save the upload: {exc.strerror}"))
            continue
        if str(dest) not in names:
            paths.append(dest)
        names[str(dest)] = name
    return Staged(tuple(paths), names, tuple(refused))


def inside(path: Path, folder: Path) -> bool:
    """Whether `path` is a file inside `folder` (after resolving links and `..`)."""
    try:
        path.resolve().relative_to(folder.resolve())
        return True
    except ValueError:
        return False
