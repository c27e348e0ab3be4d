"""Refusals: how often unanswerable questions are declined and answerable ones answered
(`qa eval clapnq`), and the calibration of the answerability thresholds.

CLAPnq's unanswerable questions come with a passage on the same topic; all 597 distinct
passages (both files, deduplicated) are indexed together and every question is asked against
that one index, so retrieval finds the tempting passage and the engine must still decline.

Calibration (no model), for the constants in `qa/answer.py`:

    python -m qa.eval.refusal --limit 200 --seed 3 [--dump signals.jsonl]

prints, for thresholds on the retrieval evidence (`answerability`), the share of answerable
questions answered and of unanswerable ones declined, and the highest threshold that still
answers >= 90% of the answerable ones (the evaluation issue's target).
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Protocol

from qa.eval.metrics import refusal_rates

TARGET_ANSWERED = 0.90


class _Judged(Protocol):
    answerable: bool
    refused: bool


@dataclass(frozen=True)
class RefusalScores:
    answerable: int  # answerable questions asked
    answered: float | None  # share of them answered
    unanswerable: int  # unanswerable questions asked
    declined: float | None  # share of them declined

    def to_dict(self) -> dict:
        return {
            "answerable": self.answerable,
            "answered": None if self.answered is None else round(self.answered, 4),
            "unanswerable": self.unanswerable,
            "declined": None if self.declined is None else round(self.declined, 4),
        }


def refusal_scores(results: Sequence[_Judged]) -> RefusalScores:
    """Refusal rates of judged answers (anything with `answerable` and `refused`)."""
    yes = [r.refused for r in results if r.answerable]
    no = [r.refused for r in results if not r.answerable]
    answered, declined = refusal_rates(yes, no)
    return RefusalScores(len(yes), answered, len(no), declined)


def choose_threshold(
    pos: Sequence[float], neg: Sequence[float], target: float = TARGET_ANSWERED
) -> tuple[float, float, float]:
    """The highest threshold answering >= `target` of `pos` (scores of answerable questions;
    a question is answered when its score >= the threshold): (threshold, answered, declined)."""
    pos_sorted = sorted(pos)
    # the epsilon: (1 - 0.9) * 10 is 0.99999..., which must cut at 1, not 0
    cut = math.floor((1 - target) * len(pos_sorted) + 1e-9)
    t = pos_sorted[cut] if pos_sorted else 0.0
    answered = sum(1 for x in pos if x >= t) / max(len(pos), 1)
    declined = sum(1 for x in neg if x < t) / max(len(neg), 1)
    return t, answered, declined


def main(argv: Sequence[str] | None = None) -> int:
    from qa.answer import pipeline as engine
    from qa.config import Settings
    from qa.eval.datasets import load_dataset
    from qa.eval.retrieval import open_index

    parser = argparse.ArgumentParser(
        prog="python -m qa.eval.refusal", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--limit", type=int, default=200, help="questions, half of each kind")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--cache", default=None, help="eval index cache (default ~/.cache/qa/eval)")
    parser.add_argument("--data", default=None, help="the eval-data folder")
    parser.add_argument("--dump", default=None, help="write each question's signals (JSON lines)")
    args = parser.parse_args(argv)

    full = load_dataset("clapnq", args.data)
    ev = open_index(full, Settings.load(), cache=args.cache)
    questions = full.sample(args.limit, args.seed).questions
    pos: list[float] = []
    neg: list[float] = []
    t0 = time.perf_counter()
    dump = open(args.dump, "w", encoding="utf-8") if args.dump else None  # noqa: SIM115
    try:
        for q in questions:
            evidence = engine.retrieve(ev.index, q.text, ev.index.settings.k)
            (pos if q.answerable else neg).append(evidence.answerability)
            if dump:
                row = {"answerable": q.answerable, "question": q.text}
                row["answerability"] = evidence.answerability
                row.update(asdict(engine.retrieval_signals(evidence)))
                dump.write(json.dumps(row) + "\n")
    finally:
        if dump:
            dump.close()
        ev.index.close()
    print(f"retrieval evidence for {len(questions)} questions in {time.perf_counter() - t0:.0f}s")
    print("threshold  answered(answerable)  declined(unanswerable)")
    for t in [x / 100 for x in range(30, 86, 4)]:
        a = sum(1 for x in pos if x >= t) / max(len(pos), 1)
        d = sum(1 for x in neg if x < t) / max(len(neg), 1)
        print(f"  {t:.2f}     {a:.2f}                  {d:.2f}")
    t, a, d = choose_threshold(pos, neg)
    print(
        f"chosen (>= {TARGET_ANSWERED:.0%} answered): threshold={t:.3f} answered={a:.2f} declined={d:.2f}"
    )
    now = engine.EXTRACTIVE_MIN
    a = sum(1 for x in pos if x >= now) / max(len(pos), 1)
    d = sum(1 for x in neg if x < now) / max(len(neg), 1)
    print(f"extractive at EXTRACTIVE_MIN={now}: answered={a:.2f} declined={d:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
