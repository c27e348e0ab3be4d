"""Evaluation results as a terminal table, as JSON, and as files in an output folder."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

from .retrieval import QuestionResult, RetrievalScores

COLUMNS = ("recall@1", "recall@5", "recall@10", "recall@20", "mrr@10", "ndcg@10")


def table(scores: Sequence[RetrievalScores]) -> str:
    """A fixed-width table, one row per retriever."""
    if not scores:
        return "no results\n"
    first = scores[0]
    lines = [
        f"{first.dataset}: {first.questions} questions, {first.passages} passages, "
        f"{first.chunks} chunks",
        "",
    ]
    width = max(len("retriever"), *(len(s.retriever) for s in scores))
    lines.append(f"{'retriever':<{width}}  " + "  ".join(f"{c:>9}" for c in COLUMNS))
    for s in scores:
        row = s.to_dict()
        lines.append(f"{s.retriever:<{width}}  " + "  ".join(f"{row[c]:>9.3f}" for c in COLUMNS))
    return "\n".join(lines) + "\n"


def to_json(scores: Sequence[RetrievalScores], settings: dict | None = None) -> dict:
    return {"settings": settings or {}, "results": [s.to_dict() for s in scores]}


def write_out(
    directory: str | Path,
    scores: Sequence[RetrievalScores],
    per_question: Sequence[Sequence[QuestionResult]],
    settings: dict | None = None,
) -> Path:
    """`summary.json`, and `<dataset>-<retriever>.jsonl` with each question's ranking."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    summary = directory / "summary.json"
    summary.write_text(json.dumps(to_json(scores, settings), indent=2) + "\n", encoding="utf-8")
    for s, results in zip(scores, per_question, strict=True):
        path = directory / f"{s.dataset}-{s.retriever}.jsonl"
        with path.open("w", encoding="utf-8") as f:
            for r in results:
                first = next((i + 1 for i, rel in enumerate(r.relevance) if rel), None)
                row = {
                    "id": r.qid,
                    "first_hit": first,
                    "relevant": r.n_relevant,
                    "hits": [i + 1 for i, rel in enumerate(r.relevance) if rel],
                    "retrieved": list(r.retrieved),
                }
                f.write(json.dumps(row) + "\n")
    return summary
