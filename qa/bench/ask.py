"""`qa bench ask`: how fast answers are, and what the engine costs over raw llama.cpp.

In one run, on the same prompt, repeated `--repeats` times (medians reported):
1. qa.ask versus raw llama-cpp-python `create_completion` on the exact prompt qa.ask built:
   time to first token and generation tokens/s, both from a cold context (model state reset
   before each run), and their ratios (target: qa.ask >= 0.9x raw tokens/s).
2. The second turn of a conversation with the prompt cache reused (state left by turn one)
   and without it (state reset between the turns): time to first token and total.
3. The end-to-end latency split of qa.ask in normal (warm) use: retrieve / prompt /
   first token / generate / verify / total.

Without an index at --index (default: settings.index_dir), the sample corpus is indexed into
the bench's work folder first.
"""

from __future__ import annotations

import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from qa.answer import pipeline as engine
from qa.answer.prompting import STOP, build, group_sources
from qa.bench.common import log, median, peak_rss_mb, ratio, reset_peak_rss, rss_mb
from qa.config import PROJECT_ROOT, Settings
from qa.records import Answer

QUESTION = "Did Ford deny the Xiaomi report?"
FOLLOW_UP = "And did Xiaomi deny it too?"
ASK_TARGET = 0.9  # qa.ask tokens/s >= 0.9 x raw llama-cpp-python
STAGES = ("retrieve", "prompt", "first_token", "generate", "verify", "total")
# extractive answers (the default mode): the reader's share of them
EXTRACTIVE_STAGES = ("retrieve", "read", "total")
READER_BACKENDS = ("onnx", "torch")


@dataclass(frozen=True)
class Split:
    """Where qa.ask's time goes in warm use (medians, seconds)."""

    retrieve: float
    prompt: float
    first_token: float
    generate: float
    verify: float
    total: float


@dataclass(frozen=True)
class AskResult:
    model: str
    threads: int
    n_ctx: int
    question: str
    follow_up: str
    prompt_tokens: int
    sources: int
    max_tokens: int
    repeats: int
    # 1. cold context, one figure per repeat
    qa_first_token_s: tuple[float, ...]
    raw_first_token_s: tuple[float, ...]
    qa_tokens_per_s: tuple[float, ...]
    raw_tokens_per_s: tuple[float, ...]
    # 2. second turn (medians)
    cached_first_token_s: float
    cached_total_s: float
    cold_first_token_s: float
    cold_total_s: float
    # 3. warm split
    split: Split
    answer: str
    rss_mb: float  # with the model loaded and the index open
    peak_rss_mb: float  # the process's peak during this bench
    # 4. extractive answers, warm: medians of each stage (seconds), and the slowest total
    extractive: dict[str, float] = field(default_factory=dict)
    extractive_max_total: float = 0.0
    # the same, per reader backend (QA_READER_BACKEND), measured interleaved in this run
    extractive_by_reader: dict[str, dict[str, float]] = field(default_factory=dict)
    reader_backend: str = "onnx"
    target: float = ASK_TARGET
    kind: str = field(default="ask", init=False)

    @property
    def qa_first_token(self) -> float:
        return median(self.qa_first_token_s)

    @property
    def raw_first_token(self) -> float:
        return median(self.raw_first_token_s)

    @property
    def first_token_ratio(self) -> float:
        """qa / raw time to first token (lower is better)."""
        return ratio(self.qa_first_token, self.raw_first_token)

    @property
    def qa_rate(self) -> float:
        return median(self.qa_tokens_per_s)

    @property
    def raw_rate(self) -> float:
        return median(self.raw_tokens_per_s)

    @property
    def rate_ratio(self) -> float:
        """qa / raw tokens per second (higher is better)."""
        return ratio(self.qa_rate, self.raw_rate)

    @property
    def passed(self) -> bool:
        return self.rate_ratio >= self.target

    def to_dict(self) -> dict:
        d = asdict(self)
        d.update(
            qa_first_token=self.qa_first_token,
            raw_first_token=self.raw_first_token,
            first_token_ratio=self.first_token_ratio,
            qa_rate=self.qa_rate,
            raw_rate=self.raw_rate,
            rate_ratio=self.rate_ratio,
            passed=self.passed,
        )
        return d


def _timed_ask(question: str, index, settings, history=None) -> tuple[Answer, int]:
    pieces: list[str] = []
    answer = None
    from qa.engine import Engine

    stream = Engine(settings, index=index).ask_stream(question, history, mode="llm")
    for item in stream:
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


def _open_index(path: str | Path | None, settings: Settings, workdir: Path, log):
    directory = Path(path) if path else settings.index_dir
    if (directory / "manifest.json").is_file():
        from qa.engine import Engine

        return Engine.shared(directory, settings).index
    from qa.index.core import Index

    target = workdir / "ask-index"
    log(f"no index at {directory}/: indexing the sample corpus into {target}")
    return Index.build([PROJECT_ROOT / "corpus"], target, settings=settings)


def bench_ask(
    workdir: Path | None = None,
    *,
    index: str | Path | None = None,
    model: str | Path | None = None,
    repeats: int = 5,
    question: str = QUESTION,
    follow_up: str = FOLLOW_UP,
    max_tokens: int | None = None,
    log=log,
) -> AskResult:
    """qa.ask versus raw llama-cpp-python on the prompt qa.ask builds for `question`."""
    from qa.errors import BadInput

    if repeats < 1:
        raise BadInput("--repeats must be at least 1")
    args = (index, model, repeats, question, follow_up, max_tokens, log)
    if workdir is not None:
        return _bench_ask(Path(workdir), *args)
    with tempfile.TemporaryDirectory(prefix="qa-bench-ask-") as tmp:
        return _bench_ask(Path(tmp), *args)


def _bench_ask(workdir, index_path, model, repeats, question, follow_up, max_tokens, log):
    reset_peak_rss()
    settings = Settings.load(model=model, max_answer_tokens=max_tokens)
    from qa.models.pool import ModelPool

    generator = ModelPool.default().generator(settings.model, settings.n_ctx, settings.threads)
    index = _open_index(index_path, settings, workdir, log)
    try:
        settings = index.settings.with_(
            model=settings.model,
            threads=settings.threads,
            max_answer_tokens=settings.max_answer_tokens,
        )
        llm = generator.llm
        log(
            f"ask bench: model {generator.name}, {settings.threads} threads, n_ctx {generator.n_ctx}"
        )

        # the exact prompt qa.ask builds for the question
        evidence = engine.retrieve(index, question, settings.k)
        opts = engine.DEFAULT_OPTIONS
        sources = group_sources(evidence.ranked, opts.style, opts.max_sources)
        examples = opts.examples or not getattr(generator, "has_chat_template", True)
        prompt = build(
            question, sources, generator, settings.max_answer_tokens, examples, opts.best_last
        )
        _timed_ask(question, index, settings)  # warm-up (embedder, tokenizer, pages)
        resident = rss_mb()

        log(f"  1. qa.ask vs raw llama-cpp-python, {repeats} cold runs each ...")
        qa_first, qa_rate, raw_first, raw_rate = [], [], [], []
        for _ in range(repeats):
            generator.reset()
            answer, n = _timed_ask(question, index, settings)
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

        log("  2. second turn with and without the prompt cache ...")
        with_cache, without_cache = [], []
        for _ in range(repeats):
            for reuse, out in ((True, with_cache), (False, without_cache)):
                generator.reset()
                first_turn, _ = _timed_ask(question, index, settings)
                if not reuse:
                    generator.reset()
                second, _ = _timed_ask(follow_up, index, settings, history=[first_turn])
                out.append((second.timings["first_token"], second.timings["total"]))

        log("  3. latency split in warm use ...")
        rows = []
        for _ in range(repeats):
            answer, _ = _timed_ask(question, index, settings)
            rows.append(answer.timings)
        log("  4. extractive answers, warm, with the reader on each backend ...")
        from dataclasses import replace

        from qa.engine import Engine

        engines = {
            b: Engine(replace(settings, reader_backend=b), index=index) for b in READER_BACKENDS
        }
        for e in engines.values():
            e.ask(question, mode="extractive")  # loads the reader
        by_backend: dict[str, list[dict]] = {b: [] for b in engines}
        for _ in range(max(repeats, 5)):  # interleaved, so both see the same load
            for b, e in engines.items():
                by_backend[b].append(e.ask(question, mode="extractive").timings)
        ext = by_backend[settings.reader_backend]
    finally:
        index.close()
    return AskResult(
        model=generator.name,
        threads=settings.threads,
        n_ctx=generator.n_ctx,
        question=question,
        follow_up=follow_up,
        prompt_tokens=prompt.tokens,
        sources=len(prompt.sources),
        max_tokens=settings.max_answer_tokens,
        repeats=repeats,
        qa_first_token_s=tuple(qa_first),
        raw_first_token_s=tuple(raw_first),
        qa_tokens_per_s=tuple(qa_rate),
        raw_tokens_per_s=tuple(raw_rate),
        cached_first_token_s=median([r[0] for r in with_cache]),
        cached_total_s=median([r[1] for r in with_cache]),
        cold_first_token_s=median([r[0] for r in without_cache]),
        cold_total_s=median([r[1] for r in without_cache]),
        split=Split(**{s: median([r.get(s, 0.0) for r in rows]) for s in STAGES}),
        answer=answer.text,
        extractive={s: median([r.get(s, 0.0) for r in ext]) for s in EXTRACTIVE_STAGES},
        extractive_max_total=max(r["total"] for r in ext),
        extractive_by_reader={
            b: {s: median([r.get(s, 0.0) for r in rows]) for s in EXTRACTIVE_STAGES}
            for b, rows in by_backend.items()
        },
        reader_backend=settings.reader_backend,
        rss_mb=resident,
        peak_rss_mb=peak_rss_mb(),
    )


def format_ask(r: AskResult) -> str:
    s = r.split
    return "\n".join(
        [
            f"Answering: model {r.model}, {r.threads} threads, n_ctx {r.n_ctx}; "
            f"question {r.question!r}: prompt {r.prompt_tokens} tokens, {r.sources} sources, "
            f"at most {r.max_tokens} answer tokens; medians of {r.repeats}",
            "1. qa.ask vs raw llama-cpp-python on the same prompt (cold context):",
            f"   time to first token: qa.ask {r.qa_first_token:.3f}s, raw "
            f"{r.raw_first_token:.3f}s, ratio {r.first_token_ratio:.2f}x",
            f"   tokens/s:            qa.ask {r.qa_rate:.1f}, raw {r.raw_rate:.1f}, "
            f"ratio {r.rate_ratio:.2f}x (target >= {r.target}x)",
            f"2. second turn ({r.follow_up!r}):",
            f"   {'prompt cache reused':20s} first token {r.cached_first_token_s:.3f}s, "
            f"total {r.cached_total_s:.3f}s",
            f"   {'cold (reset)':20s} first token {r.cold_first_token_s:.3f}s, "
            f"total {r.cold_total_s:.3f}s",
            "3. qa.ask latency split (warm):",
            *(f"   {name:12s} {getattr(s, name):.3f}s" for name in STAGES),
            f"   answer: {r.answer!r}",
            *_extractive_lines(r),
            f"   RSS with the model loaded {r.rss_mb:.0f} MiB, peak {r.peak_rss_mb:.0f} MiB",
        ]
    )


def _extractive_lines(r: AskResult) -> list[str]:
    e = r.extractive
    if not e:
        return []
    return [
        "4. extractive qa.ask (the default mode), warm:",
        f"   total p50 {e['total']:.3f}s (slowest {r.extractive_max_total:.3f}s), of which "
        f"the reader {e['read']:.3f}s ({100 * ratio(e['read'], e['total']):.0f}%) and "
        f"search with evidence ranking {e['retrieve'] - e['read']:.3f}s "
        f"(reader on {r.reader_backend})",
        *(
            f"   reader on {b:5s} total p50 {x['total']:.3f}s, reader {x['read']:.3f}s"
            f" ({ratio(r.extractive_by_reader['torch']['read'], x['read']):.2f}x torch's reader)"
            for b, x in r.extractive_by_reader.items()
        ),
    ]
