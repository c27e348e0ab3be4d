"""`qa eval DATASET`: retrieval metrics on a real data set (see shared/eval-data/README.md)."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence

from ..config import Settings
from ..errors import BadInput, QAError
from .datasets import NAMES, load_dataset
from .report import table, to_json, write_out
from .retrieval import RETRIEVERS, K, cache_dir, evaluate, open_index

ALL = ("dense", "bm25", "hybrid")


def build_parser(prog: str = "qa eval") -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog=prog,
        description="Measure retrieval (recall@k, MRR@10, nDCG@10) on an evaluation data set. "
        "The data set's passages are indexed once into a cache folder and reused.",
    )
    p.add_argument("dataset", choices=NAMES, help="which data set")
    p.add_argument("--limit", type=int, metavar="N", help="evaluate N random questions")
    p.add_argument("--seed", type=int, default=0, metavar="S", help="seed for --limit (0)")
    p.add_argument(
        "--max-passages",
        type=int,
        metavar="N",
        help="index only the questions' own passages plus random others, N in all",
    )
    p.add_argument(
        "--retriever",
        default="all",
        metavar="NAME[,NAME...]",
        help="dense, bm25, hybrid (the configured fusion), hybrid-rrf, hybrid-weighted, "
        "a comma-separated list of them, or all = dense,bm25,hybrid (default)",
    )
    p.add_argument("--chunk-tokens", type=int, metavar="N", help="chunk size in tokens")
    p.add_argument("--fusion", choices=("rrf", "weighted"), help="fusion used by hybrid")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.add_argument("--out", metavar="DIR", help="write summary.json and per-question rankings")
    p.add_argument(
        "--cache",
        metavar="DIR",
        help="folder for the data sets' indexes (default ~/.cache/qa/eval); each index goes "
        "in DIR/<dataset>-<hash of passages and settings>",
    )
    p.add_argument(
        "--data", metavar="DIR", help="the eval-data folder (default ../shared/eval-data)"
    )
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        if args.limit is not None and args.limit < 1:
            raise BadInput("--limit must be at least 1")
        if args.max_passages is not None and args.max_passages < 1:
            raise BadInput("--max-passages must be at least 1")
        retrievers = _retrievers(args.retriever)
        settings = Settings.load(chunk_tokens=args.chunk_tokens, fusion=args.fusion)
        dataset = load_dataset(args.dataset, args.data).sample(
            args.limit, args.seed, args.max_passages
        )
        ev = open_index(dataset, settings, args.cache)
        try:
            outcome = evaluate(ev, dataset, retrievers, K)
        finally:
            ev.index.close()
    except QAError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code
    scores = [s for s, _ in outcome]
    meta = {
        "dataset": args.dataset,
        "limit": args.limit,
        "seed": args.seed,
        "max_passages": args.max_passages,
        "k": K,
        "embed_model": settings.embed_model,
        "chunk_tokens": settings.chunk_tokens,
        "chunk_overlap": settings.chunk_overlap,
        "fusion": settings.fusion,
        "index": str(cache_dir(dataset, settings, args.cache)),
    }
    if args.out:
        path = write_out(args.out, scores, [r for _, r in outcome], meta)
        print(f"wrote {path}", file=sys.stderr)
    if args.json:
        print(json.dumps(to_json(scores, meta), indent=2))
    else:
        print(table(scores), end="")
    return 0


def _retrievers(value: str) -> tuple[str, ...]:
    names = ALL if value == "all" else tuple(n.strip() for n in value.split(",") if n.strip())
    unknown = [n for n in names if n not in RETRIEVERS]
    if unknown or not names:
        raise BadInput(
            f"unknown retriever {', '.join(unknown) or value!r}: use {', '.join(RETRIEVERS)} or all"
        )
    return names
