"""`qa bench index`: the whole indexing pipeline on each embedder backend versus raw torch.

Index real prose with `Index.build` (load, chunk, embed, SQLite, FAISS) on each backend
(torch, onnx, ...), then encode exactly the chunks it made with the raw library,
`SentenceTransformer.encode` on torch (same batch size, normalized), all with the same
number of threads. Runs rotate and repeat; each backend's figure is the median over rounds
of pipeline chunks/s / raw torch encode chunks/s. The target, for the default backend, is
>= 2x raw torch encode. Model loading (and the one-time ONNX export) is excluded.
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
    timed_build,
)
from qa.bench.data import Corpus, article_texts, load_corpus, write_texts
from qa.config import DEFAULT_EMBED_BACKEND, EMBED_BACKENDS, Settings
from qa.errors import BadInput
from qa.index.core import Index
from qa.index.manifest import database_of

INDEX_TARGET = 2.0  # default-backend pipeline chunks/s >= 2 x raw torch encode
DEFAULT_CHUNKS = 2000
DEFAULT_BACKENDS = ("torch", "onnx")


@dataclass(frozen=True)
class BackendRun:
    """One backend's pipeline runs (seconds per round) and where their time went."""

    backend: str
    pipeline_seconds: tuple[float, ...]
    embed_seconds: float  # medians over rounds
    tokenize_seconds: float
    chunks: int

    def ratio(self, raw_seconds: tuple[float, ...]) -> float:
        """Median over rounds of pipeline throughput / raw torch encode throughput."""
        pairs = zip(raw_seconds, self.pipeline_seconds, strict=True)
        return statistics.median(raw / pipe for raw, pipe in pairs)

    @property
    def chunks_per_s(self) -> float:
        return self.chunks / statistics.median(self.pipeline_seconds)


@dataclass(frozen=True)
class IndexResult:
    """The default backend's pipeline against raw torch encode (the summary's row), with
    every backend measured in the same rounds in `backends`."""

    corpus: str
    documents: int
    chunks: int
    repeats: int
    batch_size: int
    chunk_tokens: int
    raw_seconds: tuple[float, ...]
    pipeline_seconds: tuple[float, ...]
    # where the default pipeline's time went (medians over runs, seconds)
    embed_seconds: float
    tokenize_seconds: float
    other_seconds: float
    footprint: Footprint  # its peak RSS: the process's peak during the timed runs
    backend: str = DEFAULT_EMBED_BACKEND
    threads: int = 0
    backends: tuple[BackendRun, ...] = ()
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
        """Median over rounds of pipeline throughput / raw throughput."""
        pairs = zip(self.raw_seconds, self.pipeline_seconds, strict=True)
        return statistics.median(raw / pipe for raw, pipe in pairs)

    @property
    def passed(self) -> bool:
        return self.ratio >= self.target

    def to_dict(self) -> dict:
        d = asdict(self)
        d["footprint"]["bytes_per_chunk"] = self.footprint.bytes_per_chunk
        for run, b in zip(self.backends, d["backends"], strict=True):
            b.update(chunks_per_s=run.chunks_per_s, ratio=run.ratio(self.raw_seconds))
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
    backends: tuple[str, ...] = DEFAULT_BACKENDS,
    threads: int | None = None,
    embedder=None,
    settings: Settings | None = None,
    profile: bool = False,
    log=log,
) -> IndexResult:
    """Each backend's pipeline (`Index.build`) versus raw torch `encode` on the same chunks
    (`embedder`: measure that one embedder's pipeline alone, on its own backend)."""
    from qa.models.embedder import SentenceTransformerEmbedder, backend_of, make_embedder

    if embedder is not None:
        backends = (backend_of(embedder),)

    if repeats < 1 or chunks < 1:
        raise BadInput("--repeats and --chunks must be at least 1")
    unknown = [b for b in backends if b not in EMBED_BACKENDS]
    if unknown or not backends:
        raise BadInput(f"--backends takes some of {', '.join(EMBED_BACKENDS)}, not {unknown}")
    workdir = Path(workdir)
    corpus = corpus or load_corpus()
    settings = bench_settings(settings, workdir / "index-bench" / "index")
    threads = threads or settings.threads
    raw = SentenceTransformerEmbedder(settings.embed_model, threads=threads)
    if embedder is not None:
        embedders = {backends[0]: embedder}
    else:
        embedders = {b: make_embedder(settings.embed_model, b, threads=threads) for b in backends}
    default = DEFAULT_EMBED_BACKEND if DEFAULT_EMBED_BACKEND in backends else backends[0]
    docs_dir = workdir / "index-bench" / "docs"
    if docs_dir.exists():
        shutil.rmtree(docs_dir)

    log(f"index bench: loading the models, warming up ({threads} threads each) ...")
    raw_encode(raw, corpus.paragraphs[:16])  # load + first-call costs
    per_chunk = calibrate(article_texts(corpus, 40_000), raw, settings)
    paths = write_texts(article_texts(corpus, chunks * per_chunk, docs), docs_dir)
    warm = workdir / "index-bench" / "warm"
    write_texts(corpus.paragraphs[:4], warm)
    for b, emb in embedders.items():
        emb.embed(corpus.paragraphs[:16])
        Index.build(
            [warm],
            workdir / "index-bench" / f"warm-{b}",
            settings=settings.with_(embed_backend=b),
            embedder=emb,
        ).close()

    reset_peak_rss()
    raw_s: list[float] = []
    pipe_s: dict[str, list[float]] = {b: [] for b in backends}
    embed_s: dict[str, list[float]] = {b: [] for b in backends}
    tok_s: dict[str, list[float]] = {b: [] for b in backends}
    n_chunks: dict[str, int] = {}
    texts: list[str] | None = None
    names = [*backends, "raw"]
    for r in range(repeats):
        order = names[r % len(names) :] + names[: r % len(names)]
        if texts is None:  # the raw run needs the chunks a pipeline made
            order = [n for n in order if n != "raw"] + ["raw"]
        for what in order:
            if what == "raw":
                t = time.perf_counter()
                raw_encode(raw, texts)
                raw_s.append(time.perf_counter() - t)
                log(f"  round {r + 1}/{repeats} raw torch encode: {raw_s[-1]:.1f}s")
                continue
            timed = Timed(embedders[what])
            index_dir = workdir / "index-bench" / f"index-{what}"
            index, seconds = timed_build(docs_dir, index_dir, settings, what, timed)
            pipe_s[what].append(seconds)
            index.close()
            embed_s[what].append(timed.embed_s)
            tok_s[what].append(timed.tokenize_s)
            if what not in n_chunks:
                made = chunk_texts(index_dir)
                n_chunks[what] = len(made)
                if texts is None:
                    texts = made
                elif made != texts:
                    log(f"  note: the {what} pipeline made other chunks than the first one")
            log(
                f"  round {r + 1}/{repeats} {what} pipeline: {n_chunks[what]} chunks in "
                f"{pipe_s[what][-1]:.1f}s (embed {timed.embed_s:.1f}s, tokenize "
                f"{timed.tokenize_s:.1f}s)"
            )
    peak = peak_rss_mb()
    if profile:
        log(f"profile of one {default} pipeline run:")
        log(
            cprofile(
                lambda: Index.build(
                    [docs_dir],
                    workdir / "index-bench" / f"index-{default}",
                    settings=settings.with_(embed_backend=default),
                    embedder=embedders[default],
                ).close()
            )
        )
    runs = tuple(
        BackendRun(
            b,
            tuple(pipe_s[b]),
            statistics.median(embed_s[b]),
            statistics.median(tok_s[b]),
            n_chunks[b],
        )
        for b in backends
    )
    main = next(run for run in runs if run.backend == default)
    pipe_med = statistics.median(main.pipeline_seconds)
    return IndexResult(
        corpus=corpus.origin,
        documents=len(paths),
        chunks=main.chunks,
        repeats=repeats,
        batch_size=raw.batch_size,
        chunk_tokens=settings.chunk_tokens,
        raw_seconds=tuple(raw_s),
        pipeline_seconds=main.pipeline_seconds,
        embed_seconds=main.embed_seconds,
        tokenize_seconds=main.tokenize_seconds,
        other_seconds=max(0.0, pipe_med - main.embed_seconds - main.tokenize_seconds),
        footprint=footprint(workdir / "index-bench" / f"index-{default}", main.chunks, peak),
        backend=default,
        threads=threads,
        backends=runs,
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
    raw_med = statistics.median(r.raw_seconds)
    lines = [
        f"Indexing: {r.chunks} chunks from {r.documents} {r.corpus} documents, "
        f"{r.repeats} rotating rounds, medians; batch {r.batch_size}, "
        f"{r.chunk_tokens}-token chunks, {r.threads} threads for every backend",
        f"  {'':38}{'chunks/s':>10}{'seconds':>10}{'/ raw':>8}",
        f"  {'raw torch SentenceTransformer.encode':38}{r.raw_chunks_per_s:>10.1f}"
        f"{raw_med:>10.2f}{1.0:>8.2f}",
    ]
    for run in r.backends:
        label = f"qa index pipeline, {run.backend}" + (
            " (default)" if run.backend == r.backend else ""
        )
        med = statistics.median(run.pipeline_seconds)
        lines += [
            f"  {label:38}{run.chunks_per_s:>10.1f}{med:>10.2f}{run.ratio(r.raw_seconds):>8.2f}",
            f"    {'of which embedding':36}{'':>10}{run.embed_seconds:>10.2f}",
            f"    {'of which tokenizing (chunking)':36}{'':>10}{run.tokenize_seconds:>10.2f}",
            f"    {'other (load, SQLite, FAISS)':36}{'':>10}"
            f"{max(0.0, med - run.embed_seconds - run.tokenize_seconds):>10.2f}",
        ]
    lines += [
        f"  {r.backend} pipeline / raw torch encode = {r.ratio:.3f}  "
        f"(target >= {r.target}: {mark(r.passed)})",
        f"  index size {mib(f.sqlite_bytes + f.faiss_bytes):.1f} MiB "
        f"(SQLite {mib(f.sqlite_bytes):.1f}, FAISS {mib(f.faiss_bytes):.1f}) = "
        f"{f.bytes_per_chunk:,.0f} bytes/chunk; peak RSS {f.peak_rss_mb:.0f} MiB "
        "(all backends loaded in one process)",
    ]
    return "\n".join(lines)
