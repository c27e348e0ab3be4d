"""Terminal tables: search latency per size (pipeline-built indexes and layer-level scale
points side by side) and the one-table summary of `qa bench all`."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from qa.bench.ask import AskResult
from qa.bench.common import lat, mark, mib, pair
from qa.bench.index import IndexResult
from qa.bench.scale import ScaleResult
from qa.bench.search import SearchResult

Result = IndexResult | SearchResult | ScaleResult | AskResult

SCALE_NOTE = (
    "layers: sizes qa's pipeline cannot build here in reasonable time; qa's VectorIndex.search "
    "and Store.bm25 timed against raw FAISS and raw FTS5 on the same data: synthetic vectors "
    "shaped like real embeddings (real sentence embeddings plus noise of their covariance; "
    "the questions' real embeddings as queries), and chunk-sized texts of corpus sentences "
    "in an SQLite database with qa's schema. Their hybrid row is both layers, the fusion "
    "and reading k rows; the query embedding is not in it (see the pipeline columns)."
)


def _only(kind: type, get: Callable) -> Callable:
    """A cell getter that gives None (shown as —) for results of another kind."""
    return lambda r: get(r) if isinstance(r, kind) else None


def format_search(results: Sequence[SearchResult | ScaleResult]) -> str:
    if not results:
        return ""
    r0 = results[0]
    width = 22
    lines = [
        f"Search latency, ms: p50 / p95 over questions (each the median of {r0.repeats} runs); "
        f"k={r0.k}, {r0.depth} results asked of each retriever"
    ]

    def row(label: str, get: Callable, fmt: Callable = str) -> None:
        cells = []
        for r in results:
            value = get(r)
            cells.append(f"{'—' if value is None else fmt(value):>{width}}")
        lines.append(f"  {label:40}{''.join(cells)}")

    pipe = lambda get: _only(SearchResult, get)  # noqa: E731
    row("chunks", lambda r: f"{r.chunks:,}")
    row("measured", lambda r: "qa index" if isinstance(r, SearchResult) else "layers (see below)")
    row("questions", lambda r: r.queries)
    row("raw FAISS IndexFlatIP search", lambda r: lat(r.faiss_ms))
    row("raw FTS5 MATCH + bm25 ORDER BY LIMIT", lambda r: lat(r.fts_ms))
    row("raw FAISS + FTS5", lambda r: lat(r.raw_ms))
    scale = lambda get: _only(ScaleResult, get)  # noqa: E731
    row("FAISS structure (QA_FAISS_FACTORY)", lambda r: f"{r.spec or r.factory}")
    row("ANN recall@10 vs exact (goal >= .98)", _recall, lambda x: f"{x:.3f}")
    row("qa hybrid search (query vector given)", lambda r: lat(r.hybrid_ms))
    row("  BM25 engine (QA_BM25)", scale(lambda r: r.bm25_engine))
    row("  with FTS5 / in-memory BM25, p50", scale(_hybrid_engines))
    row("  ratio hybrid / raw", pipe(lambda r: pair(r.ratio_p50, r.ratio_p95)))
    row(f"  target <= {r0.target}x", pipe(lambda r: mark(r.passed)))
    row("qa VectorIndex.search", lambda r: lat(r.vector_ms))
    row("  ratio / raw FAISS", lambda r: pair(r.vector_ratio_p50, r.vector_ratio_p95))
    row("qa Store.bm25", lambda r: lat(r.bm25_ms))
    row("  ratio / raw FTS5", lambda r: pair(r.bm25_ratio_p50, r.bm25_ratio_p95))
    row("qa Store.bm25, in-memory engine", scale(lambda r: lat(r.bm25_memory_ms)))
    row("  same top ids as FTS5", scale(lambda r: r.bm25_memory_agreement), _share)
    row("  built in, s / +MiB", scale(_memory_build))
    row("CPU p50 of the search thread: vector", scale(lambda r: _cpu(r, "vector")))
    row("  hybrid", scale(lambda r: _cpu(r, "hybrid")))
    row("goals: recall, vector 20, hybrid 100", scale(_goals))
    row("qa layers (vector + BM25)", lambda r: lat(r.layers_ms))
    row("  ratio layers / raw", lambda r: pair(r.layers_ratio_p50, r.layers_ratio_p95))
    row("raw query embedding (encode 1)", pipe(lambda r: lat(r.embed_ms)))
    row("raw embed + FAISS + FTS5", pipe(lambda r: lat(r.raw_full_ms)))
    row("qa hybrid search (embeds the query)", pipe(lambda r: lat(r.hybrid_full_ms)))
    row("  ratio with embedding", pipe(lambda r: pair(r.ratio_full_p50, r.ratio_full_p95)))
    row("build, s (random vectors)", _build_seconds, lambda s: f"{s:.0f}")
    row(
        "bytes / chunk (SQLite + FAISS)",
        pipe(lambda r: r.footprint.bytes_per_chunk),
        lambda b: f"{b:,.0f}",
    )
    row("SQLite / vectors, MiB", _sizes)
    row("peak RSS while building, MiB", _peak_build, lambda m: f"{m:.0f}")
    row("RSS with the index open, MiB", lambda r: r.rss_mb, lambda m: f"{m:.0f}")
    if any(isinstance(r, ScaleResult) for r in results):
        scale = next(r for r in results if isinstance(r, ScaleResult))
        lines.append(
            f"  {SCALE_NOTE} Chunk texts average {scale.chars_per_chunk:.0f} characters; the "
            f"SQLite size there holds only them and their FTS5 index, the vectors' is in memory."
        )
    return "\n".join(lines)


def _recall(r) -> float | None:
    x = r.ann_recall_at_10
    return x if x == x else None  # NaN: not measured


def _share(x: float) -> str:
    return "—" if x != x else f"{x:.4f}"


def _hybrid_engines(r) -> str:
    if r.hybrid_fts5_ms is None or r.hybrid_memory_ms is None:
        return "—"
    return pair(r.hybrid_fts5_ms.p50, r.hybrid_memory_ms.p50, 1)


def _memory_build(r) -> str:
    if r.bm25_memory_seconds != r.bm25_memory_seconds:
        return "—"
    return f"{r.bm25_memory_seconds:.0f} / {r.bm25_memory_rss_mb:.0f}"


def _cpu(r, name: str) -> str:
    x = r.cpu_p50_ms.get(name)
    return "—" if x is None or x != x else f"{x:.1f}"


def _goals(r) -> str:
    return " ".join(mark(ok) for ok in r.goals.values())


def _build_seconds(r) -> float:
    return r.build_seconds if isinstance(r, SearchResult) else r.fts_seconds + r.vectors_seconds


def _sizes(r) -> str:
    if isinstance(r, SearchResult):
        return f"{mib(r.footprint.sqlite_bytes):.0f} / {mib(r.footprint.faiss_bytes):.0f}"
    return f"{mib(r.sqlite_bytes):.0f} / {mib(r.vector_bytes):.0f}"


def _peak_build(r) -> float:
    return r.footprint.peak_rss_mb if isinstance(r, SearchResult) else r.peak_rss_mb


# ----------------------------------------------------------------------------- summary


def format_summary(results: Sequence[Result]) -> str:
    """One table: each qa figure, the raw library's from the same run, their ratio."""
    rows: list[tuple[str, str, str, str, str]] = []
    memory: list[str] = []
    for r in results:
        if isinstance(r, IndexResult):
            rows.append(
                (
                    f"indexing, chunks/s ({r.chunks:,} chunks)",
                    f"{r.pipeline_chunks_per_s:.1f}",
                    f"{r.raw_chunks_per_s:.1f}",
                    f"{r.ratio:.2f}x",
                    f">= {r.target}x {mark(r.passed)}",
                )
            )
            f = r.footprint
            memory.append(f"indexing peak RSS {f.peak_rss_mb:.0f} MiB")
            rows.append(
                (
                    "bytes per indexed chunk",
                    f"{f.bytes_per_chunk:,.0f}",
                    "",
                    "",
                    f"SQLite {f.sqlite_bytes / f.chunks:,.0f} + FAISS {f.faiss_bytes / f.chunks:,.0f}",
                )
            )
        elif isinstance(r, SearchResult):
            rows.append(
                (
                    f"hybrid search p50/p95 ms, {r.chunks:,} chunks",
                    lat(r.hybrid_ms),
                    lat(r.raw_ms),
                    pair(r.ratio_p50, r.ratio_p95),
                    f"<= {r.target}x {mark(r.passed)}",
                )
            )
            memory.append(f"search at {r.chunks:,} chunks {r.rss_mb:.0f} MiB open")
        elif isinstance(r, ScaleResult):
            rows.append(
                (
                    f"search layers p50/p95 ms, {r.chunks:,} chunks",
                    lat(r.layers_ms),
                    lat(r.raw_ms),
                    pair(r.layers_ratio_p50, r.layers_ratio_p95),
                    f"<= {r.target}x {mark(r.passed)}",
                )
            )
            memory.append(f"{r.chunks:,}-chunk layers {r.rss_mb:.0f} MiB")
        elif isinstance(r, AskResult):
            rows.append(
                (
                    "time to first token, s (cold)",
                    f"{r.qa_first_token:.3f}",
                    f"{r.raw_first_token:.3f}",
                    f"{r.first_token_ratio:.2f}x",
                    "",
                )
            )
            rows.append(
                (
                    "generation tokens/s",
                    f"{r.qa_rate:.1f}",
                    f"{r.raw_rate:.1f}",
                    f"{r.rate_ratio:.2f}x",
                    f">= {r.target}x {mark(r.passed)}",
                )
            )
            memory.append(f"answering peak {r.peak_rss_mb:.0f} MiB")
    if not rows:
        return ""
    head = ("", "qa", "raw", "qa / raw", "target")
    widths = [max(len(row[i]) for row in [*rows, head]) for i in range(5)]
    lines = ["Summary (raw = the plain library, measured in the same run; medians of repeats)"]
    for row in [head, *rows]:
        cells = [row[0].ljust(widths[0])] + [
            c.rjust(w) for c, w in zip(row[1:4], widths[1:4], strict=True)
        ]
        lines.append("  " + "  ".join(cells) + "  " + row[4])
    if memory:
        lines.append("  RSS: " + "; ".join(memory))
    return "\n".join(lines)
