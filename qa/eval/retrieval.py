"""Retrieval evaluation: index a data set's passages through the normal `qa` pipeline
(one text file per passage, `Index.sync`), run its questions through `Index.search`,
and score the rankings.

The index lives in a cache folder named by the data set and a hash of everything that
changes it (passages, embedder, chunking, FAISS type), so a second run reuses it.
"""

from __future__ import annotations

import hashlib
import json
import re
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from qa.config import Settings
from qa.eval.datasets import Dataset, Question
from qa.eval.metrics import mean, ndcg_at_k, percentile, recall_at_k, reciprocal_rank
from qa.eval.progress import bar
from qa.index.core import Index
from qa.index.manifest import FORMAT_VERSION
from qa.models.embedder import Embedder, get_embedder

K = 20  # results scored per question
RECALL_KS = (1, 5, 10, 20)
PASSAGE_DEPTH = 3  # chunks fetched per passage scored, for data sets judged by passage
# retriever name -> (Index.search mode, fusion or None for the settings' default)
RETRIEVERS: dict[str, tuple[str, str | None]] = {
    "dense": ("dense", None),
    "bm25": ("bm25", None),
    "hybrid": ("hybrid", None),
    "hybrid-rrf": ("hybrid", "rrf"),
    "hybrid-weighted": ("hybrid", "weighted"),
}
STAMP = "eval.json"

Log = Callable[[str], None]


def _stderr(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


@dataclass(frozen=True)
class Item:
    """One retrieved chunk, reduced to what judging needs."""

    source: str
    start: int
    end: int


@dataclass(frozen=True)
class QuestionResult:
    qid: str
    relevance: tuple[bool, ...]  # per ranked item (chunk, or passage when judged by passage)
    n_relevant: int
    retrieved: tuple[str, ...]  # passage id of each ranked item
    seconds: float = 0.0  # the search call (query vector embedded ahead, see QueryCache)


@dataclass(frozen=True)
class RetrievalScores:
    dataset: str
    retriever: str
    questions: int
    passages: int
    chunks: int
    recall: dict[int, float]
    mrr10: float
    ndcg10: float
    seconds: float
    curve: tuple[float, ...] = ()  # recall@1 .. recall@K
    search_p50: float | None = None  # seconds per search call
    search_p95: float | None = None

    def to_dict(self) -> dict:
        return {
            "dataset": self.dataset,
            "retriever": self.retriever,
            "questions": self.questions,
            "passages": self.passages,
            "chunks": self.chunks,
            **{f"recall@{k}": round(v, 4) for k, v in self.recall.items()},
            "mrr@10": round(self.mrr10, 4),
            "ndcg@10": round(self.ndcg10, 4),
            "seconds": round(self.seconds, 2),
            "search_p50_ms": _ms(self.search_p50),
            "search_p95_ms": _ms(self.search_p95),
            "recall_curve": [round(v, 4) for v in self.curve],
        }


def _ms(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds * 1000, 2)


# ------------------------------------------------------------------------------ judging


def judge(items: Sequence[Item], question: Question, match: str, pid_of: dict[str, str]):
    """(relevance per ranked item, number of relevant items, passage id per item).

    With match "passage", items are first reduced to distinct passages, in rank order."""
    pids = [pid_of.get(it.source, "") for it in items]
    if match == "passage":
        ranked = list(dict.fromkeys(pids))
        relevant = set(question.relevant)
        return tuple(p in relevant for p in ranked), len(relevant), tuple(ranked)
    rel = []
    for it, pid in zip(items, pids, strict=True):
        if match == "contains":
            ok = any(
                s.pid == pid and it.start <= s.start and s.end <= it.end for s in question.spans
            )
        else:  # overlaps
            ok = any(s.pid == pid and it.start < s.end and s.start < it.end for s in question.spans)
        rel.append(ok)
    return tuple(rel), (1 if question.spans else 0), tuple(pids)


def score(
    dataset: Dataset,
    retriever: str,
    results: Sequence[QuestionResult],
    chunks: int = 0,
    seconds: float = 0.0,
) -> RetrievalScores:
    answerable = [r for r in results if r.n_relevant > 0]
    timed = [r.seconds for r in results if r.seconds > 0]
    return RetrievalScores(
        dataset=dataset.name,
        retriever=retriever,
        questions=len(answerable),
        passages=len(dataset.passages),
        chunks=chunks,
        recall={
            k: mean([recall_at_k(r.relevance, k, r.n_relevant) for r in answerable])
            for k in RECALL_KS
        },
        mrr10=mean([reciprocal_rank(r.relevance, 10) for r in answerable]),
        ndcg10=mean([ndcg_at_k(r.relevance, 10, r.n_relevant) for r in answerable]),
        seconds=seconds,
        curve=tuple(
            mean([recall_at_k(r.relevance, k, r.n_relevant) for r in answerable])
            for k in range(1, K + 1)
        ),
        search_p50=percentile(timed, 50),
        search_p95=percentile(timed, 95),
    )


# ------------------------------------------------------------------------------ the index


class QueryCache:
    """An embedder that answers from vectors computed ahead in batches (`prime`),
    so evaluating several retrievers embeds each question once, and fast."""

    def __init__(self, base: Embedder) -> None:
        self.base = base
        self._vectors: dict[str, np.ndarray] = {}

    @property
    def name(self) -> str:
        return self.base.name

    @property
    def dimension(self) -> int:
        return self.base.dimension

    @property
    def max_tokens(self) -> int:
        return self.base.max_tokens

    def prime(self, texts: Sequence[str], batch: int = 512) -> None:
        todo = [t for t in dict.fromkeys(texts) if t not in self._vectors]
        for i in range(0, len(todo), batch):
            part = todo[i : i + batch]
            for text, vec in zip(part, self.base.embed(part), strict=True):
                self._vectors[text] = vec

    def clear(self) -> None:
        """Forget the primed vectors (so timed questions embed their query as in real use)."""
        self._vectors.clear()

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        if texts and all(t in self._vectors for t in texts):
            return np.vstack([self._vectors[t] for t in texts])
        return self.base.embed(texts)

    def token_spans(self, texts: Sequence[str]):
        return self.base.token_spans(texts)


@dataclass
class EvalIndex:
    index: Index
    pid_of: dict[str, str]  # index source -> passage id
    directory: Path
    embedder: QueryCache


def settings_key(dataset: Dataset, settings: Settings) -> str:
    """A short hash of everything that shapes the index of this data set."""
    h = hashlib.sha256()
    for p in dataset.passages:
        h.update(f"{p.pid}\0{p.title}\0{p.text}\0".encode())
    h.update(
        json.dumps(
            [
                FORMAT_VERSION,
                settings.embed_model,
                settings.chunk_tokens,
                settings.chunk_overlap,
                settings.faiss_factory,
                settings.build_backend(),
            ]
        ).encode()
    )
    return h.hexdigest()[:12]


def default_cache_root() -> Path:
    return Path.home() / ".cache" / "qa" / "eval"


def cache_dir(dataset: Dataset, settings: Settings, root: str | Path | None = None) -> Path:
    """`<root>/<dataset>-<hash>`, root defaulting to ~/.cache/qa/eval."""
    root = Path(root).expanduser() if root is not None else default_cache_root()
    return root / f"{dataset.name}-{settings_key(dataset, settings)}"


def _file_name(title: str, pid: str) -> str:
    slug = re.sub(r"[^\w]+", "_", title).strip("_")[:60] or "passage"
    return f"{slug}-{pid}.txt"


def open_index(
    dataset: Dataset,
    settings: Settings | None = None,
    cache: str | Path | None = None,
    embedder: Embedder | None = None,
    log: Log = _stderr,
) -> EvalIndex:
    """The data set's index, built (or finished, if an earlier run stopped) or reused."""
    settings = settings or Settings.load()
    directory = cache_dir(dataset, settings, cache)
    docs, index_dir = directory / "docs", directory / "index"
    key = settings_key(dataset, settings)
    embedder = QueryCache(embedder or get_embedder(settings.embed_model))
    settings = settings.with_(index_dir=index_dir)
    names = {p.pid: _file_name(p.title, p.pid) for p in dataset.passages}
    stamp = directory / STAMP
    done = (
        stamp.is_file()
        and json.loads(stamp.read_text()).get("key") == key
        and (index_dir / "manifest.json").is_file()
    )
    if not done:
        docs.mkdir(parents=True, exist_ok=True)
        for p in dataset.passages:
            path = docs / names[p.pid]
            data = p.text.encode("utf-8")
            if not path.is_file() or path.read_bytes() != data:
                path.write_bytes(data)
        log(f"indexing {len(dataset.passages)} {dataset.name} passages in {directory} ...")
        t0 = time.perf_counter()
        index = Index.open(index_dir, settings=settings, embedder=embedder, create=True)
        report = index.sync([docs], progress=_progress(log))
        log(f"indexed: {report.summary()} ({time.perf_counter() - t0:.0f}s)")
        stamp.write_text(json.dumps({"key": key, "dataset": dataset.name}) + "\n")
    else:
        index = Index.open(index_dir, settings=settings, embedder=embedder)
    pid_of = {index.source_for(docs / name): pid for pid, name in names.items()}
    return EvalIndex(index, pid_of, directory, embedder)


def _progress(log: Log):
    state = {"last": 0.0}

    def report(event: str, n: int, total: int | None) -> None:
        now = time.perf_counter()
        if event == "files" and total and (now - state["last"] > 15 or n == total):
            state["last"] = now
            log(f"  {n}/{total} files")

    return report


# ------------------------------------------------------------------------------ running


def run_questions(
    ev: EvalIndex, dataset: Dataset, retriever: str, k: int = K
) -> list[QuestionResult]:
    """Search every answerable question with one retriever and judge the top results."""
    mode, fusion = RETRIEVERS[retriever]
    depth = k * PASSAGE_DEPTH if dataset.match == "passage" else k
    questions = [q for q in dataset.questions if q.answerable]
    if mode != "bm25":
        ev.embedder.prime([q.text for q in questions])
    out = []
    for q in bar(questions, len(questions), retriever):
        t0 = time.perf_counter()
        hits = ev.index.search(q.text, k=depth, mode=mode, fusion=fusion)
        seconds = time.perf_counter() - t0
        items = [Item(h.source, h.start, h.end) for h in hits]
        rel, n_rel, pids = judge(items, q, dataset.match, ev.pid_of)
        out.append(QuestionResult(q.qid, rel[:k], n_rel, pids[:k], seconds))
    return out


def evaluate(
    ev: EvalIndex, dataset: Dataset, retrievers: Sequence[str], k: int = K, log: Log = _stderr
) -> list[tuple[RetrievalScores, list[QuestionResult]]]:
    """Scores (and per-question results) for each retriever, in order."""
    out = []
    chunks = len(ev.index)
    for name in retrievers:
        t0 = time.perf_counter()
        results = run_questions(ev, dataset, name, k)
        seconds = time.perf_counter() - t0
        log(f"{name}: {len(results)} questions in {seconds:.0f}s")
        out.append((score(dataset, name, results, chunks, seconds), results))
    return out
