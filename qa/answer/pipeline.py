"""Grounded answers: `ask` and `ask_stream`.

    import qa
    answer = qa.ask("Did Ford deny the Xiaomi report?", index="index")
    print(answer.text)                      # "... [1]"
    for c in answer.citations:              # exact spans: document_text(c.source)[c.start:c.end]
        print(c.n, c.source, c.start, c.end, c.quote)

The steps, timed in `Answer.timings` (seconds): `retrieve` (rewrite a follow-up into a
standalone query, hybrid search), `prompt` (rank the passages' sentences against the question,
fit the best into the prompt), `first_token`, `generate` (all tokens), `verify` (check every
citation, see `qa.verify`), `total`.

Modes: "llm" generates with a local GGUF model (`settings.model`, or `model=`); "extractive"
needs no model and answers with the best-supporting sentence, quoted with its citation.
Without `mode=`, a call that passes `model=` uses the model, else `settings.mode` decides
(default "extractive", `QA_MODE`: it measured better than the small default model).

Refusal: the answer is "The documents don't say." with `refused=True` and no citations when the
retrieved sentences match the question too weakly (`answerability` below the calibrated
threshold), when the model itself says the sources do not answer, or when none of the model's
sentences is supported by the sources.

Conversations: `history` is a sequence of earlier turns, oldest first: `qa.Turn(question,
answer)` objects, `qa.Answer` objects, or `(question, answer)` pairs. A follow-up question is
rewritten into a standalone query (`Answer.query`) before retrieval (see `qa.followup`).
Citations are per answer: each answer's numbers start at 1.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from qa.answer.evidence import Sentence, candidates, coverage, rank_evidence, specifics, terms
from qa.answer.followup import Turn, rewrite
from qa.answer.prompting import REFUSAL, STOP, Prompt, Source, answer_grammar, build, group_sources
from qa.answer.verify import verify, with_markers
from qa.config import Settings
from qa.errors import BadInput
from qa.index.core import Index
from qa.models.generator import Generator
from qa.records import Answer, Citation, Claim, Hit

__all__ = ["Turn", "answer_stream", "answerability", "ask", "ask_stream", "resolve_mode"]

from qa.engine import MODES, resolve_mode  # noqa: E402, F401  (the one rule, re-exported)

# Calibrated on CLAPnq dev with `python -m qa.eval.refusal --limit 100 --seed 3 --dump F`
# (all 597 passages indexed; 100 answerable + 100 unanswerable questions; weights chosen by a
# grid search maximising unanswerables declined at >= 90% answerables answered):
# answerability = (0.7 * best sentence score + 0.4 * best cosine) * names factor.
# EXTRACTIVE_MIN answers 90% of answerables and declines 66% of unanswerables (in sample);
# LLM_MIN is lower (96% / 45% from retrieval alone) because the model's own refusals and the
# support check decline more after generation.
BEST_WEIGHT, DENSE_WEIGHT = 0.7, 0.4
EXTRACTIVE_MIN = 0.535  # answerability below this: refuse (extractive mode)
LLM_MIN = 0.45  # answerability below this: refuse without generating (llm mode)
# Above this answerability, an llm answer that fails verification is replaced by the
# extractive answer instead of a refusal.
FALLBACK_MIN = 0.6
NAMES_FLOOR = 0.5  # answerability factor when none of the question's names is retrieved
EXTRACTIVE_SENTENCES = 1  # sentences quoted in extractive mode


@dataclass(frozen=True)
class Options:
    """Engine switches. Measured with `qa eval squad --mode llm --limit 50 --variant ...` on
    SQuAD dev (token F1 / citation correctness of answered questions, SmolLM2-135M):
    default 0.135/0.78, best-first 0.154/0.83, examples 0.132/0.66, passages 0.132/0.73,
    grammar 0.115/0.80, no-fallback 0.106/0.81 (answered 54% instead of 82%); extractive
    mode 0.156/0.84. Best-last is kept because on the sample corpus it was the only variant
    answering all five test questions from the right sentence; best-first is within noise
    on SQuAD (50 questions)."""

    style: str = "sentences"  # each prompt source is a sentence, or "passages"
    examples: bool = False  # worked examples before the question
    max_sources: int | None = 3  # sources in the prompt (None: the style's default)
    best_last: bool = True  # number the sources so the best one is nearest the question
    grammar: bool = False  # constrain the output to "sentence [n]." with a GBNF grammar
    fallback: bool = True  # extractive answer when the model's answer fails verification
    extractive_min: float | None = None  # None: the calibrated module constants
    llm_min: float | None = None
    fallback_min: float | None = None

    def threshold(self, name: str) -> float:
        value = getattr(self, name)
        if value is not None:
            return value
        return {"extractive_min": EXTRACTIVE_MIN, "llm_min": LLM_MIN, "fallback_min": FALLBACK_MIN}[
            name
        ]


DEFAULT_OPTIONS = Options()


@dataclass(frozen=True)
class Evidence:
    """What retrieval found for a query: the passages and their sentences, best first."""

    query: str
    hits: tuple[Hit, ...]
    ranked: tuple[Sentence, ...]
    answerability: float


@dataclass(frozen=True)
class Signals:
    """Retrieval evidence that a query is answerable from the index."""

    best: float  # best sentence's score (DENSE_WEIGHT * cosine + LEXICAL_WEIGHT * coverage)
    dense: float  # best sentence's cosine similarity to the query
    passage_coverage: float  # share of the query's terms in the best passage
    names_found: float  # share of the query's names and numbers found in the passages (1 if none)


def signals(query: str, ranked: Sequence[Sentence], hits: Sequence[Hit]) -> Signals:
    if not ranked:
        return Signals(0.0, 0.0, 0.0, 0.0)
    q_terms = terms(query)
    passage_cov = coverage(q_terms, set(terms(hits[0].text))) if hits else 0.0
    names = specifics(query)
    found = set()
    for hit in hits:
        found |= set(terms(hit.text))
    names_found = sum(1 for t in names if t in found) / len(names) if names else 1.0
    return Signals(ranked[0].score, max(s.dense for s in ranked), passage_cov, names_found)


def answerability(query: str, ranked: Sequence[Sentence], hits: Sequence[Hit]) -> float:
    """How likely the retrieved text answers `query` (higher is likelier): the best
    sentence's blend of embedding similarity and question-term coverage plus the best
    embedding similarity, scaled down when names or numbers of the question occur in none of
    the retrieved passages."""
    s = signals(query, ranked, hits)
    names = NAMES_FLOOR + (1 - NAMES_FLOOR) * s.names_found
    return (BEST_WEIGHT * s.best + DENSE_WEIGHT * s.dense) * names


def open_index(index, settings: Settings) -> Index:
    """An `Index` as given, or the shared engine's index of a folder (see `qa.engine`)."""
    from qa.engine import Engine

    if isinstance(index, Index):
        return index
    return Engine.shared(index, settings).index


# --- the engine ------------------------------------------------------------------------------


def retrieve(index: Index, query: str, k: int) -> Evidence:
    texts: dict[str, str] = {}

    def text_of(source: str) -> str:
        if source not in texts:
            texts[source] = index.document_text(source)
        return texts[source]

    hits = index.search(query, k)
    ranked = rank_evidence(query, candidates(hits, text_of), index.embedder)
    return Evidence(query, tuple(hits), tuple(ranked), answerability(query, ranked, hits))


def retrieval_signals(evidence: Evidence) -> Signals:
    return signals(evidence.query, evidence.ranked, evidence.hits)


def _refusal(question, query, mode, hits, timings) -> Answer:
    return Answer(
        question=question,
        text=REFUSAL,
        refused=True,
        query=query,
        mode=mode,
        passages=tuple(hits),
        timings=timings,
    )


def _extractive(question: str, evidence: Evidence, index: Index, timings) -> Answer:
    chosen = list(evidence.ranked[:EXTRACTIVE_SENTENCES])
    chosen.sort(key=lambda s: (s.source, s.start))
    citations, claims, parts = [], [], []
    for n, s in enumerate(chosen, 1):
        quote = index.document_text(s.source)[s.start : s.end]
        citations.append(Citation(n, s.source, s.start, s.end, quote, s.page, s.chunk_id, s.score))
        claims.append(Claim(quote, (n,), True, s.score))
        parts.append(with_markers(" ".join(quote.split()), [n]))
    used = {s.chunk_id for s in chosen}
    return Answer(
        question=question,
        text=" ".join(parts),
        citations=tuple(citations),
        query=evidence.query,
        mode="extractive",
        claims=tuple(claims),
        passages=tuple(h for h in evidence.hits if h.chunk_id in used),
        timings=timings,
    )


def _passages_of(prompt: Prompt, hits: Sequence[Hit]) -> tuple[Hit, ...]:
    used = {s.chunk_id for src in prompt.sources for s in src.sentences}
    return tuple(h for h in hits if h.chunk_id in used)


def answer_stream(
    question: str,
    idx: Index,
    generator: Generator | None,
    settings: Settings,
    mode: str,
    history: Sequence[Turn | Answer | tuple[str, str]] | None = None,
    options: Options = DEFAULT_OPTIONS,
) -> Iterator[str | Answer]:
    """Yield the answer's text as it is generated (`str` pieces), then the final `Answer`.
    `qa.Engine.ask_stream` checks the request and calls this.

    The pieces are the model's raw output: they may contain citation markers that
    verification later removes or renumbers. The final `Answer.text` is authoritative.
    In extractive mode, and for a refusal, the final text is yielded as one piece.
    """
    if not question or not question.strip():
        raise BadInput("the question is empty")
    if mode == "llm" and generator is None:
        raise BadInput("llm mode needs a generator")
    t0 = time.perf_counter()
    timings = dict.fromkeys(("retrieve", "prompt", "first_token", "generate", "verify"), 0.0)
    query = rewrite(question, history)
    evidence = retrieve(idx, query, settings.k)
    timings["retrieve"] = time.perf_counter() - t0

    if mode == "extractive" or evidence.answerability < options.threshold("llm_min"):
        if mode == "extractive" and evidence.answerability >= options.threshold("extractive_min"):
            answer = _extractive(question, evidence, idx, timings)
        else:
            answer = _refusal(question, query, mode, evidence.hits, timings)
        timings["total"] = time.perf_counter() - t0
        yield answer.text
        yield answer
        return

    t1 = time.perf_counter()
    sources: list[Source] = group_sources(evidence.ranked, options.style, options.max_sources)
    # A base model (no chat template) only follows the format from worked examples.
    examples = options.examples or not getattr(generator, "has_chat_template", True)
    prompt = build(
        query, sources, generator, settings.max_answer_tokens, examples, options.best_last
    )
    t2 = time.perf_counter()
    timings["prompt"] = t2 - t1

    pieces: list[str] = []
    model_stream = generator.stream(
        prompt.text,
        max_tokens=settings.max_answer_tokens,
        temperature=settings.temperature,
        stop=STOP,
        grammar=answer_grammar(len(prompt.sources)) if options.grammar else None,
    )
    try:  # closing this generator closes the model's stream: generation stops at once
        for piece in model_stream:
            if not pieces:
                timings["first_token"] = time.perf_counter() - t2
            pieces.append(piece)
            yield piece
    finally:
        close = getattr(model_stream, "close", None)
        if close is not None:
            close()
    t3 = time.perf_counter()
    timings["generate"] = t3 - t2
    if not pieces:
        timings["first_token"] = timings["generate"]

    checked = verify("".join(pieces), prompt.sources, idx.embedder, idx.document_text, query)
    timings["verify"] = time.perf_counter() - t3
    timings["total"] = time.perf_counter() - t0
    if checked.model_refused or not checked.supported:
        if options.fallback and evidence.answerability >= options.threshold("fallback_min"):
            yield _extractive(question, evidence, idx, timings)
        else:
            yield _refusal(question, query, mode, _passages_of(prompt, evidence.hits), timings)
        return
    yield Answer(
        question=question,
        text=checked.text,
        citations=checked.citations,
        query=query,
        mode="llm",
        claims=checked.claims,
        passages=_passages_of(prompt, evidence.hits),
        timings=timings,
    )


def ask_stream(
    question: str,
    index=None,
    history=None,
    k=None,
    model=None,
    mode=None,
    settings=None,
    options: Options = DEFAULT_OPTIONS,
) -> Iterator[str | Answer]:
    """`qa.ask_stream`: see `qa.engine.ask_stream`."""
    from qa import engine

    return engine.ask_stream(question, index, history, k, model, mode, settings, options)


def ask(
    question: str,
    index=None,
    history=None,
    k=None,
    model=None,
    mode=None,
    settings=None,
    options: Options = DEFAULT_OPTIONS,
) -> Answer:
    """`qa.ask`: see `qa.engine.ask`."""
    from qa import engine

    return engine.ask(question, index, history, k, model, mode, settings, options)
