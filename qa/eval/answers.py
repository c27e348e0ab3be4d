"""Answer evaluation: ask every sampled question with `qa.ask` (hybrid retrieval, the
product's own path) against the data set's index, and judge the answers and their citations.

- SQuAD: official exact match and token F1 (a refusal scores 0), and whether the answer
  contains a gold answer; a citation is correct when its span is in the gold paragraph and
  holds the answer (a gold answer span inside it, or a gold answer's text in its quote).
- CLAPnq: token F1 against the gold long answer; a citation is correct when it is in the gold
  passage and overlaps one of the gold sentences; refusals on both kinds of questions.

Loose citation precision counts a citation of the gold passage (paragraph) as correct.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

from qa.eval.datasets import Dataset, Question
from qa.eval.metrics import (
    citation_precision,
    citation_recall,
    contains_answer,
    exact_match,
    mean,
    percentile,
    strip_markers,
    token_f1,
)
from qa.eval.progress import bar
from qa.eval.refusal import RefusalScores, refusal_scores
from qa.eval.retrieval import EvalIndex
from qa.records import Answer, Citation

MODES = ("none", "extractive", "llm")
STAGES = ("retrieve", "prompt", "first_token", "generate", "verify", "total")
# Engine switches (`qa.answer.Options` fields) to compare with `qa eval --variant NAME`.
VARIANTS: dict[str, dict] = {
    "default": {},
    "examples": {"examples": True},
    "best-first": {"best_last": False},
    "four-sources": {"max_sources": 4},
    "two-sources": {"max_sources": 2},
    "passages": {"style": "passages", "max_sources": None},
    "grammar": {"grammar": True},
    "no-fallback": {"fallback": False},
    "short-ungated": {"short_min": 0.0},  # every short answer shown: to calibrate the gate
    "heuristic-evidence": {"evidence": "heuristic"},  # similarity heuristics choose and refuse
    # the fitted evidence scorer (combiner.json) alone chooses and refuses
    "learned-evidence": {"evidence": "learned", "refusal": "scorer"},
    "reader-evidence": {"evidence": "reader"},  # the reader alone chooses and refuses
    # the fitted scorer chooses; it and the similarity heuristics may each refuse
    "learned-both": {"evidence": "learned", "refusal": "both"},
    "lexical-claims": {"claim_check": "lexical"},  # model claims: no reader support check
    "reader-claims": {"claim_check": "reader"},  # the reader's support head checks claims
}


@dataclass(frozen=True)
class CitationJudgement:
    n: int
    pid: str  # the data set passage cited ("" if the source is not one)
    in_passage: bool  # in a gold passage
    correct: bool  # in a gold passage and holding the answer (SQuAD) / a gold sentence (CLAPnq)


@dataclass(frozen=True)
class AnswerResult:
    qid: str
    question: str
    answerable: bool
    refused: bool
    text: str
    em: float | None  # None: not scored (unanswerable question, or not SQuAD)
    f1: float | None
    contains: bool | None
    citations: tuple[CitationJudgement, ...]
    timings: dict[str, float] = field(default_factory=dict)
    short: str | None = None  # the direct answer, if the answer led with one
    short_score: float | None = None  # the reader's score for it
    f1_text: float | None = None  # token F1 of the whole answer text

    def to_dict(self) -> dict:
        return {
            "id": self.qid,
            "question": self.question,
            "answerable": self.answerable,
            "refused": self.refused,
            "answer": self.text,
            "em": self.em,
            "f1": None if self.f1 is None else round(self.f1, 4),
            "contains_answer": self.contains,
            "citations": [
                {"n": c.n, "passage": c.pid, "in_gold_passage": c.in_passage, "correct": c.correct}
                for c in self.citations
            ],
            "timings": {k: round(v, 4) for k, v in self.timings.items()},
            "short": self.short,
            "short_score": None if self.short_score is None else round(self.short_score, 4),
            "f1_text": None if self.f1_text is None else round(self.f1_text, 4),
        }


@dataclass(frozen=True)
class CitationScores:
    questions: int  # answered answerable questions (the recall denominator)
    citations: int
    precision: float | None  # correct citations / citations
    precision_passage: float | None  # citations in a gold passage / citations
    recall: float | None  # answered questions with >= 1 correct citation / answered

    def to_dict(self) -> dict:
        return {
            "questions": self.questions,
            "citations": self.citations,
            "precision": _round(self.precision),
            "precision_in_gold_passage": _round(self.precision_passage),
            "recall": _round(self.recall),
        }


@dataclass(frozen=True)
class Latency:
    stage: str
    n: int
    p50: float | None  # seconds
    p95: float | None
    values: tuple[float, ...] = ()

    def to_dict(self) -> dict:
        return {
            "stage": self.stage,
            "n": self.n,
            "p50_ms": None if self.p50 is None else round(self.p50 * 1000, 1),
            "p95_ms": None if self.p95 is None else round(self.p95 * 1000, 1),
        }


@dataclass(frozen=True)
class AnswerScores:
    dataset: str
    mode: str
    model: str | None
    variant: str
    questions: int  # answerable questions asked
    answered: float | None  # share of them answered
    em: float | None  # SQuAD only
    f1: float | None  # over answerable questions, a refusal scoring 0
    f1_answered: float | None  # over the answered ones
    contains: float | None  # SQuAD: share whose answer contains a gold answer
    citations: CitationScores
    refusal: RefusalScores | None  # when the sample has unanswerable questions
    latency: tuple[Latency, ...]
    seconds: float

    def to_dict(self) -> dict:
        return {
            "dataset": self.dataset,
            "mode": self.mode,
            "model": self.model,
            "variant": self.variant,
            "retriever": "hybrid",
            "questions": self.questions,
            "answered": _round(self.answered),
            "em": _round(self.em),
            "f1": _round(self.f1),
            "f1_answered": _round(self.f1_answered),
            "contains_answer": _round(self.contains),
            "citations": self.citations.to_dict(),
            "refusal": self.refusal.to_dict() if self.refusal else None,
            "latency": [x.to_dict() for x in self.latency],
            "seconds": round(self.seconds, 1),
        }


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 4)


# ------------------------------------------------------------------------------ judging


def judge_citation(
    citation: Citation, question: Question, match: str, pid_of: dict[str, str]
) -> CitationJudgement:
    """Is this citation in a gold passage, and does it hold the evidence?

    `match` "contains" (SQuAD): a gold answer span inside the cited span, or a gold answer's
    text in the quote; "overlaps" (CLAPnq): the cited span overlaps a gold sentence (or, when
    the question has no located gold sentence, any span of the gold passage)."""
    pid = pid_of.get(citation.source, "")
    in_passage = pid in question.relevant
    spans = [s for s in question.spans if s.pid == pid]
    if not in_passage:
        correct = False
    elif match == "contains":
        correct = any(citation.start <= s.start and s.end <= citation.end for s in spans) or (
            contains_answer(citation.quote, question.answers)
        )
    elif question.spans:
        correct = any(citation.start < s.end and s.start < citation.end for s in spans)
    else:
        correct = True
    return CitationJudgement(citation.n, pid, in_passage, correct)


def judge_answer(
    answer: Answer, question: Question, match: str, pid_of: dict[str, str]
) -> AnswerResult:
    # EM and F1 score the direct answer when there is one (the reader's short answer) and
    # the gold answers are short spans (SQuAD: match "contains"), else the whole answer text
    # (CLAPnq's gold answers are long); "contains" asks whether the text holds a gold answer
    full = strip_markers(answer.text)
    short = getattr(answer, "short", None)
    text = short.text if short is not None and match == "contains" else full
    em = f1 = contains = f1_text = None
    if question.answerable:
        golds = list(question.answers)
        f1 = 0.0 if answer.refused else token_f1(text, golds)
        f1_text = 0.0 if answer.refused else token_f1(full, golds)
        if match == "contains":
            em = 0.0 if answer.refused else exact_match(text, golds)
            contains = not answer.refused and contains_answer(full, golds)
    citations = tuple(judge_citation(c, question, match, pid_of) for c in answer.citations)
    return AnswerResult(
        question.qid,
        question.text,
        question.answerable,
        answer.refused,
        answer.text,
        em,
        f1,
        contains,
        citations,
        dict(answer.timings),
        short.text if short is not None else None,
        short.score if short is not None else None,
        f1_text,
    )


def latency(results: Sequence[AnswerResult], stages: Sequence[str] = STAGES) -> tuple[Latency, ...]:
    """p50/p95 of each stage over the questions where it ran (a refusal before generation
    has no generate time)."""
    out = []
    for stage in stages:
        values = [r.timings[stage] for r in results if r.timings.get(stage, 0.0) > 0]
        if values:
            out.append(
                Latency(
                    stage,
                    len(values),
                    percentile(values, 50),
                    percentile(values, 95),
                    tuple(values),
                )
            )
    return tuple(out)


def score_answers(
    dataset: Dataset,
    mode: str,
    results: Sequence[AnswerResult],
    model: str | None = None,
    variant: str = "default",
    seconds: float = 0.0,
) -> AnswerScores:
    answerable = [r for r in results if r.answerable]
    answered = [r for r in answerable if not r.refused]
    correct = [[c.correct for c in r.citations] for r in answered]
    loose = [[c.in_passage for c in r.citations] for r in answered]
    squad = dataset.match == "contains"
    unanswerable = [r for r in results if not r.answerable]
    return AnswerScores(
        dataset=dataset.name,
        mode=mode,
        model=model,
        variant=variant,
        questions=len(answerable),
        answered=len(answered) / len(answerable) if answerable else None,
        em=mean([r.em or 0.0 for r in answerable]) if squad and answerable else None,
        f1=mean([r.f1 or 0.0 for r in answerable]) if answerable else None,
        f1_answered=mean([r.f1 or 0.0 for r in answered]) if answered else None,
        contains=mean([float(bool(r.contains)) for r in answerable])
        if squad and answerable
        else None,
        citations=CitationScores(
            questions=len(answered),
            citations=sum(len(c) for c in correct),
            precision=citation_precision(correct),
            precision_passage=citation_precision(loose),
            recall=citation_recall(correct),
        ),
        refusal=refusal_scores(results) if unanswerable else None,
        latency=latency(results),
        seconds=seconds,
    )


# ------------------------------------------------------------------------------ running


def options_for(variant: str):
    """The engine's options for a named variant (see VARIANTS)."""
    from qa.answer import pipeline as engine

    return replace(engine.DEFAULT_OPTIONS, **VARIANTS[variant])


def run_answers(
    ev: EvalIndex,
    dataset: Dataset,
    mode: str,
    model: str | Path | None = None,
    variant: str = "default",
) -> list[AnswerResult]:
    """Ask every question of `dataset` with `qa.ask` in `mode` and judge the answers.

    The model (llm mode) and the embedder are loaded before the first question, and the
    query vectors primed for the retrieval runs are forgotten, so the timings are those of
    a warm `qa ask`."""
    from qa.engine import Engine

    engine = Engine(ev.index.settings, index=ev.index)
    options = options_for(variant)
    generator = engine.generator(model) if mode == "llm" else None
    ev.embedder.clear()
    ev.embedder.base.embed(["warm up"])
    out = []
    for q in bar(dataset.questions, len(dataset.questions), f"answers ({mode})"):
        answer = engine.ask(q.text, mode=mode, model=generator, options=options)
        out.append(judge_answer(answer, q, dataset.match, ev.pid_of))
    return out
