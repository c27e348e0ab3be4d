"""Calibrate and measure refusals on CLAPnq dev.

CLAPnq's unanswerable questions come with a passage on the same topic, so all 597 distinct
passages (answerable and unanswerable files, deduplicated) are indexed together and every
question is asked against that one index.

    python -m qa.eval_refusal --limit 300            # extractive: curve + chosen threshold
    python -m qa.eval_refusal --limit 50 --llm       # also llm mode, at the current constants

Step 1 (no model): retrieval evidence for each question -> `answerability`. The threshold is
the highest one that still answers >= 90% of the answerable questions (the evaluation issue's
target); the decline rate on unanswerable questions at that threshold is reported. Those
thresholds are stored in `qa/answer.py` (EXTRACTIVE_MIN, LLM_MIN). Step 2 (`--llm`) runs the
full llm pipeline, where the model's own refusals and the support check add to the gate.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict

from . import answer as engine
from .config import Settings

TARGET_ANSWERED = 0.90


def _sample(questions, limit: int | None, seed: int):
    questions = list(questions)
    if limit is not None and limit < len(questions):
        questions = random.Random(seed).sample(questions, limit)
    return questions


def choose_threshold(pos: Sequence[float], neg: Sequence[float], target: float = TARGET_ANSWERED):
    """The highest threshold answering >= `target` of `pos`; (threshold, answered, declined)."""
    pos_sorted = sorted(pos)
    # answered = share of pos >= t; the largest t keeping that share is a quantile of pos
    cut = int((1 - target) * len(pos_sorted))
    t = pos_sorted[cut] if pos_sorted else 0.0
    answered = sum(1 for x in pos if x >= t) / max(len(pos), 1)
    declined = sum(1 for x in neg if x < t) / max(len(neg), 1)
    return t, answered, declined


def main(argv: Sequence[str] | None = None) -> int:
    from .eval.datasets import default_data_dir, load_clapnq, load_dataset
    from .eval.retrieval import open_index

    parser = argparse.ArgumentParser(prog="python -m qa.eval_refusal", description=__doc__)
    parser.add_argument("--limit", type=int, default=100, help="questions of each kind")
    parser.add_argument("--llm", action="store_true", help="also run llm mode")
    parser.add_argument("--llm-limit", type=int, default=None, help="questions of each kind (llm)")
    parser.add_argument("--model", default=None)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--cache", default=None, help="eval index cache (default ~/.cache/qa/eval)")
    parser.add_argument("--dump", default=None, help="write each question's signals (JSON lines)")
    args = parser.parse_args(argv)

    settings = Settings.load(model=args.model)
    data = load_dataset("clapnq")  # all passages of both files; answerable questions
    ev = open_index(data, settings, cache=args.cache)
    index = ev.index
    unanswerable = load_clapnq(default_data_dir(), unanswerable=True).questions
    kinds = {
        "answerable": _sample(data.questions, args.limit, args.seed),
        "unanswerable": _sample(unanswerable, args.limit, args.seed),
    }
    scores: dict[str, list[float]] = {}
    t0 = time.perf_counter()
    dump = open(args.dump, "w", encoding="utf-8") if args.dump else None  # noqa: SIM115
    for kind, questions in kinds.items():
        scores[kind] = []
        for q in questions:
            evidence = engine.retrieve(index, q.text, index.settings.k)
            scores[kind].append(evidence.answerability)
            if dump:
                row = {"kind": kind, "question": q.text, "answerability": evidence.answerability}
                row.update(asdict(engine.retrieval_signals(evidence)))
                dump.write(json.dumps(row) + "\n")
    if dump:
        dump.close()
    print(
        f"retrieval evidence for {sum(map(len, kinds.values()))} questions "
        f"in {time.perf_counter() - t0:.0f}s",
        file=sys.stderr,
    )
    pos, neg = scores["answerable"], scores["unanswerable"]
    print("threshold  answered(answerable)  declined(unanswerable)")
    for t in [x / 100 for x in range(30, 86, 4)]:
        a = sum(1 for x in pos if x >= t) / len(pos)
        d = sum(1 for x in neg if x < t) / len(neg)
        print(f"  {t:.2f}     {a:.2f}                  {d:.2f}")
    t, a, d = choose_threshold(pos, neg)
    print(
        f"chosen (>= {TARGET_ANSWERED:.0%} answered): threshold={t:.3f} answered={a:.2f} declined={d:.2f}"
    )
    current = engine.EXTRACTIVE_MIN
    a_now = sum(1 for x in pos if x >= current) / len(pos)
    d_now = sum(1 for x in neg if x < current) / len(neg)
    print(f"extractive at EXTRACTIVE_MIN={current}: answered={a_now:.2f} declined={d_now:.2f}")

    if args.llm:
        n = args.llm_limit or args.limit
        results = {}
        for kind, questions in kinds.items():
            refused = 0
            for q in questions[:n]:
                answer = engine.ask(q.text, index, mode="llm", settings=index.settings)
                refused += answer.refused
            results[kind] = refused / max(len(questions[:n]), 1)
        print(
            f"llm at LLM_MIN={engine.LLM_MIN} (n={n} each): "
            f"answered={1 - results['answerable']:.2f} declined={results['unanswerable']:.2f}"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
