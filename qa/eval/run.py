"""One evaluation run: sample the data set, index it (or reuse the cached index), score the
retrievers, then ask the questions and judge answers, citations and refusals."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

from qa.config import Settings
from qa.errors import BadInput, ModelNotFound
from qa.eval.answers import MODES, VARIANTS, AnswerResult, AnswerScores, run_answers, score_answers
from qa.eval.datasets import NAMES, load_dataset
from qa.eval.retrieval import RETRIEVERS, K, QuestionResult, RetrievalScores, evaluate, open_index

ALL = ("dense", "bm25", "hybrid")
# Questions sampled when --limit is not given: retrieval is cheap (all questions); answers
# cost about 0.1-0.5 s each in extractive mode and a few seconds each with the model.
DEFAULT_LIMITS: dict[str, int | None] = {"none": None, "extractive": 200, "llm": 50}

Log = Callable[[str], None]


def _stderr(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


@dataclass(frozen=True)
class EvalRequest:
    dataset: str
    limit: int | None = None  # None: DEFAULT_LIMITS[mode]
    seed: int = 0
    retrievers: tuple[str, ...] = ALL
    mode: str = "extractive"
    model: str | None = None  # GGUF file for llm mode (default: the configured model)
    variant: str = "default"
    max_passages: int | None = None
    chunk_tokens: int | None = None
    fusion: str | None = None
    cache: str | None = None
    data: str | None = None
    # "test": only the test part of the reader's train/test split (`qa.train.split`), the
    # default whenever answers are scored; "all": every question (retrieval only, by default)
    part: str | None = None

    def resolved_part(self) -> str:
        if self.part is not None:
            return self.part
        return "all" if self.mode == "none" or self.dataset == "scifact" else "test"

    def check(self) -> None:
        """Raise BadInput for a request that cannot run (before any work is done)."""
        if self.dataset not in NAMES:
            raise BadInput(f"unknown data set {self.dataset!r}: use one of {', '.join(NAMES)}")
        if self.limit is not None and self.limit < 1:
            raise BadInput("--limit must be at least 1")
        if self.max_passages is not None and self.max_passages < 1:
            raise BadInput("--max-passages must be at least 1")
        if self.mode not in MODES:
            raise BadInput(f"unknown mode {self.mode!r}: use {', '.join(MODES)}")
        if self.part not in (None, "test", "calib", "all"):
            raise BadInput(f"unknown part {self.part!r}: use test, calib or all")
        if self.variant not in VARIANTS:
            raise BadInput(f"unknown variant {self.variant!r}: use {', '.join(VARIANTS)}")
        unknown = [n for n in self.retrievers if n not in RETRIEVERS]
        if unknown or not self.retrievers:
            raise BadInput(
                f"unknown retriever {', '.join(unknown) or '(none)'}: "
                f"use {', '.join(RETRIEVERS)} or all"
            )


def parse_retrievers(value: str) -> tuple[str, ...]:
    """ "all" or a comma-separated list of retriever names."""
    return ALL if value == "all" else tuple(n.strip() for n in value.split(",") if n.strip())


@dataclass(frozen=True)
class RunInfo:
    dataset: str
    mode: str  # as run ("none" for SciFact)
    questions: int  # sampled
    of_questions: int  # in the data set
    answerable: int
    passages: int
    chunks: int
    limit: int | None
    seed: int
    embed_model: str
    chunk_tokens: int
    chunk_overlap: int
    fusion: str
    k: int
    model: str | None
    variant: str
    index: str
    notes: tuple[str, ...] = ()
    part: str = "all"

    def to_dict(self) -> dict:
        return {**asdict(self), "notes": list(self.notes)}


@dataclass
class EvalRun:
    info: RunInfo
    retrieval: list[RetrievalScores]
    rankings: list[list[QuestionResult]]  # per retriever, per question
    answers: AnswerScores | None = None
    answer_results: list[AnswerResult] = field(default_factory=list)


def run_eval(request: EvalRequest, log: Log = _stderr) -> EvalRun:
    """Run the evaluation `request` asks for (see EvalRequest and the module docstring)."""
    request.check()
    mode = "none" if request.dataset == "scifact" else request.mode
    notes = []
    if request.dataset == "scifact" and request.mode != "none":
        notes.append("SciFact claims have no answers: retrieval only (--mode ignored).")
    settings = Settings.load(
        chunk_tokens=request.chunk_tokens, fusion=request.fusion, model=request.model
    )
    if mode == "llm" and not Path(settings.model).is_file():
        raise ModelNotFound(
            f"no model file at {settings.model}: pass --model PATH or --mode extractive"
        )
    limit = request.limit if request.limit is not None else DEFAULT_LIMITS[mode]
    full = load_dataset(request.dataset, request.data)
    part = request.resolved_part()
    if part in ("test", "calib"):
        from dataclasses import replace as replace_

        from qa.train.split import part as part_of

        of = len(full.questions)
        keep = tuple(q for q in full.questions if part_of(full.name, q, request.data) == part)
        full = replace_(full, questions=keep)
        if part == "test":
            notes.append(
                f"Scored on the test part of the reader's split ({len(keep)} of {of} "
                "questions; qa.train.split, recorded in models/reader/manifest.json): the "
                "reader never saw these questions or their articles. `--part all` scores "
                "every question."
            )
        else:
            notes.append(
                f"Scored on the calibration slice of the train part ({len(keep)} of {of} "
                "questions): for choosing settings without looking at the test part."
            )
    dataset = full.sample(limit, request.seed, request.max_passages)
    model_name = Path(settings.model).name if mode == "llm" else None
    if mode != "none":
        fusion = f"{settings.fusion} fusion"
        notes.append(
            f"Answers use hybrid retrieval ({fusion}, k={settings.k}), as `qa ask` does, "
            "whatever --retriever says."
        )
    ev = open_index(dataset, settings, request.cache, log=log)
    try:
        outcome = evaluate(ev, dataset, request.retrievers, K, log=log)
        answers, results = None, []
        if mode != "none":
            t0 = time.perf_counter()
            results = run_answers(ev, dataset, mode, settings.model, request.variant)
            seconds = time.perf_counter() - t0
            log(f"answers ({mode}): {len(results)} questions in {seconds:.0f}s")
            answers = score_answers(dataset, mode, results, model_name, request.variant, seconds)
        info = RunInfo(
            dataset=dataset.name,
            mode=mode,
            questions=len(dataset.questions),
            of_questions=len(full.questions),
            answerable=sum(1 for q in dataset.questions if q.answerable),
            passages=len(dataset.passages),
            chunks=len(ev.index),
            limit=limit,
            seed=request.seed,
            embed_model=settings.embed_model,
            chunk_tokens=settings.chunk_tokens,
            chunk_overlap=settings.chunk_overlap,
            fusion=settings.fusion,
            k=settings.k,
            model=model_name,
            variant=request.variant,
            index=str(ev.directory),
            notes=tuple(notes),
            part=part,
        )
    finally:
        ev.index.close()
    return EvalRun(info, [s for s, _ in outcome], [r for _, r in outcome], answers, results)
