"""`qa bench ask`: how fast answers are, and what the engine costs over raw llama.cpp.

In one run, on the same prompt, repeated `--repeats` times (medians reported):
1. qa.ask versus raw llama-cpp-python `create_completion` on the exact prompt qa.ask built:
   time to first token and generation tokens/s, both from a cold context (model state reset
   before each run), and their ratios (target: qa.ask >= 0.9x raw tokens/s).
2. The second turn of a conversation with the prompt cache reused (state left by turn one)
   and without it (state reset between the turns): time to first token and total.
3. The end-to-end latency split of qa.ask in normal (warm) use: retrieve / prompt /
   first token / generate / verify / total.

    python -m qa.bench_ask [--index DIR] [--model GGUF] [--repeats 5]

Without an index at --index (default: settings.index_dir), the sample corpus is indexed into
a temporary folder first.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

from . import answer as engine
from .config import PROJECT_ROOT, Settings
from .errors import QAError
from .prompting import STOP, build, group_sources
from .records import Answer

QUESTION = "Did Ford deny the Xiaomi report?"
FOLLOW_UP = "And did Xiaomi deny it too?"


def _median(values: Sequence[float]) -> float:
    return statistics.median(values) if values else float("nan")


def _timed_ask(question: str, index, settings, history=None) -> tuple[Answer, int]:
    pieces: list[str] = []
    answer = None
    for item in engine.ask_stream(question, index, history=history, settings=settings):
        if isinstance(item, Answer):
            answer = item
        else:
            pieces.append(item)
    assert answer is not None
    return answer, len(pieces)


def _raw(llm, prompt: str, max_tokens: int, temperature: float) -> tuple[float, float, int]:
    """(first token s, generation s, tokens) of plain llama-cpp-python streaming."""
    t0 = time.perf_counter()
    first = None
    n = 0
    for chunk in llm.create_completion(
        prompt,
        max_tokens=max_tokens,
        temperature=temperature,
        top_k=1,
        repeat_penalty=1.0,
        stop=list(STOP),
        stream=True,
    ):
        if chunk["choices"][0]["text"]:
            n += 1
            if first is None:
                first = time.perf_counter() - t0
    total = time.perf_counter() - t0
    return first or total, total, n


def _rate(tokens: int, first: float, total: float) -> float:
    """Tokens per second after the first token (the decoding rate)."""
    return (tokens - 1) / (total - first) if tokens > 1 and total > first else float("nan")


def _open_index(path: str | None, settings: Settings):
    directory = Path(path) if path else settings.index_dir
    if (directory / "manifest.json").is_file():
        return engine.open_index(directory, settings), None
    from .index import Index

    tmp = tempfile.TemporaryDirectory(prefix="qa-bench-ask-")
    print(f"no index at {directory}/: indexing the sample corpus into {tmp.name}")
    index = Index.build([PROJECT_ROOT / "corpus"], Path(tmp.name) / "index", settings=settings)
    return index, tmp


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="qa bench ask", description=__doc__.split("\n")[0])
    parser.add_argument("--index", default=None, help="index folder (default: settings)")
    parser.add_argument("--model", default=None, help="GGUF model (default: settings)")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--question", default=QUESTION)
    parser.add_argument("--follow-up", default=FOLLOW_UP)
    args = parser.parse_args(argv)
    try:
        settings = Settings.load(model=args.model)
        generator = engine.get_generator(None, settings)
        index, tmp = _open_index(args.index, settings)
    except QAError as exc:
        print(f"qa: error: {exc}")
        return exc.exit_code
    settings = index.settings.with_(model=settings.model, threads=settings.threads)
    llm = generator.llm
    print(f"model {generator.name}, {settings.threads} threads, n_ctx {generator.n_ctx}")

    # the exact prompt qa.ask builds for the question
    evidence = engine.retrieve(index, args.question, settings.k)
    opts = engine.DEFAULT_OPTIONS
    sources = group_sources(evidence.ranked, opts.style, opts.max_sources)
    prompt = build(
        args.question, sources, generator, settings.max_answer_tokens, opts.examples, opts.best_last
    )
    print(
        f"question: {args.question!r}; prompt: {prompt.tokens} tokens, "
        f"{len(prompt.sources)} sources"
    )
    _timed_ask(args.question, index, settings)  # warm-up (embedder, tokenizer, pages)

    # 1. qa.ask versus raw, cold context each time
    qa_first, qa_rate, raw_first, raw_rate = [], [], [], []
    for _ in range(args.repeats):
        generator.reset()
        answer, n = _timed_ask(args.question, index, settings)
        t = answer.timings
        qa_first.append(t["first_token"])
        qa_rate.append(_rate(n, t["first_token"], t["generate"]))
        generator.reset()
        with generator._lock:
            first, total, n_raw = _raw(
                llm, prompt.text, settings.max_answer_tokens, settings.temperature
            )
        raw_first.append(first)
        raw_rate.append(_rate(n_raw, first, total))
    print("\n1. qa.ask vs raw llama-cpp-python on the same prompt (cold context), medians:")
    print(f"   time to first token: qa.ask {_median(qa_first):.3f}s, raw {_median(raw_first):.3f}s")
    print(
        f"   tokens/s:            qa.ask {_median(qa_rate):.1f}, raw {_median(raw_rate):.1f}, "
        f"ratio {_median(qa_rate) / _median(raw_rate):.2f}x (target >= 0.9x)"
    )

    # 2. second turn with and without the prompt cache
    with_cache, without_cache = [], []
    for _ in range(args.repeats):
        for reuse, out in ((True, with_cache), (False, without_cache)):
            generator.reset()
            first, _ = _timed_ask(args.question, index, settings)
            if not reuse:
                generator.reset()
            second, _ = _timed_ask(args.follow_up, index, settings, history=[first])
            out.append((second.timings["first_token"], second.timings["total"]))
    print(f"\n2. second turn ({args.follow_up!r}), medians:")
    for name, rows in (("prompt cache reused", with_cache), ("cold (reset)", without_cache)):
        print(
            f"   {name:20s} first token {_median([r[0] for r in rows]):.3f}s, "
            f"total {_median([r[1] for r in rows]):.3f}s"
        )

    # 3. latency split in normal use
    rows = []
    for _ in range(args.repeats):
        answer, _ = _timed_ask(args.question, index, settings)
        rows.append(answer.timings)
    print("\n3. qa.ask latency split (warm), medians:")
    for stage in ("retrieve", "prompt", "first_token", "generate", "verify", "total"):
        print(f"   {stage:12s} {_median([r[stage] for r in rows]):.3f}s")
    print(f"   answer: {answer.text!r}")
    if tmp is not None:
        index.close()
        tmp.cleanup()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
