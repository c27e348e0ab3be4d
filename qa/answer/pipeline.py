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
from dataclasses import dataclass, replace

from qa.answer import combine, expect, reading
from qa.answer.evidence import Sentence, candidates, coverage, rank_evidence, specifics, terms
from qa.answer.followup import Turn, rewrite
from qa.answer.prompting import REFUSAL, STOP, Prompt, Source, answer_grammar, build, group_sources
from qa.answer.reading import Short
from qa.answer.verify import verify, with_markers
from qa.config import Settings
from qa.errors import BadInput
from qa.index.core import Index
from qa.models.generator import Generator
from qa.records import Answer, Citation, Claim, Hit, ShortAnswer

__all__ = ["Turn", "answer_stream", "answerability", "ask", "ask_stream", "resolve_mode"]

from qa.engine import ask, ask_stream  # noqa: E402, F401  (qa.ask, re-exported for callers here)
from qa.request import MODES, resolve_mode  # noqa: E402, F401  (the one rule, re-exported)

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
# The reader's short answer is shown when its span score (start x end probability) is at
# least this. Calibrated on the train part's calibration slice (`qa eval squad --part calib
# --limit 300 --variant short-ungated`, 282 answered): mean token F1 is 0.475 for every gate
# up to 0.08 (0.153 with no short answers) and falls above it (0.468 at 0.10, 0.409 at 0.20);
# 0.08 is the plateau's highest, showing a short answer for 84% of answers, 55% of them
# with F1 >= 0.5 (49% with no gate).
SHORT_MIN = 0.08
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
    # Who chooses the evidence and refuses, when a trained reader is loaded:
    # "learned": the evidence scorer fitted over the reader's and the similarity signals
    #   (qa.answer.combine, models/reader/combiner.json; README "Measured" for the figures);
    # "heuristic": the similarity heuristics, the reader only finding the short answer;
    # "reader": the reader's own sentence probabilities.
    # Without the scorer file, "learned" falls back to "heuristic".
    # The default, "learned" with refusal="both", by measurement (reader run 6, 2026-12-04,
    # `qa eval ... --variant learned-both` / default heuristics / `learned-evidence`, test
    # part, one eval index): SQuAD (500) answered 92.6% / 90.8% / 96.0%, F1 0.571 / 0.547 /
    # 0.583, citation precision 0.788 / 0.756 / 0.781, wrong answers 98 / 111 / 105;
    # CLAPnq (200) answerables answered 87.9% / 90.9% / 90.9%, precision 0.816 / 0.656 /
    # 0.811, unanswerables declined 59.4% / 60.4% / 53.5%. The scorer alone answered "Who is
    # the CEO of Apple?" on the sample corpus ("Jim Farley"); with both gates it is declined.
    evidence: str = "learned"
    # Who checks a model answer's claims, beyond the lexical and similarity check of
    # `qa.answer.verify` that every answer gets: "reader" (the trained reader's claim-support
    # head, each kept claim against the sentence it cites, rejected under the reader's
    # calibrated `support` threshold) or "lexical" (that check alone). Without a reader,
    # "lexical". "reader" by measurement (2026-12-04, test part, `qa eval ... --mode llm
    # --limit 200`, `--variant reader-claims` against `lexical-claims`, SmolLM2-135M): SQuAD
    # answers holding the gold answer 75.8% against 68.3% of those answered (27 of 200 model
    # answers replaced by the quote), CLAPnq token F1 0.410 against 0.392; answered,
    # precision and refusals unchanged.
    claim_check: str = "reader"
    # Who may refuse, when `evidence` is "learned": "scorer" (its calibrated answerability
    # alone) or "both" (the similarity heuristics' answerability must also clear their own
    # thresholds: either one declines). Figures: README "Measured".
    refusal: str = "both"
    short_min: float | None = None  # None: SHORT_MIN; the reader's span score to show a span
    extractive_min: float | None = None  # None: the calibrated module constants
    llm_min: float | None = None
    fallback_min: float | None = None

    def threshold(self, name: str, calibrated: Thresholds | None = None) -> float:
        """The option if set, else the calibrated threshold of the evidence's scale."""
        value = getattr(self, name)
        if value is not None:
            return value
        return getattr(calibrated or heuristic_thresholds(), name)


DEFAULT_OPTIONS = Options()


@dataclass(frozen=True)
class Evidence:
    """What retrieval found for a query: the passages and their sentences, best first, how
    likely they answer it, and (with the reader) the short answer. `thresholds` are the
    refusal thresholds that belong to this answerability's scale."""

    query: str
    hits: tuple[Hit, ...]
    ranked: tuple[Sentence, ...]
    answerability: float
    short: Short | None = None
    thresholds: Thresholds | None = None
    read_seconds: float = 0.0  # time in the reader
    # the similarity heuristics' answerability, when another scorer chose (None otherwise)
    similarity: float | None = None

    def declines(self, name: str, options: Options) -> bool:
        """Whether the evidence is too weak for threshold `name` ("extractive_min",
        "llm_min"): under the deciding scorer's; with `options.refusal == "both"`, also
        under the similarity heuristics'. In extractive mode the two gates then use the pair
        calibrated together (`Thresholds.both`, from `python -m qa.eval.gates`), if any."""
        scorer_min = options.threshold(name, self.thresholds)
        if options.refusal != "both" or self.similarity is None:
            return self.answerability < scorer_min
        similarity_min = getattr(heuristic_thresholds(), name)
        both = self.thresholds.both if self.thresholds is not None else None
        if name == "extractive_min" and both is not None and options.extractive_min is None:
            scorer_min, similarity_min = both
        return self.answerability < scorer_min or self.similarity < similarity_min


@dataclass(frozen=True)
class Thresholds:
    """Answerability below `extractive_min`: refuse (extractive); below `llm_min`: refuse
    without generating; above `fallback_min`, an llm answer that fails verification becomes
    the extractive answer instead of a refusal."""

    extractive_min: float
    llm_min: float
    fallback_min: float
    # (yes, no): the lowest probability at which each is said (1.0 or more: never)
    yes_no_min: tuple[float, float] = (1.0, 1.0)
    support_min: float = 0.0  # a model's claim the reader supports less than this: rejected
    # (scorer, similarity) thresholds of the two gates together (refusal="both"), if calibrated
    both: tuple[float, float] | None = None


def heuristic_thresholds() -> Thresholds:
    """The thresholds of the similarity heuristics (the module constants above)."""
    return Thresholds(EXTRACTIVE_MIN, LLM_MIN, FALLBACK_MIN)


def yes_no_thresholds(t: dict) -> tuple[float, float]:
    """(yes, no) confidence thresholds of a reader's manifest: calibrated per answer
    ("yes_min", "no_min"; `qa.train.evaluate.yes_no_class_thresholds`), else the one
    "yes_no_confidence" of older manifests for both."""
    both = float(t.get("yes_no_confidence", 1.0))
    return float(t.get("yes_min", both)), float(t.get("no_min", both))


def reader_thresholds(reader) -> Thresholds:
    """The thresholds calibrated with the reader on its training part (its manifest)."""
    t = reader.thresholds
    answer = float(t["answer"])
    return Thresholds(
        extractive_min=answer,
        llm_min=float(t.get("llm", answer)),
        fallback_min=float(t.get("fallback", answer)),
        yes_no_min=yes_no_thresholds(t),
        support_min=float(t.get("support", 0.5)),
    )


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
    return blend(s.best, s.dense, s.names_found)


def blend(best: float, dense: float, names_found: float) -> float:
    """The answerability formula of `answerability` from its three signals."""
    names = NAMES_FLOOR + (1 - NAMES_FLOOR) * names_found
    return (BEST_WEIGHT * best + DENSE_WEIGHT * dense) * names


def open_index(index, settings: Settings) -> Index:
    """An `Index` as given, or the shared engine's index of a folder (see `qa.engine`)."""
    from qa.engine import Engine

    if isinstance(index, Index):
        return index
    return Engine.shared(index, settings).index


# --- the engine ------------------------------------------------------------------------------


def retrieve(
    index: Index,
    query: str,
    k: int,
    reader=None,
    evidence: str = "heuristic",
    short_min: float | None = None,
) -> Evidence:
    """Search, then rank the passages' sentences and say how likely the best one answers.
    With a trained reader, `evidence` says who chooses and refuses (see Options.evidence);
    without one, the similarity heuristics do. A best sentence that lacks what the answer
    must hold (`qa.answer.expect`: a quantity for "how many") answers with probability 0."""
    found = _retrieve(index, query, k, reader, evidence, short_min)
    if found.ranked and not expect.can_answer(found.query, found.ranked[0].text):
        return replace(found, answerability=0.0, short=None)
    return found


def _retrieve(index, query, k, reader, evidence, short_min) -> Evidence:
    texts: dict[str, str] = {}

    def text_of(source: str) -> str:
        if source not in texts:
            texts[source] = index.document_text(source)
        return texts[source]

    hits = index.search(query, k)
    gate = SHORT_MIN if short_min is None else short_min
    scorer = combine.for_reader(reader) if reader is not None and evidence == "learned" else None
    if scorer is not None:
        t0 = time.perf_counter()
        f = combine.features(query, hits, text_of, index.embedder, reader)
        scored = scorer.score(f)
        thresholds = learned_thresholds(scorer, reader)
        short = None
        if scored.ranked:
            hit, passage_reading = f.readings[scored.order[0]]
            top = scored.ranked[0]
            short = reading_short(
                query, hit, passage_reading, top, hits, text_of, reader, thresholds
            )
            short = _gated(short, gate)
        seconds = time.perf_counter() - t0
        dense = max((s.dense for s in f.sentences), default=0.0)
        similarity = blend(f.similarity_best, dense, f.names_found)  # as `answerability`
        return Evidence(
            query,
            tuple(hits),
            scored.ranked,
            scored.answerability,
            short,
            thresholds,
            seconds,
            similarity,
        )
    if reader is not None and evidence == "reader":
        thresholds = reader_thresholds(reader)
        t0 = time.perf_counter()
        r = reading.read(query, hits, text_of, reader, thresholds.yes_no_min)
        seconds = time.perf_counter() - t0
        return Evidence(query, tuple(hits), r.ranked, r.answerability, r.short, thresholds, seconds)
    ranked = rank_evidence(query, candidates(hits, text_of), index.embedder)
    short, seconds = None, 0.0
    if reader is not None and ranked:
        yes_no_min = reader_thresholds(reader).yes_no_min
        t0 = time.perf_counter()
        short = _gated(reading.short_in(query, ranked[0], hits, text_of, reader, yes_no_min), gate)
        seconds = time.perf_counter() - t0
    return Evidence(
        query,
        tuple(hits),
        tuple(ranked),
        answerability(query, ranked, hits),
        short,
        heuristic_thresholds(),
        seconds,
    )


def _gated(short: Short | None, gate: float) -> Short | None:
    """A span shorter answer is shown only at a span score of at least `gate`."""
    if short is not None and short.kind == "span" and short.score < gate:
        return None
    return short


def reading_short(query, hit, reading_, sentence, hits, text_of, reader, thresholds):
    """The short answer in `sentence`: from the reading of its passage when the reader's span
    lies in it, else from reading its passage again with only that sentence."""
    short = reading.short_from(query, hit, reading_, sentence, text_of, thresholds.yes_no_min)
    if short is None and not reading.is_yes_no(query):
        short = reading.short_in(query, sentence, hits, text_of, reader, thresholds.yes_no_min)
    return short


def learned_thresholds(scorer, reader) -> Thresholds:
    """The evidence scorer's calibrated threshold, in every mode; the reader's yes/no and
    claim-support thresholds."""
    answer = scorer.thresholds["answer"]
    r = reader_thresholds(reader)
    return Thresholds(
        extractive_min=answer,
        llm_min=scorer.thresholds.get("llm", answer),
        fallback_min=scorer.thresholds.get("fallback", answer),
        # the reader's own per-answer yes/no thresholds where it has them (the scorer's one
        # "yes_no" is pooled over yes and no, as older readers' "yes_no_confidence")
        yes_no_min=r.yes_no_min
        if "no_min" in reader.thresholds
        else (scorer.thresholds.get("yes_no", r.yes_no_min[0]),) * 2,
        support_min=r.support_min,
        both=(scorer.thresholds["both_answer"], scorer.thresholds["both_similarity"])
        if "both_answer" in scorer.thresholds and "both_similarity" in scorer.thresholds
        else None,
    )


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
    """The best sentence, quoted with its citation, led by the short answer if any:
    "Yes. “Ford called the report completely false…” [1]"."""
    chosen = list(evidence.ranked[:EXTRACTIVE_SENTENCES])
    chosen.sort(key=lambda s: (s.source, s.start))
    citations, claims, parts = [], [], []
    short = None
    for n, s in enumerate(chosen, 1):
        quote = index.document_text(s.source)[s.start : s.end]
        citations.append(Citation(n, s.source, s.start, s.end, quote, s.page, s.chunk_id, s.score))
        claims.append(Claim(quote, (n,), True, s.score))
        flat = " ".join(quote.split())
        e = evidence.short
        if e is not None and e.source == s.source and s.start <= e.start <= e.end <= s.end:
            short = ShortAnswer(e.text, e.kind, e.source, e.start, e.end, n, e.score)
            marked = with_markers(flat, [n])
            # a sentence that is a quotation already keeps its own marks, not “““…”
            quoted = marked if flat[:1] in '“"' else f"“{marked}”"
            parts.append(f"{_lead(e.text)} {quoted}")
        else:
            parts.append(with_markers(flat, [n]))
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
        short=short,
    )


def _lead(text: str) -> str:
    """The short answer as the answer's first sentence: capitalised, with a full stop."""
    text = " ".join(text.split())
    text = text[:1].upper() + text[1:]
    return text if text[-1:] in ".!?" else text + "."


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
    reader=None,
) -> Iterator[str | Answer]:
    """Yield the answer's text as it is generated (`str` pieces), then the final `Answer`.
    `qa.Engine.ask_stream` checks the request and calls this; `reader` (a
    `qa.models.reader.Reader`) chooses the evidence and the short answer.

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
    evidence = retrieve(idx, query, settings.k, reader, options.evidence, options.short_min)
    timings["retrieve"] = time.perf_counter() - t0
    timings["read"] = evidence.read_seconds  # the reader's part of "retrieve"
    calibrated = evidence.thresholds

    if mode == "extractive" or evidence.declines("llm_min", options):
        if mode == "extractive" and not evidence.declines("extractive_min", options):
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
    rejected = (
        reader is not None
        and options.claim_check == "reader"
        and not _reader_supports(reader, query, checked, calibrated)
    )
    timings["verify"] = time.perf_counter() - t3
    timings["total"] = time.perf_counter() - t0
    if checked.model_refused or not checked.supported or rejected:
        if options.fallback and evidence.answerability >= options.threshold(
            "fallback_min", calibrated
        ):
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
        short=_short_of(evidence, checked.citations),
    )


def _reader_supports(reader, question: str, checked, thresholds: Thresholds) -> bool:
    """Whether the reader finds every kept claim of a model answer supported by the sentence
    it cites (claims the lexical check already dropped are not asked about)."""
    quotes = {c.n: c.quote for c in checked.citations}
    pairs = [
        (c.text, quotes[c.citations[0]])
        for c in checked.claims
        if c.supported and c.citations and c.citations[0] in quotes
    ]
    if not pairs:
        return True
    return min(reader.support_many(question, pairs)) >= thresholds.support_min


def _short_of(evidence: Evidence, citations: Sequence[Citation]) -> ShortAnswer | None:
    """The reader's short answer, if the model's answer cites the sentence it is in."""
    e = evidence.short
    if e is None:
        return None
    for c in citations:
        if c.source == e.source and c.start <= e.start <= e.end <= c.end:
            return ShortAnswer(e.text, e.kind, e.source, e.start, e.end, c.n, e.score)
    return None
