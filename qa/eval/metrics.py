"""Pure metric functions: ranking metrics over relevance lists, SQuAD answer metrics,
citation precision and recall, refusal rates and latency percentiles.

A ranking is a list of booleans, best first: is the item at that rank relevant? `n_relevant`
is how many relevant items exist (1 for a question with one gold answer); at most that many
hits are credited, so overlapping chunks that all hold the same answer count once.
"""

from __future__ import annotations

import math
import re
import string
from collections import Counter
from collections.abc import Sequence


def _credited(relevance: Sequence[bool], k: int, n_relevant: int) -> list[int]:
    """0-based ranks within the top k of the relevant items that earn credit."""
    ranks = [i for i, rel in enumerate(relevance[:k]) if rel]
    return ranks[: max(n_relevant, 0)]


def recall_at_k(relevance: Sequence[bool], k: int, n_relevant: int = 1) -> float:
    """Share of the relevant items found in the top k (a hit rate when n_relevant is 1)."""
    if n_relevant <= 0:
        return 0.0
    return len(_credited(relevance, k, n_relevant)) / n_relevant


def reciprocal_rank(relevance: Sequence[bool], k: int = 10) -> float:
    """1 / rank of the first relevant item in the top k, else 0 (averaged, this is MRR@k)."""
    for i, rel in enumerate(relevance[:k]):
        if rel:
            return 1.0 / (i + 1)
    return 0.0


def ndcg_at_k(relevance: Sequence[bool], k: int = 10, n_relevant: int = 1) -> float:
    """Binary-gain nDCG@k: sum of 1/log2(rank+1) over credited hits, over the ideal sum."""
    if n_relevant <= 0:
        return 0.0
    dcg = sum(1.0 / math.log2(i + 2) for i in _credited(relevance, k, n_relevant))
    ideal = sum(1.0 / math.log2(i + 2) for i in range(min(n_relevant, k)))
    return dcg / ideal


def mean(values: Sequence[float]) -> float:
    return sum(values) / len(values) if values else 0.0


# --------------------------------------------------------------- SQuAD v1.1 answer metrics
# The official evaluate-v1.1.py normalisation: lower case, drop punctuation, drop the
# articles a/an/the, collapse whitespace.

_PUNCTUATION = frozenset(string.punctuation)
_ARTICLES = re.compile(r"\b(a|an|the)\b")


def normalize_answer(text: str) -> str:
    text = text.lower()
    text = "".join(ch for ch in text if ch not in _PUNCTUATION)
    text = _ARTICLES.sub(" ", text)
    return " ".join(text.split())


def exact_match(prediction: str, gold: str | Sequence[str]) -> float:
    """1.0 if the normalised prediction equals a normalised gold answer (the best of several)."""
    golds = [gold] if isinstance(gold, str) else list(gold)
    target = normalize_answer(prediction)
    return max((float(target == normalize_answer(g)) for g in golds), default=0.0)


def token_f1(prediction: str, gold: str | Sequence[str]) -> float:
    """Token-overlap F1 of the normalised texts (the best over several gold answers)."""
    golds = [gold] if isinstance(gold, str) else list(gold)
    return max((_f1(prediction, g) for g in golds), default=0.0)


def _f1(prediction: str, gold: str) -> float:
    pred = normalize_answer(prediction).split()
    ref = normalize_answer(gold).split()
    common = Counter(pred) & Counter(ref)
    same = sum(common.values())
    if same == 0:
        return 0.0
    precision = same / len(pred)
    recall = same / len(ref)
    return 2 * precision * recall / (precision + recall)


def contains_answer(text: str, gold: str | Sequence[str]) -> bool:
    """Whether the normalised tokens of a gold answer occur, in order and contiguous, in the
    normalised `text` ("1990" does not contain "1"; "in the 1990s" does not contain "1990")."""
    golds = [gold] if isinstance(gold, str) else list(gold)
    tokens = normalize_answer(text).split()
    for g in golds:
        want = normalize_answer(g).split()
        if want and any(
            tokens[i : i + len(want)] == want for i in range(len(tokens) - len(want) + 1)
        ):
            return True
    return False


_MARKERS = re.compile(r"\s*\[\d+(?:\s*[,;]\s*\d+)*\]")


def strip_markers(text: str) -> str:
    """An answer's text without its citation markers ("[1]", "[1][2]", "[1, 3]")."""
    return " ".join(_MARKERS.sub("", text).split())


# --------------------------------------------------------------- citations and refusals


def citation_precision(correct: Sequence[Sequence[bool]]) -> float | None:
    """Share of all citations that are correct, over the questions' lists of judgements
    (one boolean per citation); None when there is no citation at all."""
    flat = [c for question in correct for c in question]
    return sum(flat) / len(flat) if flat else None


def citation_recall(correct: Sequence[Sequence[bool]]) -> float | None:
    """Share of the (answered) questions with at least one correct citation; a question
    without citations counts as a miss. None when there is no question."""
    return sum(1 for q in correct if any(q)) / len(correct) if correct else None


def refusal_rates(
    answerable_refused: Sequence[bool], unanswerable_refused: Sequence[bool]
) -> tuple[float | None, float | None]:
    """(share of answerable questions answered, share of unanswerable questions declined);
    None for a kind with no questions."""
    answered = 1 - sum(answerable_refused) / len(answerable_refused) if answerable_refused else None
    declined = (
        sum(unanswerable_refused) / len(unanswerable_refused) if unanswerable_refused else None
    )
    return answered, declined


def percentile(values: Sequence[float], q: float) -> float | None:
    """The q-th percentile (0-100) with linear interpolation between the closest ranks
    (numpy's default); None for no values."""
    if not values:
        return None
    if not 0 <= q <= 100:
        raise ValueError(f"percentile must be in 0..100, not {q}")
    ordered = sorted(values)
    pos = (len(ordered) - 1) * q / 100
    lo = math.floor(pos)
    hi = min(lo + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (pos - lo)
