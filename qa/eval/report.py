"""An evaluation run as a terminal table, as JSON, and as files in an output folder:
summary.json, report.md, recall_at_k.png, latency.png and per-question JSON lines."""

from __future__ import annotations

import json
from pathlib import Path

from qa.eval.answers import AnswerScores
from qa.eval.run import EvalRun

COLUMNS = ("recall@1", "recall@5", "recall@10", "recall@20", "mrr@10", "ndcg@10")
RECALL_PNG = "recall_at_k.png"
LATENCY_PNG = "latency.png"


def _f(value: float | None, digits: int = 3) -> str:
    return "n/a" if value is None else f"{value:.{digits}f}"


def headline(run: EvalRun) -> str:
    i = run.info
    sample = f"{i.questions} of {i.of_questions} questions (seed {i.seed})"
    if i.questions == i.of_questions:
        sample = f"{i.questions} questions"
    if i.part in ("test", "calib"):
        sample += f" of the {'test part' if i.part == 'test' else 'calibration slice'}"
    if i.answerable != i.questions:
        sample += f", {i.answerable} answerable"
    return f"{i.dataset}: {sample}, {i.passages} passages, {i.chunks} chunks; mode {i.mode}"


def table(run: EvalRun) -> str:
    """Fixed-width tables: retrievers, then answers, citations, refusals and latency."""
    lines = [headline(run), ""]
    scores = run.retrieval
    width = max(len("retriever"), *(len(s.retriever) for s in scores))
    lines.append(
        f"{'retriever':<{width}}  " + "  ".join(f"{c:>9}" for c in COLUMNS) + "  search p50 ms"
    )
    for s in scores:
        row = s.to_dict()
        cells = "  ".join(f"{row[c]:>9.3f}" for c in COLUMNS)
        lines.append(f"{s.retriever:<{width}}  {cells}  {_f(row['search_p50_ms'], 1):>13}")
    if run.answers:
        lines += [""] + _answer_lines(run.answers)
    for note in run.info.notes:
        lines.append(f"note: {note}")
    return "\n".join(lines) + "\n"


def _answer_lines(a: AnswerScores) -> list[str]:
    model = f", model {a.model}" if a.model else ""
    variant = f", variant {a.variant}" if a.variant != "default" else ""
    out = [
        f"answers ({a.mode}{model}{variant}, hybrid retrieval): {a.questions} answerable questions"
    ]
    parts = [f"answered {_f(a.answered)}"]
    if a.em is not None:
        parts.append(f"EM {_f(a.em)}")
    parts.append(f"F1 {_f(a.f1)} (answered only {_f(a.f1_answered)})")
    if a.contains is not None:
        parts.append(f"answer in text {_f(a.contains)}")
    out.append("  " + "   ".join(parts))
    c = a.citations
    out.append(f"citations: {c.citations} on {c.questions} answered questions")
    out.append(
        f"  precision {_f(c.precision)}   in gold passage {_f(c.precision_passage)}   "
        f"recall {_f(c.recall)}"
    )
    if a.refusal:
        r = a.refusal
        out.append(
            f"refusal: answerable answered {_f(r.answered)} (of {r.answerable}); "
            f"unanswerable declined {_f(r.declined)} (of {r.unanswerable})"
        )
    if a.latency:
        out.append(f"{'latency':<14}{'p50 ms':>9}{'p95 ms':>9}{'n':>6}")
        for x in a.latency:
            d = x.to_dict()
            out.append(f"  {x.stage:<12}{d['p50_ms']:>9.1f}{d['p95_ms']:>9.1f}{x.n:>6}")
    return out


def to_json(run: EvalRun) -> dict:
    return {
        "settings": run.info.to_dict(),
        "retrieval": [s.to_dict() for s in run.retrieval],
        "answers": run.answers.to_dict() if run.answers else None,
    }


def latency_series(run: EvalRun) -> dict[str, list[float]]:
    """Seconds per question: each retriever's search call, then each answer stage."""
    series = {
        f"search: {s.retriever}": [r.seconds for r in results if r.seconds > 0]
        for s, results in zip(run.retrieval, run.rankings, strict=True)
    }
    if run.answers:
        for x in run.answers.latency:
            series[f"answer: {x.stage}"] = list(x.values)
    return series


def markdown(run: EvalRun) -> str:
    i = run.info
    lines = [
        f"# qa eval {i.dataset}",
        "",
        headline(run) + ".",
        "",
        f"Embedder `{i.embed_model}`, {i.chunk_tokens}-token chunks ({i.chunk_overlap} overlap), "
        f"hybrid fusion `{i.fusion}`, k={i.k}. Index: `{i.index}`.",
        "",
        "## Retrieval",
        "",
        "| retriever | " + " | ".join(COLUMNS) + " | search p50 / p95 ms |",
        "|---|" + "---|" * (len(COLUMNS) + 1),
    ]
    for s in run.retrieval:
        d = s.to_dict()
        cells = " | ".join(f"{d[c]:.3f}" for c in COLUMNS)
        lat = f"{_f(d['search_p50_ms'], 1)} / {_f(d['search_p95_ms'], 1)}"
        lines.append(f"| {s.retriever} | {cells} | {lat} |")
    lines += [
        "",
        "Search times exclude embedding the question (query vectors are computed ahead in "
        "batches); the answer stages below include it.",
        "",
        f"![recall@k]({RECALL_PNG})",
        "",
    ]
    if run.answers:
        lines += _answer_markdown(run.answers)
    lines += [f"![latency]({LATENCY_PNG})", ""]
    if i.notes:
        lines += ["## Notes", ""] + [f"- {n}" for n in i.notes] + [""]
    return "\n".join(lines)


def _answer_markdown(a: AnswerScores) -> list[str]:
    c = a.citations
    rows = [
        ("answerable questions", str(a.questions)),
        ("answered", _f(a.answered)),
        ("exact match (SQuAD)", _f(a.em)),
        ("token F1 (refusals score 0)", _f(a.f1)),
        ("token F1, answered only", _f(a.f1_answered)),
        ("answer contains a gold answer", _f(a.contains)),
        ("citations (on answered questions)", f"{c.citations} ({c.questions})"),
        ("citation precision", _f(c.precision)),
        ("citation precision, in gold passage", _f(c.precision_passage)),
        ("citation recall (answered with >= 1 correct citation)", _f(c.recall)),
    ]
    if a.refusal:
        r = a.refusal
        rows += [
            (f"answerable answered (of {r.answerable})", _f(r.answered)),
            (f"unanswerable declined (of {r.unanswerable})", _f(r.declined)),
        ]
    model = f", model `{a.model}`" if a.model else ""
    out = [
        "## Answers",
        "",
        f"Mode `{a.mode}`{model}, variant `{a.variant}`; answers use hybrid retrieval "
        f"({a.seconds:.0f} s in all).",
        "",
        "| measure | value |",
        "|---|---|",
    ]
    out += [f"| {name} | {value} |" for name, value in rows if value != "n/a"]
    out += ["", "## Latency", "", "| stage | p50 ms | p95 ms | n |", "|---|---|---|---|"]
    for x in a.latency:
        d = x.to_dict()
        out.append(f"| {x.stage} | {d['p50_ms']:.1f} | {d['p95_ms']:.1f} | {x.n} |")
    out.append("")
    return out


def write_out(directory: str | Path, run: EvalRun) -> list[Path]:
    """Write the run's files into `directory`; returns their paths."""
    from qa.eval.plots import latency_plot, recall_plot

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    summary = directory / "summary.json"
    summary.write_text(json.dumps(to_json(run), indent=2) + "\n", encoding="utf-8")
    written.append(summary)
    for s, results in zip(run.retrieval, run.rankings, strict=True):
        path = directory / f"{s.dataset}-{s.retriever}.jsonl"
        with path.open("w", encoding="utf-8") as f:
            for r in results:
                first = next((i + 1 for i, rel in enumerate(r.relevance) if rel), None)
                row = {
                    "id": r.qid,
                    "first_hit": first,
                    "relevant": r.n_relevant,
                    "hits": [i + 1 for i, rel in enumerate(r.relevance) if rel],
                    "retrieved": list(r.retrieved),
                    "search_ms": round(r.seconds * 1000, 2),
                }
                f.write(json.dumps(row) + "\n")
        written.append(path)
    if run.answer_results:
        path = directory / "answers.jsonl"
        with path.open("w", encoding="utf-8") as f:
            for a in run.answer_results:
                f.write(json.dumps(a.to_dict()) + "\n")
        written.append(path)
    i = run.info
    title = f"{i.dataset}, {i.answerable} questions, {i.passages} passages"
    written.append(recall_plot(run.retrieval, directory / RECALL_PNG, f"recall@k: {title}"))
    title = f"latency per stage: {i.dataset}, mode {i.mode}"
    written.append(latency_plot(latency_series(run), directory / LATENCY_PNG, title))
    report = directory / "report.md"
    report.write_text(markdown(run), encoding="utf-8")
    written.append(report)
    return written
