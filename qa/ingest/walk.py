"""Which files are documents, and walking folders for them.

`FORMATS` is the registry of supported suffixes: each names the module under
`qa.ingest.formats` that loads it. The size and passages-per-file limits are applied by the
index (`qa.index.core`), which reads each file once to hash and load the same bytes.

Hand-written on purpose: `os.walk` either follows a symlinked folder loop forever
(followlinks=True) or skips symlinked folders, and yields neither broken links nor sorted names.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from pathlib import Path

from qa.ingest.base import try_

# suffix (lower case) -> module in qa.ingest.formats that loads it
FORMATS: dict[str, str] = {
    ".txt": "text",
    ".md": "markdown",
    ".markdown": "markdown",
    ".html": "html",
    ".htm": "html",
    ".pdf": "pdf",
    ".docx": "docx",
    ".pptx": "pptx",
    ".xlsx": "xlsx",
    ".csv": "delimited",
    ".tsv": "delimited",
    ".epub": "epub",
    ".odt": "odt",
    ".rtf": "rtf",
    ".eml": "eml",
    ".mbox": "mbox",
    ".png": "image",
    ".jpg": "image",
    ".jpeg": "image",
    ".tif": "image",
    ".tiff": "image",
}
SUFFIXES = frozenset(FORMATS)


def iter_files(
    paths: Iterable[Path], errors: list[tuple[Path, str]] | None = None
) -> Iterator[Path]:
    """Files given, and files under directories given (recursively, sorted by name).

    Hidden entries (names starting with '.') inside directories are skipped, as are
    special files (pipes, sockets, devices); a symlinked directory is entered once, so
    symlink loops end. A broken or looping symlink is yielded (reading it then fails with
    a clear reason). Folders that cannot be listed are appended to `errors` as
    (path, reason). Any depth of nesting works (no recursion).
    """
    seen_dirs: set[str] = set()
    yielded: set[Path] = set()

    def listing(directory: Path) -> list[os.DirEntry]:
        real = os.path.realpath(directory)
        if real in seen_dirs:
            return []
        seen_dirs.add(real)
        try:
            with os.scandir(directory) as it:
                return sorted(it, key=lambda e: e.name)
        except OSError as exc:
            if errors is not None:
                errors.append((directory, f"cannot read folder: {exc.strerror or exc}"))
            return []

    def walk(root: Path) -> Iterator[Path]:
        stack = [iter(listing(root))]
        while stack:
            entry = next(stack[-1], None)
            if entry is None:
                stack.pop()
                continue
            if entry.name.startswith("."):
                continue
            path = Path(entry.path)
            if try_(entry.is_dir):
                stack.append(iter(listing(path)))
            elif try_(entry.is_file):
                yield path
            elif try_(entry.is_symlink) and not try_(path.exists, True):
                yield path  # broken or looping link: reported when it is read

    for path in map(Path, paths):
        for file in walk(path) if path.is_dir() else [path]:
            if file not in yielded:
                yielded.add(file)
                yield file
