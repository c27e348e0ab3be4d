"""Evidence from the trained reader (`qa.models.reader`): which retrieved sentence answers
the question, whether any does, and the short answer inside it.

Each retrieved passage is read once against the question; every sentence gets the reader's
probability that it answers. A sentence shared by overlapping passages keeps its best
probability. The best sentence's probability is the answerability (refuse below the
threshold calibrated on the reader's training part); the reading of the passage holding it
gives the short answer (a span of that sentence) and, for a yes/no question, whether it says
yes or no.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

from qa.answer.evidence import Sentence, candidates, terms
from qa.records import Hit

# A question that a sentence can settle with yes or no: it opens with an auxiliary verb.
_YES_NO = re.compile(
    r"^\s*(?:is|are|was|were|am|do|does|did|has|have|had|can|could|will|would|should|shall|"
    r"may|might|must|isn't|aren't|wasn't|weren't|doesn't|don't|didn't|hasn't|haven't|can't|"
    r"won't)\b",
    re.IGNORECASE,
)
# A short answer longer than this share of its sentence is the sentence itself: quote it.
SHORT_MAX_SHARE = 0.8


def is_yes_no(question: str) -> bool:
    return _YES_NO.match(question) is not None


@dataclass(frozen=True)
class Short:
    """The reader's short answer: a span (exact document offsets) or yes/no."""

    kind: str  # "span", "yes", "no"
    source: str
    start: int
    end: int
    text: str
    score: float


@dataclass(frozen=True)
class Read:
    """The sentences of the retrieved passages, best first (`score` = the reader's
    probability), the answerability (the best probability) and the short answer."""

    ranked: tuple[Sentence, ...]
    answerability: float
    short: Short | None


def read(
    question: str,
    hits: Sequence[Hit],
    text_of: Callable[[str], str],
    reader,
    yes_no_min: tuple[float, float],
) -> Read:
    """Read `hits` against `question` with `reader` (a `qa.models.reader.Reader`)."""
    passages: list[tuple[str, list[tuple[int, int]]]] = []
    per_hit: list[list[Sentence]] = []
    for hit in hits:
        sentences = candidates([hit], text_of)  # instructions to a model are left out
        text = text_of(hit.source)[hit.start : hit.end]
        per_hit.append(sentences)
        passages.append((text, [(s.start - hit.start, s.end - hit.start) for s in sentences]))
    if not any(per_hit):
        return Read((), 0.0, None)
    readings = reader.read(question, passages)
    best: dict[tuple[str, int, int], Sentence] = {}
    best_reading = None
    for hit, sentences, reading in zip(hits, per_hit, readings, strict=True):
        for s, scored in zip(sentences, reading.sentences, strict=True):
            key = (s.source, s.start, s.end)
            if key not in best or scored.prob > best[key].score:
                best[key] = replace(s, score=scored.prob)
        top = reading.best
        if top is not None and (best_reading is None or top.prob > best_reading[1].best.prob):
            best_reading = (hit, reading)
    ranked = tuple(sorted(best.values(), key=lambda s: (-s.score, s.rank, s.start)))
    short = None
    if best_reading is not None:
        short = short_from(question, *best_reading, ranked[0], text_of, yes_no_min)
    return Read(ranked, ranked[0].score, short)


def short_in(
    question: str,
    sentence: Sentence,
    hits: Sequence[Hit],
    text_of: Callable[[str], str],
    reader,
    yes_no_min: tuple[float, float],
) -> Short | None:
    """The reader's short answer inside `sentence` (chosen by whatever ranked it), read with
    its whole passage as context: one forward pass."""
    hit = next((h for h in hits if h.chunk_id == sentence.chunk_id), None)
    if hit is None:
        return None
    passage = text_of(hit.source)[hit.start : hit.end]
    span = (sentence.start - hit.start, sentence.end - hit.start)
    (reading,) = reader.read(question, [(passage, [span])])
    return short_from(question, hit, reading, sentence, text_of, yes_no_min)


def _repeats(span: str, question: str) -> bool:
    """Whether every content word of `span` is already in the question ("Who founded
    Xiaomi?" -> "Xiaomi"): such a span restates the question and answers nothing."""
    span_terms = set(terms(span))
    return bool(span_terms) and span_terms <= set(terms(question))


def short_from(
    question, hit, reading, sentence, text_of, yes_no_min: tuple[float, float]
) -> Short | None:
    """The short answer of `reading` (of `hit`) if it lies in `sentence`: yes/no for a
    yes/no question (when confident enough: `yes_no_min` is the (yes, no) pair of the
    lowest probabilities at which each is said), else the span."""
    if is_yes_no(question):
        kind = "yes" if reading.p_yes >= reading.p_no else "no"
        p = max(reading.p_yes, reading.p_no)
        if p >= yes_no_min[kind == "no"]:
            return Short(kind, sentence.source, sentence.start, sentence.end, kind.title(), p)
        return None
    a, b = hit.start + reading.span_start, hit.start + reading.span_end
    if not sentence.start <= a < b <= sentence.end:
        return None  # the span is in another sentence than the one quoted
    if b - a > SHORT_MAX_SHARE * (sentence.end - sentence.start):
        return None
    text = text_of(hit.source)[a:b].strip(" ,;:")
    if not text or _repeats(text, question):
        return None
    doc = text_of(hit.source)
    a = doc.index(text, a)
    return Short("span", hit.source, a, a + len(text), text, reading.span_score)
