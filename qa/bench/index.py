"""`qa bench index`: indexing throughput of the pipeline versus the raw encoder.

Index real prose with `Index.build` (load, chunk, embed, SQLite, FAISS), then encode exactly
the chunks it made with `SentenceTransformer.encode` (same model object, same batch size,
normalized). Runs alternate and repeat; the figure is the median over pairs of pipeline
chunks/s / raw chunks/s (target >= 0.85). Model loading is excluded.
"""

from __future__ import annotations

import shutil
import sqlite3
import statistics
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from qa.bench.common import (
    Footprint,
    bench_settings,
    calibrate,
    cprofile,
    footprint,
    log,
    mark,
    mib,
    peak_rss_mb,
    raw_encode,
    reset_peak_rss,
)
from qa.bench.data import Corpus, article_texts, load_corpus, write_texts
from qa.config import Settings
from qa.errors import BadInput
from qa.index.core import Index
from qa.index.manifest import database_of

INDEX_TARGET = 0.85  # pipeline chunks/s >= 0.85 x raw encode
DEFAULT_CHUNKS = 2000


@dataclass(frozen=True)
class IndexResult:
    corpus: str
    documents: int
    chunks: int
    repeats: int
    batch_size: int
    chunk_tokens: int
    raw_seconds: tuple[float, ...]
    pipeline_seconds: tuple[float, ...]
    # where the pipeline's time went (medians over runs, seconds)
    embed_seconds: float
    tokenize_seconds: float
    other_seconds: float
    footprint: Footprint  # its peak RSS: the process's peak during the timed runs
    target: float = INDEX_TARGET
    kind: str = field(default="index", init=False)

    @property
    def raw_chunks_per_s(self) -> float:
        return self.chunks / statistics.median(self.raw_seconds)

    @property
    def pipeline_chunks_per_s(self) -> float:
        return self.chunks / statistics.median(self.pipeline_seconds)

    @property
    def ratio(self) -> float:
        """Median over alternating pairs of pipeline throughput / raw throughput."""
        pairs = zip(self.raw_seconds, self.pipeline_seconds, strict=True)
        return statistics.median(raw / pipe for raw, pipe in pairs)

    @property
    def passed(self) -> bool:
        return self.ratio >= self.target

    def to_dict(self) -> dict:
        d = asdict(self)
        d["footprint"]["bytes_per_chunk"] = self.footprint.bytes_per_chunk
        d.update(
            raw_chunks_per_s=self.raw_chunks_per_s,
            pipeline_chunks_per_s=self.pipeline_chunks_per_s,
            ratio=self.ratio,
            passed=self.passed,
        )
        return d


class Timed:
    """Delegates to an embedder and adds up the time spent embedding and tokenizing."""

    def __init__(self, base) -> None:
        self.base = base
        self.name = base.name
        self.dimension = base.dimension
        self.max_tokens = base.max_tokens
        self.embed_s = 0.0
        self.tokenize_s = 0.0

    def embed(self, texts):
        t = time.perf_counter()
        try:
            return self.base.embed(texts)
        finally:
            self.embed_s += time.perf_counter() - t

    def token_spans(self, texts):
        t = time.perf_counter()
        try:
            return self.base.token_spans(texts)
        finally:
            self.tokenize_s += time.perf_counter() - t


def bench_index(
    workdir: Path,
    *,
    chunks: int = DEFAULT_CHUNKS,
    docs: int | None = None,
    repeats: int = 3,
    corpus: Corpus | None = None,
    embedder=None,
    settings: Settings | None = None,
    profile: bool = False,
    log=log,
) -> IndexResult:
    """Pipeline (`Index.build`) versus raw `encode` throughput on the same chunks."""
    from qa.models.embedder import get_embedder

    if repeats < 1 or chunks < 1:
        raise BadInput("--repeats and --chunks must be at least 1")
    workdir = Path(workdir)
    corpus = corpus or load_corpus()
    settings = bench_settings(settings, workdir / "index-bench" / "index")
    embedder = embedder or get_embedder(settings.embed_model)
    index_dir = settings.index_dir
    docs_dir = workdir / "index-bench" / "docs"
    if docs_dir.exists():
        shutil.rmtree(docs_dir)

    log("index bench: loading the model and warming up ...")
    raw_encode(embedder, corpus.paragraphs[:16])  # load + first-call costs
    per_chunk = calibrate(article_texts(corpus, 40_000), embedder, settings)
    paths = write_texts(article_texts(corpus, chunks * per_chunk, docs), docs_dir)
    warm = workdir / "index-bench" / "warm"
    write_texts(corpus.paragraphs[:4], warm)
    Index.build(
        [warm], workdir / "index-bench" / "warm-index", settings=settings, embedder=embedder
    ).close()

    reset_peak_rss()
    raw_s: list[float] = []
    pipe_s: list[float] = []
    embed_s: list[float] = []
    tok_s: list[float] = []
    texts: list[str] | None = None
    n_chunks = 0
    for r in range(repeats):
        order = ("pipeline", "raw") if r % 2 == 0 or texts is None else ("raw", "pipeline")
        for what in order:
            if what == "pipeline":
                timed = Timed(embedder)
                t = time.perf_counter()
                index = Index.build([docs_dir], index_dir, settings=settings, embedder=timed)
                pipe_s.append(time.perf_counter() - t)
                index.close()
                embed_s.append(timed.embed_s)
                tok_s.append(timed.tokenize_s)
                if texts is None:
                    texts = chunk_texts(index_dir)
                    n_chunks = len(texts)
                log(
                    f"  run {r + 1}/{repeats} pipeline: {n_chunks} chunks in {pipe_s[-1]:.1f}s "
                    f"(embed {timed.embed_s:.1f}s, tokenize {timed.tokenize_s:.1f}s)"
                )
            else:
                assert texts is not None
                t = time.perf_counter()
                raw_encode(embedder, texts)
                raw_s.append(time.perf_counter() - t)
                log(f"  run {r + 1}/{repeats} raw encode: {raw_s[-1]:.1f}s")
    peak = peak_rss_mb()
    if profile:
        log("profile of one pipeline run:")
        log(
            cprofile(
                lambda: Index.build(
                    [docs_dir], index_dir, settings=settings, embedder=embedder
                ).close()
            )
        )
    pipe_med = statistics.median(pipe_s)
    embed_med = statistics.median(embed_s)
    tok_med = statistics.median(tok_s)
    return IndexResult(
        corpus=corpus.origin,
        documents=len(paths),
        chunks=n_chunks,
        repeats=repeats,
        batch_size=embedder.batch_size,
        chunk_tokens=settings.chunk_tokens,
        raw_seconds=tuple(raw_s),
        pipeline_seconds=tuple(pipe_s),
        embed_seconds=embed_med,
        tokenize_seconds=tok_med,
        other_seconds=max(0.0, pipe_med - embed_med - tok_med),
        footprint=footprint(index_dir, n_chunks, peak),
    )


def chunk_texts(index_dir: Path) -> list[str]:
    """The chunk texts the pipeline embedded, in the order it embedded them."""
    conn = sqlite3.connect(database_of(index_dir))
    try:
        return [r[0] for r in conn.execute("SELECT text FROM chunks ORDER BY id")]
    finally:
        conn.close()


def format_index(r: IndexResult) -> str:
    f = r.footprint
    lines = [
        f"Indexing: {r.chunks} chunks from {r.documents} {r.corpus} documents, "
        f"{r.repeats} alternating runs each, medians; batch {r.batch_size}, "
        f"{r.chunk_tokens}-token chunks",
        f"  {'':34}{'chunks/s':>10}{'seconds':>10}",
        f"  {'raw SentenceTransformer.encode':34}{r.raw_chunks_per_s:>10.1f}"
        f"{statistics.median(r.raw_seconds):>10.2f}",
        f"  {'qa index pipeline (Index.build)':34}{r.pipeline_chunks_per_s:>10.1f}"
        f"{statistics.median(r.pipeline_seconds):>10.2f}",
        f"    {'of which embedding':32}{'':>10}{r.embed_seconds:>10.2f}",
        f"    {'of which tokenizing (chunking)':32}{'':>10}{r.tokenize_seconds:>10.2f}",
        f"    {'other (load, SQLite, FAISS)':32}{'':>10}{r.other_seconds:>10.2f}",
        f"  pipeline / raw = {r.ratio:.3f}  (target >= {r.target}: {mark(r.passed)})",
        f"  index size {mib(f.sqlite_bytes + f.faiss_bytes):.1f} MiB "
        f"(SQLite {mib(f.sqlite_bytes):.1f}, FAISS {mib(f.faiss_bytes):.1f}) = "
        f"{f.bytes_per_chunk:,.0f} bytes/chunk; peak RSS {f.peak_rss_mb:.0f} MiB",
    ]
    return "\n".join(lines)
