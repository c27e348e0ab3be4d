"""Pure metric functions: ranking metrics over relevance lists, and SQuAD answer metrics.

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
