"""The Index: documents in, passages out.

On disk (`index/` by default):
  manifest.json        what this folder is: format version, embedder, chunking, qa version
  index.sqlite         documents, chunks, vectors and the FTS5 table (the source of truth)
  vectors-<gen>.faiss  FAISS index of the vectors, stamped with the store's generation
  .lock                held by the one process that writes

Every write is a SQLite transaction. The FAISS file is written after them; if a run
dies first, the next open sees a FAISS file of an older generation and rebuilds it
from the stored vectors (no re-embedding), so SQLite ids and FAISS ids always agree.
A FAISS file that is damaged or does not match the database is rebuilt the same way;
a damaged database or manifest raises `IndexCorrupt` naming the rebuild command.

Threads: one `Index` may serve any number of threads. Reads take a short in-process lock;
a write holds the lock file for its whole run (one writing process) but the in-process
lock only while it commits, so searches go on while files are read and embedded.

Limits: a file larger than `settings.max_file_mb`, or whose text makes more than
`settings.max_chunks_per_file` passages, is skipped with a message (never cut short).
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import stat as stat_module
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from qa import __version__
from qa.ingest.chunking import chunk_document
from qa.config import DEFAULT_EMBEDDER, Settings
from qa.models.embedder import Embedder, SentenceTransformerEmbedder, get_embedder
from qa.errors import BadInput, IndexCorrupt, IndexLocked, IndexMismatch, IndexNotFound
from qa.ingest.loaders import SUFFIXES, Unsupported, iter_files, load
from qa.index.lock import FileLock as _FileLock
from qa.records import Chunk, Document, DocumentInfo, Hit, IndexReport, Skipped
from qa.index.store import Store
from qa.index.vectors import VectorIndex

FORMAT = "qa-index"
FORMAT_VERSION = 1
MANIFEST = "manifest.json"
DATABASE = "index.sqlite"
EMBED_GROUP = 256  # chunks embedded (and committed) together
RRF_K = 60  # for fusion="rrf"
# fusion="weighted": a convex blend of each retriever's z-scored scores. Measured on SQuAD
# dev (10,570 questions) it beats RRF; dense weights 0.4-0.5 are a plateau (`qa eval`).
DENSE_WEIGHT = 0.5
# For the passages limit, checked before chunking so a huge file is never tokenized: a
# passage of `chunk_tokens` tokens holds at most this many characters per token (English
# averages 4-5 with WordPiece; only runs of very long words go above 8).
MAX_CHARS_PER_TOKEN = 8

Progress = Callable[[str, int, int | None], None]


def _no_progress(event: str, n: int, total: int | None) -> None:
    pass


@dataclass
class _Pending:
    path: Path
    source: str
    sha256: str
    mtime: float
    size: int
    doc: Document
    chunks: list[Chunk]
    existed: bool


class Index:
    """A searchable index of documents. Open with `Index.open` or make with `Index.build`."""

    def __init__(self, directory: Path, settings: Settings, embedder: Embedder) -> None:
        self.directory = Path(directory)
        self.settings = settings
        self.embedder = embedder
        self.base = self.directory.resolve().parent
        self.store = Store(self.directory / DATABASE)
        self._lock = threading.RLock()  # the SQLite connection and the FAISS object
        self._writing = threading.Lock()  # one writing thread; others wait for it
        self._vectors: VectorIndex | None = None
        self._generation = -1
        self._dimension_ok = False
        self.manifest = self._read_manifest()

    # --- opening ------------------------------------------------------------

    @classmethod
    def open(
        cls,
        index_dir: str | Path | None = None,
        *,
        settings: Settings | None = None,
        embedder: Embedder | None = None,
        create: bool = False,
    ) -> Index:
        """Open the index in `index_dir` (default: settings.index_dir, i.e. `index/`)."""
        settings = settings or Settings.load()
        directory = Path(index_dir) if index_dir is not None else settings.index_dir
        if directory.exists() and not directory.is_dir():
            raise BadInput(f"{directory} is a file, not an index folder")
        manifest = directory / MANIFEST
        database = directory / DATABASE
        if manifest.is_file() and not create and not database.is_file():
            raise IndexCorrupt(
                f"{directory}/ has a manifest but its database {DATABASE} is missing; "
                f"rebuild it: `qa index --rebuild --index {directory} PATH`"
            )
        if not manifest.is_file():
            if not create and database.is_file():
                raise IndexCorrupt(
                    f"{directory}/ has an index database but no manifest; rebuild it: "
                    f"`qa index --rebuild --index {directory} PATH`"
                )
            if not create:
                raise IndexNotFound(f"no index in {directory}/: run `qa index PATH` first")
            embedder = embedder or get_embedder(settings.embed_model)
            _create(directory, _manifest_for(settings, embedder))
        if embedder is None:
            embedder = get_embedder(_embedder_name(manifest, settings))
        return cls(directory, settings, embedder)

    @classmethod
    def build(
        cls,
        paths: Iterable[str | Path],
        index_dir: str | Path | None = None,
        *,
        settings: Settings | None = None,
        embedder: Embedder | None = None,
        rebuild: bool = True,
        progress: Progress | None = None,
    ) -> Index:
        """Index `paths` into `index_dir`; with `rebuild`, start from an empty index."""
        settings = settings or Settings.load()
        directory = Path(index_dir) if index_dir is not None else settings.index_dir
        if rebuild:
            clear(directory)
        index = cls.open(directory, settings=settings, embedder=embedder, create=True)
        index.sync(paths, progress=progress)
        return index

    def _read_manifest(self) -> dict:
        path = self.directory / MANIFEST
        try:
            manifest = _read_json(path)
        except (OSError, ValueError) as exc:
            raise IndexCorrupt(
                f"cannot read {path}: {' '.join(str(exc).split())}; rebuild it: "
                f"`qa index --rebuild --index {self.directory} PATH`"
            ) from exc
        if not isinstance(manifest, dict):
            raise IndexCorrupt(
                f"{path} is damaged; rebuild it: `qa index --rebuild --index {self.directory} PATH`"
            )
        rebuild = f"rebuild it: `qa index --rebuild --index {self.directory} PATH`"
        if manifest.get("format") != FORMAT:
            raise IndexMismatch(f"{self.directory}/ is not a qa index; {rebuild}")
        if manifest.get("format_version") != FORMAT_VERSION:
            raise IndexMismatch(
                f"{self.directory}/ has index format {manifest.get('format_version')}, this qa "
                f"reads format {FORMAT_VERSION}; {rebuild}"
            )
        emb = manifest.get("embedder", {})
        if emb.get("name") != self.embedder.name:
            raise IndexMismatch(
                f"{self.directory}/ was built with embedder {emb.get('name')!r}, not "
                f"{self.embedder.name!r}; {rebuild}"
            )
        if not isinstance(self.embedder, SentenceTransformerEmbedder):
            self._check_dimension(manifest)  # cheap for other embedders; else on first use
        return manifest

    def _check_dimension(self, manifest: dict | None = None) -> None:
        """The embedder makes vectors of the size stored (loads the model: done lazily)."""
        if self._dimension_ok:
            return
        manifest = manifest or self.manifest
        stored = manifest.get("embedder", {}).get("dimension")
        if stored != self.embedder.dimension:
            raise IndexMismatch(
                f"{self.directory}/ holds {stored}-d vectors but the embedder makes "
                f"{self.embedder.dimension}-d ones; rebuild it: "
                f"`qa index --rebuild --index {self.directory} PATH`"
            )
        self._dimension_ok = True

    def close(self) -> None:
        self.store.close()

    def __enter__(self) -> Index:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # --- vectors --------------------------------------------------------------

    def _vectors_path(self, generation: int) -> Path:
        return self.directory / f"vectors-{generation}.faiss"

    def _current_vectors(self) -> VectorIndex:
        """The FAISS index for the store's current generation: loaded from its file if that
        matches the database exactly, else rebuilt from the stored vectors (and saved when
        no one is writing). Call with `self._lock` held (or from a single thread)."""
        with self._lock:
            with self.store.snapshot():  # the generation and the vectors read agree
                generation = self.store.generation()
                if self._vectors is not None and generation == self._generation:
                    return self._vectors
                factory = self.manifest.get("faiss_factory", "Flat")
                vectors = self._load_vectors(self._vectors_path(generation), factory)
                rebuilt = vectors is None
                if rebuilt:
                    vectors = self._rebuild_vectors(factory)
            self._vectors, self._generation = vectors, generation
            if rebuilt:
                self._save_if_idle(vectors, generation)
            return vectors

    def _load_vectors(self, path: Path, factory: str) -> VectorIndex | None:
        """The FAISS file at `path` if it holds exactly the database's vector ids, in the
        manifest's dimension; None if it is missing, damaged or does not match."""
        if not path.is_file():
            return None
        try:
            vectors = VectorIndex.load(path, factory)
            dimension = self.manifest.get("embedder", {}).get("dimension")
            if vectors.dimension != dimension or vectors.ntotal != self.store.count_chunks():
                return None
            if not np.array_equal(np.sort(vectors.ids()), self.store.vector_ids()):
                return None
            return vectors
        except (IndexCorrupt, IndexLocked):
            raise
        except Exception:  # a damaged file: FAISS raises RuntimeError, or worse
            return None

    def _rebuild_vectors(self, factory: str) -> VectorIndex:
        vectors = VectorIndex(self.manifest["embedder"]["dimension"], factory)
        batches = list(self.store.iter_vectors())
        if vectors.needs_training() and batches:
            vectors.train(np.vstack([v for _, v in batches]))
        for ids, vecs in batches:
            if vecs.shape[1] != vectors.dimension:
                raise IndexCorrupt(
                    f"{self.directory}/ holds vectors of the wrong size; rebuild it: "
                    f"`qa index --rebuild --index {self.directory} PATH`"
                )
            vectors.add(ids, vecs)
        return vectors

    def _save_if_idle(self, vectors: VectorIndex, generation: int) -> None:
        """Write rebuilt vectors to disk so the next open need not rebuild them, unless a
        writer (in this process or another) is busy: it writes them itself."""
        if not self._writing.acquire(blocking=False):
            return
        try:
            with self._write_lock():
                if self.store.generation() == generation:
                    self._write_vectors(vectors, generation)
        except (IndexLocked, OSError):
            pass  # someone else is writing, or the folder is read-only: fine
        finally:
            self._writing.release()

    def _save_vectors(self) -> None:
        """Write the current vectors to disk (the caller holds the write lock)."""
        with self._lock:
            generation = self.store.generation()
            vectors = self._current_vectors()
        # outside the lock: searching reads the same object, and nothing else writes it
        self._write_vectors(vectors, generation)

    def _write_vectors(self, vectors: VectorIndex, generation: int) -> None:
        """Save the vectors of `generation` and delete the files of older generations."""
        vectors.save(self._vectors_path(generation))
        for old in self.directory.glob("vectors-*.faiss"):
            number = old.name[len("vectors-") : -len(".faiss")]
            if not number.isdigit() or int(number) < generation:
                old.unlink(missing_ok=True)

    # --- sources ------------------------------------------------------------------

    def source_for(self, path: Path) -> str:
        """How a file is named in the index: relative to the index's parent folder if inside it."""
        path = Path(path)
        try:
            resolved = path.resolve()
            if path.is_symlink() and not resolved.exists():
                raise OSError("a broken symlink")
        except (RuntimeError, OSError):  # a broken link or a loop: name the link itself
            resolved = path.parent.resolve() / path.name
        try:
            return resolved.relative_to(self.base).as_posix()
        except ValueError:
            return str(resolved)

    def path_for(self, source: str) -> Path:
        path = Path(source)
        return path if path.is_absolute() else self.base / path

    # --- writing ----------------------------------------------------------------

    def add(self, paths: Iterable[str | Path], progress: Progress | None = None) -> IndexReport:
        """Index new or changed files under `paths`; leave everything else alone."""
        return self._update(paths, remove_missing=False, progress=progress)

    def sync(self, paths: Iterable[str | Path], progress: Progress | None = None) -> IndexReport:
        """Like `add`, and also drop indexed files under `paths` that no longer exist."""
        return self._update(paths, remove_missing=True, progress=progress)

    def remove(self, source: str | Path) -> list[str]:
        """Remove a document (or every document under a folder); return the removed sources."""
        with self._writing, self._write_lock():
            with self._lock:
                stored = self.store.stored_docs()
                targets = self._match_sources(source, stored)
                if not targets:
                    raise BadInput(f"{source} is not in the index (see `qa list`)")
                vectors = self._current_vectors()
                removed_ids: list[int] = []
                with self.store.transaction() as conn:
                    for s in targets:
                        removed_ids += self.store.delete_document(conn, s)
                self._apply(vectors, removed_ids, np.zeros(0, np.int64), None)
            self._save_vectors()
            return targets

    def _match_sources(self, source: str | Path, stored: dict) -> list[str]:
        names = {str(source)}
        path = Path(source)
        if path.exists() or not path.is_absolute():
            names.add(self.source_for(path))
        exact = [s for s in names if s in stored]
        if exact:
            return exact
        prefixes = tuple(n.rstrip("/") + "/" for n in names)
        return sorted(s for s in stored if s.startswith(prefixes))

    def _update(self, paths, remove_missing: bool, progress: Progress | None) -> IndexReport:
        progress = progress or _no_progress
        t0 = time.perf_counter()
        roots = [Path(p) for p in paths]
        for root in roots:
            if not root.exists():
                raise BadInput(f"no such file or folder: {root}")
        with self._writing, self._write_lock():
            with self._lock:
                stored = self.store.stored_docs()
            folder_errors: list[tuple[Path, str]] = []
            files = list(iter_files(roots, folder_errors))
            added, updated, unchanged = [], [], []
            skipped = [
                Skipped(_display(self.source_for(f)), reason, failed=True)
                for f, reason in folder_errors
            ]
            seen: set[str] = set()
            pending: list[_Pending] = []
            n_pending = 0
            embedded = 0
            progress("files", 0, len(files))
            for i, path in enumerate(files, 1):
                source = self.source_for(path)
                seen.add(source)
                outcome = self._prepare(path, source, stored.get(source))
                if outcome is None:
                    unchanged.append(source)
                elif isinstance(outcome, Skipped):
                    skipped.append(outcome)
                else:
                    pending.append(outcome)
                    n_pending += len(outcome.chunks)
                if n_pending >= EMBED_GROUP:
                    embedded += self._commit(pending, progress)
                    for p in pending:
                        (updated if p.existed else added).append(p.source)
                    pending, n_pending = [], 0
                progress("files", i, len(files))
            if pending:
                embedded += self._commit(pending, progress)
                for p in pending:
                    (updated if p.existed else added).append(p.source)
            removed: list[str] = []
            if remove_missing:
                # an unreadable file that was indexed before is kept (it was seen)
                removed = self._remove_missing(roots, stored, seen)
            self._save_vectors()
            self._remember_roots(roots)
            return IndexReport(
                added=tuple(added),
                updated=tuple(updated),
                removed=tuple(removed),
                unchanged=tuple(unchanged),
                skipped=tuple(skipped),
                chunks_embedded=embedded,
                seconds=time.perf_counter() - t0,
            )

    def _prepare(self, path: Path, source: str, old) -> _Pending | Skipped | None:
        """Read, load and chunk one file: the work to commit, why it is skipped, or None
        if it is unchanged since it was indexed."""
        if path.suffix.lower() not in SUFFIXES:
            return Skipped(source, f"unsupported file type {path.suffix or '(none)'}")
        if not _valid_name(source):
            return Skipped(
                _display(source), "the file name is not valid UTF-8: rename the file", failed=True
            )
        try:
            info = path.stat()
        except OSError as exc:
            reason = f"cannot read: {exc.strerror or exc}"
            if path.is_symlink():
                reason = (
                    "symbolic link loop"
                    if exc.errno == errno.ELOOP
                    else "broken symbolic link: its target does not exist"
                )
            return Skipped(source, reason, failed=True)
        if not stat_module.S_ISREG(info.st_mode):
            return Skipped(source, "not a regular file", failed=True)
        max_mb = self.settings.max_file_mb
        if info.st_size > max_mb * 1e6:
            return Skipped(
                source,
                f"too large: {_size(info.st_size)}, the limit is {max_mb:g} MB per file "
                "(raise it with --max-file-mb or QA_MAX_FILE_MB)",
                failed=True,
            )
        try:
            data = path.read_bytes()
        except OSError as exc:
            return Skipped(source, f"cannot read: {exc.strerror or exc}", failed=True)
        sha = hashlib.sha256(data).hexdigest()
        if old is not None and old.sha256 == sha:
            return None
        try:
            doc = load(path, source=source, data=data)
        except Unsupported as exc:
            return Skipped(source, str(exc), failed=True)
        del data
        chunks = self._chunk_within_limit(doc)
        if isinstance(chunks, str):
            return Skipped(source, chunks, failed=True)
        return _Pending(
            path, source, sha, info.st_mtime, info.st_size, doc, chunks, old is not None
        )

    def _chunk_within_limit(self, doc: Document) -> list[Chunk] | str:
        """The document's chunks, or why there would be too many (`max_chunks_per_file`)."""
        limit = self.settings.max_chunks_per_file
        raise_it = "raise it with --max-chunks-per-file or QA_MAX_CHUNKS_PER_FILE"
        tokens = min(self.manifest["chunking"]["chunk_tokens"], self.embedder.max_tokens)
        most = limit * tokens * MAX_CHARS_PER_TOKEN
        if len(doc.text) > most:
            return (
                f"too long: {len(doc.text):,} characters of text, more than the limit of "
                f"{limit:,} passages per file can hold ({most:,}); {raise_it}"
            )
        chunks = self._chunk(doc)
        if len(chunks) > limit:
            return (
                f"too long: {len(chunks):,} passages, the limit is {limit:,} per file; {raise_it}"
            )
        return chunks

    def _chunk(self, doc: Document) -> list[Chunk]:
        limit = min(self.manifest["chunking"]["chunk_tokens"], self.embedder.max_tokens)
        overlap = self.manifest["chunking"]["overlap"]
        return chunk_document(doc, self.embedder.token_spans, limit, overlap)

    def _commit(self, pending: list[_Pending], progress: Progress) -> int:
        """Embed a group of documents (searches go on meanwhile), then write them in one
        transaction and mirror it in FAISS (searches wait for that, briefly)."""
        texts = [c.text for p in pending for c in p.chunks]
        self._check_dimension()
        progress("embed", 0, len(texts))
        embedded = self.embedder.embed(texts)
        progress("embed", len(texts), len(texts))
        removed: list[int] = []
        added: list[int] = []
        with self._lock:
            vectors = self._current_vectors()
            with self.store.transaction() as conn:
                offset = 0
                for p in pending:
                    removed += self.store.delete_document(conn, p.source)
                    n = len(p.chunks)
                    added += self.store.insert_document(
                        conn,
                        source=p.source,
                        sha256=p.sha256,
                        title=p.doc.title,
                        mtime=p.mtime,
                        size=p.size,
                        text=p.doc.text,
                        chunks=p.chunks,
                        vectors=embedded[offset : offset + n],
                    )
                    offset += n
            self._apply(vectors, removed, np.asarray(added, dtype=np.int64), embedded)
        return len(texts)

    def _apply(self, vectors: VectorIndex, removed, added_ids: np.ndarray, added_vecs) -> None:
        """Mirror a committed transaction in the in-memory FAISS index."""
        ok = vectors.remove(removed)
        if ok and len(added_ids) and vectors.needs_training():
            ok = False
        if ok:
            vectors.add(added_ids, added_vecs)
        else:  # the index type cannot delete or is untrained: rebuild from the store
            vectors = self._rebuild_vectors(vectors.factory)
        self._vectors, self._generation = vectors, self.store.generation()

    def _remove_missing(self, roots: list[Path], stored: dict, seen: set[str]) -> list[str]:
        prefixes = []
        for root in roots:
            name = self.source_for(root)
            prefixes.append(name.rstrip("/") + "/" if root.is_dir() else name)
        gone = sorted(
            s
            for s in stored
            if s not in seen
            and any(s == p or (p.endswith("/") and s.startswith(p)) for p in prefixes)
        )
        if gone:
            removed_ids: list[int] = []
            with self._lock:
                vectors = self._current_vectors()
                with self.store.transaction() as conn:
                    for s in gone:
                        removed_ids += self.store.delete_document(conn, s)
                self._apply(vectors, removed_ids, np.zeros(0, np.int64), None)
        return gone

    def _remember_roots(self, roots: list[Path]) -> None:
        names = [self.source_for(r) for r in roots]
        with self._lock:
            known = self.store.get_meta("roots", [])
            merged = known + [n for n in names if n not in known]
            if merged != known:
                current = self._generation == self.store.generation()
                with self.store.transaction() as conn:
                    self.store.set_meta(conn, "roots", merged)
                if current:
                    self._generation = self.store.generation()  # vectors are unchanged

    def roots(self) -> list[Path]:
        """The folders and files this index was built from, for `qa index` with no PATH."""
        with self._lock:
            return [self.path_for(s) for s in self.store.get_meta("roots", [])]

    def _write_lock(self):
        return _FileLock(self.directory / ".lock")

    # --- reading ----------------------------------------------------------------------

    def documents(self) -> list[DocumentInfo]:
        with self._lock:
            return self.store.documents()

    def document_text(self, source: str) -> str:
        with self._lock:
            text = self.store.document_text(source)
        if text is None:
            raise BadInput(f"{source} is not in the index (see `qa list`)")
        return text

    def __len__(self) -> int:
        with self._lock:
            return self.store.count_chunks()

    def search(
        self,
        query: str,
        k: int | None = None,
        *,
        sources: Sequence[str] | None = None,
        mode: str = "hybrid",
        fusion: str | None = None,
    ) -> list[Hit]:
        """The `k` best passages for `query`: dense and BM25 results fused (`mode="hybrid"`),
        or one retriever alone (`mode="dense"` / `"bm25"`); `sources` limits the documents."""
        if not query or not query.strip():
            raise BadInput("the query is empty")
        if mode not in ("hybrid", "dense", "bm25"):
            raise BadInput(f"unknown search mode {mode!r}: use hybrid, dense or bm25")
        k = k or self.settings.k
        fusion = fusion or self.settings.fusion
        depth = max(80, 4 * k)
        q = None
        if mode in ("hybrid", "dense"):  # embedding is the slow part: outside the lock
            self._check_dimension()
            q = self.embedder.embed([query])[0]
        with self._lock:
            lists: dict[str, list[tuple[int, float]]] = {}
            if q is not None:
                vectors = self._current_vectors()
                allowed = None
                if sources:
                    allowed = np.asarray(self.store.chunk_ids_for_sources(sources), np.int64)
                lists["dense"] = vectors.search(q, depth, allowed)
            if mode in ("hybrid", "bm25"):
                lists["bm25"] = self.store.bm25(query, depth, sources)
            ranked = _fuse(lists, fusion)[:k]
            rows = self.store.chunks([cid for cid, _, _ in ranked])
        hits = []
        for cid, score, found_by in ranked:
            row = rows.get(cid)
            if row is None:  # should not happen: FAISS and SQLite are kept in step
                continue
            hits.append(
                Hit(
                    chunk_id=cid,
                    source=row.source,
                    text=row.text,
                    start=row.start,
                    end=row.end,
                    score=score,
                    page=row.page,
                    headings=row.headings,
                    retrievers=found_by,
                )
            )
        return hits


def _fuse(lists: dict[str, list[tuple[int, float]]], fusion: str):
    """[(chunk_id, fused score, retrievers)] best first."""
    scores: dict[int, float] = {}
    found: dict[int, list[str]] = {}
    for name, ranked in lists.items():
        for _, (cid, _) in enumerate(ranked):
            found.setdefault(cid, []).append(name)
    if len(lists) == 1:
        (ranked,) = lists.values()
        return [(cid, s, tuple(found[cid])) for cid, s in ranked]
    if fusion == "rrf":
        for ranked in lists.values():
            for rank, (cid, _) in enumerate(ranked):
                scores[cid] = scores.get(cid, 0.0) + 1.0 / (RRF_K + rank + 1)
    else:  # weighted blend of z-scores: (score - mean) / std over each retriever's list
        weights = {"dense": DENSE_WEIGHT, "bm25": 1.0 - DENSE_WEIGHT}
        for name, ranked in lists.items():
            if not ranked:
                continue
            values = np.asarray([s for _, s in ranked], dtype=np.float64)
            mean, std = float(values.mean()), float(values.std()) or 1.0
            floor = (float(values.min()) - mean) / std  # for a chunk this list did not find
            z = {cid: (s - mean) / std for cid, s in ranked}
            for cid in found:
                scores[cid] = scores.get(cid, 0.0) + weights[name] * z.get(cid, floor)
    order = sorted(scores.items(), key=lambda kv: (-kv[1], kv[0]))
    return [(cid, s, tuple(found[cid])) for cid, s in order]


def clear(directory: Path) -> None:
    """Delete the index files in `directory` (only files qa made), under the write lock."""
    directory = Path(directory)
    if not directory.exists():
        return
    if not directory.is_dir():
        raise BadInput(f"{directory} is a file, not an index folder")
    with _FileLock(directory / ".lock"):
        # the manifest last: a folder cleared half-way still says it is an index
        for old in directory.glob("vectors-*.faiss*"):
            old.unlink(missing_ok=True)
        for name in (DATABASE + "-wal", DATABASE + "-shm", DATABASE, MANIFEST + ".tmp", MANIFEST):
            (directory / name).unlink(missing_ok=True)


def _create(directory: Path, manifest: dict) -> None:
    """Make a new, empty index: the database first, then the manifest that names the folder
    an index, so a run killed in between leaves nothing the next run cannot finish."""
    directory.mkdir(parents=True, exist_ok=True)
    with _FileLock(directory / ".lock"):
        if (directory / MANIFEST).is_file():
            return  # another process made it meanwhile
        store = Store(directory / DATABASE)
        try:
            empty = store.generation() == 0 and not store.stored_docs()
        finally:
            store.close()
        if not empty:
            raise IndexCorrupt(
                f"{directory}/ has an index database but no manifest; rebuild it: "
                f"`qa index --rebuild --index {directory} PATH`"
            )
        _write_json(directory / MANIFEST, manifest)


def _manifest_for(settings: Settings, embedder: Embedder) -> dict:
    return {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "qa_version": __version__,
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "embedder": {
            "name": embedder.name,
            "dimension": embedder.dimension,
            "max_tokens": embedder.max_tokens,
        },
        "chunking": {"chunk_tokens": settings.chunk_tokens, "overlap": settings.chunk_overlap},
        "faiss_factory": settings.faiss_factory,
    }


def _embedder_name(manifest: Path, settings: Settings) -> str:
    """The configured embedder; with the default configured, the one the index was built with."""
    if settings.embed_model != DEFAULT_EMBEDDER:
        return settings.embed_model
    try:
        return _read_json(manifest)["embedder"]["name"]
    except (OSError, ValueError, KeyError, TypeError):
        return settings.embed_model  # _read_manifest reports the problem


def _size(n: int) -> str:
    return f"{n / 1e6:,.1f} MB" if n >= 1e6 else f"{n / 1e3:,.1f} kB"


def _valid_name(source: str) -> bool:
    """Whether a file name can be stored (names that are not UTF-8 hold surrogates)."""
    try:
        source.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _display(name: str) -> str:
    """`name` safe to print on one line: undecodable bytes as \\xNN."""
    if _valid_name(name):
        return name
    return os.fsencode(name).decode("utf-8", errors="backslashreplace")


def _read_json(path: Path) -> dict:
    return json.loads(path.read_text(encoding="utf-8"))


def _write_json(path: Path, data: dict) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
    os.replace(tmp, path)
