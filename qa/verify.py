"""Citations are checked, not trusted.

The model's answer is split into claims (sentences). Each `[n]` marker is parsed (markers in
quotes or code spans are text, not citations) and mapped to the evidence sentence of source n
that best supports the claim. A marker survives only if that support is high enough; markers
that point nowhere (`[7]` of 3 sources) or at unsupportive text are removed. A claim left
without a citation gets the best-supporting sentence of all sources, if one supports it.
Surviving citations are renumbered 1..n in order of appearance.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from .chunking import split_sentences
from .prompting import REFUSAL, Source
from .records import Citation, Claim
from .support import Sentence, support_matrix, terms

# A claim is supported by a sentence at this support or more (lexical precision blended with
# embedding similarity, see qa.support). Chosen by hand on the sample corpus and CLAPnq dev
# answers: grounded paraphrases score 0.55-0.95, unrelated or contradicting claims below 0.45.
SUPPORT_MIN = 0.5
# Drop answer sentences that nothing supports when at least one other sentence is supported.
DROP_UNSUPPORTED = True
MAX_CLAIMS = 4

_MARKER = re.compile(r"\s*\[(\d{1,3}(?:\s*[,;]\s*\d{1,3})*)\]")
_ANY_MARKER = re.compile(r"\[\d{1,3}(?:\s*[,;]\s*\d{1,3})*\]")
_PROTECTED = re.compile(r"`[^`]*`|\"[^\"]*\"|“[^”]*”")
_MARKER_AFTER_END = re.compile(r"([.!?])((?:\s*\[\d{1,3}(?:\s*[,;]\s*\d{1,3})*\])+)")
_PREFIX = re.compile(r"^\s*(?:answer|assistant)\s*:\s*", re.IGNORECASE)
_REFUSES = re.compile(
    r"documents?\s+(?:don'?t|do not|does not|doesn'?t)\s+say|sources?\s+(?:don'?t|do not|does not|"
    r"doesn'?t)\s+(?:say|mention|answer)|not\s+(?:mentioned|provided|stated|specified)|"
    r"no information|(?:cannot|can't|unable to)\s+(?:answer|find|determine)|"
    r"(?:don'?t|do not)\s+know",
    re.IGNORECASE,
)


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
    return bool(_REFUSES.search(text))


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
    """Answer sentences, with markers written after the full stop moved before it."""
    text = _PREFIX.sub("", text.strip())
    text = _MARKER_AFTER_END.sub(lambda m: m.group(2) + m.group(1), text)
    claims, seen = [], set()
    for a, b in split_sentences(text):
        claim = text[a:b].strip()
        key = " ".join(terms(_ANY_MARKER.sub("", claim))) or claim.lower()
        if claim and key not in seen:
            seen.add(key)
            claims.append(claim)
    return claims


def with_markers(body: str, numbers: Sequence[int]) -> str:
    if not numbers:
        return body
    tags = "".join(f"[{n}]" for n in numbers)
    m = re.search(r"[.!?]+[\"'”’)]*$", body)
    if m:
        return f"{body[: m.start()].rstrip()} {tags}{body[m.start() :]}"
    return f"{body} {tags}"


def verify(
    answer: str, sources: Sequence[Source], embedder, text_of=None, question: str = ""
) -> Verified:
    """Check every citation of `answer` against `sources`; see the module docstring."""
    refused = model_refused(answer) or answer.strip().startswith(REFUSAL[:20])
    claims = split_claims(answer)[:MAX_CLAIMS]
    parsed = [(c, markers(c)) for c in claims]
    bodies = [strip_markers(c, ms) for c, ms in parsed]
    flat: list[tuple[int, Sentence]] = [(src.n, s) for src in sources for s in src.sentences]
    plain = [_ANY_MARKER.sub("", b) for b in bodies]  # bracketed numbers are not content
    matrix = support_matrix(plain, [s.text for _, s in flat], embedder, question)

    chosen: list[tuple[str, list[Sentence], float, bool]] = []  # body, sentences, support, content
    for i, (body, (_, ms)) in enumerate(zip(bodies, parsed, strict=True)):
        has_content = bool(terms(plain[i]))
        kept: list[Sentence] = []
        best = 0.0
        if has_content and flat:
            cited = [n for m in ms for n in m.numbers]
            for n in dict.fromkeys(cited):
                cols = [j for j, (sn, _) in enumerate(flat) if sn == n]
                if not cols:
                    continue  # points nowhere
                j = max(cols, key=lambda j: matrix[i, j])
                best = max(best, float(matrix[i, j]))
                if matrix[i, j] >= SUPPORT_MIN and flat[j][1] not in kept:
                    kept.append(flat[j][1])
            if not kept:
                j = int(matrix[i].argmax())
                best = max(best, float(matrix[i, j]))
                if matrix[i, j] >= SUPPORT_MIN:
                    kept.append(flat[j][1])
        chosen.append((body, kept, best, has_content))

    any_supported = any(kept for _, kept, _, _ in chosen)
    numbering: dict[tuple[str, int, int], int] = {}
    citations: list[Citation] = []
    out_claims: list[Claim] = []
    parts: list[str] = []
    for body, kept, best, has_content in chosen:
        nums = []
        for s in kept:
            key = (s.source, s.start, s.end)
            if key not in numbering:
                numbering[key] = len(numbering) + 1
                quote = text_of(s.source)[s.start : s.end] if text_of else s.text
                citations.append(
                    Citation(
                        numbering[key], s.source, s.start, s.end, quote, s.page, s.chunk_id, best
                    )
                )
            nums.append(numbering[key])
        out_claims.append(Claim(body, tuple(nums), bool(kept), best))
        if DROP_UNSUPPORTED and any_supported and has_content and not kept:
            continue
        parts.append(with_markers(body, nums))
    return Verified(" ".join(parts), tuple(citations), tuple(out_claims), refused)
