"""`qa bench corpus DIR`: `qa index` of a real folder of documents on each embedder backend.

Meant for a larger real corpus than the benchmarks' SQuAD prose, such as the HTML of
Debian's python3.11-doc (`apt-get download python3.11-doc && dpkg-deb -x python3.11-doc_*.deb
DIR`, then DIR/usr/share/doc/python3.11/html). Each backend builds a new index of the same
files (`--max-files N`: the first N in name order) in-process, one after the other, with the
same thread count; the figures are files/s, chunks/s and total seconds (model loading and
the one-time ONNX export excluded: each backend is warmed up first).
"""

from __future__ import annotations

import shutil
from dataclasses import asdict, dataclass, field
from pathlib import Path

from qa.bench.common import log, timed_build
from qa.config import EMBED_BACKENDS, Settings
from qa.errors import BadInput


@dataclass(frozen=True)
class CorpusRun:
    backend: str
    files: int
    indexed: int
    skipped: int
    chunks: int
    seconds: float

    @property
    def files_per_s(self) -> float:
        return self.files / self.seconds

    @property
    def chunks_per_s(self) -> float:
        return self.chunks / self.seconds


@dataclass(frozen=True)
class CorpusResult:
    corpus: str
    files: int
    megabytes: float
    threads: int
    runs: tuple[CorpusRun, ...]
    kind: str = field(default="corpus", init=False)

    def to_dict(self) -> dict:
        d = asdict(self)
        for run, out in zip(self.runs, d["runs"], strict=True):
            out.update(files_per_s=run.files_per_s, chunks_per_s=run.chunks_per_s)
        return d


def bench_corpus(
    folder: Path,
    workdir: Path,
    *,
    backends: tuple[str, ...] = ("torch", "onnx"),
    max_files: int | None = None,
    settings: Settings | None = None,
    log=log,
) -> CorpusResult:
    from qa.ingest.loaders import SUFFIXES, iter_files
    from qa.models.embedder import make_embedder

    folder = Path(folder)
    if not folder.is_dir():
        raise BadInput(f"--corpus {folder} is not a folder")
    files = [f for f in iter_files([folder]) if f.suffix.lower() in SUFFIXES]
    if max_files is not None:
        if max_files < 1:
            raise BadInput("--max-files must be at least 1")
        files = files[:max_files]
    if not files:
        raise BadInput(f"no documents under {folder}")
    src = Path(workdir) / "corpus-bench" / "docs"
    if src.exists():
        shutil.rmtree(src)
    for f in files:  # a copy of exactly these files, so every backend reads the same
        dest = src / f.relative_to(folder)
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(f, dest)
    size = sum(f.stat().st_size for f in files) / 1e6
    settings = settings or Settings.load()
    runs = []
    for backend in backends:
        if backend not in EMBED_BACKENDS:
            raise BadInput(f"unknown backend {backend!r}")
        emb = make_embedder(settings.embed_model, backend, threads=settings.threads)
        emb.embed(["warm up"] * 8)  # load (and export) outside the timing
        index_dir = Path(workdir) / "corpus-bench" / f"index-{backend}"
        log(f"corpus bench: {len(files)} files ({size:.1f} MB) with {backend} ...")
        index, seconds = timed_build(src, index_dir, settings, backend, emb)
        report = index.sync([src])  # nothing changed: just the counts
        chunks = index.status().chunks
        index.close()
        run = CorpusRun(
            backend,
            len(files),
            len(report.unchanged),
            len(report.skipped),
            chunks,
            seconds,
        )
        log(
            f"  {backend}: {run.chunks} chunks in {seconds:.1f}s = {run.files_per_s:.2f} files/s, "
            f"{run.chunks_per_s:.1f} chunks/s"
        )
        runs.append(run)
        del emb
    return CorpusResult(str(folder), len(files), size, settings.threads, tuple(runs))


def format_corpus(r: CorpusResult) -> str:
    lines = [
        f"Indexing a real corpus: {r.files} files, {r.megabytes:.1f} MB, from {r.corpus} "
        f"({r.threads} threads)",
        f"  {'backend':12}{'indexed':>9}{'skipped':>9}{'chunks':>9}{'seconds':>10}"
        f"{'files/s':>9}{'chunks/s':>10}",
    ]
    for run in r.runs:
        lines.append(
            f"  {run.backend:12}{run.indexed:>9}{run.skipped:>9}{run.chunks:>9}"
            f"{run.seconds:>10.1f}{run.files_per_s:>9.2f}{run.chunks_per_s:>10.1f}"
        )
    if len(r.runs) > 1:
        base = r.runs[0]
        for run in r.runs[1:]:
            lines.append(
                f"  {run.backend} / {base.backend}: {base.seconds / run.seconds:.2f}x faster"
            )
    return "\n".join(lines)
