"""PNG plots of an evaluation run (matplotlib, Agg backend, no display needed)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

from qa.eval.retrieval import RetrievalScores


def _figure(width: float, height: float):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=110)
    FigureCanvasAgg(fig)
    return fig


def recall_plot(scores: Sequence[RetrievalScores], path: str | Path, title: str = "") -> Path:
    """Recall@k for k = 1..K, one line per retriever."""
    fig = _figure(6.4, 4.2)
    ax = fig.add_subplot()
    for s in scores:
        ks = range(1, len(s.curve) + 1)
        ax.plot(ks, s.curve, marker="o", markersize=3, label=s.retriever)
    ax.set_xlabel("k (chunks retrieved)")
    ax.set_ylabel("recall@k")
    ax.set_xticks([1, 5, 10, 15, 20])
    ax.grid(True, alpha=0.3)
    ax.legend(loc="lower right")
    ax.set_title(title or "recall@k")
    fig.tight_layout()
    fig.savefig(path)
    return Path(path)


def latency_plot(series: Mapping[str, Sequence[float]], path: str | Path, title: str = "") -> Path:
    """A box plot per stage of its times (given in seconds, drawn in ms on a log axis)."""
    names = [name for name, values in series.items() if values]
    fig = _figure(6.4, 0.9 + 0.45 * max(len(names), 1))
    ax = fig.add_subplot()
    if names:
        data = [[v * 1000 for v in series[name]] for name in names]
        ax.boxplot(data, orientation="horizontal", tick_labels=names, showfliers=True, whis=(5, 95))
        ax.set_xscale("log")
        ax.invert_yaxis()
    ax.set_xlabel("milliseconds (box: quartiles, whiskers: p5-p95)")
    ax.grid(True, axis="x", alpha=0.3)
    ax.set_title(title or "latency per stage")
    fig.tight_layout()
    fig.savefig(path)
    return Path(path)
