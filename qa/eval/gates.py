"""Calibrating `Options(evidence="learned", refusal="both")`: the evidence scorer chooses the
sentence, and it and the similarity heuristics may each decline.

Each gate alone has a threshold that answers 90% of answerable questions; together, at
those thresholds, they decline more questions than either (on the test part: 86.9% of
CLAPnq's answerables answered). This command picks the pair of thresholds for the two
gates together, on the calibration slice of the reader's train part only (never the test
part), the way the single thresholds were picked:

    python -m qa.eval.gates [--squad 300] [--write]

1. every CLAPnq calibration question (answerable and unanswerable) against the index of all
   CLAPnq passages, and `--squad` SQuAD calibration questions (all answerable) against the
   index of all SQuAD dev paragraphs, each retrieved with the learned evidence (`qa eval`'s
   indexes and retrieval; no answers are generated): the scorer's answerability and the
   heuristics' answerability of each;
2. over pairs of thresholds drawn from the answerable questions' own values (every
   1/80 of their lowest 10%, and 0), the pair that declines the most CLAPnq unanswerables while answering at least 90% of CLAPnq's
   answerables and at least 90% of the SQuAD questions;
3. `--write` stores it in the reader's combiner.json as thresholds "both_answer" and
   "both_similarity", which the pipeline uses with `refusal="both"` in extractive mode.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass

from qa.eval.refusal import TARGET_ANSWERED


@dataclass(frozen=True)
class Signal:
    dataset: str
    answerable: bool
    scorer: float  # the evidence scorer's answerability
    similarity: float  # the similarity heuristics' answerability


@dataclass(frozen=True)
class Pair:
    scorer_min: float
    similarity_min: float
    clapnq_answered: float
    clapnq_declined: float
    squad_answered: float


def rates(signals: Sequence[Signal], scorer_min: float, similarity_min: float) -> Pair:
    def answered(s: Signal) -> bool:
        return s.scorer >= scorer_min and s.similarity >= similarity_min

    def share(rows) -> float:
        rows = list(rows)
        return sum(rows) / len(rows) if rows else float("nan")

    clap = [s for s in signals if s.dataset == "clapnq"]
    squad = [s for s in signals if s.dataset == "squad"]
    return Pair(
        scorer_min,
        similarity_min,
        share(answered(s) for s in clap if s.answerable),
        share(not answered(s) for s in clap if not s.answerable),
        share(answered(s) for s in squad),
    )


def choose(signals: Sequence[Signal], target: float = TARGET_ANSWERED) -> Pair:
    """The pair declining the most CLAPnq unanswerables with both sets answering >= target
    of their answerable questions (ties: the most answered)."""
    best = None
    for a in _cuts([s.scorer for s in signals if s.answerable], 1 - target):
        for b in _cuts([s.similarity for s in signals if s.answerable], 1 - target):
            p = rates(signals, a, b)
            if p.clapnq_answered < target or p.squad_answered < target:
                break  # a higher b only answers fewer
            key = (p.clapnq_declined, p.clapnq_answered + p.squad_answered)
            if best is None or key > best[0]:
                best = (key, p)
    if best is None:
        return rates(signals, 0.0, 0.0)
    return best[1]


def _cuts(values: Sequence[float], most: float, steps: int = 80) -> list[float]:
    """Candidate thresholds: 0 and the values at each quantile up to `most` (a threshold
    above that quantile alone would already decline more than allowed)."""
    ordered = sorted(values)
    picks = {0.0}
    if ordered:
        for i in range(steps + 1):
            picks.add(ordered[min(len(ordered) - 1, int(most * len(ordered) * i / steps))])
    return sorted(picks)


def collect(part: str, squad_limit: int, cache=None, data=None, log=print) -> list[Signal]:
    """The two answerabilities of the `part` questions (see the module docstring)."""
    from dataclasses import replace

    from qa.answer import pipeline
    from qa.config import Settings
    from qa.engine import Engine
    from qa.eval.datasets import load_dataset
    from qa.eval.retrieval import open_index
    from qa.train.split import part as part_of

    out: list[Signal] = []
    for name, limit in (("clapnq", None), ("squad", squad_limit)):
        full = load_dataset(name, data)
        keep = tuple(q for q in full.questions if part_of(full.name, q, data) == part)
        dataset = replace(full, questions=keep).sample(limit, 0)
        ev = open_index(dataset, Settings.load(), cache=cache)
        try:
            reader = Engine(ev.index.settings, index=ev.index).reader()
            t0 = time.perf_counter()
            for q in dataset.questions:
                e = pipeline.retrieve(ev.index, q.text, ev.index.settings.k, reader, "learned")
                sim = e.similarity if e.similarity is not None else e.answerability
                if e.answerability == 0.0:  # declined by `qa.answer.expect`: by both gates
                    sim = 0.0
                out.append(Signal(name, q.answerable, e.answerability, sim))
            log(f"{name}: {len(dataset.questions)} questions in {time.perf_counter() - t0:.0f}s")
        finally:
            ev.index.close()
    return out


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m qa.eval.gates", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--squad", type=int, default=300, help="SQuAD calibration questions")
    parser.add_argument("--cache", default=None, help="eval index cache (default ~/.cache/qa/eval)")
    parser.add_argument("--data", default=None, help="the eval-data folder")
    parser.add_argument("--dump", default=None, help="write each question's signals (JSON lines)")
    parser.add_argument("--write", action="store_true", help="store the pair in combiner.json")
    args = parser.parse_args(argv)

    from qa.answer import combine, pipeline
    from qa.models.reader import default_reader_path

    signals = collect("calib", args.squad, args.cache, args.data)
    if args.dump:
        with open(args.dump, "w", encoding="utf-8") as f:
            for s in signals:
                f.write(json.dumps(s.__dict__) + "\n")
    folder = default_reader_path()
    scorer = combine.Combiner.load(folder)
    alone = scorer.thresholds["answer"]
    chosen = choose(signals)
    for label, p in (
        ("the scorer alone", rates(signals, alone, 0.0)),
        ("both at their own thresholds", rates(signals, alone, pipeline.EXTRACTIVE_MIN)),
        ("chosen", chosen),
    ):
        print(
            f"{label:30} scorer >= {p.scorer_min:.4f}, similarity >= {p.similarity_min:.4f}: "
            f"CLAPnq answered {p.clapnq_answered:.3f} declined {p.clapnq_declined:.3f}, "
            f"SQuAD answered {p.squad_answered:.3f}"
        )
    if args.write:
        p = chosen
        path = folder / combine.FILE_NAME
        record = json.loads(path.read_text(encoding="utf-8"))
        record["thresholds"]["both_answer"] = round(p.scorer_min, 4)
        record["thresholds"]["both_similarity"] = round(p.similarity_min, 4)
        record["calibration_figures"]["both"] = {
            "clapnq_answered": round(p.clapnq_answered, 4),
            "clapnq_declined": round(p.clapnq_declined, 4),
            "squad_answered": round(p.squad_answered, 4),
            "how": f"python -m qa.eval.gates --squad {args.squad} (calibration slice)",
        }
        path.write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
        print(f"wrote both_answer / both_similarity to {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
