"""`qa bench search`: hybrid search latency versus raw FAISS + FTS5 on an index qa built.

Build an index of N chunks of real text through qa's own code (`Index.build`), with seeded
random vectors in place of the model (an exact FAISS search costs the same whatever the
vectors hold), reopen it with the real embedder, and time, per question:

- `Index.search(q, k=5, mode="hybrid")` against a raw FAISS `IndexFlatIP.search` over the
  same vectors plus a raw FTS5 `MATCH ... ORDER BY bm25() LIMIT` on the same table (target:
  hybrid <= 1.5x their sum). The headline ratio leaves the query embedding out of both
  sides (query vectors computed first, served from memory); the ratio with the real model
  embedding each query on both sides is shown too;
- qa's two retrieval layers on their own, as at the 1M scale point (see `scale`):
  `VectorIndex.search` against the raw FAISS search and `Store.bm25` against the raw FTS5
  query. Every retriever is asked for the depth `Index.search` asks for.
"""

from __future__ import annotations

import json
import math
import shutil
import sqlite3
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from qa.bench.common import (
    FTS_SQL,
    SEARCH_TARGET,
    Footprint,
    Latency,
    LayerRatios,
    calibrate,
    cprofile,
    footprint,
    log,
    peak_rss_mb,
    ratio,
    raw_encode,
    reset_peak_rss,
    rss_mb,
    search_depth,
    search_setup,
    time_rounds,
)
from qa.bench.data import Corpus, SyntheticVectors, shuffled_texts, write_texts
from qa.config import Settings
from qa.errors import BadInput
from qa.index.core import Index
from qa.index.manifest import database_of
from qa.index.store import Store, fts_query
from qa.index.vectors import VectorIndex

DEFAULT_SIZES = (10_000, 100_000)


@dataclass(frozen=True)
class SearchResult(LayerRatios):
    corpus: str
    documents: int
    chunks: int
    queries: int
    repeats: int
    k: int
    depth: int  # results asked of each retriever, raw and qa alike
    factory: str  # qa's FAISS index type (the raw side is always IndexFlatIP)
    build_seconds: float
    embed_ms: Latency  # raw model.encode of one query
    faiss_ms: Latency  # raw faiss IndexFlatIP.search
    fts_ms: Latency  # raw FTS5 SQL
    vector_ms: Latency  # qa VectorIndex.search
    bm25_ms: Latency  # qa Store.bm25
    raw_ms: Latency  # faiss + fts per query
    layers_ms: Latency  # vector + bm25 per query
    hybrid_ms: Latency  # Index.search, query vector served from memory
    raw_full_ms: Latency  # embed + faiss + fts per query
    hybrid_full_ms: Latency  # Index.search with the real embedder
    footprint: Footprint
    rss_mb: float  # resident memory with the model loaded and the index open and searched
    target: float = SEARCH_TARGET
    spec: str = ""  # the FAISS structure qa built for `factory` at this size
    ann_recall_at_10: float = math.nan  # qa's dense top 10 against exact search's
    kind: str = field(default="search", init=False)

    @property
    def vector_p50_ms(self) -> float:
        return self.vector_ms.p50

    @property
    def hybrid_p50_ms(self) -> float:
        return self.hybrid_ms.p50

    @property
    def ratio_p50(self) -> float:
        return ratio(self.hybrid_ms.p50, self.raw_ms.p50)

    @property
    def ratio_p95(self) -> float:
        return ratio(self.hybrid_ms.p95, self.raw_ms.p95)

    @property
    def ratio_full_p50(self) -> float:
        return ratio(self.hybrid_full_ms.p50, self.raw_full_ms.p50)

    @property
    def ratio_full_p95(self) -> float:
        return ratio(self.hybrid_full_ms.p95, self.raw_full_ms.p95)

    @property
    def passed(self) -> bool:
        return max(self.ratio_p50, self.ratio_p95) <= self.target

    def to_dict(self) -> dict:
        d = asdict(self)
        d["footprint"]["bytes_per_chunk"] = self.footprint.bytes_per_chunk
        d.update(
            ratio_p50=self.ratio_p50,
            ratio_p95=self.ratio_p95,
            ratio_full_p50=self.ratio_full_p50,
            ratio_full_p95=self.ratio_full_p95,
            **self.layer_ratios(),
            vector_p50_ms=self.vector_p50_ms,
            hybrid_p50_ms=self.hybrid_p50_ms,
            passed=self.passed,
        )
        return d


class Served:
    """Answers `embed` for known queries from memory; everything else goes to the base."""

    def __init__(self, base, texts, vectors: np.ndarray) -> None:
        self.base = base
        self.name = base.name
        self.dimension = base.dimension
        self.max_tokens = base.max_tokens
        self._vectors = dict(zip(texts, vectors, strict=True))

    def embed(self, texts):
        if all(t in self._vectors for t in texts):
            return np.vstack([self._vectors[t] for t in texts])
        return self.base.embed(texts)

    def token_spans(self, texts):
        return self.base.token_spans(texts)


def build_search_index(
    directory: Path, chunks: int, corpus: Corpus, embedder, settings: Settings, seed: int = 0
) -> tuple[int, float, float]:
    """An index of about `chunks` chunks of reshuffled corpus sentences, built by
    `Index.build` with random vectors; (documents, seconds, peak RSS MiB while building).
    Reused if already built (the peak is then 0)."""
    stamp = directory / "bench.json"
    key = {
        "chunks": chunks,
        "corpus": corpus.origin,
        "seed": seed,
        "chunk_tokens": settings.chunk_tokens,
        "overlap": settings.chunk_overlap,
        "factory": settings.faiss_factory,
    }
    if stamp.is_file():
        saved = json.loads(stamp.read_text())
        if saved.get("key") == key:
            return saved["documents"], saved["seconds"], 0.0
    if directory.exists():
        shutil.rmtree(directory)
    per_chunk = calibrate(shuffled_texts(corpus, 80_000, seed + 1), embedder, settings)
    docs_dir = directory / "docs"
    paths = write_texts(shuffled_texts(corpus, chunks * per_chunk, seed), docs_dir)
    reset_peak_rss()
    t = time.perf_counter()
    Index.build(
        [docs_dir],
        directory / "index",
        settings=settings.with_(index_dir=directory / "index"),
        embedder=SyntheticVectors(embedder, seed),
    ).close()
    seconds = time.perf_counter() - t
    peak = peak_rss_mb()
    stamp.write_text(json.dumps({"key": key, "documents": len(paths), "seconds": seconds}))
    return len(paths), seconds, peak


def stored_vectors(index_dir: Path) -> np.ndarray:
    """The index's vectors in chunk-id order, read from its SQLite store."""
    conn = sqlite3.connect(database_of(index_dir))
    try:
        rows = conn.execute("SELECT vector FROM vectors ORDER BY chunk_id").fetchall()
    finally:
        conn.close()
    return np.frombuffer(b"".join(r[0] for r in rows), dtype=np.float32).reshape(len(rows), -1)


def faiss_file(index_dir: Path) -> Path:
    """The index's current FAISS file."""
    files = sorted(index_dir.glob("vectors-*.faiss"), key=lambda p: p.stat().st_mtime)
    if not files:
        raise BadInput(f"no FAISS file in {index_dir}")
    return files[-1]


def raw_flat(vectors: np.ndarray):
    """A plain faiss IndexFlatIP holding these vectors (ids are their positions)."""
    import faiss

    raw = faiss.IndexFlatIP(vectors.shape[1])
    raw.add(np.ascontiguousarray(vectors, dtype=np.float32))
    return raw


def asked_depth(index: Index, query: str, k: int) -> int:
    """The number of results `Index.search` asks of BM25 for k (spied on one search)."""
    asked: list[int] = []
    store = index.store
    real = store.bm25

    def spy(q, limit, sources=None):
        asked.append(limit)
        return real(q, limit, sources)

    store.bm25 = spy
    try:
        index.search(query, k=k, mode="bm25")
    finally:
        del store.bm25
    return asked[0] if asked else search_depth(k)


def bench_search(
    workdir: Path,
    size: int,
    *,
    queries: int = 200,
    repeats: int = 3,
    k: int = 5,
    corpus: Corpus | None = None,
    embedder=None,
    settings: Settings | None = None,
    profile: bool = False,
    seed: int = 0,
    log=log,
) -> SearchResult:
    """`Index.search(mode="hybrid")` latency versus raw FAISS + raw FTS5 on the same data."""
    setup = search_setup("search", workdir, size, queries, repeats, corpus, embedder, settings)
    directory, corpus, settings = setup.directory, setup.corpus, setup.settings
    embedder = setup.embedder
    index_dir = settings.index_dir
    log(f"search bench at {size:,} chunks: building the index with qa (random vectors) ...")
    documents, build_s, build_peak = build_search_index(
        directory, size, corpus, embedder, settings, seed
    )
    log(f"  built in {build_s:.0f}s")

    qs = setup.questions
    full = Index.open(index_dir, settings=settings, embedder=embedder)
    full.search(qs[0], k=k)  # loads the FAISS file
    resident = rss_mb()
    qvecs = raw_encode(embedder, qs).astype(np.float32)
    served = Index.open(index_dir, settings=settings, embedder=Served(embedder, qs, qvecs))
    n_chunks = len(served)
    depth = asked_depth(served, qs[0], k)
    if depth != search_depth(k):
        log(f"  note: Index.search asks for {depth} results, search_depth() for {search_depth(k)}")
    raw = raw_flat(stored_vectors(index_dir))
    layer = VectorIndex.load(faiss_file(index_dir), settings.faiss_factory)
    store = Store(database_of(index_dir))
    layer.fetch = store.vectors_for
    _, truth = raw.search(qvecs, 10)
    ids = np.sort(store.vector_ids())  # the raw index's positions, in chunk-id order
    recall = float(
        np.mean(
            [
                len({i for i, _ in layer.search(q, 10)} & set(ids[t].tolist())) / 10
                for q, t in zip(qvecs, truth, strict=True)
            ]
        )
    )
    log(f"  qa's FAISS index is {layer.spec}: recall@10 against exact search {recall:.3f}")
    conn = sqlite3.connect(database_of(index_dir), check_same_thread=False)
    matches = [fts_query(q) for q in qs]

    def t_fts(i):
        if matches[i]:
            conn.execute(FTS_SQL, (matches[i], depth)).fetchall()

    def t_hybrid(i):
        served.search(qs[i], k=k, mode="hybrid")

    ops = {
        "embed": lambda i: raw_encode(embedder, [qs[i]]),
        "faiss": lambda i: raw.search(qvecs[i : i + 1], depth),
        "fts": t_fts,
        "vector": lambda i: layer.search(qvecs[i], depth),
        "bm25": lambda i: store.bm25(qs[i], depth),
        "hybrid": t_hybrid,
        "full": lambda i: full.search(qs[i], k=k, mode="hybrid"),
    }
    med = time_rounds(ops, len(qs), repeats, log=log)
    if profile:
        log(f"profile of {len(qs)} hybrid searches (query vectors from memory):")
        log(cprofile(lambda: [t_hybrid(i) for i in range(len(qs))]))
    served.close()
    full.close()
    store.close()
    conn.close()
    return SearchResult(
        corpus=corpus.origin,
        documents=documents,
        chunks=n_chunks,
        queries=len(qs),
        repeats=repeats,
        k=k,
        depth=depth,
        factory=settings.faiss_factory,
        build_seconds=build_s,
        embed_ms=Latency.of(med["embed"]),
        faiss_ms=Latency.of(med["faiss"]),
        fts_ms=Latency.of(med["fts"]),
        vector_ms=Latency.of(med["vector"]),
        bm25_ms=Latency.of(med["bm25"]),
        raw_ms=Latency.of(med["faiss"] + med["fts"]),
        layers_ms=Latency.of(med["vector"] + med["bm25"]),
        hybrid_ms=Latency.of(med["hybrid"]),
        raw_full_ms=Latency.of(med["embed"] + med["faiss"] + med["fts"]),
        hybrid_full_ms=Latency.of(med["full"]),
        footprint=footprint(index_dir, n_chunks, build_peak),
        rss_mb=resident,
        spec=layer.spec,
        ann_recall_at_10=recall,
    )
