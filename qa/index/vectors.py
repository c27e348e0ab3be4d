"""FAISS vectors keyed by chunk id.

By default an exact inner-product index (`Flat`) inside `IndexIDMap2`. Any FAISS
factory string can replace it for large corpora (e.g. "HNSW32", "IVF1024,Flat");
types that cannot delete ids are rebuilt from the store instead.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np


class VectorIndex:
    def __init__(self, dimension: int, factory: str = "Flat") -> None:
        import faiss

        self.dimension = dimension
        self.factory = factory
        inner = faiss.index_factory(dimension, factory, faiss.METRIC_INNER_PRODUCT)
        self.index = faiss.IndexIDMap2(inner)

    @property
    def ntotal(self) -> int:
        return int(self.index.ntotal)

    def needs_training(self) -> bool:
        return not self.index.is_trained

    def train(self, vectors: np.ndarray) -> None:
        self.index.train(np.ascontiguousarray(vectors, dtype=np.float32))

    def add(self, ids: np.ndarray, vectors: np.ndarray) -> None:
        if len(ids):
            self.index.add_with_ids(
                np.ascontiguousarray(vectors, dtype=np.float32),
                np.ascontiguousarray(ids, dtype=np.int64),
            )

    def remove(self, ids) -> bool:
        """Remove ids; False if this index type cannot (the caller then rebuilds)."""
        import faiss

        ids = np.asarray(list(ids), dtype=np.int64)
        if not len(ids):
            return True
        try:
            self.index.remove_ids(faiss.IDSelectorBatch(ids))
        except RuntimeError:
            return False
        return True

    def search(
        self, query: np.ndarray, n: int, allowed: np.ndarray | None = None
    ) -> list[tuple[int, float]]:
        """(id, inner product) best first, optionally only among `allowed` ids."""
        import faiss

        if self.ntotal == 0 or n <= 0:
            return []
        q = np.ascontiguousarray(query.reshape(1, -1), dtype=np.float32)
        n = min(n, self.ntotal)
        if allowed is None:
            scores, ids = self.index.search(q, n)
        else:
            if not len(allowed):
                return []
            sel = faiss.IDSelectorBatch(np.asarray(allowed, dtype=np.int64))
            scores, ids = self.index.search(q, n, params=faiss.SearchParameters(sel=sel))
        return [(int(i), float(s)) for i, s in zip(ids[0], scores[0], strict=True) if i >= 0]

    def ids(self) -> np.ndarray:
        import faiss

        return faiss.vector_to_array(self.index.id_map).astype(np.int64)

    def save(self, path: Path) -> None:
        """Write atomically: a reader sees the old file or the new one, never a torn one."""
        import faiss

        tmp = path.with_name(path.name + ".tmp")
        faiss.write_index(self.index, str(tmp))
        with open(tmp, "rb") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)

    @classmethod
    def load(cls, path: Path, factory: str) -> VectorIndex:
        import faiss

        self = cls.__new__(cls)
        self.index = faiss.read_index(str(path))
        self.dimension = self.index.d
        self.factory = factory
        return self
