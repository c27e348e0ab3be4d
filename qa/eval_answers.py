"""Answer quality on SQuAD v1.1 dev: token F1 and exact match of `qa.ask`'s answers against
the gold answers, the share answered, and citation correctness (an answered question's
citations quote a sentence that contains a gold answer).

    python -m qa.eval_answers --limit 60 --mode llm --variant default

The index holds the sampled questions' paragraphs plus random others (`--passages`), built
once in the eval cache. Variants (prompt style, examples, grammar) are the engine's own
switches (`qa.answer.Options`), so what measures best can be made the default.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence
from dataclasses import replace

from . import answer as engine
from .config import Settings

VARIANTS = {
    "default": {},  # no examples, 3 evidence sentences, best nearest the question
    "examples": {"examples": True},
    "best-first": {"best_last": False},
    "four-sources": {"max_sources": 4},
    "two-sources": {"max_sources": 2},
    "passages": {"style": "passages", "max_sources": None},
    "grammar": {"grammar": True},
    "no-fallback": {"fallback": False},
}


def main(argv: Sequence[str] | None = None) -> int:
    from .eval.datasets import load_dataset
    from .eval.metrics import exact_match, mean, token_f1
    from .eval.retrieval import open_index

    parser = argparse.ArgumentParser(prog="python -m qa.eval_answers", description=__doc__)
    parser.add_argument("--limit", type=int, default=60)
    parser.add_argument("--passages", type=int, default=300)
    parser.add_argument(
        "--pool", type=int, default=80, help="questions whose paragraphs are indexed (>= limit)"
    )
    parser.add_argument("--mode", choices=engine.MODES, default="llm")
    parser.add_argument("--variant", choices=sorted(VARIANTS), nargs="+", default=["default"])
    parser.add_argument("--model", default=None)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--cache", default=None, help="eval index cache (default ~/.cache/qa/eval)")
    parser.add_argument("--verbose", action="store_true")
    args = parser.parse_args(argv)

    settings = Settings.load(model=args.model)
    pool = max(args.pool, args.limit)
    data = load_dataset("squad").sample(pool, seed=args.seed, max_passages=args.passages)
    ev = open_index(data, settings, cache=args.cache)
    data = replace(data, questions=data.questions[: args.limit])
    pid_of_source = ev.pid_of
    for name in args.variant:
        options = replace(engine.DEFAULT_OPTIONS, **VARIANTS[name])
        f1s, ems, answered, cited_ok, seconds = [], [], 0, 0, []
        for q in data.questions:
            t0 = time.perf_counter()
            a = engine.ask(
                q.text, ev.index, mode=args.mode, settings=ev.index.settings, options=options
            )
            seconds.append(time.perf_counter() - t0)
            golds = list(q.answers)
            f1s.append(0.0 if a.refused else token_f1(a.text, golds))
            ems.append(0.0 if a.refused else exact_match(a.text, golds))
            if not a.refused:
                answered += 1
                if any(
                    pid_of_source.get(c.source) in q.relevant and any(g in c.quote for g in golds)
                    for c in a.citations
                ):
                    cited_ok += 1
            if args.verbose:
                print(f"{q.text!r} -> {a.text!r} (gold {golds[:2]})", file=sys.stderr)
        n = len(data.questions)
        print(
            f"{args.mode:10s} {name:12s} n={n} F1={mean(f1s):.3f} EM={mean(ems):.3f} "
            f"answered={answered / n:.2f} citation_correct={cited_ok / max(answered, 1):.2f} "
            f"median_s={sorted(seconds)[n // 2]:.2f}"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
