"""`qa bench index|search|ask|all`: the command line of the benchmarks."""

from __future__ import annotations

import argparse
import json
import math
import shutil
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

from qa.bench.index import DEFAULT_CHUNKS, format_index
from qa.bench.report import Result, format_search, format_summary
from qa.bench.scale import BM25_MAX, PIPELINE_MAX, SCALE_QUERIES
from qa.bench.search import DEFAULT_SIZES
from qa.errors import BadInput, QAError

EPILOG = f"""\
what each measures (every figure a median of repeats, shown against the raw library
measured in the same run; model loading excluded):
  index   Index.build (load, chunk, embed, SQLite, FAISS) on each backend (--backends) vs
          raw torch SentenceTransformer.encode of the same chunks, equal thread counts:
          chunks/s, target >= 2x for the default backend; index bytes per chunk, peak RSS.
  search  per size: an index of N chunks of SQuAD text built by qa (random vectors), then
          Index.search(k=5, hybrid) vs raw faiss IndexFlatIP + raw FTS5 bm25 query,
          p50/p95 ms, target <= 1.5x; also qa's VectorIndex.search and Store.bm25 alone.
          Sizes above --pipeline-max ({PIPELINE_MAX:,}) are layer-level scale points: qa's
          VectorIndex.search vs faiss IndexFlatIP on the same N synthetic unit vectors, and
          Store.bm25 vs the raw FTS5 query on N chunk-sized SQuAD-sentence texts in an SQLite
          database with qa's schema (the pipeline would take ~50 min per 1M chunks here),
          with both BM25 engines (QA_BM25 fts5 / memory); above --bm25-max, vectors only.
          The vectors are shaped like real embeddings (see qa/bench/scale.py).
  ask     qa.ask vs raw llama-cpp-python create_completion on the prompt qa.ask builds:
          time to first token, tokens/s (target >= 0.9x); second turn with/without the
          prompt cache; latency split.
  start   per backend, fresh processes on the sample corpus: `qa search` / `qa ask` wall time
          (target <= 2 s), whether torch was imported, `qa serve` launch to first chat
          answer; peak RSS of `qa index` and `qa serve`; bare `python -c pass` for reference.
  corpus  `qa index` of a real folder (--corpus DIR, e.g. python3.11-doc's HTML) on each
          backend: files/s, chunks/s, total seconds.
  ray     `qa index --ray` on a local Ray instance: 1 and 2 embedding actors (one thread
          each), 1 actor with every core, and the single-machine run, same folder (--chunks,
          --docs); seconds, chunks/s, the speed-up of 2 actors over 1.
  ocr     pages of known text drawn with Pillow at 4/6/8/12/16 pt (300 dpi), as PNG and an
          image-only PDF, read back by qa's loaders (Tesseract): character error rate and
          pages/s.
  all     index, search (default sizes {",".join(map(str, DEFAULT_SIZES))}) and ask, then one
          summary table.

example: qa bench search --sizes 10000,100000,1000000"""


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="qa bench",
        description="Measure indexing, search and answering speed against the raw libraries.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "what",
        choices=("index", "search", "ask", "start", "corpus", "ocr", "ray", "all"),
        help="what to measure",
    )
    p.add_argument(
        "--backends",
        default="torch,onnx",
        help="embedder backends for index, start and corpus, comma-separated (default torch,onnx)",
    )
    p.add_argument(
        "--repeats",
        type=int,
        default=None,
        help="runs / rounds per figure (default 3; ask: 5)",
    )
    p.add_argument(
        "--workdir",
        type=Path,
        default=None,
        help="where to put the benchmark's files (default: a temporary folder, deleted "
        "after); a given folder is kept and its search indexes reused",
    )
    p.add_argument("--profile", action="store_true", help="also print cProfile tables")
    p.add_argument("--json", action="store_true", help="print the records as JSON")
    p.add_argument("--out", type=Path, default=None, help="also write the JSON records here")

    g = p.add_argument_group("index")
    g.add_argument(
        "--chunks",
        type=int,
        default=DEFAULT_CHUNKS,
        help=f"about this many chunks (default {DEFAULT_CHUNKS})",
    )
    g.add_argument(
        "--docs",
        type=int,
        default=None,
        help="split the text into this many files (default: one per article)",
    )

    g = p.add_argument_group("corpus")
    g.add_argument("--corpus", type=Path, default=None, help="the folder to index")
    g.add_argument("--max-files", type=int, default=None, help="only its first N files")

    g = p.add_argument_group("search")
    g.add_argument(
        "--sizes",
        default=None,
        help="index sizes in chunks, comma-separated "
        f"(default {','.join(map(str, DEFAULT_SIZES))}; e.g. 10000,100000,1000000)",
    )
    g.add_argument("--queries", type=int, default=200, help="questions per size (default 200)")
    g.add_argument(
        "--pipeline-max",
        type=int,
        default=PIPELINE_MAX,
        help=f"larger sizes are measured at the layer level (default {PIPELINE_MAX})",
    )
    g.add_argument(
        "--scale-queries",
        type=int,
        default=SCALE_QUERIES,
        help=f"questions at a layer-level size (default {SCALE_QUERIES})",
    )
    g.add_argument(
        "--bm25-max",
        type=int,
        default=BM25_MAX,
        help=f"larger layer-level sizes measure the vectors only (default {BM25_MAX:,})",
    )

    g = p.add_argument_group("ask")
    g.add_argument("--index", default=None, help="index folder (default: settings, else corpus/)")
    g.add_argument("--model", default=None, help="GGUF model (default: settings)")
    g.add_argument("--question", default=None, help="the question to answer")
    g.add_argument("--follow-up", default=None, help="the second turn's question")
    g.add_argument("--max-tokens", type=int, default=None, help="answer tokens (default: settings)")
    return p


def parse_sizes(text: str | None) -> list[int]:
    if text is None:
        return list(DEFAULT_SIZES)
    try:
        sizes = [int(s.replace("_", "")) for s in text.split(",") if s.strip()]
    except ValueError:
        raise BadInput(f"--sizes takes comma-separated whole numbers, not {text!r}") from None
    if not sizes or min(sizes) < 1:
        raise BadInput("--sizes needs at least one positive size")
    return sizes


def run(args: argparse.Namespace) -> list[Result]:
    from qa.bench.data import load_corpus

    what = args.what
    sizes = parse_sizes(args.sizes) if what in ("search", "all") else []
    temp = args.workdir is None
    workdir = Path(tempfile.mkdtemp(prefix="qa-bench-")) if temp else args.workdir
    workdir.mkdir(parents=True, exist_ok=True)
    results: list[Result] = []

    def show(text: str) -> None:
        if not args.json:
            print(("\n" if results else "") + text, flush=True)

    backends = tuple(b.strip() for b in args.backends.split(",") if b.strip())
    try:
        if what == "ocr":
            from qa.bench.ocr import bench_ocr, format_ocr

            r = bench_ocr(workdir, repeats=args.repeats or 1)
            show(format_ocr(r))
            return [r]
        if what == "ray":
            from qa.bench.ray import DEFAULT_CHUNKS as RAY_CHUNKS
            from qa.bench.ray import bench_ray, format_ray

            chunks = RAY_CHUNKS if args.chunks == DEFAULT_CHUNKS else args.chunks
            r = bench_ray(workdir, chunks=chunks, docs=args.docs, repeats=args.repeats or 1)
            show(format_ray(r))
            return [r]
        if what == "corpus":
            from qa.bench.corpus import bench_corpus, format_corpus

            if args.corpus is None:
                raise BadInput("qa bench corpus needs --corpus DIR")
            r = bench_corpus(args.corpus, workdir, backends=backends, max_files=args.max_files)
            show(format_corpus(r))
            return [r]
        if what in ("start", "all"):
            from qa.bench.coldstart import bench_start, format_start

            r = bench_start(workdir, backends=backends, repeats=args.repeats or 3)
            show(format_start(r))
            results.append(r)
            if what == "start":
                return results
        corpus = load_corpus() if what != "ask" else None
        if what in ("index", "all"):
            from qa.bench.index import bench_index

            r = bench_index(
                workdir,
                chunks=args.chunks,
                docs=args.docs,
                repeats=args.repeats or 3,
                corpus=corpus,
                backends=backends,
                profile=args.profile,
            )
            show(format_index(r))
            results.append(r)
        searches = []
        for size in sizes:
            if size <= args.pipeline_max:
                from qa.bench.search import bench_search

                searches.append(
                    bench_search(
                        workdir,
                        size,
                        queries=args.queries,
                        repeats=args.repeats or 3,
                        corpus=corpus,
                        profile=args.profile,
                    )
                )
                folder = workdir / f"search-{size}"
            else:
                from qa.bench.scale import bench_scale

                searches.append(
                    bench_scale(
                        workdir,
                        size,
                        queries=min(args.queries, args.scale_queries),
                        repeats=args.repeats or 3,
                        corpus=corpus,
                        fts=size <= args.bm25_max,
                    )
                )
                folder = workdir / f"scale-{size}"
            if temp:  # the next size does not need this one's files
                shutil.rmtree(folder, ignore_errors=True)
        if searches:
            show(format_search(searches))
            results += searches
        if what in ("ask", "all"):
            from qa.bench.ask import FOLLOW_UP, QUESTION, bench_ask, format_ask

            r = bench_ask(
                workdir,
                index=args.index,
                model=args.model,
                repeats=args.repeats or 5,
                question=args.question or QUESTION,
                follow_up=args.follow_up or FOLLOW_UP,
                max_tokens=args.max_tokens,
            )
            show(format_ask(r))
            results.append(r)
        if what == "all":
            show(format_summary(results))
    finally:
        if temp:
            shutil.rmtree(workdir, ignore_errors=True)
    return results


def _finite(value):
    """The record with NaN and infinities (a figure that could not be measured) as null."""
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        results = run(args)
    except QAError as exc:
        print(f"qa bench: {exc}", file=sys.stderr)
        return exc.exit_code
    text = json.dumps([_finite(r.to_dict()) for r in results], indent=2, allow_nan=False)
    if args.json:
        print(text)
    if args.out is not None:
        args.out.write_text(text + "\n", encoding="utf-8")
    return 0
