"""`qa eval DATASET`: retrieval, answers, citations, refusals and latency on a real data set
(see shared/eval-data/README.md), as a table, JSON, a markdown report and PNG plots."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence

from qa.errors import BadInput, QAError
from qa.eval.answers import MODES, VARIANTS
from qa.eval.datasets import NAMES
from qa.eval.report import table, to_json, write_out
from qa.eval.run import DEFAULT_LIMITS, EvalRequest, parse_retrievers, run_eval

DESCRIPTION = """\
Evaluate qa on a real data set. The data set's passages are indexed once through the normal
qa pipeline into a cache folder and reused. Retrieval (recall@1/5/10/20, MRR@10, nDCG@10) is
scored for each retriever asked for; with an answer mode, the questions are then asked with
qa.ask (hybrid retrieval, as `qa ask` does) and the answers, citations, refusals (CLAPnq) and
per-stage latency are scored.

  squad    SQuAD v1.1 dev: 10,570 questions over 2,067 paragraphs; exact match, token F1
  clapnq   CLAPnq dev: 300 answerable + 300 unanswerable questions over 597 passages;
           token F1, refusals (a --limit sample is half of each kind)
  scifact  SciFact / BEIR test: 300 claims over 5,183 abstracts; retrieval only (nDCG@10)

Results: a table on stdout (or JSON with --json), and summary.json, report.md,
recall_at_k.png, latency.png and per-question JSON lines in --out DIR.
"""

EPILOG = """\
examples:
  qa eval squad --mode none                    full SQuAD dev, retrieval only, 3 retrievers
  qa eval squad --limit 100                    + extractive answers and citations
  qa eval squad --limit 50 --mode llm          + answers from the model (a few minutes)
  qa eval clapnq --mode llm --limit 100        refusals: 50 answerable, 50 unanswerable
  qa eval scifact                              nDCG@10 (BEIR SciFact test set)
"""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # one line, exit 2 (through BadInput), no usage dump
        raise BadInput(f"{message} (see qa eval --help)")


def build_parser(prog: str = "qa eval") -> argparse.ArgumentParser:
    p = _Parser(
        prog=prog,
        description=DESCRIPTION,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("dataset", metavar="DATASET", help=f"{' | '.join(NAMES)}")
    p.add_argument(
        "--limit",
        type=int,
        metavar="N",
        help="evaluate N questions drawn at random (default: all of them with --mode none and "
        f"for scifact, {DEFAULT_LIMITS['extractive']} in extractive mode, "
        f"{DEFAULT_LIMITS['llm']} in llm mode)",
    )
    p.add_argument("--seed", type=int, default=0, metavar="S", help="seed for --limit (0)")
    p.add_argument(
        "--retriever",
        default="all",
        metavar="NAME[,NAME...]",
        help="dense, bm25, hybrid (the configured fusion), hybrid-rrf, hybrid-weighted, "
        "a comma-separated list of them, or all = dense,bm25,hybrid (default). "
        "Answers always use hybrid.",
    )
    p.add_argument(
        "--mode",
        default="extractive",
        choices=MODES,
        help="how answers are made: extractive (no model; the default), llm (the GGUF model), "
        "or none (retrieval only). Ignored for scifact.",
    )
    p.add_argument("--model", metavar="PATH", help="GGUF model file for --mode llm")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.add_argument(
        "--out",
        metavar="DIR",
        help="folder for summary.json, report.md, the PNG plots and per-question results "
        "(default eval-results/DATASET)",
    )
    p.add_argument(
        "--variant",
        default="default",
        choices=sorted(VARIANTS),
        metavar="NAME",
        help="answer engine variant to compare: " + ", ".join(VARIANTS),
    )
    p.add_argument(
        "--max-passages",
        type=int,
        metavar="N",
        help="index only the questions' own passages plus random others, N in all",
    )
    p.add_argument("--chunk-tokens", type=int, metavar="N", help="chunk size in tokens")
    p.add_argument("--fusion", choices=("rrf", "weighted"), help="fusion used by hybrid")
    p.add_argument(
        "--cache",
        metavar="DIR",
        help="folder for the data sets' indexes (default ~/.cache/qa/eval); each index goes "
        "in DIR/<dataset>-<hash of passages and settings>",
    )
    p.add_argument(
        "--data", metavar="DIR", help="the eval-data folder (default ../shared/eval-data)"
    )
    p.add_argument(
        "--part",
        choices=("test", "calib", "all"),
        help="which questions: the test part of the reader's split (the default when answers "
        "are scored), the calibration slice of its train part (for choosing settings), or "
        "all (the default for --mode none and scifact)",
    )
    p.add_argument("--debug", action="store_true", help=argparse.SUPPRESS)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    try:
        args = build_parser().parse_args(argv)
        request = EvalRequest(
            dataset=args.dataset,
            limit=args.limit,
            seed=args.seed,
            retrievers=parse_retrievers(args.retriever),
            mode=args.mode,
            model=args.model,
            variant=args.variant,
            max_passages=args.max_passages,
            chunk_tokens=args.chunk_tokens,
            fusion=args.fusion,
            cache=args.cache,
            data=args.data,
            part=args.part,
        )
        request.check()
        run = run_eval(request)
        paths = write_out(args.out or f"eval-results/{request.dataset}", run)
    except QAError as exc:
        if "--debug" in (sys.argv if argv is None else argv):
            raise
        print(f"qa eval: error: {exc}", file=sys.stderr)
        return exc.exit_code
    print(f"wrote {', '.join(p.name for p in paths)} in {paths[0].parent}", file=sys.stderr)
    if args.json:
        print(json.dumps(to_json(run), indent=2))
    else:
        print(table(run), end="")
    return 0
