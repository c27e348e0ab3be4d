"""What an index folder is: its manifest, and making, finding and clearing its files.

On disk (`index/` by default):
  manifest.json               format, format version, the database's identity, embedder
                              (model, dimension, backend), chunking, FAISS factory, qa version
  index-<id>.sqlite           documents, chunks, vectors and FTS5 (the source of truth)
  vectors-<id>-<gen>.faiss    FAISS index of that database's vectors at generation <gen>
  .lock                       held by the one process that writes

The database's file name carries a random identity (`id`), so a rebuild writes a new
database beside the old one and switches to it by replacing the manifest atomically:
readers in any process notice the new manifest and reopen, and a FAISS file can never be
taken for another database's (generations restart at 0 in every new database).
"""

from __future__ import annotations

import json
import os
import secrets
import time
from dataclasses import dataclass
from pathlib import Path

from qa import __version__
from qa.config import DEFAULT_EMBEDDER, Settings
from qa.errors import BadInput, IndexCorrupt, IndexMismatch, IndexNotFound
from qa.index.lock import FileLock
from qa.models.embedder import backend_of, declared_backend

FORMAT = "qa-index"
# 2: the database is index-<id>.sqlite, named by the manifest (1: index.sqlite)
FORMAT_VERSION = 2
MANIFEST = "manifest.json"
LEGACY_DATABASE = "index.sqlite"  # format 1


def rebuild_hint(directory: Path) -> str:
    return f"rebuild it: `qa index --rebuild --index {directory}`"


@dataclass(frozen=True)
class Stamp:
    """What identifies one version of the manifest file (it is only ever replaced whole)."""

    inode: int
    mtime_ns: int
    size: int

    @classmethod
    def of(cls, path: Path) -> Stamp | None:
        try:
            st = path.stat()
        except OSError:
            return None
        return cls(st.st_ino, st.st_mtime_ns, st.st_size)


def new_id() -> str:
    return secrets.token_hex(6)


def database_name(db_id: str) -> str:
    return f"index-{db_id}.sqlite"


def vectors_name(db_id: str, generation: int) -> str:
    return f"vectors-{db_id}-{generation}.faiss"


def make_manifest(settings: Settings, embedder, db_id: str | None = None) -> dict:
    db_id = db_id or new_id()
    return {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "id": db_id,
        "database": database_name(db_id),
        "qa_version": __version__,
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "embedder": {
            "name": embedder.name,
            "dimension": embedder.dimension,
            "max_tokens": embedder.max_tokens,
            # the backend that made the vectors; queries embed with the same one
            "backend": backend_of(embedder),
            **_backend_files(embedder),
        },
        "chunking": {"chunk_tokens": settings.chunk_tokens, "overlap": settings.chunk_overlap},
        "faiss_factory": settings.faiss_factory,
    }


def read_manifest(directory: Path) -> dict:
    """The manifest of `directory`, checked to be this qa's format (else IndexMismatch)."""
    path = directory / MANIFEST
    try:
        manifest = read_json(path)
    except FileNotFoundError:
        raise IndexNotFound(f"no index in {directory}/: run `qa index PATH` first") from None
    except (OSError, ValueError) as exc:
        raise IndexCorrupt(
            f"cannot read {path}: {' '.join(str(exc).split())}; {rebuild_hint(directory)}"
        ) from exc
    if not isinstance(manifest, dict):
        raise IndexCorrupt(f"{path} is damaged; {rebuild_hint(directory)}")
    if manifest.get("format") != FORMAT:
        raise IndexMismatch(f"{directory}/ is not a qa index; {rebuild_hint(directory)}")
    if manifest.get("format_version") != FORMAT_VERSION:
        raise IndexMismatch(
            f"{directory}/ has index format {manifest.get('format_version')}, this qa reads "
            f"format {FORMAT_VERSION}; {rebuild_hint(directory)}"
        )
    name = manifest.get("database")
    if not isinstance(name, str) or "/" in name or not name.endswith(".sqlite"):
        raise IndexCorrupt(f"{path} is damaged; {rebuild_hint(directory)}")
    return manifest


def database_of(directory: Path) -> Path | None:
    """The database file an index folder of any format names (None if none is named), for
    reading what a damaged or old index was built from."""
    try:
        manifest = read_json(directory / MANIFEST)
        name = manifest.get("database") if isinstance(manifest, dict) else None
    except (OSError, ValueError):
        name = None
    if isinstance(name, str) and "/" not in name and (directory / name).is_file():
        return directory / name
    found = sorted(directory.glob("index-*.sqlite"), key=lambda p: p.stat().st_mtime)
    if found:
        return found[-1]
    legacy = directory / LEGACY_DATABASE
    return legacy if legacy.is_file() else None


def create(directory: Path, manifest: dict) -> None:
    """Make a new, empty index: the database first, then the manifest that names the folder
    an index, so a run killed in between leaves nothing the next run cannot finish."""
    from qa.index.store import Store

    directory.mkdir(parents=True, exist_ok=True)
    with FileLock(directory / ".lock"):
        if (directory / MANIFEST).is_file():
            return  # another process made it meanwhile
        if (directory / LEGACY_DATABASE).is_file():
            raise IndexMismatch(
                f"{directory}/ holds an index of an older format; {rebuild_hint(directory)}"
            )
        Store(directory / manifest["database"]).close()
        write_json(directory / MANIFEST, manifest)


def clear(directory: Path) -> None:
    """Delete the index files in `directory` (only files qa made), under the write lock."""
    directory = Path(directory)
    if not directory.exists():
        return
    if not directory.is_dir():
        raise BadInput(f"{directory} is a file, not an index folder")
    with FileLock(directory / ".lock"):
        remove_files(directory, keep=None)
        (directory / (MANIFEST + ".tmp")).unlink(missing_ok=True)
        (directory / MANIFEST).unlink(missing_ok=True)  # last: a half-cleared folder is known


def remove_files(directory: Path, keep: str | None) -> None:
    """Delete the databases and FAISS files of `directory` except those of database `keep`
    (the caller holds the write lock)."""
    for path in directory.iterdir():
        name = path.name
        ours = (name.startswith("index-") and ".sqlite" in name) or (
            name.startswith("vectors-") and ".faiss" in name
        )
        legacy = name.startswith(LEGACY_DATABASE)
        if keep is not None and (name.startswith(f"index-{keep}.") or f"-{keep}-" in name):
            continue
        if ours or legacy:
            path.unlink(missing_ok=True)


def embedder_name(directory: Path, settings: Settings) -> str:
    """The configured embedder; with the default configured, the one the index was built with."""
    if settings.embed_model != DEFAULT_EMBEDDER:
        return settings.embed_model
    try:
        return read_json(directory / MANIFEST)["embedder"]["name"]
    except (OSError, ValueError, KeyError, TypeError):
        return settings.embed_model  # read_manifest reports the problem


def embedder_backend(directory: Path, settings: Settings) -> str:
    """The backend to open an existing index with: the configured one if set (checked
    against the index's when it opens), else the one the index was built with (torch for
    indexes made before backends were recorded)."""
    if settings.embed_backend != "auto":
        return settings.embed_backend
    return recorded_backend(directory) or settings.build_backend()


def recorded_backend(directory: Path) -> str | None:
    """The backend named in the manifest of `directory`; None if there is no readable one."""
    try:
        emb = read_json(directory / MANIFEST)["embedder"]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    backend = emb.get("backend", "torch") if isinstance(emb, dict) else None
    return backend if isinstance(backend, str) else None


def check_backend(directory: Path, manifest: dict, embedder) -> None:
    """IndexMismatch unless `embedder` runs on the backend that built the index (vectors of
    another backend rank slightly differently, so an index is searched with its own). An
    embedder that names no backend (a custom or test one, given explicitly) is accepted: its
    name and dimension are checked, and it is the caller's word for what it computes."""
    built = manifest.get("embedder", {}).get("backend", "torch")
    have = declared_backend(embedder)
    if have is not None and built != have:
        raise IndexMismatch(
            f"{directory}/ was built with the {built!r} embedder backend, not {have!r}: search "
            f"it with --backend {built} (or QA_EMBED_BACKEND={built}), or rebuild it: "
            f"`qa index --rebuild --backend {have} --index {directory}`"
        )


def _backend_files(embedder) -> dict:
    """For ONNX backends: the model file the vectors came from, and its checksum."""
    meta_of = getattr(embedder, "export_meta", None)
    if meta_of is None:
        base = getattr(embedder, "base", None)
        meta_of = getattr(base, "export_meta", None)
    if meta_of is None:
        return {}
    name, sha = meta_of()
    return {"backend_file": name, "backend_sha256": sha}


def read_json(path: Path) -> dict:
    return json.loads(path.read_text(encoding="utf-8"))


def write_json(path: Path, data: dict) -> None:
    """Replace `path` atomically (readers see the old file or the new one)."""
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(json.dumps(data, indent=2) + "\n")
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
