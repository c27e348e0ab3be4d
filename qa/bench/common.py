"""What the benchmarks share: latency figures, memory and disk footprints, the timing loop,
the raw library calls qa is measured against, and table cells."""

from __future__ import annotations

import cProfile
import io
import math
import pstats
import resource
import sqlite3
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from qa.bench.data import Corpus, chars_per_chunk, load_corpus
from qa.config import Settings
from qa.index.manifest import database_of

SEARCH_TARGET = 1.5  # qa search latency <= 1.5 x the raw libraries' (FAISS + FTS5)

# The SQL a plain FTS5 user would write for BM25 top-n (qa's Store.bm25 runs the same query).
FTS_SQL = (
    "SELECT rowid, bm25(chunks_fts) FROM chunks_fts WHERE chunks_fts MATCH ? "
    "ORDER BY bm25(chunks_fts) LIMIT ?"
)


def search_depth(k: int) -> int:
    """Results `Index.search` asks of each retriever (mirrors qa/index.py; the search
    bench checks it against what Index.search really asks)."""
    return max(80, 4 * k)


# ----------------------------------------------------------------------------- figures


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


def median(values: Sequence[float]) -> float:
    """The median of the finite values (a figure that could not be measured is NaN)."""
    finite = [v for v in values if math.isfinite(v)]
    return statistics.median(finite) if finite else float("nan")


def ratio(a: float, b: float) -> float:
    return a / b if b > 0 and math.isfinite(a) and math.isfinite(b) else float("nan")


class LayerRatios:
    """The ratios of qa's search layers to the raw libraries, for results that time
    `vector_ms` vs `faiss_ms`, `bm25_ms` vs `fts_ms` and `layers_ms` vs `raw_ms`."""

    @property
    def vector_ratio_p50(self) -> float:
        return ratio(self.vector_ms.p50, self.faiss_ms.p50)

    @property
    def vector_ratio_p95(self) -> float:
        return ratio(self.vector_ms.p95, self.faiss_ms.p95)

    @property
    def bm25_ratio_p50(self) -> float:
        return ratio(self.bm25_ms.p50, self.fts_ms.p50)

    @property
    def bm25_ratio_p95(self) -> float:
        return ratio(self.bm25_ms.p95, self.fts_ms.p95)

    @property
    def layers_ratio_p50(self) -> float:
        return ratio(self.layers_ms.p50, self.raw_ms.p50)

    @property
    def layers_ratio_p95(self) -> float:
        return ratio(self.layers_ms.p95, self.raw_ms.p95)

    def layer_ratios(self) -> dict[str, float]:
        return {
            f"{layer}_ratio_{q}": getattr(self, f"{layer}_ratio_{q}")
            for layer in ("vector", "bm25", "layers")
            for q in ("p50", "p95")
        }


@dataclass(frozen=True)
class SearchSetup:
    """What a search-latency benchmark at one size works with."""

    directory: Path  # workdir/<kind>-<size>
    corpus: Corpus
    settings: Settings  # its index_dir is directory/index
    embedder: object
    questions: list[str]  # distinct corpus questions, at most `queries`


def search_setup(
    kind: str,
    workdir: Path,
    size: int,
    queries: int,
    repeats: int,
    corpus: Corpus | None,
    embedder,
    settings: Settings | None,
) -> SearchSetup:
    """Check the sizes, then the folder, settings, embedder and questions of a benchmark."""
    from qa.errors import BadInput
    from qa.models.embedder import get_embedder

    if repeats < 1 or queries < 1 or size < 1:
        raise BadInput("--repeats, --queries and sizes must be at least 1")
    corpus = corpus or load_corpus()
    directory = Path(workdir) / f"{kind}-{size}"
    settings = bench_settings(settings, directory / "index")
    embedder = embedder or get_embedder(settings.embed_model)
    questions = list(dict.fromkeys(corpus.questions))[:queries]
    return SearchSetup(directory, corpus, settings, embedder, questions)


def footprint(index_dir: Path, chunks: int, peak_mb: float) -> Footprint:
    """On-disk size of the index (the WAL checkpointed into the database first)."""
    conn = sqlite3.connect(database_of(index_dir))
    try:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        conn.close()
    sqlite_bytes = sum(p.stat().st_size for p in index_dir.glob(database_of(index_dir).name + "*"))
    faiss_bytes = sum(p.stat().st_size for p in index_dir.glob("vectors-*.faiss"))
    return Footprint(sqlite_bytes, faiss_bytes, chunks, peak_mb)


# ----------------------------------------------------------------------------- memory


def reset_peak_rss() -> bool:
    """Reset the kernel's peak-RSS mark for this process (Linux >= 4.0); False if not possible."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def _status_mb(field: str) -> float | None:
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return None


def rss_mb() -> float:
    """Resident memory now, MiB."""
    return _status_mb("VmRSS") or 0.0


def peak_rss_mb() -> float:
    """Peak resident memory since the last reset (or since the process started), MiB."""
    peak = _status_mb("VmHWM")
    return peak if peak is not None else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


# ----------------------------------------------------------------------------- running


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def time_rounds(
    ops: dict[str, Callable[[int], object]],
    n: int,
    repeats: int,
    *,
    warm: int = 20,
    log: Callable[[str], None] = log,
) -> dict[str, np.ndarray]:
    """Milliseconds of each operation on items 0..n-1: per item, the median over `repeats`
    rounds. The first `warm` items run once first (page cache, FAISS data, model), and the
    order of the operations rotates from item to item so none always runs first."""
    for i in range(min(warm, n)):
        for op in ops.values():
            op(i)
    names = list(ops)
    samples = {name: np.zeros((repeats, n)) for name in names}
    for r in range(repeats):
        log(f"  round {r + 1}/{repeats} of {n} queries ...")
        for i in range(n):
            rot = (i + r) % len(names)
            for name in names[rot:] + names[:rot]:
                t = time.perf_counter()
                ops[name](i)
                samples[name][r, i] = (time.perf_counter() - t) * 1000
    return {name: np.median(s, axis=0) for name, s in samples.items()}


def timed_build(docs: Path, index_dir: Path, settings: Settings, backend: str, embedder):
    """(the index, seconds): `Index.build` of the folder `docs` into `index_dir` with
    `embedder` on `backend`, timed from settings to a built index (the caller closes it)."""
    from qa.index.core import Index

    t = time.perf_counter()
    index = Index.build(
        [docs],
        index_dir,
        settings=settings.with_(embed_backend=backend, index_dir=index_dir),
        embedder=embedder,
    )
    return index, time.perf_counter() - t


def cprofile(fn: Callable[[], object], top: int = 25) -> str:
    """cProfile tables (cumulative, then own time) of one call."""
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


def raw_encode(embedder, texts: Sequence[str]) -> np.ndarray:
    """The raw library call qa's embedding is measured against (sentence-transformers'
    encode; an embedder without a SentenceTransformer, such as the ONNX one, is its own)."""
    if not hasattr(embedder, "model"):
        return np.asarray(embedder.embed(list(texts)), dtype=np.float32)
    return embedder.model.encode(
        list(texts),
        batch_size=embedder.batch_size,
        normalize_embeddings=True,
        convert_to_numpy=True,
        show_progress_bar=False,
    )


def bench_settings(settings: Settings | None, index_dir: Path) -> Settings:
    return (settings or Settings.load()).with_(index_dir=index_dir)


def calibrate(texts: Sequence[str], embedder, settings: Settings) -> float:
    """Characters of these texts per chunk, chunked with the embedder's tokenizer."""
    return chars_per_chunk(
        list(texts[:8]),
        embedder.token_spans,
        settings.chunk_tokens,
        settings.chunk_overlap,
        embedder.max_tokens,
    )


# ----------------------------------------------------------------------------- output


def mark(ok: bool) -> str:
    return "ok" if ok else "MISSED"


def lat(x: Latency | None) -> str:
    return "—" if x is None else f"{x.p50:.2f} / {x.p95:.2f}"


def pair(a: float | None, b: float | None, digits: int = 2) -> str:
    if a is None or b is None:
        return "—"
    return f"{a:.{digits}f} / {b:.{digits}f}"


def mib(n: float) -> float:
    return n / 2**20
