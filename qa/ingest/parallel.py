"""Reading and parsing files in worker processes, results in the order the files were given.

PDF, HTML and DOCX parsing is pure Python and CPU-bound, so threads do not help; `Loads`
sends those files to a pool of spawned worker processes (spawned, not forked: the parent
may hold ONNX Runtime or torch thread pools) and hands back each file's outcome in input
order, so what is indexed, and in which groups, is the same with any number of workers.
Plain-text formats are cheaper to parse than to send across, and are read in-process.

A worker reads the file, hashes it, and (unless the hash is the one already indexed) loads
it through `qa.ingest.loaders.load`, the one dispatcher of formats. A worker that dies (a
parser crash) breaks the pool; the pool is started again and the files in flight are
retried once, then reported as unreadable.
"""

from __future__ import annotations

import hashlib
from collections import deque
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the pool machinery is imported only when a pool is started
    from concurrent.futures import Future, ProcessPoolExecutor

# parsed in-process: cheaper to parse than to pickle across
LIGHT_SUFFIXES = frozenset({".txt", ".md", ".markdown"})
# below this many files to parse, workers cost more to start (~0.5 s each) than they save
MIN_PARALLEL = 4
AHEAD_PER_WORKER = 4  # files in flight per worker (bounds the memory of parsed documents)


@dataclass(frozen=True)
class Job:
    path: Path
    source: str
    old_sha256: str | None  # the indexed content's hash: equal means nothing to load


@dataclass(frozen=True)
class Loaded:
    """A job's outcome: `doc` loaded; or `same` (content unchanged); or `error` (why not)."""

    sha256: str = ""
    doc: object = None
    same: bool = False
    error: str | None = None


def read_and_load(job: Job) -> Loaded:
    """Read, hash and load one file (in a worker or in-process): never raises for a bad file."""
    from qa.ingest.loaders import Unsupported, load

    try:
        data = job.path.read_bytes()
    except OSError as exc:
        return Loaded(error=f"cannot read: {exc.strerror or exc}")
    sha = hashlib.sha256(data).hexdigest()
    if job.old_sha256 == sha:
        return Loaded(sha256=sha, same=True)
    try:
        doc = load(job.path, source=job.source, data=data)
    except Unsupported as exc:
        return Loaded(sha256=sha, error=str(exc))
    return Loaded(sha256=sha, doc=doc)


def is_heavy(path: Path) -> bool:
    return path.suffix.lower() not in LIGHT_SUFFIXES


class Loads:
    """`run(jobs)` yields (job, Loaded) in job order, parsing heavy files in `workers`
    processes when there are at least MIN_PARALLEL of them (else all in-process)."""

    def __init__(self, workers: int) -> None:
        self.workers = max(1, int(workers))
        self._pool: ProcessPoolExecutor | None = None

    def run(self, jobs: Iterable[Job]) -> Iterator[tuple[Job, Loaded]]:
        jobs = list(jobs)
        heavy = sum(1 for j in jobs if is_heavy(j.path))
        if self.workers < 2 or heavy < MIN_PARALLEL:
            for job in jobs:
                yield job, read_and_load(job)
            return
        try:
            yield from self._run_parallel(jobs)
        finally:
            self.close()

    def _run_parallel(self, jobs: list[Job]) -> Iterator[tuple[Job, Loaded]]:
        from concurrent.futures.process import BrokenProcessPool

        ahead = self.workers * AHEAD_PER_WORKER
        window: deque[tuple[Job, Future | None, int]] = deque()
        tries: dict[int, int] = {}
        todo = iter(enumerate(jobs))

        def fill() -> None:
            while len(window) < ahead:
                nxt = next(todo, None)
                if nxt is None:
                    return
                i, job = nxt
                window.append((job, self._submit(job) if is_heavy(job.path) else None, i))

        fill()
        while window:
            job, future, i = window.popleft()
            if future is None:
                result = read_and_load(job)
            else:
                try:
                    result = future.result()
                except BrokenProcessPool:
                    tries[i] = tries.get(i, 0) + 1
                    result = self._after_crash(job, i, tries, window)
            yield job, result
            fill()

    def _after_crash(self, job: Job, i: int, tries: dict, window: deque) -> Loaded:
        """A worker died: restart the pool, resubmit what was in flight; retry this job once."""
        from concurrent.futures.process import BrokenProcessPool

        self.close()
        for k, (other, fut, j) in enumerate(window):
            if fut is not None:
                window[k] = (other, self._submit(other), j)
        if tries[i] > 1:
            return Loaded(error="cannot read: the parser crashed on this file")
        try:
            return self._submit(job).result()
        except BrokenProcessPool:
            self.close()
            for k, (other, fut, j) in enumerate(window):
                if fut is not None:
                    window[k] = (other, self._submit(other), j)
            return Loaded(error="cannot read: the parser crashed on this file")

    def _submit(self, job: Job) -> Future:
        if self._pool is None:
            import multiprocessing
            from concurrent.futures import ProcessPoolExecutor

            self._pool = ProcessPoolExecutor(
                self.workers, mp_context=multiprocessing.get_context("spawn")
            )
        return self._pool.submit(read_and_load, job)

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None
