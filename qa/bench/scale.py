"""Search scale points too large to build through qa's indexing pipeline here (`qa bench
search` sizes above `--pipeline-max`, default 200,000 chunks, e.g. 1,000,000).

Why not the pipeline: `Index.build` with random vectors still tokenizes every chunk with
the embedder's tokenizer to chunk it (about 1.8 ms a chunk on this 2-core machine, 18 s per
10k chunks in all), so 1M chunks would take about 50 minutes and 6.5 GB of disk. At these
sizes the bench measures qa's two retrieval layers instead, each on the same data as its raw
baseline:

- vectors: N seeded synthetic unit vectors added to qa's `VectorIndex` (qa/index/vectors.py,
  the structure `QA_FAISS_FACTORY` means at N: `auto` is IVF above 100k) and, when they fit
  in memory, to a plain faiss `IndexFlatIP` (exact: the raw baseline and the ground truth of
  `ann_recall_at_10`, over RECALL_QUERIES questions). An exact search costs the same whatever
  the vectors hold, an approximate one does not: uniform random vectors have no
  neighbourhoods, and an isotropic Gaussian mixture in 384-d is much harder for IVF than text
  (its recall@10 at IVF2048/nprobe 64 was .66, against .965 here). So the vectors are shaped
  like real ones (`EmbeddedVectors`): the embedder's own embeddings of up to BASE_MAX corpus
  sentences, each copied with Gaussian noise of their covariance, as far from it as a real
  sentence is from its nearest real neighbour (cosine .62 for SQuAD dev with MiniLM), and the
  queries are the real embeddings of the corpus questions. `breadth_sweep` records recall
  and latency at other nprobe / efSearch values. Lossy codes (SQ8, PQ) are re-ranked exactly
  from a memory-mapped file of the float vectors in the workdir, standing in for SQLite's
  vectors table (which qa reads instead);
- BM25: an SQLite database with qa's schema (made by `qa.store.Store`) holding N chunk-sized
  texts of corpus sentences drawn at random (as long as qa's chunks of them), inserted in
  256-row transactions like qa's writes, so qa's FTS5 trigger indexes them; no document
  texts and no vectors are stored. `Store.bm25(q, depth)` versus the raw FTS5 query, with
  FTS5 and with the in-memory engine (`QA_BM25=memory`, built from the same table), and the
  share of FTS5's top ids the in-memory engine returns. Above BM25_MAX (or `fts=False`) the
  point is vectors only.

`hybrid_ms` is what `Index.search` does once it has the query vector: both layers, the
fusion of their lists, reading the k best chunk rows, with the configured engine
(`QA_BM25`; both are timed). Left out, and measured at the pipeline sizes instead: the query
embedding. Beside wall time, each operation's thread CPU time (`cpu_p50_ms`): on this shared
2-core machine wall time includes waiting for a core.
"""

from __future__ import annotations

import hashlib
import json
import math
import random
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
    raw_encode,
    reset_peak_rss,
    rss_mb,
    search_depth,
    search_setup,
    time_rounds,
)
from qa.bench.data import Corpus, chunk_chars, sentence_chunks, shuffled_texts
from qa.config import Settings
from qa.index.fusion import fuse
from qa.index.store import BM25_MEMORY_MIN, Store, fts_query
from qa.index.vectors import VectorIndex, plan

PIPELINE_MAX = 200_000  # larger sizes are measured at the layer level
BM25_MAX = 2_000_000  # larger layer-level sizes are vectors only (10M texts: ~10 GB SQLite)
SCALE_QUERIES = 50  # questions at a layer-level point (a 1M-chunk FTS5 query takes ~1 s)
CHUNKS_PER_DOC = 64
BATCH = 256  # rows per transaction, as qa commits
BASE_MAX = 10_000  # real sentence embeddings the synthetic vectors are drawn around
RAW_MAX_BYTES = 6 * 2**30  # the exact baseline is built only if its vectors fit in this
RECALL_K = 10
RECALL_QUERIES = 200  # questions ann_recall_at_10 is measured over (50 left it +-.02)


def time_both(ops, n: int, repeats: int, *, warm: int = 5, log=log):
    """`time_rounds` that also records each call's thread CPU time: ({name: wall ms per
    item}, {name: CPU ms per item}), each the median over rounds."""
    cpu = {name: np.zeros((repeats, n)) for name in ops}
    warm_calls = min(warm, n)  # time_rounds runs items 0..warm-1 once first, then rounds
    calls = dict.fromkeys(ops, 0)

    def timed(name, op):
        def run(i):
            t = time.thread_time()
            op(i)
            k = calls[name] - warm_calls
            calls[name] += 1
            if k >= 0:
                cpu[name][k // n, i] = (time.thread_time() - t) * 1000

        return run

    wall = time_rounds({k: timed(k, op) for k, op in ops.items()}, n, repeats, warm=warm, log=log)
    return wall, {name: np.median(v, axis=0) for name, v in cpu.items()}


def ann_recall(layer, queries: np.ndarray, truth: np.ndarray) -> float:
    """Mean share of the exact top RECALL_K that qa's vector search returns."""
    found = [{i for i, _ in layer.search(q, RECALL_K)} for q in queries]
    pairs = zip(found, truth, strict=True)
    return float(np.mean([len(f & set(t.tolist())) / RECALL_K for f, t in pairs]))


def breadth_sweep(layer, rvecs, truth, qvecs, depth: int, log=log) -> list[dict]:
    """Recall and p50 latency (one pass) at search breadths around the one qa uses: IVF's
    nprobe or HNSW's efSearch from a quarter to 4 times it; the breadth is put back after."""
    if layer.kind == "flat":
        return []
    name = "nprobe" if layer.kind == "ivf" else "ef_search"
    chosen = getattr(layer, name)
    most = layer.index.nlist if layer.kind == "ivf" else 1024
    values = sorted({max(1, min(most, round(chosen * f))) for f in (0.25, 0.5, 1, 2, 4)})
    out = []
    try:
        for v in values:
            setattr(layer, name, v)
            rec = ann_recall(layer, rvecs, truth)
            ms, cpu = [], []
            for q in qvecs:
                t, c = time.perf_counter(), time.thread_time()
                layer.search(q, depth)
                ms.append((time.perf_counter() - t) * 1000)
                cpu.append((time.thread_time() - c) * 1000)
            out.append(
                {
                    name: v,
                    "ann_recall_at_10": rec,
                    "vector_p50_ms": float(np.median(ms)),
                    "vector_cpu_p50_ms": float(np.median(cpu)),
                }
            )
            log(
                f"  {name} {v}: recall@{RECALL_K} {rec:.3f}, vector p50 {np.median(ms):.1f} ms "
                f"(CPU {np.median(cpu):.1f} ms)"
            )
    finally:
        setattr(layer, name, None if name == "nprobe" else chosen)  # nprobe: by size again
    return out


def bm25_agreement(fts5: Store, memory: Store, qs, depth: int) -> float:
    """The share of FTS5's top `depth` ids that the in-memory engine returns too."""
    shares = []
    for q in qs:
        want = {i for i, _ in fts5.bm25(q, depth)}
        if want:
            shares.append(len(want & {i for i, _ in memory.bm25(q, depth)}) / len(want))
    return float(np.mean(shares)) if shares else math.nan


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
    spec: str = ""  # the structure qa built for `factory` at this size, e.g. IVF2048,Flat
    ann_recall_at_10: float = math.nan  # qa's top 10 against the exact top 10
    ann_build_seconds: float = math.nan  # training and adding to qa's VectorIndex
    ann_rss_mb: float = math.nan  # resident memory qa's VectorIndex added
    faiss_bytes: int = 0  # qa's VectorIndex written to a file
    hybrid_ms: Latency | None = None  # both layers, fusion and reading k rows
    bm25_engine: str = "fts5"  # the one hybrid_ms used (QA_BM25)
    bm25_memory_ms: Latency | None = None  # the in-memory engine's Store.bm25
    hybrid_fts5_ms: Latency | None = None  # hybrid_ms with each engine
    hybrid_memory_ms: Latency | None = None
    bm25_memory_seconds: float = math.nan  # building the in-memory engine (and saving it)
    bm25_memory_rss_mb: float = math.nan  # resident memory it added
    bm25_memory_agreement: float = math.nan  # share of FTS5's top `depth` it returns too
    recall_queries: int = 0  # questions ann_recall_at_10 is the mean over
    # per operation, the p50 of the CPU time of the searching thread: what the search costs
    # on a core of its own (wall time on this shared machine includes waiting for one)
    cpu_p50_ms: dict = field(default_factory=dict)
    sweep: tuple = ()  # recall and latency at other search breadths (nprobe / efSearch)
    synthetic: str = ""  # what the vectors are
    kind: str = field(default="scale", init=False)

    @property
    def vector_p50_ms(self) -> float:
        return self.vector_ms.p50

    @property
    def hybrid_p50_ms(self) -> float:
        return self.hybrid_ms.p50 if self.hybrid_ms is not None else math.nan

    @property
    def build_seconds(self) -> float:
        return self.fts_seconds + self.vectors_seconds

    @property
    def passed(self) -> bool:
        return max(self.layers_ratio_p50, self.layers_ratio_p95) <= self.target

    @property
    def goals(self) -> dict[str, bool]:
        """The issue's goals at scale: recall@10 >= .98, vector p50 <= 20 ms, hybrid <= 100."""
        return {
            "ann_recall_at_10": self.ann_recall_at_10 >= 0.98,
            "vector_p50_ms": self.vector_p50_ms <= 20,
            "hybrid_p50_ms": self.hybrid_p50_ms <= 100,
        }

    def to_dict(self) -> dict:
        d = asdict(self)
        d.update(
            **self.layer_ratios(),
            vector_p50_ms=self.vector_p50_ms,
            hybrid_p50_ms=self.hybrid_p50_ms,
            build_seconds=self.build_seconds,
            goals=self.goals,
            passed=self.passed,
        )
        return d


def build_fts(
    path: Path, size: int, corpus: Corpus, chars: float, seed: int = 0, log=log
) -> tuple[float, float]:
    """An SQLite database with qa's schema holding `size` chunk texts (FTS5-indexed by qa's
    trigger); (seconds, mean characters per chunk). Reused if already built (0 seconds)."""
    stamp = path.with_name(path.name + ".json")
    key = {
        "chunks": size,
        "corpus": corpus.origin,
        "seed": seed,
        "chars": round(chars, 1),
        "fts": "one pass, optimized",
    }
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
    # FTS5 indexes the texts in one pass at the end ('rebuild', then 'optimize': the state
    # `Store.optimize_fts` leaves a qa index in): row by row through qa's trigger, 1M rows
    # took over an hour here (200k in 843 s, the merges growing with the table)
    conn.execute("DROP TRIGGER chunks_ai")
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
        log(f"  {size:,} texts in {time.perf_counter() - t:.0f}s; FTS5 index in one pass ...")
        conn.execute("INSERT INTO chunks_fts(chunks_fts) VALUES ('rebuild')")
        conn.execute("INSERT INTO chunks_fts(chunks_fts) VALUES ('optimize')")
        conn.execute(
            "CREATE TRIGGER chunks_ai AFTER INSERT ON chunks BEGIN "
            "INSERT INTO chunks_fts(rowid, text) VALUES (new.id, new.text); END"
        )
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        conn.close()
    seconds = time.perf_counter() - t
    mean_chars = total_chars / max(1, size)
    stamp.write_text(json.dumps({"key": key, "chars_per_chunk": mean_chars}))
    return seconds, mean_chars


class EmbeddedVectors:
    """Seeded synthetic vectors shaped like real embeddings, made a block at a time (the same
    block is the same whatever the order); see the module docstring.

    Each vector is the real embedding of one of up to BASE_MAX corpus sentences plus Gaussian
    noise with those embeddings' own covariance (so it stays in the directions real text
    spreads along), scaled so that a vector's cosine to its sentence is the mean cosine of a
    real sentence to its nearest real neighbour: the collection is a denser sample of the
    same topics. The queries are the real embeddings of the corpus questions."""

    def __init__(self, base: np.ndarray, queries: np.ndarray, seed: int = 0) -> None:
        self.base = np.ascontiguousarray(base, dtype=np.float32)
        self.query_vectors = np.ascontiguousarray(queries, dtype=np.float32)
        self.dimension, self.seed = self.base.shape[1], seed
        centred = self.base - self.base.mean(axis=0)
        evals, evecs = np.linalg.eigh((centred.T @ centred) / max(1, len(centred)))
        evals = np.clip(evals, 0, None)
        self.shape = np.ascontiguousarray((evecs * np.sqrt(evals)).T, dtype=np.float32)
        sample = self.base[: min(2000, len(self.base))]
        sims = sample @ self.base.T
        sims[np.arange(len(sample)), np.arange(len(sample))] = -np.inf
        self.neighbour_cosine = float(np.clip(sims.max(axis=1).mean(), 0.05, 0.99))
        # cos(b, b + s n) ~ 1 / sqrt(1 + s^2 trace(cov)) for noise n ~ N(0, cov)
        trace = max(float(evals.sum()), 1e-6)
        self.scale = math.sqrt((1 / self.neighbour_cosine**2 - 1) / trace)

    def block(self, start: int, n: int, stream: int = 0) -> np.ndarray:
        rng = np.random.default_rng((self.seed, stream, start))
        z = rng.standard_normal((n, self.dimension), dtype=np.float32)
        v = self.base[rng.integers(0, len(self.base), n)] + self.scale * (z @ self.shape)
        v /= np.linalg.norm(v, axis=1, keepdims=True)
        return v

    def queries(self, n: int) -> np.ndarray:
        return self.query_vectors[:n]


def embedded_vectors(
    corpus: Corpus, embedder, questions: list[str], workdir: Path, seed: int = 0, log=log
) -> EmbeddedVectors:
    """`EmbeddedVectors` from the corpus sentences and questions, their embeddings cached in
    `workdir` (they are the same for every size)."""
    sentences = list(dict.fromkeys(corpus.sentences()))
    random.Random(seed).shuffle(sentences)
    sentences = sentences[:BASE_MAX]
    base = _cached_embeddings(embedder, sentences, Path(workdir), "sentences", log)
    queries = _cached_embeddings(embedder, questions, Path(workdir), "questions", log)
    return EmbeddedVectors(base, queries, seed)


def _cached_embeddings(embedder, texts: list[str], workdir: Path, what: str, log) -> np.ndarray:
    """raw_encode of the texts, cached in `workdir` by embedder and texts."""
    key = hashlib.sha256("\n".join([embedder.name, str(embedder.dimension), *texts]).encode())
    path = workdir / f"embedded-{what}-{key.hexdigest()[:16]}.npy"
    if path.is_file():
        return np.load(path)
    log(f"  embedding {len(texts):,} corpus {what} ...")
    vecs = np.vstack([raw_encode(embedder, texts[i : i + 256]) for i in range(0, len(texts), 256)])
    workdir.mkdir(parents=True, exist_ok=True)
    np.save(path, vecs)
    return vecs


class MappedVectors:
    """The float vectors in a file, read by id (ids 1..N are rows 0..N-1): what the lossy
    codes are re-ranked from here, in place of SQLite's vectors table."""

    def __init__(self, path: Path, size: int, dimension: int) -> None:
        self.array = np.memmap(path, dtype=np.float32, mode="r", shape=(size, dimension))

    def __call__(self, ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        ids = np.sort(np.asarray(ids, dtype=np.int64))
        return ids, np.asarray(self.array[ids - 1])


def build_vectors(
    size: int,
    data: EmbeddedVectors,
    factory: str,
    block: int = 65_536,
    workdir: Path | None = None,
    log=log,
):
    """(qa VectorIndex, raw faiss IndexFlatIP or None, seconds to build qa's index, RSS MiB
    it added) holding the same `size` synthetic vectors of `data` with ids 1..size. The raw
    index is left out when its vectors would not fit in RAW_MAX_BYTES; lossy codes get a
    memory-mapped float copy in `workdir` to be re-ranked from."""
    import faiss

    dimension = data.dimension
    spec = plan(factory, size)
    raw = faiss.IndexFlatIP(dimension) if size * dimension * 4 <= RAW_MAX_BYTES else None
    before = rss_mb()
    t = time.perf_counter()
    layer = VectorIndex(dimension, factory, size=size)
    if layer.needs_training():
        sample = min(size, 64 * layer.index.nlist)  # vectors are drawn at random: a sample
        layer.train(
            np.vstack([data.block(s, min(block, sample - s)) for s in range(0, sample, block)])
        )
        log(f"  trained {spec} on {sample:,} vectors in {time.perf_counter() - t:.0f}s")
    built = time.perf_counter() - t
    mapped = None
    if layer.lossy and workdir is not None:
        mapped = workdir / f"vectors-{size}-{dimension}-{data.seed}.f32"
        out = np.memmap(mapped, dtype=np.float32, mode="w+", shape=(size, dimension))
    for start in range(0, size, block):
        n = min(block, size - start)
        v = data.block(start, n)
        t = time.perf_counter()
        layer.add(np.arange(start + 1, start + n + 1, dtype=np.int64), v)
        built += time.perf_counter() - t
        if raw is not None:
            raw.add(v)
        if mapped is not None:
            out[start : start + n] = v
        if (start // block) % 32 == 31:
            log(f"  {start + n:,} vectors added ...")
    if mapped is not None:
        out.flush()
        del out
        layer.fetch = MappedVectors(mapped, size, dimension)
    raw_mb = raw.ntotal * dimension * 4 / 2**20 if raw is not None else 0.0
    return layer, raw, built, rss_mb() - before - raw_mb  # qa's index alone


def exact_top(raw, data: EmbeddedVectors, size: int, queries: np.ndarray, k: int, block=65_536):
    """The exact top-k ids (1-based) of each query: from the raw index, else block by block."""
    if raw is not None:
        _, ids = raw.search(queries, k)
        return ids + 1
    best_s = np.full((len(queries), k), -np.inf, dtype=np.float32)
    best_i = np.zeros((len(queries), k), dtype=np.int64)
    for start in range(0, size, block):
        v = data.block(start, min(block, size - start))
        s = queries @ v.T
        ids = np.broadcast_to(np.arange(start + 1, start + len(v) + 1), s.shape)
        all_s, all_i = np.hstack([best_s, s]), np.hstack([best_i, ids])
        top = np.argsort(-all_s, axis=1)[:, :k]
        best_s = np.take_along_axis(all_s, top, 1)
        best_i = np.take_along_axis(all_i, top, 1)
    return best_i


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
    fts: bool = True,
    log=log,
) -> ScaleResult:
    """qa's vector and BM25 layers versus raw FAISS and raw FTS5 at `size` chunks, with the
    recall of qa's (approximate) vector search against exact search. Without `fts` the
    BM25 side is left out (a vectors-only point, e.g. 10M: its figures are NaN)."""
    setup = search_setup("scale", workdir, size, queries, repeats, corpus, embedder, settings)
    directory, corpus, settings = setup.directory, setup.corpus, setup.settings
    embedder, qs = setup.embedder, setup.questions
    depth = search_depth(k)
    reset_peak_rss()
    directory.mkdir(parents=True, exist_ok=True)

    db = directory / "fts.sqlite"
    fts_s, mean_chars = 0.0, math.nan
    if fts:
        log(f"scale point at {size:,} chunks (layers only): FTS5 table of corpus sentences ...")
        chars = chunk_chars(
            shuffled_texts(corpus, 80_000, seed + 1)[:8],
            embedder.token_spans,
            settings.chunk_tokens,
            settings.chunk_overlap,
            embedder.max_tokens,
        )
        fts_s, mean_chars = build_fts(db, size, corpus, chars, seed, log)
        log(f"  built in {fts_s:.0f}s")
    spec = plan(settings.faiss_factory, size)
    recall_qs = list(dict.fromkeys(corpus.questions))[: max(len(qs), RECALL_QUERIES)]
    data = embedded_vectors(corpus, embedder, recall_qs, workdir, seed, log)
    log(
        f"  {size:,} synthetic vectors into qa's VectorIndex ({spec}): around "
        f"{len(data.base):,} real sentence embeddings (cosine {data.neighbour_cosine:.2f} to "
        "them, as a real sentence to its nearest neighbour); queries: real question embeddings"
    )
    t = time.perf_counter()
    layer, raw, ann_s, ann_mb = build_vectors(
        size, data, settings.faiss_factory, workdir=directory, log=log
    )
    vectors_s = time.perf_counter() - t
    log(f"  added in {vectors_s:.0f}s (qa's index: {ann_s:.0f}s, {ann_mb:.0f} MiB)")
    rvecs = data.queries(len(recall_qs))
    qvecs = rvecs[: len(qs)]
    truth = exact_top(raw, data, size, rvecs, RECALL_K)
    recall = ann_recall(layer, rvecs, truth)
    log(f"  recall@{RECALL_K} against exact search ({len(rvecs)} questions): {recall:.3f}")
    sweep = breadth_sweep(layer, rvecs, truth, qvecs, depth, log)
    faiss_path = directory / "qa-vectors.faiss"
    layer.save(faiss_path)
    faiss_bytes = faiss_path.stat().st_size
    faiss_path.unlink()
    store = Store(db) if fts else None
    conn = sqlite3.connect(db, check_same_thread=False) if fts else None
    memory = Store(db, bm25="memory") if fts else None
    memory_s = memory_mb = math.nan
    agreement = math.nan
    if fts:
        memory.memory_path.unlink(missing_ok=True)  # always timed from scratch
        before, t = rss_mb(), time.perf_counter()
        memory.memory_bm25()
        memory_s, memory_mb = time.perf_counter() - t, rss_mb() - before
        log(f"  in-memory BM25 built (and saved) in {memory_s:.0f}s, +{memory_mb:.0f} MiB")
        agreement = bm25_agreement(store, memory, qs, depth)
        log(f"  in-memory BM25's top {depth} against FTS5's: {agreement:.4f} the same")
    resident = rss_mb()
    matches = [fts_query(q) for q in qs]
    engines = {"fts5": store, "memory": memory}

    def t_fts(i):
        if matches[i]:
            conn.execute(FTS_SQL, (matches[i], depth)).fetchall()

    def t_hybrid(i, engine):
        lists = {"dense": layer.search(qvecs[i], depth), "bm25": engine.bm25(qs[i], depth)}
        ranked = fuse(lists)[:k]
        engine.chunks([cid for cid, _, _ in ranked])

    ops = {"vector": lambda i: layer.search(qvecs[i], depth)}
    if raw is not None:
        ops["faiss"] = lambda i: raw.search(qvecs[i : i + 1], depth)
    if fts:
        ops.update(
            fts=t_fts,
            bm25=lambda i: store.bm25(qs[i], depth),
            bm25_memory=lambda i: memory.bm25(qs[i], depth),
            hybrid_fts5=lambda i: t_hybrid(i, engines["fts5"]),
            hybrid_memory=lambda i: t_hybrid(i, engines["memory"]),
        )
    try:
        med, cpu = time_both(ops, len(qs), repeats, warm=5, log=log)
    finally:
        if fts:
            store.close()
            memory.close()
            conn.close()
    nan = np.full(len(qs), np.nan)
    for name in ("faiss", "fts", "bm25", "bm25_memory", "hybrid_fts5", "hybrid_memory"):
        med.setdefault(name, nan)
    engine = settings.bm25
    if engine == "auto":  # as Store.engine() decides it
        engine = "memory" if size >= BM25_MEMORY_MIN else "fts5"
    med["hybrid"] = med[f"hybrid_{engine}"]
    cpu_p50 = {name: float(np.median(v)) for name, v in cpu.items()}
    cpu_p50["hybrid"] = cpu_p50.get(f"hybrid_{engine}", math.nan)
    log(
        f"  {size:,} chunks, {layer.spec}: ann_recall_at_10 {recall:.3f} (goal >= .98), "
        f"vector_p50_ms {np.percentile(med['vector'], 50):.1f} (<= 20), hybrid_p50_ms "
        f"{np.percentile(med['hybrid'], 50):.1f} (<= 100, BM25 engine {engine}; fts5 "
        f"{np.percentile(med['hybrid_fts5'], 50):.1f}, memory "
        f"{np.percentile(med['hybrid_memory'], 50):.1f}), bm25_p50_ms fts5 "
        f"{np.percentile(med['bm25'], 50):.1f} / memory "
        f"{np.percentile(med['bm25_memory'], 50):.1f}, qa index build {ann_s:.0f} s, "
        f"+{ann_mb:.0f} MiB, RSS {resident:.0f} MiB; CPU p50 ms: vector "
        f"{cpu_p50['vector']:.1f}, hybrid {cpu_p50['hybrid']:.1f}"
    )
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
        spec=layer.spec,
        ann_recall_at_10=recall,
        ann_build_seconds=ann_s,
        ann_rss_mb=ann_mb,
        faiss_bytes=faiss_bytes,
        hybrid_ms=Latency.of(med["hybrid"]),
        bm25_engine=engine,
        bm25_memory_ms=Latency.of(med["bm25_memory"]),
        hybrid_fts5_ms=Latency.of(med["hybrid_fts5"]),
        hybrid_memory_ms=Latency.of(med["hybrid_memory"]),
        bm25_memory_seconds=memory_s,
        bm25_memory_rss_mb=memory_mb,
        bm25_memory_agreement=agreement,
        recall_queries=len(rvecs),
        cpu_p50_ms=cpu_p50,
        sweep=tuple(sweep),
        synthetic=(
            f"{size:,} vectors around {len(data.base):,} real sentence embeddings plus noise "
            f"of their covariance (cosine {data.neighbour_cosine:.2f} to them); queries: real "
            "question embeddings"
        ),
    )
