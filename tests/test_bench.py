"""Smoke tests of `qa.bench` at tiny sizes: records well-formed, figures positive.
No timing assertions: the machine is shared and the figures are noise at this size."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from qa import bench
from qa.benchdata import (
    SyntheticVectors,
    article_texts,
    chars_per_chunk,
    load_corpus,
    shuffled_texts,
    synthetic_corpus,
    write_texts,
)
from qa.errors import BadInput


@pytest.fixture(scope="module")
def corpus():
    return load_corpus()


# ----------------------------------------------------------------------------- data (fast)


def test_synthetic_corpus_is_seeded_and_has_sentences():
    a, b = (
        synthetic_corpus(n_articles=3, paragraphs=4),
        synthetic_corpus(n_articles=3, paragraphs=4),
    )
    assert a == b
    assert a.origin == "synthetic"
    assert len(a.paragraphs) == 12
    assert len(a.sentences()) >= 12
    assert a.questions


def test_article_texts_reach_the_budget_and_cycle(fake_embedder):
    c = synthetic_corpus(n_articles=2, paragraphs=3)
    size = sum(len(p) for p in c.paragraphs)
    texts = article_texts(c, size * 2.5)  # more than the corpus holds: it is cycled
    assert sum(len(t) for t in texts) >= size * 2.5
    assert len(texts) > 2
    split = article_texts(c, size, docs=4)
    assert len(split) == 4
    assert all(t.strip() for t in split)


def test_shuffled_texts_use_corpus_sentences(fake_embedder):
    c = synthetic_corpus(n_articles=2, paragraphs=3)
    texts = shuffled_texts(c, 5000, seed=1, paragraphs_per_doc=3)
    assert sum(len(t) for t in texts) >= 5000
    assert texts == shuffled_texts(c, 5000, seed=1, paragraphs_per_doc=3)
    first = texts[0].split("\n\n")[0]
    assert any(first.startswith(s) for s in c.sentences())
    per_chunk = chars_per_chunk(texts[:2], fake_embedder.token_spans, 48, 8, 64)
    assert per_chunk > 0


def test_write_texts(tmp_path):
    paths = write_texts(["one\n", "two\n"], tmp_path / "d")
    assert [p.read_text() for p in paths] == ["one\n", "two\n"]


def test_synthetic_vectors_are_unit_and_keep_the_identity(fake_embedder):
    sv = SyntheticVectors(fake_embedder, seed=3)
    v = sv.embed(["a", "b", "c"])
    assert v.shape == (3, fake_embedder.dimension) and v.dtype == np.float32
    assert np.allclose(np.linalg.norm(v, axis=1), 1.0, atol=1e-5)
    assert (sv.name, sv.max_tokens) == (fake_embedder.name, fake_embedder.max_tokens)
    assert sv.token_spans(["a b"]) == fake_embedder.token_spans(["a b"])


def test_latency_and_sizes():
    lat = bench.Latency.of([1.0, 2.0, 3.0, 100.0])
    assert lat.p50 == 2.5 and lat.p95 > lat.p50
    assert bench._sizes("10000,100_000") == [10000, 100000]
    with pytest.raises(BadInput):
        bench._sizes("10k")
    with pytest.raises(BadInput):
        bench._sizes("0")


# ----------------------------------------------------------------------------- real model


def _positive(x: float) -> bool:
    return math.isfinite(x) and x > 0


@pytest.mark.slow
def test_bench_index_tiny(tmp_path, corpus, real_embedder):
    r = bench.bench_index(
        tmp_path, chunks=12, repeats=2, corpus=corpus, embedder=real_embedder, log=lambda m: None
    )
    assert r.chunks > 0 and r.documents > 0
    assert len(r.raw_seconds) == len(r.pipeline_seconds) == 2
    for x in (r.raw_chunks_per_s, r.pipeline_chunks_per_s, r.ratio, r.embed_seconds):
        assert _positive(x)
    assert r.tokenize_seconds >= 0 and r.other_seconds >= 0
    assert r.footprint.sqlite_bytes > 0 and r.footprint.faiss_bytes > 0
    assert _positive(r.footprint.bytes_per_chunk) and _positive(r.footprint.peak_rss_mb)
    d = json.loads(json.dumps(r.to_dict()))
    assert d["kind"] == "index" and d["ratio"] == r.ratio and d["passed"] in (True, False)
    text = bench.format_index(r)
    assert "pipeline / raw" in text and str(r.chunks) in text


@pytest.mark.slow
def test_bench_search_tiny(tmp_path, corpus, real_embedder):
    r = bench.bench_search(
        tmp_path,
        300,
        queries=6,
        repeats=2,
        corpus=corpus,
        embedder=real_embedder,
        log=lambda m: None,
    )
    assert 200 < r.chunks < 450  # the size is calibrated, not exact
    assert r.queries == 6 and r.depth >= r.k
    for lat in (r.faiss_ms, r.fts_ms, r.raw_ms, r.hybrid_ms, r.embed_ms, r.hybrid_full_ms):
        assert _positive(lat.p50) and lat.p95 >= lat.p50
    for x in (r.ratio_p50, r.ratio_p95, r.ratio_full_p50, r.ratio_full_p95):
        assert _positive(x)
    assert r.raw_full_ms.p50 >= r.raw_ms.p50
    assert _positive(r.footprint.bytes_per_chunk) and _positive(r.rss_mb)
    d = json.loads(json.dumps(r.to_dict()))
    assert d["kind"] == "search" and d["hybrid_ms"]["p50"] == r.hybrid_ms.p50
    # the index is reused when the same size is asked again in the same workdir
    again = bench.build_search_index(
        tmp_path / "search-300",
        300,
        corpus,
        real_embedder,
        bench._settings(None, tmp_path / "search-300" / "index"),
    )
    assert again[0] == r.documents and again[2] == 0.0
    assert "ratio hybrid / raw" in bench.format_search([r])


@pytest.mark.slow
def test_main_json(tmp_path, capsys):
    code = bench.main(
        [
            "search",
            "--sizes",
            "150",
            "--queries",
            "3",
            "--repeats",
            "1",
            "--json",
            "--workdir",
            str(tmp_path / "w"),
            "--out",
            str(tmp_path / "out.json"),
        ]
    )
    assert code == 0
    records = json.loads(capsys.readouterr().out)
    assert [r["kind"] for r in records] == ["search"]
    assert json.loads((tmp_path / "out.json").read_text()) == records


def test_main_rejects_bad_sizes(tmp_path, capsys):
    code = bench.main(["search", "--sizes", "x", "--workdir", str(tmp_path)])
    assert code == 2
    assert "--sizes" in capsys.readouterr().err
