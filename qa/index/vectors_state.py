"""The FAISS side of an `Index` (which inherits this): keeping the in-memory FAISS object in
step with the SQLite store, and its file on disk.

The FAISS object must hold exactly the store's vector ids. After another writer's commits it
catches up from the changed ids only; without a usable file for the current generation it is
rebuilt from the stored vectors (no re-embedding) and saved when no one is writing. Every
fallback to a rebuild is logged with its reason.

Approximate structures (see `qa.index.vectors`) are updated in place. After a write, while
it still holds the write lock, the writer saves the vectors (`_save_vectors`); if by then the
configured factory means another structure at the new size (e.g. `auto` crossing ANN_MIN),
or an HNSW graph holds too many tombstones, the structure is rebuilt from the stored
vectors through a second, read-only database connection, outside the in-process lock, so
searches go on with the old one until the new one is swapped in. The factory is the
manifest's: a different `QA_FAISS_FACTORY` takes effect on `qa index --rebuild` (a
one-line notice says so).
"""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from qa.errors import IndexCorrupt, IndexLocked
from qa.index import manifest as mf
from qa.index.store import database_error
from qa.index.vectors import VectorIndex, plan, should_reshape

log = logging.getLogger("qa.index.core")


class Vectors:
    """The FAISS half of `Index` (which provides store, manifest, locks and directory)."""

    def _vectors_path(self, generation: int) -> Path:
        return self.directory / mf.vectors_name(self.manifest["id"], generation)

    def _current_vectors(self) -> VectorIndex:
        """The FAISS index for the store's current generation: caught up from the stored
        vectors if another writer committed since, else loaded from its file if that matches
        the database exactly, else rebuilt from the stored vectors (and saved when no one is
        writing)."""
        with self._lock:
            with self.store.snapshot():  # the generation and the vectors read agree
                generation = self.store.generation()
                if self._vectors is not None and generation == self._generation:
                    return self._vectors
                if self._vectors is not None and self._catch_up(self._vectors):
                    self._generation = generation
                    return self._vectors
                factory = self.manifest.get("faiss_factory", "Flat")
                self._factory_notice(factory)
                vectors = self._load_vectors(self._vectors_path(generation), factory)
                rebuilt = vectors is None
                if rebuilt:
                    vectors = self._rebuild_vectors(factory)
            vectors.fetch = self.store.vectors_for
            self._vectors, self._generation = vectors, generation
            if rebuilt:
                self._save_if_idle(vectors, generation)
            return vectors

    def _factory_notice(self, factory: str) -> None:
        """Say once per database that a configured factory other than the index's is not
        used until a rebuild (the default, `auto`, says nothing)."""
        wanted = self.settings.faiss_factory
        noticed = getattr(self, "_noticed", None)
        if wanted in (factory, "auto") or noticed == self.manifest.get("id"):
            return
        self._noticed = self.manifest.get("id")
        log.warning(
            "QA_FAISS_FACTORY=%s is not used: %s/ was built with %s; it takes effect on "
            "`qa index --rebuild --index %s`",
            wanted,
            self.directory,
            factory,
            self.directory,
        )

    def _catch_up(self, vectors: VectorIndex) -> bool:
        """Apply another writer's commits to `vectors`: remove the ids that are gone, add the
        new ones from the store. False if this index type cannot (the caller reloads)."""
        stored = self.store.vector_ids()
        have = np.sort(vectors.ids())
        gone = np.setdiff1d(have, stored, assume_unique=True)
        new = np.setdiff1d(stored, have, assume_unique=True)
        if not vectors.remove(gone):
            return False
        if len(new):
            if vectors.needs_training():
                return False
            ids, vecs = self.store.vectors_for(new)
            vectors.add(ids, vecs)
        log.debug("caught up: %d vectors removed, %d added", len(gone), len(new))
        return True

    def _load_vectors(self, path: Path, factory: str) -> VectorIndex | None:
        """The FAISS file at `path` if it holds exactly the database's vector ids, in the
        manifest's dimension; None (with the reason logged) if it is missing, damaged or does
        not match."""
        if not path.is_file():
            if self.store.count_chunks():
                log.info("%s not found: rebuilding it from the stored vectors", path.name)
            return None
        try:
            vectors = VectorIndex.load(path, factory)
        except Exception as exc:  # a damaged file: FAISS raises RuntimeError, or worse
            log.warning("cannot load %s (%s): rebuilding it from the stored vectors", path, exc)
            return None
        dimension = self.manifest.get("embedder", {}).get("dimension")
        if vectors.dimension != dimension:
            log.warning("%s does not match the database: rebuilding it", path)
            return None
        stored = self.store.vector_ids()
        # HNSW files hold the removed ids too (tombstones); any other extra id is a mismatch
        extra = vectors.adopt_tombstones(stored)
        if (len(extra) and vectors.kind != "hnsw") or vectors.ntotal != len(stored):
            log.warning("%s does not match the database: rebuilding it", path)
            return None
        if not np.array_equal(np.sort(vectors.ids()), stored):
            log.warning("%s holds other ids than the database: rebuilding it", path)
            return None
        return vectors

    def _rebuild_vectors(self, factory: str, batches=None) -> VectorIndex:
        """A new FAISS structure of the stored vectors (from `batches` if given, else read
        through the shared connection), of the kind `factory` means at their number."""
        batches = list(self.store.iter_vectors() if batches is None else batches)
        size = sum(len(ids) for ids, _ in batches)
        vectors = VectorIndex(self.manifest["embedder"]["dimension"], factory, size=size)
        if vectors.needs_training() and batches:
            vectors.train(np.vstack([v for _, v in batches]))
        for ids, vecs in batches:
            if vecs.shape[1] != vectors.dimension:
                raise IndexCorrupt(
                    f"{self.directory}/ holds vectors of the wrong size; "
                    f"{mf.rebuild_hint(self.directory)}"
                )
            vectors.add(ids, vecs)
        vectors.fetch = self.store.vectors_for
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
        """Write the current vectors to disk (the caller holds the write lock), first
        rebuilding them if their structure no longer fits (see the module docstring)."""
        with self._lock:
            generation = self.store.generation()
            vectors = self._current_vectors()
            factory = self.manifest.get("faiss_factory", "Flat")
            target = plan(factory, vectors.ntotal)
            reshape = should_reshape(vectors.spec, target, vectors.ntotal)
            compact = vectors.kind == "hnsw" and vectors.needs_compaction()
        if reshape or compact:
            why = (
                f"{vectors.deleted_share:.0%} of its vectors removed"
                if compact and not reshape
                else f"{vectors.ntotal:,} vectors"
            )
            log.info("rebuilding the FAISS index as %s (%s)", target, why)
            # outside the lock: searches go on with the old structure meanwhile; no other
            # writer can commit (the caller holds the write lock)
            new = self._rebuild_vectors(factory, self._read_vectors(generation))
            with self._lock:
                if self.store.generation() == generation:
                    self._vectors = vectors = new
        # outside the lock: searching reads the same object, and nothing else writes it
        self._write_vectors(vectors, generation)

    def _read_vectors(self, generation: int) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """The stored (ids, vectors) through a read-only connection of its own (the shared
        one serves searches meanwhile); SQLite errors become the store's one-line errors."""
        try:
            yield from self._read_vectors_from(generation)
        except sqlite3.Error as exc:
            raise database_error(self.store.path, exc) from exc

    def _read_vectors_from(self, generation: int) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        conn = sqlite3.connect(f"file:{self.store.path}?mode=ro", uri=True)
        try:
            conn.execute("BEGIN")
            row = conn.execute("SELECT value FROM meta WHERE key = 'generation'").fetchone()
            if int(row[0]) != generation:  # cannot happen under the write lock
                raise IndexCorrupt(f"{self.store.path} changed while its vectors were read")
            last = -1
            while True:
                rows = conn.execute(
                    "SELECT chunk_id, vector FROM vectors WHERE chunk_id > ? "
                    "ORDER BY chunk_id LIMIT 8192",
                    (last,),
                ).fetchall()
                if not rows:
                    return
                ids = np.fromiter((r[0] for r in rows), dtype=np.int64, count=len(rows))
                yield ids, np.vstack([np.frombuffer(r[1], dtype=np.float32) for r in rows])
                last = int(ids[-1])
        finally:
            conn.close()

    def _write_vectors(self, vectors: VectorIndex, generation: int) -> None:
        """Save the vectors of `generation` and delete this database's older FAISS files."""
        vectors.save(self._vectors_path(generation))
        prefix = f"vectors-{self.manifest['id']}-"
        for old in self.directory.glob(prefix + "*.faiss"):
            number = old.name[len(prefix) : -len(".faiss")]
            if not number.isdigit() or int(number) < generation:
                old.unlink(missing_ok=True)
