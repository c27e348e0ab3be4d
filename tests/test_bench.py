"""Smoke tests of `qa.bench` at tiny sizes: records well-formed, figures and ratios positive
and finite. No timing assertions: the machine is shared and the figures are noise at this
size."""

from __future__ import annotations

import json
import math
import sqlite3

import numpy as np
import pytest

from qa.bench import cli as bench_cli
from qa.bench.ask import AskResult, Split, bench_ask, format_ask
from qa.bench.common import Footprint, Latency, bench_settings, search_depth
from qa.bench.data import (
    SyntheticVectors,
    article_texts,
    chars_per_chunk,
    chunk_chars,
    load_corpus,
    sentence_chunks,
    shuffled_texts,
    synthetic_corpus,
    write_texts,
)
from qa.bench.index import IndexResult, bench_index, format_index
from qa.bench.report import format_search, format_summary
from qa.bench.scale import ScaleResult, bench_scale, build_fts
from qa.bench.search import (
    SearchResult,
    asked_depth,
    bench_search,
    build_search_index,
)
from qa.errors import BadInput
from qa.index.core import Index
from qa.index.store import Store


@pytest.fixture(scope="module")
def corpus():
    return load_corpus()


def _positive(x: float) -> bool:
    return math.isfinite(x) and x > 0


def _json(record) -> dict:
    """The record as `qa bench --json` writes it (strict JSON: no NaN)."""
    return json.loads(json.dumps(bench_cli._finite(record.to_dict()), allow_nan=False))


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


def test_article_texts_reach_the_budget_and_cycle():
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
    length = chunk_chars(texts[:2], fake_embedder.token_spans, 48, 8, 64)
    assert per_chunk > 0 and 0.5 * per_chunk < length < 2 * per_chunk


def test_sentence_chunks_are_seeded_and_long_enough():
    c = synthetic_corpus(n_articles=2, paragraphs=3)
    chunks = list(sentence_chunks(c, 20, 300, seed=2))
    assert len(chunks) == 20 and all(len(t) >= 300 for t in chunks)
    assert chunks == list(sentence_chunks(c, 20, 300, seed=2))
    assert all(any(t.startswith(s) for s in c.sentences()) for t in chunks)


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
    lat = Latency.of([1.0, 2.0, 3.0, 100.0])
    assert lat.p50 == 2.5 and lat.p95 > lat.p50
    assert bench_cli.parse_sizes("10000,100_000,1000000") == [10000, 100000, 1000000]
    assert bench_cli.parse_sizes(None) == [10_000, 100_000]
    with pytest.raises(BadInput):
        bench_cli.parse_sizes("10k")
    with pytest.raises(BadInput):
        bench_cli.parse_sizes("0")


# ----------------------------------------------------------------------------- logic (fast)


def test_bench_depth_is_what_index_search_asks(docs, settings, fake_embedder):
    index = Index.build([docs], settings.index_dir, settings=settings, embedder=fake_embedder)
    try:
        for k in (5, 30):
            assert asked_depth(index, "Which river is the longest?", k) == search_depth(k)
        assert index.search("longest river", k=2)  # the spy is gone
    finally:
        index.close()


def test_build_fts_uses_qa_schema_and_is_reused(tmp_path):
    c = synthetic_corpus(n_articles=2, paragraphs=3)
    db = tmp_path / "fts.sqlite"
    seconds, chars = build_fts(db, 300, c, 200.0, log=lambda m: None)
    assert seconds > 0 and chars >= 200
    conn = sqlite3.connect(db)
    assert conn.execute("SELECT count(*) FROM chunks").fetchone()[0] == 300
    assert conn.execute("SELECT count(*) FROM documents").fetchone()[0] == 5  # 64 per document
    conn.close()
    store = Store(db)
    hits = store.bm25("river city empire", 10)
    store.close()
    assert 0 < len(hits) <= 10
    assert build_fts(db, 300, c, 200.0)[0] == 0.0  # reused


def test_bench_scale_tiny(tmp_path, fake_embedder):
    c = synthetic_corpus(n_articles=4, paragraphs=10)
    r = bench_scale(
        tmp_path, 700, queries=4, repeats=2, corpus=c, embedder=fake_embedder, log=lambda m: None
    )
    assert (r.chunks, r.queries, r.depth, r.dimension) == (700, 4, search_depth(5), 64)
    for x in (r.faiss_ms, r.fts_ms, r.vector_ms, r.bm25_ms, r.raw_ms, r.layers_ms):
        assert _positive(x.p50) and x.p95 >= x.p50
    for x in (r.vector_ratio_p50, r.bm25_ratio_p95, r.layers_ratio_p50, r.layers_ratio_p95):
        assert _positive(x)
    assert r.sqlite_bytes > 0 and r.vector_bytes == 700 * 64 * 4 and _positive(r.peak_rss_mb)
    d = _json(r)
    assert d["kind"] == "scale" and d["layers_ratio_p50"] == r.layers_ratio_p50
    text = format_search([r])
    assert "qa VectorIndex.search" in text and "layers" in text and "700" in text


def _records():
    lat = Latency(2.0, 3.0, 2.2)
    foot = Footprint(5000, 1500, 1, 300.0)
    index = IndexResult("squad", 2, 10, 2, 64, 256, (2.0, 2.2), (2.1, 2.3), 2.0, 0.1, 0.1, foot)
    search = SearchResult(
        "squad", 3, 150, 5, 2, 5, 80, "Flat", 1.0,
        *[lat] * 10, foot, 400.0,
    )  # fmt: skip
    scale = ScaleResult(
        "squad", 1_000_000, 5, 2, 5, 80, "Flat", 384, 1100.0, 5.0, 50.0,
        *[lat] * 6, 10**9, 384 * 4 * 10**6, 3000.0, 3100.0,
    )  # fmt: skip
    ask = AskResult(
        "m.gguf", 2, 2048, "q?", "f?", 200, 3, 16, 2, (1.0, 1.2), (0.9, 1.0), (70.0, 72.0),
        (69.0, float("nan")), 0.1, 0.5, 1.0, 1.4, Split(0.03, 0.01, 0.1, 0.4, 0.01, 0.5),
        "yes", 600.0, 700.0,
    )  # fmt: skip
    return [index, search, scale, ask]


def test_records_and_summary_are_well_formed():
    records = _records()
    for r in records:
        d = _json(r)
        assert d["kind"] in ("index", "search", "scale", "ask") and d["passed"] in (True, False)
    index, search, scale, ask = records
    for x in (index.ratio, search.ratio_p50, search.ratio_full_p95, scale.layers_ratio_p95):
        assert _positive(x)
    assert ask.raw_rate == 69.0  # a failed measurement does not count in the median
    assert _positive(ask.rate_ratio) and _positive(ask.first_token_ratio)
    assert _json(ask)["raw_tokens_per_s"] == [69.0, None]  # NaN is written as null
    text = format_summary(records)
    for label in ("indexing, chunks/s", "bytes per indexed chunk", "hybrid search p50/p95 ms",
                  "search layers p50/p95 ms, 1,000,000 chunks", "time to first token",
                  "generation tokens/s", "RSS:"):  # fmt: skip
        assert label in text
    table = format_search([search, scale])
    assert "150" in table and "1,000,000" in table and "—" in table
    assert "Answering" in format_ask(ask) and "pipeline / raw" in format_index(index)


# ----------------------------------------------------------------------------- real model


@pytest.mark.slow
def test_bench_index_tiny(tmp_path, corpus, real_embedder):
    r = bench_index(
        tmp_path, chunks=12, repeats=2, corpus=corpus, embedder=real_embedder, log=lambda m: None
    )
    assert r.chunks > 0 and r.documents > 0
    assert len(r.raw_seconds) == len(r.pipeline_seconds) == 2
    for x in (r.raw_chunks_per_s, r.pipeline_chunks_per_s, r.ratio, r.embed_seconds):
        assert _positive(x)
    assert r.tokenize_seconds >= 0 and r.other_seconds >= 0
    assert r.footprint.sqlite_bytes > 0 and r.footprint.faiss_bytes > 0
    assert _positive(r.footprint.bytes_per_chunk) and _positive(r.footprint.peak_rss_mb)
    d = _json(r)
    assert d["kind"] == "index" and d["ratio"] == r.ratio and d["passed"] in (True, False)
    text = format_index(r)
    assert "pipeline / raw" in text and str(r.chunks) in text


@pytest.mark.slow
def test_bench_search_tiny(tmp_path, corpus, real_embedder):
    r = bench_search(
        tmp_path,
        300,
        queries=6,
        repeats=2,
        corpus=corpus,
        embedder=real_embedder,
        log=lambda m: None,
    )
    assert 200 < r.chunks < 450  # the size is calibrated, not exact
    assert r.queries == 6 and r.depth == search_depth(r.k)
    for lat in (r.faiss_ms, r.fts_ms, r.raw_ms, r.hybrid_ms, r.embed_ms, r.hybrid_full_ms):
        assert _positive(lat.p50) and lat.p95 >= lat.p50
    for lat in (r.vector_ms, r.bm25_ms, r.layers_ms):
        assert _positive(lat.p50) and lat.p95 >= lat.p50
    for x in (r.ratio_p50, r.ratio_p95, r.ratio_full_p50, r.ratio_full_p95):
        assert _positive(x)
    for x in (r.vector_ratio_p50, r.bm25_ratio_p50, r.layers_ratio_p95):
        assert _positive(x)
    assert r.raw_full_ms.p50 >= r.raw_ms.p50
    assert _positive(r.footprint.bytes_per_chunk) and _positive(r.rss_mb)
    d = _json(r)
    assert d["kind"] == "search" and d["hybrid_ms"]["p50"] == r.hybrid_ms.p50
    # the index is reused when the same size is asked again in the same workdir
    again = build_search_index(
        tmp_path / "search-300",
        300,
        corpus,
        real_embedder,
        bench_settings(None, tmp_path / "search-300" / "index"),
    )
    assert again[0] == r.documents and again[2] == 0.0
    assert "ratio hybrid / raw" in format_search([r])


@pytest.mark.slow
def test_bench_ask_tiny(tmp_path):
    r = bench_ask(tmp_path, repeats=1, max_tokens=12, log=lambda m: None)
    assert r.kind == "ask" and r.max_tokens == 12 and r.prompt_tokens > 0 and r.sources > 0
    assert (tmp_path / "ask-index" / "manifest.json").is_file()  # the sample corpus, indexed
    for x in (r.qa_first_token, r.raw_first_token, r.first_token_ratio, r.split.total):
        assert _positive(x)
    assert _positive(r.rss_mb) and r.peak_rss_mb >= r.rss_mb
    d = _json(r)
    assert d["split"]["total"] == r.split.total and d["passed"] in (True, False)
    # extractive answers: the reader's time is part of the total, and reported
    e = r.extractive
    assert 0 < e["read"] < e["retrieve"] <= e["total"] and d["extractive"]["read"] == e["read"]
    assert "of which the reader" in format_ask(r)
    # and per reader backend, the default's figures being the ones above
    assert set(r.extractive_by_reader) == {"onnx", "torch"} and r.reader_backend == "onnx"
    assert r.extractive_by_reader["onnx"] == e
    assert all(0 < x["read"] <= x["total"] for x in r.extractive_by_reader.values())
    assert "reader on torch" in format_ask(r)


@pytest.mark.slow
def test_main_all_json(tmp_path, capsys):
    """`qa bench all` at tiny sizes, one size through the pipeline and one layer-level."""
    out = tmp_path / "out.json"
    args = ["all", "--chunks", "10", "--sizes", "150,300", "--pipeline-max", "200"]
    args += ["--queries", "3", "--repeats", "1", "--max-tokens", "8", "--json"]
    code = bench_cli.main([*args, "--workdir", str(tmp_path / "w"), "--out", str(out)])
    assert code == 0
    records = json.loads(capsys.readouterr().out)
    assert [r["kind"] for r in records] == ["start", "index", "search", "scale", "ask"]
    start, index, search, scale, ask = records
    # which cold commands import torch: the torch index's search and the torch reader do
    imported = {b["backend"]: b["torch_imported"] for b in start["backends"]}
    assert imported["torch"]["search"] and imported["onnx"]["ask"]
    assert not imported["onnx"]["search"] and not imported["onnx"]["ask-onnx-reader"]
    assert search["chunks"] < 250 and scale["chunks"] == 300 and ask["max_tokens"] == 8
    assert index["footprint"]["bytes_per_chunk"] > 0 and scale["sqlite_bytes"] > 0
    for x in (index["ratio"], search["ratio_p50"], scale["layers_ratio_p50"]):
        assert _positive(x)
    assert json.loads(out.read_text()) == records


def test_main_rejects_bad_sizes(tmp_path, capsys):
    code = bench_cli.main(["search", "--sizes", "x", "--workdir", str(tmp_path)])
    assert code == 2
    assert "--sizes" in capsys.readouterr().err


def test_qa_bench_help(capsys):
    from qa.cli.main import main

    with pytest.raises(SystemExit) as exc:
        main(["bench", "--help"])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    assert "index,search,ask,start,corpus,ocr,ray,all" in out and "--backends" in out
    assert "1000000" in out and "--pipeline-max" in out
