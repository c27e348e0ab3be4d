"""The scale point's synthetic vectors, its search-breadth sweep, both BM25 engines and the
vectors-only point, at tiny sizes (no timing assertions: the machine is shared)."""

from __future__ import annotations

import json
import math

import numpy as np

from qa.bench import cli as bench_cli
from qa.bench.data import synthetic_corpus
from qa.bench.report import format_search
from qa.bench.scale import EmbeddedVectors, bench_scale, build_vectors, exact_top
from qa.config import Settings


def unit(x: np.ndarray) -> np.ndarray:
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def real_like(n: int, d: int = 32, seed: int = 0) -> np.ndarray:
    """Stand-in 'real' embeddings: a few topics in a low-dimensional subspace."""
    rng = np.random.default_rng(seed)
    basis = rng.standard_normal((6, d))
    topics = rng.standard_normal((12, 6))
    x = topics[rng.integers(0, 12, n)] + 0.4 * rng.standard_normal((n, 6))
    return unit(x @ basis + 0.05 * rng.standard_normal((n, d))).astype(np.float32)


def test_embedded_vectors_are_seeded_unit_and_near_their_sentences():
    base = real_like(500)
    data = EmbeddedVectors(base, base[:7], seed=3)
    a, b = data.block(0, 256), data.block(0, 256)
    assert np.array_equal(a, b) and not np.array_equal(a, data.block(256, 256))
    np.testing.assert_allclose(np.linalg.norm(a, axis=1), 1, rtol=1e-5)
    assert 0.05 <= data.neighbour_cosine <= 0.99
    # each vector's best real sentence is about as close as a real nearest neighbour
    best = (a @ base.T).max(axis=1)
    assert abs(float(np.median(best)) - data.neighbour_cosine) < 0.15
    assert data.queries(5).shape == (5, 32)


def test_exact_top_block_by_block_equals_the_flat_index():
    base = real_like(300)
    data = EmbeddedVectors(base, base[:5])
    layer, raw, _, _ = build_vectors(3000, data, "Flat", block=512)
    q = data.queries(5)
    assert np.array_equal(
        exact_top(raw, data, 3000, q, 10), exact_top(None, data, 3000, q, 10, 512)
    )


def _json(record) -> dict:
    return json.loads(json.dumps(bench_cli._finite(record.to_dict()), allow_nan=False))


def test_scale_point_sweeps_breadth_and_times_both_bm25_engines(tmp_path, fake_embedder):
    c = synthetic_corpus(n_articles=4, paragraphs=10)
    s = Settings.load(faiss_factory="IVF8,Flat", bm25="memory")
    r = bench_scale(
        tmp_path, 2000, queries=4, repeats=1, corpus=c, embedder=fake_embedder, settings=s,
        log=lambda m: None,
    )  # fmt: skip
    assert r.spec == "IVF8,Flat" and r.bm25_engine == "memory" and r.recall_queries >= 4
    assert 0 <= r.ann_recall_at_10 <= 1
    assert [p["nprobe"] for p in r.sweep] == sorted({p["nprobe"] for p in r.sweep})
    assert all(0 <= p["ann_recall_at_10"] <= 1 for p in r.sweep)
    assert r.sweep[-1]["ann_recall_at_10"] == 1.0  # all 8 lists probed: exact
    assert r.bm25_memory_agreement == 1.0  # the same ids as FTS5
    assert r.hybrid_ms == r.hybrid_memory_ms and math.isfinite(r.hybrid_fts5_ms.p50)
    assert math.isfinite(r.bm25_memory_seconds)
    d = _json(r)
    assert d["hybrid_p50_ms"] == r.hybrid_memory_ms.p50 and "real sentence" in d["synthetic"]
    assert set(r.cpu_p50_ms) >= {"vector", "bm25", "bm25_memory", "hybrid"}
    text = format_search([r])
    assert "ANN recall@10" in text and "in-memory engine" in text and "IVF8,Flat" in text


def test_vectors_only_point(tmp_path, fake_embedder):
    c = synthetic_corpus(n_articles=2, paragraphs=5)
    s = Settings.load(faiss_factory="IVF8,SQ8")
    r = bench_scale(
        tmp_path, 1500, queries=3, repeats=1, corpus=c, embedder=fake_embedder, settings=s,
        fts=False, log=lambda m: None,
    )  # fmt: skip
    assert r.spec == "IVF8,SQ8" and r.faiss_bytes > 0 and math.isnan(r.bm25_ms.p50)
    assert math.isnan(r.hybrid_p50_ms) and math.isfinite(r.vector_p50_ms)
    assert not list(tmp_path.glob("scale-1500/fts.sqlite*"))
    d = _json(r)
    assert d["hybrid_p50_ms"] is None and d["ann_recall_at_10"] is not None
