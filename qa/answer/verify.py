"""Citations are checked, not trusted.

The model's answer is split into claims (sentences). Each `[n]` marker is parsed (markers in
quotes or code spans are text, not citations) and mapped to the evidence sentence of source n
that best supports the claim. A citation survives only if that sentence supports the claim
(support score, see `qa.answer.evidence.support_matrix`) AND contains every content word the claim adds
to the question (`qa.answer.evidence.unsupported`): a 135M model's fluent embellishments ("... by a
Chinese insider") fail the second test even when the first is high. A claim that fails is cut
back at a clause boundary ("Ford denied the report, citing ..." -> "Ford denied the report.")
when the shorter claim passes; otherwise it is dropped. Markers that point nowhere (`[7]` of 3
sources) or at unsupportive text are removed; a claim left without a citation gets the
best-supporting sentence of all sources, if one supports it. Claims that share far fewer of the
question's words than the best claim (off-topic sentences) are dropped, as are claims that
only repeat a wh-question, claims resting on a sentence that is not about the question, and
questions the model writes back. Surviving citations are renumbered 1..n in order of appearance.

The answer is the model's refusal when its first sentence says the sources do not answer
(`model_refused`); a refusal sentence later on is a caveat, not a claim, and is dropped.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from qa.answer.evidence import FRAMING, Sentence, relevance, support_matrix, unsupported
from qa.answer.prompting import REFUSAL, Source
from qa.ingest.chunking import split_sentences
from qa.records import Citation, Claim
from qa.text import STOPWORDS, stem, terms, words

# A claim is supported by a sentence at this support or more (lexical precision blended with
# embedding similarity, see qa.answer.evidence). Chosen by hand on the sample corpus and CLAPnq dev
# answers: grounded paraphrases score 0.55-0.95, unrelated or contradicting claims below 0.45.
SUPPORT_MIN = 0.5
# Drop answer sentences that nothing supports when at least one other sentence is supported.
DROP_UNSUPPORTED = True
MAX_CLAIMS = 4
# A claim is kept only if it repeats at least this share of what the best claim repeats of the
# question's words (drops "The current list of Chinese brands is small." beside the answer).
RELEVANCE_RATIO = 0.5
# Where a failing claim may be cut: before these, keeping what comes before.
_CLAUSE_BREAK = re.compile(
    r"\s*(?:[,;:]|\s[–—-]\s)\s*|\s+(?=(?:and|but|while|which|who|whose|because|as|with|by|"
    r"citing|making|including|after|before|since|although|though|where|when)\b)",
    re.IGNORECASE,
)
MIN_CLAUSE_WORDS = 3
# A question asking for something (what, who, when...) is answered only by a claim that adds
# content words to it: "The basic unit of the UMC is the UMC [1]." is no answer.
_WH = re.compile(
    r"^\W*(?:(?:and|so|but|then)\s+)?(?:what|who|whom|whose|when|where|which|why|how)\b", re.I
)
# The sentence a claim rests on must itself be about the question: its relevance to the
# question (`Sentence.score`) at least this share of the best evidence sentence's. Drops a
# model's fluent sentence from an off-topic source ("What is floridean?" -> a sentence on the
# word pharmakeia). On 50 SQuAD dev questions (`qa eval squad --mode llm --limit 50`), citation
# precision / F1: no check .674/.162, 0.6 .761/.177, 0.8 .783/.179, 0.9 .783/.179.
TOPIC_RATIO = 0.8

_MARKER = re.compile(r"\s*\[(\d{1,3}(?:\s*[,;]\s*\d{1,3})*)\]")
_ANY_MARKER = re.compile(r"\[\d{1,3}(?:\s*[,;]\s*\d{1,3})*\]")
_PROTECTED = re.compile(r"`[^`]*`|\"[^\"]*\"|“[^”]*”")
_MARKER_AFTER_END = re.compile(r"([.!?])((?:\s*\[\d{1,3}(?:\s*[,;]\s*\d{1,3})*\])+)")
_PREFIX = re.compile(
    r"^\s*(?:(?:the\s+)?answer(?:\s+to\s+(?:this|the)\s+question)?(?:\s+is)?|assistant|"
    r"(?:the\s+)?sources?\s+(?:are|is|says?|states?)|"
    r"according\s+to\s+the\s+(?:sources?|documents?|text|passages?|report))\s*[:,]\s*",
    re.IGNORECASE,
)
# A sentence saying that the sources do not answer: the prompt's REFUSAL and the ways small
# models word it. It must be about the sources (or be a bare "I don't know."): "not specified"
# or "no information" alone is content, as in "The price was not specified in the contract [1]."
_SOURCES = (
    r"(?:the\s+|these\s+|those\s+|provided\s+|given\s+)?"
    r"(?:sources?|documents?|context|texts?|passages?|articles?|excerpts?)"
)
_NOT = r"(?:n['’]?t|\s+not)"
_REFUSES = re.compile(
    rf"\b{_SOURCES}\s+(?:do|does|did){_NOT}\s+(?:\w+\s+)?(?:say|mention|answer|contain|provide|"
    r"specify|state|include|give|tell|cover|address|discuss|have|show)\b"
    rf"|\b{_SOURCES}\s+(?:is|are)\s+silent\b"
    rf"|\b{_SOURCES}\s+(?:contains?|has|have|gives?|provides?|makes?|offers?)\s+no\s+"
    r"(?:information|mention|answer|details?|data)\b"
    rf"|\b(?:no|not\s+enough)\s+(?:information|mention|answer|details?|data)\b[^.!?]*?\b"
    rf"(?:in|from|within)\s+{_SOURCES}"
    rf"|\bnot\s+(?:mentioned|provided|stated|specified|given|answered|covered|found)\s+"
    rf"(?:in|by|within)\s+{_SOURCES}"
    r"|\b(?:cannot|can['’]?t|unable\s+to|not\s+able\s+to)\s+(?:answer|find|determine|tell|say)\b"
    rf"[^.!?]*?\b(?:from|in|based\s+on|using|within)\s+{_SOURCES}",
    re.IGNORECASE,
)
# A sentence that is nothing but "I don't know" / "I cannot answer (this question)" claims nothing.
_BARE_REFUSAL = re.compile(
    r"^\W*i\s+(?:do(?:n['’]?t|\s+not)\s+know|(?:cannot|can['’]?t)\s+answer"
    r"(?:\s+(?:this|that|the|your)(?:\s+question)?)?)\W*$",
    re.IGNORECASE,
)


def refusal_sentence(sentence: str) -> bool:
    """Whether one sentence says that the sources do not answer (see `_REFUSES`)."""
    plain = _ANY_MARKER.sub("", sentence).strip()
    return bool(_REFUSES.search(plain) or _BARE_REFUSAL.match(plain))


# Stopwords that can be what a claim adds to a question: quantifiers, negations, order in time
# or space ("Cats sleep for most of the day." answers "How much of the day do cats sleep?").
_ANSWERING = frozenset(
    "all any both each few more most some no nor not never only same many much one two yes "
    "above below before after over under up down between against during until".split()
)


def _words(text: str) -> set[str]:
    """The stems of `text`'s content words and of its answering stopwords (`_ANSWERING`)."""
    return {stem(w) for w in words(text) if w.lower() not in STOPWORDS or w.lower() in _ANSWERING}


@dataclass(frozen=True)
class Marker:
    numbers: tuple[int, ...]
    start: int
    end: int


@dataclass(frozen=True)
class Verified:
    text: str
    citations: tuple[Citation, ...]
    claims: tuple[Claim, ...]
    model_refused: bool

    @property
    def supported(self) -> bool:
        return any(c.supported for c in self.claims)

    @property
    def best_support(self) -> float:
        return max((c.support for c in self.claims), default=0.0)


def model_refused(text: str) -> bool:
    """Whether the model's answer is a refusal: its first sentence says the sources do not
    answer. A caveat after an answer ("Ford denied it [1]. The sources do not say why.")
    leaves the answer standing; the caveat itself is no claim (see `verify`)."""
    claims = split_claims(text)  # the sentences as verified: markers before the full stop
    return bool(claims) and refusal_sentence(claims[0])


def markers(text: str) -> list[Marker]:
    """The citation markers of `text`, excluding those inside quotes or code spans."""
    protected = [m.span() for m in _PROTECTED.finditer(text)]
    out = []
    for m in _MARKER.finditer(text):
        pos = m.start(1)
        if any(a <= pos < b for a, b in protected):
            continue
        numbers = tuple(int(x) for x in re.split(r"\s*[,;]\s*", m.group(1)))
        out.append(Marker(numbers, m.start(), m.end()))
    return out


def strip_markers(text: str, found: Sequence[Marker]) -> str:
    for m in sorted(found, key=lambda m: -m.start):
        text = text[: m.start] + text[m.end :]
    return " ".join(text.split())


def split_claims(text: str) -> list[str]:
    """Answer sentences, with markers written after the full stop moved before it and
    framing prefixes ("The answer is:", "According to the sources,") removed."""
    text = _PREFIX.sub("", text.strip())
    text = _MARKER_AFTER_END.sub(lambda m: m.group(2) + m.group(1), text)
    claims, seen = [], set()
    for a, b in split_sentences(text):
        claim = _PREFIX.sub("", text[a:b].strip())
        claim = claim[:1].upper() + claim[1:]
        key = " ".join(terms(_ANY_MARKER.sub("", claim))) or claim.lower()
        if claim and key not in seen:
            seen.add(key)
            claims.append(claim)
    return claims


def shorter_claims(body: str) -> list[str]:
    """`body` cut back at each clause boundary, longest first, each ending in a full stop
    ("Ford denied the report, citing a claim." -> ["Ford denied the report."])."""
    out = []
    for m in reversed(list(_CLAUSE_BREAK.finditer(body))):
        head = body[: m.start()].rstrip(" ,;:–—-")
        if len(head.split()) >= MIN_CLAUSE_WORDS and head not in out:
            out.append(head + ".")
    return out


def with_markers(body: str, numbers: Sequence[int]) -> str:
    if not numbers:
        return body
    tags = "".join(f"[{n}]" for n in numbers)
    m = re.search(r"[.!?]+[\"'”’)]*$", body)
    if m:
        return f"{body[: m.start()].rstrip()} {tags}{body[m.start() :]}"
    return f"{body} {tags}"


@dataclass(frozen=True)
class _Choice:
    body: str
    kept: tuple[Sentence, ...]
    support: float
    has_content: bool
    relevance: float
    echo: bool = False  # a question (the model repeating one) or a refusal: no claim, dropped


def _cited_numbers(ms: Sequence[Marker]) -> list[int]:
    return list(dict.fromkeys(n for m in ms for n in m.numbers))


def _check(
    row, plain: str, cited: list[int], flat: list[tuple[int, Sentence]], question: str
) -> tuple[list[Sentence], float]:
    """The sentences that support one claim (its cited sources first, else the best of all
    sources) and the claim's best support score."""

    def passes(j: int) -> bool:
        return row[j] >= SUPPORT_MIN and not unsupported(plain, flat[j][1].text, question)

    found: list[int] = []
    for n in cited:
        cols = sorted((j for j, (sn, _) in enumerate(flat) if sn == n), key=lambda j: -row[j])
        j = next((j for j in cols if passes(j)), None)  # none: points nowhere or unsupported
        if j is not None and j not in found:
            found.append(j)
    if not found:
        j = next((j for j in sorted(range(len(flat)), key=lambda j: -row[j]) if passes(j)), None)
        found = [] if j is None else [j]
    if found:
        return [flat[j][1] for j in found], max(float(row[j]) for j in found)
    return [], float(max(row, default=0.0))


def verify(
    answer: str, sources: Sequence[Source], embedder, text_of=None, question: str = ""
) -> Verified:
    """Check every citation of `answer` against `sources`; see the module docstring."""
    refused = model_refused(answer) or answer.strip().startswith(REFUSAL[:20])
    claims = split_claims(answer)[:MAX_CLAIMS]
    parsed = [(c, markers(c)) for c in claims]
    bodies = [strip_markers(c, ms) for c, ms in parsed]
    flat: list[tuple[int, Sentence]] = [(src.n, s) for src in sources for s in src.sentences]
    # Every claim and its shorter forms, scored against every evidence sentence at once.
    variants = [[b, *shorter_claims(_ANY_MARKER.sub("", b))] for b in bodies]
    texts = [_ANY_MARKER.sub("", v) for vs in variants for v in vs]  # numbers are not content
    matrix = support_matrix(texts, [s.text for _, s in flat], embedder, question)

    chosen: list[_Choice] = []
    row = 0
    asks_for = _WH.search(question) is not None
    q_words = _words(question)
    top_score = max((s.score for _, s in flat), default=0.0)
    for vs, (_, ms) in zip(variants, parsed, strict=True):
        cited = _cited_numbers(ms)
        choice = None
        if vs[0].rstrip().endswith("?") or refusal_sentence(vs[0]):
            chosen.append(_Choice(vs[0], (), 0.0, False, 0.0, echo=True))
            row += len(vs)
            continue
        for v_i, variant in enumerate(vs):
            plain = texts[row + v_i]
            if not terms(plain):
                choice = choice or _Choice(variant, (), 0.0, False, 0.0)
                break
            kept, best = _check(matrix[row + v_i], plain, cited, flat, question)
            if asks_for and not (_words(plain) - q_words - FRAMING):
                kept = []  # repeats the question without answering it
            if kept and max(s.score for s in kept) < TOPIC_RATIO * top_score:
                kept = []  # rests on a sentence that is not about the question
            if choice is None:  # the full claim, as the model wrote it (if nothing passes)
                choice = _Choice(variant, (), best, True, relevance(plain, question))
            if kept:
                choice = _Choice(variant, tuple(kept), best, True, relevance(plain, question))
                break
        row += len(vs)
        chosen.append(choice)

    top = max((c.relevance for c in chosen if c.kept), default=0.0)
    chosen = [
        c
        if not c.kept or c.relevance >= RELEVANCE_RATIO * top
        else _Choice(c.body, (), c.support, c.has_content, c.relevance)
        for c in chosen
    ]
    any_supported = any(c.kept for c in chosen)
    numbering: dict[tuple[str, int, int], int] = {}
    citations: list[Citation] = []
    out_claims: list[Claim] = []
    parts: list[str] = []
    for c in chosen:
        nums = []
        for s in c.kept:
            key = (s.source, s.start, s.end)
            if key not in numbering:
                numbering[key] = len(numbering) + 1
                quote = text_of(s.source)[s.start : s.end] if text_of else s.text
                citations.append(
                    Citation(
                        numbering[key],
                        s.source,
                        s.start,
                        s.end,
                        quote,
                        s.page,
                        s.chunk_id,
                        c.support,
                    )
                )
            nums.append(numbering[key])
        if c.echo:
            continue
        out_claims.append(Claim(c.body, tuple(nums), bool(c.kept), c.support))
        if DROP_UNSUPPORTED and any_supported and c.has_content and not c.kept:
            continue
        parts.append(with_markers(c.body, nums))
    return Verified(" ".join(parts), tuple(citations), tuple(out_claims), refused)
