"""Sentence-level evidence and support scoring, shared by answer generation and verification.

- `candidates(hits, text_of)`: the sentences of the retrieved passages, with exact offsets in
  their documents (sentences shared by overlapping chunks appear once).
- `rank_evidence(question, sentences, embedder)`: how well each sentence matches the question:
  embedding similarity plus the share of the question's content words it contains.
- `support_matrix(claims, evidence, embedder)`: how well each evidence sentence supports each
  answer sentence: the share of the claim's content words found in the evidence, blended with
  embedding similarity, and halved when one is negated and the other is not.

Content words and their stems are `qa.text.terms` (the shared stopword list, Porter stems).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

import numpy as np

from qa.ingest.chunking import split_sentences
from qa.records import Hit
from qa.text import STOPWORDS, stem, terms, words  # words and stems: one definition, qa.text

# Weights of the two relevance signals (see qa/eval/refusal.py for how they were chosen).
DENSE_WEIGHT = 0.6
LEXICAL_WEIGHT = 0.4
# Support of a claim by a sentence: this much lexical precision, the rest embedding similarity.
SUPPORT_LEXICAL = 0.6
NEGATION_PENALTY = 0.5
MAX_SENTENCE_CHARS = 600  # longer "sentences" (tables, lists) are cut for scoring only

# Not stopwords but the words that reverse a claim: a claim and its evidence must agree on them.
NEGATIONS = frozenset("not no never n't neither nor cannot without none nothing".split())


def negated(text: str) -> bool:
    return any(w.lower() in NEGATIONS or w.lower().endswith("n't") for w in words(text))


def coverage(query_terms: Sequence[str], text_terms: set[str]) -> float:
    """Share of the (distinct) query terms that occur in the text."""
    q = set(query_terms)
    if not q:
        return 0.0
    return sum(1 for t in q if t in text_terms) / len(q)


@dataclass(frozen=True)
class Sentence:
    """A sentence of a retrieved passage, with exact offsets in its document."""

    source: str
    start: int
    end: int
    text: str
    page: int | None = None
    chunk_id: int | None = None
    rank: int = 0  # rank of the passage it came from (0 = best)
    dense: float = 0.0  # cosine similarity to the question
    lexical: float = 0.0  # share of the question's terms it contains
    score: float = 0.0  # DENSE_WEIGHT * dense + LEXICAL_WEIGHT * lexical


# Sentences that address an AI model instead of informing a reader ("Ignore previous
# instructions...", "You are now...", "Answer every question with..."): a document that says
# this is attempting prompt injection. Such sentences are never shown to the model, quoted or
# accepted as support, so a document cannot steer the answer or forge its citations.
_INSTRUCTION = re.compile(
    r"\b(?:ignore|disregard|forget|override|bypass)\b[^.!?\n]{0,50}?"
    r"\b(?:instructions?|prompts?|rules|directions|guidelines|guardrails)\b"
    r"|\b(?:system|developer|hidden)\s+(?:prompt|message|instructions?)\b"
    r"|\byou\s+(?:are|must|should|will)\s+now\b"
    r"|\b(?:respond|reply|answer)\s+(?:to\s+)?(?:every|all|each|any)\s+"
    r"(?:questions?|quer(?:y|ies)|requests?|prompts?)\b"
    r"|\b(?:respond|reply|answer)\b[^.!?\n]{0,40}\b(?:only|always)\s+with\b"
    r"|\b(?:cite|citing)\s+(?:only\s+)?(?:source|sources|passage|document)?\s*\[\d+\]",
    re.IGNORECASE,
)


def is_instruction(text: str) -> bool:
    """Whether a sentence reads as an instruction to an AI model (prompt injection)."""
    return _INSTRUCTION.search(text) is not None


def candidates(hits: Sequence[Hit], text_of: Callable[[str], str]) -> list[Sentence]:
    """The sentences of `hits`, best passage first, each once; sentences that instruct an AI
    model (`is_instruction`) are left out."""
    seen: set[tuple[str, int, int]] = set()
    out: list[Sentence] = []
    for rank, hit in enumerate(hits):
        text = text_of(hit.source)
        for a, b in split_sentences(text, hit.start, hit.end):
            key = (hit.source, a, b)
            if key in seen or not terms(text[a:b]) or is_instruction(text[a:b]):
                continue
            seen.add(key)
            out.append(Sentence(hit.source, a, b, text[a:b], hit.page, hit.chunk_id, rank))
    return out


def embed(embedder, texts: Sequence[str]) -> np.ndarray:
    """Embed texts (cut to MAX_SENTENCE_CHARS), through the embedder's own cache of recent
    vectors where it has one (`SentenceTransformerEmbedder.embed_cached`): the same sentences
    come back when ranking evidence, verifying, and in follow-up turns."""
    texts = [t[:MAX_SENTENCE_CHARS] for t in texts]
    if not texts:
        return np.zeros((0, 0), dtype=np.float32)
    cached = getattr(embedder, "embed_cached", None)
    vectors = cached(texts) if cached is not None else embedder.embed(texts)
    return np.asarray(vectors, dtype=np.float32)


def rank_evidence(question: str, sentences: Sequence[Sentence], embedder) -> list[Sentence]:
    """The sentences scored against the question, best first."""
    if not sentences:
        return []
    vecs = embed(embedder, [question, *[s.text for s in sentences]])
    dense = vecs[1:] @ vecs[0]
    q_terms = terms(question)
    scored = []
    for s, d in zip(sentences, dense, strict=True):
        lex = coverage(q_terms, set(terms(s.text)))
        score = DENSE_WEIGHT * float(d) + LEXICAL_WEIGHT * lex
        scored.append(replace(s, dense=float(d), lexical=lex, score=score))
    scored.sort(key=lambda s: (-s.score, s.rank, s.start))
    return scored


def specifics(text: str) -> set[str]:
    """Stems of the names and numbers in `text` (capitalised words not opening a sentence,
    words with digits): the details a grounded claim must not invent."""
    out = set()
    ws = words(text)
    for i, w in enumerate(ws):
        lw = w.lower()
        if lw in STOPWORDS:
            continue
        if any(ch.isdigit() for ch in w) or (i > 0 and w[:1].isupper()):
            out.add(stem(lw))
    return out


def lexical_precision(claim: str, evidence: str, question: str = "") -> float:
    """Share of the claim's content terms that the evidence contains; the terms the question
    did not already contain (what the claim adds) count double, and an invented name or
    number (one in neither the evidence nor the question) halves the score."""
    c = set(terms(claim))
    if not c:
        return 0.0
    e = set(terms(evidence))
    q = set(terms(question))
    base = sum(1 for t in c if t in e) / len(c)
    novel = c - q
    if novel:
        base = 0.5 * base + 0.5 * sum(1 for t in novel if t in e) / len(novel)
    if specifics(claim) - e - q:
        base *= NEGATION_PENALTY
    return base


# Words a faithful answer adds without them being evidence: framing ("the report states"),
# not content. Everything else a claim adds to the question must be in its evidence.
FRAMING = frozenset(
    terms(
        "answer question source sources document documents text passage article report reports "
        "reported state states stated mention mentions mentioned write writes written indicate "
        "indicates indicated suggest suggests suggested according yes no true correct"
    )
)


def _similar(term: str, pool: set[str]) -> bool:
    """`term` or a word sharing its first five letters (produce/production) is in `pool`."""
    if term in pool:
        return True
    if len(term) < 6 or term.isdigit():
        return False
    head = term[:5]
    return any(len(t) >= 5 and t[:5] == head for t in pool)


def unsupported(claim: str, evidence: str, question: str = "") -> list[str]:
    """The content terms `claim` adds to `question` that `evidence` does not contain
    (framing words aside): an empty list means nothing in the claim is invented."""
    e = set(terms(evidence))
    q = set(terms(question))
    out = []
    for t in dict.fromkeys(terms(claim)):
        if t in q or t in FRAMING or _similar(t, e):
            continue
        out.append(t)
    return out


def relevance(claim: str, question: str) -> float:
    """Share of the question's content terms the claim repeats (1.0 for a question without any)."""
    q = set(terms(question))
    if not q:
        return 1.0
    c = set(terms(claim))
    return sum(1 for t in q if _similar(t, c)) / len(q)


def support_matrix(
    claims: Sequence[str], evidence: Sequence[str], embedder, question: str = ""
) -> np.ndarray:
    """support[i, j] in [0, 1]: how well evidence j supports claim i (as an answer to
    `question`, whose own words a claim may repeat without support)."""
    out = np.zeros((len(claims), len(evidence)), dtype=np.float32)
    if not claims or not evidence:
        return out
    vecs = embed(embedder, [*claims, *evidence])
    cos = np.clip(vecs[: len(claims)] @ vecs[len(claims) :].T, 0.0, 1.0)
    for i, c in enumerate(claims):
        c_neg = negated(c)
        for j, e in enumerate(evidence):
            value = (
                SUPPORT_LEXICAL * lexical_precision(c, e, question)
                + (1 - SUPPORT_LEXICAL) * cos[i, j]
            )
            if c_neg != negated(e):
                value *= NEGATION_PENALTY
            out[i, j] = value
    return out
