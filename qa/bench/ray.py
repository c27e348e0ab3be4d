"""`qa bench ray`: `qa index --ray` on a local Ray instance with 1 and 2 embedding actors,
against the single-machine `qa index` of the same folder.

The folder is made of the benchmark prose (SQuAD dev articles, else synthetic text; about
`--chunks` passages in `--docs` files, `qa.bench.data`). One local Ray instance is started
with the machine's CPUs and kept for every run (its start is timed on its own); each run
builds a new index from the folder with the default embedder, so it includes starting the
actors and loading the model in them, as `qa index --ray` does. The runs:

  single    `Index.sync` in this process (parsing in worker processes, `QA_THREADS` threads)
  ray 1x1   one embedding actor running one thread: the unit that scales
  ray 2x1   two actors of one thread each: the speed-up over 1x1 is what adding a worker
            gives while there are free cores
  ray 1xT   one actor with the machine's threads (`qa index --ray --workers 1`, the
            default on 2 cores) against ray 2x1: the same cores, as threads or as actors

Every figure is the median of `--repeats` runs; the load average is printed beside them,
since on a shared machine it decides more than the number of workers does.
"""

from __future__ import annotations

import os
import shutil
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from qa.bench.common import bench_settings, calibrate, log, median
from qa.bench.data import article_texts, load_corpus, write_texts
from qa.errors import BadInput

DEFAULT_CHUNKS = 1500


@dataclass(frozen=True)
class RayRun:
    label: str
    workers: int  # embedding actors (1 for the single-machine run)
    threads: int  # threads per actor (the single-machine run's embedder threads)
    chunks: int
    seconds: tuple[float, ...]

    @property
    def median_s(self) -> float:
        return median(self.seconds)

    @property
    def chunks_per_s(self) -> float:
        return self.chunks / self.median_s if self.median_s else float("nan")


@dataclass(frozen=True)
class RayResult:
    files: int
    chunks: int
    cpus: int
    backend: str
    cluster_start_s: float
    load_before: tuple[float, float, float]  # os.getloadavg() before the first run
    load_average: tuple[float, float, float]  # and after the last
    runs: tuple[RayRun, ...]
    kind: str = field(default="ray", init=False)

    def run(self, label: str) -> RayRun:
        return next(r for r in self.runs if r.label == label)

    @property
    def speedup_2_vs_1(self) -> float:
        """ray 2x1 against ray 1x1: what a second embedding actor gives."""
        return self.run("ray 1x1").median_s / self.run("ray 2x1").median_s

    @property
    def actors_vs_threads(self) -> float:
        """ray 2x1 against ray 1xT: two actors against one actor with the same cores."""
        return self.run(f"ray 1x{self.cpus}").median_s / self.run("ray 2x1").median_s

    def to_dict(self) -> dict:
        d = asdict(self)
        for run, out in zip(self.runs, d["runs"], strict=True):
            out.update(median_s=run.median_s, chunks_per_s=run.chunks_per_s)
        d.update(speedup_2_vs_1=self.speedup_2_vs_1, actors_vs_threads=self.actors_vs_threads)
        return d


def bench_ray(
    workdir: Path,
    *,
    chunks: int = DEFAULT_CHUNKS,
    docs: int | None = None,
    repeats: int = 1,
    cpus: int | None = None,
    log=log,
) -> RayResult:
    from qa.index.core import Index
    from qa.models.embedder import make_embedder
    from qa.scale.ray_ingest import EmbedderSpec, RayOptions, cluster, ray_index

    if repeats < 1 or chunks < 1:
        raise BadInput("--repeats and --chunks must be at least 1")
    workdir = Path(workdir) / "ray-bench"
    shutil.rmtree(workdir, ignore_errors=True)
    settings = bench_settings(None, workdir.parent / "ray-bench-single" / "index")
    cpus = cpus or settings.threads
    if cpus < 2:
        raise BadInput("qa bench ray compares 1 and 2 embedding actors: it needs 2 CPUs or more")
    backend = settings.build_backend()
    embedder = make_embedder(settings.embed_model, backend, threads=cpus)
    corpus = load_corpus()
    per_chunk = calibrate(article_texts(corpus, 40_000), embedder, settings)
    files = write_texts(article_texts(corpus, chunks * per_chunk, docs or chunks // 10), workdir)
    folder = workdir
    embedder.embed(corpus.paragraphs[:8])  # loaded before the single-machine run is timed
    load_before = tuple(round(x, 1) for x in os.getloadavg())
    log(f"ray bench: {len(files)} files, about {chunks} chunks, {cpus} CPUs, {backend} embedder")

    def fresh(name: str) -> Path:
        path = workdir.parent / f"ray-bench-{name}"
        shutil.rmtree(path, ignore_errors=True)
        return path / "index"

    made: dict[str, int] = {}
    seconds: dict[str, list[float]] = {}
    shape: dict[str, tuple[int, int]] = {"single": (1, cpus)}
    for r in range(repeats):
        t = time.perf_counter()
        index = Index.open(fresh("single"), settings=settings, embedder=embedder, create=True)
        report = index.sync([folder])
        seconds.setdefault("single", []).append(time.perf_counter() - t)
        made["single"] = report.chunks_embedded
        index.close()
        log(f"  round {r + 1}/{repeats} single: {seconds['single'][-1]:.1f}s")

    t = time.perf_counter()
    with cluster(None, cpus):
        start = time.perf_counter() - t
        log(f"  local Ray started in {start:.1f}s")
        configs = {
            "ray 1x1": (1, 1),
            "ray 2x1": (2, 1),
            f"ray 1x{cpus}": (1, cpus),
        }
        warm = Index.open(fresh("warm"), settings=settings, embedder=embedder, create=True)
        ray_index(warm, [files[0]], RayOptions(workers=1))  # Ray's worker pool started once
        warm.close()
        for r in range(repeats):
            for label, (workers, threads) in configs.items():
                spec = EmbedderSpec(settings.embed_model, backend, threads)
                t = time.perf_counter()
                index = Index.open(fresh(label), settings=settings, embedder=embedder, create=True)
                report = ray_index(
                    index, [folder], RayOptions(workers=workers), embedder_factory=spec
                )
                seconds.setdefault(label, []).append(time.perf_counter() - t)
                index.close()
                made[label] = report.chunks_embedded
                shape[label] = (workers, threads)
                log(f"  round {r + 1}/{repeats} {label}: {seconds[label][-1]:.1f}s")
    for name in list(seconds):
        shutil.rmtree(workdir.parent / f"ray-bench-{name}", ignore_errors=True)
    shutil.rmtree(workdir.parent / "ray-bench-warm", ignore_errors=True)
    if len(set(made.values())) != 1:
        log(f"  note: the runs embedded different numbers of chunks: {made}")
    runs = tuple(
        RayRun(label, shape[label][0], shape[label][1], made[label], tuple(seconds[label]))
        for label in seconds
    )
    return RayResult(
        files=len(files),
        chunks=made["single"],
        cpus=cpus,
        backend=backend,
        cluster_start_s=start,
        load_before=load_before,
        load_average=tuple(round(x, 1) for x in os.getloadavg()),
        runs=runs,
    )


def format_ray(r: RayResult) -> str:
    lines = [
        f"qa index --ray on a local Ray instance ({r.cpus} CPUs), {r.files} files, "
        f"{r.chunks} chunks, {r.backend} embedder; median of {len(r.runs[0].seconds)} run(s), "
        f"each from an empty index (actors started and the model loaded in them)",
        f"{'run':<12} {'actors':>6} {'threads':>7} {'seconds':>8} {'chunks/s':>9}",
    ]
    for run in r.runs:
        lines.append(
            f"{run.label:<12} {run.workers:>6} {run.threads:>7} {run.median_s:>8.1f} "
            f"{run.chunks_per_s:>9.1f}"
        )
    lines += [
        f"speed-up of 2 actors over 1 (one thread each): {r.speedup_2_vs_1:.2f}x",
        f"2 actors x 1 thread against 1 actor x {r.cpus} threads: {r.actors_vs_threads:.2f}x",
        f"local Ray start: {r.cluster_start_s:.1f}s (not in the runs); load average before "
        + " ".join(f"{x:g}" for x in r.load_before)
        + ", after "
        + " ".join(f"{x:g}" for x in r.load_average),
    ]
    return "\n".join(lines)
