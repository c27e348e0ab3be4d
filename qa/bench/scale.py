"""Search scale points too large to build through qa's indexing pipeline here (`qa bench
search` sizes above `--pipeline-max`, default 200,000 chunks, e.g. 1,000,000).

Why not the pipeline: `Index.build` with random vectors still tokenizes every chunk with
the embedder's tokenizer to chunk it (about 1.8 ms a chunk on this 2-core machine, 18 s per
10k chunks in all), so 1M chunks would take about 50 minutes and 6.5 GB of disk. At these
sizes the bench measures qa's two retrieval layers instead, each on the same data as its raw
baseline:

- vectors: N seeded random unit vectors (synthetic, as the issue allows: an exact search
  costs the same whatever the vectors hold) added to qa's `VectorIndex` (qa/vectors.py:
  IndexIDMap2 around the configured factory, Flat by default) and to a plain faiss
  `IndexFlatIP`; `VectorIndex.search(q, depth)` versus `IndexFlatIP.search(q, depth)`, with
  the real model's embeddings of the questions as queries;
- BM25: an SQLite database with qa's schema (made by `qa.store.Store`) holding N chunk-sized
  texts of corpus sentences drawn at random (as long as qa's chunks of them), inserted in
  256-row transactions like qa's writes, so qa's FTS5 trigger indexes them; no document
  texts and no vectors are stored. `Store.bm25(q, depth)` versus the raw FTS5 query.

Left out, and measured at the pipeline sizes instead: what `Index.search` adds on top of the
layers (fusing two lists of `depth` results and reading k chunk rows, which does not grow
with N) and the query embedding.
"""

from __future__ import annotations

import json
import sqlite3
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from qa.bench.common import (
    FTS_SQL,
    SEARCH_TARGET,
    Latency,
    LayerRatios,
    log,
    peak_rss_mb,
    reset_peak_rss,
    rss_mb,
    search_depth,
    search_setup,
    time_rounds,
)
from qa.bench.data import Corpus, chunk_chars, sentence_chunks, shuffled_texts
from qa.config import Settings
from qa.errors import BadInput
from qa.index.store import Store, fts_query
from qa.index.vectors import VectorIndex

PIPELINE_MAX = 200_000  # larger sizes are measured at the layer level
SCALE_QUERIES = 50  # questions at a layer-level point (a 1M-chunk FTS5 query takes ~1 s)
CHUNKS_PER_DOC = 64
BATCH = 256  # rows per transaction, as qa commits


@dataclass(frozen=True)
class ScaleResult(LayerRatios):
    corpus: str
    chunks: int
    queries: int
    repeats: int
    k: int
    depth: int
    factory: str  # qa's FAISS index type (the raw side is always IndexFlatIP)
    dimension: int
    chars_per_chunk: float  # mean length of the synthetic chunk texts
    vectors_seconds: float  # generating and adding the vectors to both FAISS indexes
    fts_seconds: float  # inserting the texts (0 if a kept workdir's table was reused)
    faiss_ms: Latency  # raw faiss IndexFlatIP.search
    fts_ms: Latency  # raw FTS5 SQL
    vector_ms: Latency  # qa VectorIndex.search
    bm25_ms: Latency  # qa Store.bm25
    raw_ms: Latency  # faiss + fts per query
    layers_ms: Latency  # vector + bm25 per query
    sqlite_bytes: int  # the FTS5 database (chunk texts and their FTS5 index only)
    vector_bytes: int  # one copy of the vectors in memory
    rss_mb: float  # with both vector indexes in memory and the database open
    peak_rss_mb: float
    target: float = SEARCH_TARGET
    kind: str = field(default="scale", init=False)

    @property
    def passed(self) -> bool:
        return max(self.layers_ratio_p50, self.layers_ratio_p95) <= self.target

    def to_dict(self) -> dict:
        d = asdict(self)
        d.update(
            **self.layer_ratios(),
            passed=self.passed,
        )
        return d


def build_fts(
    path: Path, size: int, corpus: Corpus, chars: float, seed: int = 0, log=log
) -> tuple[float, float]:
    """An SQLite database with qa's schema holding `size` chunk texts (FTS5-indexed by qa's
    trigger); (seconds, mean characters per chunk). Reused if already built (0 seconds)."""
    stamp = path.with_name(path.name + ".json")
    key = {"chunks": size, "corpus": corpus.origin, "seed": seed, "chars": round(chars, 1)}
    if stamp.is_file() and path.is_file():
        saved = json.loads(stamp.read_text())
        if saved.get("key") == key:
            return 0.0, saved["chars_per_chunk"]
    for old in path.parent.glob(path.name + "*"):
        old.unlink()
    path.parent.mkdir(parents=True, exist_ok=True)
    Store(path).close()  # qa's schema: documents, chunks, chunks_fts and its triggers
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    t = time.perf_counter()
    total_chars = 0
    rows: list[tuple] = []

    def flush() -> None:
        conn.execute("BEGIN")
        conn.executemany(
            'INSERT INTO chunks(doc_id, ordinal, start, "end", text) VALUES (?, ?, ?, ?, ?)', rows
        )
        conn.execute("COMMIT")
        rows.clear()

    try:
        for i, text in enumerate(sentence_chunks(corpus, size, chars, seed)):
            doc, ordinal = divmod(i, CHUNKS_PER_DOC)
            if ordinal == 0:
                if rows:
                    flush()
                conn.execute(
                    "INSERT INTO documents(id, source, sha256, indexed_at, text) "
                    "VALUES (?, ?, '', 0, '')",
                    (doc + 1, f"doc-{doc:07d}.txt"),
                )
            rows.append((doc + 1, ordinal, 0, len(text), text))
            total_chars += len(text)
            if len(rows) >= BATCH:
                flush()
            if (i + 1) % 100_000 == 0:
                log(f"  {i + 1:,} chunks in {time.perf_counter() - t:.0f}s ...")
        if rows:
            flush()
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        conn.close()
    seconds = time.perf_counter() - t
    mean_chars = total_chars / max(1, size)
    stamp.write_text(json.dumps({"key": key, "chars_per_chunk": mean_chars}))
    return seconds, mean_chars


def build_vectors(size: int, dimension: int, factory: str, seed: int = 0, block: int = 65_536):
    """(qa VectorIndex, raw faiss IndexFlatIP) holding the same `size` random unit vectors."""
    import faiss

    rng = np.random.default_rng(seed)
    layer = VectorIndex(dimension, factory)
    raw = faiss.IndexFlatIP(dimension)
    if layer.needs_training():
        raise BadInput(f"scale points need a FAISS factory without training, not {factory!r}")
    for start in range(0, size, block):
        n = min(block, size - start)
        v = rng.standard_normal((n, dimension), dtype=np.float32)
        v /= np.linalg.norm(v, axis=1, keepdims=True)
        layer.add(np.arange(start, start + n, dtype=np.int64), v)
        raw.add(v)
    return layer, raw


def bench_scale(
    workdir: Path,
    size: int,
    *,
    queries: int = SCALE_QUERIES,
    repeats: int = 3,
    k: int = 5,
    corpus: Corpus | None = None,
    embedder=None,
    settings: Settings | None = None,
    seed: int = 0,
    log=log,
) -> ScaleResult:
    """qa's vector and BM25 layers versus raw FAISS and raw FTS5 at `size` chunks."""
    setup = search_setup("scale", workdir, size, queries, repeats, corpus, embedder, settings)
    directory, corpus, settings = setup.directory, setup.corpus, setup.settings
    embedder, qs = setup.embedder, setup.questions
    depth = search_depth(k)
    qvecs = np.asarray(embedder.embed(qs), dtype=np.float32)  # not timed
    reset_peak_rss()

    log(f"scale point at {size:,} chunks (layers only): FTS5 table of corpus sentences ...")
    chars = chunk_chars(
        shuffled_texts(corpus, 80_000, seed + 1)[:8],
        embedder.token_spans,
        settings.chunk_tokens,
        settings.chunk_overlap,
        embedder.max_tokens,
    )
    db = directory / "fts.sqlite"
    fts_s, mean_chars = build_fts(db, size, corpus, chars, seed, log)
    log(f"  built in {fts_s:.0f}s; {size:,} random unit vectors into two FAISS indexes ...")
    t = time.perf_counter()
    layer, raw = build_vectors(size, embedder.dimension, settings.faiss_factory, seed)
    vectors_s = time.perf_counter() - t
    log(f"  added in {vectors_s:.0f}s")
    store = Store(db)
    conn = sqlite3.connect(db, check_same_thread=False)
    resident = rss_mb()
    matches = [fts_query(q) for q in qs]

    def t_fts(i):
        if matches[i]:
            conn.execute(FTS_SQL, (matches[i], depth)).fetchall()

    ops = {
        "faiss": lambda i: raw.search(qvecs[i : i + 1], depth),
        "vector": lambda i: layer.search(qvecs[i], depth),
        "fts": t_fts,
        "bm25": lambda i: store.bm25(qs[i], depth),
    }
    try:
        med = time_rounds(ops, len(qs), repeats, warm=5, log=log)
    finally:
        store.close()
        conn.close()
    return ScaleResult(
        corpus=corpus.origin,
        chunks=size,
        queries=len(qs),
        repeats=repeats,
        k=k,
        depth=depth,
        factory=settings.faiss_factory,
        dimension=embedder.dimension,
        chars_per_chunk=mean_chars,
        vectors_seconds=vectors_s,
        fts_seconds=fts_s,
        faiss_ms=Latency.of(med["faiss"]),
        fts_ms=Latency.of(med["fts"]),
        vector_ms=Latency.of(med["vector"]),
        bm25_ms=Latency.of(med["bm25"]),
        raw_ms=Latency.of(med["faiss"] + med["fts"]),
        layers_ms=Latency.of(med["vector"] + med["bm25"]),
        sqlite_bytes=sum(
            p.stat().st_size for p in directory.glob("fts.sqlite*") if p.suffix != ".json"
        ),
        vector_bytes=size * embedder.dimension * 4,
        rss_mb=resident,
        peak_rss_mb=peak_rss_mb(),
    )
