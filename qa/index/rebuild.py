"""Rebuilding an index from scratch without losing it on the way.

The roots (the files and folders the index was built from) are read first, before anything
changes. The new index is built in a staging folder inside the index folder, then switched
in: its database and FAISS file are moved beside the old ones (their names carry a new
identity, so nothing is overwritten), and the manifest is replaced atomically. Readers, in
this process or another, keep answering from the old database until they see the new
manifest. A rebuild that fails or is killed leaves the old index as it was.
"""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
from collections.abc import Callable, Iterable
from pathlib import Path

from qa.config import Settings
from qa.errors import BadInput
from qa.index import manifest as mf
from qa.index.lock import FileLock
from qa.records import IndexReport

STAGING = ".rebuild"


def stored_roots(directory: Path) -> list[Path]:
    """What the index in `directory` was built from, read straight from its database so that
    an index of an older format, or one whose manifest is damaged, can still be rebuilt."""
    database = mf.database_of(directory)
    if database is None:
        return []
    try:
        conn = sqlite3.connect(f"file:{database}?mode=ro", uri=True)
        try:
            row = conn.execute("SELECT value FROM meta WHERE key = 'roots'").fetchone()
        finally:
            conn.close()
        names = json.loads(row[0]) if row else []
    except (sqlite3.Error, ValueError):
        return []
    base = directory.resolve().parent
    return [Path(n) if Path(n).is_absolute() else base / n for n in names if isinstance(n, str)]


def rebuild(
    directory: str | Path,
    paths: Iterable[str | Path] | None = None,
    *,
    settings: Settings,
    embedder=None,
    progress: Callable | None = None,
    update: Callable | None = None,
) -> IndexReport:
    """Build the index in `directory` again from `paths` (default: what it was built from),
    with `settings`' embedder and chunking, and switch to it atomically. `update(index,
    roots, progress)` fills the new index (default: its `sync`; `qa index --rebuild --ray`
    passes the Ray pipeline)."""
    from qa.index import core

    directory = Path(directory)
    if directory.exists() and not directory.is_dir():
        raise BadInput(f"{directory} is a file, not an index folder")
    roots = [Path(p) for p in paths] if paths else stored_roots(directory)
    if not roots:
        raise BadInput(
            f"{directory}/ does not say what it was built from: give the files to index, "
            f"`qa index --rebuild --index {directory} PATH`"
        )
    for root in roots:
        if not root.exists():
            raise BadInput(
                f"{root} (indexed before) no longer exists: give the files to index, "
                f"`qa index --rebuild --index {directory} PATH`"
                if not paths
                else f"no such file or folder: {root}"
            )
    directory.mkdir(parents=True, exist_ok=True)
    with FileLock(directory / ".lock"):  # one writer: others fail fast, readers go on
        staging = directory / STAGING
        shutil.rmtree(staging, ignore_errors=True)  # a killed rebuild's leftovers
        # through qa.index.core, the one place indexes get their embedders; the backend is
        # the configured one, or with "auto" the one the index was built with
        embedder = embedder or core.get_embedder(
            settings.embed_model, mf.embedder_backend(directory, settings)
        )
        manifest = mf.make_manifest(settings, embedder)
        mf.create(staging, manifest)
        new = core.Index(staging, settings, embedder, base=directory.resolve().parent)
        try:
            if update is None:
                report = new.sync(roots, progress=progress)
            else:
                report = update(new, roots, progress)
        except BaseException:
            new.close()
            shutil.rmtree(staging, ignore_errors=True)
            raise
        new.close()
        for path in staging.iterdir():
            if path.name.startswith(("index-", "vectors-")) and path.suffix in (
                ".sqlite",
                ".faiss",
            ):
                os.replace(path, directory / path.name)
        mf.write_json(directory / mf.MANIFEST, manifest)  # the switch
        mf.remove_files(directory, keep=manifest["id"])
        shutil.rmtree(staging, ignore_errors=True)
    return report
