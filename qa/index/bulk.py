"""Committing documents that were loaded, chunked and embedded elsewhere (the Ray pipeline,
`qa.scale.ray_ingest`) into an `Index`, all in one transaction.

`bulk_update(index, paths, produce)` does what `Index.sync` does, with the work in between
handed to `produce`:

1. Under the index's write lock, it decides which files must be read exactly as `sync`
   does (`Writer._check`: same size and modification time means unchanged; the worker then
   compares the content hash, so a touched but unchanged file is not embedded again).
2. `produce(jobs)` yields one `Outcome` per job, in the order given: the document, its
   chunks and their vectors; or "same content"; or why the file could not be read.
3. Every changed document goes into one SQLite transaction, committed only after `produce`
   has yielded them all. Anything that stops it first (a worker killed, an error, Ctrl-C,
   even `kill -9` of this process) rolls it back: the index stays as it was, whole.
4. Then, like `sync`: new modification times of unchanged content are recorded, files
   gone from under `paths` are dropped (unless `remove_missing` is off), the roots are
   remembered, and FAISS catches up from the stored vectors and is saved.

Chunk ids are given in file order, as `sync` gives them, so the same folder makes the same
index either way.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from qa.errors import IndexMismatch, QAError
from qa.index import manifest as mf
from qa.index.writer import Progress, _no_progress, _Todo, display
from qa.ingest.parallel import Job
from qa.records import Chunk, Document, FileWarning, IndexReport, Skipped

__all__ = ["Job", "Outcome", "Produce", "bulk_update"]


@dataclass(frozen=True)
class Outcome:
    """What became of one job: `doc` with its `chunks` and their `vectors` (one row each);
    or `same` (the content is what was indexed); or `error` (why it was not indexed)."""

    sha256: str = ""
    doc: Document | None = None
    chunks: tuple[Chunk, ...] = ()
    vectors: np.ndarray | None = None
    same: bool = False
    error: str | None = None


Produce = Callable[[Sequence[Job]], Iterator[Outcome]]


def bulk_update(
    index,
    paths: Iterable[str | Path],
    produce: Produce,
    *,
    remove_missing: bool = True,
    progress: Progress | None = None,
) -> IndexReport:
    """Index new or changed files under `paths` with `produce` doing the reading, chunking
    and embedding; see the module docstring. `produce` is called only if there is work."""
    progress = progress or _no_progress
    t0 = time.perf_counter()
    roots = index._roots(paths)
    with index._writing, index._write_lock():
        index.refresh()
        with index._lock:
            stored = index.store.stored_docs()
        files, skipped = index._listed(roots)
        checked = []
        seen: set[str] = set()
        for path in files:
            source = index.source_for(path)
            seen.add(source)
            checked.append((source, index._check(path, source, stored.get(source))))
        todo = [c for _, c in checked if isinstance(c, _Todo)]
        jobs = [Job(t.path, t.source, t.old.sha256 if t.old is not None else None) for t in todo]
        progress("files", 0, len(files))
        added: list[str] = []
        updated: list[str] = []
        unchanged: list[str] = []
        notes: list[FileWarning] = []
        touched: list[_Todo] = []
        embedded = 0
        dimension = index.manifest["embedder"]["dimension"]
        with index._lock, contextlib.ExitStack() as stack:
            index._current_vectors()  # as committed before: caught up from the store after
            outcomes = iter(produce(jobs)) if jobs else iter(())
            stack.callback(getattr(outcomes, "close", lambda: None))  # stops the pipeline
            conn = None
            for n, (source, check) in enumerate(checked, 1):
                if check is None:
                    unchanged.append(source)
                elif isinstance(check, Skipped):
                    skipped.append(check)
                else:
                    out = next(outcomes, None)
                    if out is None:
                        raise QAError(f"the pipeline gave no result for {display(source)}")
                    if out.error is not None:
                        skipped.append(Skipped(display(source), out.error, failed=True))
                    elif out.same:
                        touched.append(check)
                        unchanged.append(source)
                    else:
                        vectors = _checked_vectors(out, dimension, index.directory)
                        if conn is None:  # the one transaction, begun at the first document
                            conn = stack.enter_context(index.store.transaction())
                        index.store.delete_document(conn, source)
                        index.store.insert_document(
                            conn,
                            source=source,
                            sha256=out.sha256,
                            title=out.doc.title,
                            mtime=check.info.st_mtime,
                            size=check.info.st_size,
                            text=out.doc.text,
                            chunks=out.chunks,
                            vectors=vectors,
                        )
                        (updated if check.old is not None else added).append(source)
                        notes += [FileWarning(source, w) for w in getattr(out.doc, "warnings", ())]
                        progress("embed", 0, len(out.chunks))
                        progress("embed", len(out.chunks), len(out.chunks))
                        embedded += len(out.chunks)
                progress("files", n, len(files))
            if next(outcomes, None) is not None:
                raise QAError("the pipeline gave more results than files it was given")
        # committed (or nothing to commit); what follows is what `sync` does after its groups
        for t in touched:
            index._touch(t.source, t.info)
        removed = index._settle(roots, stored, seen, remove_missing, bool(added or updated))
        return IndexReport(
            added=tuple(added),
            updated=tuple(updated),
            removed=tuple(removed),
            unchanged=tuple(unchanged),
            skipped=tuple(skipped),
            chunks_embedded=embedded,
            seconds=time.perf_counter() - t0,
            warnings=tuple(notes),
        )


def _checked_vectors(out: Outcome, dimension: int, directory: Path) -> np.ndarray:
    vectors = np.asarray(out.vectors, dtype=np.float32)
    if vectors.ndim != 2 or vectors.shape[0] != len(out.chunks):
        raise QAError(
            f"the pipeline gave {vectors.shape[0] if vectors.ndim else 0} vectors for "
            f"{len(out.chunks)} chunks of {out.doc.source if out.doc else '?'}"
        )
    if len(out.chunks) and vectors.shape[1] != dimension:
        raise IndexMismatch(
            f"the workers' embedder makes {vectors.shape[1]}-d vectors but {directory}/ holds "
            f"{dimension}-d ones: they must run the index's embedder; {mf.rebuild_hint(directory)}"
        )
    return vectors
