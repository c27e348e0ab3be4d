"""FAISS vectors keyed by chunk id: exact below a size threshold, approximate above it.

The configured factory (`QA_FAISS_FACTORY`, kept in the manifest) is one of
  auto          Flat below ANN_MIN vectors, IVF<n>,Flat above it, IVF<n>,SQ8 above SQ8_MIN
  Flat          exact inner product
  HNSW<M>[,SQ8] a graph (SQ8: 1 byte per dimension instead of 4)
  IVF[<n>],Flat|SQ8|PQ<m>   inverted lists over <n> k-means centroids (n chosen from the size
                if left out), trained from the stored vectors
and `plan` turns it into the concrete structure for the number of vectors held (`spec`).

Updates never rebuild the whole structure: Flat and IVF remove ids in place
(`remove_ids`); HNSW cannot, so removed ids become tombstones, filtered out at search, until
`needs_compaction` says the owner should rebuild it (outside its read lock, see
`qa.index.vectors_state`). Lossy encodings (SQ8, PQ) fetch RERANK times the results asked
for and re-rank them exactly from the float vectors SQLite stores (`fetch`).
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable
from pathlib import Path

import numpy as np

from qa.config import FAISS_FACTORY_RE
from qa.errors import BadInput

# Below this many vectors `auto` stays exact. Measured here (2 cores, 384-d): a flat search
# of 80 results takes ~13 ms at 100k vectors and ~150 ms at 1M, so exact stays inside the
# 20 ms vector-search goal up to about 100k; above it IVF reaches recall@10 >= .98 for less
# (100k: .993 in 5.6 ms of CPU; 1M: .985 in 6.8 ms; see NPROBE_SHARE).
ANN_MIN = 100_000
# Above this many vectors `auto` stores 1 byte per dimension (IVF<n>,SQ8, re-ranked exactly):
# 4M float 384-d vectors are 6 GiB, a quarter of this machine's memory.
SQ8_MIN = 4_000_000
# FAISS wants at least 39 training points per centroid (it warns below that).
TRAIN_PER_LIST = 39
# Training sample per centroid: k-means cost grows with it; FAISS itself caps it at 256.
SAMPLE_PER_LIST = 64
# IVF lists probed: 1/16 of the lists, and enough to scan at least SCAN_MIN vectors (and
# NPROBE_MIN lists). Measured on vectors shaped like real embeddings (real sentence
# embeddings plus noise, real question embeddings as queries: qa/bench/scale.py), recall@10
# against exact search over 200 questions, by nprobe:
#   1M vectors, IVF2048: 16 .896, 32 .939-.946, 64 .965, 128 .983-.985, 256 .993, 512 1.0
#   100k vectors, IVF512: 8 .783, 16 .852, 32 .900, 64 .949, 128 .975, 192 .988, 256 .993
# (256 of 512 took 5.6 ms of CPU, a flat search of 100k ~13 ms).
# 1/16 is the least share that reaches the .98 goal at 1M; a smaller collection is sparser
# around each query (its 10th neighbour is further), so there a share scans too few
# vectors, and the floor of SCAN_MIN vectors takes over.
# (The old 1/32, 64 lists, measured .66 on an isotropic Gaussian mixture and .965 here.)
NPROBE_SHARE = 1 / 16
SCAN_MIN = 50_000
NPROBE_MIN = 16
# HNSW: candidate list sizes at build and search time (FAISS defaults 40 and 16). HNSW32 at
# 100k vectors of the same kind, recall@10 by efSearch: 16 .926, 32 .964, 64 .986, 128 .992
# (1.3 ms of CPU), 256 .994; building it took 368 s here, so 1M was not measured.
EF_CONSTRUCTION = 40
EF_SEARCH = 128
# Lossy codes (SQ8, PQ) fetch this many times the results asked for, then re-rank exactly.
RERANK = 2
# HNSW: rebuild once this share of the stored vectors is tombstones (searching past
# them costs time in proportion; a rebuild of 1M vectors costs minutes, so not too often).
COMPACT_SHARE = 0.25
# Searches run on one OpenMP thread (set per calling thread; builds keep FAISS's default).
# Measured on this shared 2-core machine at load average 10: 50 searches of a 2,000-vector
# Flat index took 3.5 s with 2 threads and 2 ms with 1 (HNSW 2.5 s vs 49 ms): a parallel
# region's threads spin and wait for a core at every search.
SEARCH_THREADS = 1
# A source filter that leaves at most this many chunks is searched exactly over their
# stored vectors (reading 10k vectors from SQLite takes ~15 ms) instead of through the ANN
# structure, which can return fewer results than asked when few vectors are allowed.
EXACT_FILTER_MAX = 10_000

Fetch = Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]]


def nlist_for(n: int) -> int:
    """IVF lists for n vectors: a power of two near 2 sqrt(n) (FAISS suggests 4-16 sqrt(n)
    for large n; fewer lists train faster and the probes make up for them)."""
    return max(1, 2 ** round(math.log2(max(1.0, 2 * math.sqrt(n)))))


def nprobe_for(nlist: int, n: int = 0) -> int:
    """IVF lists probed per search for `n` vectors in `nlist` lists (see NPROBE_SHARE)."""
    floor = math.ceil(SCAN_MIN * nlist / n) if n > 0 else 0
    return min(nlist, max(NPROBE_MIN, round(nlist * NPROBE_SHARE), floor))


def plan(factory: str, n: int) -> str:
    """The concrete FAISS structure the configured `factory` means at n vectors."""
    m = FAISS_FACTORY_RE.match(factory)
    if m is None:
        raise BadInput(f"unknown FAISS factory {factory!r} (QA_FAISS_FACTORY)")
    if factory == "auto":
        if n < ANN_MIN:
            return "Flat"
        lists = max(1, min(nlist_for(n), n // TRAIN_PER_LIST))
        return f"IVF{lists},{'SQ8' if n >= SQ8_MIN else 'Flat'}"
    if factory.startswith("IVF"):
        lists, code = factory[3:].split(",")
        lists = int(lists) if lists else nlist_for(n)
        if n < TRAIN_PER_LIST * lists:
            return "Flat"  # too few vectors to train: exact until there are enough
        return f"IVF{lists},{code}"
    if factory.startswith("HNSW") and factory.endswith(",Flat"):
        return factory[: -len(",Flat")]
    return factory


def should_reshape(current: str, target: str, n: int) -> bool:
    """Whether a structure built as `current` should be rebuilt as `target` at n vectors:
    IVF keeps its lists while within 4x of the target's, and `auto` keeps IVF down to half
    of ANN_MIN, so sizes near a threshold do not rebuild back and forth."""
    if current == target:
        return False
    if current.startswith("IVF") and target.startswith("IVF"):
        (a, code_a), (b, code_b) = (s[3:].split(",") for s in (current, target))
        return code_a != code_b or max(int(a), int(b)) >= 4 * min(int(a), int(b))
    return not (current.startswith("IVF") and target == "Flat" and n >= ANN_MIN // 2)


def _kind(spec: str) -> str:
    return "ivf" if spec.startswith("IVF") else "hnsw" if spec.startswith("HNSW") else "flat"


def _make(spec: str, dimension: int):
    import faiss

    if spec.startswith("IVF") and ",PQ" in spec:
        m = int(spec.rsplit("PQ", 1)[1])
        if m < 1 or dimension % m:
            raise BadInput(
                f"FAISS factory {spec!r}: PQ{m} needs a number of parts that divides the "
                f"vector size {dimension} (QA_FAISS_FACTORY)"
            )
    try:
        inner = faiss.index_factory(dimension, spec, faiss.METRIC_INNER_PRODUCT)
    except RuntimeError as exc:
        message = " ".join(str(exc).split())[:200]
        raise BadInput(f"FAISS cannot make {spec!r} (QA_FAISS_FACTORY): {message}") from None
    kind = _kind(spec)
    if kind == "ivf":
        return inner  # IVF stores ids itself and removes them in place
    if kind == "hnsw":
        inner.hnsw.efConstruction = EF_CONSTRUCTION
        inner.hnsw.efSearch = EF_SEARCH
    return faiss.IndexIDMap2(inner)


def describe(index) -> str:
    """The concrete spec of a FAISS object made by `_make` (e.g. read from a file)."""
    import faiss

    index = faiss.downcast_index(index)
    if isinstance(index, faiss.IndexIVF):
        if isinstance(index, faiss.IndexIVFScalarQuantizer):
            code = "SQ8"
        elif isinstance(index, faiss.IndexIVFPQ):
            code = f"PQ{index.pq.M}"
        else:
            code = "Flat"
        return f"IVF{index.nlist},{code}"
    if isinstance(index, faiss.IndexIDMap2 | faiss.IndexIDMap):
        inner = faiss.downcast_index(index.index)
        if isinstance(inner, faiss.IndexHNSW):
            m = inner.hnsw.nb_neighbors(1)
            return f"HNSW{m},SQ8" if isinstance(inner, faiss.IndexHNSWSQ) else f"HNSW{m}"
        return "Flat"
    raise ValueError(f"not a qa FAISS index: {type(index).__name__}")


class VectorIndex:
    """One FAISS structure holding (chunk id, vector) pairs; see the module docstring."""

    def __init__(self, dimension: int, factory: str = "Flat", *, size: int = 0) -> None:
        self.dimension = dimension
        self.factory = factory  # as configured ("auto", "IVF,SQ8", ...)
        self.spec = plan(factory, size)  # what was built for `size` vectors
        self.index = _make(self.spec, dimension)
        self._init_state()

    def _init_state(self) -> None:
        self.kind = _kind(self.spec)
        self.lossy = "SQ8" in self.spec or ",PQ" in self.spec
        self.fetch: Fetch | None = None  # exact stored vectors by id, for re-ranking
        self._tombstones = np.zeros(0, np.int64)  # HNSW: removed ids still in the graph
        self._skip = None  # (IDSelectorNot, IDSelectorBatch) over the tombstones
        # the search-time breadth: lists probed (IVF; None: nprobe_for the size held) and
        # the candidate list size (HNSW); both settable
        self._nprobe: int | None = None
        self.ef_search = EF_SEARCH

    @property
    def nprobe(self) -> int:
        if self.kind != "ivf":
            return 0
        if self._nprobe is not None:
            return self._nprobe
        return nprobe_for(self.index.nlist, int(self.index.ntotal))

    @nprobe.setter
    def nprobe(self, value: int | None) -> None:
        self._nprobe = value

    @property
    def ntotal(self) -> int:
        """Vectors that searches can return (tombstones left out)."""
        return int(self.index.ntotal) - len(self._tombstones)

    @property
    def deleted_share(self) -> float:
        return len(self._tombstones) / max(1, int(self.index.ntotal))

    def needs_compaction(self) -> bool:
        return self.deleted_share > COMPACT_SHARE

    def needs_training(self) -> bool:
        return not self.index.is_trained

    def train(self, vectors: np.ndarray, seed: int = 0) -> None:
        """Train on the vectors (a random sample of SAMPLE_PER_LIST per IVF list)."""
        vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        if self.kind == "ivf":
            most = SAMPLE_PER_LIST * self.index.nlist
            if ",PQ" in self.spec:  # each part is a k-means of 256 codes of its own
                most = max(most, TRAIN_PER_LIST * 256)
            if len(vectors) > most:
                pick = np.random.default_rng(seed).choice(len(vectors), most, replace=False)
                vectors = vectors[np.sort(pick)]
        self.index.train(vectors)

    def add(self, ids: np.ndarray, vectors: np.ndarray) -> None:
        if len(ids):
            self.index.add_with_ids(
                np.ascontiguousarray(vectors, dtype=np.float32),
                np.ascontiguousarray(ids, dtype=np.int64),
            )

    def remove(self, ids) -> bool:
        """Remove ids (in place, or as tombstones for HNSW). Always True: the caller's
        fallback to a rebuild is for index types that cannot, which qa no longer makes."""
        import faiss

        ids = np.asarray(list(ids) if not isinstance(ids, np.ndarray) else ids, dtype=np.int64)
        if not len(ids):
            return True
        if self.kind == "hnsw":
            held = np.intersect1d(ids, self._all_ids())
            self._set_tombstones(np.union1d(self._tombstones, held))
        else:
            self.index.remove_ids(faiss.IDSelectorBatch(ids))
        return True

    def _set_tombstones(self, ids: np.ndarray) -> None:
        import faiss

        self._tombstones = np.asarray(ids, dtype=np.int64)
        if len(self._tombstones):
            batch = faiss.IDSelectorBatch(self._tombstones)
            self._skip = (faiss.IDSelectorNot(batch), batch)  # keep `batch` alive
        else:
            self._skip = None

    def search(
        self, query: np.ndarray, n: int, allowed: np.ndarray | None = None
    ) -> list[tuple[int, float]]:
        """(id, inner product) best first, optionally only among `allowed` ids."""
        import faiss

        if self.ntotal == 0 or n <= 0:
            return []
        faiss.omp_set_num_threads(SEARCH_THREADS)
        q = np.ascontiguousarray(query.reshape(1, -1), dtype=np.float32)
        if allowed is not None:
            allowed = np.asarray(allowed, dtype=np.int64)
            if len(self._tombstones):
                allowed = np.setdiff1d(allowed, self._tombstones)
            if not len(allowed):
                return []
            if self.kind != "flat" and self.fetch is not None and len(allowed) <= EXACT_FILTER_MAX:
                return self._exact(q[0], n, allowed)
        rerank = self.lossy and self.fetch is not None
        ask = min(n * RERANK if rerank else n, int(self.index.ntotal))
        scores, ids = self.index.search(q, ask, params=self._params(allowed, ask))
        found = [(int(i), float(s)) for i, s in zip(ids[0], scores[0], strict=True) if i >= 0]
        if rerank and found:
            return self._exact(q[0], n, np.asarray([i for i, _ in found], dtype=np.int64))
        return found[:n]

    def _params(self, allowed: np.ndarray | None, ask: int):
        """FAISS search parameters of this index type, with the id filter if any."""
        import faiss

        sel = keep = None
        if allowed is not None:
            keep = faiss.IDSelectorBatch(allowed)
            sel = keep
        elif self._skip is not None:
            sel = self._skip[0]
        if self.kind == "hnsw":
            params = faiss.SearchParametersHNSW(efSearch=max(self.ef_search, ask))
        elif self.kind == "ivf":
            params = faiss.SearchParametersIVF(nprobe=self.nprobe)
        elif sel is None:
            return None
        else:
            params = faiss.SearchParameters()
        if sel is not None:
            params.sel = sel
            params._keep = keep  # the selector must outlive the search
        return params

    def _exact(self, q: np.ndarray, n: int, ids: np.ndarray) -> list[tuple[int, float]]:
        """The n best of `ids` by exact inner product with their stored vectors."""
        got, vecs = self.fetch(ids)
        if not len(got):
            return []
        scores = vecs @ q
        top = np.argsort(-scores, kind="stable")[:n]
        return [(int(got[i]), float(scores[i])) for i in top]

    def _all_ids(self) -> np.ndarray:
        """Every id the FAISS structure holds, tombstones included."""
        import faiss

        if self.kind != "ivf":
            return faiss.vector_to_array(self.index.id_map).astype(np.int64)
        invlists = self.index.invlists
        parts = [np.zeros(0, np.int64)]
        for lst in range(self.index.nlist):
            size = invlists.list_size(lst)
            if size:
                parts.append(faiss.rev_swig_ptr(invlists.get_ids(lst), size).astype(np.int64))
        return np.concatenate(parts)

    def ids(self) -> np.ndarray:
        """The ids searches can return."""
        held = self._all_ids()
        if len(self._tombstones):
            held = np.setdiff1d(held, self._tombstones, assume_unique=True)
        return held

    def adopt_tombstones(self, stored: np.ndarray) -> np.ndarray:
        """After loading a file: the ids it holds that `stored` (the database's ids, sorted)
        lacks. For HNSW they become tombstones (chunk ids are never reused, so they are the
        removed ones); the caller treats any other type that has them as not matching."""
        held = self._all_ids()
        extra = np.setdiff1d(held, stored)
        if len(extra) and self.kind == "hnsw":
            self._set_tombstones(extra)
        return extra

    def save(self, path: Path) -> None:
        """Write atomically: a reader sees the old file or the new one, never a torn one.
        Tombstones are not written: on loading they are the ids the database lacks."""
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
        raw = faiss.read_index(str(path))
        self.index = faiss.downcast_index(raw)
        # the downcast proxy does not own the C++ object: take ownership from `raw`, which
        # would otherwise free it when it goes out of scope (a segfault on the next search)
        if self.index is not raw:
            raw.thisown, self.index.thisown = False, True
        self.dimension = self.index.d
        self.factory = factory
        self.spec = describe(self.index)
        if _kind(self.spec) == "hnsw":
            faiss.downcast_index(self.index.index).hnsw.efSearch = EF_SEARCH
        self._init_state()
        return self
