"""The learned evidence scorer: which retrieved sentence answers, and whether any does.

Two small logistic models over signals that are each weak alone, fitted on the train part of
the reader's split by `qa train combiner` (see `qa.train.combiner`) and stored beside the
reader as `models/reader/combiner.json`:

- the sentence model scores every sentence of the retrieved passages from the reader's
  probability that it answers (and how it compares with the best), the embedding similarity
  and question-term coverage, the passage's rank, whether the reader's span lies in it;
- the answerability model gives the probability that the best sentence answers the question,
  from the best sentence's score, its margin over the runner-up, the reader's best
  probability, the embedding similarity and whether the question's names occur in the
  passages. The answer is refused below a threshold calibrated on the train part's held-out
  slice.

`features()` computes the same signals at training and at answer time, so the two cannot
drift apart.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from qa.answer.evidence import Sentence, candidates, coverage, rank_evidence, specifics, terms
from qa.errors import ModelNotFound
from qa.records import Hit

log = logging.getLogger(__name__)

FORMAT = "qa-combiner"
FORMAT_VERSION = 1
FILE_NAME = "combiner.json"

SENTENCE_FEATURES = (
    "reader_logit",  # the reader's log-odds that the sentence answers
    "reader_margin",  # reader_logit minus the best reader_logit of all sentences
    "reader_top_in_passage",  # 1 if it is the reader's best sentence of its passage
    "span_score",  # the reader's short-answer score, if the span lies in this sentence
    "dense",  # cosine similarity to the question
    "dense_margin",  # dense minus the best dense
    "lexical",  # share of the question's terms it contains
    "passage_rank",  # 1 / (1 + rank of its passage in the hybrid search)
    "length",  # log of its length in characters, / 6
)
QUESTION_FEATURES = (
    "best",  # the sentence model's log-odds for the best sentence
    "gap",  # best minus the runner-up
    "reader_best",  # the best reader_logit
    "dense_best",  # the best cosine similarity
    "names_found",  # share of the question's names and numbers found in the passages
    "passage_coverage",  # share of the question's terms in the best passage
)
LOGIT_CLIP = 8.0


def logit(p: float) -> float:
    p = min(max(p, 1e-6), 1 - 1e-6)
    return max(-LOGIT_CLIP, min(LOGIT_CLIP, math.log(p / (1 - p))))


@dataclass(frozen=True)
class Features:
    """The signals of one question's retrieved sentences (rows of `matrix`, in the order of
    `sentences`), with what answering needs from the reading: per sentence, the passage it was
    read in and the reader's `Reading` of that passage (its short answer, yes/no)."""

    sentences: tuple[Sentence, ...]
    matrix: np.ndarray  # (n sentences, len(SENTENCE_FEATURES))
    names_found: float
    passage_coverage: float
    readings: tuple[tuple[Hit, object], ...]  # per sentence: (hit, qa.models.reader.Reading)
    # the similarity heuristics' score of their best sentence (`Sentence.score` before the
    # reader's probabilities replace it): what their answerability starts from
    similarity_best: float = 0.0


def features(
    question: str,
    hits: Sequence[Hit],
    text_of: Callable[[str], str],
    embedder,
    reader,
) -> Features:
    """Read `hits` against `question` and compute every sentence's signals."""
    sentences = rank_evidence(question, candidates(hits, text_of), embedder)
    if not sentences:
        return Features((), np.zeros((0, len(SENTENCE_FEATURES))), 0.0, 0.0, ())
    by_hit: dict[int, list[int]] = {}
    for i, s in enumerate(sentences):
        by_hit.setdefault(s.rank, []).append(i)
    # a sentence of overlapping passages is read in the passage it was first found in
    order = sorted(by_hit)
    passages = []
    for rank in order:
        hit = hits[rank]
        idx = sorted(by_hit[rank], key=lambda i: sentences[i].start)
        by_hit[rank] = idx
        text = text_of(hit.source)[hit.start : hit.end]
        passages.append(
            (text, [(sentences[i].start - hit.start, sentences[i].end - hit.start) for i in idx])
        )
    readings = reader.read(question, passages)
    n = len(sentences)
    prob = np.zeros(n)
    top = np.zeros(n)
    span_score = np.zeros(n)
    read_in: list = [None] * n
    for rank, reading in zip(order, readings, strict=True):
        hit = hits[rank]
        best = reading.best
        for i, scored in zip(by_hit[rank], reading.sentences, strict=True):
            prob[i] = scored.prob
            read_in[i] = (hit, reading)
            if best is not None and scored.index == best.index:
                top[i] = 1.0
                a, b = hit.start + reading.span_start, hit.start + reading.span_end
                s = sentences[i]
                if reading.span_end > reading.span_start and s.start <= a < b <= s.end:
                    span_score[i] = reading.span_score
    logits = np.array([logit(p) for p in prob])
    dense = np.array([s.dense for s in sentences])
    matrix = np.stack(
        [
            logits,
            logits - logits.max(),
            top,
            span_score,
            dense,
            dense - dense.max(),
            np.array([s.lexical for s in sentences]),
            np.array([1.0 / (1 + s.rank) for s in sentences]),
            np.array([math.log(max(1, s.end - s.start)) / 6 for s in sentences]),
        ],
        axis=1,
    )
    similarity_best = max(s.score for s in sentences)
    sentences = tuple(replace(s, score=float(p)) for s, p in zip(sentences, prob, strict=True))
    names = specifics(question)
    found: set[str] = set()
    for hit in hits:
        found |= set(terms(hit.text))
    names_found = sum(1 for t in names if t in found) / len(names) if names else 1.0
    passage_cov = coverage(terms(question), set(terms(hits[0].text))) if hits else 0.0
    return Features(sentences, matrix, names_found, passage_cov, tuple(read_in), similarity_best)


def question_row(f: Features, z: np.ndarray) -> np.ndarray:
    """The answerability model's inputs, given the sentence model's log-odds `z`."""
    ordered = np.sort(z)[::-1]
    best = float(ordered[0]) if len(ordered) else -LOGIT_CLIP
    second = float(ordered[1]) if len(ordered) > 1 else best - LOGIT_CLIP
    reader_best = float(f.matrix[:, 0].max()) if len(z) else -LOGIT_CLIP
    dense_best = float(f.matrix[:, 4].max()) if len(z) else 0.0
    return np.array(
        [best, best - second, reader_best, dense_best, f.names_found, f.passage_coverage]
    )


@dataclass(frozen=True)
class Logistic:
    """A standardised logistic model: p = sigmoid(((x - mean) / scale) @ weights + bias)."""

    names: tuple[str, ...]
    mean: np.ndarray
    scale: np.ndarray
    weights: np.ndarray
    bias: float

    def logits(self, x: np.ndarray) -> np.ndarray:
        x = np.atleast_2d(x)
        return ((x - self.mean) / self.scale) @ self.weights + self.bias

    def probs(self, x: np.ndarray) -> np.ndarray:
        return 1.0 / (1.0 + np.exp(-self.logits(x)))

    def to_dict(self) -> dict:
        return {
            "features": list(self.names),
            "mean": [round(float(v), 6) for v in self.mean],
            "scale": [round(float(v), 6) for v in self.scale],
            "weights": [round(float(v), 6) for v in self.weights],
            "bias": round(float(self.bias), 6),
        }

    @classmethod
    def from_dict(cls, d: dict, names: Sequence[str]) -> Logistic:
        if tuple(d["features"]) != tuple(names):
            raise ValueError(f"features {d['features']} are not {list(names)}")
        return cls(
            tuple(names),
            np.array(d["mean"], dtype=float),
            np.array(d["scale"], dtype=float),
            np.array(d["weights"], dtype=float),
            float(d["bias"]),
        )


def fit_logistic(
    x: np.ndarray, y: np.ndarray, names: Sequence[str], l2: float = 1.0, iterations: int = 50
) -> Logistic:
    """Maximum likelihood with an L2 penalty (Newton's method: a few features, exact)."""
    x = np.asarray(x, dtype=float)
    y = np.asarray(y, dtype=float)
    mean = x.mean(axis=0)
    scale = x.std(axis=0)
    scale[scale < 1e-9] = 1.0
    z = np.hstack([(x - mean) / scale, np.ones((len(x), 1))])
    w = np.zeros(z.shape[1])
    penalty = np.full(z.shape[1], l2)
    penalty[-1] = 0.0  # the bias is not shrunk
    for _ in range(iterations):
        p = 1.0 / (1.0 + np.exp(-(z @ w)))
        grad = z.T @ (p - y) + penalty * w
        hess = (z * (p * (1 - p))[:, None]).T @ z + np.diag(penalty + 1e-9)
        step = np.linalg.solve(hess, grad)
        w -= step
        if np.abs(step).max() < 1e-8:
            break
    return Logistic(tuple(names), mean, scale, w[:-1], float(w[-1]))


@dataclass(frozen=True)
class Scored:
    """A question's sentences ranked by the sentence model (`score` = its probability), and
    the probability that the best one answers."""

    ranked: tuple[Sentence, ...]
    answerability: float
    order: tuple[int, ...]  # indices into Features.sentences, best first


@dataclass(frozen=True)
class Combiner:
    """The two fitted models and the thresholds calibrated for them (combiner.json)."""

    sentence: Logistic
    question: Logistic
    thresholds: dict[str, float]
    manifest: dict

    def score(self, f: Features) -> Scored:
        if not f.sentences:
            return Scored((), 0.0, ())
        z = self.sentence.logits(f.matrix)
        p = 1.0 / (1.0 + np.exp(-z))
        order = sorted(range(len(z)), key=lambda i: (-z[i], f.sentences[i].rank, i))
        ranked = tuple(replace(f.sentences[i], score=float(p[i])) for i in order)
        answerable = float(self.question.probs(question_row(f, z))[0])
        return Scored(ranked, answerable, tuple(order))

    @classmethod
    def load(cls, folder: str | Path) -> Combiner:
        path = Path(folder) / FILE_NAME
        if not path.is_file():
            raise ModelNotFound(f"no evidence scorer at {path}: run `qa train combiner`")
        try:
            d = json.loads(path.read_text(encoding="utf-8"))
            if d.get("format") != FORMAT or d.get("format_version") != FORMAT_VERSION:
                raise ValueError(f"not a {FORMAT} file of version {FORMAT_VERSION}")
            return cls(
                Logistic.from_dict(d["sentence_model"], SENTENCE_FEATURES),
                Logistic.from_dict(d["answerability_model"], QUESTION_FEATURES),
                {k: float(v) for k, v in d["thresholds"].items() if isinstance(v, int | float)},
                d,
            )
        except (ValueError, KeyError, TypeError) as exc:
            raise ModelNotFound(f"unreadable evidence scorer {path}: {exc}") from None


_LOADED: dict[str, Combiner | None] = {}


def for_reader(reader) -> Combiner | None:
    """The evidence scorer fitted for `reader` (its folder's combiner.json), or None if the
    reader has none (or one fitted for other weights): answers then use the heuristics to
    choose and refuse, and the reader only for the short answer."""
    folder = getattr(reader, "folder", None)
    if folder is None:
        return None
    key = str(folder)
    if key not in _LOADED:
        try:
            scorer = Combiner.load(folder)
        except ModelNotFound as exc:
            log.warning("%s", exc)
            scorer = None
        if scorer is not None:
            expected = scorer.manifest.get("reader_weights_sha256")
            actual = reader.manifest.get("weights_sha256")
            if expected != actual:
                log.warning(
                    "the evidence scorer in %s was fitted for other reader weights: "
                    "run `qa train combiner`",
                    folder,
                )
                scorer = None
        _LOADED[key] = scorer
    return _LOADED[key]
