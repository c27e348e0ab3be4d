"""`qa bench index|search`: the indexing pipeline and hybrid search, each measured
against the raw libraries underneath it, in the same run, on the same data.

index   Index real prose with `Index.build` (load, chunk, embed, SQLite, FAISS), then
        encode exactly the chunks it made with `SentenceTransformer.encode` (same model
        object, same batch size, normalized). Runs alternate and repeat; the figure is
        the median over pairs of pipeline chunks/s / raw chunks/s (target >= 0.85).
search  Build an index of N chunks of real text through qa's own code, with seeded
        random vectors in place of the model (exact FAISS search costs the same
        whatever the vectors hold), reopen it with the real embedder, and time
        `Index.search(q, k=5, mode="hybrid")` against a raw FAISS search of an
        IndexIDMap2(IndexFlatIP) holding the same vectors plus a raw FTS5 `MATCH ...
        ORDER BY bm25() LIMIT` on the same table (target: hybrid <= 1.5x their sum).
        The headline ratio leaves the query embedding out of both sides (the query
        vectors are computed first and served from memory); the ratio with the real
        model embedding each query on both sides is shown too.

Machines are noisy: every figure is a median (per query, over repeats), and each is
shown as a ratio against the raw library measured in the same run. Model loading is
excluded everywhere. Nothing is written outside `--workdir` (default: a temp folder).
"""

from __future__ import annotations

import argparse
import cProfile
import io
import json
import pstats
import resource
import shutil
import sqlite3
import statistics
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from .benchdata import (
    Corpus,
    SyntheticVectors,
    article_texts,
    chars_per_chunk,
    load_corpus,
    shuffled_texts,
    write_texts,
)
from .config import Settings
from .errors import BadInput
from .index import DATABASE, Index
from .store import fts_query

INDEX_TARGET = 0.85  # pipeline chunks/s >= 0.85 x raw encode
SEARCH_TARGET = 1.5  # hybrid latency <= 1.5 x (raw FAISS + raw FTS5)
DEFAULT_CHUNKS = 2000
DEFAULT_SIZES = (10_000, 100_000)


# ----------------------------------------------------------------------------- records


@dataclass(frozen=True)
class Latency:
    """Milliseconds over queries (each query's figure the median over repeats)."""

    p50: float
    p95: float
    mean: float

    @classmethod
    def of(cls, ms: Sequence[float]) -> Latency:
        a = np.asarray(ms, dtype=np.float64)
        return cls(float(np.percentile(a, 50)), float(np.percentile(a, 95)), float(a.mean()))


@dataclass(frozen=True)
class Footprint:
    sqlite_bytes: int
    faiss_bytes: int
    chunks: int
    peak_rss_mb: float  # peak resident memory while building (0 if the index was reused)

    @property
    def bytes_per_chunk(self) -> float:
        return (self.sqlite_bytes + self.faiss_bytes) / max(1, self.chunks)


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
    footprint: Footprint
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


@dataclass(frozen=True)
class SearchResult:
    corpus: str
    documents: int
    chunks: int
    queries: int
    repeats: int
    k: int
    depth: int  # results asked of each retriever, raw and hybrid alike
    build_seconds: float
    embed_ms: Latency  # raw model.encode of one query
    faiss_ms: Latency
    fts_ms: Latency
    raw_ms: Latency  # faiss + fts per query
    hybrid_ms: Latency  # Index.search, query vector served from memory
    raw_full_ms: Latency  # embed + faiss + fts per query
    hybrid_full_ms: Latency  # Index.search with the real embedder
    footprint: Footprint
    rss_mb: float  # resident memory with the model loaded and the index open and searched
    target: float = SEARCH_TARGET
    kind: str = field(default="search", init=False)

    @property
    def ratio_p50(self) -> float:
        return self.hybrid_ms.p50 / self.raw_ms.p50

    @property
    def ratio_p95(self) -> float:
        return self.hybrid_ms.p95 / self.raw_ms.p95

    @property
    def ratio_full_p50(self) -> float:
        return self.hybrid_full_ms.p50 / self.raw_full_ms.p50

    @property
    def ratio_full_p95(self) -> float:
        return self.hybrid_full_ms.p95 / self.raw_full_ms.p95

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
            passed=self.passed,
        )
        return d


# ----------------------------------------------------------------------------- helpers


def _log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def reset_peak_rss() -> bool:
    """Reset the kernel's peak-RSS mark for this process (Linux >= 4.0); False if not possible."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def rss_mb() -> float:
    """Resident memory now."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def peak_rss_mb() -> float:
    """Peak resident memory since the last reset (or since the process started)."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def footprint(index_dir: Path, chunks: int, peak_mb: float) -> Footprint:
    """On-disk size of the index (the WAL checkpointed into the database first)."""
    conn = sqlite3.connect(index_dir / DATABASE)
    try:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        conn.close()
    sqlite_bytes = sum(p.stat().st_size for p in index_dir.glob(DATABASE + "*"))
    faiss_bytes = sum(p.stat().st_size for p in index_dir.glob("vectors-*.faiss"))
    return Footprint(sqlite_bytes, faiss_bytes, chunks, peak_mb)


class _Timed:
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


class _Served:
    """Answers `embed` for known queries from memory; everything else goes to the base."""

    def __init__(self, base, texts: Sequence[str], vectors: np.ndarray) -> None:
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


def raw_encode(embedder, texts: Sequence[str]) -> np.ndarray:
    """The raw library call the pipeline's embedding is measured against."""
    return embedder.model.encode(
        list(texts),
        batch_size=embedder.batch_size,
        normalize_embeddings=True,
        convert_to_numpy=True,
        show_progress_bar=False,
    )


def _profile(fn, top: int = 25) -> str:
    prof = cProfile.Profile()
    prof.enable()
    try:
        fn()
    finally:
        prof.disable()
    out = io.StringIO()
    pstats.Stats(prof, stream=out).sort_stats("cumulative").print_stats(top)
    out.write("\n")
    pstats.Stats(prof, stream=out).sort_stats("tottime").print_stats(top)
    return out.getvalue()


def _settings(settings: Settings | None, directory: Path) -> Settings:
    return (settings or Settings.load()).with_(index_dir=directory)


def _calibrate(texts: Sequence[str], embedder, settings: Settings) -> float:
    sample = list(texts[:8])
    return chars_per_chunk(
        sample,
        embedder.token_spans,
        settings.chunk_tokens,
        settings.chunk_overlap,
        embedder.max_tokens,
    )


# ----------------------------------------------------------------------------- indexing


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
    log=_log,
) -> IndexResult:
    """Pipeline (`Index.build`) versus raw `encode` throughput on the same chunks."""
    from .embed import get_embedder

    if repeats < 1 or chunks < 1:
        raise BadInput("--repeats and --chunks must be at least 1")
    workdir = Path(workdir)
    corpus = corpus or load_corpus()
    settings = _settings(settings, workdir / "index-bench" / "index")
    embedder = embedder or get_embedder(settings.embed_model)
    index_dir = settings.index_dir
    docs_dir = workdir / "index-bench" / "docs"
    if docs_dir.exists():
        shutil.rmtree(docs_dir)

    log("index bench: loading the model and warming up ...")
    raw_encode(embedder, corpus.paragraphs[:16])  # load + first-call costs
    per_chunk = _calibrate(article_texts(corpus, 40_000), embedder, settings)
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
                timed = _Timed(embedder)
                t = time.perf_counter()
                index = Index.build([docs_dir], index_dir, settings=settings, embedder=timed)
                pipe_s.append(time.perf_counter() - t)
                index.close()
                embed_s.append(timed.embed_s)
                tok_s.append(timed.tokenize_s)
                if texts is None:
                    texts = _chunk_texts(index_dir)
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
            _profile(
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


def _chunk_texts(index_dir: Path) -> list[str]:
    """The chunk texts the pipeline embedded, in the order it embedded them."""
    conn = sqlite3.connect(index_dir / DATABASE)
    try:
        return [r[0] for r in conn.execute("SELECT text FROM chunks ORDER BY id")]
    finally:
        conn.close()


# ----------------------------------------------------------------------------- search


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
    }
    if stamp.is_file():
        saved = json.loads(stamp.read_text())
        if saved.get("key") == key:
            return saved["documents"], saved["seconds"], 0.0
    if directory.exists():
        shutil.rmtree(directory)
    per_chunk = _calibrate(shuffled_texts(corpus, 80_000, seed + 1), embedder, settings)
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


def _raw_faiss(index_dir: Path):
    """IndexIDMap2(IndexFlatIP) holding the store's vectors, built with faiss directly."""
    import faiss

    conn = sqlite3.connect(index_dir / DATABASE)
    try:
        rows = conn.execute("SELECT chunk_id, vector FROM vectors ORDER BY chunk_id").fetchall()
    finally:
        conn.close()
    ids = np.fromiter((r[0] for r in rows), dtype=np.int64, count=len(rows))
    vecs = np.frombuffer(b"".join(r[1] for r in rows), dtype=np.float32).reshape(len(rows), -1)
    raw = faiss.IndexIDMap2(faiss.IndexFlatIP(vecs.shape[1]))
    raw.add_with_ids(np.ascontiguousarray(vecs), ids)
    return raw


FTS_SQL = (
    "SELECT rowid, bm25(chunks_fts) FROM chunks_fts WHERE chunks_fts MATCH ? "
    "ORDER BY bm25(chunks_fts) LIMIT ?"
)


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
    log=_log,
) -> SearchResult:
    """`Index.search(mode="hybrid")` latency versus raw FAISS + raw FTS5 on the same data."""
    from .embed import get_embedder

    if repeats < 1 or queries < 1 or size < 1:
        raise BadInput("--repeats, --queries and sizes must be at least 1")
    workdir = Path(workdir)
    corpus = corpus or load_corpus()
    directory = workdir / f"search-{size}"
    settings = _settings(settings, directory / "index")
    embedder = embedder or get_embedder(settings.embed_model)
    index_dir = settings.index_dir
    log(f"search bench at {size} chunks: building the index (random vectors) ...")
    documents, build_s, build_peak = build_search_index(
        directory, size, corpus, embedder, settings, seed
    )
    log(f"  built in {build_s:.0f}s")

    qs = list(dict.fromkeys(corpus.questions))[:queries]
    full = Index.open(index_dir, settings=settings, embedder=embedder)
    full.search(qs[0], k=k)  # loads the FAISS file
    resident = rss_mb()
    qvecs = raw_encode(embedder, qs).astype(np.float32)
    served = Index.open(index_dir, settings=settings, embedder=_Served(embedder, qs, qvecs))
    n_chunks = len(served)
    depth = max(50, 4 * k)  # what Index.search asks of each retriever
    raw = _raw_faiss(index_dir)
    conn = sqlite3.connect(index_dir / DATABASE, check_same_thread=False)
    matches = [fts_query(q) for q in qs]

    def t_embed(i):
        raw_encode(embedder, [qs[i]])

    def t_faiss(i):
        raw.search(qvecs[i : i + 1], depth)

    def t_fts(i):
        if matches[i]:
            conn.execute(FTS_SQL, (matches[i], depth)).fetchall()

    def t_hybrid(i):
        served.search(qs[i], k=k, mode="hybrid")

    def t_full(i):
        full.search(qs[i], k=k, mode="hybrid")

    ops = {"embed": t_embed, "faiss": t_faiss, "fts": t_fts, "hybrid": t_hybrid, "full": t_full}
    for i in range(min(20, len(qs))):  # warm caches: pages, FAISS data, model
        for op in ops.values():
            op(i)
    samples = {name: np.zeros((repeats, len(qs))) for name in ops}
    names = list(ops)
    for r in range(repeats):
        log(f"  round {r + 1}/{repeats} of {len(qs)} queries ...")
        for i in range(len(qs)):
            rot = (i + r) % len(names)  # rotate which operation goes first
            for name in names[rot:] + names[:rot]:
                t = time.perf_counter()
                ops[name](i)
                samples[name][r, i] = (time.perf_counter() - t) * 1000
    med = {name: np.median(s, axis=0) for name, s in samples.items()}
    if profile:
        log(f"profile of {len(qs)} hybrid searches (query vectors from memory):")
        log(_profile(lambda: [t_hybrid(i) for i in range(len(qs))]))
    served.close()
    full.close()
    conn.close()
    return SearchResult(
        corpus=corpus.origin,
        documents=documents,
        chunks=n_chunks,
        queries=len(qs),
        repeats=repeats,
        k=k,
        depth=depth,
        build_seconds=build_s,
        embed_ms=Latency.of(med["embed"]),
        faiss_ms=Latency.of(med["faiss"]),
        fts_ms=Latency.of(med["fts"]),
        raw_ms=Latency.of(med["faiss"] + med["fts"]),
        hybrid_ms=Latency.of(med["hybrid"]),
        raw_full_ms=Latency.of(med["embed"] + med["faiss"] + med["fts"]),
        hybrid_full_ms=Latency.of(med["full"]),
        footprint=footprint(index_dir, n_chunks, build_peak),
        rss_mb=resident,
    )


# ----------------------------------------------------------------------------- output


def _mark(ok: bool) -> str:
    return "ok" if ok else "MISSED"


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
        f"  pipeline / raw = {r.ratio:.3f}  (target >= {r.target}: {_mark(r.passed)})",
        f"  index size {(f.sqlite_bytes + f.faiss_bytes) / 2**20:.1f} MiB "
        f"(SQLite {f.sqlite_bytes / 2**20:.1f}, FAISS {f.faiss_bytes / 2**20:.1f}) = "
        f"{f.bytes_per_chunk:,.0f} bytes/chunk; peak RSS {f.peak_rss_mb:.0f} MiB",
    ]
    return "\n".join(lines)


def format_search(results: Sequence[SearchResult]) -> str:
    if not results:
        return ""
    r0 = results[0]
    head = (
        f"Search latency, ms (p50 / p95 over {r0.queries} {r0.corpus} questions, each the "
        f"median of {r0.repeats}); k={r0.k}, depth {r0.depth} per retriever"
    )
    cols = "".join(f"{r.chunks:>20,}" for r in results)
    lines = [head, f"  {'chunks':40}{cols}"]

    def row(label: str, get) -> None:
        cells = "".join(f"{get(r):>20}" for r in results)
        lines.append(f"  {label:40}{cells}")

    def lat(x: Latency) -> str:
        return f"{x.p50:.2f} / {x.p95:.2f}"

    row("raw FAISS IndexFlatIP search", lambda r: lat(r.faiss_ms))
    row("raw FTS5 MATCH + bm25 ORDER BY LIMIT", lambda r: lat(r.fts_ms))
    row("raw FAISS + FTS5", lambda r: lat(r.raw_ms))
    row("qa hybrid search (query vector given)", lambda r: lat(r.hybrid_ms))
    row("  ratio hybrid / raw", lambda r: f"{r.ratio_p50:.2f} / {r.ratio_p95:.2f}")
    row("  target <= 1.5x", lambda r: _mark(r.passed))
    row("raw query embedding (encode 1)", lambda r: lat(r.embed_ms))
    row("raw embed + FAISS + FTS5", lambda r: lat(r.raw_full_ms))
    row("qa hybrid search (embeds the query)", lambda r: lat(r.hybrid_full_ms))
    row("  ratio with embedding", lambda r: f"{r.ratio_full_p50:.2f} / {r.ratio_full_p95:.2f}")
    row("index build, s (random vectors)", lambda r: f"{r.build_seconds:.0f}")
    row("bytes / chunk (SQLite + FAISS)", lambda r: f"{r.footprint.bytes_per_chunk:,.0f}")
    row(
        "SQLite / FAISS, MiB",
        lambda r: f"{r.footprint.sqlite_bytes / 2**20:.0f} / {r.footprint.faiss_bytes / 2**20:.0f}",
    )
    row("peak RSS while indexing, MiB", lambda r: f"{r.footprint.peak_rss_mb:.0f}")
    row("RSS with index open, MiB", lambda r: f"{r.rss_mb:.0f}")
    return "\n".join(lines)


# ----------------------------------------------------------------------------- CLI


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="qa bench",
        description="Measure indexing throughput and search latency against the raw libraries.",
    )
    p.add_argument("what", choices=("index", "search", "all"), help="which benchmark to run")
    p.add_argument(
        "--chunks",
        type=int,
        default=DEFAULT_CHUNKS,
        help=f"index bench: about this many chunks (default {DEFAULT_CHUNKS})",
    )
    p.add_argument(
        "--docs",
        type=int,
        default=None,
        help="index bench: split the text into this many files (default: one per article)",
    )
    p.add_argument(
        "--sizes",
        default=",".join(str(s) for s in DEFAULT_SIZES),
        help="search bench: index sizes in chunks, comma-separated (default 10000,100000)",
    )
    p.add_argument("--repeats", type=int, default=3, help="runs / rounds per figure (default 3)")
    p.add_argument("--queries", type=int, default=200, help="search bench: questions (default 200)")
    p.add_argument(
        "--workdir",
        type=Path,
        default=None,
        help="where to put the benchmark's files (default: a temporary folder, "
        "deleted after); a given folder is kept and its search indexes reused",
    )
    p.add_argument("--profile", action="store_true", help="also print cProfile tables")
    p.add_argument("--json", action="store_true", help="print the records as JSON")
    p.add_argument("--out", type=Path, default=None, help="also write the JSON records here")
    return p


def _sizes(text: str) -> list[int]:
    try:
        sizes = [int(s.replace("_", "")) for s in text.split(",") if s.strip()]
    except ValueError:
        raise BadInput(f"--sizes takes comma-separated whole numbers, not {text!r}") from None
    if not sizes or min(sizes) < 1:
        raise BadInput("--sizes needs at least one positive size")
    return sizes


def run(args: argparse.Namespace) -> list[IndexResult | SearchResult]:
    sizes = _sizes(args.sizes) if args.what in ("search", "all") else []
    temp = args.workdir is None
    workdir = Path(tempfile.mkdtemp(prefix="qa-bench-")) if temp else args.workdir
    workdir.mkdir(parents=True, exist_ok=True)
    results: list[IndexResult | SearchResult] = []
    try:
        corpus = load_corpus()
        if args.what in ("index", "all"):
            r = bench_index(
                workdir,
                chunks=args.chunks,
                docs=args.docs,
                repeats=args.repeats,
                corpus=corpus,
                profile=args.profile,
            )
            results.append(r)
            if not args.json:
                print(format_index(r), flush=True)
        searches = []
        for size in sizes:
            searches.append(
                bench_search(
                    workdir,
                    size,
                    queries=args.queries,
                    repeats=args.repeats,
                    corpus=corpus,
                    profile=args.profile,
                )
            )
            if temp:  # the next size does not need this one's files
                shutil.rmtree(workdir / f"search-{size}", ignore_errors=True)
        results += searches
        if searches and not args.json:
            if len(results) > len(searches):
                print()
            print(format_search(searches), flush=True)
    finally:
        if temp:
            shutil.rmtree(workdir, ignore_errors=True)
    return results


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from .errors import QAError

    try:
        results = run(args)
    except QAError as exc:
        print(f"qa bench: {exc}", file=sys.stderr)
        return exc.exit_code
    records = [r.to_dict() for r in results]
    if args.json:
        print(json.dumps(records, indent=2))
    if args.out is not None:
        args.out.write_text(json.dumps(records, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
