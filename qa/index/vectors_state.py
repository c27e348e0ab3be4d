"""The FAISS side of an `Index` (which inherits this): keeping the in-memory FAISS object in
step with the SQLite store, and its file on disk.

The FAISS object must hold exactly the store's vector ids. After another writer's commits it
catches up from the changed ids only; without a usable file for the current generation it is
rebuilt from the stored vectors (no re-embedding) and saved when no one is writing. Every
fallback to a rebuild is logged with its reason.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from qa.errors import IndexCorrupt, IndexLocked
from qa.index import manifest as mf
from qa.index.vectors import VectorIndex

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
                vectors = self._load_vectors(self._vectors_path(generation), factory)
                rebuilt = vectors is None
                if rebuilt:
                    vectors = self._rebuild_vectors(factory)
            self._vectors, self._generation = vectors, generation
            if rebuilt:
                self._save_if_idle(vectors, generation)
            return vectors

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
        if vectors.dimension != dimension or vectors.ntotal != self.store.count_chunks():
            log.warning("%s does not match the database: rebuilding it", path)
            return None
        if not np.array_equal(np.sort(vectors.ids()), self.store.vector_ids()):
            log.warning("%s holds other ids than the database: rebuilding it", path)
            return None
        return vectors

    def _rebuild_vectors(self, factory: str) -> VectorIndex:
        vectors = VectorIndex(self.manifest["embedder"]["dimension"], factory)
        batches = list(self.store.iter_vectors())
        if vectors.needs_training() and batches:
            vectors.train(np.vstack([v for _, v in batches]))
        for ids, vecs in batches:
            if vecs.shape[1] != vectors.dimension:
                raise IndexCorrupt(
                    f"{self.directory}/ holds vectors of the wrong size; "
                    f"{mf.rebuild_hint(self.directory)}"
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
        """Save the vectors of `generation` and delete this database's older FAISS files."""
        vectors.save(self._vectors_path(generation))
        prefix = f"vectors-{self.manifest['id']}-"
        for old in self.directory.glob(prefix + "*.faiss"):
            number = old.name[len(prefix) : -len(".faiss")]
            if not number.isdigit() or int(number) < generation:
                old.unlink(missing_ok=True)
