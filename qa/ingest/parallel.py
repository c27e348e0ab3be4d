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

OCR pages read in the workers are counted in a shared counter that the parent reads every
POLL_SECONDS while it waits for a result, and hands to `qa.ingest.ocr.pages_read`: the
progress bar's OCR count moves while a scanned file is read, and is called from the thread
that runs `Loads.run`, as in-process parsing does. Each worker is one parser: its numeric
libraries (OpenBLAS, MKL, OpenMP: numpy comes in with pypdfium2) get the threads budget
shared out over the workers (`threads // workers`, at least 1) instead of a pool each the
size of the machine, and Tesseract runs single-threaded (`qa.ingest.ocr`).
"""

from __future__ import annotations

import hashlib
import os
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
POLL_SECONDS = 0.2  # how often the workers' OCR page count is read while waiting
# set in each worker before it imports a parser: the threads of the libraries that read them
THREAD_VARIABLES = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")


@dataclass(frozen=True)
class Job:
    path: Path
    source: str
    old_sha256: str | None  # the indexed content's hash: equal means nothing to load


@dataclass(frozen=True)
class Loaded:
    """A job's outcome: `doc` loaded; or `same` (content unchanged); or `error` (why not),
    with `skipped` if that was by choice (OCR turned off) rather than a failure."""

    sha256: str = ""
    doc: object = None
    same: bool = False
    error: str | None = None
    skipped: bool = False


def read_and_load(job: Job) -> Loaded:
    """Read, hash and load one file (in a worker or in-process): never raises for a bad file."""
    from qa.ingest.loaders import Unsupported, load
    from qa.ingest.ocr import OcrOff

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
        return Loaded(sha256=sha, error=str(exc), skipped=isinstance(exc, OcrOff))
    return Loaded(sha256=sha, doc=doc)


def start_worker(pages, threads: int) -> None:
    """A worker process's initializer: `threads` for its numeric libraries, and OCR pages
    counted into `pages` (a shared `multiprocessing.Value`)."""
    for name in THREAD_VARIABLES:
        os.environ[name] = str(threads)
    from qa.ingest import ocr

    ocr.count_into(pages)


def is_heavy(path: Path) -> bool:
    return path.suffix.lower() not in LIGHT_SUFFIXES


class Loads:
    """`run(jobs)` yields (job, Loaded) in job order, parsing heavy files in `workers`
    processes when there are at least MIN_PARALLEL of them (else all in-process). `threads`:
    the threads budget (`QA_THREADS`; default one per worker), shared out over the workers."""

    def __init__(self, workers: int, threads: int | None = None) -> None:
        self.workers = max(1, int(workers))
        self.worker_threads = max(1, int(threads or self.workers) // self.workers)
        self._pool: ProcessPoolExecutor | None = None
        self._pages = None  # the workers' OCR page count (a multiprocessing.Value)
        self._pages_seen = 0  # how much of it has been reported

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
            self._report_pages()

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
                    result = self._result(future)
                except BrokenProcessPool:
                    tries[i] = tries.get(i, 0) + 1
                    result = self._after_crash(job, i, tries, window)
            yield job, result
            fill()

    def _result(self, future: Future) -> Loaded:
        """The future's result, reporting the workers' OCR pages while it is awaited."""
        from concurrent.futures import TimeoutError as Timeout  # builtin TimeoutError in 3.11

        while True:
            try:
                result = future.result(timeout=POLL_SECONDS)
            except Timeout:
                self._report_pages()
                continue
            self._report_pages()
            return result

    def _report_pages(self) -> None:
        """Hand the OCR pages the workers read since last time to the progress."""
        if self._pages is None:
            return
        from qa.ingest import ocr

        pages = self._pages.get_obj().value  # read without the lock: a worker never waits
        if pages > self._pages_seen:
            ocr.pages_read(pages - self._pages_seen)
            self._pages_seen = pages

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
            return self._result(self._submit(job))
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

            context = multiprocessing.get_context("spawn")
            if self._pages is None:  # one count for the run, kept across pool restarts
                self._pages = context.Value("q", 0)
            self._pool = ProcessPoolExecutor(
                self.workers,
                mp_context=context,
                initializer=start_worker,
                initargs=(self._pages, self.worker_threads),
            )
        return self._pool.submit(read_and_load, job)

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None
